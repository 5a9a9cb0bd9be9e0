"""The planner and the apply walk with a FAKE provider (registered through
``kvmnet.engine.registry.register``): the engine's own logic, no live system.

The fake serves ``network`` (as "libvirt") and ``bridge`` (as "iproute") from one
in-memory world; a network gets its uuid, and its bridge when none is configured,
only when it is created — the "known after apply" values. State is a real SQLite
file in tmp_path.
"""
from __future__ import annotations

import copy
import textwrap

import pytest

from kvmnet.engine import registry
from kvmnet.engine.diagnostics import DiagnosticError
from kvmnet.sdk.ownership import Mark, format_mark, parse_mark
from kvmnet.engine.plan.model import CREATE, DELETE, NOOP, REPLACE, UPDATE
from kvmnet.engine.plan.planner import PlanOptions, make_plan
from kvmnet.engine.prepare import prepare
from kvmnet.engine.resources import canonical, identity
from kvmnet.sdk.values import UNKNOWN
from kvmnet.engine.walk import Walk
from kvmnet.sdk.provider import Consumer, LiveObject, Provider, ProviderError
from kvmnet.state import open_state


class World:
    def __init__(self):
        self.objects: dict[tuple[str, str], LiveObject] = {}
        self.calls: list[tuple[str, str]] = []            # (action, address)
        self.fail_on: set[str] = set()
        self.consumers: dict[tuple[str, str], list[Consumer]] = {}
        self.losses: dict[str, list[str]] = {}             # network name -> what a replace loses

    def put(self, rtype, attrs, mark=None):
        attrs = canonical(rtype, attrs)
        i = identity(rtype, attrs)
        self.objects[(rtype, i)] = LiveObject(i, attrs, mark)
        return i


def make_fake(world: World):
    class Fake(Provider):
        name = "fake"
        resource_types = ("network", "bridge")
        config_schema = {"type": "object"}

        def read(self, rtype, ids):
            return {i: copy.deepcopy(o) for (t, i), o in world.objects.items() if t == rtype}

        def _made(self, rtype, address, after, mark, before=None):
            if address in world.fail_on:
                raise ProviderError(f"{address}: the fake refuses")
            attrs = dict(after)
            if rtype == "network":
                attrs["uuid"] = (before or {}).get("uuid") or f"uuid-{attrs['name']}"
                attrs["active"] = True
                attrs["bridge"] = attrs.get("bridge") or f"virbr-{attrs['name']}"
            world.put(rtype, attrs, parse_mark(mark))
            return canonical(rtype, attrs)

        def create(self, rtype, address, after, mark):
            world.calls.append(("create", address))
            return self._made(rtype, address, after, mark), {"made_by": address}

        def update(self, rtype, address, before, after, private, mark):
            world.calls.append(("update", address))
            world.objects.pop((rtype, identity(rtype, before)), None)
            return self._made(rtype, address, after, mark, before), private

        def delete(self, rtype, address, before, private):
            world.calls.append(("delete", address))
            if address in world.fail_on:
                raise ProviderError(f"{address}: the fake refuses")
            world.objects.pop((rtype, identity(rtype, before)), None)

        def losses(self, rtype, before, after):
            return list(world.losses.get(before.get("name"), []))

        def consumers(self, rtype, attrs):
            # a use ends when the object behind it (via) is gone, as it would live
            return [c for c in world.consumers.get((rtype, attrs.get("name")), [])
                    if c.via is None or c.via in world.objects]
    return Fake


@pytest.fixture
def world(monkeypatch):
    w = World()
    fake = make_fake(w)
    monkeypatch.setattr(registry, "_classes", {**registry._classes, "libvirt": fake, "iproute": fake})
    return w


