"""Semantic rules of ``port_forward`` (SPEC §3)."""
from __future__ import annotations

from typing import Iterator

from .formats import cidr_problem, ipv4_problem, port_range
from .link_rules import ifname_finding
from .subject import Finding, Subject, known, show


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
