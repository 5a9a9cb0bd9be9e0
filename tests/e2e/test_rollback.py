"""``kvmnet apply --rollback-on-failure`` end to end: the real CLI, real sysctls in a
throw-away network namespace, and a step that fails for real (the kernel rejects a
value), after earlier steps of the same apply already succeeded."""
from __future__ import annotations

import json

import pytest

from tests.conftest import requires_root
from tests.e2e.test_sysctl_cli import Env

pytestmark = [requires_root, pytest.mark.real]

FIN = "net.ipv4.tcp_fin_timeout"        # per-namespace keys: a fresh namespace has defaults
SOMAXCONN = "net.core.somaxconn"
PORTS = "net.ipv4.ip_local_port_range"

# the kernel refuses ports above 65535 with EINVAL: the plan accepts the key (it
# exists and is writable in the namespace), the write fails during apply
FAILING_SECOND = f"""
resource "sysctl_profile" "second" {{
  settings   = {{ "{PORTS}" = "70000 80000" }}
  depends_on = [sysctl_profile.first]
}}
"""


def first(fin: int, somaxconn: int = 1234) -> str:
    return f"""
resource "sysctl_profile" "first" {{
  settings = {{ "{FIN}" = {fin}, "{SOMAXCONN}" = {somaxconn} }}
}}
"""


@pytest.fixture
def env(ns, tmp_path):
    return Env(ns, tmp_path)


def history(env: Env) -> list[dict]:
    return json.loads(env.ok("state", "history", "--json"))["history"]


def test_a_host_wide_key_inside_a_netns_is_refused_at_plan_time(env):
    """The brief's first idea (net.core.rmem_max inside a namespace) never reaches
    apply: the sysctl provider's plan check already refuses it, changing nothing."""
    env.write(first(33) + f"""
resource "sysctl_profile" "second" {{
  settings   = {{ "net.core.rmem_max" = 4194304 }}
  depends_on = [sysctl_profile.first]
}}
""")
    fin = env.get(FIN)
    rc, out, err = env.k("apply", "--auto-approve", "--rollback-on-failure")
    assert rc == 1
    assert "net.core.rmem_max" in err and "not writable" in err
    assert env.get(FIN) == fin
    assert env.addresses() == []


def test_without_rollback_the_first_profile_stays_applied(env):
    defaults = env.get(FIN), env.get(SOMAXCONN)
    env.write(first(33) + FAILING_SECOND)
    rc, out, err = env.k("apply", "--auto-approve")
    assert rc == 1, out + err
    assert "sysctl_profile.second: create failed" in err
    assert "the kernel rejected the value" in err
    assert (env.get(FIN), env.get(SOMAXCONN)) == ("33", "1234") != defaults
    assert env.addresses() == ["sysctl_profile.first"]
    assert env.conf("first").exists()
    assert "Rolling back" not in out
    assert history(env)[-1]["status"] == "failed"


def test_rollback_undoes_a_create_and_the_state_is_empty_again(env):
    defaults = env.get(FIN), env.get(SOMAXCONN)
    env.write(first(33) + FAILING_SECOND)
    rc, out, err = env.k("apply", "--auto-approve", "--rollback-on-failure")
    assert rc == 1, out + err
    # the failure, then each rolled-back step
    assert f'Apply failed at sysctl_profile.second (create): cannot set sysctl "{PORTS}"' in out
    assert "Rolling back 1 change(s)" in out
    assert "sysctl_profile.first: rolled back create (destroyed)" in out
    assert "Rollback complete" in out
    assert (env.get(FIN), env.get(SOMAXCONN)) == defaults
    assert env.get(PORTS) != "70000 80000"
    assert not env.conf("first").exists() and not env.conf("second").exists()
    assert env.addresses() == []
    # and the next plan proposes the whole apply again
    rc, out, _ = env.k("plan", "--detailed-exitcode")
    assert rc == 2 and "2 to add" in out


def test_rollback_restores_an_update_and_recreates_a_delete(env):
    defaults = env.get(FIN), env.get(SOMAXCONN)
    env.write(first(33, 1234) + f"""
resource "sysctl_profile" "old" {{
  settings = {{ "net.ipv4.tcp_syn_retries" = 4 }}
}}
""")
    env.ok("apply", "--auto-approve")
    assert env.get("net.ipv4.tcp_syn_retries") == "4"
    serial = env.serial()
    # now: update "first", delete "old", and a new profile that fails
    env.write(first(44, 2345) + FAILING_SECOND)
    rc, out, err = env.k("apply", "--auto-approve", "--rollback-on-failure")
    assert rc == 1, out + err
    assert "Rolling back 2 change(s)" in out
    lines = [ln for ln in out.splitlines() if ": rolled back " in ln]
    assert lines == ["sysctl_profile.first: rolled back update (restored)",
                     "sysctl_profile.old: rolled back delete (re-created)"]
    assert (env.get(FIN), env.get(SOMAXCONN)) == ("33", "1234")
    assert env.get("net.ipv4.tcp_syn_retries") == "4"
    assert env.addresses() == ["sysctl_profile.first", "sysctl_profile.old"]
    assert env.conf("old").exists() and "net.ipv4.tcp_fin_timeout = 33" in env.conf("first").read_text()
    # the state's records are the pre-apply ones again, so a plan with the old
    # config is clean, and destroying restores the namespace's defaults
    env.write(first(33, 1234) + """
resource "sysctl_profile" "old" {
  settings = { "net.ipv4.tcp_syn_retries" = 4 }
}
""")
    rc, out, _ = env.k("plan", "--detailed-exitcode")
    assert rc == 0, out
    assert env.serial() > serial
    env.ok("destroy", "--auto-approve")
    assert (env.get(FIN), env.get(SOMAXCONN)) == defaults


def test_history_marks_the_rolled_back_apply(env):
    env.write(first(33) + FAILING_SECOND)
    env.k("apply", "--auto-approve", "--rollback-on-failure")
    last = history(env)[-1]
    assert "--rollback-on-failure" in last["command"]
    assert [(c["address"], c["action"]) for c in last["changes"]] == [
        ("sysctl_profile.first", "create"), ("sysctl_profile.second", "create")]
    assert last["status"] == "rolled back"
    assert last["summary"] == "rolled back 1 change(s)"
