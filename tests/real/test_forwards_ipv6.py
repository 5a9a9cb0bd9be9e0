"""IPv6 port forwards through the nftables (``table ip6 kvmnet``) and iptables
(``ip6tables``) providers, proven with real IPv6 traffic, past libvirt's own rules.

Everything happens inside namespaces the tests create and delete, as in
test_forwards.py (whose traffic helpers this module uses): a "host" namespace,
a guest behind it and a client outside. Addresses: 2001:db8:ff::/64 outside (the
documentation prefix), fd00:db8:1::/64 or fd00:db8:213::/64 (unique local)
inside; no packet leaves the test's namespaces.
"""
from __future__ import annotations

import json
import os
import time
import uuid

import pytest

from kvmnet.sandbox.netns import add_veth, in_ns, netns
from kvmnet.sdk.doctor import Managed
from tests.real.test_forwards import delete_own_rule_behind_back_by_address
from test_forwards import (     # tests/real is on sys.path (pytest's rootdir-less import)
    LINEAGE, OUTSIDE_CLIENT, OUTSIDE_HOST, PROVIDERS, apply, connect, create, delete, fwd, kvmnet,
    ruleset_text, start_server,
)

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

HOST6, CLIENT6 = "2001:db8:ff::1", "2001:db8:ff::2"


def addr6(ns: str, cidr: str, dev: str) -> None:
    """An IPv6 address usable at once (no duplicate address detection wait)."""
    in_ns(ns, "ip", "-6", "addr", "add", cidr, "dev", dev, "nodad")


def settle6(*namespaces: str, timeout: float = 10.0) -> None:
    """Wait until no IPv6 address is tentative any more (the link-local ones go through
    duplicate address detection): until then neighbour discovery can lose the first
    packets of a connection, and a test would measure the kernel's warm-up."""
    deadline = time.monotonic() + timeout
    for ns in namespaces:
        while in_ns(ns, "ip", "-6", "addr", "show", "tentative").stdout.strip():
            assert time.monotonic() < deadline, f"IPv6 addresses in {ns} still tentative"
            time.sleep(0.1)


def delete_dnat_behind_back(kind: str, ns: str, address: str) -> None:
    """Delete one IPv6 forward's DNAT rule with the stock tools (ip6tables / nft)."""
    delete_own_rule_behind_back_by_address(kind, ns, address, LINEAGE, family=6)


# == without libvirt ====================================================================
GUEST6 = "fd00:db8:1::50"


