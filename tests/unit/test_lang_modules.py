"""The language features inside modules (engine logic, fake provider): module
inputs validated, moved blocks and state mv for whole modules, replace_triggered_by
and data sources resolved inside their module."""
from __future__ import annotations

import textwrap

import pytest

from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.plan.data import read_data_sources
from kvmnet.engine.plan.model import NOOP, REPLACE, UPDATE
from kvmnet.engine.render.human import render_plan
from kvmnet.sdk.ownership import Mark
from tests.e2e.helpers import run_kvmnet
from tests.unit.test_engine_plan import Harness, world  # noqa: F401  (fixture)

MODULE = '''
variable "name" {
  type = string
  validation {
    condition     = length(var.name) <= 10
    error_message = "a network name of at most 10 characters."
  }
}

variable "autostart" {
  type     = bool
  default  = true
  nullable = false
}

resource "network" "up" {
  name      = "${var.name}-up"
  mode      = "nat"
  autostart = var.autostart
}

resource "network" "this" {
  name = var.name
  mode = "nat"
  lifecycle {
    replace_triggered_by = [network.up.autostart]
  }
}
'''


@pytest.fixture
def h(tmp_path, world, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    h = Harness(tmp_path, world)
    (tmp_path / "cfg" / "lab").mkdir()
    (tmp_path / "cfg" / "lab" / "main.hcl").write_text(textwrap.dedent(MODULE))
    return h


def _call(label="m", name="lab", extra=""):
    return f'module "{label}" {{\n  source = "./lab"\n  name = "{name}"\n{extra}}}\n'


def test_module_inputs_are_validated(h):
    h.config(_call(name="a-much-too-long-name"))
    errs = h.errors()
    assert len(errs) == 1 and errs[0].startswith("cfg/main.hcl:3:")
    assert 'invalid value for variable "name" of module "m": a network name of at most 10 ' \
           "characters. (validation at cfg/lab/main.hcl:5)" in errs[0]


def test_a_null_module_input_takes_the_default_when_not_nullable(h):
    h.config(_call(extra="  autostart = null\n"))
    plan, *_ = h.plan()
    up = next(c for c in plan.resource_changes if c.address == "module.m.network.up")
    assert up.after["autostart"] is True


def test_replace_triggered_by_inside_a_module(h):
    h.config(_call())
    assert h.apply()[1].ok
    h.config(_call(extra="  autostart = false\n"))
    plan, *_ = h.plan()
    acts = h.actions(plan)
    assert acts["module.m.network.up"] == UPDATE and acts["module.m.network.this"] == REPLACE


def test_moving_a_whole_module(h):
    h.config(_call())
    assert h.apply()[1].ok
    h.config(_call(label="n") + 'moved {\n  from = module.m\n  to   = module.n\n}\n')
    plan, *_ = h.plan()
    assert {c.address: c.moved_from for c in plan.resource_changes} == {
        "module.n.network.up": "module.m.network.up", "module.n.network.this": "module.m.network.this"}
    assert "# module.m.network.this has moved to module.n.network.this" in render_plan(plan, color=False)
    assert h.apply()[1].ok
    assert h.world.objects[("network", "lab")].mark == Mark(h.state().lineage, "module.n.network.this")
    plan, *_ = h.plan()
    assert all(a == NOOP for a in h.actions(plan).values())


def test_moving_a_module_call_into_for_each(h):
    h.config(_call())
    assert h.apply()[1].ok
    h.config('module "m" {\n  source = "./lab"\n  for_each = toset(["lab"])\n  name = each.key\n}\n'
             'moved {\n  from = module.m\n  to   = module.m["lab"]\n}\n')
    plan, *_ = h.plan()
    assert {c.address for c in plan.resource_changes if c.moved_from} == {
        'module.m["lab"].network.up', 'module.m["lab"].network.this'}


def test_state_mv_of_a_module(h):
    h.config(_call())
    assert h.apply()[1].ok
    code, out, err = run_kvmnet(h.dir, "state", "mv", "module.m", "module.k", state=h.state_path)
    assert code == 0, err
    assert set(h.state().instances) == {"module.k.network.up", "module.k.network.this"}
    code, out, err = run_kvmnet(h.dir, "state", "mv", "module.k", "network.x", state=h.state_path)
    assert code == 1 and "not both modules or both resources" in err


def test_data_sources_inside_a_module_are_read(h, tmp_path):
    (tmp_path / "cfg" / "lab" / "data.hcl").write_text(
        'data "network" "default" {\n  name = "default"\n}\n'
        'output "bridge" {\n  value = data.network.default.bridge\n}\n')
    h.config(_call())
    _plan, prepared, *_ = h.plan()

    class Reader:
        def read_data(self, dtype, args):
            return {"bridge": "virbr0"}

    class Providers:
        def get(self, name):
            assert name == "libvirt"
            return Reader()

    diags = Diagnostics()
    read_data_sources(prepared, Providers(), diags)
    assert not diags.errors
    (ev,) = prepared.evaluator.module_evaluators.values()
    assert ev.outputs()["bridge"] == "virbr0"


def test_sensitive_values_follow_into_and_out_of_modules(h, tmp_path):
    (tmp_path / "cfg" / "lab" / "out.hcl").write_text(
        'output "name" {\n  value = network.this.name\n}\n')
    h.config('variable "secret" {\n  default = "s3cr3t"\n  sensitive = true\n}\n'
             + _call(name="${var.secret}")
             + 'resource "network" "outside" {\n  name = "x-${module.m.name}"\n  mode = "nat"\n}\n')
    plan, *_ = h.plan()
    sens = {c.address: c.sensitive for c in plan.resource_changes}
    assert sens == {"module.m.network.up": ["name"], "module.m.network.this": ["name"],
                    "network.outside": ["name"]}
    assert "s3cr3t" not in render_plan(plan, color=False)


def test_a_sensitive_module_variable_marks_its_resources(h, tmp_path):
    text = (tmp_path / "cfg" / "lab" / "main.hcl").read_text()
    (tmp_path / "cfg" / "lab" / "main.hcl").write_text(
        text.replace('variable "name" {\n  type = string\n', 'variable "name" {\n  type = string\n  sensitive = true\n'))
    h.config(_call())
    plan, *_ = h.plan()
    assert {c.address: c.sensitive for c in plan.resource_changes} == {
        "module.m.network.up": ["name"], "module.m.network.this": ["name"]}


def test_json_configuration_lists_module_calls_with_their_own_configuration(h):
    h.config('resource "network" "root" {\n  name = "root"\n  mode = "nat"\n}\n'
             'module "m" {\n  source   = "./lab"\n  for_each = toset(["a", "b"])\n  name = each.key\n}\n')
    plan, *_ = h.plan()
    root = plan.to_json()["configuration"]["root_module"]
    assert [r["address"] for r in root["resources"]] == ["network.root"]
    call = root["module_calls"]["m"]
    assert call["source"] == "./lab"
    assert call["for_each_expression"] == {}
    assert call["expressions"]["name"] == {"references": ["each.key"]}
    assert sorted(r["address"] for r in call["module"]["resources"]) == ["network.this", "network.up"]
    assert set(call["module"]["variables"]) == {"name", "autostart"}
    planned = plan.to_json()["planned_values"]["root_module"]
    assert [m["address"] for m in planned["child_modules"]] == ['module.m["a"]', 'module.m["b"]']
