"""Sensitive variables: masked in human and markdown plans, marked in the JSON
plan (before_sensitive / after_sensitive), never in clear in a saved plan file,
the history or ``state show``; an output that reads one must say sensitive."""
from __future__ import annotations

import json

import pytest

from kvmnet.commands.masking import mask_vars
from kvmnet.engine.config.evaluate import VariableInputs
from kvmnet.engine.diagnostics import DiagnosticError
from kvmnet.engine.plan.model import Plan
from kvmnet.engine.plan.redact import restore, saved_inputs
from kvmnet.engine.prepare import prepare
from kvmnet.engine.render.human import render_plan
from kvmnet.engine.render.markdown import render_markdown
from tests.e2e.helpers import run_kvmnet
from tests.unit.test_engine_plan import Harness, world  # noqa: F401  (fixture)

SECRET = "br-s3cr3t"

CFG = '''
variable "bridge" {
  type      = string
  default   = "%s"
  sensitive = true
}

locals {
  bridge = upper(var.bridge)
}

resource "network" "lab" {
  mode   = "nat"
  bridge = lower(local.bridge)
}

resource "network" "follows" {
  mode   = "nat"
  bridge = "x${network.lab.bridge}"
}

resource "network" "plain" {
  mode = "nat"
}

output "bridge" {
  value     = network.lab.bridge
  sensitive = true
}
''' % SECRET


@pytest.fixture
def h(tmp_path, world, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    return Harness(tmp_path, world)


def test_sensitivity_follows_locals_and_references(h):
    h.config(CFG)
    plan, prepared, *_ = h.plan()
    sens = {c.address: c.sensitive for c in plan.resource_changes}
    assert sens == {"network.lab": ["bridge"], "network.follows": ["bridge"], "network.plain": []}


def test_human_markdown_and_json_plans(h):
    h.config(CFG)
    plan, *_ = h.plan()
    text = render_plan(plan, color=False)
    assert SECRET not in text and "bridge = (sensitive value)" in text
    assert "+ bridge = (sensitive value)" in text          # the output
    assert SECRET not in render_markdown(plan)
    change = next(r for r in plan.to_json()["resource_changes"] if r["address"] == "network.lab")["change"]
    assert change["after_sensitive"] == {"bridge": True} and change["before_sensitive"] is False


def test_saved_plan_file_holds_no_secret_and_applies(h):
    h.config(CFG)
    plan, prepared, ps, be = h.plan()
    text = plan.dumps()
    assert SECRET not in text and SECRET.upper() not in text
    loaded = Plan.from_json(json.loads(text))
    restore(loaded, be.read(), prepared)
    lab = next(c for c in loaded.resource_changes if c.address == "network.lab")
    assert lab.sensitive == ["bridge"]
    from kvmnet.engine.walk import Walk
    assert lab.after["bridge"] == {"name": SECRET}     # evaluated again from the configuration
    report = Walk(loaded, prepared, be, ps, lineage=be.read().lineage).run()
    assert report.ok
    assert h.state().instances["network.lab"].attrs["bridge"]["name"] == SECRET


def test_saved_plan_needs_the_sensitive_var_again_and_checks_it(h):
    h.config(CFG)
    prepared = prepare(str(h.dir), VariableInputs(vars=[f"bridge={SECRET}"]), use_cache=False)
    plan, _, _, _ = h.plan()
    plan.variables = VariableInputs(vars=[f"bridge={SECRET}", "other=1"]).to_json()
    plan.sensitive_variables = sorted(prepared.evaluator.sensitivity.variables)
    saved = json.loads(plan.dumps())
    assert saved["inputs"]["vars"] == ["bridge", "other=1"] and SECRET not in json.dumps(saved)
    variables, why = saved_inputs(saved["inputs"], [])
    assert why and "give it again (kvmnet apply --var bridge=... PLANFILE)" in why
    variables, why = saved_inputs(saved["inputs"], ["bridge=other"])
    assert why == "--var bridge is not the value the plan was made with"
    variables, why = saved_inputs(saved["inputs"], [f"bridge={SECRET}"])
    assert why is None and variables == {"var_files": [], "vars": [f"bridge={SECRET}", "other=1"]}


def test_history_and_state_show_mask(h, tmp_path):
    h.config(CFG)
    from kvmnet.engine.operations import run_plan
    plan, prepared, ps, be = h.plan()
    outcome = run_plan(be, plan, prepared, ps, command="kvmnet apply")
    assert outcome.report.ok
    entry = be.history()[-1]
    assert SECRET not in json.dumps(entry.changes)
    code, out, err = run_kvmnet(h.dir, "--no-color", "state", "show", "network.lab", state=h.state_path)
    assert code == 0 and SECRET not in out and "bridge = (sensitive value)" in out, out + err
    code, out, err = run_kvmnet(h.dir, "state", "show", "--json", "network.lab", state=h.state_path)
    assert code == 0 and SECRET not in out
    h.config("")            # gone from the configuration: the state still knows
    for args in (["--no-color", "state", "show", "network.lab"], ["state", "show", "--json", "network.lab"]):
        code, out, err = run_kvmnet(h.dir, *args, state=h.state_path)
        assert code == 0 and SECRET not in out and "network.lab" in out, out + err


def test_an_output_reading_a_sensitive_value_must_say_so(h):
    h.config(CFG.replace('output "bridge" {\n  value     = network.lab.bridge\n  sensitive = true\n}',
                         'output "bridge" {\n  value = local.bridge\n}'))
    plan, *_ = h.plan()
    assert [str(e) for e in plan.errors] == [
        'cfg/main.hcl:27: output.bridge: output "bridge" refers to sensitive values; set sensitive '
        "= true in it to show that this is intended (it is then masked)"]


def test_command_line_masking():
    argv = ["apply", "--var", "bridge=s", "-var=bridge=s", "--var=other=1", "-var", "other=2"]
    assert mask_vars(argv, {"bridge"}) == [
        "apply", "--var", "bridge=(sensitive value)", "-var=bridge=(sensitive value)",
        "--var=other=1", "-var", "other=2"]


def test_sensitive_must_be_a_literal_bool_in_an_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "main.hcl").write_text('output "o" {\n value = 1\n sensitive = "yes"\n}\n')
    with pytest.raises(DiagnosticError) as e:
        prepare(str(tmp_path))
    assert 'output "o": sensitive must be true or false' in str(e.value)


