"""moved / removed / import blocks with the fake provider of the engine tests: what
the plan says and what the walk writes (the real providers' marks are tested in
tests/real/test_lang_real.py)."""
from __future__ import annotations

import pytest

from kvmnet.engine.plan.model import FORGET, NOOP, UPDATE, Plan
from kvmnet.engine.render.human import render_plan
from kvmnet.engine.render.markdown import render_markdown
from kvmnet.sdk.ownership import Mark
from tests.unit.test_engine_plan import Harness, world  # noqa: F401  (fixture)


@pytest.fixture
def h(tmp_path, world, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    return Harness(tmp_path, world)


OLD = '''
resource "network" "old" {
  name = "lab"
  mode = "nat"
}
'''

NEW = '''
resource "network" "new" {
  name = "lab"
  mode = "nat"%s
}

moved {
  from = network.old
  to   = network.new
}
'''


def test_moved_plans_no_replace_and_the_mark_follows(h):
    plan = h.plan_after(OLD, NEW % "")
    (c,) = plan.resource_changes
    assert (c.address, c.moved_from, c.actions, c.changed_paths) == ("network.new", "network.old", UPDATE, [])
    assert plan.counts() == (0, 0, 0) and plan.has_changes
    text = render_plan(plan, color=False)
    assert "# network.old has moved to network.new" in text and "0 to change" in text
    assert "moved" in render_markdown(plan)
    assert Plan.from_json(plan.to_json()).resource_changes[0].moved_from == "network.old"
    _, report = h.apply()
    assert report.ok
    assert set(h.state().instances) == {"network.new"}
    assert h.world.objects[("network", "lab")].mark == Mark(h.state().lineage, "network.new")
    assert ("create", "network.new") not in h.world.calls and ("delete", "network.old") not in h.world.calls
    plan, *_ = h.plan()
    assert h.actions(plan) == {"network.new": NOOP}     # the block may stay: nothing left to do


def test_moved_with_a_change_is_an_update_not_a_replace(h):
    plan = h.plan_after(OLD, NEW % "\n  autostart = false")
    (c,) = plan.resource_changes
    assert c.actions == UPDATE and c.changed_paths == ["autostart"]
    assert "(moved from network.old)" in render_plan(plan, color=False)


def test_moved_instances_keep_their_keys_and_chain(h):
    plan = h.plan_after('resource "network" "a" {\n count = 2\n name = "n${count.index}"\n mode = "nat"\n}\n',
                        'resource "network" "c" {\n count = 2\n name = "n${count.index}"\n mode = "nat"\n}\n'
                        'moved {\n from = network.a\n to = network.b\n}\n'
                        'moved {\n from = network.b\n to = network.c\n}\n')
    assert {c.address: c.moved_from for c in plan.resource_changes} == {
        "network.c[0]": "network.a[0]", "network.c[1]": "network.a[1]"}


def test_moved_onto_an_address_in_the_state_is_ignored_with_a_warning(h):
    plan = h.plan_after(OLD + 'resource "network" "new" {\n name = "other"\n mode = "nat"\n}\n',
                        'resource "network" "new" {\n name = "other"\n mode = "nat"\n}\n'
                        'moved {\n from = network.old\n to = network.new\n}\n')
    assert any("already in the state" in str(w) for w in plan.warnings)
    assert h.actions(plan)["network.old"] == ["delete"]


@pytest.mark.parametrize("block, message", [
    ('moved {\n from = network.old\n to = bridge.old\n}', "are of different types"),
    ('moved {\n from = network.x\n to = network.x\n}', "from and to are the same address"),
    ('moved {\n from = network.new\n to = network.other\n}', "network.new is still declared"),
    ('moved {\n from = network.old\n}', 'a moved block needs "to"'),
    ('moved {\n from = "nope"\n to = network.x\n}', "is not a resource address"),
    ('moved {\n from = var.x\n to = network.x\n}', "is not a resource address"),
    ('moved {\n from = network.a\n to = network.b\n extra = 1\n}', 'unknown attribute "extra"'),
    ('removed {\n from = network.new\n}', "network.new is still declared"),
    ('removed {\n from = network.gone\n lifecycle {\n destroy = true\n }\n}', "only forgets"),
    ('removed {\n}', 'a removed block needs "from"'),
    ('import {\n to = network.new\n}', 'an import block needs "id"'),
    ('import {\n to = network.new\n id = "a"\n}\nimport {\n to = network.new\n id = "b"\n}',
     "imported twice"),
    ('moved "x" {\n from = network.a\n to = network.b\n}', "needs 0 label"),
])
def test_malformed_blocks(h, block, message):
    h.config('resource "network" "new" {\n name = "lab"\n mode = "nat"\n}\n' + block + "\n")
    errs = h.errors()
    assert any(message in e for e in errs), errs
    assert all(e.startswith("cfg/main.hcl:") for e in errs), errs


def test_removed_forgets_without_destroying(h):
    plan = h.plan_after(OLD, 'removed {\n from = network.old\n lifecycle {\n destroy = false\n }\n}\n')
    (c,) = plan.resource_changes
    assert c.actions == FORGET
    text = render_plan(plan, color=False)
    assert "network.old will no longer be managed by kvmnet (removed block at cfg/main.hcl:1)" in text
    assert "0 to destroy, 1 to forget." in text
    _, report = h.apply()
    assert report.ok and report.forgotten == ["network.old"]
    assert h.state().instances == {}
    assert ("network", "lab") in h.world.objects
    assert not [call for call in h.world.calls if call[1] == "network.old" and call[0] != "create"]


IMPORT = '''
variable "lab" {
  default = "lab"
}

resource "network" "lab" {
  name = var.lab
  mode = "nat"%s
}

import {
  to = network.lab
  id = var.lab
}
'''


def test_import_block_adopts_without_touching_the_object(h):
    h.world.put("network", {"name": "lab", "mode": "nat", "uuid": "u-1", "bridge": "virbr7",
                            "active": True, "autostart": True})
    h.config(IMPORT % "")
    plan, *_ = h.plan()
    (c,) = plan.resource_changes
    assert c.actions == NOOP and c.import_id == "lab" and plan.has_changes
    text = render_plan(plan, color=False)
    assert "# network.lab will be imported (id lab)" in text
    assert "Plan: 1 to import, 0 to add, 0 to change, 0 to destroy." in text
    assert Plan.from_json(plan.to_json()).resource_changes[0].import_id == "lab"
    assert plan.to_json()["resource_changes"][0]["change"]["importing"] == {"id": "lab"}
    _, report = h.apply()
    assert report.ok and h.world.calls == []
    assert h.state().instances["network.lab"].id == "lab"
    plan, *_ = h.plan()
    assert not plan.has_changes


def test_import_block_then_update(h):
    h.world.put("network", {"name": "lab", "mode": "nat", "uuid": "u-1", "bridge": "virbr7",
                            "active": True, "autostart": True})
    h.config(IMPORT % "\n  autostart = false")
    plan, *_ = h.plan()
    (c,) = plan.resource_changes
    assert c.actions == UPDATE and c.import_id == "lab"
    assert "will be imported (id lab)\n  # and updated in-place" in render_plan(plan, color=False)


def test_import_of_a_missing_object_or_an_undeclared_address(h):
    h.config(IMPORT % "")
    plan, *_ = h.plan()
    assert [str(e) for e in plan.errors] == [
        "cfg/main.hcl:11: network.lab: import: no network with ID 'lab' exists"]
    h.config(IMPORT.replace("to = network.lab", "to = network.other") % "")
    plan, *_ = h.plan()
    assert "network.other is not declared in the configuration" in str(plan.errors[0])


def test_an_instance_moves_to_a_single_resource(h):
    plan = h.plan_after('resource "network" "a" {\n count = 2\n name = "n${count.index}"\n mode = "nat"\n}\n',
                        'resource "network" "a" {\n count = 1\n name = "n${count.index}"\n mode = "nat"\n}\n'
                        'resource "network" "one" {\n name = "n1"\n mode = "nat"\n}\n'
                        'moved {\n from = network.a[1]\n to = network.one\n}\n')
    assert {c.address: (c.moved_from, c.actions) for c in plan.resource_changes} == {
        "network.a[0]": (None, NOOP), "network.one": ("network.a[1]", UPDATE)}


def test_import_of_an_object_already_managed_elsewhere(h):
    plan = h.plan_after(OLD, 'resource "network" "again" {\n name = "lab"\n mode = "nat"\n}\n'
                             'import {\n to = network.again\n id = "lab"\n}\n')
    assert any("import: the network 'lab' is already managed as network.old" in str(e)
               for e in plan.errors), plan.errors


def test_removed_lifecycle_takes_only_destroy(h):
    h.config('removed {\n from = network.gone\n lifecycle {\n keep = true\n }\n}\n')
    errs = h.errors()
    assert errs == ['cfg/main.hcl:4: unknown attribute "keep" in removed.lifecycle']


def _mv(h, *args):
    from tests.e2e.helpers import run_kvmnet
    return run_kvmnet(h.dir, "state", "mv", *args, state=h.state_path)


def test_state_mv_moves_every_instance_of_a_resource(h):
    h.config('resource "network" "a" {\n count = 2\n name = "n${count.index}"\n mode = "nat"\n}\n'
             'resource "network" "taken" {\n name = "t"\n mode = "nat"\n}\n')
    assert h.apply()[1].ok
    code, out, err = _mv(h, "network.taken", "network.a[0]")
    assert code == 1 and err.strip() == ("Error: network.a[0] is already in the state; "
                                         "remove it first (kvmnet state rm)"), err
    code, out, err = _mv(h, "network.a", "network.b")
    assert code == 0, err
    assert out.splitlines()[:2] == ["Moved network.a[0] to network.b[0].", "Moved network.a[1] to network.b[1]."]
    assert set(h.state().instances) == {"network.b[0]", "network.b[1]", "network.taken"}
    assert h.state().instances["network.b[1]"].key == 1
    code, out, err = _mv(h, "network.taken", "network.b[0]")
    assert code == 1 and err.strip() == ("Error: network.b[0] is already in the state; remove it first "
                                         "(kvmnet state rm)"), err
    code, out, err = _mv(h, 'network.b[1]', 'network.c["x"]')
    assert code == 0 and h.state().instances['network.c["x"]'].key == "x"