class Harness:
    def __init__(self, tmp_path, world):
        self.dir = tmp_path / "cfg"
        self.dir.mkdir()
        self.state_path = tmp_path / "state.db"
        self.world = world

    def config(self, text: str) -> None:
        for f in self.dir.glob("*.hcl"):
            f.unlink()
        (self.dir / "main.hcl").write_text(textwrap.dedent(text))

    def plan(self, **opts):
        prepared = prepare(str(self.dir), use_cache=False)
        ps = registry.ProviderSet({})
        be = open_state(self.state_path)
        plan = make_plan(prepared, be.read(), ps, PlanOptions(**opts))
        return plan, prepared, ps, be

    def apply(self, **opts):
        plan, prepared, ps, be = self.plan(**opts)
        assert not plan.errors, [str(e) for e in plan.errors]
        report = Walk(plan, prepared, be, ps, lineage=be.read().lineage).run()
        return plan, report

    def plan_after(self, applied: str, config: str, **opts):
        """The plan for ``config`` once ``applied`` is applied."""
        self.config(applied)
        assert self.apply()[1].ok
        self.config(config)
        return self.plan(**opts)[0]

    def errors(self) -> list[str]:
        """The errors of a plan that must fail, as printed."""
        with pytest.raises(DiagnosticError) as e:
            self.plan()
        return [str(d) for d in e.value.diagnostics.errors]

    def state(self):
        return open_state(self.state_path).read()

    def actions(self, plan) -> dict[str, list[str]]:
        return {c.address: c.actions for c in plan.resource_changes}


@pytest.fixture
def h(tmp_path, world):
    return Harness(tmp_path, world)


LAB = """
resource "network" "lab" {
  mode      = "nat"
  autostart = %s
}
"""


# -- the five actions ----------------------------------------------------------------

def test_create_then_no_op(h):
    h.config(LAB % "true")
    plan, _, _, _ = h.plan()
    (c,) = plan.resource_changes
    assert c.actions == CREATE and c.before is None
    assert c.after["uuid"] is UNKNOWN and c.after["bridge"] is UNKNOWN
    _, report = h.apply()
    assert report.ok and report.done == [("network.lab", "create")]
    rec = h.state().instances["network.lab"]
    assert rec.attrs["uuid"] == "uuid-lab" and rec.id == "lab" and rec.private == {"made_by": "network.lab"}
    obj = h.world.objects[("network", "lab")]
    assert obj.mark == Mark(h.state().lineage, "network.lab")
    plan, _, _, _ = h.plan()
    assert h.actions(plan) == {"network.lab": NOOP} and not plan.has_changes


NESTED = """
resource "network" "lab" {
  forward {
    mode = "nat"
  }
  bridge {
    name = "virbr7"
  }
  ip {
    address = "10.7.0.1"
    prefix  = 24
    dhcp {
      range {
        start = "10.7.0.100"
        end   = "10.7.0.200"
      }
      host {
        mac  = "52:54:00:00:07:10"
        ip   = "%s"
        name = "vm"
      }
    }
  }
}
"""


@pytest.mark.parametrize("refresh", [True, False])
def test_a_value_deep_in_a_block_still_differs_once_everything_else_is_built_once(h, refresh):
    """The canonical form's per-element tables, the rules' per-instance memos and the
    row check are built once; a changed value deep in a block still differs."""
    h.config(NESTED % "10.7.0.10")
    h.apply()
    plan, _, _, _ = h.plan(refresh=refresh)
    assert h.actions(plan) == {"network.lab": NOOP}
    h.config(NESTED % "10.7.0.11")
    plan, _, _, _ = h.plan(refresh=refresh)
    (c,) = plan.resource_changes
    assert c.actions == REPLACE and c.changed_paths == ["ip"] and c.replace_paths == ["ip"]
    assert c.after["ip"][0]["dhcp"]["host"] == [{"mac": "52:54:00:00:07:10", "ip": "10.7.0.11", "name": "vm"}]
    assert c.before["ip"][0]["dhcp"]["host"][0]["ip"] == "10.7.0.10"


def test_update_in_place(h):
    h.config(LAB % "true")
    h.apply()
    h.config(LAB % "false")
    plan, _, _, _ = h.plan()
    (c,) = plan.resource_changes
    assert c.actions == UPDATE and c.changed_paths == ["autostart"] and c.replace_paths == []
    assert c.after["uuid"] == "uuid-lab", "computed values are kept on update"
    _, report = h.apply()
    assert report.ok and h.world.calls[-1] == ("update", "network.lab")
    assert h.state().instances["network.lab"].attrs["autostart"] is False


