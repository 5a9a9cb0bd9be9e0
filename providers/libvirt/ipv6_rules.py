"""Plan-time rules for a network's IPv6 ``ip`` blocks: the combinations libvirt 9.0
refuses (at define, or when dnsmasq starts), so that a plan never accepts what apply
cannot make (issue 11, items 1 and 3).

Each rule was found by defining the combination against the real libvirtd
(tests/real/test_libvirt_ipv6_rules.py shows libvirt refusing every one of them):

- an IPv6 address needs ``family = "ipv6"`` ("no family specified for non-IPv4
  address"), and ``family`` must match the address ("Family 'ipv6' specified for
  non-IPv6 address", "ipv4 family specified for non-IPv4 address");
- an IPv6 block takes ``prefix`` (0-128; libvirt's default 64), never ``netmask``
  (libvirt's schema);
- no ``tftp`` in an IPv6 block ("Unsupported <tftp> element in an IPv6 element");
- DHCPv6 hosts are named by ``id`` (DUID) or ``name``, never ``mac`` ("Invalid to
  specify MAC address ... IPv6 static host definition"), and by one of them
  (libvirt's schema);
- DHCP on one IPv6 block per network ("Multiple IPv6 dhcp sections found");
- DHCPv6 ranges: IPv6 addresses, start <= end, inside the block's subnet
  ("mismatch of address family in range", "start larger than end", "not entirely
  within network"); DHCPv6 needs a prefix of at least 64 (dnsmasq refuses to start
  on a shorter one, after libvirt accepted the definition).

Paths are named as the user wrote them (v1's ``dhcp_range`` or ``dhcp { range }``).
"""
from __future__ import annotations

import ipaddress
from typing import Iterator

from kvmnet.providers.libvirt.network_rules import dhcp_list
from kvmnet.sdk.rules import Finding, Subject, known, show
from kvmnet.sdk.values import UNKNOWN


def _ips(attrs: dict) -> list[tuple[int, dict]]:
    ips = attrs.get("ip")
    if isinstance(ips, dict):
        ips = [ips]
    if not isinstance(ips, list):
        return []
    return [(i, ip) for i, ip in enumerate(ips) if isinstance(ip, dict)]


def _v6(value) -> ipaddress.IPv6Address | None:
    if not isinstance(value, str):
        return None
    try:
        return ipaddress.IPv6Address(value)
    except ValueError:
        return None


def _looks_v6(ip: dict) -> bool:
    address = ip.get("address")
    return ip.get("family") == "ipv6" or (known(address) and ":" in str(address))


def _v6_of(attrs: dict) -> list[tuple[int, dict]]:
    return [(i, ip) for i, ip in _ips(attrs) if _looks_v6(ip)]


def _v6_blocks(s: Subject) -> list[tuple[int, dict]]:
    """(index, block) of each IPv6 ``ip`` block (by family or address), found once
    per instance for the rules below."""
    return s.memo("ipv6 blocks", _v6_of)


def _has_dhcp(ip: dict) -> bool:
    return any(ip.get(k) is not None for k in ("dhcp", "dhcp_range", "dhcp_host"))


def check_ip_family(s: Subject) -> Iterator[Finding]:
    """``family`` given for an IPv6 address, and matching it."""
    for i, ip in _ips(s.attrs):
        address, family = ip.get("address"), ip.get("family")
        if not known(address) or family is UNKNOWN:
            continue
        base = f"ip[{i}]"
        v6 = ":" in str(address)
        if v6 and family is None:
            yield Finding(f"{base}.family", f"{base}.address = {show(address)} is an IPv6 address: give "
                                            f'family = "ipv6" (libvirt refuses an IPv6 address without it)')
        elif v6 and family == "ipv4":
            yield Finding(f"{base}.family", f'{base} has family = "ipv4" but address = {show(address)} '
                                            "is an IPv6 address")
        elif not v6 and family == "ipv6":
            yield Finding(f"{base}.family", f'{base} has family = "ipv6" but address = {show(address)} '
                                            "is not an IPv6 address")


