"""libvirt network XML ⇄ kvmnet's canonical ``network`` attributes (pure functions).

Mapping (see docs/libvirt.md)::

    name            <name>
    mode            <forward mode='nat|route|bridge'/>; isolated: no <forward>
    nat_port_range  <forward mode='nat'><nat><port start= end=/></nat></forward>
    bridge          <bridge name=/>   (nat/route/isolated: the bridge libvirt makes;
                                       bridge mode: the existing host bridge)
    mtu             <mtu size=/>
    domain          <domain name=/>
    virtualport     <virtualport type='openvswitch'/>
    vlan_tag        <vlan><tag id=/></vlan>
    ip              the first IPv4 <ip address= prefix=|netmask=>
    ip.dhcp_range   <ip><dhcp><range start= end=/>
    ip.dhcp_host    <ip><dhcp><host mac= ip= name=/>
    uuid            <uuid>              (computed)
    mark            <metadata><kvmnet:owner xmlns:kvmnet="https://kvmnet.dev/xmlns/1">

``autostart`` and ``active`` are not in the XML; the reader adds them.
Nothing here imports libvirt.
"""
from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET

from kvmnet.providers.libvirt.types import NETWORK

NS = "https://kvmnet.dev/xmlns/1"
NS_PREFIX = "kvmnet"
OWNER_TAG = f"{{{NS}}}owner"

ET.register_namespace(NS_PREFIX, NS)

MODES = ("nat", "route", "isolated", "bridge")


class NetworkXMLError(ValueError):
    pass


# -- attributes → XML -----------------------------------------------------------------
def render_network(attrs: dict, mark: str | None = None, uuid: str | None = None) -> str:
    """The network definition for ``attrs`` (canonical or as configured)."""
    a = NETWORK.canon(attrs)
    mode = a.get("mode")
    if mode not in MODES:
        raise NetworkXMLError(f"unknown network mode {mode!r}")
    net = ET.Element("network")
    ET.SubElement(net, "name").text = a["name"]
    if uuid:
        ET.SubElement(net, "uuid").text = uuid
    if mark:
        set_mark(net, mark)
    if mode != "isolated":
        fwd = ET.SubElement(net, "forward", mode=mode)
        pr = a.get("nat_port_range")
        if mode == "nat" and pr:
            nat = ET.SubElement(fwd, "nat")
            ET.SubElement(nat, "port", start=str(pr[0]), end=str(pr[1]))
    if a.get("bridge"):
        ET.SubElement(net, "bridge", name=a["bridge"])
    if a.get("mtu") is not None:
        ET.SubElement(net, "mtu", size=str(a["mtu"]))
    if a.get("domain"):
        ET.SubElement(net, "domain", name=a["domain"])
    if a.get("virtualport"):
        ET.SubElement(net, "virtualport", type=a["virtualport"])
    if a.get("vlan_tag") is not None:
        vlan = ET.SubElement(net, "vlan")
        ET.SubElement(vlan, "tag", id=str(a["vlan_tag"]))
    ip = a.get("ip")
    if ip:
        ipel = ET.SubElement(net, "ip", address=ip["address"], prefix=str(ip["prefix"]))
        if ip.get("dhcp_range") or ip.get("dhcp_host"):
            dhcp = ET.SubElement(ipel, "dhcp")
            for r in ip.get("dhcp_range") or []:
                dhcp.append(range_element(r))
            for h in ip.get("dhcp_host") or []:
                dhcp.append(host_element(h))
    return ET.tostring(net, encoding="unicode")


def range_element(r: dict) -> ET.Element:
    return ET.Element("range", start=r["start"], end=r["end"])


def host_element(h: dict) -> ET.Element:
    el = ET.Element("host")
    if h.get("mac"):
        el.set("mac", h["mac"])
    if h.get("name"):
        el.set("name", h["name"])
    if h.get("ip"):
        el.set("ip", h["ip"])
    return el


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
def _int(v: str | None) -> int | None:
    return int(v) if v not in (None, "") else None


