"""Semantic rules of the ``network`` type: the ip blocks, DHCP ranges and static
hosts against their subnet, and the mode-specific rules (SPEC §3, §4).

Rules see the attributes as configured, in either shape: v1's shorthands
(``mode``, ``bridge = "virbr1"``, ``ip { dhcp_range dhcp_host }``) or the full
blocks (``forward { mode }``, ``bridge { name }``, ``ip { dhcp { range host } }``);
the helpers below read both and name paths as the user wrote them.
"""
from __future__ import annotations

import ipaddress
from typing import Any, Iterator

from kvmnet.providers import ipv4
from kvmnet.providers.formats import ipv4_problem, mac_problem, netmask_prefix, netmask_problem
from kvmnet.providers.ipv4 import Subnet
from kvmnet.providers.link_rules import ifname_finding
from kvmnet.sdk.rules import Finding, Subject, blocks, known, show
from kvmnet.sdk.values import UNKNOWN

IP = "ip[0]"  # the path of the first ip block
_OVS_PATTERN = (
    "on a plain Linux bridge, tag traffic with a vlan resource instead: "
    "a vlan interface (vlan { link = \"eth0\", id = N }) -> a bridge enslaving it "
    "(bridge { interfaces = [<the vlan's name>] }) -> a bridge-mode network on that bridge "
    "(network { mode = \"bridge\", bridge = <the bridge's name> })"
)


def _one(v) -> dict | None:
    """A single block as configured (a list of one dict) or as a dict."""
    if isinstance(v, list) and v and isinstance(v[0], dict):
        return v[0]
    return v if isinstance(v, dict) else None


def mode_of(attrs: dict) -> Any:
    """v1 ``mode`` or ``forward { mode }`` (libvirt's default nat); None when neither is set."""
    if attrs.get("mode") is not None:
        return attrs["mode"]
    fwd = attrs.get("forward")
    if fwd is UNKNOWN:
        return UNKNOWN
    one = _one(fwd)
    if one is None:
        return None
    return one.get("mode", "nat") if one.get("mode") is not None else "nat"


def _value_or_block(attrs: dict, name: str, key: str) -> Any:
    """v1's ``NAME = value`` or the block ``NAME { KEY = value }``."""
    v = attrs.get(name)
    if isinstance(v, (list, dict)):
        one = _one(v)
        return one.get(key) if one else None
    return v


def bridge_of(attrs: dict) -> Any:
    """v1 ``bridge = "name"`` or ``bridge { name }``."""
    return _value_or_block(attrs, "bridge", "name")


def virtualport_of(attrs: dict) -> Any:
    """v1 ``virtualport = "type"`` or ``virtualport { type }``."""
    return _value_or_block(attrs, "virtualport", "type")


def _is_v6(ip: dict) -> bool:
    address = ip.get("address")
    return ip.get("family") == "ipv6" or (known(address) and ":" in str(address))


def ipv4_blocks(attrs: dict) -> list[tuple[int, dict]]:
    """(index, block) of each IPv4 ``ip`` block (IPv6 ones have rules of their own)."""
    ips = attrs.get("ip")
    if isinstance(ips, dict):
        ips = [ips]
    if not isinstance(ips, list):
        return []
    return [(i, ip) for i, ip in enumerate(ips) if isinstance(ip, dict) and not _is_v6(ip)]


def dhcp_list(ip: dict, section: str) -> tuple[str, list[tuple[int, dict]]]:
    """(path suffix, entries) of an ip block's DHCP ``range``/``host`` in either shape."""
    v1 = f"dhcp_{section}"
    if ip.get(v1) is not None:
        return v1, blocks(ip, v1)
    dhcp = ip.get("dhcp")
    if isinstance(dhcp, list):
        return f"dhcp[0].{section}", blocks(dhcp[0] if dhcp and isinstance(dhcp[0], dict) else None, section)
    return f"dhcp.{section}", blocks(dhcp if isinstance(dhcp, dict) else None, section)


def _subnet(ip: dict | None) -> Subnet | None:
    if ip is None:
        return None
    address, prefix, netmask = ip.get("address"), ip.get("prefix"), ip.get("netmask")
    if not known(address) or ipv4_problem(address):
        return None
    if known(prefix):
        bits = int(prefix)
    elif known(netmask) and not netmask_problem(netmask):
        bits = netmask_prefix(netmask)
    else:
        return None
    if bits > 32:
        return None
    return Subnet(ipv4.to_int(address), bits)


