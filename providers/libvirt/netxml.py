"""libvirt network XML ⇄ kvmnet's canonical ``network`` attributes (pure functions).

The mapping is the table in :mod:`netshape` (docs/libvirt.md lists it), applied
by :mod:`netmodel`; this module adds what is particular to kvmnet: a network
without ``<forward>`` reads as ``forward { mode = "isolated" }``, kvmnet's
ownership mark lives in ``<metadata>``, and the live and saved DHCP sections are
merged for the reader. ``autostart`` and ``active`` are not in the XML; the
reader adds them. Nothing here imports libvirt.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from kvmnet.providers.libvirt import netmodel
from kvmnet.providers.libvirt.netmodel import KVMNET_NS as NS, OWNER_TAG
from kvmnet.providers.libvirt.netshape import NETWORK as SHAPE
from kvmnet.providers.libvirt.network_canon import ISOLATED
from kvmnet.providers.libvirt.types import NETWORK

NS_PREFIX = "kvmnet"
__all__ = ["NS", "OWNER_TAG", "parse_network", "parse_full", "render_network"]

ET.register_namespace(NS_PREFIX, NS)

_DHCP = SHAPE.child("ip").child("dhcp")   # type: ignore[union-attr]


class NetworkXMLError(ValueError):
    pass


# -- attributes → XML -----------------------------------------------------------------
def render_network(attrs: dict, mark: str | None = None, uuid: str | None = None) -> str:
    """The network definition for ``attrs`` (canonical or as configured), kept parts included."""
    a = NETWORK.canon(attrs)
    a.pop("autostart", None)
    a.pop("active", None)
    if uuid:
        a["uuid"] = uuid
    fwd = a.get("forward")
    if isinstance(fwd, dict) and fwd.get("mode") == ISOLATED:
        if len(fwd) > 1:
            raise NetworkXMLError('forward { mode = "isolated" } means no forwarding: it takes no other attribute')
        a.pop("forward")
    return ET.tostring(netmodel.render(a, mark), encoding="unicode")


def range_element(r: dict) -> ET.Element:
    return netmodel.render_element("range", r, _DHCP.child("range"))   # type: ignore[union-attr,arg-type]


def host_element(h: dict) -> ET.Element:
    return netmodel.render_element("host", h, _DHCP.child("host"))   # type: ignore[union-attr,arg-type]


def element_text(el: ET.Element) -> str:
    return ET.tostring(el, encoding="unicode")


# -- the ownership mark ------------------------------------------------------------------
def set_mark(net: ET.Element, mark: str) -> None:
    """Put ``mark`` into the network's <metadata> (replacing an older kvmnet mark)."""
    md = net.find("metadata")
    if md is None:
        md = ET.Element("metadata")
        # <metadata> goes right after <name>/<uuid>, as libvirt writes it
        pos = max((i + 1 for i, c in enumerate(net) if c.tag in ("name", "uuid", "title", "description")),
                  default=0)
        net.insert(pos, md)
    for old in md.findall(OWNER_TAG):
        md.remove(old)
    ET.SubElement(md, OWNER_TAG).text = mark


def mark_of(net: ET.Element) -> str | None:
    el = net.find(f"metadata/{OWNER_TAG}")
    return el.text.strip() if el is not None and el.text else None


def with_mark(xml: str, mark: str) -> str:
    """``xml`` (a saved network definition) with kvmnet's mark set; all else kept."""
    net = ET.fromstring(xml)
    set_mark(net, mark)
    return ET.tostring(net, encoding="unicode")


# -- XML → attributes -------------------------------------------------------------------
def parse_full(xml: str) -> tuple[dict, str | None, list[str]]:
    """(canonical attributes without autostart/active, mark, what the model would lose)."""
    attrs, mark, lost = netmodel.parse(xml)
    if attrs.get("forward") is None:
        attrs["forward"] = {"mode": ISOLATED}
    return NETWORK.canon(attrs), mark, lost


def parse_network(xml: str) -> tuple[dict, str | None]:
    """(canonical attributes without autostart/active, mark text) of a network XML."""
    attrs, mark, _ = parse_full(xml)
    return attrs, mark


# -- live vs saved --------------------------------------------------------------------
LIVE_ONLY = " (live only)"
SAVED_ONLY = " (saved only)"


def merge_live_dhcp(saved_ips: list | None, live_ips: list | None) -> list | None:
    """The ``ip`` blocks to report when the live DHCP sections differ from the saved ones.

    ``virsh net-update --live`` changes only the running network and ``virsh
    net-edit`` only the saved definition, and either one is drift. Without knowing
    which of the two kvmnet wrote last, the reader reports every entry of both, and
    an entry found in only one of them is annotated (a host's ``name`` / a range's
    ``end`` gets the suffix " (live only)" or " (saved only)"), so it differs from
    any desired value and the plan shows the attribute as changed; the update then
    puts both definitions right. ``ip`` blocks are matched by position.
    """
    if not saved_ips or not live_ips:
        return saved_ips if saved_ips else live_ips
    out = []
    for i, saved in enumerate(saved_ips):
        live = live_ips[i] if i < len(live_ips) else None
        if live is None or saved.get("address") != live.get("address"):
            out.append(saved)
            continue
        merged = dict(saved)
        dhcp = dict(saved.get("dhcp") or {})
        for section, note in (("host", "name"), ("range", "end")):
            entries = _merge(list((saved.get("dhcp") or {}).get(section) or []),
                             list((live.get("dhcp") or {}).get(section) or []), note)
            if entries:
                dhcp[section] = entries
        if dhcp:
            merged["dhcp"] = dhcp
        out.append(merged)
    return NETWORK.canon({"ip": out})["ip"]


def _merge(saved: list[dict], live: list[dict], note_key: str) -> list[dict]:
    if saved == live:
        return saved
    out = [dict(x) for x in saved if x in live]
    for x in saved:
        if x not in live:
            out.append({**x, note_key: f"{x.get(note_key) or ''}{SAVED_ONLY}".lstrip()})
    for x in live:
        if x not in saved:
            out.append({**x, note_key: f"{x.get(note_key) or ''}{LIVE_ONLY}".lstrip()})
    return out
