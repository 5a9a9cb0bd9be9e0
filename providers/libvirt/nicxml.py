"""Domain interface XML ⇄ ``nic_attachment`` attributes, and the NIC marks (pure).

Mapping (see docs/libvirt.md; blocks follow the networks' mechanical rule: an
element is a block of the same name in snake_case, its XML attributes are its
attributes, ``yes/no`` and ``on/off`` are bools)::

    network / bridge   <interface type='network'><source network=/>  |
                       <interface type='bridge'><source bridge=/>
    type = "direct"    <interface type='direct'>  (macvtap)
    source {dev mode}  <source dev= mode=/>       (direct only)
    mac                <mac address=/>
    model              <model type=/>
    driver {...}       <driver name= queues= rx_queue_size= tx_queue_size=>
                         <host csum= gso= tso4= tso6= ecn= ufo= mrg_rxbuf=/>
                         <guest csum= tso4= tso6= ecn= ufo=/></driver>
    bandwidth {...}    <bandwidth><inbound average= peak= burst= floor=/><outbound .../>
    port {isolated}    <port isolated=/>
    vlan {trunk tag}   <vlan trunk=><tag id= nativeMode=/>...</vlan>
    virtualport {type parameters {...}}  <virtualport type=><parameters .../></virtualport>
    trust_guest_rx_filters  <interface trustGuestRxFilters=>
    mtu {size}         <mtu size=/>
    link_state         <link state=/>      (absent: up)

``queues`` (v1) is shorthand for ``driver { queues }``; the canonical form (see
``types.canonical_nic``) always has the block.

Ownership marks of NICs live in the domain's ``<metadata>`` (an interface has no
free-text field that could carry ``kvmnet:LINEAGE:ADDRESS``; a user alias allows
only ``ua-[A-Za-z0-9_-]``)::

    <metadata>
      <kvmnet:nics xmlns:kvmnet="https://kvmnet.dev/xmlns/1">
        <kvmnet:nic mac="52:54:00:12:34:56">kvmnet:LINEAGE:nic_attachment.web</kvmnet:nic>
      </kvmnet:nics>
    </metadata>
"""
from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from kvmnet.providers.libvirt.netxml import NS

NICS_TAG = f"{{{NS}}}nics"
NIC_TYPES = ("network", "bridge", "direct")
NIC_FIELDS = ("type", "network", "bridge", "source", "model", "driver", "bandwidth", "port",
              "vlan", "virtualport", "trust_guest_rx_filters", "mtu", "link_state")

# XML attribute kinds of the mapped elements: int, bool written on/off, bool yes/no, text
INT, ONOFF, YESNO, TEXT = "int", "onoff", "yesno", "text"
DRIVER_ATTRS = {"name": TEXT, "queues": INT, "rx_queue_size": INT, "tx_queue_size": INT}
HOST_ATTRS = {k: ONOFF for k in ("csum", "gso", "tso4", "tso6", "ecn", "ufo", "mrg_rxbuf")}
GUEST_ATTRS = {k: ONOFF for k in ("csum", "tso4", "tso6", "ecn", "ufo")}
RATE_ATTRS = {k: INT for k in ("average", "peak", "burst", "floor")}
SOURCE_ATTRS = {"dev": TEXT, "mode": TEXT}
VPORT_PARAMS = {k: TEXT for k in ("interfaceid", "profileid", "managerid", "typeid",
                                  "typeidversion", "instanceid")}
DIRECTIONS = ("inbound", "outbound")


def xml_name(attr: str) -> str:
    """``native_mode`` → ``nativeMode`` (XML attributes other than the driver's are camelCase)."""
    head, *rest = attr.split("_")
    return head + "".join(w.capitalize() for w in rest)


def _read(el: ET.Element | None, kinds: dict[str, str], camel: bool = False) -> dict | None:
    """The mapped attributes of ``el`` that are present, typed; None without ``el``."""
    if el is None:
        return None
    out: dict[str, Any] = {}
    for attr, kind in kinds.items():
        raw = el.get(xml_name(attr) if camel else attr)
        if raw is None:
            continue
        if kind == INT:
            out[attr] = int(raw)
        elif kind in (ONOFF, YESNO):
            out[attr] = raw in ("on", "yes")
        else:
            out[attr] = raw
    return out