def network_subnet(attrs: dict) -> Subnet | None:
    """The subnet the first IPv4 ip block defines (address + prefix or netmask), if known and valid."""
    found = ipv4_blocks(attrs)
    return _subnet(found[0][1]) if found else None


def all_subnets(attrs: dict) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    """The subnet of every ip block, IPv4 and IPv6 (address + prefix or netmask); None
    while a block's address or length is unknown, invalid blocks left out (their
    rules report them)."""
    ips = attrs.get("ip")
    if ips is UNKNOWN:
        return None
    out: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for ip in ips if isinstance(ips, list) else [ips] if isinstance(ips, dict) else []:
        if not isinstance(ip, dict):
            return None
        address = ip.get("address")
        length = ip.get("prefix") if ip.get("prefix") is not None else ip.get("netmask")
        if address is UNKNOWN or length is UNKNOWN:
            return None
        try:
            out.append(ipaddress.ip_network(f"{address}/{length}", strict=False))
        except ValueError:
            continue
    return out


IPv4Block = tuple[int, dict, "Subnet | None", "int | None"]


def _ipv4_facts(attrs: dict) -> list[IPv4Block]:
    return [(i, ip, _subnet(ip), _gateway(ip)) for i, ip in ipv4_blocks(attrs)]


def ipv4_facts(s: Subject) -> list[IPv4Block]:
    """(index, block, subnet, gateway) of each IPv4 ``ip`` block, worked out once per
    instance for every rule and claim that reads them."""
    return s.memo("ipv4 blocks", _ipv4_facts)


def subnet_of(s: Subject) -> Subnet | None:
    """The network's (first IPv4) subnet, computed once per instance."""
    facts = ipv4_facts(s)
    return facts[0][2] if facts else None


def _gateway(ip: dict) -> int | None:
    """An ip block's own address as an integer."""
    address = ip.get("address")
    return ipv4.parse(address) if known(address) else None


def _special(subnet: Subnet, addr: int) -> str | None:
    """'the network address' / 'the broadcast address' when addr is one of them."""
    if subnet.prefixlen > 30:
        return None
    if addr == subnet.network:
        return "the network address"
    if addr == subnet.broadcast:
        return "the broadcast address"
    return None


def _shown(addr: int) -> str:
    """An integer address as a message shows it ("10.0.0.5", quoted)."""
    return show(ipv4.to_text(addr))


def _address(path: str, value) -> tuple[int | None, Finding | None]:
    """A known address value parsed, or the finding that says why it is not one."""
    if not known(value):
        return None, None
    n = ipv4.parse(value)
    if n is not None:
        return n, None
    problem = ipv4_problem(value)
    return None, Finding(path, f"{path} = {show(value)} is not a valid IPv4 address: {problem}")


def check_ip_block(s: Subject) -> Iterator[Finding]:
    """Each IPv4 ip block: address is an IPv4 host address; exactly one of prefix or netmask, valid."""
    for i, ip, subnet, gateway in ipv4_facts(s):
        yield from _check_ip(f"ip[{i}]", ip, subnet, gateway)


def _check_ip(base: str, ip: dict, subnet: Subnet | None, gateway: int | None) -> Iterator[Finding]:
    if gateway is None:         # (else the address parsed: nothing to say about it)
        _, bad = _address(f"{base}.address", ip.get("address"))
        if bad:
            yield bad
    prefix, netmask = ip.get("prefix"), ip.get("netmask")
    if prefix is not None and netmask is not None:
        yield Finding(f"{base}.netmask", f"{base} has both prefix and netmask: give one of them")
    elif prefix is None and netmask is None:
        yield Finding(base, f"{base} needs prefix (e.g. prefix = 24) or netmask (e.g. netmask = \"255.255.255.0\")")
    if known(prefix) and int(prefix) > 32:
        yield Finding(f"{base}.prefix", f"{base}.prefix = {prefix} is too long for an IPv4 address (at most 32)")
    if known(netmask):
        problem = netmask_problem(netmask)
        if problem:
            yield Finding(f"{base}.netmask", f"{base}.netmask = {show(netmask)} is not a valid netmask: {problem}")
    if subnet is not None and gateway is not None:
        special = _special(subnet, gateway)
        if special:
            yield Finding(f"{base}.address",
                          f"{base}.address = {show(ip['address'])} is {special} of {subnet}; "
                          f"the network's own (gateway) address must be a host address such as "
                          f"{ipv4.to_text(subnet.first_host())}")