def check_ipv6_block(s: Subject) -> Iterator[Finding]:
    """An IPv6 block: a valid IPv6 address, prefix rather than netmask, no tftp,
    DHCPv6 hosts without MAC."""
    for i, ip in _v6_blocks(s):
        base = f"ip[{i}]"
        suffix, hosts = dhcp_list(ip, "host")
        address = ip.get("address")
        if known(address) and ":" in str(address) and _v6(address) is None:
            yield Finding(f"{base}.address", f"{base}.address = {show(address)} is not a valid IPv6 address")
        if ip.get("netmask") is not None:
            yield Finding(f"{base}.netmask", f"{base} is IPv6: give prefix (e.g. prefix = 64), not netmask")
        if ip.get("tftp") is not None:
            yield Finding(f"{base}.tftp", f"tftp is not allowed in an IPv6 block ({base}): libvirt serves "
                                          "TFTP on an IPv4 address only")
        for j, host in hosts:
            if host.get("mac") is not None:
                yield Finding(f"{base}.{suffix}[{j}].mac",
                              f"{base}.{suffix}[{j}] is a DHCPv6 host: name it by id (its DUID) or name, "
                              "not mac (libvirt refuses a MAC in an IPv6 static host)")
            elif host.get("id") is None and host.get("name") is None:
                yield Finding(f"{base}.{suffix}[{j}]",
                              f"{base}.{suffix}[{j}] needs an id (the guest's DUID) or a name to identify "
                              "the guest")


def check_one_ipv6_dhcp(s: Subject) -> Iterator[Finding]:
    """libvirt serves DHCPv6 on one IPv6 address per network ("Multiple IPv6 dhcp sections found")."""
    first = None
    for i, ip in _v6_blocks(s):
        if not _has_dhcp(ip):
            continue
        if first is None:
            first = i
        else:
            yield Finding(f"ip[{i}]", f"ip[{i}] has DHCP, but so does ip[{first}]: libvirt serves DHCPv6 on "
                                      "one IPv6 address per network")


def _subnet(ip: dict) -> ipaddress.IPv6Network | None:
    address, prefix = _v6(ip.get("address")), ip.get("prefix", 64)   # libvirt's default
    if address is None or not known(prefix) or not 0 <= int(prefix) <= 128:
        return None
    return ipaddress.IPv6Network(f"{address}/{int(prefix)}", strict=False)


def check_ipv6_dhcp_ranges(s: Subject) -> Iterator[Finding]:
    """DHCPv6 ranges: IPv6 addresses, start <= end, inside the block's subnet; a
    prefix of at least 64 (dnsmasq's limit for DHCPv6)."""
    for i, ip in _v6_blocks(s):
        base, subnet = f"ip[{i}]", _subnet(ip)
        suffix, ranges = dhcp_list(ip, "range")
        prefix = ip.get("prefix")
        if ranges and known(prefix) and int(prefix) < 64:
            yield Finding(f"{base}.prefix", f"{base}.prefix = {prefix} is too short for DHCPv6: dnsmasq serves "
                                            "DHCPv6 ranges only on a prefix of 64 or longer")
        for j, rng in ranges:
            path = f"{base}.{suffix}[{j}]"
            ends = {}
            for end_name in ("start", "end"):
                value = rng.get(end_name)
                if not known(value):
                    continue
                addr = _v6(value)
                if addr is None:
                    yield Finding(f"{path}.{end_name}", f"{path}.{end_name} = {show(value)} is not an IPv6 "
                                                        f"address, but {base} is IPv6")
                    continue
                ends[end_name] = addr
                if subnet is not None and addr not in subnet:
                    yield Finding(f"{path}.{end_name}",
                                  f"{path}.{end_name} = {show(value)} is outside the network's subnet {subnet}")
            if len(ends) == 2 and ends["start"] > ends["end"]:
                yield Finding(path, f"{path} is reversed: start {ends['start']} is after end {ends['end']}")


RULES = (check_ip_family, check_ipv6_block, check_one_ipv6_dhcp, check_ipv6_dhcp_ranges)
