"""libvirt provider, pure parts: XML render/parse round trips, DHCP steps, NIC XML, checks."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from kvmnet.sdk.ownership import parse_mark
from kvmnet.engine.resources import canonical
from kvmnet.sdk.values import UNKNOWN
from kvmnet.providers.libvirt import checks, dhcp, netxml, nicxml

MARK = "kvmnet:0f8e4d6a-7d0c-4a4e-9d55-6a0c2b1f0a11:network.lab"

FULL = dict(
    name="lab", mode="nat", bridge="virbr9", autostart=True, mtu=9000, domain="lab.test",
    nat_port_range=[2000, 3000], virtualport=None, vlan_tag=None,
    ip=[dict(address="10.20.0.1", prefix=24,
             dhcp_range=[dict(start="10.20.0.150", end="10.20.0.200"),
                         dict(start="10.20.0.100", end="10.20.0.120")],
             dhcp_host=[dict(mac="52:54:00:AA:00:02", ip="10.20.0.11", name=None),
                        dict(mac="52:54:00:aa:00:01", ip="10.20.0.10", name="web")])],
)


def roundtrip(attrs):
    xml = netxml.render_network(attrs, MARK, uuid="6c458ddd-5b2c-4357-b8ef-1a7f9333acbf")
    back, mark = netxml.parse_network(xml)
    return xml, back, mark


def test_network_render_parse_roundtrip_is_canonical():
    xml, back, mark = roundtrip(FULL)
    want = canonical("network", FULL)
    want.pop("autostart")
    assert back.pop("uuid") == "6c458ddd-5b2c-4357-b8ef-1a7f9333acbf"
    assert back.pop("kept") == []
    assert back == want
    assert canonical("network", back) == back
    assert parse_mark(mark).address == "network.lab"
    root = ET.fromstring(xml)
    assert root.find(f"metadata/{{{netxml.NS}}}owner").text == MARK
    assert root.find("forward").get("mode") == "nat"
    assert root.find("forward/nat/port").attrib == {"start": "2000", "end": "3000"}
    assert [h.get("mac") for h in root.findall("ip/dhcp/host")] == ["52:54:00:aa:00:01", "52:54:00:aa:00:02"]


@pytest.mark.parametrize("attrs, fwd", [
    (dict(name="r", mode="route", ip=[dict(address="10.1.0.1", prefix=24)]), "route"),
    (dict(name="i", mode="isolated", ip=[dict(address="10.2.0.1", netmask="255.255.0.0")]), None),
    (dict(name="b", mode="bridge", bridge="br0"), "bridge"),
    (dict(name="o", mode="bridge", bridge="ovsbr0", virtualport="openvswitch", vlan_tag=42), "bridge"),
])
def test_modes_roundtrip(attrs, fwd):
    xml, back, _ = roundtrip(attrs)
    root = ET.fromstring(xml)
    assert (root.find("forward").get("mode") if root.find("forward") is not None else None) == fwd
    assert back["forward"]["mode"] == attrs["mode"]
    assert back.get("bridge") == ({"name": attrs["bridge"]} if attrs.get("bridge") else None)
    assert back.get("virtualport") == ({"type": attrs["virtualport"]} if attrs.get("virtualport") else None)
    assert back.get("vlan") == ({"tag": [{"id": attrs["vlan_tag"]}]} if attrs.get("vlan_tag") else None)
    if attrs.get("ip"):   # a netmask reads as its prefix (as in v1)
        assert back["ip"] == [{"address": attrs["ip"][0]["address"], "prefix": 16 if attrs["mode"] == "isolated" else 24}]
    else:
        assert back.get("ip") is None


def test_parse_libvirt_written_xml_with_netmask_ipv6_and_extras():
    xml = """<network connections='2'>
      <name>default</name><uuid>7f077871-edc1-470a-9b0f-cebe9d3a7feb</uuid>
      <forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>
      <bridge name='virbr0' stp='on' delay='0'/><mac address='52:54:00:38:74:cd'/>
      <ip family='ipv6' address='fd00::1' prefix='64'/>
      <ip address='192.168.122.1' netmask='255.255.255.0'>
        <dhcp><range start='192.168.122.2' end='192.168.122.254'/>
          <host mac='52:54:00:AA:00:01' name='a' ip='192.168.122.10'/></dhcp>
      </ip></network>"""
    attrs, mark = netxml.parse_network(xml)
    assert mark is None
    assert attrs["ip"] == [
        {"family": "ipv6", "address": "fd00::1", "prefix": 64},
        {"address": "192.168.122.1", "prefix": 24,
         "dhcp": {"range": [{"start": "192.168.122.2", "end": "192.168.122.254"}],
                  "host": [{"mac": "52:54:00:aa:00:01", "ip": "192.168.122.10", "name": "a"}]}}]
    assert attrs["forward"] == {"mode": "nat", "nat": {"port": {"start": 1024, "end": 65535}}}
    assert attrs["bridge"] == {"name": "virbr0", "stp": True, "delay": 0}
    assert attrs["mac"] == {"address": "52:54:00:38:74:cd"}
    assert attrs["kept"] == []      # connections='2' is libvirt's live count, not configuration


def test_with_mark_keeps_everything_else_and_replaces_an_old_mark():
    xml = netxml.render_network(dict(name="x", mode="isolated"), "kvmnet:a:network.x", uuid="u-1")
    new = netxml.with_mark(xml, "kvmnet:b:network.y")
    attrs, mark = netxml.parse_network(new)
    assert mark == "kvmnet:b:network.y" and attrs["uuid"] == "u-1"
    assert new.count("owner") == 2      # one element: open and close tag
    bare = "<network><name>d</name><uuid>u-2</uuid><bridge name='v'/></network>"
    marked = ET.fromstring(netxml.with_mark(bare, MARK))
    assert [c.tag for c in marked][:3] == ["name", "uuid", "metadata"]


def test_merge_live_dhcp_annotates_entries_in_only_one_definition():
    saved = canonical("network", FULL)["ip"]
    dhcp = saved[0]["dhcp"]
    live = [dict(saved[0], dhcp=dict(host=dhcp["host"] + [dict(mac="52:54:00:aa:00:09", ip="10.20.0.19", name="x")],
                                     range=dhcp["range"][1:]))]
    merged = netxml.merge_live_dhcp(saved, live)
    assert {h["mac"]: h.get("name") for h in merged[0]["dhcp"]["host"]}["52:54:00:aa:00:09"] == "x (live only)"
    assert [r["end"] for r in merged[0]["dhcp"]["range"]] == ["10.20.0.120 (saved only)", "10.20.0.200"]
    assert netxml.merge_live_dhcp(saved, saved) == saved
    assert canonical("network", {"ip": merged})["ip"] == merged


def test_dhcp_steps_order_and_kinds():
    H = lambda m, ip, n=None: dict(mac=f"52:54:00:00:00:0{m}", ip=ip, name=n)
    cur = {"dhcp_range": [dict(start="10.0.0.100", end="10.0.0.200")],
           "dhcp_host": [H(1, "10.0.0.1"), H(2, "10.0.0.2"), H(3, "10.0.0.3")]}
    want = {"dhcp_range": [dict(start="10.0.0.50", end="10.0.0.60")],
            "dhcp_host": [H(1, "10.0.0.11", "a"), H(3, "10.0.0.3"), H(4, "10.0.0.4")]}
    steps = dhcp.dhcp_steps(cur, want)
    assert [(s.command, s.section, s.entry.get("mac") or s.entry["start"]) for s in steps] == [
        ("delete", "range", "10.0.0.100"), ("add", "range", "10.0.0.50"),
        ("delete", "host", "52:54:00:00:00:02"), ("modify", "host", "52:54:00:00:00:01"),
        ("add", "host", "52:54:00:00:00:04")]
    assert dhcp.dhcp_steps(want, want) == []


def test_dhcp_steps_ip_swap_uses_delete_and_add():
    a = dict(mac="52:54:00:00:00:01", ip="10.0.0.1", name=None)
    b = dict(mac="52:54:00:00:00:02", ip="10.0.0.2", name=None)
    steps = dhcp.host_steps([a, b], [dict(a, ip="10.0.0.2"), dict(b, ip="10.0.0.1")])
    assert [s.command for s in steps] == ["delete", "delete", "add", "add"]


DOMAIN_XML = """<domain type='qemu'><name>web</name>
  <metadata><kvmnet:nics xmlns:kvmnet="https://kvmnet.dev/xmlns/1">
    <kvmnet:nic mac="52:54:00:12:34:56">kvmnet:L:nic_attachment.web</kvmnet:nic></kvmnet:nics></metadata>
  <devices>
    <interface type='network'><mac address='52:54:00:12:34:56'/>
      <source network='lab' portid='x' bridge='virbr9'/><target dev='vnet0'/>
      <model type='virtio'/><driver name='vhost' queues='4'/><link state='down'/>
      <alias name='net0'/></interface>
    <interface type='bridge'><mac address='52:54:00:AB:CD:EF'/><source bridge='br0'/>
      <model type='e1000e'/></interface>
    <interface type='user'/>
  </devices></domain>"""


def test_parse_interfaces_and_marks():
    ifs = nicxml.parse_interfaces(DOMAIN_XML)
    assert list(ifs) == ["52:54:00:12:34:56", "52:54:00:ab:cd:ef"]
    a, b = ifs.values()
    none = dict(source=None, bandwidth=None, port=None, vlan=None, virtualport=None,
                trust_guest_rx_filters=False, mtu=None)
    assert a.fields() == dict(none, type="network", network="lab", bridge=None, model="virtio",
                              driver=dict(name="vhost", queues=4), link_state="down")
    assert b.fields() == dict(none, type="bridge", network=None, bridge="br0", model="e1000e",
                              driver=None, link_state="up")
    assert nicxml.parse_marks(DOMAIN_XML) == {"52:54:00:12:34:56": "kvmnet:L:nic_attachment.web"}
    body = nicxml.render_marks({"52:54:00:12:34:56": "kvmnet:L:x"})
    assert ET.fromstring(body).find("nic").get("mac") == "52:54:00:12:34:56"


def test_render_and_update_interface():
    el = ET.fromstring(nicxml.render_interface(dict(network="lab", queues=2, link_state="down")))
    assert el.get("type") == "network" and el.find("source").get("network") == "lab"
    assert el.find("driver").attrib == {"name": "vhost", "queues": "2"}
    assert el.find("mac") is None and el.find("model").get("type") == "virtio"
    el = ET.fromstring(nicxml.render_interface(dict(bridge="br0", model="e1000", queues=2), mac="52:54:00:00:00:01"))
    assert el.get("type") == "bridge" and el.find("driver") is None
    cur = nicxml.parse_interfaces(DOMAIN_XML)["52:54:00:12:34:56"]
    new = ET.fromstring(nicxml.updated_interface(cur, dict(bridge="br1", link_state="up")))
    assert new.get("type") == "bridge" and new.find("source").attrib == {"bridge": "br1"}
    assert new.find("link").get("state") == "up" and new.find("alias").get("name") == "net0"
    assert [c.tag for c in new][:2] == ["mac", "source"]


def test_merged_fields_flags_live_saved_differences():
    live = nicxml.parse_interfaces(DOMAIN_XML)["52:54:00:12:34:56"]
    saved = nicxml.parse_interfaces(DOMAIN_XML.replace("<link state='down'/>", ""))["52:54:00:12:34:56"]
    assert nicxml.merged_fields(live, saved)["link_state"] == "down (saved: up)"
    assert nicxml.merged_fields(None, saved)["link_state"] == "up"


def test_checks():
    assert checks.network_problems(dict(mode="nat", vlan_tag=5))[0][0] == "vlan_tag"
    assert "vlan interface" in checks.network_problems(dict(mode="bridge", bridge="br0", vlan_tag=5))[0][1]
    assert checks.network_problems(dict(mode="bridge", bridge="b", virtualport="openvswitch", vlan_tag=5)) == []
    assert [p[0] for p in checks.network_problems(dict(mode="bridge", ip={"address": "10.0.0.1"}))] == ["ip", "bridge"]
    assert checks.network_problems(dict(mode="route", nat_port_range=[1, 2]))[0][0] == "nat_port_range"
    assert checks.network_problems(dict(mode="nat", vlan_tag=UNKNOWN)) == []
    assert checks.nic_problems(dict(network="a")) == []
    assert checks.nic_problems(dict(network="a", bridge="b"))[0][0] is None


def test_importing_the_provider_does_not_import_libvirt():
    code = ("import sys; import kvmnet.providers.libvirt as m; m.LibvirtProvider({'uri': 'x'}); "
            "print('libvirt' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


FULL_NIC = dict(
    type="direct", source=dict(dev="eth1", mode="passthrough"), model="virtio",
    driver=dict(name="qemu", queues=2, rx_queue_size=512, tx_queue_size=256,
                host=dict(csum=False, gso=False, tso4=False, tso6=True, ecn=False, ufo=False, mrg_rxbuf=False),
                guest=dict(csum=False, tso4=False, tso6=False, ecn=True, ufo=False)),
    bandwidth=dict(inbound=dict(average=1000, peak=2000, burst=512), outbound=dict(average=500)),
    trust_guest_rx_filters=True, link_state="down")
OVS_NIC = dict(
    type="bridge", bridge="ovsbr0", model="virtio",
    virtualport=dict(type="openvswitch", parameters=dict(interfaceid="09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f")),
    vlan=dict(trunk=True, tag=[dict(id=42, native_mode="untagged"), dict(id=47)]),
    port=dict(isolated=True), mtu=dict(size=9000), link_state="up")


@pytest.mark.parametrize("attrs", [FULL_NIC, OVS_NIC], ids=["direct", "ovs"])
def test_every_interface_block_round_trips(attrs):
    xml = nicxml.render_interface(attrs, mac="52:54:00:00:00:01")
    dom = f"<domain><devices>{xml}</devices></domain>"
    (iface,) = nicxml.parse_interfaces(dom).values()
    fields = {k: v for k, v in iface.fields().items() if v is not None}
    assert fields == dict(dict(trust_guest_rx_filters=False), **attrs)
    # the XML names are libvirt's (camelCase attributes, on/off and yes/no)
    el = ET.fromstring(xml)
    if attrs is FULL_NIC:
        assert el.get("trustGuestRxFilters") == "yes"
        assert el.find("source").attrib == {"dev": "eth1", "mode": "passthrough"}
        assert el.find("driver/host").get("tso6") == "on" and el.find("driver/guest").get("csum") == "off"
        assert el.find("driver").get("rx_queue_size") == "512"
    else:
        assert [t.attrib for t in el.findall("vlan/tag")] == [{"id": "42", "nativeMode": "untagged"}, {"id": "47"}]
        assert el.find("vlan").get("trunk") == "yes" and el.find("port").get("isolated") == "yes"


def test_update_changes_only_what_libvirt_changes_live():
    xml = nicxml.render_interface(FULL_NIC, mac="52:54:00:00:00:01")
    (cur,) = nicxml.parse_interfaces(f"<domain><devices>{xml}</devices></domain>").values()
    want = dict(FULL_NIC, link_state="up", bandwidth=dict(outbound=dict(average=100)))
    assert not nicxml.in_place_same(cur.fields(), want)
    new = ET.fromstring(nicxml.updated_interface(cur, want))
    assert new.find("source").attrib == {"dev": "eth1", "mode": "passthrough"}   # a macvtap keeps its device
    assert new.find("link").get("state") == "up"
    assert [c.tag for c in new.find("bandwidth")] == ["outbound"]
    (after,) = nicxml.parse_interfaces(f"<domain><devices>{ET.tostring(new, encoding='unicode')}</devices></domain>").values()
    assert nicxml.in_place_same(after.fields(), want)
    assert after.fields()["driver"] == FULL_NIC["driver"]


def test_nic_canonical_form_and_v1_shorthand():
    from kvmnet.providers.libvirt.types import NIC_ATTACHMENT
    v1 = NIC_ATTACHMENT.canon(dict(domain="web", network="lab", queues=4, mac="52:54:00:AA:BB:CC"))
    assert v1["driver"] == {"queues": 4} and "queues" not in v1 and v1["type"] == "network"
    assert v1["mac"] == "52:54:00:aa:bb:cc"
    cfg = NIC_ATTACHMENT.canon(dict(domain="web", type="direct", source=[dict(dev="eth1", mode=None)],
                                    driver=[dict(queues=2, host=[dict(csum=False)], guest=None)],
                                    vlan=[dict(tag=[dict(id=5, native_mode=None)])]))
    assert cfg["source"] == {"dev": "eth1"} and cfg["driver"] == {"queues": 2, "host": {"csum": False}}
    assert cfg["vlan"] == {"tag": [{"id": 5}]} and cfg["type"] == "direct"
    assert NIC_ATTACHMENT.canon(cfg) == cfg


def test_nic_replace_paths():
    from kvmnet.providers.libvirt.nics import not_in_place
    from kvmnet.sdk.values import UNKNOWN
    assert not_in_place(dict(type="network"), dict(type="bridge")) is None   # tap moves live
    assert not_in_place(dict(type="network"), dict(type="direct")) == ["type"]
    assert not_in_place(dict(type="direct"), dict(type="bridge", bridge=UNKNOWN)) == ["type"]
    assert not_in_place(dict(type="direct"), dict(type="direct")) is None


def test_update_keeps_a_source_that_does_not_move():
    dom = DOMAIN_XML.replace("<source network='lab' portid='x' bridge='virbr9'/>",
                             "<source network='lab' portgroup='web'/>")
    cur = nicxml.parse_interfaces(dom)["52:54:00:12:34:56"]
    new = ET.fromstring(nicxml.updated_interface(cur, dict(network="lab", link_state="up")))
    assert new.find("source").attrib == {"network": "lab", "portgroup": "web"}
    assert new.find("link").get("state") == "up"
