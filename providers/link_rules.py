"""Rules of the host link types ``bridge`` and ``vlan``: interface names, claims,
addresses, routes and STP timing (SPEC §3, §4)."""
from __future__ import annotations

import ipaddress
from typing import Iterator

from kvmnet.providers.formats import cidr_problem, ifname_problem, ipv4_problem
from kvmnet.sdk.rules import Finding, Subject, blocks, known, show
from kvmnet.sdk.types import Claim


def ifname_finding(path: str, value, what: str = "") -> Iterator[Finding]:
    """A finding when a known ``value`` is not a valid Linux interface name."""
    if not known(value):
        return
    problem = ifname_problem(value)
    if problem:
        yield Finding(path, f"{path} = {show(value)}{what} is not a valid interface name: {problem}")


def bridge_name(s: Subject):
    """The interface name a bridge resource has (``name``, default the label)."""
    name = s.get("name")
    return s.inst.name if name is None else name


def vlan_name(s: Subject):
    """The interface name a vlan resource has (``name``, default ``<link>.<id>``), or
    None when it depends on something unknown."""
    name = s.get("name")
    if name is not None:
        return name if known(name) else None
    link, vid = s.get("link"), s.get("id")
    if known(link) and known(vid):
        return f"{link}.{int(vid)}"
    return None


def check_bridge_names(s: Subject) -> Iterator[Finding]:
    """The bridge's own name and each port name are valid interface names; the
    bridge does not enslave itself."""
    if s.get("name") is None:
        yield from ifname_finding("name", s.inst.name, " (the default: the block label)")
    else:
        yield from ifname_finding("name", s.get("name"))
    own = bridge_name(s)
    ports = s.get("interfaces")
    if not known(ports):
        return
    for i, port in enumerate(ports):
        yield from ifname_finding(f"interfaces[{i}]", port)
        if known(port) and known(own) and port == own:
            yield Finding(f"interfaces[{i}]",
                          f"interfaces[{i}] = {show(port)} is the bridge itself; a bridge cannot enslave itself")


def check_vlan_names(s: Subject) -> Iterator[Finding]:
    """``link`` and ``name`` are valid interface names; a default ``<link>.<id>`` fits."""
    yield from ifname_finding("link", s.get("link"))
    if s.get("name") is not None:
        yield from ifname_finding("name", s.get("name"))
        return
    default = vlan_name(s)
    if default is not None and ifname_problem(default):
        yield Finding("name", f"the default name {show(default)} (<link>.<id>) is not a valid interface name: "
                              f"{ifname_problem(default)}; set name explicitly (e.g. \"vlan{int(s.get('id'))}\")")


def check_addresses(s: Subject) -> Iterator[Finding]:
    """Each entry of ``addresses`` is an IPv4 address with a prefix (10.0.0.1/24)."""
    addresses = s.get("addresses")
    if not known(addresses):
        return
    seen: dict[str, str] = {}
    for i, cidr in enumerate(addresses):
        if not known(cidr):
            continue
        path = f"addresses[{i}]"
        problem = cidr_problem(cidr)
        if problem:
            yield Finding(path, f"{path} = {show(cidr)} is not a valid IPv4 address/prefix (CIDR): {problem}")
            continue
        addr = cidr.split("/")[0]
        if addr in seen:
            yield Finding(path, f"{path} = {show(cidr)} repeats the address of {seen[addr]}")
        seen[addr] = path


def _route_key(s: Subject) -> str | None:
    """Which key the routes came under: the ``route`` blocks or a ``routes`` list."""
    if s.get("route") is not None:
        return "route"
    if s.get("routes") is not None:
        return "routes"
    return None


