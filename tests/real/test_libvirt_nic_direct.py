"""The guide's §8 on real NICs: macvtap (``type = "direct"``) in every mode on a veth
parent inside the sandbox's namespace, virtio driver tuning proven from QEMU's
device properties of the running TCG guest, port isolation and MTU on a tap,
bandwidth and Open vSwitch VLANs on a shut-off domain's saved definition (their live
parts are listed in tests/hardware_skips.py), all through the libvirt provider.
"""
from __future__ import annotations

import json
import os
import uuid
import xml.etree.ElementTree as ET

import pytest

from kvmnet.sdk.provider import Change, ProviderError
from tests.hardware_skips import reason

LINEAGE = str(uuid.uuid4())
RUN, OFF = "g-mv-run", "g-mv-off"
PARENT, PEER, BR = "mvp0", "mvp1", "kvmvbr0"

OFFLOADS_OFF = dict(
    host=dict(csum=False, gso=False, tso4=False, tso6=False, ecn=False, ufo=False, mrg_rxbuf=False),
    guest=dict(csum=True, tso4=False, tso6=False, ecn=False, ufo=False))
# QEMU's virtio-net property of each driver attribute
QEMU_PROPS = {("host", "csum"): "csum", ("host", "gso"): "gso", ("host", "tso4"): "host_tso4",
              ("host", "tso6"): "host_tso6", ("host", "ecn"): "host_ecn", ("host", "ufo"): "host_ufo",
              ("host", "mrg_rxbuf"): "mrg_rxbuf", ("guest", "csum"): "guest_csum",
              ("guest", "tso4"): "guest_tso4", ("guest", "tso6"): "guest_tso6",
              ("guest", "ecn"): "guest_ecn", ("guest", "ufo"): "guest_ufo"}


@pytest.fixture(scope="module")
def guests(libvirt_sandbox, guest_image):
    from kvmnet.sandbox.guest import define_guest, start_guest
    sb = libvirt_sandbox
    sb.ip("link", "add", PARENT, "type", "veth", "peer", "name", PEER)
    sb.ip("link", "add", BR, "type", "bridge")
    for dev in (PARENT, PEER, BR):
        sb.ip("link", "set", dev, "up")
    sb.keep_domains |= {RUN, OFF}
    try:
        start_guest(sb, RUN, guest_image)
        define_guest(sb, OFF, guest_image)
        yield sb
    finally:
        sb.keep_domains -= {RUN, OFF}
        sb.clean()
        for dev in (PARENT, BR):
            sb.ip("link", "del", dev, check=False)


@pytest.fixture
def prov(guests):
    from kvmnet.providers.libvirt import LibvirtProvider
    p = LibvirtProvider({"uri": guests.uri})
    yield p
    p.close()


def apply(p, action, before, after, address="nic_attachment.m"):
    (res,) = list(p.apply([Change(action, "nic_attachment", address, before, after,
                                  mark=f"kvmnet:{LINEAGE}:{address}")]))
    return res.attrs


def direct(mode="bridge", **kw):
    return dict(dict(domain=RUN, type="direct", source=dict(dev=PARENT, mode=mode), model="virtio",
                     live=True, persistent=True, link_state="up"), **kw)


def live_iface(sb, dom, mac, inactive=False):
    import libvirt as lv
    from kvmnet.providers.libvirt.nicxml import parse_interfaces
    conn = sb.connect()
    try:
        xml = conn.lookupByName(dom).XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE if inactive else 0)
    finally:
        conn.close()
    return parse_interfaces(xml).get(mac)


def links(sb) -> dict[str, dict]:
    return {l["ifname"]: l for l in json.loads(sb.ip("-d", "-j", "link", "show").stdout)}


def qom(sb, dom, alias, prop):
    """A property of the guest's device ``alias`` as QEMU has it (QMP qom-get)."""
    cmd = {"execute": "qom-get", "arguments": {"path": f"/machine/peripheral/{alias}", "property": prop}}
    return json.loads(sb.virsh("qemu-monitor-command", dom, json.dumps(cmd)).stdout)["return"]


def alias_of(sb, dom, mac) -> str:
    return live_iface(sb, dom, mac).element.find("alias").get("name")


