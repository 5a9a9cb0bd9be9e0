"""``kvmnet apply --probe`` against real namespaces (nftables and iproute providers):
a change that breaks a probe is reverted (the live system and the state as they were
before), a probe that failed before the change is not counted, user command probes
count like the built-in ones. The libvirt network probe is in
test_probes_libvirt.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kvmnet.sandbox.netns import add_veth, create_netns, delete_netns, in_ns, unique_name

pytestmark = [pytest.mark.real, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

# a TCP listener in the guest namespace; one line "ready" once it listens
SERVER = r"""
import socket, sys, threading, time
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, _ = s.accept(); c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
time.sleep(0.2); print("ready", flush=True); time.sleep(120)
"""

FORWARD = """\
provider "nftables" {{
  netns = "{ns}"
}}

resource "port_forward" "web" {{
  provider   = "nftables"
  protocol   = "tcp"
  host_port  = 8080
  to_address = "10.0.0.50"
  to_port    = {to_port}
}}
"""


def kvmnet(cfg: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_COLOR="1", XDG_CACHE_HOME=str(cfg.parent / "cache"))
    return subprocess.run([sys.executable, "-m", "kvmnet", "-C", str(cfg), "--no-color", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def state_resources(cfg: Path) -> list:
    cp = kvmnet(cfg, "show", "--json")
    assert cp.returncode == 0, cp.stderr
    return json.loads(cp.stdout)["values"]["root_module"].get("resources", [])


def history_statuses(cfg: Path) -> list[str]:
    import sqlite3
    with sqlite3.connect(cfg / "kvmnet.state.db") as db:
        return [r[0] for r in db.execute("SELECT status FROM history ORDER BY id")]


@pytest.fixture
def guest(ns):
    """A guest namespace behind the host's veth g0 (10.0.0.1 ↔ 10.0.0.50), listening
    on TCP 80 and 8081; the host has no default route."""
    g = create_netns(unique_name("kvg"))
    try:
        add_veth(ns, "g0", "g1", peer_ns=g)
        in_ns(ns, "ip", "addr", "add", "10.0.0.1/24", "dev", "g0")
        in_ns(g, "ip", "addr", "add", "10.0.0.50/24", "dev", "g1")
        server = subprocess.Popen(["ip", "netns", "exec", g, sys.executable, "-c", SERVER, "80", "8081"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout.readline().strip() == "ready"
            yield g
        finally:
            server.kill()
            server.wait(timeout=5)
    finally:
        delete_netns(g)


@pytest.fixture
def cfg(tmp_path):
    d = tmp_path / "cfg"
    d.mkdir()
    return d


def test_a_forward_to_a_port_nobody_listens_on_is_reverted(ns, guest, cfg):
    (cfg / "main.hcl").write_text(FORWARD.format(ns=ns, to_port=80))
    cp = kvmnet(cfg, "apply", "--auto-approve", "--probe")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    before_rules = in_ns(ns, "nft", "list", "ruleset").stdout
    before_state = state_resources(cfg)

    (cfg / "main.hcl").write_text(FORWARD.format(ns=ns, to_port=81))
    cp = kvmnet(cfg, "apply", "--auto-approve", "--probe", "--probe-timeout", "2s")
    assert cp.returncode == 1, cp.stdout
    assert "Error: probe forward port_forward.web: FAILED" in cp.stderr
    assert "rolled back" in cp.stderr
    # the gateway probe failed before the change (no default route): not counted
    assert "gateway (netns " in cp.stdout and "not counted" in cp.stdout
    assert in_ns(ns, "nft", "list", "ruleset").stdout == before_rules
    assert state_resources(cfg) == before_state
    assert history_statuses(cfg)[-1] == "rolled back"


def test_a_change_that_keeps_the_probes_passing_stays(ns, guest, cfg):
    (cfg / "main.hcl").write_text(FORWARD.format(ns=ns, to_port=80))
    assert kvmnet(cfg, "apply", "--auto-approve").returncode == 0
    (cfg / "main.hcl").write_text(FORWARD.format(ns=ns, to_port=8081))
    cp = kvmnet(cfg, "apply", "--auto-approve", "--probe")
    assert cp.returncode == 0, cp.stderr + cp.stdout
    assert "forward port_forward.web: ok" in cp.stdout
    assert "1 probe(s) that failed before the change not counted" in cp.stdout
    assert [r["values"]["to_port"] for r in state_resources(cfg)] == [8081]
    assert history_statuses(cfg)[-1] == "applied"
    assert kvmnet(cfg, "plan", "--detailed-exitcode").returncode == 0


BRIDGE = """\
provider "iproute" {{
  netns = "{ns}"
}}

