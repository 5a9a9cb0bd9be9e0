"""The libvirt network probe of ``kvmnet apply --probe`` against the sandboxed
libvirtd: a network kvmnet keeps active passes while it is active with its dnsmasq
running; one whose dnsmasq died before the change is not counted; a network the
change stops on purpose (``active = false``) is no longer probed."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.e2e.helpers import SandboxNetworkConfig

pytestmark = [pytest.mark.real, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

NET = """
resource "network" "prb" {{
  mode   = "nat"
  bridge = "kvprb0"
{extra}  ip {{
    address = "10.66.0.1"
    prefix  = 24
  }}
}}
"""


class Env(SandboxNetworkConfig):
    template = NET

    def dnsmasq_pids(self) -> list[int]:
        return [int(pid) for pid in self.sb.netns_pids()
                if any(a.endswith("/prb.conf") for a in _cmdline(pid))]


def _cmdline(pid) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


@pytest.fixture
def env(libvirt, tmp_path):
    return Env(libvirt, tmp_path)


def test_network_probe_passes_then_ignores_a_dead_dnsmasq_then_skips_a_stopped_network(env):
    env.write('  autostart = false\n')
    code, out, err = env.run("apply", "--auto-approve")
    assert code == 0, out + err
    env.write('  autostart = true\n')
    code, out, err = env.run("apply", "--auto-approve", "--probe")
    assert code == 0, out + err
    assert "network network.prb: ok" in out

    # dnsmasq killed behind kvmnet's back: failed before the change, not counted
    for pid in env.dnsmasq_pids():
        os.kill(pid, signal.SIGKILL)
    env.write('  autostart = false\n')
    code, out, err = env.run("apply", "--auto-approve", "--probe")
    assert code == 0, out + err
    assert "network network.prb: FAILED: no dnsmasq runs for libvirt network 'prb'" in out
    assert "not counted" in out

    # restart it (drift repaired), then stop the network on purpose: not probed after
    env.sb.virsh("net-destroy", "prb")
    code, out, err = env.run("apply", "--auto-approve", "--probe")
    assert code == 0, out + err
    assert "network network.prb: FAILED: libvirt network 'prb' is not active" in out
    assert env.dnsmasq_pids()
    env.write('  active = false\n')
    code, out, err = env.run("apply", "--auto-approve", "--probe")
    assert code == 0, out + err
    assert "network network.prb: ok: no longer configured" in out
    assert "prb" not in env.sb.virsh("net-list", "--name").stdout.split()
