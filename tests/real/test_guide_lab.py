"""The guide's whole lab (examples/guide-lab) through the real CLI, in the sandbox that
``make demo`` uses (:class:`kvmnet.sandbox.lab.GuideLab`): a real libvirtd with the
stock default network, a real TCG guest web-server, netplan/nft/sysctl inside the
sandbox's network namespace, traffic from a client namespace into a guest namespace.

Asserted on the live system: every network active with its addresses and DHCP hosts,
br0 over the uplink (live and in the netplan file), the forwards carrying real
traffic, the NIC in the guest (QEMU's view, with the guest kernel having enumerated
it), the sysctls set; then destroy leaves nothing behind.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
import yaml

from kvmnet.sandbox.lab import FORWARDS, GUIDE_LAB, GuideLab
from kvmnet.sandbox.netns import in_ns, kernel_has_8021q, sh

NEEDS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces and libvirtd)")

# name -> (bridge, address/prefix or None for bridge mode)
NETWORKS = {
    "default": ("virbr0", "192.168.122.1/24"),
    "my-nat": ("virbr1", "10.0.0.1/24"),
    "isolated": ("virbr2", "172.16.0.1/24"),
    "host-only": ("virbr3", "192.168.100.1/24"),
    **{f"test-net-{i}": (f"virbr{i}", f"192.168.{100 + i}.1/24") for i in range(10, 16)},
    "host-bridge": ("br0", None),
}
TUNING = {"net.ipv4.ip_forward": "1", "net.ipv4.tcp_rmem": "4096 65536 16777216",
          "net.ipv4.tcp_wmem": "4096 65536 16777216", "net.ipv4.tcp_window_scaling": "1"}
NIC_MAC = "52:54:00:12:34:56"


def kvmnet_ok(lab: GuideLab, *args: str, expect: int = 0, **kw) -> str:
    cp = lab.kvmnet(*args, **kw)
    assert cp.returncode == expect, f"kvmnet {' '.join(args)} exited {cp.returncode}:\n{cp.stdout}\n{cp.stderr}"
    return cp.stdout


def addresses(lab: GuideLab, dev: str) -> list[str]:
    doc = json.loads(lab.sandbox.ip("-j", "addr", "show", "dev", dev).stdout)
    return [f"{a['local']}/{a['prefixlen']}" for a in doc[0]["addr_info"] if a["family"] == "inet"]


def links(lab: GuideLab) -> dict[str, dict]:
    return {l["ifname"]: l for l in json.loads(lab.sandbox.ip("-j", "link", "show").stdout)}


def hmp(lab: GuideLab, domain: str, command: str) -> str:
    return lab.sandbox.virsh("qemu-monitor-command", domain, "--hmp", command).stdout


# -- no root, nothing touched: the config itself ------------------------------------------
def run_offline(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmnet", "--no-color", "-C", str(GUIDE_LAB), *args],
                          capture_output=True, text=True)


def test_guide_lab_validates_with_and_without_the_switched_off_parts():
    run = run_offline
    full = run("validate")
    assert full.returncode == 0 and "27 resource instances" in full.stdout, full.stdout + full.stderr
    sandbox = run("--var", "enable_vlans=false", "--var", "enable_host_wide_sysctls=false", "validate")
    assert sandbox.returncode == 0 and "18 resource instances" in sandbox.stdout


def test_vlan_part_plans_the_working_pattern(tmp_path):
    """With the VLANs on, the plan (no refresh, nothing touched) is vlan -> bridge ->
    bridge-mode network per department, addresses from cidrsubnet."""
    cp = run_offline("--state", str(tmp_path / "s.db"), "plan", "--refresh=false", "--json")
    assert cp.returncode == 0, cp.stderr
    after = {c["address"]: c["after"] for c in json.loads(cp.stdout)["resource_changes"]}
    for key, vid, addr in (("finance", 100, "10.128.100.1/24"), ("tech", 200, "10.128.200.1/24"),
                           ("marketing", 300, "10.129.44.1/24")):
        assert after[f'vlan.dept["{key}"]']["name"] == f"br0.{vid}"
        assert after[f'vlan.dept["{key}"]']["link"] == "br0"
        assert after[f'bridge.dept["{key}"]']["interfaces"] == [f"br0.{vid}"]
        assert after[f'bridge.dept["{key}"]']["addresses"] == [addr]
        assert after[f'network.dept["{key}"]']["forward"] == {"mode": "bridge"}
        assert after[f'network.dept["{key}"]']["bridge"] == {"name": f"br-vlan{vid}"}


# -- the lab, live ------------------------------------------------------------------------
def _requirements() -> None:
    for tool in ("libvirtd", "qemu-system-x86_64", "busybox", "nft", "netplan"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed")


@NEEDS_ROOT
@pytest.mark.real
@pytest.mark.slow
def test_guide_lab_live_then_destroy_leaves_nothing():
    _requirements()
    with GuideLab() as lab:
        before = {k: lab.sysctl(k) for k in TUNING}
        kvmnet_ok(lab, "import", "network.default", "default")
        kvmnet_ok(lab, "apply", "--auto-approve")
        lab.connect_guest_namespace()

        # every network active, with its bridge and address
        active = set(lab.sandbox.virsh("net-list", "--name").stdout.split())
        assert active == set(NETWORKS)
        for name, (bridge, address) in NETWORKS.items():
            xml = ET.fromstring(lab.sandbox.virsh("net-dumpxml", name).stdout)
            assert xml.find("bridge").get("name") == bridge
            if address:
                assert addresses(lab, bridge) == [address], name
        # DHCP: my-nat's range and static host (also in dnsmasq's live hosts file)
        my_nat = ET.fromstring(lab.sandbox.virsh("net-dumpxml", "my-nat").stdout)
        rng = my_nat.find("ip/dhcp/range")
        assert (rng.get("start"), rng.get("end")) == ("10.0.0.10", "10.0.0.100")
        host = my_nat.find("ip/dhcp/host")
        assert (host.get("mac"), host.get("ip"), host.get("name")) == (NIC_MAC, "10.0.0.50", "web-server")
        assert my_nat.find("forward/nat/port").attrib == {"start": "1024", "end": "65535"}
        hosts = lab.sandbox.host_path("/var/lib/libvirt/dnsmasq/my-nat.hostsfile").read_text()
        assert f"{NIC_MAC},10.0.0.50,web-server" in hosts
        assert ET.fromstring(lab.sandbox.virsh("net-dumpxml", "isolated").stdout).find("forward") is None
        assert ET.fromstring(lab.sandbox.virsh("net-dumpxml", "host-only").stdout).find(
            "forward").get("mode") == "route"

        # br0 over the uplink, live and in netplan's file (which netplan generate accepted)
        ls = links(lab)
        assert ls["eth0"].get("master") == "br0"
        assert addresses(lab, "br0") == ["198.18.0.1/24"]
        netplan = yaml.safe_load(lab.netplan_file.read_text())["network"]
        assert netplan["bridges"]["br0"]["interfaces"] == ["eth0"]
        assert netplan["bridges"]["br0"]["addresses"] == ["198.18.0.1/24"]

        # the forwards carry real traffic: client namespace -> 198.18.0.1:P -> 10.0.0.50
        for host_port, to_port in FORWARDS.items():
            reply = lab.wait_for_request(host_port)
            assert f"web-server 10.0.0.50:{to_port} (client 198.18.0.2)" in reply, (host_port, reply)
        assert lab.wait_for_request(8080).startswith("HTTP 200")

        # the NIC in the running guest: virtio on my-nat, 4 queues, a tap on virbr1,
        # and QEMU's device with its BARs programmed (the guest kernel enumerated it)
        dom = ET.fromstring(lab.sandbox.virsh("dumpxml", "web-server").stdout)
        nic = next(i for i in dom.iter("interface") if i.find("mac").get("address") == NIC_MAC)
        assert nic.find("source").get("network") == "my-nat"
        assert nic.find("model").get("type") == "virtio"
        assert nic.find("driver").get("queues") == "4"
        tap = nic.find("target").get("dev")
        assert ls[tap].get("master") == "virbr1"
        net = hmp(lab, "web-server", "info network")
        m = re.search(rf"(net\d+): index=0,type=nic,model=virtio-net-pci,macaddr={NIC_MAC}", net)
        assert m, net
        assert len(re.findall(rf"^{m.group(1)}: index=\d", net, re.M)) == 4   # 4 queue pairs
        # 8.2's offloads, off in QEMU's virtio-net device itself (not only in the XML)
        for prop in ("csum", "gso", "host_tso4", "host_tso6", "host_ecn", "host_ufo", "guest_csum",
                     "guest_tso4", "guest_tso6", "guest_ecn", "guest_ufo"):
            got = hmp(lab, "web-server", f"qom-get /machine/peripheral/{m.group(1)} {prop}").strip()
            assert got == "false", (prop, got)
        deadline = time.monotonic() + 15
        while True:
            pci = hmp(lab, "web-server", "info pci")
            block = pci.split(f'id "{m.group(1)}"')[0].rsplit("Bus", 1)[-1]
            if "BAR1: 32 bit memory at 0x" in block and "0xffffffff" not in block.split("BAR1")[1].split("\n")[0]:
                break
            assert time.monotonic() < deadline, f"guest did not enumerate the NIC:\n{block}"
            time.sleep(0.5)

        # the sysctl profile: set in the namespace, persisted
        assert {k: lab.sysctl(k) for k in TUNING} == TUNING
        conf = (lab.sysctl_dir / "90-kvmnet-tuning.conf").read_text()
        assert "net.ipv4.tcp_wmem = 4096 65536 16777216" in conf

        # converged, and every layer checks out
        kvmnet_ok(lab, "plan", "--detailed-exitcode")
        assert "all passed" in kvmnet_ok(lab, "doctor")

        # destroy (the stock default network is handed back first: web-server uses it)
        kvmnet_ok(lab, "state", "rm", "network.default")
        kvmnet_ok(lab, "destroy", "--auto-approve")
        assert lab.sandbox.virsh("net-list", "--all", "--name").stdout.split() == ["default"]
        left = links(lab)
        assert not {"br0", "virbr1", "virbr2", "virbr3", *(f"virbr{i}" for i in range(10, 16))} & set(left)
        assert "master" not in left["eth0"]                       # released, not deleted
        assert tap not in left                                    # the NIC is detached
        assert NIC_MAC not in lab.sandbox.virsh("dumpxml", "web-server").stdout
        assert lab.sandbox.virsh("domstate", "web-server").stdout.strip() == "running"
        assert "kvmnet" not in in_ns(lab.netns, "nft", "list", "tables").stdout
        assert not lab.netplan_file.exists()
        assert list(lab.sysctl_dir.iterdir()) == []
        assert {k: lab.sysctl(k) for k in TUNING} == before
        assert kvmnet_ok(lab, "state", "list").strip() == ""
        names = (lab.netns, lab.client_ns, lab.guest_ns)
        workdir, tmp = lab.sandbox.workdir, lab.tmp
    assert not set(sh("ip", "netns", "list").stdout.split()) & set(names)
    assert not workdir.exists() and not tmp.exists()


@NEEDS_ROOT
@pytest.mark.real
def test_guide_lab_vlans_live():
    if not kernel_has_8021q():
        pytest.skip("this kernel has no 802.1Q (ip link add ... type vlan: Unknown device type)")
    _requirements()
    with GuideLab() as lab:
        kvmnet_ok(lab, "import", "network.default", "default")
        kvmnet_ok(lab, "apply", "--auto-approve", variables=lab.variables(enable_vlans=True))
        for vid in (100, 200, 300):
            assert links(lab)[f"br0.{vid}"].get("master") == f"br-vlan{vid}"
        kvmnet_ok(lab, "state", "rm", "network.default")
        kvmnet_ok(lab, "destroy", "--auto-approve", variables=lab.variables(enable_vlans=True))