def test_macvtap_with_offloads_on_the_running_guest(guests, prov):
    sb = guests
    want = direct(driver=dict(rx_queue_size=512, tx_queue_size=256, **OFFLOADS_OFF),
                  trust_guest_rx_filters=True)
    a = apply(prov, "create", None, want)
    mac = a["mac"]
    try:
        assert a["type"] == "direct" and a["source"] == {"dev": PARENT, "mode": "bridge"}
        assert a["driver"] == want["driver"] and a["trust_guest_rx_filters"] is True
        assert prov.read("nic_attachment", [])[f"{RUN}/{mac}"].attrs == a
        # a macvtap on the veth parent inside the sandbox's namespace, in bridge mode
        (tap,) = [l for l in links(sb).values()
                  if l.get("linkinfo", {}).get("info_kind") == "macvtap" and l.get("address") == mac]
        assert tap["link"] == PARENT and tap["linkinfo"]["info_data"]["mode"] == "bridge"
        # QEMU's virtio-net device of the running guest has each offload as asked
        alias = alias_of(sb, RUN, mac)
        for (part, key), prop in QEMU_PROPS.items():
            assert qom(sb, RUN, alias, prop) is want["driver"][part][key], prop
        assert qom(sb, RUN, alias, "rx_queue_size") == 512
        assert qom(sb, RUN, alias, "tx_queue_size") == 256

        # link state in place, live and saved: the same macvtap, no replace
        a2 = apply(prov, "update", a, dict(want, mac=mac, link_state="down"))
        assert a2["link_state"] == "down" and live_iface(sb, RUN, mac, inactive=True).link_state == "down"
        assert qom(sb, RUN, alias, "mrg_rxbuf") is False
        assert links(sb)[tap["ifname"]]["ifindex"] == tap["ifindex"]
        # drift behind kvmnet's back (live only) shows, and an update repairs it
        sb.virsh("domif-setlink", RUN, mac, "up")
        assert prov.read("nic_attachment", [])[f"{RUN}/{mac}"].attrs["link_state"] == "up (saved: down)"
        a3 = apply(prov, "update", a2, dict(want, mac=mac, link_state="down"))
        assert a3 == a2
    finally:
        apply(prov, "delete", a, None)
    assert live_iface(sb, RUN, mac) is None
    assert all(l.get("address") != mac for l in links(sb).values())   # its macvtap is gone


@pytest.mark.parametrize("mode", ["vepa", "private", "passthrough"])
def test_every_macvtap_mode(guests, prov, mode):
    sb = guests
    a = apply(prov, "create", None, direct(mode=mode))
    try:
        assert a["source"] == {"dev": PARENT, "mode": mode}
        (tap,) = [l for l in links(sb).values() if l.get("address") == a["mac"]
                  and l.get("linkinfo", {}).get("info_kind") == "macvtap"]
        kernel_mode = {"passthrough": "passthru"}.get(mode, mode)    # iproute2's spelling
        assert tap["link"] == PARENT and tap["linkinfo"]["info_data"]["mode"] == kernel_mode
    finally:
        apply(prov, "delete", a, None)


def test_port_isolated_and_mtu_on_a_tap(guests, prov):
    sb = guests
    a = apply(prov, "create", None, dict(domain=RUN, bridge=BR, model="virtio", live=True,
                                         persistent=True, link_state="up",
                                         port=dict(isolated=True), mtu=dict(size=1400)))
    try:
        assert a["port"] == {"isolated": True} and a["mtu"] == {"size": 1400}
        tap = live_iface(sb, RUN, a["mac"]).element.find("target").get("dev")
        (port,) = json.loads(sb.ip("-d", "-j", "link", "show", tap).stdout)
        assert port["mtu"] == 1400 and port["master"] == BR
        assert port["linkinfo"]["info_slave_data"]["isolated"] is True
        assert qom(sb, RUN, alias_of(sb, RUN, a["mac"]), "host_mtu") == 1400
    finally:
        apply(prov, "delete", a, None)


def test_vhost_driver(guests, prov):
    sb = guests
    a = apply(prov, "create", None, direct(mode="vepa", driver=dict(name="vhost", queues=2)))
    try:
        assert a["driver"] == {"name": "vhost", "queues": 2}
        alias = alias_of(sb, RUN, a["mac"])
        assert qom(sb, RUN, alias, "mq") is True
        netdevs = sb.virsh("qemu-monitor-command", RUN, "--hmp", "info network").stdout
        ours = [line for line in netdevs.splitlines() if f"host{alias}" in line]
        assert len(ours) == 2                       # two queues, one tap fd each
        if os.path.exists("/dev/vhost-net"):
            assert all("vhost=on" in line for line in ours)
            return
        assert not any("vhost" in line for line in ours)   # QEMU's userspace backend
    finally:
        apply(prov, "delete", a, None)
    pytest.skip(reason("nic_vhost_net_live"))


