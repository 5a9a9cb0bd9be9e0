"""End to end through the real ``kvmnet`` CLI (subprocesses) against a real libvirtd in
a network namespace and a real running TCG guest: plan/apply, drift, import, and the
safe-deletion refusal with a running and a shut-off consumer.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.helpers import run_kvmnet, write_config

RUN, OFF = "g-cli-run", "g-cli-off"

LAB = """
resource "network" "lab" {
  mode   = "nat"
  bridge = "kvcli0"
  ip {
    address = "10.62.0.1"
    prefix  = 24
    dhcp_range {
      start = "10.62.0.100"
      end   = "10.62.0.200"
    }
    dhcp_host {
      mac  = "52:54:00:62:00:01"
      ip   = "10.62.0.10"
      name = "web"
    }
  }
}
"""

NIC = f"""
resource "nic_attachment" "web" {{
  domain  = "{RUN}"
  network = network.lab.name
}}
"""


class Env:
    def __init__(self, sb, tmp_path: Path):
        self.sb = sb
        self.cfg = tmp_path / "cfg"
        self.state = tmp_path / "kvmnet.state.db"
        self.cfg.mkdir(parents=True, exist_ok=True)     # -C enters it, as Terraform's -chdir

    def write(self, body: str) -> None:
        write_config(self.cfg, f'provider "libvirt" {{\n  uri = "{self.sb.uri}"\n}}\n' + body)

    def k(self, *args):
        return run_kvmnet(self.cfg, "--no-color", *args, state=self.state, timeout=120)

    def ok(self, *args, rc=0):
        code, out, err = self.k(*args)
        assert code == rc, f"kvmnet {' '.join(args)} exited {code}\n{out}\n{err}"
        return out


@pytest.fixture(scope="module")
def cli_guest(libvirt_sandbox, guest_image):
    from kvmnet.sandbox.guest import start_guest
    sb = libvirt_sandbox
    sb.keep_domains.add(RUN)
    try:
        start_guest(sb, RUN, guest_image)
        yield sb
    finally:
        sb.keep_domains.discard(RUN)
        sb.clean()


@pytest.fixture
def env(cli_guest, tmp_path):
    return Env(cli_guest, tmp_path)


def nics_of(sb, domain, inactive=False):
    import libvirt as lv
    from kvmnet.providers.libvirt.nicxml import parse_interfaces
    conn = sb.connect()
    try:
        xml = conn.lookupByName(domain).XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE if inactive else 0)
    finally:
        conn.close()
    return parse_interfaces(xml)


def test_apply_drift_and_safe_destroy(env, guest_image):
    from kvmnet.sandbox.guest import define_guest
    sb = env.sb
    env.write(LAB + NIC)
    out = env.ok("plan", "--detailed-exitcode", rc=2)
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in out
    env.ok("apply", "--auto-approve")
    assert env.ok("plan", "--detailed-exitcode") and "No changes" in env.ok("plan")
    on_lab = [i for i in nics_of(sb, RUN).values() if i.network == "lab"]
    assert len(on_lab) == 1
    mac = on_lab[0].mac
    assert on_lab[0].mac in nics_of(sb, RUN, inactive=True)

    # drift behind kvmnet's back: a live-only DHCP host and a re-linked NIC
    sb.virsh("net-update", "lab", "add", "ip-dhcp-host",
             "<host mac='52:54:00:62:00:02' ip='10.62.0.11'/>", "--live")
    sb.virsh("domif-setlink", RUN, mac, "down", "--config")
    out = env.ok("plan", "--detailed-exitcode", rc=2)
    assert "(live only)" in out and "network.lab" in out
    assert "nic_attachment.web" in out and "down" in out
    env.ok("apply", "--auto-approve")
    assert "No changes" in env.ok("plan", "--detailed-exitcode")
    assert nics_of(sb, RUN, inactive=True)[mac].link_state == "up"

    # consumers kvmnet does not manage: an extra NIC of the running guest, a shut-off guest
    sb.virsh("attach-interface", RUN, "network", "lab", "--mac", "52:54:00:62:00:99",
             "--model", "virtio", "--live", "--config")
    define_guest(sb, OFF, guest_image, network="lab", mac="52:54:00:62:00:98")
    code, out, err = env.k("destroy", "--auto-approve")
    assert code == 1, out + err
    text = out + err
    assert "network.lab is in use by domain(s)" in text
    assert f"{RUN} (running)" in text and f"{OFF} (shut off)" in text
    # nothing was touched: the managed NIC is still attached
    assert mac in nics_of(sb, RUN)

    # once they are gone, destroy detaches the NIC first, then deletes the network
    sb.virsh("detach-interface", RUN, "network", "--mac", "52:54:00:62:00:99", "--live", "--config")
    sb.virsh("undefine", OFF)
    out = env.ok("destroy", "--auto-approve")
    assert out.index("nic_attachment.web") < out.rindex("network.lab")
    assert mac not in nics_of(sb, RUN) and mac not in nics_of(sb, RUN, inactive=True)
    assert sb.virsh("net-info", "lab", check=False).returncode != 0
    assert env.ok("state", "list").strip() == ""


def test_import_stock_default_network(env):
    sb = env.sb
    sb.define_default_network()
    env.write("""
resource "network" "default" {
  mode   = "nat"
  bridge = "virbr0"
  ip {
    address = "192.168.122.1"
    prefix  = 24
    dhcp_range {
      start = "192.168.122.2"
      end   = "192.168.122.254"
    }
  }
}
""")
    code, out, err = env.k("plan")
    assert code == 1 and "kvmnet import" in out + err
    env.ok("import", "network.default", "default")
    assert "No changes" in env.ok("plan", "--detailed-exitcode")
    assert "network.default" in env.ok("state", "list")
