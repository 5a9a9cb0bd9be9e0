"""The virNetworkUpdate command planner (pure): minimal add/delete/modify commands
between two networks in the full attribute shape."""
from __future__ import annotations

from kvmnet.providers.libvirt.net_update import Command, commands, xml_of

BASE = {
    "name": "lab",
    "ip": [
        {"family": "ipv4", "address": "10.0.0.1", "prefix": 24,
         "dhcp": {"range": [{"start": "10.0.0.10", "end": "10.0.0.20"}],
                  "host": [{"mac": "52:54:00:00:00:01", "name": "web", "ip": "10.0.0.11"}]}},
        {"family": "ipv6", "address": "fd00::1", "prefix": 64,
         "dhcp": {"range": [{"start": "fd00::10", "end": "fd00::20"}],
                  "host": [{"id": "0:3:0:1:0:16:3e:11:22:33", "name": "db", "ip": "fd00::11"}]}},
    ],
    "dns": {"host": [{"ip": "10.0.0.5", "hostname": ["a", "b"]}],
            "srv": [{"service": "ldap", "protocol": "tcp", "target": "ldap.lab", "port": 389}],
            "txt": [{"name": "ex", "value": "one"}]},
    "forward": {"mode": "bridge", "interface": [{"dev": "eth1"}, {"dev": "eth2"}]},
    "portgroup": [{"name": "eng", "default": True, "vlan": {"tag": [{"id": 42}]}}],
}


def _copy(d):
    import copy
    return copy.deepcopy(d)


def test_no_change_no_command():
    assert commands(BASE, _copy(BASE)) == []


def test_dhcp_on_the_second_ip_block_by_index_and_by_duid():
    after = _copy(BASE)
    after["ip"][1]["dhcp"]["host"][0]["ip"] = "fd00::12"
    after["ip"][1]["dhcp"]["range"] = [{"start": "fd00::30", "end": "fd00::40",
                                        "lease": {"expiry": 1, "unit": "hours"}}]
    assert commands(BASE, after) == [
        Command("delete", "IP_DHCP_RANGE", 1, '<range start="fd00::10" end="fd00::20" />'),
        Command("modify", "IP_DHCP_HOST", 1, '<host id="0:3:0:1:0:16:3e:11:22:33" name="db" ip="fd00::12" />'),
        Command("add", "IP_DHCP_RANGE", 1,
                '<range start="fd00::30" end="fd00::40"><lease expiry="1" unit="hours" /></range>'),
    ]


def test_dns_records_are_deleted_and_added_not_modified():
    after = _copy(BASE)
    after["dns"]["host"][0]["hostname"] = ["a"]
    after["dns"]["txt"] = [{"name": "ex", "value": "two"}, {"name": "new", "value": "x"}]
    after["dns"]["srv"] = []
    cmds = commands(BASE, after)
    assert [(c.command, c.section) for c in cmds] == [
        ("delete", "DNS_HOST"), ("delete", "DNS_SRV"), ("delete", "DNS_TXT"),
        ("add", "DNS_HOST"), ("add", "DNS_TXT"), ("add", "DNS_TXT")]
    assert cmds[0].xml == '<host ip="10.0.0.5"><hostname>a</hostname><hostname>b</hostname></host>'
    assert cmds[3].xml == '<host ip="10.0.0.5"><hostname>a</hostname></host>'
    assert cmds[1].xml == '<srv service="ldap" protocol="tcp" target="ldap.lab" port="389" />'
    assert all(c.parent == -1 for c in cmds)


def test_forward_interfaces_and_portgroups():
    after = _copy(BASE)
    after["forward"]["interface"] = [{"dev": "eth2"}, {"dev": "eth3"}]
    after["portgroup"] = [{"name": "eng", "default": False, "vlan": {"tag": [{"id": 43, "native_mode": "untagged"}]}},
                          {"name": "ops"}]
    assert commands(BASE, after) == [
        Command("delete", "FORWARD_INTERFACE", -1, '<interface dev="eth1" />'),
        Command("modify", "PORTGROUP", -1,
                '<portgroup name="eng" default="no"><vlan><tag id="43" nativeMode="untagged" /></vlan></portgroup>'),
        Command("add", "FORWARD_INTERFACE", -1, '<interface dev="eth3" />'),
        Command("add", "PORTGROUP", -1, '<portgroup name="ops" />'),
    ]


def test_mechanical_rule_for_elements():
    assert xml_of("portgroup", {"name": "p", "bandwidth": {"inbound": {"average": 1000, "burst": None}},
                                "virtualport": {"type": "openvswitch",
                                                "parameters": {"profileid": "x"}}}) == (
        '<portgroup name="p"><bandwidth><inbound average="1000" /></bandwidth>'
        '<virtualport type="openvswitch"><parameters profileid="x" /></virtualport></portgroup>')
