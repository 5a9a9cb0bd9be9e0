"""port_forward through the nftables and iptables providers, proven with real traffic.

Everything happens inside namespaces the tests create and delete: a "host"
namespace (the provider's ``netns``), a "guest" namespace behind it and a "client"
namespace outside it; with libvirt, the host is the namespace of a real libvirtd
that runs a NAT network, and the guest is joined to that network's bridge.
Addresses: 198.18.0.0/24 outside (a test range), 10.0.0.0/24 or 192.168.213.0/24
inside; no packet leaves the test's namespaces.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid

import pytest

from kvmnet.sdk.ownership import parse_mark
from kvmnet.sdk.provider import Change, ProviderError
from kvmnet.providers.iptables import IptablesProvider
from kvmnet.providers.nftables import NftablesProvider
from kvmnet.sandbox.netns import add_veth, in_ns, netns

pytestmark = [pytest.mark.real,
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

PROVIDERS = {"nftables": NftablesProvider, "iptables": IptablesProvider}
LINEAGE = str(uuid.uuid4())
OUTSIDE_HOST, OUTSIDE_CLIENT = "198.18.0.1", "198.18.0.2"

# -- traffic: a small TCP/UDP server in the guest, a client anywhere ------------------
# Each serves/asks once per call, with bounded lifetimes and timeouts; the reply names
# the port the packet reached, so a test sees the DNAT's port mapping too. The server
# answers IPv4 and IPv6 alike (test_forwards_ipv6.py uses these too).
SERVER = r"""
import socket, sys, threading, time
life = float(sys.argv[1]); ports = [int(p) for p in sys.argv[2:]]
def bound(kind, port):   # one dual-stack socket: IPv4 (as ::ffff:a.b.c.d) and IPv6
    s = socket.socket(socket.AF_INET6, kind); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0); s.bind(("::", port)); return s
def tcp(port):
    s = bound(socket.SOCK_STREAM, port); s.listen(16)
    while True:
        c, _ = s.accept(); c.sendall(b"guest-tcp:%d" % port); c.close()
def udp(port):
    s = bound(socket.SOCK_DGRAM, port)
    while True:
        _, a = s.recvfrom(100); s.sendto(b"guest-udp:%d" % port, a)
for p in ports:
    threading.Thread(target=tcp, args=(p,), daemon=True).start()
    threading.Thread(target=udp, args=(p,), daemon=True).start()
time.sleep(0.2); print("ready", flush=True); time.sleep(life)
"""

CLIENT = r"""
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
try:
    if proto == "tcp":
        s = socket.create_connection((host, port), timeout=2); print(s.recv(100).decode())
    else:
        s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(1.5)
        s.sendto(b"hi", (host, port)); print(s.recv(100).decode())
except OSError as e:
    print("ERR:" + type(e).__name__)
"""


def start_server(ns: str, ports: list[int], lifetime: int = 180) -> subprocess.Popen:
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, str(lifetime),
                          *map(str, ports)], stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    assert line.strip() == "ready", f"server did not start: {line!r}"
    return p


def connect(ns: str, proto: str, host: str, port: int) -> str:
    """The guest's reply, or ``ERR:<exception name>``."""
    cp = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, proto, host, str(port)],
                        capture_output=True, text=True, timeout=20)
    return cp.stdout.strip() or f"ERR:{cp.stderr.strip()}"


# -- forwards as the engine hands them over -----------------------------------------
def fwd(proto="tcp", host_port="8080", to="10.0.0.50", to_port=80, iif=None, source=None):
    return dict(protocol=proto, host_port=host_port, to_address=to, to_port=to_port,
                in_interface=iif, source=source, network=None)


def create(name: str, attrs: dict) -> Change:
    return Change("create", "port_forward", f"port_forward.{name}", None, attrs,
                  mark=f"kvmnet:{LINEAGE}:port_forward.{name}")


def delete(name: str, attrs: dict) -> Change:
    return Change("delete", "port_forward", f"port_forward.{name}", attrs, None)


def apply(provider, changes):
    return list(provider.apply(changes))


def ruleset_text(ns: str) -> str:
    return in_ns(ns, "nft", "list", "ruleset").stdout


def nft_rules(ns: str) -> list[str]:
    """Every rule of the namespace's ruleset (empty base chains that iptables-nft
    creates on its own when a table is first used are no rules)."""
    return [line.strip() for line in ruleset_text(ns).splitlines()
            if line.strip() and not line.strip().startswith(("table ", "chain ", "type ", "}"))]


def save_text(ns: str) -> str:
    return "\n".join(l for l in in_ns(ns, "iptables-save").stdout.splitlines() if not l.startswith("#"))