def _ipv4_element(net: ET.Element) -> ET.Element | None:
    for ip in net.findall("ip"):
        fam = ip.get("family")
        if fam in (None, "ipv4") and ":" not in (ip.get("address") or ""):
            return ip
    return None


def parse_dhcp(ipel: ET.Element | None) -> tuple[list[dict], list[dict]]:
    """(dhcp_range, dhcp_host) of an <ip> element, canonical order."""
    if ipel is None:
        return [], []
    ranges = [dict(start=r.get("start"), end=r.get("end")) for r in ipel.findall("dhcp/range")]
    hosts = [dict(mac=(h.get("mac") or "").lower() or None, ip=h.get("ip"), name=h.get("name"))
             for h in ipel.findall("dhcp/host")]
    ip = NETWORK.canon({"ip": {"address": "", "prefix": 0,
                                      "dhcp_range": ranges, "dhcp_host": hosts}})["ip"]
    return ip["dhcp_range"], ip["dhcp_host"]


def parse_network(xml: str) -> tuple[dict, str | None]:
    """(canonical attributes without autostart/active, mark text) of a network XML."""
    net = ET.fromstring(xml)
    fwd = net.find("forward")
    mode = "isolated" if fwd is None else (fwd.get("mode") or "nat")
    port = fwd.find("nat/port") if fwd is not None else None
    br = net.find("bridge")
    mtu = net.find("mtu")
    dom = net.find("domain")
    vp = net.find("virtualport")
    tag = net.find("vlan/tag")
    ipel = _ipv4_element(net)
    ip = None
    if ipel is not None:
        prefix = _int(ipel.get("prefix"))
        if prefix is None and ipel.get("netmask"):
            prefix = ipaddress.IPv4Network(f"0.0.0.0/{ipel.get('netmask')}").prefixlen
        ranges, hosts = parse_dhcp(ipel)
        ip = dict(address=ipel.get("address"), prefix=prefix, dhcp_range=ranges, dhcp_host=hosts)
    attrs = dict(
        name=net.findtext("name"),
        mode=mode,
        bridge=br.get("name") if br is not None else None,
        mtu=_int(mtu.get("size")) if mtu is not None else None,
        domain=dom.get("name") if dom is not None else None,
        nat_port_range=([int(port.get("start", "")), int(port.get("end", ""))]
                        if mode == "nat" and port is not None and port.get("start") else None),
        ip=ip,
        virtualport=vp.get("type") if vp is not None else None,
        vlan_tag=_int(tag.get("id")) if tag is not None else None,
        uuid=net.findtext("uuid"),
    )
    return NETWORK.canon(attrs), mark_of(net)


# -- live vs saved --------------------------------------------------------------------
LIVE_ONLY = " (live only)"
SAVED_ONLY = " (saved only)"


def merge_live_dhcp(saved_ip: dict | None, live_ip: dict | None) -> dict | None:
    """The ``ip`` attribute to report when the live DHCP sections differ from the saved ones.

    ``virsh net-update --live`` changes only the running network and ``virsh
    net-edit`` only the saved definition, and either one is drift. Without knowing
    which of the two kvmnet wrote last, the reader reports every entry of both, and
    an entry found in only one of them is annotated (``name``/``end`` gets the
    suffix " (live only)" or " (saved only)"), so it differs from any desired value
    and the plan shows the attribute as changed; the update then puts both
    definitions right.
    """
    if saved_ip is None or live_ip is None:
        return saved_ip if saved_ip is not None else live_ip
    out = dict(saved_ip)
    out["dhcp_host"] = _merge(saved_ip["dhcp_host"], live_ip["dhcp_host"], "name")
    out["dhcp_range"] = _merge(saved_ip["dhcp_range"], live_ip["dhcp_range"], "end")
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
