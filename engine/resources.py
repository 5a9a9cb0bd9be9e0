"""The catalogue of resource types kvmnet knows (SPEC §3).

This is the engine's only knowledge of the six types: their default provider,
defaults, which attributes are computed, which force a replacement, how an
instance's live identity (the import ID) is formed, and the canonical shape of
their attributes. Desired attributes (from config) and live attributes (from a
provider's read) both pass through :func:`canonical`, so the diff compares like
with like. Nothing here talks to libvirt, netlink or nft.

Attribute conventions (the contract between the engine and providers):
- a repeated or single nested block arrives from config as a list of dicts; a
  single block (``network.ip``) is canonicalised to a dict or None;
- an optional attribute left out of the config is ``None`` and means "whatever it
  is live" (computed if omitted): it never shows as a difference;
- lists with set semantics (``interfaces``, ``addresses``) are sorted.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Callable, overload


@dataclass(frozen=True)
class ResourceType:
    name: str
    default_provider: str
    providers: tuple[str, ...]
    replace_on: frozenset[str]            # top-level attributes whose change forces replace; "*" = any
    computed: frozenset[str] = frozenset()  # attributes only the provider sets
    defaults: dict[str, Any] = field(default_factory=dict)
    identity: Callable[[dict], str | None] = lambda a: a.get("name")
    # attributes that may be unknown at plan time and must be filled in after create
    computed_if_omitted: frozenset[str] = frozenset()
    # which kinds of object this type is, for the consumer check (SPEC §5)
    consumable: bool = False
    # whether an existing live object with the same identity is a conflict on create
    # (False for sysctl keys: they always exist; the profile only sets them)
    exclusive: bool = True
    # attributes that live only in the config and the state (a forward's ``network``
    # is used for validation and ordering; nothing live records it)
    config_only: frozenset[str] = frozenset()


def _ip_key(v):
    from kvmnet.engine.validate import ipv4   # (validate imports this module)
    n = ipv4.parse(v)   # the common case, without building an ipaddress object
    if n is not None:
        return (0, n)
    try:
        return (0, int(ipaddress.ip_address(str(v))))
    except ValueError:
        return (1, str(v))


def _sorted_unique(xs):
    return sorted(dict.fromkeys(xs)) if xs is not None else xs


def _norm_ws(v) -> str:
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return " ".join(str(v).split())


def _netmask_to_prefix(mask: str) -> int:
    return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen


def _canon_network(a: dict) -> dict:
    ip = a.get("ip")
    if isinstance(ip, list):
        ip = ip[0] if ip else None
    if ip is not None:
        ip = dict(ip)
        if ip.get("prefix") is None and ip.get("netmask"):
            try:
                ip["prefix"] = _netmask_to_prefix(ip["netmask"])
            except ValueError:
                pass
        ip.pop("netmask", None)
        ranges = [dict(start=r.get("start"), end=r.get("end")) for r in (ip.get("dhcp_range") or [])]
        hosts = [
            dict(mac=(h.get("mac").lower() if isinstance(h.get("mac"), str) else h.get("mac")),
                 ip=h.get("ip"), name=h.get("name"))
            for h in (ip.get("dhcp_host") or [])
        ]
        if len(ranges) > 1:
            ranges.sort(key=lambda r: _ip_key(r["start"]))
        if len(hosts) > 1:
            hosts.sort(key=lambda h: (_ip_key(h["ip"]), str(h["mac"])))
        ip["dhcp_range"] = ranges
        ip["dhcp_host"] = hosts
        ip = {k: ip.get(k) for k in ("address", "prefix", "dhcp_range", "dhcp_host")}
    a["ip"] = ip
    if a.get("nat_port_range") is not None:
        a["nat_port_range"] = list(a["nat_port_range"])
    return a


def _canon_links(a: dict) -> dict:
    if a.get("route") is not None:          # repeated ``route {}`` blocks
        a["routes"] = a.pop("route")
    a.pop("route", None)
    for k in ("interfaces", "addresses", "nameservers"):
        if a.get(k) is not None:
            a[k] = _sorted_unique(a[k])
    if a.get("routes") is not None:
        a["routes"] = sorted(
            # the kernel shows no metric 0: 0 and "not set" are the same route
            (dict(to=r.get("to"), via=r.get("via"), metric=r.get("metric") or None) for r in a["routes"]),
            key=lambda r: (str(r["to"]), str(r["via"])),
        )
    return a


def _canon_nic(a: dict) -> dict:
    if isinstance(a.get("mac"), str):
        a["mac"] = a["mac"].lower()
    return a


def _canon_forward(a: dict) -> dict:
    hp = a.get("host_port")
    if isinstance(hp, float) and hp.is_integer():
        hp = int(hp)
    if hp is not None:
        a["host_port"] = str(hp).replace(" ", "")
    return a


def _canon_sysctl(a: dict) -> dict:
    s = a.get("settings")
    if isinstance(s, dict):
        a["settings"] = {str(k): _norm_ws(v) for k, v in sorted(s.items())}
    return a


TYPES: dict[str, ResourceType] = {
    "network": ResourceType(
        name="network", default_provider="libvirt", providers=("libvirt",),
        replace_on=frozenset({"name", "mode", "bridge", "mtu", "domain", "nat_port_range",
                              "virtualport", "vlan_tag", "ip.address", "ip.prefix"}),
        computed=frozenset({"uuid", "active"}),
        defaults={"autostart": True},
        computed_if_omitted=frozenset({"bridge"}),
        consumable=True,
    ),
    "bridge": ResourceType(
        name="bridge", default_provider="iproute", providers=("iproute", "netplan"),
        replace_on=frozenset({"name"}),
        defaults={"interfaces": [], "addresses": [], "routes": [], "stp": False},
        consumable=True,
    ),
    "vlan": ResourceType(
        name="vlan", default_provider="iproute", providers=("iproute", "netplan"),
        replace_on=frozenset({"name", "id", "link"}),
        defaults={"addresses": []},
        consumable=True,
    ),
    "nic_attachment": ResourceType(
        name="nic_attachment", default_provider="libvirt", providers=("libvirt",),
        replace_on=frozenset({"model", "mac", "queues", "live", "persistent", "domain"}),
        defaults={"model": "virtio", "live": True, "persistent": True, "link_state": "up"},
        identity=lambda a: (f"{a['domain']}/{a['mac']}"
                            if isinstance(a.get("mac"), str) and isinstance(a.get("domain"), str) else None),
        computed_if_omitted=frozenset({"mac"}),
    ),
    "port_forward": ResourceType(
        name="port_forward", default_provider="nftables", providers=("nftables", "iptables"),
        replace_on=frozenset({"*"}),
        identity=lambda a: f"{a.get('protocol')}/{a.get('host_port')}",
        config_only=frozenset({"network"}),
    ),
    "sysctl_profile": ResourceType(
        name="sysctl_profile", default_provider="sysctl", providers=("sysctl",),
        replace_on=frozenset(),
        defaults={"persist": True},
        identity=lambda a: ",".join(sorted((a.get("settings") or {}).keys())),
        exclusive=False,
    ),
}

_CANON = {
    "network": _canon_network,
    "bridge": _canon_links,
    "vlan": _canon_links,
    "nic_attachment": _canon_nic,
    "port_forward": _canon_forward,
    "sysctl_profile": _canon_sysctl,
}


def with_defaults(rtype: str, label: str, attrs: dict) -> dict:
    """Config attributes plus the type's defaults (``name`` defaults to the label)."""
    t = TYPES[rtype]
    out = dict(attrs)
    for k, v in t.defaults.items():
        if out.get(k) is None:
            out[k] = list(v) if isinstance(v, list) else v
    if rtype in ("network", "bridge") and out.get("name") is None:
        out["name"] = label
    if rtype == "vlan" and out.get("name") is None and out.get("link") is not None and out.get("id") is not None:
        out["name"] = f"{out['link']}.{out['id']}"
    return out


@overload
def canonical(rtype: str, attrs: dict) -> dict: ...
@overload
def canonical(rtype: str, attrs: None) -> None: ...
@overload
def canonical(rtype: str, attrs: dict | None) -> dict | None: ...
def canonical(rtype: str, attrs: dict | None) -> dict | None:
    """The canonical form of a type's attributes, for desired and live alike."""
    if attrs is None:
        return None
    fn = _CANON.get(rtype)
    return fn(dict(attrs)) if fn else dict(attrs)


def identity(rtype: str, attrs: dict) -> str | None:
    """The live ID of an instance (the same string ``kvmnet import`` takes)."""
    try:
        return TYPES[rtype].identity(attrs)
    except (KeyError, TypeError):
        return None
