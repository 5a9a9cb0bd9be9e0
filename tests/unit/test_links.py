"""Pure pieces of providers/links.py: ip -j parsing, canonical attributes, edits.

The ip -j samples are iproute2 6.1 output (vlan records as iproute2 prints them on
a kernel with 802.1Q; this machine's kernel has none, so the live vlan test skips).
"""
from __future__ import annotations

import json

from kvmnet.engine.resources import canonical, with_defaults
from kvmnet.sdk.provider import Consumer
from kvmnet.providers.links import (LinkEdits, bridge_options, consumers_of, desired_routes, host_cidr,
                                    link_edits, live_objects, parse_table, result_attrs, seconds,
                                    split_json_stream)

DETAILS = [
    {"ifindex": 5, "ifname": "br0", "mtu": 1400, "ifalias": "kvmnet:L:bridge.lab",
     "linkinfo": {"info_kind": "bridge", "info_data": {"forward_delay": 400, "stp_state": 1,
                                                        "mcast_snooping": 0}}},
    {"ifindex": 7, "link": "eth1", "ifname": "eth1.42", "mtu": 1500, "master": "br0",
     "linkinfo": {"info_kind": "vlan", "info_data": {"protocol": "802.1Q", "id": 42, "flags": ["REORDER_HDR"]}}},
    {"ifindex": 9, "ifname": "vnet0", "master": "br0", "mtu": 1500,
     "linkinfo": {"info_kind": "tun", "info_data": {"type": "tap"}}},
]
ADDRS = [
    {"ifindex": 3, "ifname": "eth1", "mtu": 1500, "addr_info": []},
    {"ifindex": 4, "ifname": "p0", "mtu": 1500, "master": "br0", "addr_info": []},
    {"ifindex": 5, "ifname": "br0", "mtu": 1400, "ifalias": "kvmnet:L:bridge.lab", "addr_info": [
        {"family": "inet", "local": "10.9.0.1", "prefixlen": 24},
        {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"}]},
    {"ifindex": 7, "ifname": "eth1.42", "link": "eth1", "master": "br0", "mtu": 1500,
     "addr_info": [{"family": "inet", "local": "10.42.0.1", "prefixlen": 24}]},
    {"ifindex": 9, "ifname": "vnet0", "master": "br0", "mtu": 1500, "addr_info": []},
]
ROUTES = [
    {"dst": "default", "gateway": "10.9.0.254", "dev": "br0", "protocol": "static"},
    {"dst": "10.8.0.0/24", "gateway": "10.9.0.254", "dev": "br0", "protocol": "static", "metric": 50},
    {"dst": "10.1.1.1", "dev": "br0", "protocol": "boot", "scope": "link"},
    {"dst": "10.9.0.0/24", "dev": "br0", "protocol": "kernel", "scope": "link", "prefsrc": "10.9.0.1"},
    {"type": "blackhole", "dst": "10.66.0.0/16", "protocol": "boot"},
]


def table():
    # the detailed batch also prints the empty records ip leaves for filtered links
    details = json.dumps(DETAILS) + "\n" + json.dumps([{}, {}]) + "\n"
    rest = json.dumps(ADDRS) + "\n" + json.dumps(ROUTES) + "\n"
    return parse_table([details, rest])


def test_split_json_stream():
    assert split_json_stream('[1]\n[{"a":2}]\n\n[]') == [[1], [{"a": 2}], []]
    assert split_json_stream("") == []


def test_bridge_attributes_from_ip_json():
    obj = live_objects("bridge", table(), ["br0"])["br0"]
    assert obj.attrs == {
        "name": "br0", "interfaces": ["eth1.42", "p0"], "stp": True, "forward_delay": 4,
        "multicast_snooping": False, "mtu": 1400, "addresses": ["10.9.0.1/24"],
        "routes": [{"to": "0.0.0.0/0", "via": "10.9.0.254", "metric": None},
                   {"to": "10.1.1.1/32", "via": None, "metric": None},
                   {"to": "10.8.0.0/24", "via": "10.9.0.254", "metric": 50}],
    }
    assert obj.mark.lineage == "L" and obj.mark.address == "bridge.lab"


def test_live_attributes_are_canonical():
    attrs = live_objects("bridge", table(), ["br0"])["br0"].attrs
    assert canonical("bridge", attrs) == attrs


def test_vlan_attributes_from_ip_json():
    obj = live_objects("vlan", table(), ["eth1.42"])["eth1.42"]
    assert obj.attrs == {"name": "eth1.42", "id": 42, "link": "eth1", "mtu": 1500,
                         "addresses": ["10.42.0.1/24"]}
    assert obj.mark is None


def test_marked_links_of_the_type_are_always_read():
    assert list(live_objects("bridge", table(), [])) == ["br0"]
    assert list(live_objects("vlan", table(), [])) == []


def test_a_link_of_another_kind_is_read_when_asked_for():
    obj = live_objects("bridge", table(), ["p0", "missing"])
    assert list(obj) == ["br0", "p0"] and obj["p0"].mark is None


def test_consumers_of_a_bridge_are_the_other_ports():
    t = table()
    assert consumers_of("bridge", t, "br0", ["p0"]) == [
        Consumer("port", "eth1.42", "enslaved", ("vlan", "eth1.42")),
        Consumer("port", "vnet0", "enslaved", None)]
    assert consumers_of("bridge", t, "br0", ["p0", "eth1.42", "vnet0"]) == []
    assert consumers_of("bridge", t, "nope", []) == []


def test_consumers_of_a_vlan_is_its_bridge():
    assert consumers_of("vlan", table(), "eth1.42", []) == [
        Consumer("bridge", "br0", "enslaves it", ("bridge", "br0"))]


def test_route_destinations():
    assert host_cidr("default") == "0.0.0.0/0"
    assert host_cidr("10.1.1.1") == "10.1.1.1/32"
    assert desired_routes({"route": [{"to": "10.1.0.0/16", "via": "10.0.0.1"}]}) == [
        {"to": "10.1.0.0/16", "via": "10.0.0.1", "metric": None}]
    assert desired_routes({"routes": [{"to": "10.1.0.0/16", "metric": 0}]}) == [
        {"to": "10.1.0.0/16", "via": None, "metric": None}]


def test_seconds():
    assert seconds(1500) == 15 and isinstance(seconds(1500), int)
    assert seconds(250) == 2.5


def test_bridge_options_only_what_differs():
    live = {"stp": False, "forward_delay": 15, "multicast_snooping": True}
    assert bridge_options({"stp": False, "forward_delay": 15, "multicast_snooping": True}, live) == {}
    assert bridge_options({"stp": True, "forward_delay": 4.5, "multicast_snooping": None}, live) == {
        "br_stp_state": 1, "br_forward_delay": 450}
    assert bridge_options({"stp": False}) == {"br_stp_state": 0}


def test_link_edits_for_a_bridge():
    live = live_objects("bridge", table(), ["br0"])["br0"].attrs
    want = canonical("bridge", with_defaults("bridge", "lab", {
        "name": "br0", "interfaces": ["p1"], "stp": True, "mtu": 1500,
        "addresses": ["10.9.0.1/24", "10.9.1.1/24"], "routes": [{"to": "10.8.0.0/24", "via": "10.9.0.254", "metric": 50}]}))
    e = link_edits("bridge", live, "kvmnet:L:bridge.lab", want, "kvmnet:L:bridge.lab")
    assert e == LinkEdits(alias=None, bridge_opts={}, enslave=["p1"], release=["eth1.42", "p0"], mtu=1500,
                          add_addresses=["10.9.1.1/24"], del_addresses=[],
                          add_routes=[], del_routes=[{"to": "0.0.0.0/0", "via": "10.9.0.254", "metric": None},
                                                     {"to": "10.1.1.1/32", "via": None, "metric": None}])


def test_link_edits_leave_omitted_attributes_alone():
    live = live_objects("bridge", table(), ["br0"])["br0"].attrs
    e = link_edits("bridge", live, "old", {"name": "br0"}, "kvmnet:L:bridge.lab")
    assert e == LinkEdits(alias="kvmnet:L:bridge.lab")
    assert link_edits("bridge", live, "x", {"name": "br0"}, "x").empty()


def test_link_edits_never_release_a_tap():
    live = live_objects("bridge", table(), ["br0"])["br0"].attrs
    e = link_edits("bridge", live, None, {"name": "br0", "interfaces": []}, "")
    assert "vnet0" not in e.release


def test_link_edits_for_a_vlan():
    live = live_objects("vlan", table(), ["eth1.42"])["eth1.42"].attrs
    e = link_edits("vlan", live, None, {"name": "eth1.42", "id": 42, "link": "eth1", "mtu": 1400,
                                         "addresses": []}, "kvmnet:L:vlan.v")
    assert e == LinkEdits(alias="kvmnet:L:vlan.v", mtu=1400, del_addresses=["10.42.0.1/24"])


def test_result_attrs_record_route_blocks_as_routes():
    out = result_attrs("bridge", {"name": "b", "route": [{"to": "10.0.0.0/8", "via": "10.1.1.1"}]})
    assert out == {"name": "b", "routes": [{"to": "10.0.0.0/8", "via": "10.1.1.1", "metric": None}]}
