"""Rules across instances: one interface name per object, one bridge per port,
unique network names, non-overlapping subnets, no host port forwarded twice, and a
forward's ``to_address`` inside the network it names (SPEC §4).

Objects only clash inside one *scope*: the caller may say which scope (network
namespace, libvirt host) each provider instance works in; by default all share one.
Each rule reports on the later instance in the configuration and names the earlier.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Callable, Iterable, Iterator, Mapping

from . import ipv4
from .forward_rules import host_ports
from .link_rules import bridge_name, vlan_name
from .network_rules import IP, subnet_of
from .subject import Finding, Subject, known, show

CrossFinding = tuple[Subject, Finding]
Scope = Callable[[Subject], object]


def scope_of(scopes: Mapping[str, object] | None) -> Scope:
    """A function giving the scope of a subject's provider instance."""
    if not scopes:
        return lambda s: None
    return lambda s: scopes.get(s.inst.provider)


def _later(a: Subject, b: Subject) -> tuple[Subject, Subject]:
    return (a, b) if a.order > b.order else (b, a)


def _of_type(subjects: Iterable[Subject], rtype: str) -> list[Subject]:
    return [s for s in subjects if s.inst.type == rtype]


# ---------------------------------------------------------------- interface names

def _interfaces_created(s: Subject) -> tuple[str, str, str] | None:
    """(path, name, how) of the interface an instance creates, if it creates one.

    A bridge-mode network's ``bridge`` refers to an existing bridge: it creates none.
    """
    rtype = s.inst.type
    if rtype == "network":
        mode, bridge = s.get("mode"), s.get("bridge")
        if known(mode) and mode != "bridge" and known(bridge):
            return "bridge", bridge, ""
    elif rtype == "bridge":
        name = bridge_name(s)
        if known(name):
            return "name", name, "" if s.get("name") is not None else " (the block label)"
    elif rtype == "vlan":
        name = vlan_name(s)
        if name is not None:
            return "name", name, "" if s.get("name") is not None else " (the default <link>.<id>)"
    return None


def check_interface_names(subjects: list[Subject], scope: Scope) -> Iterator[CrossFinding]:
    """Two objects (network bridges, bridges, vlans) never share an interface name."""
    first: dict[tuple, Subject] = {}
    for s in subjects:
        created = _interfaces_created(s)
        if created is None:
            continue
        path, name, how = created
        key = (scope(s), name)
        other = first.setdefault(key, s)
        if other is not s:
            yield s, Finding(path, f"interface name {show(name)}{how} is already used by {other.address}; "
                                   "two objects cannot share an interface name")


def check_bridge_ports(subjects: list[Subject], scope: Scope) -> Iterator[CrossFinding]:
    """A port is enslaved to one bridge only."""
    owner: dict[tuple, Subject] = {}
    for s in _of_type(subjects, "bridge"):
        ports = s.get("interfaces")
        if not known(ports):
            continue
        for i, port in enumerate(ports):
            if not known(port):
                continue
            other = owner.setdefault((scope(s), port), s)
            if other is not s:
                yield s, Finding(f"interfaces[{i}]", f"interfaces[{i}] = {show(port)} is already a port of "
                                                     f"{other.address}; an interface can be enslaved to one "
                                                     "bridge only")


# ---------------------------------------------------------------- networks

def network_name(s: Subject):
    name = s.get("name")
    return s.inst.name if name is None else name


def check_network_names(subjects: list[Subject], scope: Scope) -> Iterator[CrossFinding]:
    """Two networks never share a libvirt name (the block label is the default)."""
    first: dict[tuple, Subject] = {}
    for s in _of_type(subjects, "network"):
        name = network_name(s)
        if not known(name):
            continue
        other = first.setdefault((scope(s), name), s)
        if other is not s:
            how = "" if s.get("name") is not None else " (the block label; with count or for_each set a distinct name)"
            yield s, Finding("name", f"network name {show(name)}{how} is already used by {other.address}")


