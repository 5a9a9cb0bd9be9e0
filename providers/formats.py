"""Parsers for the textual formats in resource attributes: IPv4 addresses and
CIDRs, MAC addresses, interface names, port ranges and sysctl keys.

Each ``*_problem`` function returns None when the text is fine, otherwise a short
reason meant to follow "is not a valid ...:" in a message. Pure functions only.
"""
from __future__ import annotations

import ipaddress
import re

from kvmnet.providers.ipv4 import is_dotted_quad

IFNAMSIZ = 16                 # the kernel's buffer, NUL included: at most 15 bytes
_MAC = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
_SYSCTL_SEGMENT = re.compile(r"^[A-Za-z0-9_-]+$")
_PROC_SYS = "/proc/sys/"
_KERNEL_SPACE = " \t\n\v\f\r"  # the kernel's isspace()


def ipv4_problem(text: str) -> str | None:
    """Why ``text`` is not a dotted-quad IPv4 address (None when it is one)."""
    if isinstance(text, str) and is_dotted_quad(text):
        return None
    if "/" in text:
        return "it has a /prefix; give the address alone"
    parts = text.split(".")
    if len(parts) != 4:
        return "an IPv4 address is four numbers 0..255 separated by dots"
    for p in parts:
        if not (p.isascii() and p.isdigit()):
            return f"{p!r} is not a number 0..255" if p else "it has an empty part"
        if int(p) > 255:
            return f"{p} is not a number 0..255"
        if len(p) > 1 and p[0] == "0":
            return f"{p!r} has a leading zero (ambiguous: octal or decimal)"
    return None


def prefix_problem(text: str) -> str | None:
    if not (text.isascii() and text.isdigit()) or int(text) > 32:
        return f"the prefix /{text} is not a number 0..32"
    return None


def cidr_problem(text: str, *, network: bool = False) -> str | None:
    """Why ``text`` is not ``A.B.C.D/N``; with ``network``, host bits must be zero."""
    addr, slash, prefix = text.partition("/")
    if not slash:
        return "it has no /prefix (write it as A.B.C.D/N)"
    problem = ipv4_problem(addr) or prefix_problem(prefix)
    if problem:
        return problem
    if network:
        net = ipaddress.IPv4Network(text, strict=False)
        if str(net.network_address) != addr:
            return f"it has host bits set; the network is {net}"
    return None


def netmask_problem(text: str) -> str | None:
    problem = ipv4_problem(text)
    if problem:
        return problem
    bits = int(ipaddress.IPv4Address(text))
    inverted = bits ^ 0xFFFFFFFF
    if inverted & (inverted + 1):
        return "its one-bits are not contiguous (e.g. 255.255.255.0)"
    return None


def netmask_prefix(text: str) -> int:
    return ipaddress.IPv4Network(f"0.0.0.0/{text}").prefixlen


def mac_problem(text: str) -> str | None:
    """Why ``text`` is not a usable unicast MAC address."""
    if not _MAC.match(text):
        return "a MAC address is six hex pairs separated by colons, e.g. 52:54:00:12:34:56"
    first = int(text[:2], 16)
    if first & 1:
        return (f"it is a multicast address (the low bit of the first octet {text[:2]} is set); "
                "a NIC needs a unicast MAC such as 52:54:00:xx:xx:xx")
    if text.replace(":", "").strip("0") == "":
        return "the all-zero address is not a usable MAC"
    return None


def ifname_problem(text: str) -> str | None:
    """Why ``text`` is not a Linux interface name (the kernel's dev_valid_name rules)."""
    if text == "":
        return "it is empty"
    if len(text.encode("utf-8")) >= IFNAMSIZ:
        return f"it is {len(text.encode('utf-8'))} characters long; the kernel allows at most {IFNAMSIZ - 1}"
    if text in (".", ".."):
        return f"{text!r} is reserved"
    for ch in text:
        if ch in "/:" or ch in _KERNEL_SPACE or ch == "\0":
            return f"it contains {ch!r}; '/', ':', whitespace and NUL are not allowed"
        if ch == "%":
            return "it contains '%', which the kernel treats as a name template (eth%d)"
    return None


def port_range(value) -> tuple[int, int] | None:
    """(first, last) of a host_port given as a number, "N" or "N-M"; None if malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return (int(value), int(value)) if float(value).is_integer() else None
    text = str(value).strip()
    first, dash, last = text.partition("-")
    if not (first.isascii() and first.isdigit()):
        return None
    if not dash:
        return int(first), int(first)
    if not (last.isascii() and last.isdigit()):
        return None
    return int(first), int(last)


def sysctl_key_problem(key: str) -> str | None:
    """Why ``key`` is not a dotted sysctl name such as net.ipv4.ip_forward."""
    if key.startswith(_PROC_SYS):
        return f"it is a path; write the dotted name {key[len(_PROC_SYS):].strip('/').replace('/', '.')}"
    if "/" in key:
        return "it contains '/'; write the dotted name (e.g. net.ipv4.ip_forward, not net/ipv4/ip_forward)"
    segments = key.split(".")
    if len(segments) < 2:
        return "a sysctl key has at least two dot-separated parts (e.g. net.ipv4.ip_forward)"
    for seg in segments:
        if seg == "":
            return "it has an empty part (two dots in a row, or a leading or trailing dot)"
        if not _SYSCTL_SEGMENT.match(seg):
            return f"the part {seg!r} may only contain letters, digits, '_' and '-'"
    return None
