"""The iproute provider against the real kernel, inside throw-away namespaces.

veth pairs stand in for the host's physical ports; every change made "behind
kvmnet's back" is made with ``ip -n NS ...``.
"""
from __future__ import annotations

import json
import os

import pytest

from kvmnet.sdk.ownership import parse_mark
from kvmnet.engine.resources import canonical
from kvmnet.sdk.provider import Change, Consumer, ProviderError
from kvmnet.sandbox.netns import add_veth, in_ns, kernel_has_8021q, sh

pytestmark = [pytest.mark.real, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

MARK = "kvmnet:11111111-2222-3333-4444-555555555555:bridge.lab"


@pytest.fixture
def ports(ns):
    """Three veth pairs in the namespace: p0..p2 are the "physical" ports."""
    for i in range(3):
        add_veth(ns, f"p{i}", f"q{i}")
    return ns


@pytest.fixture
def provider(ports):
    from kvmnet.providers.iproute import IprouteProvider
    p = IprouteProvider({"netns": ports})
    yield p
    p.close()


def bridge(**kw):
    attrs = {"name": "br-lab", "interfaces": ["p0"], "stp": False, "forward_delay": 4,
             "multicast_snooping": True, "mtu": 1400, "addresses": ["10.9.0.1/24"],
             "routes": [{"to": "10.8.0.0/24", "via": "10.9.0.254", "metric": 50}]}
    attrs.update(kw)
    return attrs


def apply(provider, action, before, after, rtype="bridge", mark=MARK):
    results = list(provider.apply([Change(action, rtype, "bridge.lab", before, after, mark=mark)]))
    assert len(results) == 1
    return results[0]


def ip_json(ns, *argv):
    return json.loads(in_ns(ns, "ip", "-j", *argv).stdout)


def live(provider, name="br-lab", rtype="bridge"):
    return provider.read(rtype, [name])[name].attrs


@pytest.fixture
def created(provider):
    apply(provider, "create", None, bridge())
    return provider


# -- create -------------------------------------------------------------------

def test_create_bridge_sets_every_attribute_and_the_mark(created, ports):
    obj = created.read("bridge", ["br-lab"])["br-lab"]
    assert obj.attrs == bridge()
    assert obj.mark == parse_mark(MARK)
    link = ip_json(ports, "-d", "link", "show", "dev", "br-lab")[0]
    assert link["ifalias"] == MARK
    assert "UP" in link["flags"]
    assert link["linkinfo"]["info_data"]["forward_delay"] == 400
    port = ip_json(ports, "link", "show", "dev", "p0")[0]
    assert port["master"] == "br-lab" and "UP" in port["flags"]


def test_route_blocks_are_recorded_as_routes(provider):
    """Routes written as repeated ``route { }`` blocks arrive as ``route``."""
    res = apply(provider, "create", None, bridge(routes=None, route=[{"to": "10.8.0.0/24", "via": "10.9.0.254", "metric": 50}]))
    assert res.attrs == bridge()
    assert live(provider) == bridge()


def test_create_minimal_bridge_then_read(provider, ports):
    apply(provider, "create", None, {"name": "br-min", "interfaces": [], "addresses": [], "routes": [],
                                     "stp": False})
    attrs = live(provider, "br-min")
    assert attrs["interfaces"] == [] and attrs["stp"] is False
    assert attrs["forward_delay"] == 15 and attrs["multicast_snooping"] is True and attrs["mtu"] == 1500


def test_create_over_an_existing_unmarked_link_is_seen_without_mark(provider, ports):
    in_ns(ports, "ip", "link", "add", "br-lab", "type", "bridge")
    obj = provider.read("bridge", ["br-lab"])["br-lab"]
    assert obj.mark is None
    with pytest.raises(ProviderError, match="exists"):
        apply(provider, "create", None, bridge())


def test_an_existing_link_of_another_kind_is_read_too(provider):
    obj = provider.read("bridge", ["p1"])["p1"]
    assert obj.mark is None and obj.attrs["name"] == "p1"
    with pytest.raises(ProviderError, match="not a bridge"):
        provider.import_object("bridge", "p1")


def test_import_object_reads_an_unmarked_bridge(provider, ports):
    in_ns(ports, "ip", "link", "add", "br-old", "type", "bridge")
    in_ns(ports, "ip", "link", "set", "p2", "master", "br-old")
    obj = provider.import_object("bridge", "br-old")
    assert obj.mark is None and obj.attrs["interfaces"] == ["p2"]
    assert provider.import_object("bridge", "nope") is None


def test_read_includes_marked_links_not_asked_for(created):
    """A link carrying a mark but missing from the state (crash) is found for adoption."""
    objs = created.read("bridge", [])
    assert list(objs) == ["br-lab"] and objs["br-lab"].mark.address == "bridge.lab"


def test_missing_namespace_is_a_provider_error():
    from kvmnet.providers.iproute import IprouteProvider
    with pytest.raises(ProviderError, match="does not exist"):
        IprouteProvider({"netns": "kvmnet-no-such-ns"}).read("bridge", [])


# -- update in place ----------------------------------------------------------

@pytest.mark.parametrize("change", [
    {"interfaces": ["p1", "p2"]},
    {"interfaces": []},
    {"stp": True},
    {"forward_delay": 2},
    {"stp": True, "forward_delay": 10},
    {"multicast_snooping": False},
    {"mtu": 1300},
    {"mtu": 9000},
    {"addresses": ["10.9.0.1/24", "10.7.0.1/24"]},
    {"addresses": ["10.9.0.2/24"], "routes": []},
    {"routes": [{"to": "10.8.0.0/24", "via": "10.9.0.254", "metric": 20},
                {"to": "0.0.0.0/0", "via": "10.9.0.1", "metric": None}]},
    {"routes": []},
], ids=lambda c: ",".join(c))
def test_update_in_place(created, change):
    after = canonical("bridge", bridge(**change))
    res = apply(created, "update", bridge(), after)
    assert res.attrs == after
    assert live(created) == after


def test_update_releases_ports_without_deleting_them(created, ports):
    apply(created, "update", bridge(), bridge(interfaces=["p1"]))
    p0 = ip_json(ports, "link", "show", "dev", "p0")[0]
    assert "master" not in p0


def test_update_from_stp_to_a_delay_only_valid_without_it(created):
    apply(created, "update", bridge(), bridge(stp=True, forward_delay=5))
    after = bridge(stp=False, forward_delay=0)
    apply(created, "update", bridge(stp=True, forward_delay=5), after)
    assert live(created) == after


def test_update_puts_the_mark_back(created, ports):
    in_ns(ports, "ip", "link", "set", "br-lab", "alias", "someone else")
    apply(created, "update", bridge(), bridge())
    assert created.read("bridge", ["br-lab"])["br-lab"].mark == parse_mark(MARK)


def test_update_of_a_vanished_bridge_says_so(created, ports):
    in_ns(ports, "ip", "link", "del", "br-lab")
    with pytest.raises(ProviderError, match="no longer exists"):
        apply(created, "update", bridge(), bridge(mtu=1300))


def test_omitted_attributes_are_left_alone(created, ports):
    in_ns(ports, "ip", "link", "set", "br-lab", "type", "bridge", "mcast_snooping", "0")
    apply(created, "update", bridge(), bridge(multicast_snooping=None, mtu=None))
    attrs = live(created)
    assert attrs["multicast_snooping"] is False and attrs["mtu"] == 1400


# -- drift: changes behind kvmnet's back ---------------------------------------

DRIFT = [
    ("interfaces", ["link", "set", "p0", "nomaster"], []),
    ("interfaces", ["link", "set", "p1", "master", "br-lab"], ["p0", "p1"]),
    ("stp", ["link", "set", "br-lab", "type", "bridge", "stp_state", "1"], True),
    ("forward_delay", ["link", "set", "br-lab", "type", "bridge", "forward_delay", "900"], 9),
    ("multicast_snooping", ["link", "set", "br-lab", "type", "bridge", "mcast_snooping", "0"], False),
    ("mtu", ["link", "set", "br-lab", "mtu", "1280"], 1280),
    ("addresses", ["addr", "add", "10.9.9.9/32", "dev", "br-lab"], ["10.9.0.1/24", "10.9.9.9/32"]),
    # the kernel drops the route whose gateway is no longer reachable, too
    ("addresses", ["addr", "del", "10.9.0.1/24", "dev", "br-lab"], [], {"routes": []}),
    ("routes", ["route", "add", "10.6.0.0/16", "via", "10.9.0.253", "dev", "br-lab"],
     [{"to": "10.6.0.0/16", "via": "10.9.0.253", "metric": None},
      {"to": "10.8.0.0/24", "via": "10.9.0.254", "metric": 50}]),
    ("routes", ["route", "del", "10.8.0.0/24", "dev", "br-lab"], []),
]


DRIFT = [d if len(d) == 4 else (*d, {}) for d in DRIFT]


@pytest.mark.parametrize("attr,cmd,seen,also", DRIFT, ids=[f"{d[0]}:{' '.join(d[1][:2])}" for d in DRIFT])
def test_drift_is_read(created, ports, attr, cmd, seen, also):
    """Each attribute changed with ip behind kvmnet's back shows in read (and only it)."""
    in_ns(ports, "ip", *cmd)
    assert live(created) == bridge(**{attr: seen}, **also)
    # and an update takes it back
    apply(created, "update", bridge(), bridge())
    assert live(created) == bridge()


def test_a_tap_port_is_a_consumer_not_drift(created, ports):
    in_ns(ports, "ip", "tuntap", "add", "dev", "vnet7", "mode", "tap")
    in_ns(ports, "ip", "link", "set", "vnet7", "master", "br-lab")
    assert live(created)["interfaces"] == ["p0"]
    assert created.consumers("bridge", bridge()) == [Consumer("port", "vnet7", "enslaved", None)]
    apply(created, "update", bridge(), bridge(interfaces=["p1"]))   # never releases the tap
    assert ip_json(ports, "link", "show", "dev", "vnet7")[0]["master"] == "br-lab"


# -- consumers and destroy -----------------------------------------------------

def test_consumers_name_a_foreign_port(created, ports):
    assert created.consumers("bridge", bridge()) == []
    in_ns(ports, "ip", "link", "set", "p2", "master", "br-lab")
    assert created.consumers("bridge", bridge()) == [Consumer("port", "p2", "enslaved", None)]
    assert created.consumers("bridge", bridge(name="no-such")) == []


def test_destroy_releases_ports_and_keeps_them(created, ports):
    res = apply(created, "delete", bridge(), None)
    assert res.attrs is None
    names = {l["ifname"]: l for l in ip_json(ports, "link", "show")}
    assert "br-lab" not in names
    assert "p0" in names and "master" not in names["p0"]
    assert created.read("bridge", ["br-lab"]) == {}
    apply(created, "delete", bridge(), None)   # already gone: nothing to do


def test_snapshot_holds_the_ip_view(created):
    snap = created.snapshot("bridge", ["br-lab", "gone"])
    assert list(snap) == ["br-lab"]
    assert snap["br-lab"]["link"]["ifalias"] == MARK


def test_check_rejects_netplan_only_attributes(provider):
    problems = provider.check("bridge", "bridge.lab", bridge(dhcp4=True, nameservers=["10.0.0.53"]))
    assert [a for a, _ in problems] == ["dhcp4", "nameservers"]
    assert provider.check("bridge", "bridge.lab", bridge()) == []


def test_many_bridges_one_read(provider, ports):
    for i in range(20):
        apply(provider, "create", None, {"name": f"b{i}", "interfaces": [], "addresses": [f"10.20.{i}.1/24"],
                                        "routes": [], "stp": False}, mark=f"kvmnet:L:bridge.b[{i}]")
    objs = provider.read("bridge", [])
    assert sorted(objs) == sorted(f"b{i}" for i in range(20))
    assert objs["b7"].attrs["addresses"] == ["10.20.7.1/24"]


# -- vlan -------------------------------------------------------------------

HAS_8021Q = kernel_has_8021q()
needs_8021q = pytest.mark.skipif(not HAS_8021Q, reason="this kernel has no 802.1Q (ip link add type vlan: Unknown device type)")


@needs_8021q
def test_vlan_create_update_consumer_destroy(provider, ports):
    vlan = {"name": "p0.42", "id": 42, "link": "p0", "mtu": 1400, "addresses": ["10.42.0.1/24"]}
    apply(provider, "create", None, vlan, rtype="vlan", mark="kvmnet:L:vlan.v")
    obj = provider.read("vlan", ["p0.42"])["p0.42"]
    assert obj.attrs == vlan and obj.mark.address == "vlan.v"
    after = dict(vlan, mtu=1300, addresses=["10.42.0.2/24"])
    apply(provider, "update", vlan, after, rtype="vlan", mark="kvmnet:L:vlan.v")
    assert live(provider, "p0.42", "vlan") == after
    in_ns(ports, "ip", "link", "add", "brx", "type", "bridge")
    in_ns(ports, "ip", "link", "set", "p0.42", "master", "brx")
    assert provider.consumers("vlan", after) == [Consumer("bridge", "brx", "enslaves it", ("bridge", "brx"))]
    assert provider.consumers("bridge", {"name": "brx", "interfaces": []}) == [
        Consumer("port", "p0.42", "enslaved", ("vlan", "p0.42"))]
    apply(provider, "delete", after, None, rtype="vlan")
    assert provider.read("vlan", ["p0.42"]) == {}


def test_vlan_without_8021q_fails_with_the_kernel_message(provider):
    if HAS_8021Q:
        pytest.skip("this kernel has 802.1Q")
    with pytest.raises(ProviderError, match="create vlan p0.42"):
        apply(provider, "create", None, {"name": "p0.42", "id": 42, "link": "p0", "addresses": []},
              rtype="vlan")