resource "bridge" "up" {{
  provider   = "iproute"
  name       = "br-up"
  interfaces = ["p0"]
  addresses  = ["10.9.0.1/24"]
{route}}}
"""
DEFAULT_ROUTE = """  route {
    to  = "0.0.0.0/0"
    via = "10.9.0.254"
  }
"""


def test_removing_the_default_route_is_reverted(ns, cfg):
    gw = create_netns(unique_name("kvw"))
    try:
        add_veth(ns, "p0", "q0", peer_ns=gw)
        in_ns(gw, "ip", "addr", "add", "10.9.0.254/24", "dev", "q0")
        (cfg / "main.hcl").write_text(BRIDGE.format(ns=ns, route=DEFAULT_ROUTE))
        cp = kvmnet(cfg, "apply", "--auto-approve")
        assert cp.returncode == 0, cp.stderr + cp.stdout
        before_routes = in_ns(ns, "ip", "route", "show").stdout
        before_state = state_resources(cfg)

        (cfg / "main.hcl").write_text(BRIDGE.format(ns=ns, route=""))
        cp = kvmnet(cfg, "apply", "--auto-approve", "--probe", "--probe-timeout", "1s")
        assert cp.returncode == 1, cp.stdout
        assert f"gateway (netns {ns}): ok" in cp.stdout            # before the change
        assert f"Error: probe gateway (netns {ns}): FAILED: no default route" in cp.stderr
        assert in_ns(ns, "ip", "route", "show").stdout == before_routes
        assert state_resources(cfg) == before_state
        assert history_statuses(cfg)[-1] == "rolled back"
    finally:
        delete_netns(gw)


def test_a_user_command_probe_counts_only_if_it_passed_before(ns, guest, cfg, tmp_path):
    probes = tmp_path / "probes.hcl"
    reach_web = "import socket; socket.create_connection(('10.0.0.1', 8080), 1)"
    probes.write_text(f'''kvmnet {{
  probe "web" {{
    command = ["{sys.executable}", "-c", "{reach_web}"]
    netns   = "{ns}"
    timeout = "1s"
  }}
  probe "never" {{
    command = ["false"]
  }}
}}
''')
    (cfg / "main.hcl").write_text(FORWARD.format(ns=ns, to_port=80))
    assert kvmnet(cfg, "apply", "--auto-approve").returncode == 0
    # both user probes run; "never" failed before the change: not counted
    (cfg / "main.hcl").write_text(FORWARD.format(ns=ns, to_port=8081))
    cp = kvmnet(cfg, "apply", "--auto-approve", "--probe-file", str(probes))
    assert cp.returncode == 0, cp.stderr + cp.stdout
    assert "command web: ok" in cp.stdout and "command never: FAILED: exit 1" in cp.stdout
    # a change that breaks the user's probe is reverted
    (cfg / "main.hcl").write_text(FORWARD.format(ns=ns, to_port=81))
    cp = kvmnet(cfg, "apply", "--auto-approve", "--probe-file", str(probes), "--probe-timeout", "1s")
    assert cp.returncode == 1
    assert "Error: probe command web: FAILED" in cp.stderr
    assert "command never" not in cp.stderr
    assert [r["values"]["to_port"] for r in state_resources(cfg)] == [8081]


def test_a_bad_probe_file_is_refused_before_anything_changes(ns, cfg, tmp_path):
    probes = tmp_path / "probes.hcl"
    probes.write_text('kvmnet {\n  probe "x" {\n    command = "true"\n  }\n}\n')
    (cfg / "main.hcl").write_text(FORWARD.format(ns=ns, to_port=80))
    cp = kvmnet(cfg, "apply", "--auto-approve", "--probe-file", str(probes))
    assert cp.returncode == 1
    assert cp.stderr.startswith(f"Error: {probes}:3: probe \"x\": command: must be a non-empty list")
    assert state_resources(cfg) == []
    assert "port_forward" not in in_ns(ns, "nft", "list", "ruleset").stdout
