"""`kvmnet sandbox up --guest` / `down` through the real CLI, and the example review
policy (examples/policy, Rego via regopy) on plans made against that sandbox after
real applies: a network replaced under a guest's NIC and a forward to port 22 are
denied, an ordinary forward passes."""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import run_kvmnet, write_config

pytestmark = [pytest.mark.real, pytest.mark.slow,
              pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("libvirtd"),
                                 reason="needs root and libvirtd")]

ROOT = Path(__file__).resolve().parents[2]
MAC = "52:54:00:77:00:05"


def lab(bridge: str = "virbr7", forward_to: int | None = None) -> str:
    text = f"""
resource "network" "lab" {{
  name   = "lab"
  mode   = "nat"
  bridge = "{bridge}"
  ip {{
    address = "10.77.0.1"
    prefix  = 24
  }}
}}

resource "nic_attachment" "web" {{
  domain  = "web-server"
  network = network.lab.name
  mac     = "{MAC}"
}}

output "lab_bridge" {{
  value = network.lab.bridge
}}
"""
    if forward_to is not None:
        text += f"""
resource "port_forward" "svc" {{
  protocol   = "tcp"
  host_port  = 2200
  to_address = "10.77.0.5"
  to_port    = {forward_to}
  network    = network.lab.name
}}
"""
    return text


def deny(plan: dict) -> list[str]:
    from regopy import Interpreter
    rego = Interpreter()
    rego.add_module("kvmnet", (ROOT / "examples" / "policy" / "kvmnet.rego").read_text())
    rego.set_input(plan)
    out = rego.query("data.kvmnet.policy.deny")
    assert out.ok(), out
    (result,) = json.loads(str(out))["expressions"]
    return sorted(result)


def netns_names() -> set[str]:
    return {line.split()[0] for line in os.popen("ip netns list").read().splitlines() if line.strip()}


def gone(pid: int, timeout: float = 10.0) -> bool:
    """The process has exited (a zombie waiting to be reaped counts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
        except (OSError, IndexError):
            return True
        if state in "ZX":
            return True
        time.sleep(0.05)
    return False


def test_sandbox_up_policy_and_down(tmp_path):
    pytest.importorskip("regopy")
    record = tmp_path / "sandbox.json"
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    rc, out, err = run_kvmnet(cfg, "sandbox", "up", "--guest", "--record", str(record), timeout=180)
    assert rc == 0, err
    session = json.loads(record.read_text())
    try:
        assert {session["name"], session["client_ns"]} <= netns_names()
        blocks = out[out.index('provider "libvirt"'):out.index("When done")]
        assert re.search(r'provider "sysctl" \{\n  netns\s+= "kvl-', blocks)
        # one sandbox per record
        rc2, _, err2 = run_kvmnet(cfg, "sandbox", "up", "--record", str(record))
        assert rc2 == 1 and "already up" in err2
        write_config(cfg, blocks, "providers.hcl")
        write_config(cfg, lab())
        state = tmp_path / "s.db"
        rc, out, err = run_kvmnet(cfg, "apply", "-auto-approve", state=state, timeout=120)
        assert rc == 0, err
        assert out.rstrip().endswith('Outputs:\n\nlab_bridge = "virbr7"'), out
        assert run_kvmnet(cfg, "output", "-raw", "lab_bridge", state=state)[1] == "virbr7\n"

        # a forward to port 22 is denied; one to port 80 passes (Terraform's spelling and kvmnet's)
        write_config(cfg, lab(forward_to=22))
        planfile = tmp_path / "ssh.plan"
        rc, out, err = run_kvmnet(cfg, "plan", f"-out={planfile}", state=state)
        assert rc == 0, err
        rc, shown, err = run_kvmnet(cfg, "show", "-json", str(planfile), state=state)
        assert rc == 0, err
        plan = json.loads(shown)
        assert json.loads(run_kvmnet(cfg, "plan", "--json", state=state)[1])["resource_changes"] == \
            plan["resource_changes"]
        assert deny(plan) == ["port_forward.svc forwards host port 2200 to port 22 of 10.77.0.5"]
        write_config(cfg, lab(forward_to=80))
        assert deny(json.loads(run_kvmnet(cfg, "plan", "-json", state=state)[1])) == []

        # replacing the network under web-server's NIC: kvmnet refuses it live (the guest
        # runs); the policy denies the plan made without refresh too
        write_config(cfg, lab(bridge="virbr8"))
        rc, out, err = run_kvmnet(cfg, "plan", "-json", "-refresh=false", state=state)
        assert rc == 0, err
        plan = json.loads(out)
        (net,) = [c for c in plan["resource_changes"] if c["address"] == "network.lab"]
        assert net["change"]["actions"] == ["delete", "create"]
        assert plan["output_changes"]["lab_bridge"]["actions"] == ["update"]
        assert deny(plan) == [
            "network.lab would be replaced while nic_attachment.web (guest web-server) uses it"]
        write_config(cfg, lab())
        rc, _, err = run_kvmnet(cfg, "destroy", "-auto-approve", state=state, timeout=120)
        assert rc == 0, err
    finally:
        rc, out, err = run_kvmnet(cfg, "sandbox", "down", "--record", str(record), timeout=120)
    assert rc == 0, err
    assert not ({session["name"], session["client_ns"]} & netns_names())
    assert not Path(session["tmp"]).exists() and not record.exists()
    assert gone(session["pid"])
    rc, _, err = run_kvmnet(cfg, "sandbox", "down", "--record", str(record))
    assert rc == 1 and err.startswith("Error: cannot remove the sandbox: no sandbox is up")
