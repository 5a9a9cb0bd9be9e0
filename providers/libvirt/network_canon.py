"""The canonical form of ``network`` attributes: v1 shorthands upgraded to the full
block shape, single blocks as dicts and repeated ones as lists (by the table in
:mod:`netshape`), MACs lower case, a forward's mode defaulted as libvirt does, DHCP
ranges and hosts sorted. Used for config, live reads and state rows alike, so a
state row written by kvmnet v1 is upgraded on read."""
from __future__ import annotations

import ipaddress
from typing import AbstractSet, Any

from kvmnet.providers import ipv4
from kvmnet.providers.libvirt.netshape import NETWORK, El
from kvmnet.sdk.values import UNKNOWN, contains_unknown, is_unknown

# v1 top-level attributes, each a shorthand for a block of the full shape
V1 = ("mode", "nat_port_range", "vlan_tag")
ISOLATED = "isolated"     # kvmnet's name for "no <forward>"


def _ip_key(v) -> tuple:
    n = ipv4.parse(v)
    if n is not None:
        return (0, n)
    try:
        return (0, int(ipaddress.ip_address(str(v))))
    except ValueError:
        return (1, str(v))


def _single(v: Any) -> Any:
    """A single block as configured (a list of one dict) or canonical (a dict)."""
    if isinstance(v, list):
        return dict(v[0]) if v and isinstance(v[0], dict) else None
    return dict(v) if isinstance(v, dict) else v


def upgrade_v1(a: dict) -> dict:
    """The v1 shorthands (``mode``, ``bridge = "virbr1"``, ``mtu = 1400``, ``domain``,
    ``nat_port_range``, ``vlan_tag``, ``virtualport = "openvswitch"``, ``ip``'s
    ``dhcp_range``/``dhcp_host``) as full blocks; a v1 attribute that is None goes."""
    mode = a.pop("mode", None)
    port_range = a.pop("nat_port_range", None)
    tag = a.pop("vlan_tag", None)
    if mode is not None or port_range is not None:
        fwd = _single(a.get("forward")) or {}
        if mode is not None:
            fwd["mode"] = mode
        if port_range is not None:
            nat = _single(fwd.get("nat")) or {}
            nat["port"] = ({"start": port_range[0], "end": port_range[1]}
                           if isinstance(port_range, (list, tuple)) and len(port_range) == 2 else port_range)
            fwd["nat"] = nat
        a["forward"] = fwd
    for key, inner in (("bridge", "name"), ("mtu", "size"), ("domain", "name"), ("virtualport", "type")):
        v = a.get(key)
        if v is not None and not isinstance(v, (dict, list)):
            a[key] = {inner: v}
    if tag is not None:
        a["vlan"] = {"tag": [{"id": tag}]}
    ips = a.get("ip")
    if isinstance(ips, dict):
        ips = [ips]
    if isinstance(ips, list):
        a["ip"] = [_upgrade_ip(ip) if isinstance(ip, dict) else ip for ip in ips]
    return a


def _upgrade_ip(ip: dict) -> dict:
    ip = dict(ip)
    ranges, hosts = ip.pop("dhcp_range", None), ip.pop("dhcp_host", None)
    if ranges or hosts:
        dhcp = _single(ip.get("dhcp")) or {}
        if ranges:
            dhcp["range"] = list(ranges)
        if hosts:
            dhcp["host"] = list(hosts)
        ip["dhcp"] = dhcp
    return ip


def shape(block: dict, spec: El) -> dict:
    """Single blocks as dicts, repeated ones as lists, recursively; None values go.
    Builds new containers and never changes ``block``."""
    out: dict[str, Any] = {}
    children = spec.by_key
    for k, v in block.items():
        if v is None:
            continue
        c = children.get(k)
        if c is None:                      # an attribute (most keys)
            out[k] = v
        elif c.text or v is UNKNOWN:
            out[k] = list(v) if c.many and isinstance(v, (list, tuple)) else v
        elif c.many:
            items = v if isinstance(v, (list, tuple)) else [v]
            out[k] = [shape(x, c) if isinstance(x, dict) else x for x in items]
        else:
            one = (v[0] if v and isinstance(v[0], dict) else None) if isinstance(v, list) else v
            out[k] = shape(one, c) if isinstance(one, dict) else one
    return out


