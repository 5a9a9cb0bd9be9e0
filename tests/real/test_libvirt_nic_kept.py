"""A NIC replace keeps what kvmnet does not model (issue 11, item 2), against the
real sandboxed libvirtd with a defined, shut-off TCG guest, through the CLI: the
interface's ``<tune>``, ``<rom>``, PCI ``<address>`` and user ``<alias>``
(``<boot order>`` likewise, unit-tested: this guest boots by ``<os><boot>``, which
libvirt does not combine with per-device boot order) are listed by the plan ("kept
as found") and are in the new interface after the replace (a model change); so is an unmapped attribute of a mapped element (``<source
portgroup>``), put back into the new interface's ``<source>``."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt as lv

from tests.e2e.helpers import run_kvmnet, write_config

DOM, NET, MAC = "g-kept", "kptnet", "52:54:00:74:00:01"
IFACE = f"""<interface type='network'>
  <mac address='{MAC}'/>
  <source network='{NET}'{{portgroup}}/>
  <model type='virtio'/>
  <tune><sndbuf>1600</sndbuf></tune>
  <rom bar='off'/>
  <alias name='ua-keep'/>
  <address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/>
</interface>"""

CONFIG = """provider "libvirt" {{
  uri = "{uri}"
}}

resource "network" "kptnet" {{
  mode   = "nat"
  bridge = "kvkpt0"
  ip {{
    address = "10.74.0.1"
    prefix  = 24
  }}
}}

resource "nic_attachment" "k" {{
  domain  = "{dom}"
  network = network.kptnet.name
  mac     = "{mac}"
  model   = "{model}"
  live    = false           # the guest is shut off: its saved definition only
}}
"""


def _iface(conn) -> ET.Element:
    root = ET.fromstring(conn.lookupByName(DOM).XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE))
    (el,) = [i for i in root.findall("devices/interface") if i.find("mac").get("address") == MAC]
    return el


def test_a_nic_replace_keeps_what_kvmnet_does_not_model(libvirt, guest_image, tmp_path):
    from kvmnet.sandbox.guest import define_guest
    sb = libvirt
    cfg, state = tmp_path / "cfg", tmp_path / "s.db"

    def k(*args):
        return run_kvmnet(cfg, "--no-color", *args, state=state, timeout=120)

    write_config(cfg, CONFIG.format(uri=sb.uri, dom=DOM, mac=MAC, model="virtio"))
    define_guest(sb, DOM, guest_image)
    conn = sb.connect()
    try:
        dom = conn.lookupByName(DOM)
        dom.attachDeviceFlags(IFACE.format(portgroup=""), lv.VIR_DOMAIN_AFFECT_CONFIG)
        rc, out, err = k("import", "nic_attachment.k", f"{DOM}/{MAC}")
        assert rc == 0, out + err
        rc, out, err = k("apply", "--auto-approve")          # the network
        assert rc == 0, out + err
        rc, out, err = k("plan", "--detailed-exitcode")
        assert rc == 0, out + err

        write_config(cfg, CONFIG.format(uri=sb.uri, dom=DOM, mac=MAC, model="e1000"))
        rc, out, err = k("plan", "--detailed-exitcode")
        assert rc == 2, out + err
        assert "must be replaced" in out, out
        assert "# kept as found (verbatim, not managed): <tune>, <alias>, <rom>, <address>" in out, out
        rc, out, err = k("apply", "--auto-approve")
        assert rc == 0, out + err
        el = _iface(conn)
        assert el.find("model").get("type") == "e1000"
        assert el.find("tune/sndbuf").text == "1600" and el.find("rom").get("bar") == "off"
        assert el.find("alias").get("name") == "ua-keep"
        assert el.find("address").get("slot") == "0x07"
        rc, out, err = k("plan", "--detailed-exitcode")
        assert rc == 0, out + err

        # a portgroup on the source (not modelled: the source is the network) is kept as a
        # part of <source>, and put back into the new interface's source
        dom.updateDeviceFlags(ET.tostring(el, encoding="unicode").replace(
            f'network="{NET}"', f'network="{NET}" portgroup="eng"'), lv.VIR_DOMAIN_AFFECT_CONFIG)
        assert _iface(conn).find("source").get("portgroup") == "eng"
        write_config(cfg, CONFIG.format(uri=sb.uri, dom=DOM, mac=MAC, model="virtio"))
        rc, out, err = k("plan", "--detailed-exitcode")
        assert rc == 2 and "must be replaced" in out, out + err
        assert "# kept as found (verbatim, not managed): <tune>, <alias>, <rom>, <address>, <source>" in out, out
        rc, out, err = k("apply", "--auto-approve")
        assert rc == 0, out + err
        el = _iface(conn)
        assert el.find("model").get("type") == "virtio"
        assert el.find("source").attrib == {"network": NET, "portgroup": "eng"}
        assert el.find("tune/sndbuf").text == "1600"
        assert not [a for a in ET.tostring(el, encoding="unicode").split() if "kvmnet" in a], ET.tostring(el)
        rc, out, err = k("plan", "--detailed-exitcode")
        assert rc == 0, out + err
    finally:
        conn.close()


RUN, RUN_MAC = "g-kept-run", "52:54:00:74:00:02"
HOTPLUGGED = f"""<interface type='network'>
  <mac address='{RUN_MAC}'/>
  <source network='{NET}'/>
  <model type='virtio'/>
  <tune><sndbuf>1600</sndbuf></tune>
  <alias name='ua-hot'/>
