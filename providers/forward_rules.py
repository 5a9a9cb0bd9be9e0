"""Rules and claims of ``port_forward`` (SPEC §3, §4).

A forward is IPv4 or IPv6 by its ``to_address``; ``source`` must be of the same
family, and host ports are claimed per protocol and family (``tcp/8080`` and
``tcp6/8080`` are different forwards).
"""
from __future__ import annotations

import ipaddress
from typing import Iterator

from kvmnet.providers.formats import cidr_problem, ipv4_problem, port_range
from kvmnet.providers.forwarding import unusable_destination
from kvmnet.providers.link_rules import ifname_finding
from kvmnet.sdk.rules import Finding, Subject, known, show
from kvmnet.sdk.types import Claim, Lookup

# what a libvirt network offers under its name (see providers/libvirt/types.py)
NETWORK_SUBNET = "network subnet"


def host_ports(s: Subject) -> tuple[int, int] | None:
    """(first, last) host port of a forward, when known and well-formed."""
    value = s.get("host_port")
    if not known(value):
        return None
    rng = port_range(value)
    if rng is None or not (1 <= rng[0] <= rng[1] <= 65535):
        return None
    return rng


def check_host_port(s: Subject) -> Iterator[Finding]:
    """A string host_port is "N" or "N-M" with 1 <= N <= M <= 65535."""
    value = s.get("host_port")
    if not known(value) or not isinstance(value, str):
        return
    rng = port_range(value)
    if rng is None:
        yield Finding("host_port", f'host_port = {show(value)} is not a port number 1..65535 or a range "N-M"')
        return
    first, last = rng
    for port in (first, last):
        if not 1 <= port <= 65535:
            yield Finding("host_port", f"host_port = {show(value)}: port {port} is out of range: must be 1..65535")
            return
    if first > last:
        yield Finding("host_port", f"host_port = {show(value)} is reversed: the first port must be <= the last")


def family_of(value) -> int | None:
    """6 for a known text with a colon (meant as IPv6), 4 for other known text, else None."""
    if not known(value) or not isinstance(value, str):
        return None
    return 6 if ":" in value else 4


def _ipv6_problem(text: str) -> str | None:
    try:
        ipaddress.IPv6Address(text)
    except ValueError as e:
        return str(e)
    return None


def check_to_address(s: Subject) -> Iterator[Finding]:
    value = s.get("to_address")
    family = family_of(value)
    if family is None:
        return
    problem = _ipv6_problem(value) if family == 6 else ipv4_problem(value)
    if problem:
        yield Finding("to_address", f"to_address = {show(value)} is not a valid IPv{family} address: {problem}")
        return
    # IPv6 only: the IPv4 checks stay the cheap text checks they were (large
    # configurations); the provider's plan-time check refuses 127.0.0.1 and the like
    unusable = unusable_destination(value) if family == 6 else None
    if unusable:
        yield Finding("to_address", f"to_address = {show(value)} cannot receive a forward: it is {unusable}")


def _ipv6_network_problem(text: str) -> str | None:
    if "/" not in text:
        return "it has no /prefix (write it as ADDRESS/N)"
    try:
        ipaddress.IPv6Network(text, strict=True)
    except ValueError as e:
        return str(e)
    return None


def check_source(s: Subject) -> Iterator[Finding]:
    """``source`` is a network of the forward's address family (by ``to_address``)."""
    value = s.get("source")
    if not known(value) or not isinstance(value, str):
        return
    family = 6 if ":" in value else 4
    if family == 6:
        problem = _ipv6_network_problem(value)
        if problem:
            yield Finding("source", f"source = {show(value)} is not a valid IPv6 network (CIDR, e.g. "
                                    f"2001:db8::/64): {problem}")
            return
    else:
        problem = cidr_problem(value, network=True)
        if problem:
            yield Finding("source", f"source = {show(value)} is not a valid IPv4 network (CIDR, e.g. "
                                    f"192.168.1.0/24 or 192.168.1.7/32): {problem}")
            return
    to_family = family_of(s.get("to_address"))
    if to_family is not None and to_family != family:
        yield Finding("source", f"source = {show(value)} is an IPv{family} network, but to_address = "
                                f"{show(s.get('to_address'))} is IPv{to_family}: a forward is of one "
                                f"address family (write a second forward for the other)")


def check_in_interface(s: Subject) -> Iterator[Finding]:
    yield from ifname_finding("in_interface", s.get("in_interface"))


RULES = (check_host_port, check_to_address, check_source, check_in_interface)


def _ports_text(ports) -> str:
    first, last = ports
    return str(first) if first == last else f"{first}-{last}"


def _port_taken(claim: Claim, earlier: Claim, other: str) -> str:
    return (f"host port {_ports_text(claim.span)}/{claim.note} is already forwarded by {other} "
            f"(host_port {_ports_text(earlier.span)})")


def forward_claims(s: Subject) -> Iterator[Claim]:
    """The host ports of one protocol and address family, on one input interface or
    (None) on all. An IPv6 forward claims ``host port/tcp6``: IPv4 and IPv6 packets
    to one port are told apart, so ``tcp/8080`` and ``tcp6/8080`` coexist (an
    unknown ``to_address`` counts as IPv4, as its import ID does)."""
    proto, iface, ports = s.get("protocol"), s.get("in_interface"), host_ports(s)
    if not known(proto) or iface is not None and not known(iface) or ports is None:
        return
    kind = f"{proto}6" if family_of(s.get("to_address")) == 6 else proto
    yield Claim(f"host port/{kind}", iface, "host_port", _port_taken, span=ports, note=kind)


def forward_lookups(s: Subject) -> Iterator[Lookup]:
    """With ``network`` set, ``to_address`` lies in one of the subnets of its family
    that network offers (its IPv4 and IPv6 ``ip`` blocks). A network whose config
    gives no subnet of that family (its addresses kept as found live) checks nothing."""
    name, to = s.get("network"), s.get("to_address")
    if not known(name) or not known(to):
        return
    try:
        address = ipaddress.ip_address(str(to))
    except ValueError:
        return

    def check(subnets, network_address: str) -> str | None:
        mine = [n for n in subnets or () if n.version == address.version]
        if mine and not any(address in n for n in mine):
            return (f"to_address = {show(to)} is not in the subnet {' or '.join(map(str, mine))} of network "
                    f"{show(name)} ({network_address})")
        return None
    yield Lookup(NETWORK_SUBNET, name, "to_address", check)