def test_replace_names_the_forcing_attribute(h):
    h.config(LAB % "true")
    h.apply()
    h.config('resource "network" "lab" {\n  mode = "route"\n}\n')
    plan, _, _, _ = h.plan()
    (c,) = plan.resource_changes
    assert c.actions == REPLACE and c.replace_paths == ["forward.mode"]
    assert c.after["uuid"] is UNKNOWN
    h.world.calls.clear()
    _, report = h.apply()
    assert report.ok and h.world.calls == [("delete", "network.lab"), ("create", "network.lab")]
    assert h.state().instances["network.lab"].attrs["forward"] == {"mode": "route"}


def test_delete_when_removed_from_config_and_destroy(h):
    h.config(LAB % "true" + 'resource "bridge" "br0" {\n  mtu = 1500\n}\n')
    h.apply()
    h.config(LAB % "true")
    plan, _, _, _ = h.plan()
    assert h.actions(plan) == {"network.lab": NOOP, "bridge.br0": DELETE}
    h.apply()
    assert list(h.state().instances) == ["network.lab"]
    assert ("bridge", "br0") not in h.world.objects
    plan, _, _, _ = h.plan(destroy=True)
    assert h.actions(plan) == {"network.lab": DELETE}


# -- refresh --------------------------------------------------------------------------

def test_drift_changed_and_deleted_outside(h):
    h.config(LAB % "true" + 'resource "bridge" "br0" {\n  mtu = 1500\n}\n')
    h.apply()
    h.world.objects[("network", "lab")].attrs["autostart"] = False
    del h.world.objects[("bridge", "br0")]
    plan, _, _, _ = h.plan()
    drift = {d.address: d for d in plan.resource_drift}
    assert drift["network.lab"].actions == UPDATE and drift["network.lab"].changed_paths == ["autostart"]
    assert drift["bridge.br0"].actions == DELETE and drift["bridge.br0"].reason == "deleted outside kvmnet"
    assert h.actions(plan) == {"network.lab": UPDATE, "bridge.br0": CREATE}
    only = h.plan(refresh_only=True)[0]
    assert only.has_changes and only.resource_changes == []
    no_refresh = h.plan(refresh=False)[0]
    assert no_refresh.resource_drift == [] and not no_refresh.has_changes


def test_object_with_this_states_mark_is_adopted(h):
    h.config(LAB % "true")
    h.apply()
    lineage = h.state().lineage
    # a crash between the change and the state write left a marked bridge behind
    h.world.put("bridge", {"name": "br0", "mtu": 1500, "interfaces": [], "addresses": [],
                           "routes": [], "stp": False}, Mark(lineage, "bridge.br0"))
    h.config(LAB % "true" + 'resource "bridge" "br0" {\n  mtu = 1500\n}\n')
    plan, _, _, _ = h.plan()
    assert not plan.errors, [str(e) for e in plan.errors]
    c = next(c for c in plan.resource_changes if c.address == "bridge.br0")
    assert c.actions == NOOP and c.reason and "adopted" in c.reason
    _, report = h.apply()
    assert report.ok and "bridge.br0" in h.state().instances
    assert ("create", "bridge.br0") not in h.world.calls


def test_unmarked_existing_object_is_a_conflict(h):
    h.world.put("network", {"name": "lab", "mode": "nat", "autostart": True})
    h.config(LAB % "true")
    plan, _, _, _ = h.plan()
    (err,) = plan.errors
    assert err.address == "network.lab" and err.line == 2 and err.file.endswith("main.hcl")
    assert "already exists and is not managed by kvmnet" in err.message
    assert "kvmnet import 'network.lab' 'lab'" in err.message


def test_object_of_another_state_is_a_conflict(h):
    h.world.put("network", {"name": "lab", "mode": "nat"}, Mark("other-lineage", "network.x"))
    h.config(LAB % "true")
    (err,) = h.plan()[0].errors
    assert "managed by another kvmnet state (lineage other-lineage, network.x)" in err.message


# -- consumers ------------------------------------------------------------------------