def _lower(v):
    return v.lower() if isinstance(v, str) else v


def _prefix(ip: dict) -> None:
    """An IPv4 netmask as its prefix length, as kvmnet v1 did: ``prefix = 24`` and
    ``netmask = "255.255.255.0"`` are one network, in config and live alike."""
    mask = ip.get("netmask")
    if ip.get("prefix") is None and isinstance(mask, str):
        try:
            ip["prefix"] = ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen
        except ValueError:
            return          # the rules report it
        del ip["netmask"]


def _list(v) -> list:
    """``v`` when it is a list (not None, not unknown), else no items."""
    return v if isinstance(v, list) else []


def _sort(items, key) -> None:
    """Sort a list of blocks in place once every block and key is known."""
    if isinstance(items, list) and len(items) > 1 and all(
            isinstance(x, dict) and not contains_unknown(x) for x in items):
        items.sort(key=lambda x: tuple(str(k) for k in key(x)))


def _sets(a: dict) -> None:
    """The entries virNetworkUpdate adds and deletes one by one (DNS hosts, SRV and
    TXT records, forward interfaces, portgroups) are sets: sorted by their key, so
    libvirt's order after an update (additions last) is not a change. A portgroup's
    ``default = false`` is how libvirt reads one without ``default`` (it writes only
    ``default='yes'``)."""
    dns, fwd = a.get("dns"), a.get("forward")
    if isinstance(dns, dict):
        _sort(dns.get("host"), lambda h: (_ip_key(h.get("ip")),))
        _sort(dns.get("txt"), lambda t: (t.get("name"),))
        _sort(dns.get("srv"), lambda r: (r.get("service"), r.get("protocol"), r.get("domain"),
                                         r.get("target"), r.get("port")))
    if isinstance(fwd, dict):
        _sort(fwd.get("interface"), lambda i: (i.get("dev"),))
    groups = a.get("portgroup")
    if isinstance(groups, list):
        for g in groups:
            if isinstance(g, dict) and g.get("default") is False:
                del g["default"]
        _sort(groups, lambda g: (g.get("name"),))


def normalize(a: dict) -> dict:
    """MACs lower case, IPv4 netmasks as prefixes, ``<forward>`` mode defaulted to
    nat, DHCP entries and the other updatable sets sorted."""
    fwd = a.get("forward")
    if isinstance(fwd, dict) and fwd.get("mode") is None:
        fwd["mode"] = "nat"
    _sets(a)
    mac = a.get("mac")
    if isinstance(mac, dict) and "address" in mac:
        mac["address"] = _lower(mac["address"])
    for route in _list(a.get("route")):
        if isinstance(route, dict):
            _prefix(route)
    for ip in _list(a.get("ip")):
        if isinstance(ip, dict):
            _prefix(ip)
        dhcp = ip.get("dhcp") if isinstance(ip, dict) else None
        if not isinstance(dhcp, dict):
            continue
        hosts = dhcp.get("host")
        if isinstance(hosts, list):
            for h in hosts:
                if isinstance(h, dict) and "mac" in h:
                    h["mac"] = _lower(h["mac"])
            if len(hosts) > 1 and all(isinstance(h, dict) and not is_unknown(h.get("ip")) for h in hosts):
                hosts.sort(key=lambda h: (_ip_key(h.get("ip")), str(h.get("mac")), str(h.get("id"))))
        ranges = dhcp.get("range")
        if isinstance(ranges, list) and len(ranges) > 1 and all(
                isinstance(r, dict) and not is_unknown(r.get("start")) for r in ranges):
            ranges.sort(key=lambda r: _ip_key(r.get("start")))
    return a


