"""Pure parts of port forwarding: validation, the apply bookkeeping, and rendering →
parsing round trips of both providers' syntax (no firewall is touched here; the real
rules are proven with traffic in tests/real/test_forwards.py)."""
from __future__ import annotations

import shlex

import pytest

from kvmnet.sdk.provider import Change, ProviderError
from kvmnet.providers.forwarding import (
    forward_from_attrs, forwards_after, intact_forwards, result_attrs, shared_rule_first,
)
from kvmnet.providers.iptables import rules as ipt
from kvmnet.providers.nftables import rules as nft

MARK = "kvmnet:0b6f1c1e-1111-2222-3333-444455556666:port_forward.web"


def attrs(**kw):
    base = dict(protocol="tcp", host_port="8080", to_address="10.0.0.50", to_port=80,
                in_interface=None, source=None, network="default")
    base.update(kw)
    return base


@pytest.mark.parametrize("bad, message", [
    (dict(to_address="10.0.0.500"), "to_address"),
    (dict(to_address="guest.example"), "to_address"),
    (dict(to_address="127.0.0.1"), "to_address"),
    (dict(host_port="0"), "host_port"),
    (dict(host_port="8010-8000"), "reversed"),
    (dict(host_port="80-"), "host_port"),
    (dict(host_port=True), "host_port"),
    (dict(to_port=65536), "to_port"),
    (dict(host_port="65000-65010", to_port=65530), "past 65535"),
    (dict(protocol="icmp"), "protocol"),
    (dict(source="10.0.0.1/24"), "host bits"),
    (dict(source="10.0.0.0/33"), "source"),
    (dict(in_interface="eth0; rm"), "in_interface"),
    (dict(in_interface="a" * 16), "in_interface"),
])
def test_malformed_forwards_are_refused(bad, message):
    with pytest.raises(ProviderError, match=message):
        forward_from_attrs(attrs(**bad))


def test_forward_model_and_identity():
    f = forward_from_attrs(attrs(host_port=8000.0), MARK)
    assert f.id == "tcp/8000" and f.mark.address == "port_forward.web"
    r = forward_from_attrs(attrs(protocol="udp", host_port="5000-5002", to_port=6000, in_interface="eth0"))
    assert (r.id, r.to_hi, r.output_rule()) == ("udp/5000-5002", 6002, None)
    assert r.attrs()["host_port"] == "5000-5002"
    assert result_attrs(Change("create", "port_forward", "a", None, attrs()), f)["network"] == "default"


def test_forwards_after_changes_and_overlaps():
    live = {"tcp/8080": forward_from_attrs(attrs(), MARK)}
    new, outcome = forwards_after(live, [
        Change("delete", "port_forward", "port_forward.web", attrs(), None),
        Change("create", "port_forward", "port_forward.b", None, attrs(host_port="9000"), mark=MARK),
    ])
    assert set(new) == {"tcp/9000"} and outcome[0][1] is None
    with pytest.raises(ProviderError, match="forwarded twice"):
        forwards_after(live, [Change("create", "port_forward", "x", None, attrs(host_port="8000-8090"))])
    # udp and tcp on the same port are two different forwards
    new, _ = forwards_after(live, [Change("create", "port_forward", "x", None, attrs(protocol="udp"))])
    assert set(new) == {"tcp/8080", "udp/8080"}


def test_a_forward_missing_any_rule_or_the_shared_rule_is_not_live():
    f = forward_from_attrs(attrs(), MARK)
    assert set(intact_forwards(f.rules(), {4})) == {"tcp/8080"}
    assert intact_forwards(f.rules(), ()) == {}
    assert intact_forwards(f.rules(), {6}) == {}          # only IPv6's accept is in place
    assert intact_forwards([f.prerouting_rule(), f.accept_rule()], {4}) == {}
    assert intact_forwards([f.prerouting_rule(), f.output_rule()], {4}) == {}


def test_shared_rule_must_precede_every_foreign_rule():
    assert shared_rule_first([(True, True), (False, False)])
    assert shared_rule_first([(True, False), (True, True), (False, False)])   # other kvmnet first
    assert not shared_rule_first([(False, False), (True, True)])              # libvirt's jump first
    assert not shared_rule_first([(False, False)])


FORWARDS = [
    forward_from_attrs(attrs(), MARK),
    forward_from_attrs(attrs(protocol="udp", host_port="5000-5002", to_port=6000,
                             in_interface="veth0", source="198.18.0.0/24"), MARK),
    forward_from_attrs(attrs(host_port="7000-7001", to_port=7000, source="198.18.0.7/32"),
                       'kvmnet:L:port_forward.x["a \\"b"]'),
]


