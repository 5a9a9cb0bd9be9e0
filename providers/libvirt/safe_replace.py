"""A network replace that cannot leave the host without the network (issue 11, item 3).

Before the old network goes, libvirt itself checks the new definition: it is defined
under a temporary name, with a fresh UUID and a bridge name nothing else uses, with
``VIR_NETWORK_DEFINE_VALIDATE`` (libvirt's schema check), and undefined again. The
old network is remembered exactly (its saved XML, whether it ran, its autostart);
when the create still fails at apply, :func:`restore` puts it back: same UUID,
byte-equal saved XML, started again if it ran.
"""
from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.libvirt.lv import libvirt, libvirt_error, lookup_network

PROBE_PREFIX = "kvmnet-probe-"


@dataclass(frozen=True)
class Saved:
    """One network exactly as it was before a replace."""

    name: str
    xml: str                # saved definition (persistent) or live one (transient)
    persistent: bool
    active: bool
    autostart: bool


def probe_xml(xml: str, token: str) -> str:
    """``xml`` under a name, UUID and bridge name of its own (pure): the name
    ``kvmnet-probe-<token>``, no ``<uuid>`` (libvirt makes a fresh one), a bridge
    ``kvp<token>`` where a bridge name is set (libvirt refuses a bridge name another
    network uses, and the old network still holds it), no ``<mac>`` (ditto)."""
    root = ET.fromstring(xml)
    name = root.find("name")
    if name is None:
        name = ET.SubElement(root, "name")
    name.text = PROBE_PREFIX + token
    for tag in ("uuid", "mac"):
        for el in root.findall(tag):
            root.remove(el)
    bridge = root.find("bridge")
    if bridge is not None and bridge.get("name"):
        bridge.set("name", f"kvp{token}"[:15])
    return ET.tostring(root, encoding="unicode")


def validate(conn, name: str, xml: str) -> None:
    """libvirt's own check of ``xml`` (for network ``name``), leaving nothing behind."""
    lv = libvirt()
    probe = probe_xml(xml, secrets.token_hex(4))
    try:
        net = conn.networkDefineXMLFlags(probe, lv.VIR_NETWORK_DEFINE_VALIDATE)
    except lv.libvirtError as e:
        raise ProviderError(f'network "{name}": libvirt refuses the new definition, '
                            f"so the old network is left as it is: {e.get_error_message()}") from e
    with libvirt_error(f'network "{name}": remove the temporary check definition'):
        net.undefine()


def save(conn, name: str) -> Saved | None:
    """Network ``name`` as it is now, or None when there is none."""
    lv = libvirt()
    net = lookup_network(conn, name)
    if net is None:
        return None
    with libvirt_error(f'network "{name}": read before replace'):
        persistent, active = bool(net.isPersistent()), bool(net.isActive())
        xml = net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE if persistent else 0)
        autostart = bool(net.autostart()) if persistent else False
    return Saved(name, xml, persistent, active, autostart)


def _remove_new(conn, name: str) -> None:
    """Whatever a failed create left under ``name``."""
    lv = libvirt()
    try:
        net = conn.networkLookupByName(name)
    except lv.libvirtError:
        return
    with libvirt_error(f'network "{name}": remove the failed new definition'):
        if net.isActive():
            net.destroy()
        if net.isPersistent():
            net.undefine()


def restore(conn, saved: Saved) -> None:
    """Put ``saved`` back exactly: same UUID and saved XML, running if it ran, the
    same autostart. Raises ProviderError if libvirt does not give it back byte-equal."""
    lv = libvirt()
    name = saved.name
    _remove_new(conn, name)
    with libvirt_error(f'network "{name}": put the old network back'):
        if saved.persistent:
            net = conn.networkDefineXML(saved.xml)
            net.setAutostart(1 if saved.autostart else 0)
            if saved.active:
                net.create()
            back = net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)
        else:
            net = conn.networkCreateXML(saved.xml)
            back = net.XMLDesc(0)
    if back != saved.xml:
        raise ProviderError(f'network "{name}": the old network is back, but its definition '
                            "reads back differently from before the replace")