def remove_forward_accept(kind: str, ns: str) -> None:
    """Take away kvmnet's one rule in libvirt's FORWARD chain, behind kvmnet's back."""
    if kind == "iptables":
        in_ns(ns, "iptables", "-D", "FORWARD", "-m", "comment", "--comment", "kvmnet:jump",
              "-j", "KVMNET_FORWARD")
        return
    doc = json.loads(in_ns(ns, "nft", "-j", "list", "chain", "ip", "filter", "FORWARD").stdout)
    for item in doc["nftables"]:
        rule = item.get("rule")
        if rule and rule.get("comment") == "kvmnet:forward-accept":
            in_ns(ns, "nft", "delete", "rule", "ip", "filter", "FORWARD", "handle", str(rule["handle"]))


def delete_own_rule_behind_back(kind: str, ns: str, name: str) -> None:
    """Delete the DNAT rule of one forward (this module's lineage) with the stock tools."""
    delete_own_rule_behind_back_by_address(kind, ns, f"port_forward.{name}", LINEAGE)


def delete_own_rule_behind_back_by_address(kind: str, ns: str, address: str, lineage: str | None = None,
                                           family: int = 4) -> None:
    """Delete one forward's DNAT rule (IPv4 or IPv6) with the stock tools, behind kvmnet's back."""
    def ours(comment: str) -> bool:
        mark = parse_mark(comment)
        return bool(mark and mark.address == address and (lineage is None or mark.lineage == lineage))

    tool, nft_family = ("iptables", "ip") if family == 4 else ("ip6tables", "ip6")
    if kind == "iptables":
        for line in in_ns(ns, f"{tool}-save", "-t", "nat").stdout.splitlines():
            words = shlex.split(line)
            if words[:2] == ["-A", "KVMNET_PREROUTING"] and ours(words[words.index("--comment") + 1]):
                in_ns(ns, tool, "-t", "nat", "-D", *words[1:])
                return
        raise AssertionError("rule not found")
    doc = json.loads(in_ns(ns, "nft", "-j", "list", "chain", nft_family, "kvmnet", "port_forwards").stdout)
    for item in doc["nftables"]:
        rule = item.get("rule")
        if rule and ours(rule.get("comment", "")):
            in_ns(ns, "nft", "delete", "rule", nft_family, "kvmnet", "port_forwards", "handle", str(rule["handle"]))
            return
    raise AssertionError("rule not found")