def test_bandwidth_in_place_on_the_saved_definition(guests, prov):
    sb = guests
    bw = dict(inbound=dict(average=1000, peak=2000, burst=512), outbound=dict(average=500))
    want = dict(domain=OFF, bridge=BR, model="virtio", live=True, persistent=True, link_state="up",
                bandwidth=bw)
    a = apply(prov, "create", None, want)
    mac = a["mac"]
    try:
        assert a["bandwidth"] == bw and a["live"] is False
        addr = live_iface(sb, OFF, mac, inactive=True).element.find("address").attrib
        bw2 = dict(inbound=dict(average=4000))
        a2 = apply(prov, "update", a, dict(want, mac=mac, bandwidth=bw2))
        assert a2["bandwidth"] == bw2 and a2["mac"] == mac
        el = live_iface(sb, OFF, mac, inactive=True).element
        assert el.find("address").attrib == addr            # updated in place, not re-attached
        assert el.find("bandwidth/inbound").attrib == {"average": "4000"}
        # drift: changed behind kvmnet's back
        el = live_iface(sb, OFF, mac, inactive=True).element
        el.find("bandwidth/inbound").set("average", "10")
        path = sb.workdir / "nic-drift.xml"
        path.write_text(ET.tostring(el, encoding="unicode"))
        sb.virsh("update-device", OFF, str(path), "--config")
        assert prov.read("nic_attachment", [])[f"{OFF}/{mac}"].attrs["bandwidth"] == {"inbound": {"average": 10}}
    finally:
        apply(prov, "delete", a, None)
    # live, on the running guest, libvirt needs tc's police action
    with pytest.raises(ProviderError, match="TC action|police|tc "):
        apply(prov, "create", None, direct(bandwidth=bw))
    assert all(i.type != "direct" for i in _ifaces(sb, RUN))     # nothing left behind
    pytest.skip(reason("nic_bandwidth_live"))


def _ifaces(sb, dom):
    import libvirt as lv
    from kvmnet.providers.libvirt.nicxml import parse_interfaces
    conn = sb.connect()
    try:
        d = conn.lookupByName(dom)
        return [*parse_interfaces(d.XMLDesc(0)).values(),
                *parse_interfaces(d.XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE)).values()]
    finally:
        conn.close()


def test_openvswitch_vlan_on_the_saved_definition(guests, prov):
    vlan = dict(trunk=True, tag=[dict(id=42, native_mode="untagged"), dict(id=47)])
    want = dict(domain=OFF, bridge="ovsbr0", model="virtio", live=True, persistent=True,
                link_state="up", virtualport=dict(type="openvswitch"), vlan=vlan,
                trust_guest_rx_filters=False)
    a = apply(prov, "create", None, want)
    try:
        assert a["vlan"] == vlan and a["virtualport"]["type"] == "openvswitch"
        # libvirt fills in the port's interfaceid; unset in the config, it is no drift
        assert uuid.UUID(a["virtualport"]["parameters"]["interfaceid"])
        el = live_iface(guests, OFF, a["mac"], inactive=True).element
        assert [t.attrib for t in el.findall("vlan/tag")] == [{"id": "42", "nativeMode": "untagged"},
                                                              {"id": "47"}]
        assert prov.read("nic_attachment", [])[f"{OFF}/{a['mac']}"].attrs == a
    finally:
        apply(prov, "delete", a, None)
    pytest.skip(reason("nic_openvswitch_live"))


def hcl(vlan_id=47, average=1000, csum="false", mode="bridge"):
    return f"""
resource "nic_attachment" "ovs" {{
  domain = "{OFF}"
  bridge = "ovsbr0"
  live   = false
  virtualport {{
    type = "openvswitch"
  }}
  vlan {{
    trunk = true
    tag {{
      id          = 42
      native_mode = "untagged"
    }}
    tag {{
      id = {vlan_id}
    }}
  }}
  bandwidth {{
    inbound {{
      average = {average}
    }}
  }}
}}

resource "nic_attachment" "mv" {{
  domain = "{RUN}"
  type   = "direct"
  source {{
    dev  = "{PARENT}"
    mode = "{mode}"
  }}
  driver {{
    rx_queue_size = 512
    host {{
      csum = {csum}
    }}
  }}
}}
"""


