"""IP network functions: cidrhost cidrnetmask cidrsubnet cidrsubnets, on
integers as Terraform's go-cidr does them."""
from __future__ import annotations

import ipaddress
from functools import lru_cache

from ..errors import ExprError
from . import _args as A


@lru_cache(maxsize=4096)
def parse_cidr(prefix: str):
    """An address with a prefix length ("10.0.0.5/24"); host bits may be set, as in
    Go's ParseCIDR, which also refuses a bare address."""
    if "/" not in prefix:
        raise ExprError(f'invalid CIDR expression: invalid CIDR address: {prefix}')
    try:
        return ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        raise ExprError(f'invalid CIDR expression: invalid CIDR address: {prefix}') from None


def _address(net, n: int) -> str:
    return str(type(net.network_address)(n))


def cidrhost(prefix: str, hostnum: int) -> str:
    """Address number ``hostnum`` in ``prefix``; negative numbers count from the end."""
    net = parse_cidr(prefix)
    size = net.num_addresses
    n = hostnum + size if hostnum < 0 else hostnum
    if not 0 <= n < size:
        raise ExprError(f"prefix of {net.prefixlen} bits cannot accommodate a host "
                        f"numbered {hostnum}")
    return _address(net, int(net.network_address) + n)


def cidrsubnet(prefix: str, newbits: int, netnum: int) -> str:
    net = parse_cidr(prefix)
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
    return f"{_address(net, base)}/{new_len}"


def cidrnetmask(prefix: str) -> str:
    net = parse_cidr(prefix)
    if net.version != 4:
        raise ExprError("IPv6 addresses cannot have a netmask")
    return str(net.netmask)


def cidrsubnets(prefix: str, newbits: list[int]) -> list[str]:
    """Consecutive subnets of the given extra prefix bits, each aligned to its own
    size right after the previous one (go-cidr's PreviousSubnet/NextSubnet)."""
    net = parse_cidr(prefix)
    bits, start_len = net.max_prefixlen, net.prefixlen
    space = 1 << bits
    base = int(net.network_address)
    end = base + (1 << (bits - start_len))
    if not newbits:
        return A.as_list([])

    def masked(n: int, length: int) -> int:
        return n & ~((1 << (bits - length)) - 1) & (space - 1)

    first = start_len + newbits[0]
    if first > bits:
        raise ExprError(f"would extend prefix to {first} bits, which is too long for an "
                        f"IPv{net.version} address")
    cur, cur_len = masked((base - 1) % space, first), first
    out = []
    for i, nb in enumerate(newbits):
        length = start_len + nb
        if nb < 1:
            raise A.bad("newbits", f"must extend prefix by at least one bit (element {i})")
        if nb > 32:
            raise A.bad("newbits", "may not extend prefix by more than 32 bits")
        if length > bits:
            raise ExprError(f"would extend prefix to {length} bits, which is too long for an "
                            f"IPv{net.version} address")
        cur_last = cur + (1 << (bits - cur_len)) - 1
        nxt = (masked(cur_last, length) + (1 << (bits - length))) % space
        if nxt == 0 or not base <= nxt < end:
            raise ExprError(f"not enough remaining address space for a subnet with a prefix "
                            f"of {length} bits after {_address(net, cur)}/{cur_len}")
        cur, cur_len = nxt, length
        out.append(f"{_address(net, cur)}/{cur_len}")
    return A.as_list(out)


def _cidrhost(prefix, hostnum):
    return cidrhost(A.string(prefix, "prefix"), A.whole(hostnum, "hostnum"))


def _cidrnetmask(prefix):
    return cidrnetmask(A.string(prefix, "prefix"))


def _cidrsubnet(prefix, newbits, netnum):
    return cidrsubnet(A.string(prefix, "prefix"), A.whole(newbits, "newbits"),
                      A.whole(netnum, "netnum"))


def _cidrsubnets(prefix, *newbits):
    return cidrsubnets(A.string(prefix, "prefix"), [A.whole(n, "newbits") for n in newbits])


FUNCTIONS: list[tuple] = [
    ("cidrhost", _cidrhost, 2, 2, {}),
    ("cidrnetmask", _cidrnetmask, 1, 1, {}),
    ("cidrsubnet", _cidrsubnet, 3, 3, {}),
    ("cidrsubnets", _cidrsubnets, 1, None, {}),
]
