"""``make bench``: run the benchmarks, each as its own process, and print every figure.

    .venv/bin/python benchmarks/run.py                 # engine, links, forwards, apply, dhcp, fleet-plan, fleet-status
    .venv/bin/python benchmarks/run.py engine          # only some of them
    .venv/bin/python benchmarks/run.py links forwards
    .venv/bin/python benchmarks/run.py engine -- --sizes 100,1000 --no-peer

Arguments after ``--`` go to every benchmark that is run. A benchmark whose file
does not exist (yet) is reported and skipped. Exits 1 when any benchmark failed or
missed a target.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = {
    "engine": "bench_engine.py",       # validate / plan of N networks, cold and warm, vs Terraform
    "links": "bench_links.py",         # bridges and vlans through the iproute provider
    "forwards": "bench_forwards.py",   # 1,000 port forwards through nftables / iptables
    "apply": "bench_apply.py",         # parallel apply of 50 NAT networks / 200 bridges vs floors
    "dhcp": "bench_dhcp.py",           # 50 DHCP hosts added to one running network
    "fleet-plan": "bench_fleet_plan.py",       # fleet plan of 200 host dirs × 100 resources, per-host cost
    "fleet-status": "bench_fleet_status.py",   # 1,000 hosts heart-beating on PostgreSQL: p99 slot grant, status
    "pgstate": "bench_pg_state.py",    # apply / plan of 1,000 bridges: PostgreSQL state vs SQLite
    "pgwrites": "bench_pg_writes.py",  # one change's state writes, SQLite vs PostgreSQL: client / server CPU
}


def main(argv: list[str]) -> int:
    names, extra = argv, []
    if "--" in argv:
        i = argv.index("--")
        names, extra = argv[:i], argv[i + 1:]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}",
              file=sys.stderr)
        return 2
    chosen = names or list(BENCHMARKS)
    outcome: dict[str, str] = {}
    for name in chosen:
        script = HERE / BENCHMARKS[name]
        print(f"\n######## {name}: {script.name} ########", flush=True)
        if not script.exists():
            outcome[name] = "not present (skipped)"
            print(f"{script.name} does not exist yet; skipped", flush=True)
            continue
        t = time.perf_counter()
        rc = subprocess.run([sys.executable, str(script), *extra]).returncode
        took = time.perf_counter() - t
        outcome[name] = f"{'ok' if rc == 0 else f'FAILED (exit {rc})'} in {took:.0f} s"
    print("\n######## summary ########")
    for name, what in outcome.items():
        print(f"{name:<10} {what}")
    return 0 if all(not w.startswith("FAILED") for w in outcome.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
