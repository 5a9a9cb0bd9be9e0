"""The virNetworkUpdate command planner against the real sandboxed libvirtd: the
commands :func:`net_update.commands` computes between two networks in the full
shape, sent live and saved, take a running network's DHCP (both ip blocks), DNS
hosts/SRV/TXT, portgroups and forward interfaces to exactly the desired elements,
without a restart of the network (the same bridge device)."""
from __future__ import annotations

import copy
import xml.etree.ElementTree as ET

import pytest

from kvmnet.providers.libvirt import net_update
from kvmnet.providers.libvirt.networks import run_commands

NAT = """<network><name>nu</name><forward mode='nat'/><bridge name='kvnu0'/>
<dns><txt name='ex' value='one'/><host ip='10.66.0.5'><hostname>a</hostname><hostname>b</hostname></host>
<srv service='ldap' protocol='tcp' target='ldap.lab' port='389'/></dns>
<ip address='10.66.0.1' prefix='24'><dhcp><range start='10.66.0.10' end='10.66.0.20'/>
<host mac='52:54:00:66:00:01' name='web' ip='10.66.0.11'/></dhcp></ip>
<ip family='ipv6' address='fd66::1' prefix='64'><dhcp><range start='fd66::10' end='fd66::20'/>
<host id='0:3:0:1:0:16:3e:11:22:33' name='db' ip='fd66::11'/></dhcp></ip>
<portgroup name='eng' default='yes'/></network>"""

BEFORE = {
    "ip": [{"dhcp": {"range": [{"start": "10.66.0.10", "end": "10.66.0.20"}],
                     "host": [{"mac": "52:54:00:66:00:01", "name": "web", "ip": "10.66.0.11"}]}},
           {"dhcp": {"range": [{"start": "fd66::10", "end": "fd66::20"}],
                     "host": [{"id": "0:3:0:1:0:16:3e:11:22:33", "name": "db", "ip": "fd66::11"}]}}],
    "dns": {"txt": [{"name": "ex", "value": "one"}],
            "host": [{"ip": "10.66.0.5", "hostname": ["a", "b"]}],
            "srv": [{"service": "ldap", "protocol": "tcp", "target": "ldap.lab", "port": 389}]},
    "portgroup": [{"name": "eng", "default": True}],
}


def _after() -> dict:
    a = copy.deepcopy(BEFORE)
    a["ip"][0]["dhcp"]["range"] = [{"start": "10.66.0.30", "end": "10.66.0.40"}]
    a["ip"][0]["dhcp"]["host"][0]["ip"] = "10.66.0.12"
    a["ip"][1]["dhcp"]["host"].append({"id": "0:3:0:1:0:16:3e:44:55:66", "name": "mail", "ip": "fd66::12"})
    a["dns"]["txt"] = [{"name": "ex", "value": "two"}]
    a["dns"]["host"][0]["hostname"] = ["a"]
    a["dns"]["srv"] = []
    # default = false is written by leaving it out, as libvirt does
    a["portgroup"] = [{"name": "eng", "bandwidth": {"inbound": {"average": 1000}}}, {"name": "ops"}]
    return a


def _norm(el: ET.Element):
    return (el.tag, tuple(sorted(el.attrib.items())), (el.text or "").strip(),
            tuple(sorted(_norm(c) for c in el)))


def _parts(xml: str) -> dict:
    """The updatable elements of a network, normalized (order-free)."""
    root = ET.fromstring(xml)
    out = {p: sorted(_norm(e) for e in root.findall(p))
           for p in ("dns/host", "dns/srv", "dns/txt", "forward/interface", "portgroup")}
    for i, ip in enumerate(root.findall("ip")):
        for what in ("range", "host"):
            out[f"ip{i}/{what}"] = sorted(_norm(e) for e in ip.findall(f"dhcp/{what}"))
    return out


def _expected(attrs: dict) -> dict:
    out = {"dns/host": sorted(_norm(net_update.element("host", h)) for h in attrs["dns"]["host"]),
           "dns/srv": sorted(_norm(net_update.element("srv", s)) for s in attrs["dns"]["srv"]),
           "dns/txt": sorted(_norm(net_update.element("txt", t)) for t in attrs["dns"]["txt"]),
           "forward/interface": [],
           "portgroup": sorted(_norm(net_update.element("portgroup", p)) for p in attrs["portgroup"])}
    for i, ip in enumerate(attrs["ip"]):
        for what in ("range", "host"):
            out[f"ip{i}/{what}"] = sorted(_norm(net_update.element(what, x)) for x in ip["dhcp"][what])
    return out


def _ifindex(sb, dev: str) -> str:
    return sb.ip("-o", "link", "show", dev).stdout.split(":")[0]


def test_planned_commands_take_a_running_network_to_the_desired_elements(libvirt):
    import libvirt as lv
    sb = libvirt
    conn = sb.connect()
    net = conn.networkDefineXML(NAT)
    net.create()
    bridge = _ifindex(sb, "kvnu0")
    cmds = net_update.commands(BEFORE, _after())
    assert {c.command for c in cmds} == {"delete", "modify", "add"}
    run_commands(net, "nu", cmds, lv.VIR_NETWORK_UPDATE_AFFECT_LIVE | lv.VIR_NETWORK_UPDATE_AFFECT_CONFIG)
    want = _expected(_after())
    assert _parts(net.XMLDesc(0)) == want
    assert _parts(net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)) == want
    # the network was not restarted: the same bridge (libvirt itself restarts or
    # signals dnsmasq for DHCP and DNS changes; guests keep their link)
    assert net.isActive() and _ifindex(sb, "kvnu0") == bridge
    conn.close()


def test_forward_interfaces_change_in_place(libvirt):
    import libvirt as lv
    sb = libvirt
    conn = sb.connect()
    net = conn.networkDefineXML("<network><name>nuf</name><forward mode='bridge'>"
                                "<interface dev='kvnuf1'/><interface dev='kvnuf2'/></forward></network>")
    before = {"forward": {"interface": [{"dev": "kvnuf1"}, {"dev": "kvnuf2"}]}}
    after = {"forward": {"interface": [{"dev": "kvnuf2"}, {"dev": "kvnuf3"}]}}
    net.create()
    run_commands(net, "nuf", net_update.commands(before, after),
                 lv.VIR_NETWORK_UPDATE_AFFECT_LIVE | lv.VIR_NETWORK_UPDATE_AFFECT_CONFIG)
    for xml in (net.XMLDesc(0), net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)):
        assert [e.get("dev") for e in ET.fromstring(xml).findall("forward/interface")] == ["kvnuf2", "kvnuf3"]
    conn.close()


def test_a_refused_command_is_one_clear_error(libvirt):
    import libvirt as lv
    from kvmnet.sdk.provider import ProviderError
    sb = libvirt
    conn = sb.connect()
    net = conn.networkDefineXML(NAT.replace("<name>nu</name>", "<name>nu2</name>").replace("kvnu0", "kvnu2")
                                .replace("10.66.", "10.67.").replace("fd66", "fd67"))
    # a second host entry for a MAC that has one: libvirt refuses it
    bad = [net_update.Command("add", net_update.IP_DHCP_HOST, 0,
                              '<host mac="52:54:00:66:00:01" ip="10.67.0.19" />')]
    with pytest.raises(ProviderError, match='network "nu2": add ip_dhcp_host .* failed'):
        run_commands(net, "nu2", bad, lv.VIR_NETWORK_UPDATE_AFFECT_CONFIG)
    conn.close()
