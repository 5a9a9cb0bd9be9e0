"""Pure parts of the netplan provider: rendering, reading back, drift merge, fold."""
from __future__ import annotations

import yaml

from kvmnet.engine.resources import canonical, with_defaults
from kvmnet.sdk.provider import Change
from kvmnet.providers.netplan.render import (Entry, attrs_from_yaml, defined_ids, object_yaml, parse_file,
                                             render_file)
from kvmnet.providers.netplan.view import file_attrs, fold, merged_attrs

MARK_B = "kvmnet:11111111-2222-3333-4444-555555555555:bridge.lab"
MARK_V = "kvmnet:11111111-2222-3333-4444-555555555555:vlan.v42"


def bridge(**kw):
    a = {"name": "br-lab", "interfaces": ["eth1"], "stp": False, "forward_delay": 4, "mtu": 1400,
         "multicast_snooping": False, "addresses": ["10.9.0.1/24"], "dhcp4": False,
         "nameservers": ["10.9.0.53"],
         "routes": [{"to": "10.8.0.0/24", "via": "10.9.0.254", "metric": 50}]}
    a.update(kw)
    return canonical("bridge", a)


def vlan(**kw):
    a = {"name": "eth2.42", "id": 42, "link": "eth2", "mtu": 1400, "addresses": ["10.42.0.1/24"]}
    a.update(kw)
    return canonical("vlan", a)


def entries():
    return [Entry("bridge", "br-lab", bridge(), MARK_B), Entry("vlan", "eth2.42", vlan(), MARK_V)]


def test_bridge_yaml_follows_the_netplan_reference():
    assert object_yaml("bridge", bridge()) == {
        "interfaces": ["eth1"],
        "addresses": ["10.9.0.1/24"],
        "routes": [{"to": "10.8.0.0/24", "via": "10.9.0.254", "metric": 50}],
        "mtu": 1400,
        "dhcp4": False,
        "nameservers": {"addresses": ["10.9.0.53"]},
        "parameters": {"stp": False, "forward-delay": 4},
    }


def test_minimal_bridge_says_stp_false_explicitly():
    attrs = canonical("bridge", with_defaults("bridge", "br0", {}))
    assert object_yaml("bridge", attrs) == {"interfaces": [], "parameters": {"stp": False}}


def test_vlan_yaml():
    assert object_yaml("vlan", vlan()) == {"id": 42, "link": "eth2", "addresses": ["10.42.0.1/24"], "mtu": 1400}


def test_file_layout_header_and_ethernets_for_unknown_ports():
    text = render_file(entries())
    lines = text.splitlines()
    assert lines[0].startswith("# Written by kvmnet")
    assert any(l.startswith("# kvmnet-object: bridge br-lab sha256=") and l.endswith(MARK_B) for l in lines)
    doc = yaml.safe_load(text)
    assert doc["network"]["version"] == 2
    assert doc["network"]["ethernets"] == {"eth1": {}, "eth2": {}}
    assert set(doc["network"]["bridges"]) == {"br-lab"} and set(doc["network"]["vlans"]) == {"eth2.42"}


def test_ports_known_elsewhere_or_ours_get_no_ethernets_entry():
    es = entries() + [Entry("bridge", "br-v", bridge(name="br-v", interfaces=["eth2.42"]), MARK_B)]
    doc = yaml.safe_load(render_file(es, known_elsewhere={"eth1"}))
    assert doc["network"]["ethernets"] == {"eth2": {}}


def test_parse_round_trip():
    parsed = parse_file(render_file(entries()))
    b = parsed[("bridge", "br-lab")]
    assert b.mark == MARK_B and not b.edited
    expected = {k: v for k, v in bridge().items() if k != "multicast_snooping"}
    assert b.attrs == expected
    v = parsed[("vlan", "eth2.42")]
    assert v.attrs == dict(vlan(), dhcp4=None, nameservers=None) and not v.edited


def test_a_hand_edit_is_seen():
    text = render_file(entries()).replace("mtu: 1400\n      dhcp4", "mtu: 9000\n      dhcp4")
    b = parse_file(text)[("bridge", "br-lab")]
    assert b.edited and b.attrs["mtu"] == 9000
    assert not parse_file(text)[("vlan", "eth2.42")].edited


