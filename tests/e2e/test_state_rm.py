"""``kvmnet state rm`` forgets the record and touches nothing live; the object keeps
this state's ownership mark, so while its address is in the configuration the next
plan adopts it again (SPEC §5) — and ``state rm`` says so. Removing the resource
from the configuration as well stops kvmnet managing it.

Through the real CLI against real sysctls in a throw-away namespace (the
environment of test_sysctl_cli.py).
"""
from __future__ import annotations

import json

import pytest

from kvmnet.sandbox.netns import netns
from tests.conftest import requires_root
from tests.e2e.test_sysctl_cli import FIN_TIMEOUT, SOMAXCONN, TUNING, Env, _apply

pytestmark = [requires_root, pytest.mark.real]


@pytest.fixture
def env(tmp_path):
    with netns("kvr") as ns:
        yield Env(ns, tmp_path)


def test_state_rm_warns_that_the_marked_object_is_adopted_again(env):
    env.write(TUNING)
    _apply(env)
    rc, out, err = env.k("state", "rm", "sysctl_profile.tuning")
    assert rc == 0
    assert "Removed sysctl_profile.tuning" in out
    assert "Warning:" in err and "ownership mark" in err and "adopted again" in err
    assert "remove sysctl_profile.tuning from the configuration" in err
    assert env.addresses() == [] and env.get(SOMAXCONN) == "1024"

    # as warned: still in the config, so the next plan adopts it (no create)
    (change,) = json.loads(env.ok("plan", "--json"))["resource_changes"]
    assert change["actions"] == ["no-op"] and "adopted" in change["action_reason"]
    human = env.ok("plan")
    assert "Objects to adopt" in human and "sysctl_profile.tuning (id " in human
    _apply(env)
    assert env.addresses() == ["sysctl_profile.tuning"]


def test_state_rm_and_removed_from_the_config_is_forgotten(env):
    env.write(TUNING)
    _apply(env)
    env.ok("state", "rm", "sysctl_profile.tuning")
    env.write(f'resource "sysctl_profile" "other" {{\n  settings = {{ "{FIN_TIMEOUT}" = 35 }}\n}}\n')

    doc = json.loads(env.ok("plan", "--json"))
    assert [(c["address"], c["actions"]) for c in doc["resource_changes"]] == [
        ("sysctl_profile.other", ["create"])]
    out = _apply(env)
    assert "Resources: 1 added, 0 changed, 0 destroyed." in out
    assert env.addresses() == ["sysctl_profile.other"]
    env.ok("destroy", "--auto-approve")
    assert env.get(SOMAXCONN) == "1024", "a forgotten object is never touched again"
    assert env.conf("tuning").exists()


def test_state_rm_of_an_unknown_address_fails_without_a_warning(env):
    env.write(TUNING)
    rc, out, err = env.k("state", "rm", "sysctl_profile.nope")
    assert rc == 1 and "not in the state" in err and "Warning" not in err


def test_destroy_right_after_a_crash_removes_the_adopted_object_too(env):
    """A marked object missing from the state (as a crash between the change and the
    state write leaves it) is destroyed by ``kvmnet destroy`` too, and its original
    values come back (they travel in the persist file)."""
    before = env.get(SOMAXCONN)
    env.write(TUNING)
    _apply(env)
    env.ok("state", "rm", "sysctl_profile.tuning")
    doc = json.loads(env.ok("plan", "--destroy", "--json"))
    assert [(c["address"], c["actions"]) for c in doc["resource_changes"]] == [
        ("sysctl_profile.tuning", ["delete"])]
    env.ok("destroy", "--auto-approve")
    assert env.get(SOMAXCONN) == before
    assert not env.conf("tuning").exists()