def test_live_consumer_blocks_a_delete(h):
    h.config(LAB % "true")
    h.apply()
    h.world.consumers[("network", "lab")] = [Consumer("domain", "web", "running"),
                                             Consumer("domain", "db", "shut off")]
    plan, _, _, _ = h.plan(destroy=True)
    (err,) = plan.errors
    assert err.address == "network.lab"
    assert "network.lab is in use by domain(s) web (running), db (shut off)" in err.message
    # a replace is blocked too
    h.config('resource "network" "lab" {\n  mode = "route"\n}\n')
    (err,) = h.plan()[0].errors
    assert "cannot be replaced" in err.message
    assert err.file.endswith("main.hcl") and err.line == 1      # the refusal points at the block


def test_consumer_removed_in_the_same_plan_is_excused_and_goes_first(h):
    h.config(LAB % "true" + 'resource "bridge" "br0" {\n  mtu = 1500\n}\n')
    h.apply()
    h.world.consumers[("network", "lab")] = [Consumer("bridge", "br0", via=("bridge", "br0"))]
    plan, _, _, _ = h.plan(destroy=True)
    assert not plan.errors, [str(e) for e in plan.errors]
    h.world.calls.clear()
    _, report = h.apply(destroy=True)
    assert report.ok
    assert h.world.calls == [("delete", "bridge.br0"), ("delete", "network.lab")]
    assert h.state().instances == {}


# -- known after apply, failures --------------------------------------------------------

def test_known_after_apply_values_are_filled_in_during_apply(h):
    h.config(LAB % "true" + """
resource "bridge" "uplink" {
  interfaces = [network.lab.bridge.name]
  mtu        = 1500
}
""")
    plan, _, _, _ = h.plan()
    br = next(c for c in plan.resource_changes if c.address == "bridge.uplink")
    assert br.actions == CREATE and br.after["interfaces"] == [UNKNOWN]
    assert br.dependencies == ["network.lab"]
    _, report = h.apply()
    assert report.ok, report.failed
    assert h.world.calls == [("create", "network.lab"), ("create", "bridge.uplink")]
    assert h.world.objects[("bridge", "uplink")].attrs["interfaces"] == ["virbr-lab"]
    assert h.state().instances["bridge.uplink"].attrs["interfaces"] == ["virbr-lab"]
    assert not h.plan()[0].has_changes


def test_first_failure_stops_the_walk_and_the_state_keeps_what_succeeded(h):
    h.config("""
resource "network" "a" {
  mode = "isolated"
}
resource "network" "b" {
  mode = "isolated"
}
resource "bridge" "c" {
  mtu        = 1500
  depends_on = [network.b]
}
""")
    h.world.fail_on.add("network.b")
    plan, report = h.apply()
    assert not report.ok
    assert report.failed[:2] == ("network.b", "create") and "the fake refuses" in report.failed[2]
    assert report.done == [("network.a", "create")]
    assert ("bridge.c", "create") in report.not_started
    assert list(h.state().instances) == ["network.a"]
    assert ("create", "bridge.c") not in h.world.calls
    # the next plan picks up where it stopped
    h.world.fail_on.clear()
    plan, _, _, _ = h.plan()
    assert h.actions(plan) == {"network.a": NOOP, "network.b": CREATE, "bridge.c": CREATE}


def test_prevent_destroy_blocks_the_plan(h):
    h.config('resource "network" "lab" {\n  mode = "nat"\n  lifecycle {\n    prevent_destroy = true\n  }\n}\n')
    h.apply()
    (err,) = h.plan(destroy=True)[0].errors
    assert err.address == "network.lab" and err.line == 1 and "prevent_destroy" in err.message


def test_ignore_changes_hides_a_difference(h):
    h.config(LAB % "true")
    h.apply()
    h.config('resource "network" "lab" {\n  mode = "nat"\n  autostart = false\n'
             '  lifecycle {\n    ignore_changes = [autostart]\n  }\n}\n')
    plan, _, _, _ = h.plan()
    assert h.actions(plan) == {"network.lab": NOOP}


def test_target_keeps_dependencies(h):
    h.config(LAB % "true" + """
resource "bridge" "uplink" {
  interfaces = [network.lab.bridge.name]
}
resource "bridge" "other" {
  mtu = 1500
}
""")
    plan, _, _, _ = h.plan(targets=["bridge.uplink"])
    assert set(h.actions(plan)) == {"network.lab", "bridge.uplink"}