</interface>"""


def _element(dom, flags: int) -> ET.Element:
    root = ET.fromstring(dom.XMLDesc(flags))
    (el,) = [i for i in root.findall("devices/interface") if i.find("mac").get("address") == RUN_MAC]
    return el


def _address(dom, flags: int) -> dict:
    return dict(_element(dom, flags).find("address").attrib)


def test_a_running_guests_nic_replace_keeps_its_slot_and_alias(libvirt, guest_image, tmp_path):
    """The replace detaches the NIC (the guest releases it), then attaches the new one
    live and saved at the same PCI address (on a hotplug-capable root port, where
    libvirt put the first one) with the same user alias."""
    from kvmnet.sandbox.guest import start_guest
    sb = libvirt
    cfg, state = tmp_path / "cfg", tmp_path / "s.db"

    def k(*args):
        return run_kvmnet(cfg, "--no-color", *args, state=state, timeout=120)

    def write(model: str) -> None:
        write_config(cfg, CONFIG.replace("  live    = false           # the guest is shut off: its saved "
                                         "definition only\n", "")
                     .format(uri=sb.uri, dom=RUN, mac=RUN_MAC, model=model))

    write_config(cfg, CONFIG.split('resource "nic_attachment"')[0].format(uri=sb.uri))   # the network first
    rc, out, err = k("apply", "--auto-approve")
    assert rc == 0, out + err
    write(model="virtio")
    start_guest(sb, RUN, guest_image, network=NET)
    conn = sb.connect()
    try:
        dom = conn.lookupByName(RUN)
        dom.attachDeviceFlags(HOTPLUGGED, lv.VIR_DOMAIN_AFFECT_LIVE | lv.VIR_DOMAIN_AFFECT_CONFIG)
        rc, out, err = k("import", "nic_attachment.k", f"{RUN}/{RUN_MAC}")
        assert rc == 0, out + err
        slot = _address(dom, lv.VIR_DOMAIN_XML_INACTIVE)        # where libvirt put it
        write(model="e1000e")
        rc, out, err = k("apply", "--auto-approve")
        assert rc == 0, out + err
        assert "<tune>, <alias>, <address>" in out, out
        for flags in (0, lv.VIR_DOMAIN_XML_INACTIVE):
            root = ET.fromstring(dom.XMLDesc(flags))
            (el,) = [i for i in root.findall("devices/interface") if i.find("mac").get("address") == RUN_MAC]
            assert el.find("model").get("type") == "e1000e"
            assert _address(dom, flags) == slot and el.find("alias").get("name") == "ua-hot"
            assert el.find("tune/sndbuf").text == "1600"
        assert dom.isActive()
        rc, out, err = k("plan", "--detailed-exitcode")
        assert rc == 0, out + err

        # a replace whose new NIC libvirt refuses at apply (its bridge does not exist):
        # the old NIC is attached again, live and saved, and the state keeps it
        before = {f: ET.tostring(_element(dom, f), encoding="unicode") for f in (0, lv.VIR_DOMAIN_XML_INACTIVE)}
        write(model="virtio")
        (cfg / "main.hcl").write_text((cfg / "main.hcl").read_text().replace(
            "network = network.kptnet.name", 'bridge  = "kvkptgone"'))
        rc, out, err = k("apply", "--auto-approve")
        assert rc == 1, out + err
        assert "the old object is back as it was" in err, err
        for f in (0, lv.VIR_DOMAIN_XML_INACTIVE):
            el = _element(dom, f)
            assert el.find("model").get("type") == "e1000e" and el.find("source").get("network") == NET
            assert _address(dom, f) == slot and el.find("alias").get("name") == "ua-hot"
        assert before[lv.VIR_DOMAIN_XML_INACTIVE] == ET.tostring(
            _element(dom, lv.VIR_DOMAIN_XML_INACTIVE), encoding="unicode")
        write(model="e1000e")
        rc, out, err = k("plan", "--detailed-exitcode")
        assert rc == 0, out + err
    finally:
        conn.close()
