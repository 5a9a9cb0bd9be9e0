"""IPv6 port forwards, the pure parts: validation, identity, claims and the
render → parse round trips of both providers (the real rules are proven with IPv6
traffic past libvirt's rules in tests/real/test_forwards_ipv6.py)."""
from __future__ import annotations

import json
import shlex

import pytest

from kvmnet.engine.model import ResourceInstance, SourcePos
from kvmnet.engine.resources import TYPES, canonical, identity
from kvmnet.engine.validate import validate_instances
from kvmnet.providers.forwarding import forward_from_attrs, forwards_after, intact_forwards
from kvmnet.providers.iptables import rules as ipt
from kvmnet.providers.nftables import NftablesProvider
from kvmnet.providers.nftables import rules as nft
from kvmnet.sdk.provider import Change, ProviderError

MARK = "kvmnet:0b6f1c1e-1111-2222-3333-444455556666:port_forward.web6"
GUEST6 = "fd00:db8:1::50"


def attrs(**kw):
    base = dict(protocol="tcp", host_port="8080", to_address=GUEST6, to_port=80,
                in_interface=None, source=None, network=None)
    base.update(kw)
    return base


# -- the model -------------------------------------------------------------------
@pytest.mark.parametrize("bad, message", [
    (dict(to_address="fd00::zz"), "not an IPv4 or IPv6 address"),
    (dict(to_address="::1"), "loopback"),
    (dict(to_address="::"), "unspecified"),
    (dict(to_address="fe80::5"), "link-local"),
    (dict(to_address="ff02::1"), "multicast"),
    (dict(to_address="::ffff:10.0.0.5"), "forward to 10.0.0.5 instead"),
    (dict(source="198.18.0.0/24"), "one address family"),
    (dict(source="2001:db8::1/64"), "IPv6 CIDR without host bits"),
    (dict(to_address="10.0.0.5", source="2001:db8::/64"), "one address family"),
])
def test_malformed_ipv6_forwards_are_refused(bad, message):
    with pytest.raises(ProviderError, match=message):
        forward_from_attrs(attrs(**bad))


def test_ipv6_forward_model_and_identity():
    f = forward_from_attrs(attrs(to_address="FD00:DB8:1:0::50", source="2001:DB8::/48"), MARK)
    assert (f.family, f.id, f.to_address, f.source) == (6, "tcp6/8080", GUEST6, "2001:db8::/48")
    assert forward_from_attrs(attrs(to_address="10.0.0.5")).id == "tcp/8080"
    # the engine's canonical form and ID agree with what the providers read back
    a = canonical("port_forward", attrs(to_address="FD00:DB8:1:0::50", source="2001:DB8:0::/48"))
    assert (a["to_address"], a["source"]) == (GUEST6, "2001:db8::/48")
    assert identity("port_forward", a) == "tcp6/8080"
    assert identity("port_forward", dict(protocol="udp", host_port="53", to_address="10.0.0.5")) == "udp/53"
    # malformed text is left alone for validation to name
    assert canonical("port_forward", attrs(source="2001:db8::1/64"))["source"] == "2001:db8::1/64"


def test_same_host_port_in_both_families_coexists_but_not_twice_in_one():
    live = {"tcp/8080": forward_from_attrs(attrs(to_address="10.0.0.50"), MARK)}
    new, _ = forwards_after(live, [Change("create", "port_forward", "port_forward.web6", None, attrs(), MARK)])
    assert set(new) == {"tcp/8080", "tcp6/8080"}
    with pytest.raises(ProviderError, match="tcp6/8080 overlaps tcp6/8000-8090"):
        forwards_after(new, [Change("create", "port_forward", "x", None, attrs(host_port="8000-8090"))])
    # deleting the IPv6 one leaves the IPv4 one
    new, _ = forwards_after(new, [Change("delete", "port_forward", "port_forward.web6", attrs(), None)])
    assert set(new) == {"tcp/8080"}


# -- plan-time validation: file, line, attribute -------------------------------------
def make(label, **a):
    a.setdefault("protocol", "tcp")
    a.setdefault("to_port", 80)
    lines = {k: 10 + i for i, k in enumerate(a, 1)}
    return ResourceInstance(address=f"port_forward.{label}", type="port_forward", name=label, key=None,
                            provider=TYPES["port_forward"].default_provider, attrs=a,
                            pos=SourcePos("main.hcl", 10), attr_lines=lines)