def canonical_network(a: dict) -> dict:
    return normalize(shape(upgrade_v1(a), NETWORK))


_V1_KEYS = ("mode", "nat_port_range", "vlan_tag")
_V1_SCALARS = ("bridge", "mtu", "domain", "virtualport")


def is_v1_row(a: dict) -> bool:
    """Whether a state row still has one of v1's shorthands (today's rows are
    canonical already, and re-canonicalising 10,000 of them per plan costs seconds)."""
    if any(k in a for k in _V1_KEYS):
        return True
    if any(a.get(k) is not None and not isinstance(a.get(k), (dict, list)) for k in _V1_SCALARS):
        return True
    ips = a.get("ip")
    if isinstance(ips, dict):
        return True
    return isinstance(ips, list) and any(
        isinstance(ip, dict) and ("dhcp_range" in ip or "dhcp_host" in ip) for ip in ips)


def upgrade_row(a: dict) -> dict:
    """A state row in today's shape: v1 rows canonicalised, today's as stored."""
    return canonical_network(a) if is_v1_row(a) else a


# v1's plain values, each the inner attribute of the block it became
_V1_INNER = (("bridge", "name"), ("mtu", "size"), ("domain", "name"), ("virtualport", "type"))


def v1_view(written: AbstractSet[str], a: dict) -> dict:
    """A network as references see it: each v1 shorthand its config wrote
    (``bridge = "virbr1"``, ``mode``, ``nat_port_range``, ``vlan_tag``) reads back
    as the plain value it was in v1, so ``network.lab.bridge`` is the bridge's name
    again; a block the config wrote (``bridge { name = ... }``) stays the block."""
    if not any(k in written for k in _V1_KEYS + _V1_SCALARS):
        return a
    out = dict(a)
    for key, inner in _V1_INNER:
        if key in written and isinstance(out.get(key), dict):
            out[key] = out[key].get(inner)
    fwd = a.get("forward")
    if "mode" in written:
        out["mode"] = fwd.get("mode") if isinstance(fwd, dict) else fwd
    if "nat_port_range" in written:
        nat = fwd.get("nat") if isinstance(fwd, dict) else None
        port = nat.get("port") if isinstance(nat, dict) else None
        out["nat_port_range"] = [port.get("start"), port.get("end")] if isinstance(port, dict) else port
    if "vlan_tag" in written:
        vlan = a.get("vlan")
        tags = vlan.get("tag") if isinstance(vlan, dict) else None
        out["vlan_tag"] = tags[0].get("id") if isinstance(tags, list) and tags and isinstance(tags[0], dict) \
            else tags
    return out


# -- reading canonical attributes -----------------------------------------------------
def forward_mode(a: dict):
    """The forward mode of canonical attributes ("isolated" for no forwarding)."""
    fwd = a.get("forward")
    return fwd.get("mode") if isinstance(fwd, dict) else None


def bridge_name(a: dict):
    br = a.get("bridge")
    return br.get("name") if isinstance(br, dict) else None


def is_ipv6(ip: dict) -> bool:
    return ip.get("family") == "ipv6" or ":" in str(ip.get("address") or "")


def first_ipv4(a: dict) -> tuple[int, dict] | None:
    """(index, block) of the first IPv4 ``ip`` block: the one kvmnet v1 modelled."""
    for i, ip in enumerate(a.get("ip") or []):
        if isinstance(ip, dict) and not is_ipv6(ip):
            return i, ip
    return None


def dhcp_entries(ip: dict | None, section: str) -> list[dict]:
    """An ``ip`` block's DHCP ``range`` or ``host`` entries."""
    dhcp = (ip or {}).get("dhcp")
    return list((dhcp or {}).get(section) or []) if isinstance(dhcp, dict) else []