def check_dhcp_ranges(s: Subject) -> Iterator[Finding]:
    """Each range: valid addresses, start <= end, inside the subnet, not covering the
    gateway or the network/broadcast address; ranges do not overlap each other."""
    for n, ip, subnet, gateway in ipv4_facts(s):
        yield from _check_ranges(f"ip[{n}]", ip, subnet, gateway)


def _check_ranges(base: str, ip: dict, subnet: Subnet | None, gateway: int | None) -> Iterator[Finding]:
    seen: list[tuple[int, int, str]] = []
    suffix, ranges = dhcp_list(ip, "range")
    for i, rng in ranges:
        path = f"{base}.{suffix}[{i}]"
        start, bad_start = _address(f"{path}.start", rng.get("start"))
        end, bad_end = _address(f"{path}.end", rng.get("end"))
        yield from (f for f in (bad_start, bad_end) if f)
        for end_name, addr in (("start", start), ("end", end)):
            if addr is None or subnet is None:
                continue
            if addr not in subnet:
                yield Finding(f"{path}.{end_name}",
                              f"{path}.{end_name} = {_shown(addr)} is outside the network's subnet {subnet}")
            elif _special(subnet, addr):
                yield Finding(f"{path}.{end_name}",
                              f"{path}.{end_name} = {_shown(addr)} is {_special(subnet, addr)} of {subnet}")
        if start is None or end is None:
            continue
        if start > end:
            yield Finding(path, f"{path} is reversed: start {ipv4.to_text(start)} is after end {ipv4.to_text(end)}")
            continue
        if gateway is not None and start <= gateway <= end:
            yield Finding(path, f"{path} ({ipv4.to_text(start)} - {ipv4.to_text(end)}) covers the network's own "
                                f"address {ipv4.to_text(gateway)} (ip.address); "
                                "start the range after it or end it before it")
        for other_start, other_end, other_path in seen:
            if start <= other_end and other_start <= end:
                yield Finding(path, f"{path} ({ipv4.to_text(start)} - {ipv4.to_text(end)}) overlaps {other_path} "
                                    f"({ipv4.to_text(other_start)} - {ipv4.to_text(other_end)})")
                break
        seen.append((start, end, path))


def check_dhcp_hosts(s: Subject) -> Iterator[Finding]:
    """Static hosts: a valid unicast MAC or a name; ip inside the subnet, not the
    gateway; no two hosts share an IP or a MAC."""
    for n, ip, subnet, gateway in ipv4_facts(s):
        yield from _check_hosts(f"ip[{n}]", ip, subnet, gateway)


def _check_hosts(base: str, ip: dict, subnet: Subnet | None, gateway: int | None) -> Iterator[Finding]:
    by_ip: dict[int, str] = {}
    by_mac: dict[str, str] = {}
    suffix, hosts = dhcp_list(ip, "host")
    for i, host in hosts:
        path = f"{base}.{suffix}[{i}]"
        mac, name = host.get("mac"), host.get("name")
        if mac is None and name is None:
            yield Finding(path, f"{path} needs a mac or a name to identify the guest")
        if known(mac):
            problem = mac_problem(mac)
            if problem:
                yield Finding(f"{path}.mac", f"{path}.mac = {show(mac)} is not a valid MAC address: {problem}")
            elif mac.lower() in by_mac:
                yield Finding(f"{path}.mac",
                              f"{path}.mac = {show(mac)} is already used by {by_mac[mac.lower()]}; "
                              "each static host needs its own MAC")
            else:
                by_mac[mac.lower()] = path
        addr, bad = _address(f"{path}.ip", host.get("ip"))
        if bad:
            yield bad
        if addr is None:
            continue
        if subnet is not None and addr not in subnet:
            yield Finding(f"{path}.ip", f"{path}.ip = {_shown(addr)} is outside the network's subnet {subnet}")
        elif subnet is not None and _special(subnet, addr):
            yield Finding(f"{path}.ip", f"{path}.ip = {_shown(addr)} is {_special(subnet, addr)} of {subnet}")
        elif addr == gateway:
            yield Finding(f"{path}.ip", f"{path}.ip = {_shown(addr)} is the network's own address (ip.address)")
        if addr in by_ip:
            yield Finding(f"{path}.ip",
                          f"{path}.ip = {_shown(addr)} is already given to {by_ip[addr]}; "
                          "each static host needs its own IP")
        else:
            by_ip[addr] = path