def check_routes(s: Subject) -> Iterator[Finding]:
    """Routes: ``to`` a network CIDR, ``via`` an IPv4 address; blocks or list, not both."""
    if s.get("route") is not None and s.get("routes") is not None:
        yield Finding("routes", "give routes either as route { ... } blocks or as routes = [...], not both")
    key = _route_key(s)
    if key is None:
        return
    for i, route in blocks(s.attrs, key):
        path = f"{key}[{i}]"
        to, via = route.get("to"), route.get("via")
        if to == "default":
            yield Finding(f"{path}.to", f'{path}.to = "default": write the default route as "0.0.0.0/0"')
        elif known(to):
            problem = cidr_problem(to, network=True)
            if problem:
                yield Finding(f"{path}.to", f"{path}.to = {show(to)} is not a valid IPv4 network (CIDR): {problem}")
        if known(via):
            problem = ipv4_problem(via)
            if problem:
                yield Finding(f"{path}.via", f"{path}.via = {show(via)} is not a valid IPv4 address: {problem}")


def check_nameservers(s: Subject) -> Iterator[Finding]:
    """Each nameserver is an IP address (IPv4 or IPv6)."""
    servers = s.get("nameservers")
    if not known(servers):
        return
    for i, server in enumerate(servers):
        if not known(server):
            continue
        try:
            ipaddress.ip_address(server)
        except ValueError:
            yield Finding(f"nameservers[{i}]", f"nameservers[{i}] = {show(server)} is not an IP address")


def check_forward_delay(s: Subject) -> Iterator[Finding]:
    """With STP on, the kernel accepts a forward delay of 2..30 seconds only."""
    delay, stp = s.get("forward_delay"), s.get("stp")
    if known(delay) and stp is True and not 2 <= delay <= 30:
        yield Finding("forward_delay", f"forward_delay = {show(delay)} is out of range: with stp = true "
                                       "the kernel accepts 2..30 seconds")




def check_netplan_only(s: Subject) -> Iterator[Finding]:
    """dhcp4 and nameservers need the netplan provider (the kernel runs no DHCP client)."""
    if s.provider_type == "netplan":
        return
    for key in _NETPLAN_ONLY:
        if s.get(key) is not None:
            yield Finding(key, f"{key} needs provider = \"netplan\" (this {s.inst.type} uses {show(s.inst.provider)}): "
                               "the kernel alone runs no DHCP client and keeps no resolver settings")


_NETPLAN_ONLY = ("dhcp4", "nameservers")


def _interface_taken(claim: Claim, _earlier: Claim, other: str) -> str:
    return (f"interface name {show(claim.key)}{claim.note} is already used by {other}; "
            "two objects cannot share an interface name")


def _port_taken(claim: Claim, _earlier: Claim, other: str) -> str:
    return (f"{claim.path} = {show(claim.key)} is already a port of {other}; "
            "an interface can be enslaved to one bridge only")


def interface_claim(path: str, name: str, how: str = "") -> Claim:
    """The claim of an interface name (network bridges, bridges and vlans share
    one namespace per scope); ``how`` says where a defaulted name came from."""
    return Claim("interface name", name, path, _interface_taken, note=how)


def bridge_claims(s: Subject) -> Iterator[Claim]:
    """A bridge's interface name and each of its ports (enslaved to one bridge only)."""
    name = bridge_name(s)
    if known(name):
        yield interface_claim("name", name, "" if s.get("name") is not None else " (the block label)")
    ports = s.get("interfaces")
    if not known(ports):
        return
    for i, port in enumerate(ports):
        if known(port):
            yield Claim("bridge port", port, f"interfaces[{i}]", _port_taken)


def vlan_claims(s: Subject) -> Iterator[Claim]:
    name = vlan_name(s)
    if name is not None:
        yield interface_claim("name", name, "" if s.get("name") is not None else " (the default <link>.<id>)")


BRIDGE_RULES = (check_netplan_only, check_bridge_names, check_addresses, check_routes, check_nameservers,
                check_forward_delay)
VLAN_RULES = (check_netplan_only, check_vlan_names, check_addresses, check_nameservers)
