"""Unit tests of the pure diff functions (kvmnet.engine.plan.diff)."""
from __future__ import annotations

from kvmnet.engine.plan.diff import AttrChange, diff_attrs, forces_replace, merge_planned
from kvmnet.engine.resources import canonical, with_defaults
from kvmnet.providers.libvirt.networks import not_in_place
from kvmnet.sdk.values import UNKNOWN


def net(**kw) -> dict:
    return canonical("network", with_defaults("network", "lab", {"mode": "nat", **kw}))


IP = {"address": "10.0.0.1", "prefix": 24, "dhcp_range": [], "dhcp_host": []}


# -- diff_attrs ---------------------------------------------------------------------

def test_equal_values_give_no_change():
    assert diff_attrs({"mtu": 1500, "stp": True}, {"mtu": 1500, "stp": True}) == []


def test_none_desired_means_dont_care():
    assert diff_attrs({"mtu": None, "stp": True}, {"mtu": 9000, "stp": True}) == []
    assert diff_attrs({"ip": {"address": None, "prefix": 24}},
                      {"ip": {"address": "10.0.0.1", "prefix": 24}}) == []


def test_changed_value_reports_before_and_after():
    assert diff_attrs({"mtu": 9000}, {"mtu": 1500}) == [AttrChange("mtu", 1500, 9000)]


def test_missing_actual_value_is_a_change():
    assert diff_attrs({"mtu": 9000}, {}) == [AttrChange("mtu", None, 9000)]
    assert diff_attrs({"mtu": 9000}, None) == [AttrChange("mtu", None, 9000)]


def test_bool_and_number_never_compare_equal():
    assert diff_attrs({"stp": True}, {"stp": 1}) == [AttrChange("stp", 1, True)]
    assert diff_attrs({"mtu": 1500}, {"mtu": 1500.0}) == []


def test_nested_dicts_give_dotted_paths():
    want = {"ip": {**IP, "dhcp_range": [{"start": "10.0.0.10", "end": "10.0.0.20"}]}}
    have = {"ip": {**IP, "dhcp_range": [{"start": "10.0.0.10", "end": "10.0.0.99"}]}}
    (c,) = diff_attrs(want, have)
    assert c.path == "ip.dhcp_range"      # lists compare whole
    assert c.before == have["ip"]["dhcp_range"] and c.after == want["ip"]["dhcp_range"]


def test_deeper_nesting_and_dotted_keys():
    want = {"settings": {"net.core.somaxconn": "1024", "net.ipv4.ip_forward": "1"}}
    have = {"settings": {"net.core.somaxconn": "77", "net.ipv4.ip_forward": "1"}}
    assert diff_attrs(want, have) == [AttrChange("settings.net.core.somaxconn", "77", "1024")]


def test_a_whole_nested_block_added_or_removed():
    assert diff_attrs({"ip": IP}, {"ip": None}) == [AttrChange("ip", None, IP)]


def test_lists_compare_whole_and_in_order():
    assert diff_attrs({"interfaces": ["a", "b"]}, {"interfaces": ["a", "b"]}) == []
    assert diff_attrs({"interfaces": ["a", "b"]}, {"interfaces": ["b", "a"]}) != []
    assert diff_attrs({"interfaces": ["a"]}, {"interfaces": ["a", "b"]}) != []


def test_ignore_changes_and_skip():
    want, have = {"mtu": 9000, "stp": True}, {"mtu": 1500, "stp": False}
    assert [c.path for c in diff_attrs(want, have, ignore=("mtu",))] == ["stp"]
    assert diff_attrs(want, have, ignore=("*",)) == []
    assert [c.path for c in diff_attrs(want, have, skip=frozenset({"stp"}))] == ["mtu"]


def test_unknown_always_differs():
    assert diff_attrs({"bridge": UNKNOWN}, {"bridge": "virbr0"}) == [AttrChange("bridge", "virbr0", UNKNOWN)]
    assert diff_attrs({"x": [UNKNOWN]}, {"x": ["a"]}) != []


# -- forces_replace -------------------------------------------------------------------

def _paths(rtype, want, have):
    return forces_replace(rtype, diff_attrs(want, have))


def test_in_place_attributes_do_not_replace():
    assert _paths("network", net(autostart=False), net()) == []
    assert _paths("bridge", {"name": "br0", "mtu": 9000}, {"name": "br0", "mtu": 1500}) == []
    assert _paths("sysctl_profile", {"settings": {"a.b": "1"}}, {"settings": {"a.b": "2"}}) == []


def test_top_level_attribute_replaces():
    assert _paths("network", net(mode="route"), net()) == ["forward.mode"]
    assert _paths("bridge", {"name": "br1"}, {"name": "br0"}) == ["name"]
    assert sorted(_paths("vlan", {"id": 6, "link": "eth1"}, {"id": 5, "link": "eth0"})) == ["id", "link"]