def _write(el: ET.Element, values: dict | None, kinds: dict[str, str], camel: bool = False) -> None:
    for attr, kind in kinds.items():
        v = (values or {}).get(attr)
        if v is None:
            continue
        if kind == ONOFF:
            text = "on" if v else "off"
        elif kind == YESNO:
            text = "yes" if v else "no"
        else:
            text = str(v)
        el.set(xml_name(attr) if camel else attr, text)


# -- XML → attributes (one function per block) -------------------------------------
def read_driver(iface: ET.Element) -> dict | None:
    el = iface.find("driver")
    out = _read(el, DRIVER_ATTRS)
    if el is None or out is None:
        return None
    for sub, kinds in (("host", HOST_ATTRS), ("guest", GUEST_ATTRS)):
        part = _read(el.find(sub), kinds)
        if part:
            out[sub] = part
    return out or None


def read_bandwidth(iface: ET.Element) -> dict | None:
    el = iface.find("bandwidth")
    if el is None:
        return None
    out = {d: _read(el.find(d), RATE_ATTRS) for d in DIRECTIONS}
    return {d: v for d, v in out.items() if v} or None


def read_vlan(iface: ET.Element) -> dict | None:
    el = iface.find("vlan")
    if el is None:
        return None
    out: dict[str, Any] = {}
    if el.get("trunk") is not None:
        out["trunk"] = el.get("trunk") == "yes"
    out["tag"] = [_read(t, {"id": INT, "native_mode": TEXT}, camel=True) for t in el.findall("tag")]
    return out


def read_virtualport(iface: ET.Element) -> dict | None:
    el = iface.find("virtualport")
    if el is None:
        return None
    out: dict[str, Any] = {}
    if el.get("type"):
        out["type"] = el.get("type")
    params = _read(el.find("parameters"), VPORT_PARAMS)
    if params:
        out["parameters"] = params
    return out


def interface_fields(el: ET.Element) -> dict:
    """The ``nic_attachment`` fields of one ``<interface>`` (absent blocks: None)."""
    kind = el.get("type") or ""
    src = el.find("source")
    model = el.find("model")
    link = el.find("link")
    port = _read(el.find("port"), {"isolated": YESNO})
    mtu = _read(el.find("mtu"), {"size": INT})
    return dict(
        type=kind,
        network=src.get("network") if src is not None and kind == "network" else None,
        bridge=src.get("bridge") if src is not None and kind == "bridge" else None,
        source=_read(src, SOURCE_ATTRS) if kind == "direct" else None,
        model=model.get("type") if model is not None else None,
        driver=read_driver(el),
        bandwidth=read_bandwidth(el),
        port=port or None,
        vlan=read_vlan(el),
        virtualport=read_virtualport(el),
        trust_guest_rx_filters=el.get("trustGuestRxFilters") == "yes",
        mtu=mtu or None,
        link_state=(link.get("state") if link is not None else None) or "up",
    )


# -- what kvmnet does not model ---------------------------------------------------------
# the mapped elements of an <interface> and their mapped XML attributes (children
# of a mapped element: theirs); everything else is kept verbatim or reported lost
MODELLED: dict[str, tuple[str, ...]] = {
    "mac": ("address",), "source": ("network", "bridge", "dev", "mode"), "model": ("type",),
    "driver": tuple(DRIVER_ATTRS), "driver/host": tuple(HOST_ATTRS), "driver/guest": tuple(GUEST_ATTRS),
    "bandwidth": (), "bandwidth/inbound": tuple(RATE_ATTRS), "bandwidth/outbound": tuple(RATE_ATTRS),
    "port": ("isolated",), "vlan": ("trunk",), "vlan/tag": ("id", "nativeMode"),
    "virtualport": ("type",), "virtualport/parameters": tuple(VPORT_PARAMS),
    "mtu": ("size",), "link": ("state",),
}
_INTERFACE_ATTRS = ("type", "trustGuestRxFilters")
# what libvirt adds to a mapped element of a running NIC: not configuration
_FILLED_ATTRS = {"source": ("portid", "bridge")}


def _libvirt_fills(el: ET.Element) -> bool:
    """An element libvirt makes itself for a running NIC: its generated alias
    (``net0``; a user alias is ``ua-…``) and tap/macvtap name (``vnet3``)."""
    if el.tag == "alias":
        return not (el.get("name") or "").startswith("ua-")
    if el.tag == "target":
        return bool(re.fullmatch(r"(vnet|macvtap)\d+", el.get("dev") or ""))
    return False


