"""Terraform's cidrhost, cidrsubnet and cidrnetmask, on the ipaddress module."""
from __future__ import annotations

import ipaddress
from functools import lru_cache

from .errors import ExprError


@lru_cache(maxsize=4096)
def _parse_cidr(prefix: str):
    try:
        return ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        raise ExprError(f'invalid CIDR expression "{prefix}"') from None


def cidrhost(prefix: str, hostnum: int) -> str:
    """Address number ``hostnum`` in ``prefix``; negative numbers count from the end."""
    net = _parse_cidr(prefix)
    size = net.num_addresses
    n = hostnum + size if hostnum < 0 else hostnum
    if not 0 <= n < size:
        raise ExprError(f"prefix of {net.prefixlen} bits cannot accommodate a host "
                        f"numbered {hostnum}")
    return str(net.network_address + n)


def cidrsubnet(prefix: str, newbits: int, netnum: int) -> str:
    net = _parse_cidr(prefix)
    if newbits < 0:
        raise ExprError("newbits must not be negative")
    new_len = net.prefixlen + newbits
    if new_len > net.max_prefixlen:
        raise ExprError(f"insufficient address space to extend prefix of {net.prefixlen} "
                        f"by {newbits}")
    if not 0 <= netnum < (1 << newbits):
        raise ExprError(f"prefix extension of {newbits} does not accommodate a subnet "
                        f"numbered {netnum}")
    base = int(net.network_address) + (netnum << (net.max_prefixlen - new_len))
    return f"{type(net.network_address)(base)}/{new_len}"


def cidrnetmask(prefix: str) -> str:
    net = _parse_cidr(prefix)
    if net.version != 4:
        raise ExprError("IPv6 addresses cannot have a netmask")
    return str(net.netmask)
