"""Every error path of the CLI: message, FILE:LINE, exit 1, and the state untouched.

No root needed: configs go through ``kvmnet validate`` and ``kvmnet plan
--refresh=false`` (which reads nothing live), saved plans are refused before any
provider starts, and lock holders are plain child processes. Each config case runs
``plan --refresh=false`` against a copy of a seeded state file whose bytes and mtime
must not change, and a few run ``validate`` too. The cases run concurrently in one
module fixture (each is a separate kvmnet process); each test asserts its own.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.helpers import (
    file_fingerprint, run_concurrently, run_kvmnet, selected_tests, write_config,
)


@dataclass
class Case:
    config: str
    expect: list[str]                  # substrings of stderr, FILE:LINE included
    args: tuple[str, ...] = ()         # global flags (--var ...)
    files: dict[str, str] = field(default_factory=dict)   # more files


NET_HEAD = """resource "network" "n" {
  mode = "nat"
  ip {
    address = "10.0.0.1"
    prefix  = 24
"""

CASES: dict[str, Case] = {
    "syntax_error": Case(
        'resource "sysctl_profile" "a" {\n  settings = { "net.core.somaxconn" = 1\n',
        ["main.hcl:3: syntax error"]),
    "unknown_block_type": Case(
        'resorce "sysctl_profile" "a" {\n  settings = {}\n}\n',
        ['main.hcl:1: unknown block type "resorce"']),
    "unknown_attribute": Case(
        'resource "bridge" "br0" {\n  colour = "red"\n}\n',
        ['main.hcl:2: bridge.br0: unknown attribute "colour"']),
    "unknown_attribute_in_nested_block": Case(
        NET_HEAD + '    dhcp_host {\n      hostname = "a"\n      ip = "10.0.0.5"\n    }\n  }\n}\n',
        ['main.hcl:7: network.n: ip[0].dhcp_host[0].hostname: unknown attribute "hostname" in block '
         'ip[0].dhcp_host[0]; did you mean "name"?']),
    "unknown_resource_type": Case(
        'resource "switch" "s" {\n  name = "x"\n}\n',
        ['main.hcl:1: switch.s: unknown resource type "switch"']),
    "wrong_type": Case(
        'resource "network" "n" {\n  mode = "nat"\n  mtu  = "big"\n}\n',
        ['main.hcl:3: network.n: mtu must be a whole number, or a mtu { ... } block, not the string "big"']),
    "missing_required": Case(
        'resource "network" "n" {\n  bridge = "virbr9"\n}\n',
        ['main.hcl:1: network.n: missing required attribute "mode"']),
    "bad_enum": Case(
        'resource "network" "n" {\n  mode = "nated"\n}\n',
        ['main.hcl:2: network.n: mode = "nated" is not allowed']),
    "invalid_ipv4": Case(
        'resource "network" "n" {\n  mode = "nat"\n  ip {\n    address = "10.300.1.1"\n'
        '    prefix  = 24\n  }\n}\nresource "bridge" "b" {\n  addresses = ["10.300.1.0/24"]\n}\n',
        ['main.hcl:4: network.n: ip[0].address = "10.300.1.1" is not a valid IPv4 address',
         'main.hcl:9: bridge.b: addresses[0] = "10.300.1.0/24" is not a valid IPv4 address/prefix']),
    "dhcp_range_outside_subnet": Case(
        NET_HEAD + '    dhcp_range {\n      start = "10.0.1.10"\n      end   = "10.0.1.20"\n    }\n  }\n}\n',
        ['main.hcl:7: network.n: ip[0].dhcp_range[0].start = "10.0.1.10" is outside the network\'s subnet 10.0.0.0/24']),
    "duplicate_static_ip_and_mac": Case(
        NET_HEAD
        + '    dhcp_host {\n      mac = "52:54:00:00:00:01"\n      ip  = "10.0.0.5"\n    }\n'
        + '    dhcp_host {\n      mac = "52:54:00:00:00:01"\n      ip  = "10.0.0.5"\n    }\n  }\n}\n',
        ['main.hcl:11: network.n: ip[0].dhcp_host[1].mac = "52:54:00:00:00:01" is already used by ip[0].dhcp_host[0]',
         'main.hcl:12: network.n: ip[0].dhcp_host[1].ip = "10.0.0.5" is already given to ip[0].dhcp_host[0]']),
    "multicast_mac": Case(
        NET_HEAD + '    dhcp_host {\n      mac = "01:00:5e:00:00:01"\n      ip  = "10.0.0.5"\n    }\n  }\n}\n',
        ['main.hcl:7: network.n: ip[0].dhcp_host[0].mac = "01:00:5e:00:00:01" is not a valid MAC address: it is a multicast address']),
    "vlan_id_0_and_4095": Case(
        'resource "vlan" "a" {\n  id   = 0\n  link = "eth0"\n}\n'
        'resource "vlan" "b" {\n  id   = 4095\n  link = "eth0"\n}\n',
        ["main.hcl:2: vlan.a: id = 0 is out of range: must be 1..4094",
         "main.hcl:6: vlan.b: id = 4095 is out of range: must be 1..4094"]),
    "interface_name_16_characters": Case(
        'resource "bridge" "b" {\n  name = "br-0123456789abc"\n}\n',
        ['main.hcl:2: bridge.b: name = "br-0123456789abc" is not a valid interface name: it is 16 characters long']),
    "overlapping_subnets": Case(
        'resource "network" "a" {\n  mode = "nat"\n  ip {\n    address = "10.0.0.1"\n    prefix  = 16\n  }\n}\n'
        'resource "network" "b" {\n  mode = "nat"\n  ip {\n    address = "10.0.5.1"\n    prefix  = 24\n  }\n}\n',
        ["main.hcl:11: network.b: ip[0].address: subnet 10.0.5.0/24 overlaps 10.0.0.0/16 of network.a"]),
    "cycle": Case(
        'resource "bridge" "a" {\n  mtu = bridge.b.mtu\n}\n'
        'resource "bridge" "b" {\n  mtu = bridge.c.mtu\n}\n'
        'resource "bridge" "c" {\n  depends_on = [bridge.a]\n}\n',
        ["main.hcl:1: bridge.a: dependency cycle: ", "bridge.a", "bridge.b", "bridge.c"]),
    "undefined_resource": Case(
        'resource "bridge" "a" {\n  mtu = bridge.nope.mtu\n}\n',
        ['main.hcl:2: bridge.a: reference to undeclared resource "bridge.nope"']),
    "undefined_resource_in_depends_on": Case(
        'resource "bridge" "a" {\n  mtu        = 1500\n  depends_on = [vlan.nope]\n}\n',
        ['main.hcl:3: bridge.a: depends_on refers to undeclared resource "vlan.nope"']),
    "undefined_variable": Case(
        'resource "bridge" "a" {\n  mtu = var.nope\n}\n',
        ['main.hcl:2: bridge.a: mtu: reference to undeclared input variable "nope"']),
    "unknown_function": Case(
        'resource "bridge" "a" {\n  mtu = frobnicate(1)\n}\n',
        ['main.hcl:2: bridge.a: mtu: unknown function "frobnicate"']),
    "unknown_function_in_a_local": Case(
        'locals {\n  m = frobnicate(1)\n}\nresource "bridge" "a" {\n  mtu = local.m\n}\n',
        ['main.hcl:5: bridge.a: mtu: in local.m (', 'main.hcl:2): unknown function "frobnicate"']),
    "variable_without_value": Case(
        'variable "m" {\n  type = number\n}\nresource "bridge" "a" {\n  mtu = var.m\n}\n',
        ['main.hcl:1: variable "m" has no default and no value was given']),
    "var_for_undeclared_variable": Case(
        'variable "m" {\n  default = 1500\n}\nresource "bridge" "a" {\n  mtu = var.m\n}\n',
        ['--var nope: no variable "nope" is declared'], args=("--var", "nope=1")),
    "var_of_wrong_type": Case(
        'variable "m" {\n  type = number\n}\nresource "bridge" "a" {\n  mtu = var.m\n}\n',
        ['main.hcl:1: invalid value for variable "m" (from --var m=...): a number is required, got "abc"'],
        args=("--var", "m=abc")),
    "vars_file_of_wrong_type": Case(
        'variable "m" {\n  type = number\n}\nresource "bridge" "a" {\n  mtu = var.m\n}\n',
        ['kvmnet.vars.hcl:2: invalid value for variable "m"'],
        files={"kvmnet.vars.hcl": '# values\nm = "abc"\n'}),
    "several_errors_in_one_run": Case(
        'resource "vlan" "a" {\n  id   = 0\n  link = "eth0"\n}\n',
        ["main.hcl:2: vlan.a: id = 0 is out of range",
         'other.hcl:2: bridge.b: name = "br-0123456789abc" is not a valid interface name',
         'other.hcl:5: sysctl_profile.s: settings["net/ipv4/ip_forward"]: sysctl key "net/ipv4/ip_forward" '
         'is not a dotted name'],
        files={"other.hcl": 'resource "bridge" "b" {\n  name = "br-0123456789abc"\n}\n'
                            'resource "sysctl_profile" "s" {\n  settings = { "net/ipv4/ip_forward" = 1 }\n}\n'}),
}

LOCATED = re.compile(r"[\w./-]+\.hcl:\d+: ")

# these also go through `kvmnet validate`
VALIDATE_TOO = ("syntax_error", "unknown_function", "several_errors_in_one_run")


def _seed_state(path: Path) -> None:
    """A real state file (lineage, serial 1, one instance) written by the state store."""
    from kvmnet.state import InstanceRecord, open_state
    be = open_state(path)
    with be.transaction() as w:
        w.put(InstanceRecord(address="sysctl_profile.seed", type="sysctl_profile", name="seed",
                             provider="sysctl", id="net.core.somaxconn",
                             attrs={"settings": {"net.core.somaxconn": "1024"}, "persist": True}))
    be.close()       # checkpoints the WAL into the file, so copying the file copies the state


@pytest.fixture(scope="module")
def seeded_state(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("seed") / "kvmnet.state.db"
    _seed_state(path)
    return path


def _run_case(name: str, case: Case, root: Path, seed: Path, validate: bool) -> dict:
    d = root / name
    cfg = d / "cfg"
    write_config(cfg, case.config)
    for fname, text in case.files.items():
        (cfg / fname).write_text(text)
    state = d / "kvmnet.state.db"
    shutil.copy2(seed, state)
    before = file_fingerprint(state)
    # global flags go before the command
    out = {"plan": run_kvmnet(cfg, *case.args, "plan", "--refresh=false", state=state),
           "state_before": before, "state_after": file_fingerprint(state)}
    if validate:
        fresh = d / "never.db"
        out["validate"] = run_kvmnet(cfg, *case.args, "validate", state=fresh)
        out["validate_state"] = file_fingerprint(fresh)
    return out


@pytest.fixture(scope="module")
def results(request, tmp_path_factory, seeded_state) -> dict:
    wanted = {n.split("[", 1)[1].rstrip("]") for n in selected_tests(request) if "[" in n}
    wanted |= {"cycle", "several_errors_in_one_run"}      # two more tests read these
    root = tmp_path_factory.mktemp("errors")
    found: dict = {}

    def job(name):
        def run():
            found[name] = _run_case(name, CASES[name], root, seeded_state, name in VALIDATE_TOO)
        return run

    errors = run_concurrently({n: job(n) for n in CASES if n in wanted})
    for n, e in errors.items():
        if e is not None:
            found[n] = e
    return found


def _check(rc_out_err, expect: list[str]) -> None:
    rc, out, err = rc_out_err
    assert rc == 1, f"exit {rc}\n{out}\n{err}"
    assert "Traceback" not in err, err
    for text in expect:
        assert text in err, f"{text!r} not in:\n{err}"
        if LOCATED.match(text):             # a located error is an Error: line
            assert any(ln.startswith("Error: ") for ln in err.splitlines() if text in ln), err
    assert all(ln.startswith(("Error: ", "Warning: ")) for ln in err.splitlines() if ln), err


@pytest.mark.parametrize("name", list(CASES))
def test_config_error(name, results):
    r = results[name]
    if isinstance(r, BaseException):
        raise r
    _check(r["plan"], CASES[name].expect)
    assert r["state_after"] == r["state_before"], "the state file was touched"
    if "validate" in r:
        _check(r["validate"], CASES[name].expect)
        assert r["validate_state"] is None, "validate created a state file"


def test_cycle_error_names_every_address_once(results):
    r = results["cycle"]
    if isinstance(r, BaseException):
        raise r
    line = next(l for l in r["plan"][2].splitlines() if "dependency cycle" in l)
    chain = line.split("dependency cycle: ", 1)[1].split(" -> ")
    assert chain[0] == chain[-1] and sorted(chain[:-1]) == ["bridge.a", "bridge.b", "bridge.c"]


def test_several_errors_each_on_its_own_line(results):
    r = results["several_errors_in_one_run"]
    if isinstance(r, BaseException):
        raise r
    lines = [l for l in r["plan"][2].splitlines() if l.strip()]
    assert len(lines) == 3, lines


# -- saved plans -----------------------------------------------------------------------

SIMPLE = 'resource "sysctl_profile" "s" {\n  settings = { "net.core.somaxconn" = 2048 }\n}\n'


@pytest.fixture(scope="module")
def saved_plan(tmp_path_factory, seeded_state) -> Path:
    """A directory with cfg/, kvmnet.state.db and saved.plan made from them."""
    d = tmp_path_factory.mktemp("saved")
    write_config(d / "cfg", SIMPLE)
    shutil.copy2(seeded_state, d / "kvmnet.state.db")
    rc, out, err = run_kvmnet(d / "cfg", "plan", "--refresh=false", "--out", d / "saved.plan",
                              state=d / "kvmnet.state.db")
    assert rc == 0, err
    return d


@pytest.fixture
def planned(tmp_path, saved_plan):
    """(config dir, state, saved plan): a private copy of ``saved_plan`` per test."""
    shutil.copytree(saved_plan, tmp_path / "p")
    d = tmp_path / "p"
    return d / "cfg", d / "kvmnet.state.db", d / "saved.plan"


def test_stale_saved_plan_after_config_edit(planned):
    cfg, state, planfile = planned
    write_config(cfg, SIMPLE.replace("2048", "4000"))
    before = file_fingerprint(state)
    rc, out, err = run_kvmnet(cfg, "apply", planfile, state=state)
    assert rc == 1
    assert f"saved plan {planfile} is stale: the configuration files have changed" in err
    assert file_fingerprint(state) == before


def test_stale_saved_plan_after_state_change(planned):
    cfg, state, planfile = planned
    from kvmnet.state import open_state
    be = open_state(state)
    with be.transaction() as w:          # another apply, say
        w.remove("sysctl_profile.seed")
    be.close()
    before = file_fingerprint(state)
    rc, out, err = run_kvmnet(cfg, "apply", planfile, state=state)
    assert rc == 1
    assert "is stale: the state has changed since the plan was made (serial 1 → 2)" in err
    assert file_fingerprint(state) == before


def test_saved_plan_for_another_state_is_refused(planned, tmp_path):
    cfg, _state, planfile = planned
    other = tmp_path / "other.db"
    _seed_state(other)
    before = file_fingerprint(other)
    rc, out, err = run_kvmnet(cfg, "apply", planfile, state=other)
    assert rc == 1 and "is stale: it was made for state lineage" in err
    assert file_fingerprint(other) == before


def test_unreadable_saved_plan(tmp_path):
    write_config(tmp_path / "cfg", SIMPLE)
    bad = tmp_path / "bad.plan"
    bad.write_text("{not json")
    rc, out, err = run_kvmnet(tmp_path / "cfg", "apply", bad, state=tmp_path / "s.db")
    assert rc == 1 and f"cannot read plan file {bad}" in err
    assert not (tmp_path / "s.db").exists()


# -- locks ------------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys
    from kvmnet.state import open_state
    lock = open_state(sys.argv[1]).lock(sys.argv[2], "kvmnet apply --holder-for-test")
    print(lock.id, flush=True)
    sys.stdin.read()          # hold until the test closes our stdin
    lock.release()
""")


class Holder:
    """A child process holding the state lock until :meth:`release` (or a kill)."""

    def __init__(self, state: Path, mode: str = "exclusive"):
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(state), mode],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.id = self.proc.stdout.readline().strip()
        assert self.id, "the holder did not take the lock"

    def release(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(10)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def locked_env(tmp_path, seeded_state):
    cfg = tmp_path / "cfg"
    write_config(cfg, SIMPLE)
    state = tmp_path / "kvmnet.state.db"
    shutil.copy2(seeded_state, state)
    holders: list[Holder] = []

    def hold(mode="exclusive"):
        h = Holder(state, mode)
        holders.append(h)
        return h
    yield cfg, state, hold
    for h in holders:
        if h.proc.poll() is None:
            h.kill()


def test_held_lock_names_its_holder(locked_env):
    cfg, state, hold = locked_env
    h = hold()
    before = file_fingerprint(state)
    for cmd in (("plan", "--refresh=false"), ("apply", "--auto-approve"), ("state", "rm", "sysctl_profile.seed")):
        rc, out, err = run_kvmnet(cfg, *cmd, state=state)
        assert rc == 1, (cmd, out, err)
        assert "state is locked by kvmnet apply --holder-for-test" in err, err
        assert f"pid {h.proc.pid} on " in err and f"lock ID {h.id}" in err
        assert "--lock-timeout" in err
    assert file_fingerprint(state) == before


def test_shared_lock_lets_plans_run_but_not_applies(locked_env):
    cfg, state, hold = locked_env
    hold("shared")
    rc, out, err = run_kvmnet(cfg, "plan", "--refresh=false", state=state)
    assert rc == 0, err
    rc, out, err = run_kvmnet(cfg, "apply", "--auto-approve", state=state)
    assert rc == 1 and "state is locked by" in err


def test_lock_timeout_waits_for_the_holder(locked_env):
    cfg, state, hold = locked_env
    h = hold()
    t0 = time.monotonic()
    waiting = subprocess.Popen(
        [sys.executable, "-m", "kvmnet", "-C", str(cfg), "--state", str(state),
         "--lock-timeout", "20", "plan", "--refresh=false"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    time.sleep(1.0)
    assert waiting.poll() is None, "the plan should still be waiting for the lock"
    h.release()
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, err
    assert "sysctl_profile.s will be created" in out
    assert time.monotonic() - t0 >= 1.0
    assert "stale" not in err, "a released lock is not stale"


def test_lock_timeout_gives_up(locked_env):
    cfg, state, hold = locked_env
    hold()
    t0 = time.monotonic()
    rc, out, err = run_kvmnet(cfg, "--lock-timeout", "0.5", "plan", "--refresh=false", state=state)
    assert rc == 1 and "gave up after" in err
    assert time.monotonic() - t0 >= 0.5


def test_force_unlock_of_a_dead_holders_record(locked_env):
    cfg, state, hold = locked_env
    live = hold()
    rc, out, err = run_kvmnet(cfg, "force-unlock", live.id, state=state)
    assert rc == 1 and "live process" in err and live.id in err
    live.kill()                  # the flock dies with it; its record stays
    records = Path(str(state) + ".lock.d")
    assert (records / f"{live.id}.json").exists()
    rc, out, err = run_kvmnet(cfg, "force-unlock", live.id, state=state)
    assert rc == 0, err
    assert f"Lock {live.id} released" in out
    assert not (records / f"{live.id}.json").exists()
    rc, out, err = run_kvmnet(cfg, "force-unlock", live.id, state=state)
    assert rc == 1 and f"no lock with ID {live.id}" in err


def test_lock_of_a_killed_holder_is_cleared_with_a_warning(locked_env):
    cfg, state, hold = locked_env
    h = hold()
    h.kill()
    rc, out, err = run_kvmnet(cfg, "plan", "--refresh=false", state=state)
    assert rc == 0, err
    assert "cleared a stale lock left by a process that died" in err and h.id in err


def test_json_plan_reports_config_errors_as_json(tmp_path):
    write_config(tmp_path / "cfg", CASES["several_errors_in_one_run"].config)
    rc, out, err = run_kvmnet(tmp_path / "cfg", "plan", "--json", "--refresh=false",
                              state=tmp_path / "s.db")
    assert rc == 1
    import json
    doc = json.loads(out)
    assert doc["format_version"] and doc["resource_changes"] == [] and doc["resource_drift"] == []
    (e,) = doc["errors"]
    assert (e["file"].endswith("main.hcl"), e["line"], e["address"]) == (True, 2, "vlan.a")
    assert "main.hcl:2: vlan.a: id = 0 is out of range" in err
    assert not (tmp_path / "s.db").exists()