def check_overlapping_subnets(subjects: list[Subject], scope: Scope) -> Iterator[CrossFinding]:
    """No two networks' subnets overlap (a sweep over the subnets sorted by start)."""
    by_scope: dict[object, list] = defaultdict(list)
    for s in _of_type(subjects, "network"):
        subnet = subnet_of(s)
        if subnet is not None and s.get("mode") != "bridge":  # bridge mode: the ip block is an error already
            by_scope[scope(s)].append((subnet, s))
    for nets in by_scope.values():
        nets.sort(key=lambda n: (n[0].network, n[0].prefixlen))
        holder = None  # the network reaching furthest so far
        for subnet, s in nets:
            if holder is not None and subnet.network <= holder[0].broadcast:
                held_net, held = holder
                if s.order > held.order:
                    later, later_net, earlier, earlier_net = s, subnet, held, held_net
                else:
                    later, later_net, earlier, earlier_net = held, held_net, s, subnet
                yield later, Finding(f"{IP}.address", f"subnet {later_net} overlaps {earlier_net} of {earlier.address}")
            if holder is None or subnet.broadcast > holder[0].broadcast:
                holder = (subnet, s)


# ---------------------------------------------------------------- port forwards

def check_duplicate_forwards(subjects: list[Subject], scope: Scope) -> Iterator[CrossFinding]:
    """The same protocol and overlapping host ports are forwarded once, unless both
    forwards name different input interfaces."""
    groups: dict[tuple, dict] = defaultdict(lambda: defaultdict(list))
    for s in _of_type(subjects, "port_forward"):
        proto, iface, ports = s.get("protocol"), s.get("in_interface"), host_ports(s)
        if not known(proto) or iface is not None and not known(iface) or ports is None:
            continue
        groups[(scope(s), proto)][iface].append((ports, s))
    reported: set[tuple[int, int]] = set()
    for (_, proto), by_iface in groups.items():
        wildcard = by_iface.get(None, [])
        for iface, items in by_iface.items():
            pool = sorted(items if iface is None else items + wildcard, key=lambda f: f[0])
            holder = None
            for ports, s in pool:
                if holder is not None and ports[0] <= holder[0][1]:
                    later, earlier = _later(s, holder[1])
                    pair = (later.order, earlier.order)
                    if pair not in reported:
                        reported.add(pair)
                        yield later, Finding("host_port", f"host port {_ports(later)}/{proto} is already forwarded by "
                                                          f"{earlier.address} (host_port {_ports(earlier)})")
                if holder is None or ports[1] > holder[0][1]:
                    holder = (ports, s)


def _ports(s: Subject) -> str:
    ports = host_ports(s)
    assert ports is not None          # only forwards with known ports are compared
    first, last = ports
    return str(first) if first == last else f"{first}-{last}"


def check_forward_network(subjects: list[Subject], scope: Scope) -> Iterator[CrossFinding]:
    """With ``network`` set, ``to_address`` lies in that network's subnet."""
    networks: dict[str, Subject] = {}
    for n in _of_type(subjects, "network"):
        name = network_name(n)
        if known(name):
            networks.setdefault(name, n)
    for s in _of_type(subjects, "port_forward"):
        name, to = s.get("network"), s.get("to_address")
        address = ipv4.parse(to) if known(name) else None
        if address is None:
            continue
        network = networks.get(name)
        if network is None:
            continue
        subnet = subnet_of(network)
        if subnet is not None and address not in subnet:
            yield s, Finding("to_address", f"to_address = {show(to)} is not in the subnet {subnet} of network "
                                           f"{show(name)} ({network.address})")


RULES = (check_interface_names, check_bridge_ports, check_network_names, check_overlapping_subnets,
         check_duplicate_forwards, check_forward_network)


def cross_findings(subjects: list[Subject], scopes: Mapping[str, object] | None = None) -> Iterator[CrossFinding]:
    scope = scope_of(scopes)
    for rule in RULES:
        yield from rule(subjects, scope)
