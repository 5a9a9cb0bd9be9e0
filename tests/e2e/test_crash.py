"""Crash safety end to end: ``kvmnet apply`` SIGKILLed at several points of a
six-resource apply (real sysctls in a throw-away network namespace, the real CLI in
subprocesses), then plan and apply again.

The kill points are exact through the walk's test hook (``engine/walk.py``
``crash_point``: ``KVMNET_TEST_KILL_AFTER_WRITES=N`` / ``KVMNET_TEST_KILL_BEFORE_WRITE=N``)
or a provider's kill point (``KVMNET_KILL_AT=NAME:N``, kvmnet.sdk.killpoints), and
one kill comes from the test itself, at whatever moment it sees the state's serial
move. Every provider's every kill point is in tests/faults/test_kill_points.py.
"""
from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from kvmnet.sandbox.netns import in_ns
from kvmnet.state import open_state
from tests.conftest import requires_root
from tests.e2e.test_sysctl_cli import Env

pytestmark = [requires_root, pytest.mark.real]

# six per-namespace keys, one per profile, applied one after the other (a chain of
# depends_on), so every profile is its own change and its own state write
KEYS = {
    "p1": ("net.ipv4.tcp_fin_timeout", 33),
    "p2": ("net.ipv4.tcp_syn_retries", 4),
    "p3": ("net.ipv4.tcp_synack_retries", 3),
    "p4": ("net.core.somaxconn", 1234),
    "p5": ("net.ipv4.tcp_keepalive_probes", 7),
    "p6": ("net.ipv4.tcp_keepalive_intvl", 31),
}
NAMES = list(KEYS)


def chain() -> str:
    out, prev = [], None
    for name, (key, value) in KEYS.items():
        dep = f"\n  depends_on = [sysctl_profile.{prev}]" if prev else ""
        out.append(f'resource "sysctl_profile" "{name}" {{\n'
                   f'  settings   = {{ "{key}" = {value} }}{dep}\n}}\n')
        prev = name
    return "\n".join(out)


@pytest.fixture
def env(ns, tmp_path):
    e = Env(ns, tmp_path)
    e.write(chain())
    return e


def integrity(env: Env) -> str:
    with sqlite3.connect(env.state) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def plan_json(env: Env) -> dict:
    rc, out, err = env.k("plan", "--json")
    assert rc == 0, err
    return json.loads(out)


def creates(plan: dict) -> list[str]:
    return sorted(c["address"] for c in plan["resource_changes"]
                  if "create" in c["change"]["actions"])


def live_all_set(env: Env) -> bool:
    keys = [k for k, _ in KEYS.values()]
    got = in_ns(env.ns, "sysctl", "-n", *keys).stdout.split()
    return got == [str(v) for _, v in KEYS.values()]


def converge(env: Env, left: int) -> None:
    """The apply makes exactly the ``left`` creates, and the plan after it has
    nothing to do."""
    out = env.ok("apply", "--auto-approve")
    assert f"Resources: {left} added, 0 changed, 0 destroyed." in out
    rc, out, err = env.k("plan", "--detailed-exitcode")
    assert rc == 0, out + err
    assert live_all_set(env)
    assert env.addresses() == [f"sysctl_profile.{n}" for n in NAMES]
    assert integrity(env) == "ok"


def killed_apply(env: Env, variable: str, n: int | str) -> None:
    rc, out, err = env.k("apply", "--auto-approve", env={variable: str(n)})
    assert rc == -signal.SIGKILL, out + err
    assert integrity(env) == "ok"


@pytest.mark.parametrize("n", [1, 3, 5])
def test_sigkill_after_n_state_writes_then_plan_shows_the_rest_and_apply_converges(env, n):
    killed_apply(env, "KVMNET_TEST_KILL_AFTER_WRITES", n)
    done = [f"sysctl_profile.{x}" for x in NAMES[:n]]
    assert env.addresses() == done
    assert env.serial() == n
    # the killed run's history entry is complete as far as it got (never finished)
    h = open_state(env.state).history(1)[0]
    assert h.status == "running" and h.finished is None
    # its lock record is left behind, but its holder is dead: reported, not blocking
    holders = open_state(env.state).locks()
    assert len(holders) == 1 and holders[0].alive is False
    rc, out, err = env.k("plan", "--detailed-exitcode")
    assert rc == 2, out + err
    assert "cleared a stale lock left by a process that died" in err
    assert f"pid {holders[0].pid}" in err
    assert f"Plan: {6 - n} to add, 0 to change, 0 to destroy." in out
    assert open_state(env.state).locks() == []
    converge(env, 6 - n)


