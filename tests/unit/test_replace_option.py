"""``--replace ADDR`` (Terraform's ``-replace=ADDR``): the named instance is planned as
a replace though nothing in it changed; an address that names no single instance of
the configuration is an error (engine logic with the fake provider, and the CLI's
error path)."""
from __future__ import annotations

import pytest

from kvmnet.engine.plan.model import NOOP, REPLACE
from kvmnet.engine.render.human import render_plan
from tests.e2e.helpers import run_kvmnet, write_config
from tests.unit.test_engine_plan import Harness, world  # noqa: F401  (fixture)

CFG = '''
resource "network" "lab" {
  mode = "nat"
}

resource "network" "t" {
  count = 2
  name  = "t${count.index}"
  mode  = "nat"
}
'''


@pytest.fixture
def h(tmp_path, world):  # noqa: F811
    h = Harness(tmp_path, world)
    h.config(CFG)
    h.apply()
    return h


def test_replace_plans_a_replace_of_an_unchanged_instance_and_applies_it(h):
    plan, *_ = h.plan(replace=["network.lab", "network.t[1]"])
    assert not plan.errors
    assert h.actions(plan) == {"network.lab": REPLACE, "network.t[0]": NOOP, "network.t[1]": REPLACE}
    lab = next(c for c in plan.resource_changes if c.address == "network.lab")
    assert lab.replace_paths == ["--replace"] and lab.reason == "replace requested with --replace"
    assert "replace requested with --replace" in render_plan(plan, color=False)
    h.world.calls.clear()
    _, report = h.apply(replace=["network.lab"])
    assert report.ok and h.world.calls == [("delete", "network.lab"), ("create", "network.lab")]
    plan, *_ = h.plan()
    assert not plan.has_changes


@pytest.mark.parametrize("address, message", [
    ("network.nope", '--replace network.nope: no such resource instance in the configuration'),
    ("network.lub", '(did you mean "network.lab"?)'),
    ("network.t", "--replace network.t: the resource has several instances; name one, e.g. network.t[0]"),
    ("module.m", "--replace module.m: a module cannot be replaced"),
    ("network.t[", "--replace network.t[: "),
])
def test_an_address_naming_no_instance_is_an_error(h, address, message):
    plan, *_ = h.plan(replace=[address])
    assert any(message in str(e) for e in plan.errors), [str(e) for e in plan.errors]


@pytest.mark.parametrize("spelling", [["--replace", "network.nope"], ["-replace=network.nope"]])
def test_cli_refuses_an_unknown_replace_address_in_both_spellings(tmp_path, spelling):
    cfg = tmp_path / "cfg"
    write_config(cfg, 'output "o" {\n  value = 1\n}\n')
    for command in (["plan"], ["apply", "--auto-approve"]):
        code, out, err = run_kvmnet(cfg, *command, *spelling, state=tmp_path / "s.db")
        assert code == 1 and err.strip() == (
            "Error: --replace network.nope: no such resource instance in the configuration"), out + err
    code, out, err = run_kvmnet(cfg, "apply", "--replace", "network.x", "saved.plan", state=tmp_path / "s.db")
    assert code == 1 and "--replace cannot be combined with a saved plan" in err