def test_rewriting_keeps_an_edited_entry_edited():
    text = render_file(entries()).replace("mtu: 1400\n      dhcp4", "mtu: 9000\n      dhcp4")
    parsed = parse_file(text)
    again = parse_file(render_file(list(parsed.values())))
    assert again[("bridge", "br-lab")].edited and again[("bridge", "br-lab")].attrs["mtu"] == 9000


def test_an_entry_without_header_has_no_mark():
    text = "network:\n  version: 2\n  bridges:\n    br9:\n      interfaces: []\n"
    e = parse_file(text)[("bridge", "br9")]
    assert e.mark == "" and e.edited
    assert e.attrs["stp"] is True    # netplan's default


def test_time_suffixes():
    a = attrs_from_yaml("bridge", "b", {"parameters": {"forward-delay": "2500ms"}})
    assert a["forward_delay"] == 2.5
    assert attrs_from_yaml("bridge", "b", {"parameters": {"forward-delay": "4s"}})["forward_delay"] == 4


def test_routes_read_back_canonical():
    a = attrs_from_yaml("bridge", "b", {"routes": [{"to": "default", "via": "10.0.0.1"}, {"to": "10.1.1.1"}]})
    assert a["routes"] == [{"to": "0.0.0.0/0", "via": "10.0.0.1", "metric": None},
                           {"to": "10.1.1.1/32", "via": None, "metric": None}]


def test_defined_ids_of_other_files():
    text = "network:\n  ethernets:\n    eth0: {dhcp4: true}\n  bonds:\n    bond0: {interfaces: [eth0]}\n"
    assert defined_ids(text) == {"eth0", "bond0"}
    assert defined_ids(": : not yaml [") == set()


# -- merge (drift) and fold ------------------------------------------------------

LIVE = {"name": "br-lab", "interfaces": ["eth1"], "stp": False, "forward_delay": 4, "multicast_snooping": False,
        "mtu": 1400, "addresses": ["10.9.0.1/24"],
        "routes": [{"to": "10.8.0.0/24", "via": "10.9.0.254", "metric": 50}]}


def test_unedited_entry_reports_the_kernel_and_the_netplan_only_attributes():
    e = parse_file(render_file(entries()))[("bridge", "br-lab")]
    live = dict(LIVE, mtu=1500)          # kernel drift
    assert merged_attrs("bridge", live, e) == dict(live, dhcp4=False, nameservers=["10.9.0.53"])


def test_edited_entry_reports_the_file_where_it_differs():
    text = render_file(entries()).replace("mtu: 1400\n      dhcp4", "mtu: 9000\n      dhcp4")
    e = parse_file(text)[("bridge", "br-lab")]
    assert merged_attrs("bridge", LIVE, e) == dict(LIVE, mtu=9000, dhcp4=False, nameservers=["10.9.0.53"])


def test_live_object_missing_from_the_file_reports_nothing_persisted():
    out = merged_attrs("bridge", LIVE, None)
    assert out["interfaces"] is None and out["stp"] is None and out["multicast_snooping"] is False


def test_file_only_view():
    e = parse_file(render_file(entries()))[("bridge", "br-lab")]
    assert file_attrs("bridge", e)["multicast_snooping"] is None


def test_fold_create_update_delete():
    start = parse_file(render_file(entries()))
    after = fold(start, [
        Change("update", "bridge", "bridge.lab", bridge(), bridge(mtu=1300), mark=""),
        Change("delete", "vlan", "vlan.v42", vlan(), None),
        Change("create", "bridge", "bridge.new", None, bridge(name="br-new"), mark="kvmnet:L:bridge.new"),
    ])
    assert sorted(after) == [("bridge", "br-lab"), ("bridge", "br-new")]
    assert after[("bridge", "br-lab")].attrs["mtu"] == 1300
    assert after[("bridge", "br-lab")].mark == MARK_B      # kept when the change carries none
    assert after[("bridge", "br-new")].mark == "kvmnet:L:bridge.new"