def kept_parts(el: ET.Element) -> list[str]:
    """What kvmnet does not model in an ``<interface>``, as XML, kept verbatim: its
    unmodelled children (``<boot order>``, ``<rom>``, ``<address>``, ``<filterref>``, a
    user ``<alias>``, ...) in document order, then the unmodelled attributes and
    children of the interface itself and of each mapped element (``<source
    portgroup>``, a newer libvirt's ``<driver><foo>``), each as a part of that
    element (:func:`nested_parts`); what libvirt fills in for a running NIC is left out."""
    out = []
    for child in el:
        if child.tag in MODELLED or _libvirt_fills(child):
            continue
        c = copy.deepcopy(child)
        c.tail = None
        out.append(ET.tostring(c, encoding="unicode"))
    return out + nested_parts(el)


# a part of a mapped element: where it goes back (its path in the interface)
PART = f"{{{NS}}}part"
# repeated mapped elements: no one place for a part to go back to (their unmodelled
# parts are lost)
_REPEATED = ("vlan/tag",)


def _part(tag: str, path: str, attrib: dict[str, str], children: list[ET.Element]) -> str:
    el = ET.Element(tag, {PART: path, **attrib})
    for c in children:
        c = copy.deepcopy(c)
        c.tail = None
        el.append(c)
    return ET.tostring(el, encoding="unicode")


def nested_parts(el: ET.Element) -> list[str]:
    """The unmodelled attributes and children of the interface (``path`` "") and of
    each mapped element, one partial copy of that element each: its tag, those
    attributes and children, and ``kvmnet:part="PATH"`` saying where it goes back."""
    out = []
    extra = {a: v for a, v in el.attrib.items() if a not in _INTERFACE_ATTRS}
    if extra:
        out.append(_part("interface", "", extra, []))

    def walk(parent: ET.Element, path: str) -> None:
        for child in parent:
            p = f"{path}/{child.tag}" if path else child.tag
            known = MODELLED.get(p)
            if known is None or p in _REPEATED:
                continue
            skip = known + _FILLED_ATTRS.get(p, ())
            attrs = {a: v for a, v in child.attrib.items() if a not in skip}
            kids = [c for c in child if isinstance(c.tag, str) and MODELLED.get(f"{p}/{c.tag}") is None]
            if attrs or kids:
                out.append(_part(child.tag, p, attrs, kids))
            walk(child, p)
    walk(el, "")
    return out


def _put_back(el: ET.Element, part: ET.Element) -> None:
    """A part of a mapped element merged into ``el``'s element at its path (made
    when the new interface has none); what the model sets there wins."""
    path = part.attrib.pop(PART)
    target = el
    for tag in path.split("/") if path else []:
        found = target.find(tag)
        target = found if found is not None else ET.SubElement(target, tag)
    for a, v in part.attrib.items():
        if target.get(a) is None:
            target.set(a, v)
    for c in part:
        target.append(c)


def restorable(el: ET.Element) -> str:
    """A running NIC's element as it can be attached again: without what libvirt
    filled in for it (its generated alias and tap name, the virtual port's id and a
    network interface's bridge)."""
    c = copy.deepcopy(el)
    for child in list(c):
        if _libvirt_fills(child):
            c.remove(child)
    src = c.find("source")
    if src is not None:
        src.attrib.pop("portid", None)
        if c.get("type") == "network":
            src.attrib.pop("bridge", None)
    c.tail = None
    return ET.tostring(c, encoding="unicode")


def lost_parts(el: ET.Element) -> list[str]:
    """What neither the model nor ``kept`` carries into a new interface: an unmapped
    attribute or child of a repeated mapped element (``<vlan><tag>``)."""
    out: list[str] = []
    for rep in _REPEATED:
        known = MODELLED[rep]
        for child in el.findall(rep):
            out.extend(f"<{rep.replace('/', '><')} {a}>" for a in child.attrib if a not in known)
            out.extend(f"<{rep.replace('/', '><')}><{c.tag}>" for c in child if isinstance(c.tag, str))
    return out


@dataclass
class Interface:
    """One <interface> of a domain definition."""

    mac: str
    type: str
    network: str | None
    bridge: str | None          # type=bridge: its source; type=network, live: the network's bridge
    model: str | None
    queues: int | None
    link_state: str
    element: ET.Element

    @property
    def xml(self) -> str:
        return ET.tostring(self.element, encoding="unicode")

    def fields(self) -> dict:
        return interface_fields(self.element)


