"""End to end through the real ``kvmnet`` CLI (subprocesses) against real sysctls.

Every test works inside a network namespace it creates (the ``ns`` fixture) with
``persist_dir`` and the state in its own tmp_path; the host's sysctls are never
written. Keys used are per-namespace ones, so a fresh namespace has the kernel's
defaults.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kvmnet.sandbox.netns import in_ns, netns
from tests.conftest import requires_root
from tests.e2e.helpers import (
    ConcurrentScenarios, file_fingerprint, run_kvmnet, write_config,
)

pytestmark = [requires_root, pytest.mark.real]

SOMAXCONN = "net.core.somaxconn"
IP_FORWARD = "net.ipv4.ip_forward"
FIN_TIMEOUT = "net.ipv4.tcp_fin_timeout"
ECHO_IGNORE = "net.ipv4.icmp_echo_ignore_all"
SYN_RETRIES = "net.ipv4.tcp_syn_retries"
SYNACK_RETRIES = "net.ipv4.tcp_synack_retries"

TUNING = f"""
resource "sysctl_profile" "tuning" {{
  settings = {{ "{IP_FORWARD}" = 1, "{SOMAXCONN}" = 1024 }}
}}
"""


class Env:
    """One config directory, state file and persist dir, bound to one namespace."""

    def __init__(self, ns: str, tmp_path: Path):
        self.ns = ns
        self.cfg = tmp_path / "cfg"
        self.persist = tmp_path / "sysctl.d"
        self.state = tmp_path / "kvmnet.state.db"
        self.tmp = tmp_path
        self.cfg.mkdir(parents=True, exist_ok=True)     # -C enters it, as Terraform's -chdir

    def write(self, body: str) -> Path:
        provider = (f'provider "sysctl" {{\n  netns       = "{self.ns}"\n'
                    f'  persist_dir = "{self.persist}"\n}}\n')
        return write_config(self.cfg, provider + body)

    def k(self, *args, **kw) -> tuple[int, str, str]:
        return run_kvmnet(self.cfg, *args, state=self.state, **kw)

    def ok(self, *args, **kw) -> str:
        rc, out, err = self.k(*args, **kw)
        assert rc == 0, f"kvmnet {' '.join(args)} exited {rc}\n{out}\n{err}"
        return out

    def get(self, key: str) -> str:
        return " ".join(in_ns(self.ns, "sysctl", "-n", key).stdout.split())

    def set(self, key: str, value) -> None:
        in_ns(self.ns, "sysctl", "-w", f"{key}={value}")

    def conf(self, name: str) -> Path:
        return self.persist / f"90-kvmnet-{name}.conf"

    def serial(self) -> int:
        from kvmnet.state import open_state
        return open_state(self.state).read().serial

    def addresses(self) -> list[str]:
        """The state's addresses, read directly (``state list`` has its own test)."""
        from kvmnet.state import open_state
        return sorted(open_state(self.state).read().instances)


# Each scenario gets its own namespace, state and persist dir. The scenarios run
# concurrently (every step is a kvmnet process) in one module fixture, and each
# test below reports its own scenario's outcome, traceback included.
def _in_fresh_env(fn, tmp_root: Path):
    def job():
        with netns("kve") as ns:
            d = tmp_root / fn.__name__
            d.mkdir()
            fn(Env(ns, d))
    return job


scenario = ConcurrentScenarios("sysctl-e2e", _in_fresh_env)


def _apply(env: Env, *extra) -> str:
    out = env.ok("apply", "--auto-approve", *extra)
    assert "Apply complete!" in out
    return out


# -- the whole life cycle ------------------------------------------------------------

