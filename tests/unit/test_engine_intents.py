"""Intents through the engine with the FAKE provider of test_engine_plan: the walk
records and closes them, a plan settles nothing but shows the verdicts, and
``reconcile.settle`` (what apply and destroy run first) adopts, rolls back or
refuses."""
from __future__ import annotations

import pytest

from kvmnet.engine import registry
from kvmnet.sdk.ownership import Mark, format_mark
from kvmnet.engine.plan.model import CREATE, NOOP
from kvmnet.engine.plan.planner import PlanOptions, make_plan
from kvmnet.engine.prepare import prepare
from kvmnet.engine.reconcile import ADOPT, CONFLICT, ROLLBACK, settle
from kvmnet.sdk.provider import ProviderError
from kvmnet.state import Intent, open_state
from tests.unit.test_engine_plan import LAB, Harness, World, make_fake

BRIDGE = 'resource "bridge" "br0" {\n  mtu = 1500\n}\n'
BR_ATTRS = {"name": "br0", "mtu": 1500, "interfaces": [], "addresses": [], "routes": [],
            "stp": False}


@pytest.fixture
def world(monkeypatch):
    w = World()
    fake = make_fake(w)

    class WithIdentities(fake):
        discarded: list = []

        def identify(self, change):
            if w.fail_on and change.address in w.fail_on:
                raise ProviderError(f"{change.address}: cannot fix an identity")
            return {"attrs": {"mtu": change.after.get("mtu")}} if change.type == "bridge" else {}

        def discard(self, rtype, identity):
            if identity.get("id") == "refuse":
                raise ProviderError("discard: the fake refuses")
            WithIdentities.discarded.append((rtype, identity["id"]))

    monkeypatch.setattr(registry, "_classes",
                        {**registry._classes, "libvirt": WithIdentities, "iproute": WithIdentities})
    w.cls = WithIdentities
    return w


@pytest.fixture
def h(tmp_path, world):
    return Harness(tmp_path, world)


def plan_with_intents(h):
    prepared = prepare(str(h.dir), use_cache=False)
    be = open_state(h.state_path)
    return make_plan(prepared, be.read(), registry.ProviderSet({}),
                     PlanOptions(intents=be.open_intents()))


def open_intent(h, address="bridge.br0", ident=None) -> int:
    be = open_state(h.state_path)
    with be.transaction() as w:
        lineage = w.lineage
    mark = format_mark(lineage, address)
    ident = {"id": "br0", "mark": mark, "exclusive": True, **(ident or {})}
    return be.record_intent(Intent(address, "create", "bridge", "iproute", ident))


def test_the_walk_closes_each_intent_with_its_state_write(h):
    h.config(LAB % "true" + BRIDGE)
    _, report = h.apply()
    assert report.ok
    assert open_state(h.state_path).open_intents() == []


def test_a_failed_change_leaves_its_intent_open_and_settle_rolls_it_back(h):
    h.world.fail_on.add("bridge.br0")
    h.config(BRIDGE)
    _, report = h.apply()
    assert report.failed[0] == "bridge.br0" and "cannot fix an identity" in report.failed[2]
    assert h.world.calls == []                      # nothing was asked of the provider
    h.world.fail_on.clear()
    iid = open_intent(h)
    (d,) = settle(open_state(h.state_path), registry.ProviderSet({}))
    assert d.intent.id == iid and d.verdict == ROLLBACK
    assert ("bridge", "br0") in h.world.cls.discarded
    assert open_state(h.state_path).open_intents() == []


def test_an_unmarked_object_with_the_chosen_identity_is_adopted_and_recorded(h):
    h.config(BRIDGE)
    open_intent(h, ident={"attrs": {"mtu": 1500}})
    h.world.put("bridge", BR_ATTRS)                  # made, killed before its mark
    plan = plan_with_intents(h)
    assert not plan.errors, [str(e) for e in plan.errors]
    (c,) = plan.resource_changes
    assert c.actions == NOOP and "adopted" in (c.reason or "")
    be = open_state(h.state_path)
    (d,) = settle(be, registry.ProviderSet({}))
    assert d.verdict == ADOPT and len(be.open_intents()) == 1   # closed with the record
    _, report = h.apply(intents=be.open_intents())
    assert report.ok and "bridge.br0" in h.state().instances
    assert open_state(h.state_path).open_intents() == []
    assert ("create", "bridge.br0") not in h.world.calls


def test_a_same_named_object_made_by_hand_is_a_plan_error_with_its_line(h):
    h.config(BRIDGE)
    open_intent(h, ident={"attrs": {"mtu": 1500}})
    h.world.put("bridge", {**BR_ATTRS, "mtu": 9000})  # someone else's br0
    plan = plan_with_intents(h)
    (err,) = plan.errors
    assert err.address == "bridge.br0" and err.line == 1 and err.file.endswith("main.hcl")
    assert "not the object that an interrupted kvmnet create began" in err.message
    (d,) = settle(open_state(h.state_path), registry.ProviderSet({}))
    assert d.verdict == CONFLICT
    assert len(open_state(h.state_path).open_intents()) == 1     # stays open


def test_a_conflict_for_an_address_no_longer_configured_is_still_an_error(h):
    h.config(LAB % "true")
    open_intent(h)
    h.world.put("bridge", BR_ATTRS)
    (err,) = plan_with_intents(h).errors
    assert err.address == "bridge.br0" and err.file is None


def test_a_discard_that_fails_stops_settle_with_the_providers_message(h):
    h.config(BRIDGE)
    open_intent(h, ident={"id": "refuse"})
    with pytest.raises(ProviderError, match="discard: the fake refuses"):
        settle(open_state(h.state_path), registry.ProviderSet({}))
    assert len(open_state(h.state_path).open_intents()) == 1


def test_a_half_made_object_with_our_mark_is_planned_afresh_not_adopted(h):
    """Ours (the mark) but not what the intent fixed (a network defined, never
    started, say): the plan shows the create that apply will make after discarding it."""
    h.config(BRIDGE)
    open_intent(h, ident={"attrs": {"mtu": 1500}})
    lineage = open_state(h.state_path).read().lineage
    h.world.put("bridge", {**BR_ATTRS, "mtu": 9000}, Mark(lineage, "bridge.br0"))
    plan = plan_with_intents(h)
    assert not plan.errors, [str(e) for e in plan.errors]
    (c,) = plan.resource_changes
    assert c.actions == CREATE and not c.reason
    (d,) = settle(open_state(h.state_path), registry.ProviderSet({}))
    assert d.verdict == ROLLBACK and ("bridge", "br0") in h.world.cls.discarded
