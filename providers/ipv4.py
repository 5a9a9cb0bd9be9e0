"""IPv4 arithmetic on plain integers for the validation rules.

The rules look at tens of thousands of addresses in a large configuration;
``ipaddress`` objects cost microseconds each to build, integers almost nothing.
:class:`Subnet` prints exactly as :class:`ipaddress.IPv4Network` does, so messages
read the same.
"""
from __future__ import annotations

import re
from socket import inet_aton

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_ALL = 0xFFFFFFFF


def is_dotted_quad(text: str) -> bool:
    """A well-formed dotted-quad IPv4 address (decimal 0..255, no leading zeros)."""
    return _DOTTED.fullmatch(text) is not None


def to_int(text: str) -> int:
    """A dotted quad (already checked well-formed) as a 32-bit integer."""
    return int.from_bytes(inet_aton(text), "big")


def parse(text) -> int | None:
    """The integer of a well-formed dotted quad; None for anything else."""
    if isinstance(text, str) and _DOTTED.fullmatch(text) is not None:
        return int.from_bytes(inet_aton(text), "big")
    return None


def to_text(n: int) -> str:
    return f"{n >> 24}.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


class Subnet:
    """An IPv4 network as integers: ``addr in subnet`` takes an integer address."""

    __slots__ = ("network", "broadcast", "prefixlen")

    def __init__(self, address: int, prefixlen: int):
        mask = (_ALL << (32 - prefixlen)) & _ALL
        self.network = address & mask
        self.broadcast = self.network | (~mask & _ALL)
        self.prefixlen = prefixlen

    def __contains__(self, addr: int) -> bool:
        return self.network <= addr <= self.broadcast

    def __str__(self) -> str:
        return f"{to_text(self.network)}/{self.prefixlen}"

    def __repr__(self) -> str:
        return f"Subnet({self})"

    def first_host(self) -> int:
        """What ``next(IPv4Network.hosts())`` gives (/31 and /32: the network address)."""
        return self.network + 1 if self.prefixlen < 31 else self.network