def test_the_state_remembers_sensitive_attributes_for_what_leaves_the_configuration(h):
    """A resource deleted (or forgotten) once gone from the configuration has no
    configuration to say its values are sensitive: the state's record remembers."""
    h.config(CFG)
    h.apply()
    rec = h.state().instances["network.lab"]
    assert rec.private["kvmnet.sensitive"] == ["bridge"]
    assert "kvmnet.sensitive" not in h.state().instances["network.plain"].private
    h.config('variable "bridge" {\n  type = string\n  default = "x"\n  sensitive = true\n}\n'
             'removed {\n  from = network.follows\n}\n')
    plan, *_ = h.plan()
    sens = {c.address: (c.actions, c.sensitive) for c in plan.resource_changes}
    assert sens == {"network.lab": (["delete"], ["bridge"]), "network.follows": (["forget"], ["bridge"]),
                    "network.plain": (["delete"], [])}
    text = render_plan(plan, color=False)
    assert SECRET not in text and "bridge" in text and "(sensitive value)" in text
    assert SECRET not in render_markdown(plan)
    assert SECRET not in plan.dumps()
    doc = plan.to_json()          # Terraform's JSON document: values marked, as for any change
    lab = next(r for r in doc["resource_changes"] if r["address"] == "network.lab")["change"]
    assert lab["before_sensitive"] == {"bridge": True}


def test_providers_never_see_the_engines_sensitive_record(h, world, monkeypatch):  # noqa: F811
    from kvmnet.engine import registry
    fake = registry._classes["libvirt"]
    seen: list[tuple[str, dict]] = []
    update, delete = fake.update, fake.delete

    def spy_update(self, rtype, address, before, after, private, mark):
        seen.append((address, dict(private)))
        return update(self, rtype, address, before, after, private, mark)

    def spy_delete(self, rtype, address, before, private):
        seen.append((address, dict(private)))
        return delete(self, rtype, address, before, private)
    monkeypatch.setattr(fake, "update", spy_update)
    monkeypatch.setattr(fake, "delete", spy_delete)
    h.config(CFG)
    h.apply()
    h.config(CFG.replace('mode   = "nat"\n  bridge = lower', 'mode   = "nat"\n  autostart = false\n  bridge = lower'))
    plan, report = h.apply()
    assert report.ok and ("update", "network.lab") in world.calls
    assert h.state().instances["network.lab"].private["kvmnet.sensitive"] == ["bridge"]
    h.config("")
    h.apply()
    assert {a for a, _ in seen} >= {"network.lab", "network.follows"}
    assert all("kvmnet.sensitive" not in private for _, private in seen), seen