@pytest.mark.parametrize("f", FORWARDS, ids=lambda f: f.id)
def test_nft_rules_parse_back_to_what_was_rendered(f):
    parsed = []
    for rendered in (nft.dnat_rule(f), nft.accept_rule(f)):
        parsed += nft.parse_rule(rendered["chain"], rendered)
    assert sorted(map(repr, parsed)) == sorted(map(repr, f.rules()))
    assert set(intact_forwards(parsed, {4, 6})) == {f.id}


def test_nft_view_needs_kvmnets_hooks_wired():
    f = FORWARDS[0]
    doc = nft.transaction([f], nft.RulesetView({}))
    listed = [cmd["add"] for cmd in doc["nftables"][2:] if "add" in cmd]
    view = nft.RulesetView({"nftables": listed})
    assert view.wired[4] and view.effective_families == {4} and len(view.rules) == 3
    without_output_jump = [i for i in listed if i.get("rule", {}).get("chain") != "output"]
    assert nft.RulesetView({"nftables": without_output_jump}).effective_families == set()


@pytest.mark.parametrize("f", FORWARDS, ids=lambda f: f.id)
def test_iptables_lines_parse_back_to_what_was_rendered(f):
    for r in f.rules():
        line = ipt.dnat_line(r) if hasattr(r, "hook") else ipt.accept_line(r)
        words = shlex.split(line)
        assert ipt.parse_line(words[1], words[2:]) == r


def test_nft_transaction_touches_only_kvmnets_table_and_its_one_rule():
    view = nft.RulesetView({"nftables": [
        {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "hook": "forward"}},
        {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 7,
                  "expr": [{"jump": {"target": "LIBVIRT_FWI"}}]}},
        {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 9,
                  "comment": "kvmnet:forward-accept", "expr": [{"accept": None}]}},
    ]})
    assert 4 not in view.effective_families       # libvirt's jump came first
    doc = nft.transaction(FORWARDS[:1], view)["nftables"]
    touched = {(c_kind, next(iter(c.values())).get("table") or next(iter(c.values())).get("name"))
               for cmd in doc for c_kind, c in cmd.items()}
    assert touched <= {("add", "kvmnet"), ("delete", "kvmnet"), ("delete", "filter"), ("insert", "filter")}
    assert {"delete": {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 9}}} in doc
    assert [c for c in doc if "insert" in c] == [{"insert": {"rule": nft.shared_rule()}}]
    # no forwards left: the table goes, and so does the one rule
    doc = nft.transaction([], view)["nftables"]
    assert not any("insert" in c for c in doc) and doc[1] == {"delete": {"table": {"family": "ip", "name": "kvmnet"}}}


def test_iptables_restore_adds_jumps_only_when_missing():
    first = ipt.restore_text(FORWARDS[:1], ipt.parse_save(""))
    assert "-I FORWARD 1 " in first and "-A PREROUTING " in first and "-A OUTPUT " in first
    save = """*nat
:PREROUTING ACCEPT [0:0]
:KVMNET_PREROUTING - [0:0]
-A PREROUTING -m comment --comment "kvmnet:jump" -j KVMNET_PREROUTING
-A OUTPUT -m comment --comment "kvmnet:jump" -j KVMNET_OUTPUT
COMMIT
*filter
-A FORWARD -m comment --comment "kvmnet:jump" -j KVMNET_FORWARD
-A FORWARD -j LIBVIRT_FWI
COMMIT
"""
    again = ipt.restore_text(FORWARDS[:1], ipt.parse_save(save))
    assert "PREROUTING -m" not in again and "-I FORWARD" not in again and "-D " not in again
    # libvirt's jump ahead of kvmnet's: kvmnet's is moved back to the top
    moved = ipt.parse_save(save.replace(
        '-A FORWARD -m comment --comment "kvmnet:jump" -j KVMNET_FORWARD\n-A FORWARD -j LIBVIRT_FWI',
        '-A FORWARD -j LIBVIRT_FWI\n-A FORWARD -m comment --comment "kvmnet:jump" -j KVMNET_FORWARD'))
    assert not moved.shared_rule_effective
    text = ipt.restore_text(FORWARDS[:1], moved)
    assert '-D FORWARD -m comment --comment "kvmnet:jump" -j KVMNET_FORWARD' in text
    assert "-I FORWARD 1 " in text


def test_plan_time_check_reports_the_attribute():
    from kvmnet.sdk.values import UNKNOWN
    from kvmnet.providers.nftables import NftablesProvider
    p = NftablesProvider({})
    assert p.check("port_forward", "port_forward.web", attrs()) == []
    assert p.check("port_forward", "port_forward.web", attrs(to_address=UNKNOWN)) == []
    [(attribute, message)] = p.check("port_forward", "port_forward.web", attrs(to_address="10.0.0.500"))
    assert attribute == "to_address" and "IPv4" in message
