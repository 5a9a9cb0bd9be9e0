"""Rules and claims of ``port_forward`` (SPEC §3, §4)."""
from __future__ import annotations

from typing import Iterator

from kvmnet.providers import ipv4
from kvmnet.providers.formats import cidr_problem, ipv4_problem, port_range
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


def check_to_address(s: Subject) -> Iterator[Finding]:
    value = s.get("to_address")
    if known(value):
        problem = ipv4_problem(value)
        if problem:
            yield Finding("to_address", f"to_address = {show(value)} is not a valid IPv4 address: {problem}")


def check_source(s: Subject) -> Iterator[Finding]:
    value = s.get("source")
    if known(value):
        problem = cidr_problem(value, network=True)
        if problem:
            yield Finding("source", f"source = {show(value)} is not a valid IPv4 network (CIDR, e.g. 192.168.1.0/24 "
                                    f"or 192.168.1.7/32): {problem}")


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
    """The host ports of one protocol, on one input interface or (None) on all."""
    proto, iface, ports = s.get("protocol"), s.get("in_interface"), host_ports(s)
    if not known(proto) or iface is not None and not known(iface) or ports is None:
        return
    yield Claim(f"host port/{proto}", iface, "host_port", _port_taken, span=ports, note=proto)


def forward_lookups(s: Subject) -> Iterator[Lookup]:
    """With ``network`` set, ``to_address`` lies in the subnet that network offers."""
    name, to = s.get("network"), s.get("to_address")
    address = ipv4.parse(to) if known(name) else None
    if address is None:
        return

    def check(subnet, network_address: str) -> str | None:
        if subnet is not None and address not in subnet:
            return (f"to_address = {show(to)} is not in the subnet {subnet} of network "
                    f"{show(name)} ({network_address})")
        return None
    yield Lookup(NETWORK_SUBNET, name, "to_address", check)