@pytest.fixture
def topology6():
    """host ns (IPv6 and IPv4 forwarding on) with a dual-stack guest behind it and a
    dual-stack client outside."""
    with netns("kfh") as host, netns("kfg") as guest, netns("kfc") as client:
        add_veth(host, "tog", "eth0", peer_ns=guest)
        add_veth(host, "out0", "eth0", peer_ns=client)
        addr6(host, "fd00:db8:1::1/64", "tog")
        addr6(host, f"{HOST6}/64", "out0")
        addr6(guest, f"{GUEST6}/64", "eth0")
        addr6(client, f"{CLIENT6}/64", "eth0")
        in_ns(host, "ip", "addr", "add", "10.0.0.1/24", "dev", "tog")
        in_ns(host, "ip", "addr", "add", f"{OUTSIDE_HOST}/24", "dev", "out0")
        in_ns(guest, "ip", "addr", "add", "10.0.0.50/24", "dev", "eth0")
        in_ns(client, "ip", "addr", "add", f"{OUTSIDE_CLIENT}/24", "dev", "eth0")
        in_ns(guest, "ip", "-6", "route", "add", "default", "via", "fd00:db8:1::1")
        in_ns(guest, "ip", "route", "add", "default", "via", "10.0.0.1")
        in_ns(host, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1", "net.ipv4.ip_forward=1")
        settle6(host, guest, client)
        server = start_server(guest, [80, 81, 6000, 6001, 6002])
        try:
            yield {"host": host, "guest": guest, "client": client}
        finally:
            server.kill()
            server.wait(timeout=5)


@pytest.mark.parametrize("kind", PROVIDERS)
def test_ipv6_forward_carries_traffic_beside_an_ipv4_one_on_the_same_port(kind, topology6):
    host, client = topology6["host"], topology6["client"]
    p = PROVIDERS[kind]({"netns": host})
    web6 = fwd(to=GUEST6)
    web4 = fwd(to="10.0.0.50", to_port=81)                    # the same host port, IPv4
    dns6 = fwd("udp", "5000-5002", to=GUEST6, to_port=6000, iif="out0", source="2001:db8:ff::/64")
    assert connect(client, "tcp", HOST6, 8080).startswith("ERR:")
    try:
        results = apply(p, [create("web6", web6), create("web4", web4), create("dns6", dns6)])
        assert [r.attrs["to_address"] for r in results] == [GUEST6, "10.0.0.50", GUEST6]

        assert connect(client, "tcp", HOST6, 8080) == "guest-tcp:80"
        assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:81"    # IPv4 goes its way
        assert connect(client, "udp", HOST6, 5001) == "guest-udp:6001"         # range maps 1:1
        assert connect(host, "tcp", HOST6, 8080) == "guest-tcp:80"             # output DNAT
        assert connect(host, "udp", HOST6, 5001).startswith("ERR:")            # in_interface

        live = p.read("port_forward", [])
        assert set(live) == {"tcp6/8080", "tcp/8080", "udp6/5000-5002"}
        assert live["udp6/5000-5002"].attrs == {k: v for k, v in dns6.items() if k != "network"}
        assert live["tcp6/8080"].mark.address == "port_forward.web6"

        # one IPv6 rule deleted behind kvmnet's back: that forward alone is missing
        delete_dnat_behind_back(kind, host, "port_forward.web6")
        assert set(p.read("port_forward", [])) == {"tcp/8080", "udp6/5000-5002"}
        assert connect(client, "tcp", HOST6, 8080).startswith("ERR:")
        apply(p, [create("web6", web6)])                                       # repair
        assert connect(client, "tcp", HOST6, 8080) == "guest-tcp:80"

        apply(p, [delete("web6", web6)])
        assert connect(client, "tcp", HOST6, 8080).startswith("ERR:")
        assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:81"
        assert set(p.read("port_forward", [])) == {"tcp/8080", "udp6/5000-5002"}
    finally:
        apply(p, [delete("web6", web6), delete("web4", web4), delete("dns6", dns6)])
    assert p.read("port_forward", []) == {}
    assert "kvmnet" not in ruleset_text(host).lower()      # nothing of kvmnet is left


@pytest.mark.parametrize("kind", PROVIDERS)
def test_malformed_ipv6_forward_is_refused_before_the_firewall_is_touched(kind, topology6):
    from kvmnet.sdk.provider import ProviderError
    host = topology6["host"]
    p = PROVIDERS[kind]({"netns": host})
    before = ruleset_text(host)
    for bad in (fwd(to="fd00::zz"), fwd(to="fe80::1"), fwd(to="::1"),
                fwd(to=GUEST6, source="198.18.0.0/24"), fwd(to=GUEST6, source="2001:db8::1/64")):
        with pytest.raises(ProviderError):
            apply(p, [create("bad", bad)])
    with pytest.raises(ProviderError, match="forwarded twice"):
        apply(p, [create("a", fwd(to=GUEST6, host_port="8000-8010")), create("b", fwd(to=GUEST6, host_port="8005"))])
    assert ruleset_text(host) == before


# == through the CLI: plan, apply, no change, import by its ID, bad input ==================
CONFIG6 = """\
provider "{kind}" {{
  netns = "{netns}"
}}

resource "port_forward" "web6" {{
  provider   = "{kind}"
  protocol   = "tcp"
  host_port  = 8080
  to_address = "FD00:DB8:1:0::50"   # written any way: compared in its canonical form
  to_port    = 80
  source     = "2001:DB8:FF::/64"
}}
"""


@pytest.mark.parametrize("kind", PROVIDERS)
def test_cli_ipv6_forward_life_cycle_and_import(kind, topology6, tmp_path):
    host, client = topology6["host"], topology6["client"]
    (tmp_path / "main.hcl").write_text(CONFIG6.format(kind=kind, netns=host))
    cp = kvmnet(tmp_path, "apply", "--auto-approve")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    assert connect(client, "tcp", HOST6, 8080) == "guest-tcp:80"
    assert kvmnet(tmp_path, "plan", "--detailed-exitcode").returncode == 0

    # adopted by another state through its import ID, and then no change
    other = tmp_path / "other"
    other.mkdir()
    (other / "main.hcl").write_text(CONFIG6.format(kind=kind, netns=host))
    cp = kvmnet(other, "import", "port_forward.web6", "tcp6/8080")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    cp = kvmnet(other, "plan", "--detailed-exitcode")
    assert cp.returncode == 0, cp.stderr + cp.stdout

    # bad input: one clear error naming file, line and attribute; nothing changed
    before = ruleset_text(host)
    (tmp_path / "main.hcl").write_text(CONFIG6.format(kind=kind, netns=host).replace(
        '"2001:DB8:FF::/64"', '"198.18.0.0/24"'))
    cp = kvmnet(tmp_path, "plan")
    assert cp.returncode == 1
    [line] = cp.stderr.strip().splitlines()
    assert "main.hcl:11: port_forward.web6: source = " in line and "one address family" in line, line
    assert ruleset_text(host) == before

    (tmp_path / "main.hcl").write_text(CONFIG6.format(kind=kind, netns=host))
    cp = kvmnet(tmp_path, "destroy", "--auto-approve")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    assert connect(client, "tcp", HOST6, 8080).startswith("ERR:")
    assert "kvmnet" not in ruleset_text(host).lower()


# == with a real libvirtd: a NAT network with NATed IPv6 ===================================
# ``<nat ipv6='yes'/>`` makes libvirt masquerade the guests' IPv6 like their IPv4, and
# reject new inbound IPv6 connections in ip6tables' LIBVIRT_FWI exactly as for IPv4
# (without it libvirt routes IPv6 and lets inbound connections in).
NET6_XML = """<network><name>{name}</name><forward mode='nat'><nat ipv6='yes'/></forward>
<bridge name='{bridge}' stp='off' delay='0'/>
<ip address='192.168.214.1' netmask='255.255.255.0'/>
<ip family='ipv6' address='fd00:db8:213::1' prefix='64'/></network>"""
LV_GUEST6 = "fd00:db8:213::50"


@pytest.fixture
def libvirt_world6(libvirt, tmp_path):
    """A NAT network with IPv6 in the sandbox, a guest on its bridge, a client outside."""
    sb, host = libvirt, libvirt.netns
    tag = uuid.uuid4().hex[:6]
    name, bridge = f"f6{tag}", f"kv6{tag}"
    xml = tmp_path / "net.xml"
    xml.write_text(NET6_XML.format(name=name, bridge=bridge))
    sb.virsh("net-define", str(xml))
    sb.virsh("net-start", name)
    g, o = f"g{tag}", f"o{tag}"
    with netns("kfg") as guest, netns("kfc") as client:
        add_veth(host, g, "eth0", peer_ns=guest)
        in_ns(host, "ip", "link", "set", g, "master", bridge)
        add_veth(host, o, "eth0", peer_ns=client)
        addr6(host, f"{HOST6}/64", o)
        addr6(guest, f"{LV_GUEST6}/64", "eth0")
        addr6(client, f"{CLIENT6}/64", "eth0")
        in_ns(guest, "ip", "-6", "route", "add", "default", "via", "fd00:db8:213::1")
        settle6(host, guest, client)
        server = start_server(guest, [80])
        try:
            yield {"sandbox": sb, "network": name, "host": host, "guest": guest, "client": client}
        finally:
            server.kill()
            server.wait(timeout=5)
            for link in (g, o):
                in_ns(host, "ip", "link", "del", link, check=False)


def remove_forward_accept6(kind: str, ns: str) -> None:
    """Take away kvmnet's one rule in libvirt's IPv6 FORWARD chain, behind kvmnet's back."""
    if kind == "iptables":
        in_ns(ns, "ip6tables", "-D", "FORWARD", "-m", "comment", "--comment", "kvmnet:jump",
              "-j", "KVMNET_FORWARD")
        return
    doc = json.loads(in_ns(ns, "nft", "-j", "list", "chain", "ip6", "filter", "FORWARD").stdout)
    for item in doc["nftables"]:
        rule = item.get("rule")
        if rule and rule.get("comment") == "kvmnet:forward-accept":
            in_ns(ns, "nft", "delete", "rule", "ip6", "filter", "FORWARD", "handle", str(rule["handle"]))


def libvirt_reinserts_its_ip6_jumps(host: str) -> None:
    """What libvirt does when it sets its private chains up anew, with its commands."""
    for chain in ("LIBVIRT_FWX", "LIBVIRT_FWI", "LIBVIRT_FWO"):
        in_ns(host, "ip6tables", "-w", "--table", "filter", "--delete", "FORWARD", "--jump", chain)
    for chain in ("LIBVIRT_FWO", "LIBVIRT_FWI", "LIBVIRT_FWX"):
        in_ns(host, "ip6tables", "-w", "--table", "filter", "--insert", "FORWARD", "--jump", chain)


@pytest.mark.slow
@pytest.mark.parametrize("kind", PROVIDERS)
def test_ipv6_forward_into_libvirt_nat_guest(kind, libvirt_world6):
    w = libvirt_world6
    host, client = w["host"], w["client"]
    saved = in_ns(host, "ip6tables-save").stdout
    assert f"-A LIBVIRT_FWI -o kv6{w['network'][2:]} -j REJECT" in saved     # libvirt's reject is there
    p = PROVIDERS[kind]({"netns": host})
    web, dns = fwd(to=LV_GUEST6), fwd("udp", "5353", to=LV_GUEST6)
    managed = {"port_forward": [Managed("port_forward.web", "port_forward", "tcp6/8080", web)]}
    try:
        apply(p, [create("web", web), create("dns", dns)])
        assert connect(client, "tcp", HOST6, 8080) == "guest-tcp:80"
        assert connect(client, "udp", HOST6, 5353) == "guest-udp:80"
        assert connect(host, "tcp", HOST6, 8080) == "guest-tcp:80"              # from the host
        assert [c.ok for c in p.diagnose(managed)] == [True]

        # the evidence: the same DNAT without kvmnet's accept in libvirt's IPv6
        # FORWARD is refused by libvirt's ip6tables LIBVIRT_FWI reject
        remove_forward_accept6(kind, host)
        assert connect(client, "tcp", HOST6, 8080) == "ERR:ConnectionRefusedError"
        assert connect(client, "udp", HOST6, 5353).startswith("ERR:")
        assert p.read("port_forward", []) == {}                                 # drift
        apply(p, [create("web", web), create("dns", dns)])                      # repair
        assert connect(client, "tcp", HOST6, 8080) == "guest-tcp:80"
        assert connect(client, "udp", HOST6, 5353) == "guest-udp:80"

        # libvirt inserting its IPv6 jumps anew puts them ahead of kvmnet's rule:
        # refused, read reports it, doctor says why and names the IPv6 command
        libvirt_reinserts_its_ip6_jumps(host)
        assert connect(client, "tcp", HOST6, 8080) == "ERR:ConnectionRefusedError"
        assert p.read("port_forward", []) == {}
        [check] = p.diagnose(managed)
        assert not check.ok and "come before kvmnet's accept" in check.detail
        assert ("ip6tables -S FORWARD" if kind == "iptables" else "nft list chain ip6 filter FORWARD") in check.hint
        apply(p, [create("web", web), create("dns", dns)])                      # repair
        assert set(p.read("port_forward", [])) == {"tcp6/8080", "udp6/5353"}
        assert connect(client, "tcp", HOST6, 8080) == "guest-tcp:80"

        apply(p, [delete("web", web), delete("dns", dns)])
        assert connect(client, "tcp", HOST6, 8080).startswith("ERR:")
        assert "LIBVIRT_FWI" in in_ns(host, "ip6tables-save").stdout           # libvirt's intact
        assert "kvmnet" not in in_ns(host, "ip6tables-save").stdout.lower()
    finally:
        apply(p, [delete("web", web), delete("dns", dns)])
