"""``kvmnet doctor`` through the real CLI against a real libvirtd in its namespace.

One managed setup is applied once (module fixture): a NAT network with DHCP, a
port forward (nftables, in the daemon's namespace), a sysctl profile for
ip_forward there, an iproute bridge with a veth port there, and a NIC in a shut-off
domain. doctor must pass on it; then each test plants one failure in one layer,
checks the matching ✗ with its hint, exit 1 and the JSON, and repairs it.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import run_kvmnet, write_config

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

NET, BRIDGE, VBR, PORT, PEER = "docnet", "kvdoc0", "kvdocbr0", "kvdocp0", "kvdocp1"
DOMAIN, MAC = "g-doctor", "52:54:00:73:00:07"

CONFIG = """
provider "libvirt" {{
  uri = "{uri}"
}}
provider "nftables" {{
  netns = "{ns}"
}}
provider "sysctl" {{
  netns       = "{ns}"
  persist_dir = "{persist}"
}}
provider "iproute" {{
  netns = "{ns}"
}}

resource "network" "lab" {{
  name   = "{net}"
  mode   = "nat"
  bridge = "{bridge}"
  ip {{
    address = "10.73.0.1"
    prefix  = 24
    dhcp_range {{
      start = "10.73.0.100"
      end   = "10.73.0.200"
    }}
  }}
}}

resource "port_forward" "web" {{
  protocol   = "tcp"
  host_port  = 8073
  to_address = "10.73.0.50"
  to_port    = 80
  network    = network.lab.name
}}

resource "sysctl_profile" "routing" {{
  settings = {{ "net.ipv4.ip_forward" = 1 }}
  persist  = false
}}

resource "bridge" "vms" {{
  name       = "{vbr}"
  interfaces = ["{port}"]
  addresses  = ["10.74.0.1/24"]
}}