def check_forward_given(s: Subject) -> Iterator[Finding]:
    """A network says how it forwards: v1's ``mode`` or a ``forward`` block, not both."""
    mode, fwd = s.get("mode"), s.get("forward")
    if mode is None and fwd is None:
        yield Finding("mode", 'missing required attribute "mode": give mode = "nat" (or "route", "isolated", '
                              '"bridge", ...) or a forward { mode = ... } block')
    elif mode is not None and fwd is not None:
        yield Finding("mode", "mode is the v1 shorthand for forward { mode }: give one of mode or the forward block")


# forward modes that attach guests to existing host devices: libvirt makes no bridge,
# runs no dnsmasq, and refuses what only its own bridge can have. Found by defining
# each combination with VIR_NETWORK_DEFINE_VALIDATE against libvirt 9.0 (docs/libvirt.md):
# "Unsupported <ip|dns|domain|mac> element in network with forward mode='bridge'",
# "mtu size only allowed in open, route, nat, and isolated mode", an unreachable
# static route gateway (no ip of its own to reach it by)
DEVICE_MODES = ("bridge", "private", "vepa", "passthrough", "hostdev")
_NOT_IN_DEVICE_MODE = (("ip", "ip"), ("route", "route"), ("dns", "dns"), ("domain", "domain"),
                       ("mac", "mac"), ("mtu", "mtu"))
# "bridge delay/stp/zone options only allowed in route, nat, and isolated mode"
_BRIDGE_OPTIONS = ("stp", "delay", "zone")


def check_mode(s: Subject) -> Iterator[Finding]:
    """Bridge mode: an existing bridge, no ip block; device modes refuse what needs
    libvirt's own bridge; virtualport only in bridge mode."""
    mode = mode_of(s.attrs)
    if not known(mode):
        return
    if mode == "bridge":
        if s.get("ip") is not None:
            yield Finding("ip[0]" if isinstance(s.get("ip"), list) else "ip",
                          'an ip block is not allowed with mode = "bridge": the addresses belong to the '
                          "existing host bridge and its LAN, libvirt runs no DHCP there")
        if bridge_of(s.attrs) is None and s.get("forward") is None:
            yield Finding("bridge", 'mode = "bridge" needs bridge = "<an existing host bridge>" (e.g. "br0")')
    if mode in DEVICE_MODES:
        for key, what in _NOT_IN_DEVICE_MODE:
            if key == "ip" and mode == "bridge":
                continue      # said above
            if s.get(key) is not None:
                yield Finding(key, f"{what} is not allowed with forward mode {show(mode)}: libvirt refuses it, "
                                   "the network has no bridge of its own")
        br = s.get("bridge")
        one = _one(br) if isinstance(br, (list, dict)) else None
        for opt in _BRIDGE_OPTIONS:
            if one is not None and one.get(opt) is not None:
                yield Finding(f"bridge[0].{opt}", f"bridge {opt} is not allowed with forward mode {show(mode)}: "
                                                  "libvirt sets it only on a bridge it makes itself")
    virtualport = virtualport_of(s.attrs)
    if virtualport is not None and mode != "bridge":
        yield Finding("virtualport", "virtualport is only allowed with mode = \"bridge\" "
                                     f"(this network has mode = {show(mode)}): "
                                     "libvirt attaches an openvswitch virtualport to an existing bridge")


# forward modes where libvirt shapes no traffic itself ("Unsupported network-wide
# <bandwidth> element in network with forward mode='private'", "Unsupported
# <bandwidth> element in network in portgroup with forward mode='vepa'")
NO_BANDWIDTH_MODES = ("private", "vepa", "passthrough", "hostdev")
# forward modes whose portgroups may carry a vlan without an openvswitch virtualport
# ("<vlan> element specified for network, whose type doesn't support vlan configuration")
VLAN_MODES = ("passthrough", "hostdev")


def _portgroups(s: Subject) -> list[tuple[int, dict]]:
    pgs = s.get("portgroup")
    return blocks({"portgroup": [pgs] if isinstance(pgs, dict) else pgs}, "portgroup")


