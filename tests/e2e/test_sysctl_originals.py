"""SPEC §3: "The value each key had before kvmnet first set it is kept in state;
destroying the profile restores it" — also for a profile that came in through
``kvmnet import`` and one adopted after a crash (its state record never written).

Through the real ``kvmnet`` CLI, each scenario in its own throw-away namespace with
its own state and persist dir (see test_sysctl_cli.py for the environment).
"""
from __future__ import annotations

import json

import pytest

from tests.conftest import requires_root
from tests.e2e.helpers import ConcurrentScenarios
from tests.e2e.test_sysctl_cli import IP_FORWARD, SOMAXCONN, TUNING, Env, _apply, _in_fresh_env

pytestmark = [requires_root, pytest.mark.real]

scenario = ConcurrentScenarios("sysctl-originals", _in_fresh_env)


def _private(env: Env, address: str) -> dict:
    return json.loads(env.ok("state", "show", address, "--json"))["private"]


def _crash_after_apply(env: Env) -> dict:
    """Apply TUNING, then lose its state record (as a crash before the state write
    would): the live values and the marked persist file stay. The true originals."""
    env.write(TUNING)
    original = {k: env.get(k) for k in (SOMAXCONN, IP_FORWARD)}
    assert original[SOMAXCONN] != "1024"
    _apply(env)
    env.ok("state", "rm", "sysctl_profile.tuning")
    assert env.addresses() == []
    assert env.get(SOMAXCONN) == "1024" and env.conf("tuning").exists()
    return original


@scenario
def destroy_after_import_restores_the_import_time_values(env):
    """The values live at import time are the originals: an apply changes them,
    destroy puts them back."""
    env.set(SOMAXCONN, 3000)
    env.write(f'resource "sysctl_profile" "x" {{\n  settings = {{ "{SOMAXCONN}" = 2048 }}\n}}\n')
    assert "Import successful" in env.ok("import", "sysctl_profile.x", SOMAXCONN)
    assert _private(env, "sysctl_profile.x") == {"original": {SOMAXCONN: "3000"}}

    out = _apply(env)
    assert "Resources: 0 added, 1 changed, 0 destroyed." in out
    assert env.get(SOMAXCONN) == "2048"
    assert f"# original: {SOMAXCONN} = 3000" in env.conf("x").read_text()

    env.ok("destroy", "--auto-approve")
    assert env.get(SOMAXCONN) == "3000"
    assert not env.conf("x").exists() and env.addresses() == []


@scenario
def adopted_after_a_crash_then_destroyed_restores_the_true_originals(env):
    """State record lost: the next plan adopts the profile (no create); the apply
    records it with the originals from the persist file; destroy restores them."""
    original = _crash_after_apply(env)

    doc = json.loads(env.ok("plan", "--json"))
    (change,) = doc["resource_changes"]
    assert change["actions"] == ["no-op"] and "adopted" in change["action_reason"]
    rc, out, err = env.k("plan", "--detailed-exitcode")
    assert rc == 0 and "will be created" not in out, out + err

    _apply(env)
    assert env.addresses() == ["sysctl_profile.tuning"]
    assert _private(env, "sysctl_profile.tuning") == {"original": original}

    env.ok("destroy", "--auto-approve")
    assert {k: env.get(k) for k in original} == original
    assert not env.conf("tuning").exists() and env.addresses() == []


@scenario
def adopted_and_updated_in_one_apply_keeps_the_originals(env):
    """Adopted by an apply that also changes a value (an update, not a create)."""
    original = _crash_after_apply(env)
    env.write(TUNING.replace("1024", "2048"))

    out = env.ok("plan")
    assert "sysctl_profile.tuning will be updated in-place" in out and "will be created" not in out
    out = _apply(env)
    assert "Resources: 0 added, 1 changed, 0 destroyed." in out
    assert env.get(SOMAXCONN) == "2048"
    assert _private(env, "sysctl_profile.tuning") == {"original": original}
    assert f"# original: {SOMAXCONN} = {original[SOMAXCONN]}" in env.conf("tuning").read_text()

    env.ok("destroy", "--auto-approve")
    assert {k: env.get(k) for k in original} == original


@scenario
def adopted_through_a_saved_plan_keeps_the_originals(env):
    """A saved plan carries the adopted object's originals to the apply."""
    original = _crash_after_apply(env)
    env.write(TUNING.replace("1024", "2000"))
    planfile = env.tmp / "adopt.plan"
    env.ok("plan", "--out", str(planfile))
    assert "Apply complete!" in env.ok("apply", str(planfile))
    assert _private(env, "sysctl_profile.tuning") == {"original": original}
    env.ok("destroy", "--auto-approve")
    assert {k: env.get(k) for k in original} == original


scenario.install(globals())
