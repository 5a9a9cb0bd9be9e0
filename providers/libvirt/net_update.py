"""The ``virNetworkUpdate`` commands that take a network from one set of attributes to
another without a restart (pure; issue 11, item 4).

Everything libvirt can change live is covered: DHCP ranges and hosts of every
``ip`` block, DNS hosts, SRV and TXT records, forward interfaces and portgroups.
A command is ``(command, section, index, xml)``: ``command`` is ``delete``,
``modify`` or ``add``; ``section`` names libvirt's ``VIR_NETWORK_SECTION_*``;
``parent`` is the ``ip`` block a DHCP command is for (``-1`` otherwise); ``xml`` is
the element libvirt is handed. Deletions come first (an address or name being
moved is free before it is used again), then modifications, then additions.
libvirt modifies only DHCP hosts and portgroups in place; a changed DNS host, SRV,
TXT record, DHCP range or forward interface is a delete and an add.

Attributes are the canonical network shape (docs/libvirt.md): ``ip`` a list of
blocks with ``dhcp { range [...] host [...] }``, ``dns { host srv txt }``,
``forward { interface [...] }``, ``portgroup [...]``. Elements are written by the
one mechanical rule (snake_case attribute → camelCase XML attribute, a dict → a
child element, a list of dicts → repeated children, a list of strings → repeated
text children, booleans as ``yes``/``no``).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Callable, NamedTuple

from kvmnet.providers.libvirt import dhcp

# the sections, as libvirt names them (VIR_NETWORK_SECTION_<NAME>)
IP_DHCP_HOST, IP_DHCP_RANGE = "IP_DHCP_HOST", "IP_DHCP_RANGE"
DNS_HOST, DNS_SRV, DNS_TXT = "DNS_HOST", "DNS_SRV", "DNS_TXT"
FORWARD_INTERFACE, PORTGROUP = "FORWARD_INTERFACE", "PORTGROUP"

# attribute paths these commands change (everything else is a restart or a replace)
IN_PLACE = ("ip[].dhcp.range", "ip[].dhcp.host", "dns.host", "dns.srv", "dns.txt",
            "forward.interface", "portgroup")


class Command(NamedTuple):
    command: str      # delete | modify | add
    section: str      # one of the section names above
    parent: int       # the ip block of a DHCP command, else -1
    xml: str


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _text(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def element(tag: str, attrs: dict) -> ET.Element:
    """``attrs`` as the element ``tag`` by the mechanical rule (None values left out)."""
    el = ET.Element(tag)
    for k, v in attrs.items():
        if v is None:
            continue
        name = _camel(k)
        if isinstance(v, dict):
            el.append(element(name, v))
        elif isinstance(v, list):
            for item in v:
                if isinstance(item, dict):
                    el.append(element(name, item))
                else:
                    ET.SubElement(el, name).text = _text(item)
        else:
            el.set(name, _text(v))
    return el


def xml_of(tag: str, attrs: dict) -> str:
    return ET.tostring(element(tag, attrs), encoding="unicode")


def _keyed(items: list[dict], key: Callable[[dict], object]) -> dict:
    return {key(x): x for x in items}


def _freeze(d) -> object:
    if isinstance(d, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in d.items()))
    if isinstance(d, list):
        return tuple(_freeze(v) for v in d)
    return d


def _set_steps(section: str, tag: str, cur: list[dict], want: list[dict],
               key: Callable[[dict], object], modify: bool) -> tuple[list, list, list]:
    """(deletes, modifies, adds) that turn the entries ``cur`` into ``want``."""
    c, w = _keyed(cur, key), _keyed(want, key)
    deletes = [Command("delete", section, -1, xml_of(tag, x)) for k, x in c.items() if k not in w]
    adds = [Command("add", section, -1, xml_of(tag, x)) for k, x in w.items() if k not in c]
    modifies = []
    for k, x in w.items():
        if k in c and _freeze(c[k]) != _freeze(x):
            if modify:
                modifies.append(Command("modify", section, -1, xml_of(tag, x)))
            else:
                deletes.append(Command("delete", section, -1, xml_of(tag, c[k])))
                adds.append(Command("add", section, -1, xml_of(tag, x)))
    return deletes, modifies, adds


def _get(d: dict | None, *path: str) -> list[dict]:
    for p in path:
        d = (d or {}).get(p)
    return list(d or [])


def _want(before: dict, after: dict, *path: str) -> list[dict]:
    """``after``'s entries at ``path``; ``before``'s when ``after`` does not configure
    them (a None on the way: "whatever it is live", never a change)."""
    d: Any = after
    for p in path:
        d = d.get(p) if isinstance(d, dict) else None
        if d is None:
            return _get(before, *path)
    return list(d)


def _dhcp_steps(index: int, cur_ip: dict | None, want_ip: dict | None) -> tuple[list, list, list]:
    """The DHCP commands of the ``index``-th ip block (the DHCP planner's order and
    its MODIFY rules: hosts by MAC, else DUID/id, else name; ranges delete + add)."""
    steps = dhcp.dhcp_steps(
        {"dhcp_range": _get(cur_ip, "dhcp", "range"), "dhcp_host": _get(cur_ip, "dhcp", "host")},
        {"dhcp_range": _get(want_ip, "dhcp", "range"), "dhcp_host": _get(want_ip, "dhcp", "host")})
    out: dict[str, list] = {"delete": [], "modify": [], "add": []}
    for s in steps:
        section, tag = (IP_DHCP_HOST, "host") if s.section == "host" else (IP_DHCP_RANGE, "range")
        out[s.command].append(Command(s.command, section, index, xml_of(tag, s.entry)))
    return out["delete"], out["modify"], out["add"]


def commands(before: dict, after: dict) -> list[Command]:
    """The commands from ``before`` to ``after`` (canonical attrs; ``after``'s ip
    blocks pair with ``before``'s by position: adding or removing a block is not an
    update). A section ``after`` leaves unset (None) is left as it is; an ip block's
    DHCP is the block's whole (no ``dhcp`` there: no ranges, no hosts)."""
    parts: list[tuple[list, list, list]] = []
    for i, (b, a) in enumerate(zip(before.get("ip") or [], after.get("ip") or [], strict=False)):
        parts.append(_dhcp_steps(i, b, a))
    parts.append(_set_steps(DNS_HOST, "host", _get(before, "dns", "host"), _want(before, after, "dns", "host"),
                            lambda h: h.get("ip"), modify=False))
    parts.append(_set_steps(DNS_SRV, "srv", _get(before, "dns", "srv"), _want(before, after, "dns", "srv"),
                            lambda s: (s.get("service"), s.get("protocol"), s.get("domain"),
                                       s.get("target"), s.get("port")), modify=False))
    parts.append(_set_steps(DNS_TXT, "txt", _get(before, "dns", "txt"), _want(before, after, "dns", "txt"),
                            lambda t: t.get("name"), modify=False))
    parts.append(_set_steps(FORWARD_INTERFACE, "interface", _get(before, "forward", "interface"),
                            _want(before, after, "forward", "interface"), lambda x: x.get("dev"), modify=False))
    parts.append(_set_steps(PORTGROUP, "portgroup", _get(before, "portgroup"), _want(before, after, "portgroup"),
                            lambda p: p.get("name"), modify=True))
    return ([c for d, _m, _a in parts for c in d] + [c for _d, m, _a in parts for c in m]
            + [c for _d, _m, a in parts for c in a])
