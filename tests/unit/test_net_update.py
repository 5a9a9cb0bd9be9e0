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


def test_a_section_the_config_leaves_out_is_left_as_it_is():
    after = {"name": "lab", "ip": _copy(BASE["ip"]), "dns": {"txt": [{"name": "ex", "value": "two"}]}}
    assert [(c.command, c.section) for c in commands(BASE, after)] == [("delete", "DNS_TXT"), ("add", "DNS_TXT")]
    # an explicitly empty list deletes what there is
    assert [(c.command, c.section) for c in commands(BASE, dict(after, portgroup=[]))] == [
        ("delete", "DNS_TXT"), ("delete", "PORTGROUP"), ("add", "DNS_TXT")]


def test_what_virnetworkupdate_changes_is_not_a_replace():
    from kvmnet.providers.libvirt.network_canon import canonical_network
    from kvmnet.providers.libvirt.network_restart import restart_paths
    from kvmnet.providers.libvirt.networks import not_in_place
    have = canonical_network(_copy(BASE))
    want = _copy(have)
    want["dns"]["host"] = []
    want["dns"]["srv"].append({"service": "www", "protocol": "tcp"})
    want["forward"]["interface"] = [{"dev": "eth3"}]
    want["portgroup"] = [{"name": "ops"}]
    want["ip"][1]["dhcp"]["host"] = []
    assert not_in_place(have, want) == []
    assert not_in_place({k: v for k, v in have.items() if k != "dns"}, dict(want, dns={"host": []})) == []
    # a DNS setting that is not a record, and an ip's address, are not
    assert not_in_place(have, dict(want, dns=dict(want["dns"], enable=False))) == ["dns"]
    moved = _copy(want)
    moved["ip"][0]["address"] = "10.0.1.1"
    assert not_in_place(have, moved) == ["ip[0]"]
    assert restart_paths(have, moved) == ["ip[0].address"]       # the records come along with the restart


def test_updatable_sets_are_sorted_and_portgroup_default_false_is_absent():
    from kvmnet.providers.libvirt.network_canon import canonical_network
    a = canonical_network({"portgroup": [{"name": "ops", "default": False}, {"name": "eng", "default": True}],
                           "dns": [{"txt": [{"name": "b", "value": "1"}, {"name": "a", "value": "2"}]}],
                           "forward": [{"mode": "bridge", "interface": [{"dev": "y"}, {"dev": "x"}]}]})
    assert a["portgroup"] == [{"name": "eng", "default": True}, {"name": "ops"}]
    assert [t["name"] for t in a["dns"]["txt"]] == ["a", "b"]
    assert [i["dev"] for i in a["forward"]["interface"]] == ["x", "y"]


def test_a_nat_route_or_open_network_needs_an_address():
    from kvmnet.providers.libvirt.checks import ip_needed
    from kvmnet.sdk.values import UNKNOWN
    for mode in ("nat", "route", "open"):
        assert ip_needed({"forward": [{"mode": mode}]}, live_has_ip=False)[0][0] == "forward.mode"
        assert ip_needed({"forward": [{"mode": mode}], "ip": []}, live_has_ip=True) != []
    assert ip_needed({"mode": "nat"}, live_has_ip=True) == []          # kept as found live
    assert ip_needed({"mode": "nat", "ip": [{"address": "10.0.0.1", "prefix": 24}]}, False) == []
    assert ip_needed({"mode": "nat", "ip": UNKNOWN}, False) == []
    assert ip_needed({"mode": "isolated"}, False) == [] and ip_needed({}, False) == []
