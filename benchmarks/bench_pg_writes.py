"""Benchmark: what one applied change costs the state, SQLite vs PostgreSQL.

Per change, what the walk writes (engine/walk.py): its intent (``record_intents``,
durable) then its result (``settle`` in a ``durable=False`` transaction), N times
under an exclusive lock, with no provider and no CLI around them. Reports
milliseconds per change: wall, this process's CPU, and for PostgreSQL the CPU of
its server backend (read from /proc: the throwaway cluster runs on this machine).
Wall time is noisy on a shared machine; the CPU figures are the ones to compare
before/after. No target: it says where ``bench_pg_state.py``'s difference comes
from. Needs root (a throwaway cluster run as postgres); removes it also on SIGTERM.

    .venv/bin/python benchmarks/bench_pg_writes.py [--changes 1000] [--runs 2]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(backend) -> float:
    """CPU seconds of the backend's write connection's server process so far."""
    conn = getattr(backend, "_conns", {}).get("write")
    if conn is None:
        return 0.0
    with open(f"/proc/{conn.info.backend_pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def change(backend, i: int) -> None:
    from kvmnet.state import Intent, InstanceRecord
    [iid] = backend.record_intents([Intent(f"bridge.b{i}", "create", "bridge", "iproute",
                                           {"id": f"bb{i}"})])
    record = InstanceRecord(f"bridge.b{i}", "bridge", f"b{i}", None, "iproute", f"bb{i}",
                            {"name": f"bb{i}", "mtu": 1500, "stp": False}, {}, [])
    with backend.transaction(durable=False) as w:
        w.settle(record.address, record, [iid])


def drive(backend, n: int) -> tuple[float, float, float]:
    """(wall, client CPU, server CPU) seconds of ``n`` changes after one warm-up."""
    from kvmnet.state import EXCLUSIVE
    with backend.lock(EXCLUSIVE, "bench"):
        change(backend, -1)
        s0 = server_cpu(backend)
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            change(backend, i)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return wall, cpu, server_cpu(backend) - s0


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=2)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (a PostgreSQL cluster run as postgres)", file=sys.stderr)
        return 1
    from kvmnet.sandbox.pgcluster import PgCluster
    from kvmnet.state import open_pg_state, open_state
    cluster = PgCluster()
    try:
        cluster.start()
        conninfo = cluster.create_database("bench")
        with tempfile.TemporaryDirectory(prefix="kvmnet-bench-writes-") as tmp:
            for r in range(args.runs):
                lite = open_state(os.path.join(tmp, f"s{r}.db"))
                w1, c1, _ = drive(lite, args.changes)
                pg = open_pg_state(conninfo, f"ws{r}")
                w2, c2, s2 = drive(pg, args.changes)
                pg.close()
                k = 1e3 / args.changes
                print(f"{args.changes} changes: sqlite {w1 * k:.3f} ms/change (cpu {c1 * k:.3f})  "
                      f"pg {w2 * k:.3f} ms/change (cpu {c2 * k:.3f}, server {s2 * k:.3f})",
                      flush=True)
    finally:
        cluster.destroy()
    return 0


if __name__ == "__main__":
    from kvmnet.sandbox.sigterm import raise_on_sigterm
    raise_on_sigterm()
    raise SystemExit(main(sys.argv[1:]))
