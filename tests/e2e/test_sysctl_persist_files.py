"""Sysctl persist files end to end (the real CLI, real sysctls in a throw-away
namespace, persist_dir in tmp_path): originals recorded before the first value is
written (SIGKILL between the two), one file per address, files named by an older
kvmnet still read and moved to their new name, and a collision refused at plan."""
from __future__ import annotations

import signal

import pytest

from kvmnet.providers.sysctl import persist
from tests.conftest import requires_root
from tests.e2e.test_sysctl_cli import Env

pytestmark = [requires_root, pytest.mark.real]

SOMAXCONN = "net.core.somaxconn"
FIN = "net.ipv4.tcp_fin_timeout"


@pytest.fixture
def env(ns, tmp_path):
    return Env(ns, tmp_path)


def _profile(name="p", value=1111, persist_=True, key=SOMAXCONN, extra=""):
    return (f'resource "sysctl_profile" "{name}" {{\n{extra}'
            f'  settings = {{ "{key}" = {value} }}\n  persist  = {str(persist_).lower()}\n}}\n')


@pytest.mark.parametrize("persist_", [True, False])
def test_killed_after_the_originals_are_recorded_destroy_restores_them(env, persist_):
    original = env.get(SOMAXCONN)
    env.write(_profile(persist_=persist_))
    rc, out, err = env.k("apply", "--auto-approve", env={"KVMNET_KILL_AT": "sysctl.originals-recorded:1"})
    assert rc == -signal.SIGKILL, out + err
    # nothing written yet, nothing in the state; the record is on disk
    assert env.get(SOMAXCONN) == original
    assert env.addresses() == []
    text = env.conf("p").read_text()
    assert f"# original: {SOMAXCONN} = {original}" in text
    # the next apply adopts the profile by its mark and sets the value
    out = env.ok("plan")
    assert "adopted" in out, out
    env.ok("apply", "--auto-approve")
    assert env.get(SOMAXCONN) == "1111" and env.addresses() == ["sysctl_profile.p"]
    assert (f"{SOMAXCONN} = 1111" in env.conf("p").read_text()) is persist_
    env.ok("destroy", "--auto-approve")
    assert env.get(SOMAXCONN) == original
    assert not env.conf("p").exists()


def test_killed_after_the_values_of_an_update_the_leaving_keys_original_is_kept(env):
    original = {k: env.get(k) for k in (SOMAXCONN, FIN)}
    env.write('resource "sysctl_profile" "p" {\n'
              f'  settings = {{ "{SOMAXCONN}" = 1111, "{FIN}" = 33 }}\n}}\n')
    env.ok("apply", "--auto-approve")
    env.write(_profile(value=2222))          # FIN leaves the profile: its original goes back
    rc, out, err = env.k("apply", "--auto-approve", env={"KVMNET_KILL_AT": "sysctl.values-written:1"})
    assert rc == -signal.SIGKILL, out + err
    assert env.get(FIN) == original[FIN] and env.get(SOMAXCONN) == "2222"
    env.ok("apply", "--auto-approve")
    env.ok("destroy", "--auto-approve")
    assert {k: env.get(k) for k in original} == original


def test_count_instances_get_files_of_their_own(env):
    env.write('resource "sysctl_profile" "t" {\n  count    = 1\n'
              f'  settings = {{ "{SOMAXCONN}" = 1111 }}\n}}\n'
              'resource "sysctl_profile" "t-0" {\n'
              f'  settings = {{ "{FIN}" = 33 }}\n}}\n')
    env.ok("apply", "--auto-approve")
    names = sorted(p.name for p in env.persist.iterdir())
    assert names == ["90-kvmnet-t-0.conf", "90-kvmnet-t.0.conf"]
    assert f"{SOMAXCONN} = 1111" in (env.persist / "90-kvmnet-t.0.conf").read_text()
    assert f"{FIN} = 33" in (env.persist / "90-kvmnet-t-0.conf").read_text()
    assert "No changes" in env.ok("plan")