@scenario
def plan_apply_drift_repair_destroy_restores_originals(env):
    env.write(TUNING)
    original = {k: env.get(k) for k in (SOMAXCONN, IP_FORWARD)}
    assert original[SOMAXCONN] != "1024" and original[IP_FORWARD] == "0"

    out = env.ok("plan")
    assert '# sysctl_profile.tuning will be created' in out
    assert '+ resource "sysctl_profile" "tuning"' in out
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in out
    assert not env.state.exists(), "plan must not create the state"
    assert env.get(SOMAXCONN) == original[SOMAXCONN]

    out = _apply(env)
    assert "sysctl_profile.tuning: Creation complete" in out
    assert "Resources: 1 added, 0 changed, 0 destroyed." in out
    assert env.get(SOMAXCONN) == "1024" and env.get(IP_FORWARD) == "1"
    conf = env.conf("tuning")
    assert f"{SOMAXCONN} = 1024" in conf.read_text()
    assert stat.S_IMODE(env.state.stat().st_mode) == 0o600

    rc, out, _ = env.k("plan", "--detailed-exitcode")
    assert rc == 0 and "No changes." in out

    # changed behind kvmnet's back: drift, and exit 2
    env.set(SOMAXCONN, 77)
    before = file_fingerprint(env.state)
    rc, out, err = env.k("plan", "--detailed-exitcode")
    assert rc == 2, err
    drift, _, actions = out.partition("kvmnet will perform the following actions")
    assert "Objects have changed outside of kvmnet" in drift
    assert "# sysctl_profile.tuning has changed" in drift
    assert SOMAXCONN in drift and '"1024" -> "77"' in drift
    assert "# sysctl_profile.tuning will be updated in-place" in actions
    assert '"77" -> "1024"' in actions
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in actions

    rc, out, err = env.k("plan", "--refresh-only", "--detailed-exitcode")
    assert rc == 2, err
    assert SOMAXCONN in out and '"1024" -> "77"' in out
    assert "will perform the following actions" not in out
    assert file_fingerprint(env.state) == before, "plans never write the state"
    assert env.get(SOMAXCONN) == "77"

    # apply repairs it
    out = _apply(env)
    assert "Resources: 0 added, 1 changed, 0 destroyed." in out
    assert env.get(SOMAXCONN) == "1024"
    rc, out, _ = env.k("plan", "--refresh-only", "--detailed-exitcode")
    assert rc == 0 and "No changes." in out, out

    # destroy puts back the values from before the first apply
    out = env.ok("destroy", "--auto-approve")
    assert "sysctl_profile.tuning will be destroyed" in out
    assert "Destroy complete! Resources: 1 destroyed." in out
    assert {k: env.get(k) for k in original} == original
    assert not conf.exists()
    assert env.addresses() == []


@scenario
def json_plan_shape_with_drift(env):
    env.write(TUNING)
    doc = json.loads(env.ok("plan", "--json"))
    assert doc["format_version"] and doc["errors"] == [] and doc["resource_drift"] == []
    (rc,) = doc["resource_changes"]
    assert {k: rc[k] for k in ("address", "type", "name", "actions", "before", "replace_paths")} == {
        "address": "sysctl_profile.tuning", "type": "sysctl_profile", "name": "tuning",
        "actions": ["create"], "before": None, "replace_paths": []}
    assert rc["after"]["settings"] == {IP_FORWARD: "1", SOMAXCONN: "1024"}

    _apply(env)
    env.set(SOMAXCONN, 77)
    rc_, out, err = env.k("plan", "--json", "--detailed-exitcode")
    assert rc_ == 2, err
    doc = json.loads(out)
    (drift,) = doc["resource_drift"]
    assert drift["address"] == "sysctl_profile.tuning" and drift["actions"] == ["update"]
    assert drift["before"]["settings"][SOMAXCONN] == "1024"
    assert drift["after"]["settings"][SOMAXCONN] == "77"
    (change,) = doc["resource_changes"]
    assert change["actions"] == ["update"] and change["replace_paths"] == []
    assert change["before"]["settings"][SOMAXCONN] == "77"
    assert change["after"]["settings"][SOMAXCONN] == "1024"

    # a no-change plan lists the instance as a no-op
    _apply(env)
    doc = json.loads(env.ok("plan", "--json"))
    assert [c["actions"] for c in doc["resource_changes"]] == [["no-op"]]