def check_device_mode_bandwidth(s: Subject) -> Iterator[Finding]:
    """No bandwidth, network-wide or in a portgroup, in the modes that hand guests a
    host device (private, vepa, passthrough, hostdev)."""
    mode = mode_of(s.attrs)
    if not known(mode) or mode not in NO_BANDWIDTH_MODES:
        return
    if s.get("bandwidth") is not None:
        yield Finding("bandwidth", f"bandwidth is not allowed with forward mode {show(mode)}: libvirt shapes "
                                   "traffic only on a bridge (nat, route, open, isolated, bridge)")
    for i, pg in _portgroups(s):
        if pg.get("bandwidth") is not None:
            yield Finding(f"portgroup[{i}].bandwidth",
                          f"portgroup[{i}].bandwidth is not allowed with forward mode {show(mode)}: libvirt "
                          "shapes traffic only on a bridge (nat, route, open, isolated, bridge)")


def check_portgroup_vlan(s: Subject) -> Iterator[Finding]:
    """A portgroup's vlan needs an openvswitch virtualport (the network's or its own)
    or a passthrough / hostdev network."""
    mode = mode_of(s.attrs)
    if not known(mode) or mode in VLAN_MODES or virtualport_of(s.attrs) in ("openvswitch", UNKNOWN):
        return
    for i, pg in _portgroups(s):
        if pg.get("vlan") is None:
            continue
        if virtualport_of(pg) in ("openvswitch", UNKNOWN):
            continue
        yield Finding(f"portgroup[{i}].vlan",
                      f"portgroup[{i}].vlan needs virtualport {{ type = \"openvswitch\" }} (or forward mode "
                      f"\"passthrough\" or \"hostdev\"): libvirt refuses a VLAN tag on a network of mode "
                      f"{show(mode)} over a plain Linux bridge")


def check_one_ipv4_dhcp(s: Subject) -> Iterator[Finding]:
    """libvirt serves DHCP on one IPv4 address per network ("Multiple IPv4 dhcp sections found")."""
    first = None
    for i, ip, *_ in ipv4_facts(s):
        if ip.get("dhcp") is None and ip.get("dhcp_range") is None and ip.get("dhcp_host") is None:
            continue
        if first is None:
            first = i
        else:
            yield Finding(f"ip[{i}]", f"ip[{i}] has DHCP, but so does ip[{first}]: libvirt serves DHCP on "
                                      "one IPv4 address per network (IPv6 blocks may have their own)")


def check_nat_port_range(s: Subject) -> Iterator[Finding]:
    """nat_port_range only with mode = "nat", and start <= end."""
    rng, mode = s.get("nat_port_range"), mode_of(s.attrs)
    if rng is None:
        return
    if known(mode) and mode != "nat":
        yield Finding("nat_port_range",
                      f"nat_port_range is only allowed with mode = \"nat\" (this network has mode = {show(mode)})")
    if known(rng) and len(rng) == 2 and known(rng[0]) and known(rng[1]) and rng[0] > rng[1]:
        yield Finding("nat_port_range", f"nat_port_range = {show(rng)} is reversed: start must be <= end")


def check_vlan_tag(s: Subject) -> Iterator[Finding]:
    """vlan_tag needs virtualport = "openvswitch"; otherwise explain the working pattern."""
    tag, virtualport = s.get("vlan_tag"), virtualport_of(s.attrs)
    if tag is None or virtualport is UNKNOWN or virtualport == "openvswitch":
        return
    yield Finding("vlan_tag", f"vlan_tag = {show(tag)} needs virtualport = \"openvswitch\"; {_OVS_PATTERN}")


def check_network_name(s: Subject) -> Iterator[Finding]:
    name = s.get("name")
    if known(name) and "/" in name:
        yield Finding("name", f"name = {show(name)} contains '/', which libvirt does not allow in a network name")


def check_bridge_ifname(s: Subject) -> Iterator[Finding]:
    """A network's ``bridge`` is an interface name (the one libvirt creates, or the
    existing host bridge in bridge mode)."""
    br = s.get("bridge")
    yield from ifname_finding("bridge" if not isinstance(br, list) else "bridge[0].name", bridge_of(s.attrs))


RULES = (check_network_name, check_forward_given, check_ip_block, check_dhcp_ranges, check_dhcp_hosts,
         check_one_ipv4_dhcp, check_mode, check_device_mode_bandwidth, check_portgroup_vlan,
         check_nat_port_range, check_vlan_tag, check_bridge_ifname)