def parse_interfaces(domain_xml: str | None) -> dict[str, Interface]:
    """Interfaces with a MAC, keyed by lower-case MAC."""
    if not domain_xml:
        return {}
    root = ET.fromstring(domain_xml)
    out: dict[str, Interface] = {}
    for el in root.findall("devices/interface"):
        mac_el = el.find("mac")
        address = mac_el.get("address") if mac_el is not None else None
        if not address:
            continue
        mac = address.lower()
        src = el.find("source")
        model = el.find("model")
        driver = el.find("driver")
        link = el.find("link")
        q = driver.get("queues") if driver is not None else None
        out[mac] = Interface(
            mac=mac,
            type=el.get("type") or "",
            network=src.get("network") if src is not None else None,
            bridge=src.get("bridge") if src is not None else None,
            model=model.get("type") if model is not None else None,
            queues=int(q) if q else None,
            link_state=(link.get("state") if link is not None else None) or "up",
            element=el,
        )
    return out


# -- attributes → XML ----------------------------------------------------------------
def _block(v) -> dict | None:
    """A single block, canonical (dict) or as config gives it (a list of one dict)."""
    if isinstance(v, list):
        return v[0] if v and isinstance(v[0], dict) else None
    return v if isinstance(v, dict) else None


def driver_element(attrs: dict) -> ET.Element | None:
    """``<driver>`` for the driver block (and the v1 ``queues``, written as before:
    ``name='vhost'`` when no name is given)."""
    d = dict(_block(attrs.get("driver")) or {})
    if attrs.get("queues") is not None and d.get("queues") is None:
        d["queues"] = attrs["queues"]
    if not d:
        return None
    if d.get("queues") is not None and d.get("name") is None:
        d["name"] = "vhost"
    el = ET.Element("driver")
    _write(el, d, DRIVER_ATTRS)
    for sub, kinds in (("host", HOST_ATTRS), ("guest", GUEST_ATTRS)):
        part = _block(d.get(sub))
        if part:
            _write(ET.SubElement(el, sub), part, kinds)
    return el


def bandwidth_element(value) -> ET.Element | None:
    b = _block(value)
    if b is None:
        return None
    el = ET.Element("bandwidth")
    for d in DIRECTIONS:
        rate = _block(b.get(d))
        if rate:
            _write(ET.SubElement(el, d), rate, RATE_ATTRS)
    return el


def vlan_element(value) -> ET.Element | None:
    v = _block(value)
    if v is None:
        return None
    el = ET.Element("vlan")
    if v.get("trunk") is not None:
        el.set("trunk", "yes" if v["trunk"] else "no")
    for tag in v.get("tag") or []:
        _write(ET.SubElement(el, "tag"), tag, {"id": INT, "native_mode": TEXT}, camel=True)
    return el


def virtualport_element(value) -> ET.Element | None:
    v = _block(value)
    if v is None:
        return None
    el = ET.Element("virtualport")
    if v.get("type"):
        el.set("type", v["type"])
    params = _block(v.get("parameters"))
    if params:
        _write(ET.SubElement(el, "parameters"), params, VPORT_PARAMS)
    return el


def render_interface(attrs: dict, mac: str | None = None) -> str:
    """A new <interface> for ``attrs`` (``mac`` overrides ``attrs['mac']``), with the
    verbatim ``kept`` parts of the interface it replaces."""
    el = ET.Element("interface")
    if attrs.get("trust_guest_rx_filters") is not None:
        el.set("trustGuestRxFilters", "yes" if attrs["trust_guest_rx_filters"] else "no")
    mac = mac or attrs.get("mac")
    if mac:
        ET.SubElement(el, "mac", address=mac)
    set_source(el, attrs)
    for sub in (virtualport_element(attrs.get("virtualport")), vlan_element(attrs.get("vlan"))):
        if sub is not None:
            el.append(sub)
    ET.SubElement(el, "model", type=attrs.get("model") or "virtio")
    # driver tuning is virtio's (libvirt hides a <driver> on other models and then
    # refuses later updates; the plan-time rules reject it)
    driver = driver_element(attrs) if (attrs.get("model") or "virtio") == "virtio" else None
    for sub in (driver, bandwidth_element(attrs.get("bandwidth"))):
        if sub is not None:
            el.append(sub)
    if attrs.get("link_state"):
        ET.SubElement(el, "link", state=attrs["link_state"])
    mtu = _block(attrs.get("mtu"))
    if mtu and mtu.get("size") is not None:
        ET.SubElement(el, "mtu", size=str(mtu["size"]))
    port = _block(attrs.get("port"))
    if port and port.get("isolated") is not None:
        ET.SubElement(el, "port", isolated="yes" if port["isolated"] else "no")
    kept = attrs.get("kept")
    for text in kept if isinstance(kept, list) else []:
        part = ET.fromstring(text)
        if part.get(PART) is not None:
            _put_back(el, part)
        else:
            el.append(part)
    return ET.tostring(el, encoding="unicode")


