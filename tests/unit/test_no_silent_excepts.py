"""Parsers of live objects tell "not kvmnet's" (a foreign shape) from a bug: the
first is skipped, the second is raised, never turned into silent drift."""
from __future__ import annotations

import pytest

from kvmnet.providers.iptables import rules as ipt
from kvmnet.providers.nftables import rules as nft


def test_nft_rule_of_a_foreign_shape_is_not_kvmnets():
    foreign = {"expr": [{"match": {"left": "not a dict", "right": 1, "op": "=="}}]}
    assert nft.parse_rule(nft.DNAT_CHAIN, foreign) == []
    assert nft.parse_rule(nft.DNAT_CHAIN, {"expr": [{"mangle": "odd"}]}) == []


def test_nft_parser_bug_is_raised_not_swallowed(monkeypatch):
    def broken(*args):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(nft, "_fields", broken)
    with pytest.raises(ZeroDivisionError):
        nft.parse_rule(nft.DNAT_CHAIN, {"expr": []})


def test_iptables_line_of_a_foreign_shape_is_not_kvmnets():
    chain = next(iter(ipt.OWN_CHAINS))
    assert ipt.parse_line(chain, ["-p", "tcp", "--dport", "eighty", "-j", "DNAT"]) is None
    assert ipt.parse_line(chain, ["-p"]) is None


def test_iptables_parser_bug_is_raised_not_swallowed(monkeypatch):
    def broken(*args):
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr(ipt, "_words_to_fields", broken)
    with pytest.raises(ZeroDivisionError):
        ipt.parse_line(next(iter(ipt.OWN_CHAINS)), ["-p", "tcp"])


def test_provider_set_close_closes_all_then_raises_a_close_bug():
    from kvmnet.engine.registry import ProviderSet
    closed = []

    class P:
        def __init__(self, name, fail):
            self.name, self.fail = name, fail

        def close(self):
            closed.append(self.name)
            if self.fail:
                raise RuntimeError(f"{self.name} close bug")

    ps = ProviderSet({})
    ps.instances = {"a": P("a", True), "b": P("b", False)}
    with pytest.raises(RuntimeError, match="a close bug"):
        ps.close()
    assert closed == ["a", "b"]