resource "nic_attachment" "spare" {{
  domain  = "{domain}"
  network = network.lab.name
  mac     = "{mac}"
  live    = false
}}
"""


class Doctor:
    def __init__(self, sb, root: Path):
        self.sb = sb
        self.cfg = root / "cfg"
        self.state = root / "kvmnet.state.db"

    def k(self, *args):
        return run_kvmnet(self.cfg, "--no-color", *args, state=self.state, timeout=60)

    def run(self, rc: int) -> str:
        code, out, err = self.k("doctor")
        assert code == rc, f"doctor exited {code}, wanted {rc}\n{out}\n{err}"
        return out

    def json(self, rc: int) -> list[dict]:
        code, out, err = self.k("doctor", "--json")
        assert code == rc, f"doctor --json exited {code}, wanted {rc}\n{out}\n{err}"
        return json.loads(out)

    def sysctl(self, value: int) -> None:
        subprocess.run(["ip", "netns", "exec", self.sb.netns, "sysctl", "-qw",
                        f"net.ipv4.ip_forward={value}"], check=True)


@pytest.fixture(scope="module")
def doctor(libvirt_sandbox, guest_image, tmp_path_factory):
    from kvmnet.sandbox.guest import define_guest
    sb = libvirt_sandbox
    root = tmp_path_factory.mktemp("doctor")
    (root / "sysctl.d").mkdir()
    sb.ip("link", "add", PORT, "type", "veth", "peer", "name", PEER)
    sb.ip("link", "set", PEER, "up")
    sb.keep_domains.add(DOMAIN)
    define_guest(sb, DOMAIN, guest_image)
    d = Doctor(sb, root)
    write_config(d.cfg, CONFIG.format(uri=sb.uri, ns=sb.netns, persist=root / "sysctl.d",
                                      net=NET, bridge=BRIDGE, vbr=VBR, port=PORT,
                                      domain=DOMAIN, mac=MAC))
    code, out, err = d.k("apply", "--auto-approve")
    assert code == 0, out + err
    try:
        yield d
    finally:
        run_kvmnet(d.cfg, "destroy", "--auto-approve", state=d.state, timeout=60)
        sb.keep_domains.discard(DOMAIN)
        sb.clean(keep_domains=sb.keep_domains, keep_networks=sb.keep_networks)
        sb.ip("link", "del", PORT, check=False)


def failures(checks: list[dict]) -> list[dict]:
    return [c for c in checks if not c["ok"]]


def test_all_green_on_a_healthy_setup(doctor):
    out = doctor.run(0)
    assert "\u2717" not in out and "all passed" in out
    checks = doctor.json(0)
    layers = [c["layer"] for c in checks]
    # bottom up, every layer present
    assert layers == sorted(layers, key=["libvirt", "network", "dhcp", "ip_forward",
                                         "port_forward", "bridge", "nic"].index)
    assert set(layers) == {"libvirt", "network", "dhcp", "ip_forward", "port_forward", "bridge", "nic"}
    assert set(checks[0]) == {"layer", "check", "address", "ok", "detail", "hint"}
    names = " | ".join(c["check"] for c in checks)
    for expected in (f"network {NET} active", f"bridge {BRIDGE} up and addressed",
                     f"dnsmasq running for {NET}", "net.ipv4.ip_forward = 1",
                     "forward tcp/8073 present", f"bridge {VBR} up and addressed",
                     f"port {PORT} of {VBR} up", f"NIC {MAC} in domain {DOMAIN}"):
        assert expected in names, names


def test_stopped_network(doctor):
    doctor.sb.virsh("net-destroy", NET)
    try:
        out = doctor.run(1)
        assert f"\u2717 network.lab: network {NET} active: network {NET} is inactive" in out
        assert f"net-start {NET}" in out
        bad = failures(doctor.json(1))
        assert [(c["layer"], c["address"]) for c in bad] == [("network", "network.lab")]
    finally:
        doctor.sb.virsh("net-start", NET)
        doctor.sysctl(1)
    doctor.run(0)


def dnsmasq_pids(sb) -> list[int]:
    from kvmnet.providers.libvirt.doctor import processes_in, serves_network
    return [pid for pid, argv in processes_in(sb.netns) if serves_network(argv, NET)]


def test_dnsmasq_killed(doctor):
    pids = dnsmasq_pids(doctor.sb)
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    try:
        out = doctor.run(1)
        assert f"\u2717 network.lab: dnsmasq running for {NET}: no dnsmasq" in out
        assert f"net-destroy {NET}" in out
        bad = failures(doctor.json(1))
        assert [c["layer"] for c in bad] == ["dhcp"] and bad[0]["hint"]
    finally:
        doctor.sb.virsh("net-destroy", NET)
        doctor.sb.virsh("net-start", NET)
    assert dnsmasq_pids(doctor.sb)
    doctor.run(0)


def test_ip_forward_off(doctor):
    doctor.sysctl(0)
    try:
        out = doctor.run(1)
        assert "\u2717 net.ipv4.ip_forward = 1: it is 0 in network namespace" in out
        assert f"ip netns exec {doctor.sb.netns} sysctl -w net.ipv4.ip_forward=1" in out
        bad = failures(doctor.json(1))
        assert [c["layer"] for c in bad] == ["ip_forward"]
        assert "network.lab" in bad[0]["detail"]
    finally:
        doctor.sysctl(1)
    doctor.run(0)


def kvmnet_dnat_handle(sb) -> int:
    cp = subprocess.run(["ip", "netns", "exec", sb.netns, "nft", "-j", "-a", "list", "chain",
                         "ip", "kvmnet", "port_forwards"], capture_output=True, text=True, check=True)
    rules = [i["rule"] for i in json.loads(cp.stdout)["nftables"] if "rule" in i]
    (handle,) = [r["handle"] for r in rules if "port_forward.web" in r.get("comment", "")]
    return handle


def test_forward_rule_deleted(doctor):
    sb = doctor.sb
    subprocess.run(["ip", "netns", "exec", sb.netns, "nft", "delete", "rule", "ip", "kvmnet",
                    "port_forwards", "handle", str(kvmnet_dnat_handle(sb))], check=True)
    out = doctor.run(1)
    assert "\u2717 port_forward.web: forward tcp/8073 present and ahead of libvirt's rules" in out
    assert "kvmnet apply writes them again" in out
    bad = failures(doctor.json(1))
    assert [(c["layer"], c["address"]) for c in bad] == [("port_forward", "port_forward.web")]
    code, out, err = doctor.k("apply", "--auto-approve")
    assert code == 0, out + err
    doctor.run(0)


def test_forward_behind_libvirts_rules(doctor):
    """libvirt's jumps put back ahead of kvmnet's accept: the rules are all there,
    but forwarded connections would be rejected."""
    sb = doctor.sb
    subprocess.run(["ip", "netns", "exec", sb.netns, "iptables", "-I", "FORWARD", "1",
                    "-j", "LIBVIRT_FWX"], check=True)
    try:
        out = doctor.run(1)
        assert "come before kvmnet's accept in FORWARD" in out
        assert "kvmnet apply puts kvmnet's accept first again" in out
    finally:
        subprocess.run(["ip", "netns", "exec", sb.netns, "iptables", "-D", "FORWARD", "1"], check=True)
    doctor.run(0)


def test_bridge_port_down(doctor):
    doctor.sb.ip("link", "set", PORT, "down")
    try:
        out = doctor.run(1)
        assert f"\u2717 bridge.vms: port {PORT} of {VBR} up: {PORT} is administratively down" in out
        assert f"ip netns exec {doctor.sb.netns} ip link set {PORT} up" in out
        bad = failures(doctor.json(1))
        assert [(c["layer"], c["address"]) for c in bad] == [("bridge", "bridge.vms")]
    finally:
        doctor.sb.ip("link", "set", PORT, "up")
    doctor.run(0)


def test_nic_detached_outside_kvmnet(doctor):
    doctor.sb.virsh("detach-interface", DOMAIN, "network", "--mac", MAC, "--config")
    out = doctor.run(1)
    assert f"\u2717 nic_attachment.spare: NIC {MAC} in domain {DOMAIN}: not in the saved definition" in out
    assert "kvmnet apply attaches it again" in out
    assert [c["layer"] for c in failures(doctor.json(1))] == ["nic"]
    code, out, err = doctor.k("apply", "--auto-approve")
    assert code == 0, out + err
    doctor.run(0)


def test_libvirt_unreachable(doctor, tmp_path):
    """A URI nothing answers on: one ✗ at the bottom, nothing above it asked."""
    bad_cfg = tmp_path / "cfg"
    text = (doctor.cfg / "main.hcl").read_text().replace(doctor.sb.uri, f"qemu+unix:///system?socket={tmp_path}/nope")
    write_config(bad_cfg, text)
    code, out, err = run_kvmnet(bad_cfg, "doctor", "--json", state=doctor.state, timeout=60)
    assert code == 1, out + err
    checks = json.loads(out)
    assert checks[0]["layer"] == "libvirt" and not checks[0]["ok"] and "virsh -c" in checks[0]["hint"]
    assert not any(c["layer"] in ("network", "dhcp", "nic") for c in checks)


def test_provider_that_cannot_answer(doctor, tmp_path):
    """The forwards' namespace is gone: one ✗ for that provider, the others still asked."""
    text = (doctor.cfg / "main.hcl").read_text()
    text = text.replace(f'provider "nftables" {{\n  netns = "{doctor.sb.netns}"',
                        'provider "nftables" {\n  netns = "kvmnet-doctor-no-such-ns"')
    write_config(tmp_path / "cfg", text)
    code, out, err = run_kvmnet(tmp_path / "cfg", "doctor", "--json", state=doctor.state, timeout=60)
    assert code == 1, out + err
    bad = failures(json.loads(out))
    assert [(c["layer"], c["check"]) for c in bad] == [("port_forward", "provider nftables answers")]
    assert "kvmnet-doctor-no-such-ns" in bad[0]["detail"]
    assert any(c["layer"] == "nic" and c["ok"] for c in json.loads(out))


