"""Benchmark: host bridges through the iproute provider, in throw-away namespaces.

1. Apply: creating N bridges (default 200) with one veth port each through the
   provider (``IprouteProvider.apply``), against the floor: a plain pyroute2 script
   doing the same work (create the bridge up, look up its index, enslave the port
   and bring it up), each in its own fresh namespace, in the same run.
   Target (issue 4): provider ≤ 1.5 × floor.
2. Refresh: ``read("bridge")`` with ≥ 1,000 links present (the N bridges, their
   veth pairs and more veth pairs). Target: ≤ 0.1 s. pyroute2's ``get_links()`` on
   the same namespace is printed for comparison.

Needs root; touches only its own namespaces.

    .venv/bin/python benchmarks/bench_links.py [N] [LINKS] [ROUNDS]
"""
from __future__ import annotations

import statistics
import sys
import time
import uuid

from kvmnet.engine.resources import canonical, with_defaults
from kvmnet.sdk.provider import Change
from kvmnet.providers.iproute import IprouteProvider
from kvmnet.sandbox.netns import netns

LINEAGE = str(uuid.uuid4())


def add_veths(ns: str, first: int, count: int) -> None:
    from pyroute2 import IPRoute
    with IPRoute(netns=ns, flags=0) as ipr:
        for i in range(first, first + count):
            ipr.link("add", ifname=f"p{i}", kind="veth", peer=f"q{i}")


def floor(ns: str, n: int) -> float:
    """A plain pyroute2 script: bridge up, its index, port enslaved and up."""
    from pyroute2 import IPRoute
    with IPRoute(netns=ns, flags=0) as ipr:
        t = time.perf_counter()
        for i in range(n):
            ipr.link("add", ifname=f"b{i}", kind="bridge", state="up")
            index = ipr.link("get", ifname=f"b{i}")[0]["index"]
            ipr.link("set", ifname=f"p{i}", master=index, state="up")
        return time.perf_counter() - t


def changes(n: int) -> list[Change]:
    out = []
    for i in range(n):
        attrs = canonical("bridge", with_defaults("bridge", f"b{i}", {"interfaces": [f"p{i}"]}))
        addr = f'bridge.b["{i}"]'
        out.append(Change("create", "bridge", addr, None, attrs, mark=f"kvmnet:{LINEAGE}:{addr}"))
    return out


def provider_apply(ns: str, n: int) -> tuple[float, IprouteProvider]:
    p = IprouteProvider({"netns": ns})
    cs = changes(n)
    t = time.perf_counter()
    results = list(p.apply(cs))
    elapsed = time.perf_counter() - t
    assert len(results) == n
    return elapsed, p


def link_count(ns: str) -> int:
    from kvmnet.sandbox.netns import in_ns
    return len(in_ns(ns, "ip", "-o", "link", "show").stdout.splitlines())


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    target_links = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    import pyroute2  # noqa: F401  (import cost outside the timings, for both sides)

    # rounds alternate floor and provider, each in a fresh namespace; the medians
    # are compared (the machine may be shared: single runs are noisy)
    floors, applies = [], []
    for _ in range(rounds - 1):
        with netns("kbl") as ns_floor:
            add_veths(ns_floor, 0, n)
            floors.append(floor(ns_floor, n))
        with netns("kbl") as ns:
            add_veths(ns, 0, n)
            elapsed, p = provider_apply(ns, n)
            applies.append(elapsed)
            p.close()
    with netns("kbl") as ns_floor:
        add_veths(ns_floor, 0, n)
        floors.append(floor(ns_floor, n))

    with netns("kbl") as ns:
        add_veths(ns, 0, n)
        elapsed, p = provider_apply(ns, n)
        applies.append(elapsed)
        apply_s, floor_s = statistics.median(applies), statistics.median(floors)
        # fill up to the target number of links with more veth pairs
        missing = max(0, target_links - link_count(ns))
        add_veths(ns, n, (missing + 1) // 2)
        links = link_count(ns)
        ids = [f"b{i}" for i in range(n)]
        refresh = []
        for _ in range(7):
            t = time.perf_counter()
            live = p.read("bridge", ids)
            refresh.append(time.perf_counter() - t)
        assert len(live) == n and live["b0"].attrs["interfaces"] == ["p0"]
        vlan = []
        for _ in range(5):
            t = time.perf_counter()
            p.read("vlan", [])
            vlan.append(time.perf_counter() - t)
        from pyroute2 import IPRoute
        with IPRoute(netns=ns, flags=0) as ipr:
            t = time.perf_counter()
            got = ipr.get_links()
            get_links_s = time.perf_counter() - t
        p.close()

    ratio = apply_s / floor_s
    refresh_s = statistics.median(refresh)
    print(f"apply   {n} bridges + 1 port each (median of {rounds}): provider {apply_s:.3f} s, "
          f"pyroute2 floor {floor_s:.3f} s, "
          f"ratio {ratio:.2f} (target <= 1.5) {'OK' if ratio <= 1.5 else 'MISSED'}")
    print(f"refresh read('bridge') with {links} links: median {refresh_s * 1000:.1f} ms "
          f"(min {min(refresh) * 1000:.1f}, max {max(refresh) * 1000:.1f}) (target <= 100 ms) "
          f"{'OK' if refresh_s <= 0.1 else 'MISSED'}")
    print(f"refresh read('vlan') with {links} links: median {statistics.median(vlan) * 1000:.1f} ms")
    print(f"for comparison: pyroute2 get_links() of {len(got)} links: {get_links_s * 1000:.1f} ms")


if __name__ == "__main__":
    from kvmnet.sandbox.sigterm import raise_on_sigterm
    raise_on_sigterm()      # SIGTERM runs the clean-ups (servers, namespaces, temp dirs)
    from installed import like_installed
    like_installed()        # bytecode, as an installed kvmnet has
    main()