def test_a_file_named_by_an_older_kvmnet_is_read_and_moved(env):
    original = env.get(SOMAXCONN)
    env.write('resource "sysctl_profile" "t" {\n  count    = 1\n'
              f'  settings = {{ "{SOMAXCONN}" = 1111 }}\n}}\n')
    env.ok("apply", "--auto-approve")
    new = env.persist / "90-kvmnet-t.0.conf"
    legacy = env.persist / persist.legacy_file_name("sysctl_profile.t[0]")
    new.rename(legacy)                           # as an older kvmnet named it
    assert "No changes" in env.ok("plan")        # still read: persist = true, no drift
    env.write('resource "sysctl_profile" "t" {\n  count    = 1\n'
              f'  settings = {{ "{SOMAXCONN}" = 2222 }}\n}}\n')
    env.ok("apply", "--auto-approve")
    assert sorted(p.name for p in env.persist.iterdir()) == ["90-kvmnet-t.0.conf"]
    assert f"# original: {SOMAXCONN} = {original}" in new.read_text()
    env.ok("destroy", "--auto-approve")
    assert env.get(SOMAXCONN) == original and list(env.persist.iterdir()) == []


def test_a_file_holding_another_profile_is_a_plan_error_naming_both(env):
    env.persist.mkdir()
    other = env.persist / "90-kvmnet-t-0.conf"   # an older kvmnet's file of t[0]
    other.write_text("# kvmnet:0b6a0f2e-0000-4000-8000-000000000000:sysctl_profile.t[0]\n"
                     f"{FIN} = 33\n")
    env.write(_profile(name="t-0"))
    rc, out, err = env.k("plan")
    assert rc == 1
    assert (f"main.hcl:5: sysctl_profile.t-0: persist file {other} already holds the profile "
            "of sysctl_profile.t[0]") in err, err
    rc, out, err = env.k("apply", "--auto-approve")
    assert rc == 1 and env.addresses() == [] and other.read_text().endswith(f"{FIN} = 33\n")


MODULE = ('variable "key" {\n  type = string\n}\n'
          'resource "sysctl_profile" "t" {\n  settings = { (var.key) = 1111 }\n}\n')


def test_profiles_in_modules_get_files_of_their_own_and_destroy_restores(env):
    """A profile in a module is named with its module path (it once stopped the
    plan with a traceback); each instance keeps its own originals."""
    original = {k: env.get(k) for k in (SOMAXCONN, FIN)}
    (env.cfg / "mod").mkdir(parents=True)
    (env.cfg / "mod" / "main.hcl").write_text(MODULE)
    env.write(f'module "a" {{\n  source = "./mod"\n  key = "{SOMAXCONN}"\n}}\n'
              f'module "b" {{\n  source = "./mod"\n  key = "{FIN}"\n}}\n')
    env.ok("apply", "--auto-approve")
    assert sorted(p.name for p in env.persist.iterdir()) == ["90-kvmnet-a+t.conf", "90-kvmnet-b+t.conf"]
    assert env.get(SOMAXCONN) == env.get(FIN) == "1111"
    assert "No changes" in env.ok("plan")
    env.ok("destroy", "--auto-approve")
    assert {k: env.get(k) for k in original} == original and list(env.persist.iterdir()) == []


def test_two_profiles_setting_one_key_are_refused_naming_both(env):
    """Module instances too: each profile after the first of a key is a validation
    error (FILE:LINE: ADDRESS: settings["KEY"]), and nothing is applied."""
    original = env.get(SOMAXCONN)
    (env.cfg / "mod").mkdir(parents=True)
    (env.cfg / "mod" / "main.hcl").write_text(MODULE)
    env.write(f'module "a" {{\n  source = "./mod"\n  key = "{SOMAXCONN}"\n}}\n'
              f'module "b" {{\n  source = "./mod"\n  key = "{SOMAXCONN}"\n}}\n' + _profile(value=2222))
    for args in (("validate",), ("apply", "--auto-approve")):
        rc, out, err = env.k(*args)
        assert rc == 1, out + err
        errors = [ln for ln in err.splitlines() if ln.startswith("Error:")]
        assert len(errors) == 2, err
        for m in ("a", "b"):
            assert (f'mod/main.hcl:5: module.{m}.sysctl_profile.t: settings["{SOMAXCONN}"]: sysctl '
                    f'"{SOMAXCONN}" is also set by sysctl_profile.p; two profiles cannot set one key') in err, err
    assert env.get(SOMAXCONN) == original and env.addresses() == []
