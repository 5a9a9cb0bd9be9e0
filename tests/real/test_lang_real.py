"""Language features through the real ``kvmnet`` CLI against a real libvirtd in a
network namespace: ``dynamic`` blocks make the DHCP hosts of a live network."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import run_kvmnet, write_config

DYNAMIC = """
variable "hosts" {
  type = map(string)
  default = {
    "10.73.0.11" = "52:54:00:73:00:11"
    "10.73.0.12" = "52:54:00:73:00:12"
  }
}

resource "network" "lab" {
  mode   = "nat"
  bridge = "kvlang0"
  ip {
    address = "10.73.0.1"
    prefix  = 24
    dynamic "dhcp_host" {
      for_each = var.hosts
      iterator = h
      content {
        ip  = h.key
        mac = h.value
      }
    }
  }
}
"""


class Env:
    def __init__(self, sb, tmp_path: Path):
        self.sb = sb
        self.cfg = tmp_path / "cfg"
        self.state = tmp_path / "kvmnet.state.db"

    def write(self, body: str) -> None:
        write_config(self.cfg, f'provider "libvirt" {{\n  uri = "{self.sb.uri}"\n}}\n' + body)

    def ok(self, *args, rc=0, env=None):
        code, out, err = run_kvmnet(self.cfg, "--no-color", *args, state=self.state,
                                    timeout=120, env=env)
        assert code == rc, f"kvmnet {' '.join(args)} exited {code}\n{out}\n{err}"
        return out, err


@pytest.fixture
def env(libvirt, tmp_path):
    return Env(libvirt, tmp_path)


def test_dynamic_dhcp_hosts_reach_the_live_network(env):
    env.write(DYNAMIC)
    env.ok("apply", "--auto-approve")
    xml = env.sb.virsh("net-dumpxml", "lab").stdout
    assert "mac='52:54:00:73:00:11' ip='10.73.0.11'" in xml.replace('"', "'")
    assert "mac='52:54:00:73:00:12' ip='10.73.0.12'" in xml.replace('"', "'")
    out, _ = env.ok("plan", "--detailed-exitcode")
    assert "No changes" in out
    # one host more through the environment: an in-place update, no replace
    more = '{"10.73.0.11" = "52:54:00:73:00:11", "10.73.0.13" = "52:54:00:73:00:13"}'
    out, _ = env.ok("plan", "--detailed-exitcode", rc=2, env={"KVMNET_VAR_hosts": more})
    assert "must be replaced" not in out and "10.73.0.13" in out