def test_nothing_managed(libvirt_sandbox, tmp_path):
    write_config(tmp_path / "empty", "# nothing yet\n")
    code, out, err = run_kvmnet(tmp_path / "empty", "doctor", state=tmp_path / "s.db")
    assert (code, out) == (0, "Nothing to check: the state records no managed resources.\n"), err
    write_config(tmp_path / "lv", f'provider "libvirt" {{\n  uri = "{libvirt_sandbox.uri}"\n}}\n')
    code, out, err = run_kvmnet(tmp_path / "lv", "doctor", "--json", state=tmp_path / "s.db")
    assert code == 0, out + err
    assert [(c["layer"], c["ok"]) for c in json.loads(out)] == [("libvirt", True)]


IPTABLES_CONFIG = """
provider "iptables" {{
  netns = "{ns}"
}}

resource "port_forward" "db" {{
  provider   = "iptables"
  protocol   = "tcp"
  host_port  = 5432
  to_address = "10.75.0.5"
  to_port    = 5432
}}
"""


def test_iptables_forward(tmp_path):
    """The iptables provider's forwards, in a namespace of their own: present; DNAT
    flushed; a foreign rule ahead of kvmnet's jump in FORWARD."""
    from kvmnet.sandbox.netns import in_ns, netns
    with netns("kdi") as ns:
        cfg = tmp_path / "cfg"
        write_config(cfg, IPTABLES_CONFIG.format(ns=ns))
        k = lambda *a: run_kvmnet(cfg, *a, state=tmp_path / "s.db")  # noqa: E731
        code, out, err = k("apply", "--auto-approve")
        assert code == 0, out + err
        code, out, err = k("doctor")
        assert code == 0 and "\u2713 port_forward.db: forward tcp/5432 present" in out, out + err

        in_ns(ns, "iptables", "-t", "nat", "-F", "KVMNET_PREROUTING")
        code, out, err = k("doctor", "--json")
        (bad,) = failures(json.loads(out))
        assert code == 1 and bad["address"] == "port_forward.db" and "missing" in bad["detail"]
        assert f"ip netns exec {ns} iptables -S FORWARD" in bad["hint"]
        assert k("apply", "--auto-approve")[0] == 0

        in_ns(ns, "iptables", "-I", "FORWARD", "1", "-j", "ACCEPT")
        code, out, err = k("doctor")
        assert code == 1 and "come before kvmnet's accept in FORWARD" in out, out + err
        assert k("destroy", "--auto-approve")[0] == 0