def test_nested_replace_paths():
    want = net(ip=[{"address": "10.0.1.1", "prefix": 24}])
    have = net(ip=[{"address": "10.0.0.1", "prefix": 24}])
    # ip repeats: a list, compared whole by the engine's fallback; the provider's
    # replace_paths (networks.not_in_place) says what changes in place
    assert _paths("network", want, have) == ["ip"]
    assert not_in_place(have, want) == ["ip[0]"]
    # dhcp ranges and hosts change in place (networkUpdate)
    want = net(ip=[{**IP, "dhcp_host": [{"mac": "52:54:00:00:00:01", "ip": "10.0.0.5"}]}])
    assert not_in_place(net(ip=[IP]), want) == []


def test_adding_or_removing_the_whole_ip_block_replaces():
    assert _paths("network", net(ip=[IP]), net()) == ["ip"]
    assert _paths("network", {**net(), "ip": None}, net(ip=[IP])) == []   # None: don't care
    assert forces_replace("network", [AttrChange("ip", IP, None)]) == ["ip"]


def test_star_rule_replaces_on_any_change():
    want = {"protocol": "tcp", "host_port": "8080", "to_port": 80}
    have = {"protocol": "tcp", "host_port": "8080", "to_port": 81}
    assert _paths("port_forward", want, have) == ["to_port"]


# -- merge_planned --------------------------------------------------------------------

def test_create_has_computed_values_unknown():
    after = merge_planned("network", net(), None, True)
    assert after["uuid"] is UNKNOWN and after["active"] is True   # active: desired, default true
    assert after["bridge"] is UNKNOWN            # omitted, libvirt picks it
    assert after["forward"] == {"mode": "nat"} and after["autostart"] is True


def test_update_keeps_computed_and_omitted_values_from_prior():
    prior = {**net(bridge="virbr7"), "uuid": "u-1", "active": True}
    after = merge_planned("network", net(autostart=False), prior, False)
    assert after["uuid"] == "u-1" and after["active"] is True
    assert after["bridge"] == {"name": "virbr7"}
    assert after["autostart"] is False


def test_replace_makes_computed_values_unknown_again():
    prior = {**net(bridge="virbr7"), "uuid": "u-1", "active": True}
    after = merge_planned("network", net(mode="route"), prior, True)
    # a network keeps what its config leaves out as found: the omitted bridge's name too
    assert after["uuid"] is UNKNOWN and after["bridge"] == {"name": "virbr7"}


def test_configured_values_win_over_prior():
    prior = {**net(bridge="virbr7"), "uuid": "u-1", "active": True}
    after = merge_planned("network", net(bridge="virbr9"), prior, False)
    assert after["bridge"] == {"name": "virbr9"}


def test_nic_mac_known_after_apply_only_when_omitted():
    base = {"domain": "web", "network": "lab"}
    a = merge_planned("nic_attachment", canonical("nic_attachment", base), None, True)
    assert a["mac"] is UNKNOWN
    b = merge_planned("nic_attachment", canonical("nic_attachment", {**base, "mac": "52:54:00:AA:00:01"}), None, True)
    assert b["mac"] == "52:54:00:aa:00:01"


def test_omitted_value_without_prior_stays_none():
    after = merge_planned("bridge", {"name": "br0", "mtu": None}, None, True)
    assert after["mtu"] is None


def test_a_network_replace_keeps_what_the_config_leaves_out_as_found():
    """issue 11: a replace (here: mtu) must not drop the live DNS, second ip block,
    bridge stp or the verbatim kept XML the config does not mention."""
    prior = canonical("network", {
        **net(bridge="virbr7", mtu=1500), "uuid": "u-1", "active": True,
        "bridge": {"name": "virbr7", "stp": False, "delay": 2},
        "dns": {"host": [{"ip": "10.0.0.5", "hostname": ["a"]}]},
        "ip": [IP, {"family": "ipv6", "address": "fd00::1", "prefix": 64}],
        "kept": ["<metadata><x:y xmlns:x='urn:x'/></metadata>"]})
    want = net(bridge="virbr7", mtu=1400)
    kept: list[str] = []
    after = merge_planned("network", want, prior, True, kept)
    assert after["mtu"] == {"size": 1400}
    assert after["dns"] == prior["dns"] and after["ip"] == prior["ip"] and after["kept"] == prior["kept"]
    assert after["bridge"] == {"name": "virbr7", "stp": False, "delay": 2}
    assert after["uuid"] is UNKNOWN and after["active"] is True      # active: desired, default true
    assert sorted(kept) == ["bridge.delay", "bridge.stp", "dns", "ip"]


def test_an_empty_list_equals_nothing_read_back():
    from kvmnet.engine.plan.diff import diff_attrs
    # ``srv = []`` (no records) against a network whose <dns> has none
    assert diff_attrs({"dns": {"srv": []}}, {"dns": {"host": [{"ip": "10.0.0.5"}]}}) == []
    assert diff_attrs({"dns": {"srv": []}}, {"dns": {"srv": [{"service": "x"}]}}) != []
    assert diff_attrs({"ip": [{"address": "10.0.0.1", "dhcp": {"host": []}}]},
                      {"ip": [{"address": "10.0.0.1", "dhcp": {}}]}) == []