def errors(*instances):
    return validate_instances(list(instances)).errors


def test_plan_validation_of_ipv6_forwards():
    ok = make("ok", host_port=8080, to_address=GUEST6, source="2001:db8::/32")
    bad = make("bad", host_port=8081, to_address="fd00::zz")
    lo = make("lo", host_port=8082, to_address="fe80::1")
    mixed = make("mixed", host_port=8083, to_address=GUEST6, source="198.18.0.0/24")
    hostbits = make("hostbits", host_port=8084, to_address=GUEST6, source="2001:db8::1/64")
    diags = {(d.address, d.attribute): str(d) for d in errors(ok, bad, lo, mixed, hostbits)}
    assert not any(a == "port_forward.ok" for a, _ in diags)
    assert "not a valid IPv6 address" in diags[("port_forward.bad", "to_address")]
    assert "link-local" in diags[("port_forward.lo", "to_address")]
    assert "one address family" in diags[("port_forward.mixed", "source")]
    assert "not a valid IPv6 network" in diags[("port_forward.hostbits", "source")]
    assert "main.hcl" in diags[("port_forward.mixed", "source")]


def test_an_ipv6_forward_names_its_network_by_its_ipv6_subnet():
    lab = ResourceInstance(address="network.lab", type="network", name="lab", key=None,
                           provider="libvirt", pos=SourcePos("main.hcl", 1), attr_lines={},
                           attrs={"forward": [{"mode": "nat"}],
                                  "ip": [{"address": "10.0.0.1", "prefix": 24},
                                         {"family": "ipv6", "address": "fd00:db8:1::1", "prefix": 64}]})
    v6only = ResourceInstance(address="network.six", type="network", name="six", key=None,
                              provider="libvirt", pos=SourcePos("main.hcl", 5), attr_lines={},
                              attrs={"forward": [{"mode": "nat"}],
                                     "ip": [{"family": "ipv6", "address": "fd00:db8:2::1", "prefix": 64}]})
    inside = make("inside", host_port=8085, to_address=GUEST6, network="lab")
    outside = make("outside", host_port=8086, to_address="fd00:db8:9::5", network="lab")
    six = make("six", host_port=8087, to_address="fd00:db8:2::5", network="six")
    v4 = make("v4", host_port=8088, to_address="10.0.0.5", network="lab")
    v4out = make("v4out", host_port=8089, to_address="10.0.1.5", network="lab")
    # an IPv4 forward on a network whose config gives no IPv4 subnet: nothing to check
    v4six = make("v4six", host_port=8090, to_address="10.0.1.5", network="six")
    diags = {(d.address, d.attribute): str(d) for d in errors(lab, v6only, inside, outside, six, v4, v4out, v4six)}
    assert set(diags) == {("port_forward.outside", "to_address"), ("port_forward.v4out", "to_address")}, diags
    assert 'to_address = "fd00:db8:9::5" is not in the subnet fd00:db8:1::/64 of network "lab" (network.lab)' \
        in diags[("port_forward.outside", "to_address")]
    assert "10.0.0.0/24" in diags[("port_forward.v4out", "to_address")]


def test_host_ports_are_claimed_per_protocol_and_family():
    v4 = make("v4", host_port=8080, to_address="10.0.0.5")
    v6 = make("v6", host_port=8080, to_address=GUEST6)
    assert errors(v4, v6) == []
    again = make("again", host_port="8000-8090", to_address="fd00::51")
    [d] = errors(v4, v6, again)
    assert (d.address, d.attribute) == ("port_forward.again", "host_port")
    assert "8000-8090/tcp6" in str(d) and "port_forward.v6" in str(d)


def test_provider_check_names_the_attribute():
    p = NftablesProvider({})
    assert p.check("port_forward", "port_forward.web6", attrs()) == []
    [(attribute, message)] = p.check("port_forward", "port_forward.web6", attrs(to_address="fe80::1"))
    assert attribute == "to_address" and "link-local" in message


# -- both providers' syntax -------------------------------------------------------------
FORWARDS6 = [
    forward_from_attrs(attrs(), MARK),
    forward_from_attrs(attrs(protocol="udp", host_port="5000-5002", to_port=6000,
                             in_interface="veth0", source="2001:db8:7::/48"), MARK),
    forward_from_attrs(attrs(host_port="7000-7001", to_port=7000, source="2001:db8::7/128"), MARK),
]


