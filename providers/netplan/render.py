"""kvmnet's netplan file: bridges and vlans as netplan YAML, and back (pure).

One file holds every object the netplan provider manages. Each object has a header
comment line with its kind, name, a digest of the YAML kvmnet wrote for it and its
ownership mark::

    # kvmnet-object: bridge br-lab sha256=0123456789ab kvmnet:<lineage>:bridge.lab

The digest tells an object edited by hand (drift) from one as kvmnet left it; the
mark is the file's ownership record for that object (SPEC §5). PyYAML drops
comments, so the header is read from the text and the YAML separately.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import yaml

from kvmnet.sdk.ownership import parse_mark
from kvmnet.providers.links import desired_routes, host_cidr, sort_routes

FILE_NAME = "90-kvmnet.yaml"
SECTIONS = {"bridge": "bridges", "vlan": "vlans"}
# attributes a netplan file can hold, per type (multicast_snooping has no netplan key)
FILE_ATTRS = {
    "bridge": ("name", "interfaces", "stp", "forward_delay", "mtu", "addresses", "routes",
               "dhcp4", "nameservers"),
    "vlan": ("name", "id", "link", "mtu", "addresses", "dhcp4", "nameservers"),
}
NETPLAN_ONLY = ("dhcp4", "nameservers")
_HEADER = re.compile(r"^# kvmnet-object: (\w+) (\S+) sha256=([0-9a-f]+) (.+)$")
_DIGEST_LEN = 16


class RenderError(ValueError):
    """The file cannot be read back (not YAML, not netplan's shape)."""


@dataclass
class Entry:
    """One object in the file.

    An entry read from the file keeps its YAML ``mapping`` and header digest
    ``sha`` and is written back verbatim (so rewriting the file for another object
    never blesses a hand edit); an entry made by a change has neither and is
    rendered from ``attrs``.
    """

    rtype: str
    name: str
    attrs: dict                  # canonical attributes
    mark: str = ""               # ownership mark text ("" when there is no header)
    mapping: dict | None = None  # the YAML as found in the file
    sha: str | None = None       # the digest its header line holds

    @property
    def key(self) -> tuple[str, str]:
        return (self.rtype, self.name)

    @property
    def edited(self) -> bool:
        """The YAML differs from what kvmnet wrote (or has no kvmnet header)."""
        return self.mapping is not None and self.sha != digest(self.mapping)

    def yaml(self) -> dict:
        return self.mapping if self.mapping is not None else object_yaml(self.rtype, self.attrs)


# -- attributes → netplan mapping ---------------------------------------------

def _route_yaml(route: dict) -> dict:
    out = {"to": route["to"]}
    if route.get("via"):
        out["via"] = route["via"]
    if route.get("metric"):
        out["metric"] = int(route["metric"])
    return out


def _number(v):
    return int(v) if isinstance(v, float) and v.is_integer() else v


def object_yaml(rtype: str, attrs: dict) -> dict:
    """The netplan mapping of one bridge or vlan (netplan reference: bridges, vlans)."""
    out: dict = {}
    if rtype == "bridge":
        out["interfaces"] = list(attrs.get("interfaces") or [])
    else:
        out["id"] = int(attrs["id"])
        out["link"] = attrs["link"]
    if attrs.get("addresses"):
        out["addresses"] = list(attrs["addresses"])
    if rtype == "bridge":
        routes = desired_routes(attrs)
        if routes:
            out["routes"] = [_route_yaml(r) for r in routes]
    if attrs.get("mtu") is not None:
        out["mtu"] = int(attrs["mtu"])
    if attrs.get("dhcp4") is not None:
        out["dhcp4"] = bool(attrs["dhcp4"])
    if attrs.get("nameservers"):
        out["nameservers"] = {"addresses": list(attrs["nameservers"])}
    if rtype == "bridge":
        # netplan's own default is stp: true; kvmnet's is false, so always say it
        params = {"stp": bool(attrs.get("stp") or False)}
        if attrs.get("forward_delay") is not None:
            params["forward-delay"] = _number(attrs["forward_delay"])
        out["parameters"] = params
    return out


def digest(mapping: dict) -> str:
    text = json.dumps(mapping, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_LEN]


def port_names(entries: list[Entry]) -> list[str]:
    """Interfaces the objects refer to (bridge ports, vlan parents)."""
    names: set[str] = set()
    for e in entries:
        if e.rtype == "bridge":
            names.update(e.attrs.get("interfaces") or [])
        elif e.attrs.get("link"):
            names.add(e.attrs["link"])
    return sorted(names)


def render_file(entries: list[Entry], known_elsewhere: AbstractSet[str] = frozenset()) -> str:
    """The whole file: header lines, then the YAML.

    Ports and vlan parents that neither this file nor ``known_elsewhere`` (the IDs
    other netplan files define) declare get an empty ``ethernets:`` entry, so the
    file is valid on its own.
    """
    entries = sorted(entries, key=lambda e: (e.rtype, e.name))
    ours = {e.name for e in entries}
    lines = ["# Written by kvmnet (provider \"netplan\"). Edits show as drift on the next plan;",
             "# kvmnet never runs \"netplan apply\"."]
    network: dict = {"version": 2}
    ethernets: dict[str, dict] = {p: {} for p in port_names(entries) if p not in ours and p not in known_elsewhere}
    if ethernets:
        network["ethernets"] = ethernets
    for rtype, section in SECTIONS.items():
        objs = {}
        for e in entries:
            if e.rtype != rtype:
                continue
            mapping = e.yaml()
            objs[e.name] = mapping
            mark = " ".join(str(e.mark).split())
            if mark:
                sha = e.sha if e.mapping is not None and e.sha else digest(mapping)
                lines.append(f"# kvmnet-object: {rtype} {e.name} sha256={sha} {mark}")
        if objs:
            network[section] = objs
    body = yaml.safe_dump({"network": network}, default_flow_style=False, sort_keys=False)
    return "\n".join(lines) + "\n" + body


# -- netplan mapping → attributes ---------------------------------------------

def _seconds(v):
    """A netplan time interval in seconds (``4``, ``"4s"``, ``"400ms"``)."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return _number(v)
    text = str(v).strip()
    try:
        if text.endswith("ms"):
            return _number(float(text[:-2]) / 1000)
        if text.endswith("s"):
            return _number(float(text[:-1]))
        return _number(float(text))
    except ValueError:
        return text


def _routes_from_yaml(routes) -> list[dict]:
    out = []
    for r in routes or []:
        if not isinstance(r, dict) or "to" not in r:
            continue
        to = str(r["to"])
        try:
            to = host_cidr(to)
        except ValueError:
            pass
        out.append({"to": to, "via": r.get("via"), "metric": r.get("metric") or None})
    return sort_routes(out)


def attrs_from_yaml(rtype: str, name: str, m: dict) -> dict:
    """Canonical attributes of one object as the file has it."""
    m = m or {}
    ns = m.get("nameservers") or {}
    out = {
        "name": name,
        "mtu": m.get("mtu"),
        "addresses": sorted(dict.fromkeys(str(a) for a in (m.get("addresses") or []))),
        "dhcp4": m.get("dhcp4"),
        "nameservers": sorted(dict.fromkeys(str(a) for a in ns.get("addresses") or [])) or None,
    }
    if rtype == "bridge":
        params = m.get("parameters") or {}
        out["interfaces"] = sorted(dict.fromkeys(str(i) for i in (m.get("interfaces") or [])))
        out["stp"] = bool(params.get("stp", True))     # netplan's default
        fd = params.get("forward-delay")
        out["forward_delay"] = _seconds(fd) if fd is not None else None
        out["routes"] = _routes_from_yaml(m.get("routes"))
    else:
        out["id"] = m.get("id")
        out["link"] = m.get("link")
    return {k: out.get(k) for k in FILE_ATTRS[rtype]}


def parse_file(text: str) -> dict[tuple[str, str], Entry]:
    """The bridges and vlans of a kvmnet netplan file, keyed by (type, name)."""
    headers = {}
    for line in text.splitlines():
        m = _HEADER.match(line)
        if m:
            headers[(m.group(1), m.group(2))] = (m.group(3), m.group(4).strip())
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise RenderError(f"not valid YAML: {e}") from e
    network = doc.get("network") if isinstance(doc, dict) else None
    if not isinstance(network, dict):
        raise RenderError("no top-level 'network:' mapping")
    out = {}
    for rtype, section in SECTIONS.items():
        objs = network.get(section) or {}
        if not isinstance(objs, dict):
            raise RenderError(f"'network.{section}' is not a mapping")
        for name, mapping in objs.items():
            name = str(name)
            mapping = mapping if isinstance(mapping, dict) else {}
            sha, mark = headers.get((rtype, name), ("", ""))
            mark = mark if parse_mark(mark) else ""
            out[(rtype, name)] = Entry(rtype, name, attrs_from_yaml(rtype, name, mapping), mark,
                                       mapping=mapping, sha=sha)
    return out


def defined_ids(text: str) -> set[str]:
    """Every interface ID a (foreign) netplan file defines, of any device type."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return set()
    network = doc.get("network") if isinstance(doc, dict) else None
    ids: set[str] = set()
    if isinstance(network, dict):
        for objs in network.values():
            if isinstance(objs, dict):
                ids.update(str(k) for k in objs)
    return ids
