"""Benchmark: the fleet's status and slot operations on one PostgreSQL.

N simulated hosts (default 1,000) heart-beat every ``--interval`` seconds (default
10) against a throwaway PostgreSQL cluster (kvmnet.sandbox.pgcluster; needs root):
each heartbeat updates the host's status row as an agent does. A rollout runs
meanwhile: a host that has not applied its commit asks for a slot at its heartbeat
(granted in a row-locked transaction while fewer than ``--slots`` leases are live),
"applies" for a second or two, then records its result and frees its slot. The
clients are lightweight (threads sharing ``--connections`` connections, as agents
behind a pooler), not agents. Meanwhile ``fleet status``'s queries
(kvmnet.engine.fleet.view) run every half second.

Latency is timed around each operation's round trips (a grant: its transaction) over the cluster's Unix socket
(no TCP, no pooler: the figure is the server's time plus a local socket hop, an
upper bound of what pg_stat_statements would report). Target: p99 of a slot grant
and of ``fleet status`` ≤ 50 ms.

    sudo .venv/bin/python benchmarks/bench_fleet_status.py [--hosts 1000] [--interval 10]
        [--duration 60] [--connections 32] [--slots 100]
"""
from __future__ import annotations

import argparse
import heapq
import os
import random
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TARGET_P99_MS = 50.0
COMMIT = "c0ffee" * 6 + "c0de"

def grant(conn, rollout: int, host: str, slots: int, lease: float):
    """A slot for ``host``, or None: the rollout row locked first, so grants are
    serialised and each counts the live leases after the previous one committed
    (READ COMMITTED takes a fresh snapshot per statement)."""
    with conn.transaction():
        if conn.execute("SELECT id FROM fleet_rollouts WHERE id = %s AND state = 'running' FOR UPDATE",
                        (rollout,)).fetchone() is None:
            return None
        live = conn.execute("SELECT count(*) FROM fleet_slots WHERE rollout_id = %s AND lease_expires > now()",
                            (rollout,)).fetchone()[0]
        if live >= slots:
            return None
        return conn.execute("INSERT INTO fleet_slots (rollout_id, host, token, lease_expires) "
                            "VALUES (%s, %s, nextval('fleet_slot_tokens'), now() + make_interval(secs => %s)) "
                            "ON CONFLICT (rollout_id, host) DO NOTHING RETURNING token",
                            (rollout, host, lease)).fetchone()


def p99(xs: list[float]) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(0.99 * (len(xs) - 1))))]


