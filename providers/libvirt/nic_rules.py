"""Semantic rules of ``nic_attachment`` (SPEC §3)."""
from __future__ import annotations

from typing import Iterator

from kvmnet.providers.formats import mac_problem
from kvmnet.providers.link_rules import ifname_finding
from kvmnet.sdk.rules import Finding, Subject, known, show


DIRECT_NEEDS_SOURCE = ('type = "direct" (macvtap) needs source { dev = "HOST_DEVICE", '
                       'mode = "bridge"|"vepa"|"private"|"passthrough" }')


def _one(v) -> dict | None:
    """A single block, as config gives it (a list of one dict) or canonical (a dict)."""
    if isinstance(v, list):
        v = v[0] if v else None
    return v if isinstance(v, dict) else None


def check_one_target(s: Subject) -> Iterator[Finding]:
    """Exactly one of ``network``, ``bridge`` or ``type = "direct"`` with ``source``."""
    network, bridge, kind, source = s.get("network"), s.get("bridge"), s.get("type"), s.get("source")
    if kind == "direct":
        for name, v in (("network", network), ("bridge", bridge)):
            if v is not None:
                yield Finding(name, f'type = "direct" takes source {{ dev, mode }}, not {name}')
        if source is None:
            yield Finding("type", DIRECT_NEEDS_SOURCE)
        return
    if source is not None:
        yield Finding("source", 'source { dev, mode } is for type = "direct" (macvtap); '
                                'a NIC on a network or a bridge takes network = or bridge =')
    if network is not None and bridge is not None:
        yield Finding("bridge", "give exactly one of network or bridge, not both")
    elif network is None and bridge is None:
        yield Finding("network", 'needs exactly one of network (a libvirt network, e.g. network = "default"), '
                                 'bridge (a host bridge, e.g. bridge = "br0") or type = "direct" '
                                 'with source { dev } (macvtap on a host device)')
    elif known(kind) and (kind == "network") != (network is not None):
        given = "network" if network is not None else "bridge"
        yield Finding("type", f'type = {show(kind)} does not match {given} = {show(network or bridge)}')


def check_driver(s: Subject) -> Iterator[Finding]:
    """Driver tuning (``<driver>`` options, offloads) exists for virtio only."""
    driver, model = _one(s.get("driver")), s.get("model")
    if s.get("queues") is not None and (driver or {}).get("queues") is not None:
        yield Finding("queues", "queues is the v1 shorthand of driver { queues }: give one of them")
    tuned = [k for k, v in (driver or {}).items() if v is not None and k != "queues"]
    for k in ("rx_queue_size", "tx_queue_size"):
        size = (driver or {}).get(k)
        if known(size) and isinstance(size, int) and size & (size - 1):
            yield Finding(f"driver.{k}", f"{k} = {size} is not a power of two (256, 512 or 1024)")
    tx = (driver or {}).get("tx_queue_size")
    if known(tx) and tx != 256:
        yield Finding("driver.tx_queue_size", f"tx_queue_size = {show(tx)}: QEMU sizes the transmit "
                                              "queue of a tap or macvtap NIC at 256 whatever is asked "
                                              "(a larger one needs vhost-user, which kvmnet does not attach)")
    if tuned and known(model) and model != "virtio":
        yield Finding("driver", f"driver {{ {', '.join(tuned)} }} tunes virtio: it needs "
                                f'model = "virtio", not {show(model)}')


def check_vlan(s: Subject) -> Iterator[Finding]:
    """libvirt takes a NIC's VLAN tags on Open vSwitch (or from a network), not on a
    plain Linux bridge or a macvtap."""
    if s.get("vlan") is None:
        return
    kind = s.get("type") or ("bridge" if s.get("bridge") is not None else None)
    vport = _one(s.get("virtualport")) or {}
    if kind == "direct":
        yield Finding("vlan", 'vlan needs a network or an Open vSwitch bridge; libvirt has no VLAN '
                              'tags on a macvtap (type = "direct") NIC')
    elif kind == "bridge" and known(vport.get("type", "")) and vport.get("type") != "openvswitch":
        yield Finding("vlan", 'vlan on a bridge needs virtualport { type = "openvswitch" }: libvirt '
                              'rejects VLAN tags on a plain Linux bridge (use a vlan resource and a '
                              'bridge on it instead)')


def check_nic_mac(s: Subject) -> Iterator[Finding]:
    mac = s.get("mac")
    if known(mac):
        problem = mac_problem(mac)
        if problem:
            yield Finding("mac", f"mac = {show(mac)} is not a valid MAC address: {problem}")


def check_nic_bridge(s: Subject) -> Iterator[Finding]:
    yield from ifname_finding("bridge", s.get("bridge"))


def check_direct_limits(s: Subject) -> Iterator[Finding]:
    """What libvirt refuses on a macvtap NIC, and a bandwidth floor off a network."""
    kind = s.get("type") or ("network" if s.get("network") is not None
                             else "bridge" if s.get("bridge") is not None else None)
    if kind == "direct":
        for name, what in (("port", "port { isolated }"), ("mtu", "mtu { size }")):
            if s.get(name) is not None:
                yield Finding(name, f'libvirt does not support {what} on a macvtap (type = "direct") '
                                    "NIC; it is for a NIC on a network or a bridge")
    inbound = _one((_one(s.get("bandwidth")) or {}).get("inbound")) or {}
    if known(kind) and kind != "network" and inbound.get("floor") is not None:
        yield Finding("bandwidth.inbound.floor", "floor (a guaranteed share of the network's "
                                                 "bandwidth) is for a NIC on a libvirt network only")


RULES = (check_one_target, check_nic_mac, check_nic_bridge, check_driver, check_vlan,
         check_direct_limits)