def test_a_dead_holders_lock_can_be_force_unlocked_and_apply_is_not_blocked(env):
    killed_apply(env, "KVMNET_TEST_KILL_AFTER_WRITES", 2)
    (holder,) = open_state(env.state).locks()
    assert holder.alive is False
    out = env.ok("force-unlock", holder.id)
    assert f"Lock {holder.id} released" in out
    assert open_state(env.state).locks() == []
    # a second crash; this time the next run is an apply, which clears it itself
    env.set(KEYS["p3"][0], 1)          # (the value it has does not matter)
    killed_apply(env, "KVMNET_TEST_KILL_AFTER_WRITES", 1)
    rc, out, err = env.k("apply", "--auto-approve")
    assert rc == 0, out + err
    assert "cleared a stale lock left by a process that died" in err
    assert "Resources: 3 added, 0 changed, 0 destroyed." in out
    assert live_all_set(env)


def test_killed_between_a_change_and_its_state_write_the_object_is_adopted(env):
    """p3 is live (value set, persist file with this state's mark written) but not in
    the state: the next plan adopts it by its mark and creates only p4–p6; it never
    proposes a second, conflicting p3."""
    key, value = KEYS["p3"]
    default = env.get(key)
    killed_apply(env, "KVMNET_TEST_KILL_BEFORE_WRITE", 3)
    assert env.addresses() == ["sysctl_profile.p1", "sysctl_profile.p2"]
    assert env.get(key) == str(value)
    lineage = open_state(env.state).read().lineage
    assert env.conf("p3").read_text().startswith(f"# kvmnet:{lineage}:sysctl_profile.p3\n")
    plan = plan_json(env)
    assert not plan["errors"], plan["errors"]
    assert creates(plan) == ["sysctl_profile.p4", "sysctl_profile.p5", "sysctl_profile.p6"]
    (p3,) = [c for c in plan["resource_changes"] if c["address"] == "sysctl_profile.p3"]
    assert p3["change"]["actions"] == ["no-op"], p3
    assert "adopted" in (p3.get("reason") or json.dumps(p3))
    converge(env, 3)
    # the value from before kvmnet survived the crash (the persist file keeps it):
    # destroying the adopted profile puts it back
    env.ok("destroy", "--auto-approve", "--target", "sysctl_profile.p3")
    assert env.get(key) == default


def test_sigkill_sent_by_the_test_at_whatever_point_it_lands(env):
    """No hook: the test polls the state's serial and SIGKILLs the apply once it
    reaches a random 1–5. Wherever the kill lands, the state is intact and the plan
    accounts for every profile: in the state, adopted by its mark, or to create."""
    at = random.randint(1, 5)
    argv = [sys.executable, "-m", "kvmnet", "-C", str(env.cfg), "--state", str(env.state),
            "apply", "--auto-approve"]
    cenv = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(env.tmp / ".cache"))
    cenv.pop("KVMNET_STATE", None)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=cenv)
    try:
        end = time.monotonic() + 30
        while p.poll() is None and time.monotonic() < end:
            if os.path.exists(env.state) and open_state(env.state).read().serial >= at:
                break
            time.sleep(0.001)
        p.send_signal(signal.SIGKILL)
    finally:
        p.wait()
    assert integrity(env) == "ok"
    in_state = set(env.addresses())
    marked = {f"sysctl_profile.{n}" for n in NAMES if env.conf(n).exists()} - in_state
    plan = plan_json(env)
    assert not plan["errors"], plan["errors"]
    to_create = set(creates(plan))
    assert to_create.isdisjoint(in_state | marked)
    assert in_state | marked | to_create == {f"sysctl_profile.{n}" for n in NAMES}
    converge(env, len(to_create))


def test_killed_after_the_values_before_the_state_write_destroy_restores_the_original(env):
    """p3's persist file, which records the value from before kvmnet, is written
    before its value; killed after the value, before the state write, the next
    apply settles p3 and converges, and destroying p3 restores the value from
    before kvmnet, not ours."""
    key, value = KEYS["p3"]
    default = env.get(key)
    killed_apply(env, "KVMNET_KILL_AT", "sysctl.values-written:3")
    assert env.get(key) == str(value)
    assert f"# original: {key} = {default}" in env.conf("p3").read_text()
    plan = plan_json(env)
    assert not plan["errors"], plan["errors"]
    rc, out, err = env.k("apply", "--auto-approve")
    assert rc == 0, out + err
    assert not creates(plan_json(env))
    env.ok("destroy", "--auto-approve", "--target", "sysctl_profile.p3")
    assert env.get(key) == default
