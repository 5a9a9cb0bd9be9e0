"""Benchmark: the PostgreSQL state backend against SQLite, through the CLI.

N (default 1,000) bridges in a fresh namespace each (iproute provider): ``kvmnet
apply --auto-approve`` of all of them (one state transaction per change), then
``kvmnet plan`` (a read of N rows and a refresh), once with the SQLite file and once
with a ``kvmnet { backend "pg" { … } }`` block against a throwaway PostgreSQL cluster
(Debian's binaries, a Unix socket, fsync off — as the tests run it). Medians of
``--runs`` rounds, each measuring both backends in turn. ``--pooled`` puts a
throwaway PgBouncer in transaction mode (kvmnet.sandbox.pgbouncer) between kvmnet
and the server.

Target (issue 13): apply and plan on PostgreSQL within 1.5 x of the same on SQLite.
Exits 1 when missed. Needs root; touches only its own namespaces, cluster and
pooler, and removes them also when killed with SIGTERM.

    .venv/bin/python benchmarks/bench_pg_state.py [--bridges 1000] [--runs 1] [--pooled] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.5


def config(ns: str, n: int, pg: bool) -> str:
    head = ('kvmnet {\n  backend "pg" {\n    workspace = "bench"\n  }\n}\n\n' if pg else "")
    body = "".join(f'resource "bridge" "b{i}" {{\n  name = "bb{i}"\n}}\n' for i in range(n))
    return f'{head}provider "iproute" {{\n  netns = "{ns}"\n}}\n\n{body}'


def run(cfg: Path, env: dict[str, str], *args: str) -> float:
    argv = [sys.executable, "-m", "kvmnet", "-C", str(cfg), "--no-color", *args]
    t = time.perf_counter()
    cp = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(cfg))
    took = time.perf_counter() - t
    if cp.returncode not in (0, 2):
        raise SystemExit(f"kvmnet {' '.join(args)} failed ({cp.returncode}):\n{cp.stderr[-2000:]}")
    return took


def one_round(n: int, conninfo: str, tmp: Path, rnd: int) -> dict[str, dict[str, float]]:
    from kvmnet.sandbox.netns import netns
    out: dict[str, dict[str, float]] = {}
    for kind in ("sqlite", "pg"):
        with netns() as ns:
            cfg = tmp / f"{kind}-{rnd}"
            cfg.mkdir()
            (cfg / "main.hcl").write_text(config(ns, n, kind == "pg"))
            env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(tmp / "cache"),
                       PG_CONN_STR=conninfo)
            if kind == "pg":
                import psycopg
                with psycopg.connect(conninfo, autocommit=True, prepare_threshold=None) as c:
                    c.execute("DROP SCHEMA IF EXISTS kvmnet CASCADE")
            apply = run(cfg, env, "apply", "--auto-approve")
            plan = run(cfg, env, "plan", "--detailed-exitcode")
            out[kind] = {"apply": apply, "plan": plan}
            print(f"  {kind:<6} apply {apply:7.2f} s   plan {plan:6.2f} s", flush=True)
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bridges", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--pooled", action="store_true",
                    help="reach PostgreSQL through PgBouncer (transaction pooling)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (namespaces, a PostgreSQL cluster run as postgres)", file=sys.stderr)
        return 1
    from kvmnet.sandbox.pgbouncer import PgBouncer
    from kvmnet.sandbox.pgcluster import PgCluster
    cluster = PgCluster()
    bouncer = PgBouncer(cluster) if args.pooled else None
    rounds = []
    try:
        cluster.start()
        print(f"PostgreSQL cluster in {cluster.root}", flush=True)
        conninfo = cluster.create_database("bench")
        if bouncer is not None:
            bouncer.start()
            print(f"through PgBouncer (transaction pooling) in {bouncer.root}", flush=True)
            conninfo = bouncer.pooled(conninfo)
        with tempfile.TemporaryDirectory(prefix="kvmnet-bench-pg-") as tmp:
            for r in range(args.runs):
                print(f"round {r + 1}: {args.bridges} bridges", flush=True)
                rounds.append(one_round(args.bridges, conninfo, Path(tmp), r))
    finally:
        try:
            if bouncer is not None:
                bouncer.destroy()
        finally:
            cluster.destroy()
    result: dict[str, float] = {}
    ok = True
    for phase in ("apply", "plan"):
        lite = statistics.median(r["sqlite"][phase] for r in rounds)
        pg = statistics.median(r["pg"][phase] for r in rounds)
        ratio = pg / lite
        result |= {f"{phase}_sqlite_s": lite, f"{phase}_pg_s": pg, f"{phase}_ratio": ratio}
        met = ratio <= TARGET
        ok = ok and met
        print(f"{phase:<6} sqlite {lite:7.2f} s  pg{' pooled' if args.pooled else ''} {pg:7.2f} s  ratio {ratio:4.2f} "
              f"(target <= {TARGET}) {'ok' if met else 'MISSED'}")
    result["pooled"] = float(args.pooled)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    from kvmnet.sandbox.sigterm import raise_on_sigterm
    raise_on_sigterm()      # SIGTERM runs the clean-ups (servers, namespaces, temp dirs)
    from installed import like_installed
    like_installed()        # bytecode, as an installed kvmnet has
    raise SystemExit(main(sys.argv[1:]))