# -- saved plans ------------------------------------------------------------------------

@scenario
def saved_plan_show_and_apply_without_prompt(env):
    env.write(TUNING)
    planfile = env.tmp / "tuning.plan"
    out = env.ok("plan", "--out", str(planfile))
    assert "Saved the plan to" in out
    assert stat.S_IMODE(planfile.stat().st_mode) == 0o600

    shown = env.ok("show", str(planfile))
    assert "sysctl_profile.tuning will be created" in shown
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in shown
    doc = json.loads(env.ok("show", str(planfile), "--json"))
    assert [c["address"] for c in doc["resource_changes"]] == ["sysctl_profile.tuning"]

    # no --auto-approve and no terminal: a saved plan needs no prompt
    out = env.ok("apply", str(planfile))
    assert "Apply complete! Resources: 1 added" in out
    assert env.get(SOMAXCONN) == "1024"


@scenario
def saved_plan_refused_when_the_state_moved_on(env):
    env.write(TUNING)
    _apply(env)
    env.set(SOMAXCONN, 77)
    planfile = env.tmp / "p.plan"
    env.ok("plan", "--out", str(planfile))        # plans to repair the drift
    _apply(env)                                   # something else applied in between
    before = file_fingerprint(env.state)
    env.set(SOMAXCONN, 500)
    rc, out, err = env.k("apply", str(planfile))
    assert rc == 1
    assert "stale" in err and "serial 1 → 2" in err
    assert file_fingerprint(env.state) == before
    assert env.get(SOMAXCONN) == "500", "a refused plan changes nothing live"


@scenario
def saved_plan_refused_when_the_config_changed(env):
    env.write(TUNING)
    _apply(env)
    env.write(TUNING.replace("1024", "2048"))
    planfile = env.tmp / "p.plan"
    env.ok("plan", "--out", str(planfile))
    env.write(TUNING.replace("1024", "3000"))
    before = file_fingerprint(env.state)
    rc, out, err = env.k("apply", str(planfile))
    assert rc == 1
    assert "stale" in err and "configuration files have changed" in err
    assert file_fingerprint(env.state) == before
    assert env.get(SOMAXCONN) == "1024"


# -- plan options ---------------------------------------------------------------------------

TWO = f"""
resource "sysctl_profile" "a" {{
  settings = {{ "{FIN_TIMEOUT}" = 30 }}
}}
resource "sysctl_profile" "b" {{
  settings = {{ "{ECHO_IGNORE}" = 1 }}
}}
"""


@scenario
def target_destroy_plan_and_refresh_false(env):
    env.write(TWO)
    out = env.ok("plan", "--target", "sysctl_profile.a")
    assert "sysctl_profile.a will be created" in out and "sysctl_profile.b" not in out
    _apply(env, "--target", "sysctl_profile.a")
    assert env.addresses() == ["sysctl_profile.a"]
    assert env.get(FIN_TIMEOUT) == "30" and env.get(ECHO_IGNORE) == "0"

    _apply(env)
    assert env.addresses() == ["sysctl_profile.a", "sysctl_profile.b"]

    serial = env.serial()
    out = env.ok("plan", "--destroy")
    assert "sysctl_profile.a will be destroyed" in out and "sysctl_profile.b will be destroyed" in out
    assert "Plan: 0 to add, 0 to change, 2 to destroy." in out
    assert env.serial() == serial and env.get(FIN_TIMEOUT) == "30"

    # --refresh=false trusts the state: an outside change is not seen
    env.set(FIN_TIMEOUT, 45)
    rc, out, _ = env.k("plan", "--refresh=false", "--detailed-exitcode")
    assert rc == 0 and "No changes." in out
    rc, out, _ = env.k("plan", "--detailed-exitcode")
    assert rc == 2 and FIN_TIMEOUT in out

    # destroy --target removes only that one
    env.ok("destroy", "--auto-approve", "--target", "sysctl_profile.b")
    assert env.addresses() == ["sysctl_profile.a"]
    assert env.get(ECHO_IGNORE) == "0"