@pytest.mark.parametrize("f", FORWARDS6, ids=lambda f: f.id)
def test_nft_ipv6_rules_parse_back_to_what_was_rendered(f):
    parsed = []
    for rendered in (nft.dnat_rule(f), nft.accept_rule(f)):
        assert rendered["family"] == "ip6"
        parsed += nft.parse_rule(rendered["chain"], rendered, 6)
        assert nft.parse_rule(rendered["chain"], rendered, 4) == []   # not read as IPv4
    assert sorted(map(repr, parsed)) == sorted(map(repr, f.rules()))
    assert set(intact_forwards(parsed, {6})) == {f.id}


def test_nft_transaction_keeps_the_families_in_their_tables():
    v4 = forward_from_attrs(attrs(to_address="10.0.0.50"), MARK)
    libvirt_both = nft.RulesetView({"nftables": [
        {"chain": {"family": fam, "table": "filter", "name": "FORWARD", "hook": "forward"}}
        for fam in ("ip", "ip6")]})
    doc = nft.transaction([v4, FORWARDS6[0]], libvirt_both)["nftables"]
    inserts = [c["insert"]["rule"]["family"] for c in doc if "insert" in c]
    assert inserts == ["ip", "ip6"]
    listed = [cmd["add"] for cmd in doc if "add" in cmd]
    view = nft.RulesetView({"nftables": listed})
    assert view.effective_families == {4, 6}
    assert set(intact_forwards(view.rules, view.effective_families)) == {"tcp/8080", "tcp6/8080"}
    six = [i["rule"] for i in listed if "rule" in i and i["rule"]["family"] == "ip6"]
    out = next(r for r in six if r["chain"] == "output")
    assert out["expr"][0]["match"]["right"] == "::1"    # loopback left alone
    # an IPv6 forward alone: libvirt's IPv4 chain gets nothing of kvmnet
    doc = nft.transaction([FORWARDS6[0]], libvirt_both)["nftables"]
    assert [c["insert"]["rule"]["family"] for c in doc if "insert" in c] == ["ip6"]


@pytest.mark.parametrize("f", FORWARDS6, ids=lambda f: f.id)
def test_ip6tables_lines_parse_back_to_what_was_rendered(f):
    for r in f.rules():
        line = ipt.dnat_line(r) if hasattr(r, "hook") else ipt.accept_line(r)
        words = shlex.split(line)
        assert ipt.parse_line(words[1], words[2:], 6) == r
        assert ipt.parse_line(words[1], words[2:], 4) is None


def test_ip6tables_restore_text():
    text = ipt.restore_text(FORWARDS6[:2], ipt.parse_save("", 6))
    assert text.count(f"--to-destination [{GUEST6}]:80") == 2     # prerouting and output
    assert f"[{GUEST6}]:6000-6002/5000" in text
    assert "! -d ::1/128" in text and f"-d {GUEST6}/128" in text
    assert "-I FORWARD 1 " in text
    # read back as ip6tables-save would list it
    view = ipt.parse_save(text.replace("-I FORWARD 1", "-A FORWARD"), 6)
    assert view.shared_rule_effective and view.touched
    assert set(intact_forwards(view.rules, {6})) == {"tcp6/8080", "udp6/5000-5002"}


def test_nft_leaves_a_family_alone_that_it_has_nothing_in():
    v4 = forward_from_attrs(attrs(to_address="10.0.0.50"), MARK)
    empty = nft.RulesetView({})
    doc = nft.transaction([v4], empty)["nftables"]
    assert doc and '"ip6"' not in json.dumps(doc)        # an IPv4-only host sees no ip6 command
    assert nft.transaction([], empty)["nftables"] == []
    # an ip6 kvmnet table left live is removed when its last forward goes
    live6 = nft.RulesetView({"nftables": [{"table": {"family": "ip6", "name": "kvmnet"}}]})
    assert nft.transaction([], live6)["nftables"] == [
        {"add": {"table": {"family": "ip6", "name": "kvmnet"}}},
        {"delete": {"table": {"family": "ip6", "name": "kvmnet"}}}]
