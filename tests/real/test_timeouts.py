"""Timeouts while the state lock is held: a stuck external command is killed, a
SIGSTOPped libvirtd ends a plan or an apply with one ``Error:`` line and exit 1.

The stuck command is a real ``sleep`` run through the very runners that run ``nft``,
``iptables`` and ``ip`` (inside a real namespace); the stuck daemon is the session's
sandboxed libvirtd, stopped with SIGSTOP and always continued afterwards.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from kvmnet.providers import netns as ns
from kvmnet.sdk.provider import ProviderError
from tests.conftest import requires_root
from tests.e2e.helpers import file_fingerprint, run_kvmnet, write_config

pytestmark = [requires_root, pytest.mark.real]


def _pids_in(netns: str) -> list[str]:
    return subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()


def test_stuck_command_is_killed_after_its_timeout(ns_name):
    t = time.monotonic()
    with pytest.raises(ProviderError, match=r"^sleep 30: no answer within 0\.5 s \(timeout; the command was killed\)"):
        ns.run(ns_name, ["sleep", "30"], timeout=0.5)
    assert time.monotonic() - t < 5
    assert _pids_in(ns_name) == []          # nothing left running in the namespace


def test_command_within_its_timeout_runs_as_before(ns_name):
    assert ns.run(ns_name, ["ip", "-j", "link", "show", "lo"], timeout=5).stdout.startswith("[")


def test_stuck_ip_batch_read_is_killed(ns_name):
    from kvmnet.providers.links import _run_parallel
    t = time.monotonic()
    with pytest.raises(ProviderError, match=r"^sleep 30: no answer within 0\.5 s"):
        _run_parallel(ns_name, [(["sleep", "30"], ""), (["sleep", "31"], "")], timeout=0.5)
    assert time.monotonic() - t < 5
    assert _pids_in(ns_name) == []


def test_stuck_call_in_a_namespace_thread_gives_up(ns_name):
    t = time.monotonic()
    with pytest.raises(ProviderError, match=rf"^reading sysctls in network namespace {ns_name}: "
                                            r"no answer within 0\.3 s \(timeout\)"):
        ns.call_in(ns_name, lambda: time.sleep(3), timeout=0.3, what="reading sysctls")
    assert time.monotonic() - t < 2


def test_a_call_in_a_namespace_thread_passes_its_error_on(ns_name):
    def boom():
        raise ProviderError("boom")
    with pytest.raises(ProviderError, match="^boom$"):
        ns.call_in(ns_name, boom, timeout=5)


@pytest.fixture
def ns_name(ns):
    return ns


# -- a SIGSTOPped libvirtd ---------------------------------------------------------

@contextmanager
def stopped(pid: int):
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


NET = """
resource "network" "slow" {
  mode   = "nat"
  bridge = "kvslow0"
  ip {
    address = "10.77.0.1"
    prefix  = 24
  }
}
"""


def _cli(sb, tmp_path, *args, timeout_attr="  timeout = 2\n", env=None):
    cfg = tmp_path / "cfg"
    write_config(cfg, f'provider "libvirt" {{\n  uri = "{sb.uri}"\n{timeout_attr}}}\n' + NET)
    state = tmp_path / "kvmnet.state.db"
    t = time.monotonic()
    rc, out, err = run_kvmnet(cfg, "--no-color", *args, state=state, env=env, timeout=60)
    return rc, out, err, time.monotonic() - t, state


def test_plan_and_apply_against_a_stopped_libvirtd_fail_with_one_error(libvirt, tmp_path):
    sb = libvirt
    before = file_fingerprint(tmp_path / "kvmnet.state.db")
    with stopped(sb.pid):
        rc, out, err, took, state = _cli(sb, tmp_path, "plan")
        assert rc == 1, (out, err)
        assert took < 15
        assert "Traceback" not in err
        lines = [l for l in err.splitlines() if l.startswith("Error:")]
        assert len(lines) == 1, err
        assert f"libvirt at {sb.uri}" in lines[0] and "no answer within 2 s (connect timeout)" in lines[0]

        # the same through KVMNET_TIMEOUT, for apply
        rc, out, err, took, state = _cli(sb, tmp_path, "apply", "--auto-approve", timeout_attr="",
                                         env={"KVMNET_TIMEOUT": "1.5"})
        assert rc == 1, (out, err)
        assert took < 15
        assert "Traceback" not in err
        assert "no answer within 1.5 s (connect timeout)" in err
    # the failed runs changed nothing: no network was made and the state holds nothing
    assert "slow" not in sb.virsh("net-list", "--all", "--name").stdout.split()
    rc, out, err, _, _ = _cli(sb, tmp_path, "state", "list")
    assert rc == 0 and out.strip() == "", (out, err, before)


def test_a_call_on_an_open_connection_to_a_stopped_libvirtd_fails_by_keepalive(libvirt):
    from kvmnet.providers.libvirt import LibvirtProvider
    p = LibvirtProvider({"uri": libvirt.uri, "timeout": 2})
    try:
        assert p.read("network", []) == {}          # connected, keepalive on
        with stopped(libvirt.pid):
            t = time.monotonic()
            with pytest.raises(ProviderError, match=r"no answer within 2 s \(keepalive timeout"):
                p.read("network", [])
            assert time.monotonic() - t < 10
        assert p.read("network", []) == {}          # a later call connects again
    finally:
        p.close()


def bridge_then_net(ns: str) -> str:
    return (f'provider "iproute" {{\n  netns = "{ns}"\n}}\n'
            'resource "bridge" "first" {\n  provider = "iproute"\n  name     = "kvfirst0"\n}\n'
            + NET.replace('resource "network" "slow" {',
                          'resource "network" "slow" {\n  depends_on = [bridge.first]'))


def test_a_provider_timeout_mid_apply_keeps_the_steps_that_finished(libvirt, ns, tmp_path):
    """Two changes, the second waiting on the first: the bridge (iproute, in a
    namespace) is made, then the network's libvirt call meets a SIGSTOPped
    libvirtd. One Error line, exit 1; the state holds the bridge, the history entry
    ends ``failed``, and the next plan has only the network left to make."""
    sb = libvirt
    cfg = tmp_path / "cfg"
    write_config(cfg, f'provider "libvirt" {{\n  uri = "{sb.uri}"\n  timeout = 2\n}}\n'
                 + bridge_then_net(ns))
    state, planfile = tmp_path / "kvmnet.state.db", tmp_path / "two.plan"
    rc, out, err = run_kvmnet(cfg, "plan", "--out", str(planfile), state=state)
    assert rc == 0 and planfile.exists(), out + err
    with stopped(sb.pid):
        t = time.monotonic()
        rc, out, err = run_kvmnet(cfg, "apply", str(planfile), state=state, timeout=60)
        took = time.monotonic() - t
    assert rc == 1, out + err
    assert took < 20 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and "network.slow" in lines[0] and "no answer within 2 s" in lines[0], err
    links = subprocess.run(["ip", "netns", "exec", ns, "ip", "-br", "link", "show", "type", "bridge"],
                           capture_output=True, text=True, check=True).stdout
    assert "kvfirst0" in links
    rc, out, err = run_kvmnet(cfg, "state", "list", state=state)
    assert (rc, out.split()) == (0, ["bridge.first"]), err
    rc, out, err = run_kvmnet(cfg, "state", "history", "--json", state=state)
    assert rc == 0 and [h["status"] for h in json.loads(out)["history"]][-1] == "failed"
    rc, out, err = run_kvmnet(cfg, "plan", "--detailed-exitcode", state=state)
    assert rc == 2, out + err
    assert "network.slow will be created" in out and "bridge.first" not in out, out


# -- a SIGSTOPped netplan generate -------------------------------------------------

def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (through /proc/PID/task/TID/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except FileNotFoundError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except FileNotFoundError:
                continue
            out += kids
            todo += kids
    return out


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except FileNotFoundError:
        return []


def _stop_netplan_generate(parent: subprocess.Popen, deadline: float) -> int | None:
    """SIGSTOP the ``netplan generate`` that ``parent`` (kvmnet) starts, as soon as it
    appears; its pid, or None when kvmnet ended first."""
    while time.monotonic() < deadline and parent.poll() is None:
        for pid in _descendants(parent.pid):
            argv = _cmdline(pid)
            if "generate" in argv and any(a.endswith("netplan") for a in argv):
                os.kill(pid, signal.SIGSTOP)
                return pid
    return None


def test_a_stopped_netplan_generate_ends_the_apply_with_one_error(ns, tmp_path):
    """The netplan provider checks its new file with ``netplan generate`` (its own
    runner, not the namespace one); stopped, it is killed after the provider block's
    ``timeout``: one Error line, exit 1, no netplan file written, nothing in the state."""
    root = tmp_path / "root"
    cfg = tmp_path / "cfg"
    write_config(cfg, f'provider "netplan" {{\n  netns    = "{ns}"\n  root_dir = "{root}"\n'
                      '  apply    = false\n  timeout  = 3\n}\n'
                      'resource "bridge" "np" {\n  provider = "netplan"\n  name     = "br-np"\n}\n')
    state = tmp_path / "kvmnet.state.db"
    env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("KVMNET_STATE", None)
    t = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "kvmnet", "-C", str(cfg), "--state", str(state),
                          "apply", "--auto-approve"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        stopped_pid = _stop_netplan_generate(p, t + 30)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert stopped_pid is not None, "netplan generate was never seen running"
    assert p.returncode == 1, out + err
    assert time.monotonic() - t < 20 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, err
    assert "netplan generate: no answer within 3 s (timeout; the command was killed)" in lines[0], err
    assert not os.path.exists(f"/proc/{stopped_pid}") or \
        open(f"/proc/{stopped_pid}/stat").read().split()[2] == "Z", "the stopped netplan is killed"
    assert not (root / "etc" / "netplan").exists() or not any((root / "etc" / "netplan").iterdir())
    rc, out, err = run_kvmnet(cfg, "state", "list", state=state)
    assert (rc, out.strip()) == (0, ""), err