def test_consumer_that_appears_after_the_plan_stops_the_delete(h):
    h.config(LAB % "true")
    h.apply()
    plan, prepared, ps, be = h.plan(destroy=True)
    assert not plan.errors
    h.world.consumers[("network", "lab")] = [Consumer("domain", "web", "running")]
    report = Walk(plan, prepared, be, ps, lineage=be.read().lineage).run()
    assert report.failed[:2] == ("network.lab", "delete") and "in use by domain(s) web" in report.failed[2]
    assert ("network", "lab") in h.world.objects and "network.lab" in h.state().instances


def test_unexpected_provider_exception_still_stops_cleanly(h, monkeypatch):
    h.config(LAB % "true")
    fake = registry._classes["libvirt"]
    monkeypatch.setattr(fake, "create", lambda *a, **k: 1 / 0)
    plan, report = h.apply()
    assert report.failed[:2] == ("network.lab", "create")
    assert "ZeroDivisionError" in report.failed[2]
    assert h.state().instances == {}


def test_a_replace_that_would_lose_configuration_is_refused_unless_allowed(h):
    """issue 11: the provider names what a replace would lose; the plan refuses it,
    naming it, unless --allow-loss ADDRESS (then it is a warning)."""
    h.config(LAB % "true")
    h.apply()
    h.world.losses["lab"] = ["ip[0] attribute futureAttr='x'"]
    h.config('resource "network" "lab" {\n  mode = "route"\n}\n')
    plan, _, _, _ = h.plan()
    (err,) = plan.errors
    assert err.address == "network.lab" and err.line == 1
    assert "would lose live configuration kvmnet cannot keep: ip[0] attribute futureAttr='x'" in err.message
    assert "--allow-loss network.lab" in err.message
    plan, _, _, _ = h.plan(allow_loss=["network.lab"])
    assert plan.errors == [] and "allowed by --allow-loss" in plan.warnings[0].message
    # an update in place loses nothing: not asked
    h.config(LAB % "false")
    plan, _, _, _ = h.plan()
    assert plan.errors == []


THREE_NETWORKS = """
resource "network" "a" {
  mode = "isolated"
}
resource "network" "b" {
  mode = "isolated"
}
resource "network" "c" {
  mode = "isolated"
}
"""


def test_a_change_prepared_ahead_but_never_started_leaves_no_open_intent(h, monkeypatch):
    # one change at a time: b is prepared (its intent committed) while a runs; a fails,
    # so b never starts and its intent is closed; a's stays open for the next run
    identified = []
    monkeypatch.setattr(registry._classes["libvirt"], "identify",
                        lambda self, change: identified.append(change.address) or {})
    h.config(THREE_NETWORKS)
    h.world.fail_on.add("network.a")
    plan, report = h.apply()
    assert identified == ["network.a", "network.b"]          # b's intent was recorded
    assert report.failed[:2] == ("network.a", "create")
    assert {("network.b", "create"), ("network.c", "create")} <= set(report.not_started)
    assert h.world.calls == [("create", "network.a")]
    assert [i.address for i in open_state(h.state_path).open_intents()] == ["network.a"]


def test_each_provider_with_changes_is_prepared_once_before_the_walk(h, monkeypatch):
    fake = registry._classes["libvirt"]
    seen = []
    monkeypatch.setattr(fake, "prepare_apply",
                        lambda self: seen.append((self.instance, list(h.world.calls))))
    h.config(THREE_NETWORKS)
    h.apply()
    assert seen == [("libvirt", [])]          # once, before any change; iproute has none


def test_a_provider_that_cannot_prepare_fails_the_run_before_any_change(h, monkeypatch):
    fake = registry._classes["libvirt"]

    def refuse(self):
        raise ProviderError("cannot reach the daemon")
    monkeypatch.setattr(fake, "prepare_apply", refuse)
    h.config(THREE_NETWORKS)
    plan, report = h.apply()
    assert report.failed == ("network.a", "create", "provider libvirt: cannot reach the daemon")
    assert h.world.calls == [] and h.state().instances == {}
    assert open_state(h.state_path).open_intents() == []
    assert sorted(a for a, _ in report.not_started) == ["network.a", "network.b", "network.c"]
