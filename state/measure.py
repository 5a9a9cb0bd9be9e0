"""Measure the state store: ``python -m kvmnet.state.measure [N]``.

Seeds a throw-away state with N (default 10,000) network instances shaped like the
benchmark's (an ``ip`` block with a DHCP range and a static host), then prints the
median time of a whole ``read()`` in a fresh backend and of one small transaction
(one ``put``), the unit of work the engine commits after every applied change.
The numbers in ``docs/state.md`` come from this.
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from kvmnet.state import InstanceRecord, open_state


def network_record(i: int) -> InstanceRecord:
    third, fourth = divmod(i, 256)
    net = f"10.{third % 256}.{fourth}"
    return InstanceRecord(
        address=f"network.n[{i}]", type="network", name="n", key=i,
        provider="libvirt", id=f"n{i}",
        attrs={"name": f"n{i}", "mode": "nat", "autostart": True, "bridge": f"virbr{i}",
               "uuid": f"00000000-0000-4000-8000-{i:012d}", "active": True,
               "ip": [{"address": f"{net}.1", "prefix": 24,
                       "dhcp_range": [{"start": f"{net}.10", "end": f"{net}.99"}],
                       "dhcp_host": [{"mac": "52:54:00:00:00:01", "ip": f"{net}.5",
                                      "name": "web"}]}]},
    )


def measure(n: int, rounds: int = 7) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kvmnet.state.db"
        st = open_state(path)
        t = time.perf_counter()
        with st.transaction() as w:
            for i in range(n):
                w.put(network_record(i))
        seed = time.perf_counter() - t
        st.close()        # as after an apply: the next run is a new process

        reads = []
        for _ in range(rounds):
            fresh = open_state(path)
            t = time.perf_counter()
            snap = fresh.read()
            reads.append(time.perf_counter() - t)
            fresh.close()
            assert len(snap.instances) == n

        commits = []
        for k in range(rounds * 20):
            record = network_record(k % n)
            record.attrs["autostart"] = bool(k % 2)
            t = time.perf_counter()
            with st.transaction() as w:
                w.put(record)
            commits.append(time.perf_counter() - t)
        st.close()
        return {"seed": seed, "read": statistics.median(reads),
                "commit": statistics.median(commits)}


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 10_000
    r = measure(n)
    print(f"seed {n} instances in one transaction: {r['seed'] * 1000:.0f} ms")
    print(f"read() of {n} instances (median):    {r['read'] * 1000:.0f} ms")
    print(f"one small transaction (median):       {r['commit'] * 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
