"""End to end through the CLI: ``kvmnet -C DIR plan/apply/destroy`` with bridges in a
throw-away namespace (iproute provider) and in a netplan root_dir (netplan provider)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kvmnet.sandbox.netns import add_veth, in_ns

ROOT = Path(__file__).resolve().parents[2]
KVMNET = [sys.executable, "-m", "kvmnet"]

pytestmark = [pytest.mark.real, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]


def kvmnet(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(cfg.parent / "cache"))
    return subprocess.run([*KVMNET, "-C", str(cfg), "--no-color", *args], capture_output=True, text=True,
                          env=env, cwd=str(cfg))


CONFIG = """
provider "{provider}" {{
  netns = "{ns}"
{extra}}}

resource "bridge" "lab" {{
  provider   = "{provider}"
  name       = "br-lab"
  interfaces = ["p0"]
  addresses  = ["10.9.0.1/24"]
  mtu        = 1400
  stp        = false
  route {{
    to     = "10.8.0.0/24"
    via    = "10.9.0.254"
    metric = 50
  }}
}}
"""


@pytest.fixture
def cfg(ns, tmp_path):
    add_veth(ns, "p0", "q0")
    add_veth(ns, "p1", "q1")
    d = tmp_path / "cfg"
    d.mkdir()
    (d / "main.hcl").write_text(CONFIG.format(provider="iproute", ns=ns, extra=""))
    return d


def test_plan_apply_drift_destroy(cfg, ns):
    p = kvmnet(cfg, "plan", "--detailed-exitcode")
    assert p.returncode == 2, p.stderr
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in p.stdout
    a = kvmnet(cfg, "apply", "--auto-approve")
    assert a.returncode == 0, a.stderr
    link = json.loads(in_ns(ns, "ip", "-j", "-d", "link", "show", "br-lab").stdout)[0]
    assert link["ifalias"].startswith("kvmnet:") and link["ifalias"].endswith(":bridge.lab")
    assert link["mtu"] == 1400
    assert kvmnet(cfg, "plan", "--detailed-exitcode").returncode == 0

    # drift behind kvmnet's back
    in_ns(ns, "ip", "link", "set", "br-lab", "type", "bridge", "stp_state", "1")
    in_ns(ns, "ip", "addr", "add", "10.9.9.9/32", "dev", "br-lab")
    p = kvmnet(cfg, "plan", "--detailed-exitcode")
    assert p.returncode == 2
    assert "changed outside of kvmnet" in p.stdout and "stp" in p.stdout and "10.9.9.9/32" in p.stdout
    assert kvmnet(cfg, "apply", "--auto-approve").returncode == 0
    assert kvmnet(cfg, "plan", "--detailed-exitcode").returncode == 0

    # a port swap is an update, not a replace
    (cfg / "main.hcl").write_text((cfg / "main.hcl").read_text().replace('["p0"]', '["p1"]'))
    p = kvmnet(cfg, "plan", "--json")
    change = [c for c in json.loads(p.stdout)["resource_changes"] if c["address"] == "bridge.lab"][0]
    assert change["actions"] == ["update"]
    assert kvmnet(cfg, "apply", "--auto-approve").returncode == 0
    ports = {l["ifname"]: l.get("master") for l in json.loads(in_ns(ns, "ip", "-j", "link", "show").stdout)}
    assert ports["p1"] == "br-lab" and ports["p0"] is None

    d = kvmnet(cfg, "destroy", "--auto-approve")
    assert d.returncode == 0, d.stderr
    names = {l["ifname"] for l in json.loads(in_ns(ns, "ip", "-j", "link", "show").stdout)}
    assert "br-lab" not in names and {"p0", "p1"} <= names


def test_destroy_refused_while_a_vm_tap_is_enslaved(cfg, ns):
    assert kvmnet(cfg, "apply", "--auto-approve").returncode == 0
    in_ns(ns, "ip", "tuntap", "add", "dev", "vnet7", "mode", "tap")
    in_ns(ns, "ip", "link", "set", "vnet7", "master", "br-lab")
    assert kvmnet(cfg, "plan", "--detailed-exitcode").returncode == 0    # a tap is not drift
    d = kvmnet(cfg, "destroy", "--auto-approve")
    assert d.returncode == 1
    assert "vnet7" in d.stderr + d.stdout
    assert json.loads(in_ns(ns, "ip", "-j", "link", "show", "br-lab").stdout)
    in_ns(ns, "ip", "link", "del", "vnet7")
    assert kvmnet(cfg, "destroy", "--auto-approve").returncode == 0


def test_an_unmanaged_bridge_of_that_name_asks_for_import(cfg, ns):
    in_ns(ns, "ip", "link", "add", "br-lab", "type", "bridge")
    p = kvmnet(cfg, "plan")
    assert p.returncode == 1
    assert "import" in p.stdout + p.stderr


def test_netplan_provider_end_to_end(cfg, ns, tmp_path):
    root = tmp_path / "root"
    (cfg / "main.hcl").write_text(CONFIG.format(provider="netplan", ns=ns, extra=f'  root_dir = "{root}"\n')
                                  .replace('  stp        = false\n', '  stp        = false\n  nameservers = ["10.9.0.53"]\n'))
    a = kvmnet(cfg, "apply", "--auto-approve")
    assert a.returncode == 0, a.stderr + a.stdout
    path = root / "etc" / "netplan" / "90-kvmnet.yaml"
    doc = yaml.safe_load(path.read_text())
    assert doc["network"]["bridges"]["br-lab"]["nameservers"] == {"addresses": ["10.9.0.53"]}
    assert json.loads(in_ns(ns, "ip", "-j", "link", "show", "br-lab").stdout)[0]["mtu"] == 1400
    assert kvmnet(cfg, "plan", "--detailed-exitcode").returncode == 0
    # the file edited by hand is drift
    path.write_text(path.read_text().replace("mtu: 1400", "mtu: 1500"))
    p = kvmnet(cfg, "plan", "--detailed-exitcode")
    assert p.returncode == 2 and "mtu" in p.stdout
    assert kvmnet(cfg, "apply", "--auto-approve").returncode == 0
    assert "mtu: 1400" in path.read_text()
    assert kvmnet(cfg, "destroy", "--auto-approve").returncode == 0
    assert not path.exists()
