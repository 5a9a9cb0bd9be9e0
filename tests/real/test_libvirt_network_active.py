"""A libvirt network's ``active`` is desired state, end to end through the CLI
against the sandboxed libvirtd: a network stopped behind kvmnet's back is drift
and is started again in place; ``active = false`` keeps it defined but stopped; a
network kvmnet defined but never started (a crash between the two) is adopted and
started."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import SandboxNetworkConfig

NET = """
resource "network" "act" {{
  mode   = "nat"
  bridge = "kvact0"
{extra}  ip {{
    address = "10.64.0.1"
    prefix  = 24
  }}
}}
"""


class Env(SandboxNetworkConfig):
    template = NET

    def ok(self, *args, rc=0):
        code, out, err = self.run(*args)
        assert code == rc, f"kvmnet {' '.join(args)} exited {code}\n{out}\n{err}"
        return out

    def running(self) -> bool:
        return "act" in self.sb.virsh("net-list", "--name").stdout.split()

    def defined(self) -> bool:
        return "act" in self.sb.virsh("net-list", "--all", "--name").stdout.split()

    def uuid(self) -> str:
        return self.sb.virsh("net-uuid", "act").stdout.strip()


@pytest.fixture
def env(libvirt, tmp_path):
    return Env(libvirt, tmp_path)


def test_stopped_behind_kvmnets_back_is_drift_and_started_in_place(env):
    env.write()
    env.ok("apply", "--auto-approve")
    assert env.running()
    uuid = env.uuid()
    env.sb.virsh("net-destroy", "act")
    out = env.ok("plan", "--refresh-only", "--detailed-exitcode", rc=2)
    assert "network.act" in out and "active" in out, out
    out = env.ok("plan", "--detailed-exitcode", rc=2)
    assert "0 to add, 1 to change, 0 to destroy" in out and "active" in out, out
    env.ok("apply", "--auto-approve")
    assert env.running() and env.uuid() == uuid        # started, not re-created
    assert "No changes" in env.ok("plan", "--refresh-only", "--detailed-exitcode")
    assert "No changes" in env.ok("plan", "--detailed-exitcode")


def test_active_false_keeps_it_defined_but_stopped_and_a_never_started_one_is_adopted(env):
    env.write("  active = false\n")
    env.ok("apply", "--auto-approve")
    assert env.defined() and not env.running()
    assert "No changes" in env.ok("plan", "--detailed-exitcode")
    uuid = env.uuid()
    # defined but never started, its state write lost (a crash): adopted and started
    env.ok("state", "rm", "network.act")
    env.write()                                         # active = true (the default)
    out = env.ok("plan", "--detailed-exitcode", rc=2)
    assert "adopted" in out and "active" in out and "1 to change" in out, out
    env.ok("apply", "--auto-approve")
    assert env.running() and env.uuid() == uuid
    env.write("  active = false\n")
    env.ok("apply", "--auto-approve")
    assert env.defined() and not env.running() and env.uuid() == uuid
    # started behind kvmnet's back: drift, stopped again
    env.sb.virsh("net-start", "act")
    env.ok("plan", "--refresh-only", "--detailed-exitcode", rc=2)
    env.ok("apply", "--auto-approve")
    assert not env.running()
    env.ok("destroy", "--auto-approve")
    assert not env.defined()