class Sim:
    def __init__(self, conninfo: str, a):
        self.conninfo, self.a = conninfo, a
        self.lock = threading.Lock()
        self.lat: dict[str, list[float]] = {"heartbeat": [], "grant": [], "status": [], "release": []}
        self.granted = 0
        self.stop = threading.Event()

    def timed(self, kind: str, fn):
        t = time.perf_counter()
        out = fn()
        ms = (time.perf_counter() - t) * 1000
        with self.lock:
            self.lat[kind].append(ms)
        return out

    def setup(self, rollout_hosts: list[str]) -> int:
        import psycopg

        from kvmnet.state.fleet_schema import ensure
        with psycopg.connect(self.conninfo, autocommit=True, prepare_threshold=None) as conn:
            ensure(conn)
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO fleet_hosts (host, labels, desired_commit, last_seen) "
                                "VALUES (%s, '{}', %s, now())", [(h, COMMIT) for h in rollout_hosts])
            return conn.execute("INSERT INTO fleet_rollouts (commit, started_by, max_unavailable, canary, "
                                "max_failures, state) VALUES (%s, 'bench', %s, 0, 10, 'running') RETURNING id",
                                (COMMIT, str(self.a.slots))).fetchone()[0]

    def worker(self, hosts: list[str], rollout: int) -> None:
        import psycopg
        conn = psycopg.connect(self.conninfo, autocommit=True, prepare_threshold=None)
        rnd = random.Random(hash(hosts[0]))
        start = time.monotonic()
        due = [(start + rnd.uniform(0, self.a.interval), h) for h in hosts]
        heapq.heapify(due)
        applying: dict[str, float] = {}      # host -> when its "apply" ends
        done: set[str] = set()
        try:
            while not self.stop.is_set():
                at, host = heapq.heappop(due)
                wait = at - time.monotonic()
                if wait > 0 and self.stop.wait(wait):
                    break
                self.timed("heartbeat", lambda: conn.execute(
                    "UPDATE fleet_hosts SET last_seen = now(), agent_version = '0.1' WHERE host = %s", (host,)))
                if host in applying and time.monotonic() >= applying[host]:
                    del applying[host]
                    done.add(host)

                    def release(host=host):
                        with conn.transaction():
                            conn.execute("UPDATE fleet_hosts SET applied_commit = %s, condition = 'Available' "
                                         "WHERE host = %s", (COMMIT, host))
                            conn.execute("INSERT INTO fleet_results (rollout_id, host, result) "
                                         "VALUES (%s, %s, 'applied')", (rollout, host))
                            conn.execute("DELETE FROM fleet_slots WHERE rollout_id = %s AND host = %s",
                                         (rollout, host))
                    self.timed("release", release)
                elif host not in applying and host not in done:
                    row = self.timed("grant", lambda host=host: grant(conn, rollout, host, self.a.slots, 60))
                    if row is not None:
                        with self.lock:
                            self.granted += 1
                        applying[host] = time.monotonic() + rnd.uniform(1, 2)
                        heapq.heappush(due, (applying[host], host))
                        continue
                heapq.heappush(due, (at + self.a.interval, host))
        finally:
            conn.close()

    def status_reader(self) -> None:
        import psycopg

        from kvmnet.engine.fleet.view import read_hosts, read_rollout
        with psycopg.connect(self.conninfo, autocommit=True, prepare_threshold=None) as conn:
            while not self.stop.wait(0.5):
                self.timed("status", lambda: (read_hosts(conn), read_rollout(conn)))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--interval", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--slots", type=int, default=100)
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench_fleet_status needs root (a throwaway PostgreSQL cluster run as postgres); skipped")
        return 0
    from kvmnet.sandbox.pgcluster import PgCluster
    cluster = PgCluster()
    try:
        cluster.start()
        sim = Sim(cluster.create_database("bench"), a)
        hosts = [f"kvm{i:05d}" for i in range(a.hosts)]
        rollout = sim.setup(hosts)
        shares = [hosts[i::a.connections] for i in range(min(a.connections, a.hosts))]
        threads = [threading.Thread(target=sim.worker, args=(s, rollout)) for s in shares]
        threads.append(threading.Thread(target=sim.status_reader))
        for t in threads:
            t.start()
        time.sleep(a.duration)
        sim.stop.set()
        for t in threads:
            t.join()
    finally:
        cluster.destroy()
    print(f"fleet status and slots: {a.hosts} hosts every {a.interval:g} s for {a.duration:g} s, "
          f"{a.connections} connections, {a.slots} slots; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    for kind, xs in sim.lat.items():
        med = statistics.median(xs) if xs else float("nan")
        print(f"  {kind:<10} {len(xs):7d} ops   median {med:7.2f} ms   p99 {p99(xs):7.2f} ms")
    print(f"  slots granted: {sim.granted}")
    ok = all(p99(sim.lat[k]) <= TARGET_P99_MS for k in ("grant", "status") if sim.lat[k])
    print(f"  target: p99 of a slot grant and of fleet status ≤ {TARGET_P99_MS:.0f} ms: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    from kvmnet.sandbox.sigterm import raise_on_sigterm
    raise_on_sigterm()      # SIGTERM runs the clean-ups (servers, namespaces, temp dirs)
    from installed import like_installed
    like_installed()        # bytecode, as an installed kvmnet has
    raise SystemExit(main(sys.argv[1:]))