@scenario
def timings_go_to_stderr(env):
    env.write(TUNING)
    rc, out, err = env.k("plan", "--timings")
    assert rc == 0
    for phase in ("parse", "validate", "graph", "refresh sysctl", "diff"):
        assert f"timing {phase}" in err, err
    assert "timing" not in out
    rc, out, err = env.k("apply", "--auto-approve", "--timings")
    assert rc == 0 and "timing apply sysctl" in err


@scenario
def apply_without_terminal_refuses_and_changes_nothing(env):
    env.write(TUNING)
    rc, out, err = env.k("apply")
    assert rc == 1
    assert "no terminal" in err and "--auto-approve" in err
    assert not env.state.exists()
    assert env.get(SOMAXCONN) != "1024" and not env.conf("tuning").exists()
    # the same for destroy, once something is applied
    _apply(env)
    before = file_fingerprint(env.state)
    rc, out, err = env.k("destroy")
    assert rc == 1 and "no terminal" in err
    assert file_fingerprint(env.state) == before and env.get(SOMAXCONN) == "1024"


@scenario
def prevent_destroy_makes_destroy_fail(env):
    cfg = env.write(f"""
resource "sysctl_profile" "keep" {{
  settings = {{ "{FIN_TIMEOUT}" = 33 }}
  lifecycle {{
    prevent_destroy = true
  }}
}}
""")
    _apply(env)
    before = file_fingerprint(env.state)
    rc, out, err = env.k("destroy", "--auto-approve")
    assert rc == 1
    assert f"{cfg.relative_to(env.tmp)}:" in err or "main.hcl:" in err
    assert "sysctl_profile.keep" in err and "prevent_destroy" in err
    assert file_fingerprint(env.state) == before
    assert env.get(FIN_TIMEOUT) == "33" and env.conf("keep").exists()
    # removing it from the config is a destroy too
    env.write(f'resource "sysctl_profile" "other" {{\n  settings = {{ "{ECHO_IGNORE}" = 1 }}\n}}\n')
    rc, out, err = env.k("plan")
    assert rc == 0, "without the block, nothing protects it any more"


@scenario
def count_and_for_each_instances(env):
    env.write(f"""
locals {{
  pkeys = ["{FIN_TIMEOUT}", "{ECHO_IGNORE}"]
}}
resource "sysctl_profile" "p" {{
  count    = 2
  settings = {{ (local.pkeys[count.index]) = count.index == 0 ? 40 : 1 }}
}}
resource "sysctl_profile" "q" {{
  for_each = {{ a = "{SYN_RETRIES}", b = "{SYNACK_RETRIES}" }}
  settings = {{ (each.value) = 3 }}
}}
""")
    out = env.ok("plan")
    for a in ('sysctl_profile.p[0]', 'sysctl_profile.p[1]',
              'sysctl_profile.q["a"]', 'sysctl_profile.q["b"]'):
        assert f"# {a} will be created" in out
    assert "Plan: 4 to add" in out
    _apply(env)
    assert sorted(env.addresses()) == sorted(
        ['sysctl_profile.p[0]', 'sysctl_profile.p[1]', 'sysctl_profile.q["a"]', 'sysctl_profile.q["b"]'])
    assert (env.get(FIN_TIMEOUT), env.get(ECHO_IGNORE)) == ("40", "1")
    assert (env.get(SYN_RETRIES), env.get(SYNACK_RETRIES)) == ("3", "3")
    shown = env.ok("state", "show", 'sysctl_profile.q["b"]')
    assert SYNACK_RETRIES in shown and SYN_RETRIES + " " not in shown
    for name in ("p.0", "p.1", "q.s-a", "q.s-b"):
        assert env.conf(name).exists(), name
    env.ok("destroy", "--auto-approve")
    assert (env.get(FIN_TIMEOUT), env.get(ECHO_IGNORE), env.get(SYN_RETRIES)) == ("60", "0", "6")


