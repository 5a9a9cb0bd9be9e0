"""Semantic rules of ``nic_attachment`` (SPEC §3)."""
from __future__ import annotations

from typing import Iterator

from kvmnet.providers.formats import mac_problem
from kvmnet.providers.link_rules import ifname_finding
from kvmnet.sdk.rules import Finding, Subject, known, show


def check_one_target(s: Subject) -> Iterator[Finding]:
    """Exactly one of ``network`` or ``bridge``."""
    network, bridge = s.get("network"), s.get("bridge")
    if network is not None and bridge is not None:
        yield Finding("bridge", "give exactly one of network or bridge, not both")
    elif network is None and bridge is None:
        yield Finding("network", 'needs exactly one of network (a libvirt network, e.g. network = "default") '
                                 'or bridge (a host bridge, e.g. bridge = "br0")')


def check_nic_mac(s: Subject) -> Iterator[Finding]:
    mac = s.get("mac")
    if known(mac):
        problem = mac_problem(mac)
        if problem:
            yield Finding("mac", f"mac = {show(mac)} is not a valid MAC address: {problem}")


def check_nic_bridge(s: Subject) -> Iterator[Finding]:
    yield from ifname_finding("bridge", s.get("bridge"))


RULES = (check_one_target, check_nic_mac, check_nic_bridge)
