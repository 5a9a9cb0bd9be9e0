"""lifecycle precondition / postcondition and replace_triggered_by, with the fake
provider of the engine tests (engine logic only; the real providers are not needed
to decide what a check or a trigger does)."""
from __future__ import annotations

import pytest

from kvmnet.engine.plan.model import CREATE, NOOP, REPLACE, UPDATE
from tests.unit.test_engine_plan import Harness, world  # noqa: F401  (fixture)


@pytest.fixture
def h(tmp_path, world, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    return Harness(tmp_path, world)


PRE = """
variable "mode" {
  default = "%s"
}

resource "network" "lab" {
  mode = var.mode
  lifecycle {
    precondition {
      condition     = var.mode == "nat" || var.mode == "route"
      error_message = "lab must be routed or NATed, not ${var.mode}."
    }
  }
}
"""


def test_precondition_holds(h):
    h.config(PRE % "nat")
    plan, *_ = h.plan()
    assert h.actions(plan) == {"network.lab": CREATE}


def test_precondition_fails_at_plan_with_file_line_and_message(h):
    h.config(PRE % "isolated")
    errs = h.errors()
    assert errs == ["cfg/main.hcl:10: network.lab: precondition failed: "
                    "lab must be routed or NATed, not isolated."]


def test_precondition_cannot_use_self(h):
    h.config(PRE.replace("var.mode ==", "self.mode ==", 1) % "nat")
    errs = h.errors()
    assert len(errs) == 1 and "a precondition cannot refer to self" in errs[0]


@pytest.mark.parametrize("block, message", [
    ("precondition {\n condition = true\n }", 'needs "error_message"'),
    ('postcondition {\n error_message = "x"\n }', 'needs "condition"'),
    ("check {\n }", 'unexpected block "check" in lifecycle'),
])
def test_malformed_condition_blocks(h, block, message):
    h.config('resource "network" "lab" {\n mode = "nat"\n lifecycle {\n' + block
             + "\n }\n}\n")
    errs = h.errors()
    assert any(message in e for e in errs) and all(e.startswith("cfg/main.hcl:") for e in errs), errs


POST = """
resource "network" "lab" {
  mode = "nat"
  lifecycle {
    postcondition {
      condition     = self.bridge.name == "%s"
      error_message = "bridge is ${self.bridge.name}"
    }
  }
}

resource "network" "after" {
  mode   = "nat"
  bridge = "br-${network.lab.name}"
}
"""


def test_postcondition_holds_after_apply(h):
    h.config(POST % "virbr-lab")
    _, report = h.apply()
    assert report.ok


def test_postcondition_failure_stops_the_walk_and_keeps_the_object(h):
    h.config(POST % "virbr9")
    _, report = h.apply()
    assert report.failed == ("network.lab", "postcondition",
                             "cfg/main.hcl:6: postcondition failed: bridge is virbr-lab")
    assert ("create", "network.after") not in h.world.calls
    assert "network.lab" in h.state().instances and "network.after" not in h.state().instances


TRIGGER = """
resource "network" "up" {
  mode      = "nat"
  autostart = %s
}

resource "network" "down" {
  mode = "nat"
  lifecycle {
    replace_triggered_by = [%s]
  }
}
"""


@pytest.mark.parametrize("ref, replaced", [
    ("network.up", True),
    ("network.up.autostart", True),
    ("network.up.mode", False),
])
def test_replace_triggered_by(h, ref, replaced):
    plan = h.plan_after(TRIGGER % ("true", ref), TRIGGER % ("false", ref))
    acts = h.actions(plan)
    assert acts["network.up"] == UPDATE
    assert acts["network.down"] == (REPLACE if replaced else NOOP)
    if replaced:
        down = next(c for c in plan.resource_changes if c.address == "network.down")
        assert down.reason == f"replace triggered by {ref}"


def test_replace_triggered_by_must_name_resources(h):
    h.config(TRIGGER % ("true", "var.x"))
    errs = h.errors()
    assert len(errs) == 1 and "is not a resource reference" in errs[0]
    assert errs[0].startswith("cfg/main.hcl:10: network.down:")


def test_replace_triggered_by_must_be_a_list(h):
    h.config(TRIGGER.replace("[%s]", "%s") % ("true", "network.up"))
    errs = h.errors()
    assert errs == ["cfg/main.hcl:10: network.down: lifecycle.replace_triggered_by: must be a list "
                    "of resource references"]


def test_a_postcondition_known_at_plan_time_is_checked_then(h):
    h.config(POST.replace('mode = "nat"\n  lifecycle',
                          'mode   = "nat"\n  bridge {\n    name = "virbr9"\n  }\n  lifecycle', 1)
             % "virbr8")
    plan, *_ = h.plan()
    assert [str(e) for e in plan.errors] == [
        "cfg/main.hcl:9: network.lab: postcondition failed: bridge is virbr9"]