def set_source(el: ET.Element, attrs: dict) -> None:
    """Point ``el`` at ``attrs``' network, bridge or (direct) host device, replacing its <source>."""
    old = el.find("source")
    index = list(el).index(old) if old is not None else len(el.findall("mac"))
    if attrs.get("network"):
        el.set("type", "network")
        src = ET.Element("source", network=attrs["network"])
    elif attrs.get("bridge"):
        el.set("type", "bridge")
        src = ET.Element("source", bridge=attrs["bridge"])
    elif attrs.get("type") == "direct" and (_block(attrs.get("source")) or {}).get("dev"):
        el.set("type", "direct")
        src = ET.Element("source")
        _write(src, _block(attrs.get("source")), SOURCE_ATTRS)
    else:
        raise ValueError("a nic_attachment needs a network, a bridge or type = \"direct\" "
                         "with source { dev }")
    if old is not None:
        el.remove(old)
    el.insert(index, src)


def updated_interface(current: Interface, attrs: dict) -> str:
    """``current``'s element with what libvirt changes live set to ``attrs``: the
    source network or bridge (a direct NIC keeps its device), the link state and,
    when given, the bandwidth."""
    el = copy.deepcopy(current.element)
    f = interface_fields(el)
    # the <source> is rewritten only when it moves: as found, it keeps what kvmnet
    # does not model (a portgroup, say)
    if current.type != "direct" and (f["network"], f["bridge"]) != (attrs.get("network"), attrs.get("bridge")):
        set_source(el, attrs)
    link = el.find("link")
    if link is None:
        link = ET.SubElement(el, "link")
    link.set("state", attrs.get("link_state") or "up")
    if attrs.get("bandwidth") is not None:
        old = el.find("bandwidth")
        new = bandwidth_element(attrs["bandwidth"])
        if old is not None:
            el.remove(old)
        if new is not None and len(new):
            el.append(new)
    return ET.tostring(el, encoding="unicode")


def in_place_same(fields: dict, attrs: dict) -> bool:
    """Whether an interface's ``fields`` already have what ``updated_interface`` sets."""
    if attrs.get("type") != "direct" and (fields["network"] != attrs.get("network")
                                           or fields["bridge"] != attrs.get("bridge")):
        return False
    if fields["link_state"] != (attrs.get("link_state") or "up"):
        return False
    want = _block(attrs.get("bandwidth"))
    return want is None or (fields["bandwidth"] or {}) == {k: v for k, v in want.items() if v}


# -- marks in the domain metadata -----------------------------------------------------
def parse_marks(domain_xml: str | None) -> dict[str, str]:
    """``{mac: mark text}`` from the domain's kvmnet metadata."""
    if not domain_xml:
        return {}
    root = ET.fromstring(domain_xml)
    el = root.find(f"metadata/{NICS_TAG}")
    if el is None:
        return {}
    out = {}
    for nic in el:
        mac = nic.get("mac")
        if nic.tag.rsplit("}", 1)[-1] == "nic" and mac and nic.text:
            out[mac.lower()] = nic.text.strip()
    return out


def render_marks(marks: dict[str, str]) -> str:
    """The metadata element body for ``virDomainSetMetadata`` (namespace added by libvirt)."""
    root = ET.Element("nics")
    for mac, text in sorted(marks.items()):
        ET.SubElement(root, "nic", mac=mac).text = text
    return ET.tostring(root, encoding="unicode")


# -- live and saved together --------------------------------------------------------
def merged_fields(live: Interface | None, saved: Interface | None) -> dict:
    """The NIC's fields: the live ones when it is live, else the saved ones.

    A field whose live and saved values differ (``virsh domif-setlink`` without
    ``--config``, say) is reported as ``"LIVE (saved: SAVED)"``, so it shows as
    drift whatever was desired, and an update sets both.
    """
    if live is None or saved is None:
        only = live or saved
        assert only is not None           # callers pass a NIC that exists somewhere
        return only.fields()
    lf, sf = live.fields(), saved.fields()
    out = {}
    for k in NIC_FIELDS:
        out[k] = lf[k] if lf[k] == sf[k] else f"{lf[k]} (saved: {sf[k]})"
    return out
