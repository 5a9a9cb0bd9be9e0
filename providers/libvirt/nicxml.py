"""Domain interface XML ⇄ ``nic_attachment`` attributes, and the NIC marks (pure).

Mapping (see docs/libvirt.md)::

    network / bridge   <interface type='network'><source network=/>  |
                       <interface type='bridge'><source bridge=/>
    mac                <mac address=/>
    model              <model type=/>
    queues             <driver name='vhost' queues=/>
    link_state         <link state=/>      (absent: up)

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
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from kvmnet.providers.libvirt.netxml import NS

NICS_TAG = f"{{{NS}}}nics"
NIC_FIELDS = ("network", "bridge", "model", "queues", "link_state")


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
        return dict(network=self.network if self.type == "network" else None,
                    bridge=self.bridge if self.type == "bridge" else None,
                    model=self.model, queues=self.queues, link_state=self.link_state)


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


def render_interface(attrs: dict, mac: str | None = None) -> str:
    """A new <interface> for ``attrs`` (``mac`` overrides ``attrs['mac']``)."""
    el = ET.Element("interface")
    mac = mac or attrs.get("mac")
    if mac:
        ET.SubElement(el, "mac", address=mac)
    set_source(el, attrs)
    ET.SubElement(el, "model", type=attrs.get("model") or "virtio")
    if attrs.get("queues") and (attrs.get("model") or "virtio") == "virtio":
        ET.SubElement(el, "driver", name="vhost", queues=str(attrs["queues"]))
    if attrs.get("link_state"):
        ET.SubElement(el, "link", state=attrs["link_state"])
    return ET.tostring(el, encoding="unicode")


def set_source(el: ET.Element, attrs: dict) -> None:
    """Point ``el`` at ``attrs``' network or bridge (replacing its <source>)."""
    old = el.find("source")
    index = list(el).index(old) if old is not None else len(el.findall("mac"))
    if old is not None:
        el.remove(old)
    if attrs.get("network"):
        el.set("type", "network")
        src = ET.Element("source", network=attrs["network"])
    elif attrs.get("bridge"):
        el.set("type", "bridge")
        src = ET.Element("source", bridge=attrs["bridge"])
    else:
        raise ValueError("a nic_attachment needs a network or a bridge")
    el.insert(index, src)


def updated_interface(current: Interface, attrs: dict) -> str:
    """``current``'s element with source and link state changed to ``attrs``."""
    el = copy.deepcopy(current.element)
    set_source(el, attrs)
    link = el.find("link")
    if link is None:
        link = ET.SubElement(el, "link")
    link.set("state", attrs.get("link_state") or "up")
    return ET.tostring(el, encoding="unicode")


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
