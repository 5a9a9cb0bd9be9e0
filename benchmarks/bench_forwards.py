"""Benchmark: the nftables provider with 1,000 port forwards, in a throw-away namespace.

Prints the apply phase (one ``nft -c`` check + one transaction + read-back) for
1,000 new forwards, the refresh phase (one ``nft -j list ruleset``) with 1,000
present, and the same for the iptables provider for comparison. Targets (issue 5):
apply ≤ 1 s, refresh ≤ 0.2 s. Needs root; touches only its own namespace.

    .venv/bin/python benchmarks/bench_forwards.py [N]
"""
from __future__ import annotations

import statistics
import sys
import time
import uuid

from kvmnet.sdk.provider import Change
from kvmnet.providers.iptables import IptablesProvider
from kvmnet.providers.nftables import NftablesProvider
from kvmnet.sandbox.netns import in_ns, netns

LINEAGE = str(uuid.uuid4())


def changes(n: int, action: str = "create") -> list[Change]:
    out = []
    for i in range(n):
        attrs = dict(protocol="tcp" if i % 2 == 0 else "udp", host_port=str(10000 + i),
                     to_address=f"10.{(i // 250) % 250}.{i % 250}.10", to_port=80,
                     in_interface=None, source=None, network=None)
        addr = f"port_forward.f[{i}]"
        if action == "create":
            out.append(Change("create", "port_forward", addr, None, attrs, mark=f"kvmnet:{LINEAGE}:{addr}"))
        else:
            out.append(Change("delete", "port_forward", addr, attrs, None))
    return out


def measure(provider_cls, n: int, libvirt_like: bool) -> dict:
    with netns("kfb") as ns:
        if libvirt_like:   # libvirt's FORWARD jumps, so the forward-accept is part of the work
            in_ns(ns, "iptables", "-N", "LIBVIRT_FWI")
            in_ns(ns, "iptables", "-I", "FORWARD", "-j", "LIBVIRT_FWI")
        p = provider_cls({"netns": ns})
        t = time.perf_counter()
        results = list(p.apply(changes(n)))
        apply_s = time.perf_counter() - t
        assert len(results) == n
        refresh = []
        for _ in range(5):
            t = time.perf_counter()
            live = p.read("port_forward", [])
            refresh.append(time.perf_counter() - t)
        assert len(live) == n, len(live)
        t = time.perf_counter()
        list(p.apply(changes(n, "delete")))
        destroy_s = time.perf_counter() - t
        return {"apply": apply_s, "refresh": statistics.median(refresh), "destroy": destroy_s}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    for name, cls, target in (("nftables", NftablesProvider, True), ("iptables", IptablesProvider, False)):
        r = measure(cls, n, libvirt_like=True)
        line = (f"{name:9s} {n} forwards: apply {r['apply']:.3f} s, refresh {r['refresh']:.3f} s "
                f"(median of 5), destroy {r['destroy']:.3f} s")
        if target:
            ok = r["apply"] <= 1.0 and r["refresh"] <= 0.2
            line += f"   [targets apply <= 1 s, refresh <= 0.2 s: {'met' if ok else 'MISSED'}]"
        print(line, flush=True)


if __name__ == "__main__":
    from kvmnet.sandbox.sigterm import raise_on_sigterm
    raise_on_sigterm()      # SIGTERM runs the clean-ups (servers, namespaces, temp dirs)
    from installed import like_installed
    like_installed()        # bytecode, as an installed kvmnet has
    main()