# == without libvirt: host / guest / client namespaces ==================================
@pytest.fixture
def topology():
    """host ns (ip_forward=1) with a guest (10.0.0.50) behind it and a client outside."""
    with netns("kfh") as host, netns("kfg") as guest, netns("kfc") as client:
        add_veth(host, "tog", "eth0", peer_ns=guest)
        add_veth(host, "out0", "eth0", peer_ns=client)
        in_ns(host, "ip", "addr", "add", "10.0.0.1/24", "dev", "tog")
        in_ns(host, "ip", "addr", "add", f"{OUTSIDE_HOST}/24", "dev", "out0")
        in_ns(guest, "ip", "addr", "add", "10.0.0.50/24", "dev", "eth0")
        in_ns(guest, "ip", "route", "add", "default", "via", "10.0.0.1")
        in_ns(client, "ip", "addr", "add", f"{OUTSIDE_CLIENT}/24", "dev", "eth0")
        in_ns(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        server = start_server(guest, [80, 6000, 6001, 6002])
        try:
            yield {"host": host, "guest": guest, "client": client}
        finally:
            server.kill()
            server.wait(timeout=5)


@pytest.mark.parametrize("kind", PROVIDERS)
def test_forward_carries_traffic_and_delete_stops_it(kind, topology):
    host, client = topology["host"], topology["client"]
    p = PROVIDERS[kind]({"netns": host})
    web, dns = fwd(), fwd("udp", "5000-5002", to_port=6000, iif="out0")
    assert connect(client, "tcp", OUTSIDE_HOST, 8080).startswith("ERR:")
    results = apply(p, [create("web", web), create("dns", dns)])
    assert [r.attrs["host_port"] for r in results] == ["8080", "5000-5002"]

    assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:80"
    assert connect(client, "udp", OUTSIDE_HOST, 5001) == "guest-udp:6001"   # range maps 1:1
    # a connection made on the host itself, to its own address (output DNAT)
    assert connect(host, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:80"
    # the in_interface forward is for packets arriving on out0 only
    assert connect(host, "udp", OUTSIDE_HOST, 5001).startswith("ERR:")

    live = p.read("port_forward", ["tcp/8080", "udp/5000-5002"])
    assert set(live) == {"tcp/8080", "udp/5000-5002"}
    assert live["udp/5000-5002"].attrs == {k: v for k, v in dns.items() if k != "network"}
    assert live["tcp/8080"].mark.lineage == LINEAGE
    assert live["tcp/8080"].mark.address == "port_forward.web"

    apply(p, [delete("web", web)])
    assert connect(client, "tcp", OUTSIDE_HOST, 8080).startswith("ERR:")
    assert connect(host, "tcp", OUTSIDE_HOST, 8080).startswith("ERR:")
    assert connect(client, "udp", OUTSIDE_HOST, 5002) == "guest-udp:6002"
    apply(p, [delete("dns", dns)])
    assert p.read("port_forward", []) == {}
    assert "kvmnet" not in ruleset_text(host).lower()      # nothing of kvmnet is left


@pytest.mark.parametrize("kind", PROVIDERS)
def test_rule_deleted_behind_kvmnets_back_is_drift_and_reapply_repairs(kind, topology):
    host, client = topology["host"], topology["client"]
    p = PROVIDERS[kind]({"netns": host})
    web, other = fwd(), fwd("tcp", "8081")
    apply(p, [create("web", web), create("other", other)])
    delete_own_rule_behind_back(kind, host, "web")
    live = p.read("port_forward", ["tcp/8080", "tcp/8081"])
    assert set(live) == {"tcp/8081"}                      # web is reported missing
    assert connect(client, "tcp", OUTSIDE_HOST, 8080).startswith("ERR:")
    apply(p, [create("web", web)])                         # what the next plan does
    assert set(p.read("port_forward", [])) == {"tcp/8080", "tcp/8081"}
    assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:80"
    apply(p, [delete("web", web), delete("other", other)])


@pytest.mark.parametrize("kind", PROVIDERS)
def test_foreign_rules_untouched_and_second_apply_changes_nothing(kind, topology):
    host = topology["host"]
    p = PROVIDERS[kind]({"netns": host})
    # rules kvmnet does not own, in every place kvmnet writes to
    in_ns(host, "iptables", "-t", "nat", "-A", "PREROUTING", "-p", "tcp", "--dport", "9999",
          "-j", "DNAT", "--to-destination", "10.0.0.50:22")
    in_ns(host, "iptables", "-A", "FORWARD", "-s", "10.9.9.9/32", "-j", "DROP")
    in_ns(host, "nft", "add", "table", "ip", "someone")
    in_ns(host, "nft", "add", "chain", "ip", "someone", "c")
    in_ns(host, "nft", "add", "rule", "ip", "someone", "c", "tcp", "dport", "8080", "counter")
    before_nft, before_ipt = ruleset_text(host), save_text(host)

    web = fwd()
    apply(p, [create("web", web)])
    first_nft, first_ipt = ruleset_text(host), save_text(host)
    apply(p, [create("web", web)])                    # the same change again
    assert ruleset_text(host) == first_nft
    assert save_text(host) == first_ipt
    # no duplicates: nftables has one DNAT rule (both hooks jump to it), iptables
    # one per hook chain and one jump each
    if kind == "nftables":
        assert first_nft.count("dnat to 10.0.0.50:80") == 1
    else:
        assert first_ipt.count("--to-destination 10.0.0.50:80") == 2
        assert first_ipt.count("-j KVMNET_") == 3

    apply(p, [delete("web", web)])
    # every rule kvmnet did not write is exactly as before, and nothing of kvmnet is left
    assert nft_rules(host) == [l.strip() for l in before_nft.splitlines()
                               if l.strip() and not l.strip().startswith(("table ", "chain ", "type ", "}"))]
    assert save_text(host) == before_ipt


@pytest.mark.parametrize("kind", PROVIDERS)
def test_malformed_forward_is_refused_before_the_firewall_is_touched(kind, topology):
    host = topology["host"]
    p = PROVIDERS[kind]({"netns": host})
    before = ruleset_text(host)
    for bad in (fwd(to="10.0.0.500"), fwd(host_port="9000-8000"), fwd(to_port=70000),
                fwd(source="10.0.0.1/24"), fwd(proto="sctp"), fwd(iif="bad name")):
        with pytest.raises(ProviderError):
            apply(p, [create("bad", bad)])
    with pytest.raises(ProviderError, match="forwarded twice"):
        apply(p, [create("a", fwd(host_port="8000-8010")), create("b", fwd(host_port="8005"))])
    assert ruleset_text(host) == before


# == with a real libvirtd and a NAT network ==============================================
NET_XML = """<network><name>{name}</name><forward mode='nat'/>
<bridge name='{bridge}' stp='off' delay='0'/>
<ip address='192.168.213.1' netmask='255.255.255.0'/></network>"""
GUEST_IP = "192.168.213.50"


def _libvirt_world(sandbox, tmp_path):
    """A NAT network in the sandbox, a guest on its bridge, a client outside."""
    tag = uuid.uuid4().hex[:6]
    name, bridge = f"fw{tag}", f"kvf{tag}"
    xml = tmp_path / "net.xml"
    xml.write_text(NET_XML.format(name=name, bridge=bridge))
    sandbox.virsh("net-define", str(xml))
    sandbox.virsh("net-start", name)
    return name, bridge


@pytest.fixture
def libvirt_world(libvirt, tmp_path):
    sb = libvirt
    name, bridge = _libvirt_world(sb, tmp_path)
    host = sb.netns
    with netns("kfg") as guest, netns("kfc") as client:
        add_veth(host, f"g{name[2:]}", "eth0", peer_ns=guest)
        in_ns(host, "ip", "link", "set", f"g{name[2:]}", "master", bridge)
        add_veth(host, f"o{name[2:]}", "eth0", peer_ns=client)
        in_ns(host, "ip", "addr", "add", f"{OUTSIDE_HOST}/24", "dev", f"o{name[2:]}")
        in_ns(guest, "ip", "addr", "add", f"{GUEST_IP}/24", "dev", "eth0")
        in_ns(guest, "ip", "route", "add", "default", "via", "192.168.213.1")
        in_ns(client, "ip", "addr", "add", f"{OUTSIDE_CLIENT}/24", "dev", "eth0")
        server = start_server(guest, [80])
        try:
            yield {"sandbox": sb, "network": name, "host": host, "guest": guest, "client": client}
        finally:
            server.kill()
            server.wait(timeout=5)
            for link in (f"g{name[2:]}", f"o{name[2:]}"):
                in_ns(host, "ip", "link", "del", link, check=False)


def _libvirt_reinserts_its_jumps(host: str) -> None:
    """What libvirt does when it sets up its private chains again (a daemon start after
    a firewall reload): its jumps go to the top of FORWARD, with the very commands it runs."""
    for chain in ("LIBVIRT_FWX", "LIBVIRT_FWI", "LIBVIRT_FWO"):
        in_ns(host, "iptables", "-w", "--table", "filter", "--delete", "FORWARD", "--jump", chain)
    for chain in ("LIBVIRT_FWO", "LIBVIRT_FWI", "LIBVIRT_FWX"):
        in_ns(host, "iptables", "-w", "--table", "filter", "--insert", "FORWARD", "--jump", chain)


@pytest.mark.slow
@pytest.mark.parametrize("kind", PROVIDERS)
def test_forward_into_libvirt_nat_guest(kind, libvirt_world):
    w = libvirt_world
    host, client = w["host"], w["client"]
    p = PROVIDERS[kind]({"netns": host})
    web, dns = fwd(to=GUEST_IP), fwd("udp", "5353", to=GUEST_IP)
    try:
        apply(p, [create("web", web), create("dns", dns)])
        assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:80"
        assert connect(client, "udp", OUTSIDE_HOST, 5353) == "guest-udp:80"
        assert connect(client, "udp", OUTSIDE_HOST, 8080).startswith("ERR:")   # tcp only
        assert connect(host, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:80"      # from the host

        # the evidence: the same DNAT without kvmnet's forward-accept is refused by
        # libvirt's LIBVIRT_FWI reject ("connection refused" = its icmp-port-unreachable)
        remove_forward_accept(kind, host)
        assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "ERR:ConnectionRefusedError"
        assert connect(client, "udp", OUTSIDE_HOST, 5353).startswith("ERR:")
        assert p.read("port_forward", ["tcp/8080", "udp/5353"]) == {}          # drift
        apply(p, [create("web", web), create("dns", dns)])                     # repair
        assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:80"
        assert connect(client, "udp", OUTSIDE_HOST, 5353) == "guest-udp:80"
        apply(p, [delete("dns", dns)])

        # libvirt restarting the network keeps its jumps where they are ...
        w["sandbox"].virsh("net-destroy", w["network"])
        w["sandbox"].virsh("net-start", w["network"])
        in_ns(host, "ip", "link", "set", f"g{w['network'][2:]}", "master", f"kvf{w['network'][2:]}")
        assert set(p.read("port_forward", [])) == {"tcp/8080"}
        assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:80"
        # ... but when libvirt inserts its jumps anew, they land ahead of kvmnet's rule:
        _libvirt_reinserts_its_jumps(host)
        assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "ERR:ConnectionRefusedError"
        assert p.read("port_forward", ["tcp/8080"]) == {}                      # drift
        apply(p, [create("web", web)])                                         # repair
        assert set(p.read("port_forward", [])) == {"tcp/8080"}
        assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:80"

        apply(p, [delete("web", web)])
        assert connect(client, "tcp", OUTSIDE_HOST, 8080).startswith("ERR:")
        assert connect(host, "tcp", OUTSIDE_HOST, 8080).startswith("ERR:")
        assert "LIBVIRT_FWI" in save_text(host)                                # libvirt's intact
    finally:
        apply(p, [delete("web", web), delete("dns", dns)])


@pytest.mark.slow
@pytest.mark.parametrize("kind", PROVIDERS)
def test_forward_applied_before_libvirt_starts_its_first_network(kind, tmp_path):
    """libvirt creates its filter chains only with its first network: a forward applied
    earlier is then ineffective, which read reports, and a re-apply fixes."""
    if not __import__("shutil").which("libvirtd"):
        pytest.skip("libvirtd is not installed")
    from kvmnet.sandbox.libvirtd import LibvirtSandbox
    with LibvirtSandbox() as sb:
        host = sb.netns
        p = PROVIDERS[kind]({"netns": host})
        web = fwd(to=GUEST_IP)
        apply(p, [create("web", web)])
        assert set(p.read("port_forward", [])) == {"tcp/8080"}
        name, bridge = _libvirt_world(sb, tmp_path)
        with netns("kfg") as guest, netns("kfc") as client:
            add_veth(host, "gv0", "eth0", peer_ns=guest)
            in_ns(host, "ip", "link", "set", "gv0", "master", bridge)
            add_veth(host, "ov0", "eth0", peer_ns=client)
            in_ns(host, "ip", "addr", "add", f"{OUTSIDE_HOST}/24", "dev", "ov0")
            in_ns(guest, "ip", "addr", "add", f"{GUEST_IP}/24", "dev", "eth0")
            in_ns(guest, "ip", "route", "add", "default", "via", "192.168.213.1")
            in_ns(client, "ip", "addr", "add", f"{OUTSIDE_CLIENT}/24", "dev", "eth0")
            server = start_server(guest, [80])
            try:
                if kind == "nftables":
                    # libvirt's new FORWARD chain rejects what kvmnet's own table lets by
                    assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "ERR:ConnectionRefusedError"
                    assert p.read("port_forward", []) == {}
                else:
                    # iptables' FORWARD jump was there first; libvirt's go ahead of it
                    assert p.read("port_forward", []) == {}
                apply(p, [create("web", web)])
                assert set(p.read("port_forward", [])) == {"tcp/8080"}
                assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:80"
                apply(p, [delete("web", web)])
            finally:
                server.kill()
                server.wait(timeout=5)


# == through the CLI: plan, apply, drift, repair, destroy ==================================
CONFIG = """\
provider "{kind}" {{
  netns = "{netns}"
}}

resource "port_forward" "web" {{
  provider   = "{kind}"
  protocol   = "tcp"
  host_port  = 8080
  to_address = "10.0.0.50"
  to_port    = 80
}}
"""


def kvmnet(config_dir, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvmnet", "-C", str(config_dir), "--no-color", *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("kind", PROVIDERS)
def test_cli_life_cycle_with_drift(kind, topology, tmp_path):
    host, client = topology["host"], topology["client"]
    (tmp_path / "main.hcl").write_text(CONFIG.format(kind=kind, netns=host))
    cp = kvmnet(tmp_path, "apply", "--auto-approve")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:80"
    assert kvmnet(tmp_path, "plan", "--detailed-exitcode").returncode == 0

    # kvmnet's rule deleted behind its back: the cron's drift check sees it
    delete_own_rule_behind_back_by_address(kind, host, "port_forward.web")
    cp = kvmnet(tmp_path, "plan", "--detailed-exitcode")
    assert cp.returncode == 2 and "port_forward.web" in cp.stdout, cp.stdout + cp.stderr
    assert kvmnet(tmp_path, "apply", "--auto-approve").returncode == 0
    assert connect(client, "tcp", OUTSIDE_HOST, 8080) == "guest-tcp:80"
    assert kvmnet(tmp_path, "plan", "--detailed-exitcode").returncode == 0

    cp = kvmnet(tmp_path, "destroy", "--auto-approve")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    assert connect(client, "tcp", OUTSIDE_HOST, 8080).startswith("ERR:")
    assert "kvmnet" not in ruleset_text(host).lower()