@scenario
def values_compare_with_whitespace_normalised(env):
    """/proc shows a tab between the two ports; the config writes a space."""
    env.write('resource "sysctl_profile" "ports" {\n'
              '  settings = { "net.ipv4.ip_local_port_range" = "20000 30000" }\n}\n')
    _apply(env)
    assert env.get("net.ipv4.ip_local_port_range") == "20000 30000"
    rc, out, _ = env.k("plan", "--detailed-exitcode")
    assert rc == 0 and "No changes." in out, out


# -- state, import, graph -----------------------------------------------------------------

@scenario
def state_list_show_rm_and_import(env):
    env.write(TWO)
    _apply(env)
    assert env.ok("state", "list").split() == ["sysctl_profile.a", "sysctl_profile.b"]
    shown = env.ok("state", "show", "sysctl_profile.a")
    assert "# sysctl_profile.a" in shown and FIN_TIMEOUT in shown and '"30"' in shown
    assert f"id       = {FIN_TIMEOUT}" in shown
    doc = json.loads(env.ok("state", "show", "sysctl_profile.a", "--json"))
    assert doc["attrs"]["settings"] == {FIN_TIMEOUT: "30"} and doc["id"] == FIN_TIMEOUT
    rc, _, err = env.k("state", "show", "sysctl_profile.zzz")
    assert rc == 1 and "not in the state" in err

    out = env.ok("state", "rm", "sysctl_profile.b")
    assert "Removed sysctl_profile.b" in out
    assert env.ok("state", "list").split() == ["sysctl_profile.a"]
    assert env.get(ECHO_IGNORE) == "1", "state rm leaves the live object alone"

    # import a profile of two keys into a declared resource
    env.write(TWO + f"""
resource "sysctl_profile" "x" {{
  settings = {{ "{SYN_RETRIES}" = 4, "{SYNACK_RETRIES}" = 4 }}
}}
""")
    rc, _, err = env.k("import", "sysctl_profile.nope", SYN_RETRIES)
    assert rc == 1 and "not in the configuration" in err
    out = env.ok("import", "sysctl_profile.x", f"{SYNACK_RETRIES},{SYN_RETRIES}")
    assert "Import successful" in out
    doc = json.loads(env.ok("state", "show", "sysctl_profile.x", "--json"))
    assert doc["id"] == f"{SYN_RETRIES},{SYNACK_RETRIES}"
    assert doc["attrs"]["settings"] == {SYN_RETRIES: "6", SYNACK_RETRIES: "5"}
    rc, _, err = env.k("import", "sysctl_profile.x", SYN_RETRIES)
    assert rc == 1 and "already managed" in err
    out = env.ok("plan", "--target", "sysctl_profile.x")
    assert "sysctl_profile.x will be updated in-place" in out
    assert '"6" -> "4"' in out and '"5" -> "4"' in out


@scenario
def graph_dot_and_mermaid(env):
    env.write(TWO + """
resource "sysctl_profile" "c" {
  settings   = { "net.ipv4.tcp_keepalive_time" = 600 }
  depends_on = [sysctl_profile.a, sysctl_profile.b]
}
""")
    dot = env.ok("graph", "--format", "dot")
    assert dot.startswith("digraph")
    assert '"sysctl_profile.c" -> "sysctl_profile.a";' in dot
    assert '"sysctl_profile.c" -> "sysctl_profile.b";' in dot
    assert '"sysctl_profile.a" -> ' not in dot
    mermaid = env.ok("graph", "--format", "mermaid")
    assert mermaid.startswith("graph LR")
    assert '["sysctl_profile.c"]' in mermaid and mermaid.count("-->") == 2


scenario.install(globals())