def test_cli_plans_in_place_and_replace_and_sees_drift(guests, tmp_path):
    from tests.e2e.helpers import run_kvmnet, write_config
    sb, cfg, state = guests, tmp_path / "cfg", tmp_path / "state.db"

    def k(body, *args, rc=0):
        write_config(cfg, f'provider "libvirt" {{\n  uri = "{sb.uri}"\n}}\n' + body)
        code, out, err = run_kvmnet(cfg, "--no-color", *args, state=state, timeout=120)
        assert code == rc, f"kvmnet {' '.join(args)} exited {code}\n{out}\n{err}"
        return out

    k(hcl(), "apply", "--auto-approve")
    try:
        assert "No changes" in k(hcl(), "plan", "--detailed-exitcode")
        out = k(hcl(average=3000), "plan", "--detailed-exitcode", rc=2)
        assert "nic_attachment.ovs will be updated in-place" in out and "forces replacement" not in out
        k(hcl(average=3000), "apply", "--auto-approve")
        assert "No changes" in k(hcl(average=3000), "plan", "--detailed-exitcode")
        # drift behind kvmnet's back: the saved bandwidth changed
        ovs = [i for i in _ifaces(sb, OFF) if i.type == "bridge" and i.element.find("virtualport") is not None][0]
        ovs.element.find("bandwidth/inbound").set("average", "7")
        (sb.workdir / "ovs-drift.xml").write_text(ovs.xml)
        sb.virsh("update-device", OFF, str(sb.workdir / "ovs-drift.xml"), "--config")
        out = k(hcl(average=3000), "plan", "--detailed-exitcode", rc=2)
        assert "nic_attachment.ovs will be updated in-place" in out and "7" in out
        # what libvirt cannot change live replaces, and the plan names the attribute
        for body, block, forced in ((hcl(average=3000, vlan_id=48), "vlan {", "tag = "),
                                    (hcl(average=3000, csum="true"), "driver {", "csum = false -> true"),
                                    (hcl(average=3000, mode="private"), "source {", 'mode = "bridge" -> "private"')):
            out = k(body, "plan", "--detailed-exitcode", rc=2)
            assert "must be replaced" in out and f"~ {block}" in out, out
            assert any(forced in line and "# forces replacement" in line for line in out.splitlines()), out
        k(hcl(average=3000, mode="private"), "apply", "--auto-approve")
        assert [i.element.find("source").get("mode") for i in _ifaces(sb, RUN) if i.type == "direct"] == ["private"] * 2
    finally:
        k(hcl(), "destroy", "--auto-approve")
    assert all(i.type not in ("direct",) for i in _ifaces(sb, RUN))
    assert not any(i.element.find("virtualport") is not None for i in _ifaces(sb, OFF))


def test_a_v1_state_row_is_upgraded_on_read(guests, tmp_path):
    """A NIC row as today's release wrote it (top-level ``queues``, no ``type`` or
    ``driver``) plans no change under the v1 config it came from."""
    import sqlite3
    from tests.e2e.helpers import run_kvmnet, write_config
    sb, cfg, state = guests, tmp_path / "cfg", tmp_path / "state.db"
    write_config(cfg, f'provider "libvirt" {{\n  uri = "{sb.uri}"\n}}\n'
                      f'resource "nic_attachment" "v1" {{\n  domain = "{RUN}"\n  bridge = "{BR}"\n'
                      f'  queues = 2\n  link_state = "down"\n}}\n')

    def k(*args, rc=0):
        code, out, err = run_kvmnet(cfg, "--no-color", *args, state=state, timeout=120)
        assert code == rc, f"kvmnet {' '.join(args)} exited {code}\n{out}\n{err}"
        return out

    k("apply", "--auto-approve")
    try:
        db = sqlite3.connect(state)
        (attrs,) = db.execute("SELECT attrs FROM instances WHERE address = 'nic_attachment.v1'").fetchone()
        row = json.loads(attrs)
        assert row["driver"] == {"name": "vhost", "queues": 2} and row["type"] == "bridge"
        v1 = {k: row[k] for k in ("domain", "bridge", "mac", "model", "link_state", "live", "persistent")}
        v1.update(network=None, queues=2)
        db.execute("UPDATE instances SET attrs = ? WHERE address = 'nic_attachment.v1'", (json.dumps(v1),))
        db.commit()
        db.close()
        out = k("plan", "--detailed-exitcode")
        assert "No changes" in out and "changed outside" not in out
    finally:
        k("destroy", "--auto-approve")


def test_a_macvtap_on_a_missing_device_is_one_clear_error(guests, prov):
    before = {i.mac for i in _ifaces(guests, RUN)}
    with pytest.raises(ProviderError, match=f'domain "{RUN}": attach NIC failed: .*nosuchdev: No such device'):
        apply(prov, "create", None, direct(source=dict(dev="nosuchdev", mode="bridge")))
    assert {i.mac for i in _ifaces(guests, RUN)} == before     # nothing changed
