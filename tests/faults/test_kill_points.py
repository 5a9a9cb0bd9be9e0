"""SIGKILL at every kill point, for every provider: the next ``kvmnet apply``
converges with no manual step.

For each provider a multi-resource config is applied once in counting mode
(``KVMNET_KILL_LOG``) to list the kill points it passes, in order; then, for every
one of them, a fresh apply is SIGKILLed there (``KVMNET_KILL_AT=N``), and

* ``kvmnet apply`` runs again and succeeds,
* the plan after it shows no changes,
* what is live is what the uninterrupted apply made (no duplicate, no leftover
  under a temporary name, nothing missing),
* ``kvmnet destroy`` leaves what was there before.

Plus a few SIGKILLs after a random delay (fixed seed), and a same-named object made
by hand after a killed create, which must be a conflict, never adopted.

Each kvmnet run is the real CLI, forked from this (already imported) process so a
run costs its work, not an interpreter start. Real components: a network namespace
per test (iproute, netplan with ``apply = true``, sysctl, nftables, iptables; temp
dirs for netplan's root and sysctl's persist files) and the session's libvirtd
sandbox (networks and a NIC on a shut-off domain).
"""
from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from kvmnet.sandbox.netns import in_ns
from kvmnet.sdk import killpoints
from tests.conftest import requires_root
from tests.e2e.helpers import write_config

pytestmark = [requires_root, pytest.mark.real]


def builtin_providers() -> dict[str, type]:
    """Every built-in provider class, by name (importing a class registers its
    kill points)."""
    from kvmnet.engine.registry import plugins
    return {name: p.load() for name, p in plugins().items()
            if p.provider.startswith("kvmnet.providers.")}


def _preload() -> None:
    """Import once here what every forked run needs (the walk registers its kill
    points at import; the parent reads their owners)."""
    import kvmnet.cli  # noqa: F401
    import kvmnet.commands.applying  # noqa: F401
    import kvmnet.commands.core  # noqa: F401  (commands load on first use: apply's, once here)
    import kvmnet.engine.walk  # noqa: F401
    import kvmnet.engine.plan.planner  # noqa: F401
    import kvmnet.state.sqlite  # noqa: F401
    import hcl2  # noqa: F401
    import jsonschema  # noqa: F401
    import networkx  # noqa: F401
    import pyroute2  # noqa: F401
    import sqlite_utils  # noqa: F401
    builtin_providers()


_preload()

PROVIDERS = ("iproute", "netplan", "sysctl", "nftables", "iptables", "libvirt")
LINEAGE = re.compile(r"kvmnet:[0-9a-f-]{36}:")


# -- the CLI, forked ----------------------------------------------------------------

def fork_cli(argv: list[str], env: dict[str, str], out: Path) -> tuple[int, int]:
    """Start ``kvmnet ARGV`` in a forked child (stdout+stderr to ``out``); (pid, fd)."""
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    pid = os.fork()
    if pid == 0:                                    # the child: never returns
        code = 1
        try:
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)
            sys.argv = ["kvmnet", *argv]          # what the lock records as its command
            os.environ.update(env)
            from kvmnet.cli import main
            code = main(argv)
        finally:
            try:
                sys.stdout.flush()
            finally:
                os._exit(code)
    return pid, fd


def wait_cli(pid: int, fd: int) -> int:
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


@dataclass
class Env:
    cfg: Path
    state: Path
    tmp: Path

    def argv(self, *args: str) -> list[str]:
        return ["-C", str(self.cfg), "--state", str(self.state), "--no-color", *args]

    def k(self, *args: str, **env: str) -> tuple[int, str]:
        out = self.tmp / "out.txt"
        rc = wait_cli(*fork_cli(self.argv(*args), {"NO_COLOR": "1", **env}, out))
        return rc, out.read_text()

    def ok(self, *args: str, **env: str) -> str:
        rc, text = self.k(*args, **env)
        assert rc == 0, f"kvmnet {' '.join(args)} exited {rc}\n{text}"
        return text

    def open_intents(self) -> int:
        if not self.state.exists():
            return 0
        with sqlite3.connect(self.state) as db:
            if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'intents'").fetchone():
                return 0
            return db.execute("SELECT count(*) FROM intents").fetchone()[0]


# -- per provider: a config and a normalised view of what is live ---------------------

@dataclass
class Scenario:
    provider: str
    config: str
    live: Callable[[], object]


def _links(ns: str):
    """Bridges/vlans (any name: a leftover under a temporary name shows), with
    their mark's address and their addresses."""
    links = json.loads(in_ns(ns, "ip", "-j", "-d", "addr", "show").stdout or "[]")
    return sorted((l["ifname"], LINEAGE.sub("kvmnet:L:", l.get("ifalias") or ""),
                   sorted(a["local"] for a in l.get("addr_info", []) if a.get("family") == "inet"))
                  for l in links if (l.get("linkinfo") or {}).get("info_kind") in ("bridge", "vlan"))


def _files(directory: Path):
    if not directory.exists():
        return []
    return sorted((str(p.relative_to(directory)), LINEAGE.sub("kvmnet:L:", p.read_text()))
                  for p in directory.rglob("*") if p.is_file())


BRIDGES = """
resource "bridge" "a" {{
  provider  = "{p}"
  name      = "kvka0"
  addresses = ["10.91.0.1/24"]
}}
resource "bridge" "b" {{
  provider  = "{p}"
  name      = "kvkb0"
  addresses = ["10.92.0.1/24"]
}}
"""

FORWARDS = """
resource "port_forward" "web" {{
  provider   = "{p}"
  protocol   = "tcp"
  host_port  = 8080
  to_address = "10.0.0.50"
  to_port    = 80
}}
resource "port_forward" "dns" {{
  provider   = "{p}"
  protocol   = "udp"
  host_port  = 5353
  to_address = "10.0.0.53"
  to_port    = 53
}}
"""

SYSCTL_KEYS = {"net.ipv4.tcp_fin_timeout": 33, "net.ipv4.tcp_syn_retries": 4,
               "net.core.somaxconn": 1234}

SYSCTLS = """
resource "sysctl_profile" "a" {
  settings = { "net.ipv4.tcp_fin_timeout" = 33, "net.ipv4.tcp_syn_retries" = 4 }
}
resource "sysctl_profile" "b" {
  settings = { "net.core.somaxconn" = 1234 }
}
"""


def host_scenario(provider: str, ns: str, tmp: Path) -> Scenario:
    if provider == "iproute":
        head = f'provider "iproute" {{\n  netns = "{ns}"\n}}\n'
        return Scenario(provider, head + BRIDGES.format(p=provider), lambda: _links(ns))
    if provider == "netplan":
        root = tmp / "netplan-root"
        head = f'provider "netplan" {{\n  netns    = "{ns}"\n  root_dir = "{root}"\n  apply    = true\n}}\n'
        return Scenario(provider, head + BRIDGES.format(p=provider),
                        lambda: (_links(ns), _files(root)))
    if provider == "sysctl":
        persist = tmp / "sysctl.d"
        head = f'provider "sysctl" {{\n  netns       = "{ns}"\n  persist_dir = "{persist}"\n}}\n'

        def live():
            values = in_ns(ns, "sysctl", "-n", *SYSCTL_KEYS).stdout.split()
            return values, _files(persist)
        return Scenario(provider, head + SYSCTLS, live)
    head = f'provider "{provider}" {{\n  netns = "{ns}"\n}}\n'
    if provider == "nftables":
        def live():
            text = in_ns(ns, "nft", "list", "ruleset").stdout
            return sorted(LINEAGE.sub("kvmnet:L:", re.sub(r"# handle \d+", "", line)).strip()
                          for line in text.splitlines() if "kvmnet" in line)
    else:
        def live():
            text = in_ns(ns, "iptables-save").stdout
            return sorted(LINEAGE.sub("kvmnet:L:", line) for line in text.splitlines()
                          if "kvmnet" in line.lower() and not line.startswith("#"))
    return Scenario(provider, head + FORWARDS.format(p=provider), live)


DOMAIN = "kvk-dom"
LIBVIRT = """
resource "network" "ka" {{
  mode   = "isolated"
  bridge = "kvkn0"
}}
resource "network" "kb" {{
  mode   = "isolated"
  bridge = "kvkn1"
}}
resource "nic_attachment" "n" {{
  domain  = "{dom}"
  network = network.kb.name
  live    = false
}}
"""


def libvirt_scenario(sb) -> Scenario:
    import libvirt as lv
    from xml.etree import ElementTree as ET

    def live():
        conn = sb.connect()
        try:
            nets = sorted((n.name(), bool(n.isActive()), bool(n.isPersistent()),
                           bool(n.autostart())) for n in conn.listAllNetworks(0))
            dom = ET.fromstring(conn.lookupByName(DOMAIN).XMLDesc(lv.VIR_DOMAIN_XML_INACTIVE))
            nics = sorted(s.get("network") or "" for s in dom.findall("devices/interface/source"))
            marks = len(dom.findall(".//{*}nic"))
            return nets, nics, marks
        finally:
            conn.close()
    head = f'provider "libvirt" {{\n  uri = "{sb.uri}"\n}}\n'
    return Scenario("libvirt", head + LIBVIRT.format(dom=DOMAIN), live)


# -- fixtures ---------------------------------------------------------------------------

@pytest.fixture
def env(tmp_path) -> Env:
    return Env(tmp_path / "cfg", tmp_path / "kvmnet.state.db", tmp_path)


@pytest.fixture
def kvk_domain(libvirt):
    """A shut-off domain to hang NICs on (never started: no guest image needed)."""
    from kvmnet.sandbox.guest import domain_xml
    conn = libvirt.connect()
    try:
        conn.defineXML(domain_xml(DOMAIN, "/nonexistent/vmlinuz", "/nonexistent/initrd",
                                  "/nonexistent/console.log"))
    finally:
        conn.close()
    return libvirt


@pytest.fixture
def scenario(request, tmp_path):
    provider = request.param
    if provider == "libvirt":
        return libvirt_scenario(request.getfixturevalue("kvk_domain"))
    return host_scenario(provider, request.getfixturevalue("ns"), tmp_path)


# -- checks -----------------------------------------------------------------------------

def converges(env: Env, sc: Scenario, expected, baseline, what: str) -> None:
    """The re-run applies cleanly, the plan is empty, live is as expected, no intent
    is left open, and destroy leaves what was there before."""
    rc, out = env.k("apply", "--auto-approve")
    assert rc == 0, f"{what}: the re-run of apply failed ({rc})\n{out}"
    rc, out = env.k("plan", "--detailed-exitcode")
    assert rc == 0, f"{what}: the plan after the re-run is not empty ({rc})\n{out}"
    assert sc.live() == expected, f"{what}: live differs from an uninterrupted apply"
    assert env.open_intents() == 0, f"{what}: intents left open"
    rc, out = env.k("destroy", "--auto-approve")
    assert rc == 0, f"{what}: destroy failed ({rc})\n{out}"
    assert sc.live() == baseline, f"{what}: destroy left something behind"


def kill_targets(hits: list[str]) -> list[tuple[int, str]]:
    """(N, point) to kill at: every hit of the walk's points (one per change: the
    state after the first change differs from the state after the second) and the
    first hit of each provider point (its later hits are the same step of the
    same code for the next resource)."""
    seen: set[str] = set()
    out = []
    for n, point in enumerate(hits, 1):
        if killpoints.owner_of(point) == "walk" or point not in seen:
            out.append((n, point))
        seen.add(point)
    return out


def counted_apply(env: Env, sc: Scenario) -> tuple[list[str], object, object]:
    """(kill points an uninterrupted apply passes, live after it, live before it)."""
    baseline = sc.live()
    log = env.tmp / "hits"
    env.ok("apply", "--auto-approve", **{killpoints.LOG_ENV: str(log)})
    hits = log.read_text().split()
    expected = sc.live()
    env.ok("destroy", "--auto-approve")
    assert sc.live() == baseline
    return hits, expected, baseline


# -- the tests -------------------------------------------------------------------------

def test_every_provider_registers_kill_points():
    """Each built-in provider has kill points and a scenario below (a new provider
    without either fails here)."""
    found = builtin_providers()
    assert sorted(found) == sorted(PROVIDERS)
    for name in found:
        assert killpoints.points(name), f"provider {name} has no kill point"
    assert killpoints.points("walk")


@pytest.mark.parametrize("scenario", PROVIDERS, indirect=True)
def test_killed_at_every_kill_point_the_next_apply_converges(scenario, env):
    sc = scenario
    write_config(env.cfg, sc.config)
    hits, expected, baseline = counted_apply(env, sc)
    own = [h for h in hits if killpoints.owner_of(h) == sc.provider]
    assert own, f"the apply passed no kill point of {sc.provider}: {hits}"
    assert expected != baseline
    for n, point in kill_targets(hits):
        what = f"killed at hit {n} ({point})"
        rc, out = env.k("apply", "--auto-approve", **{killpoints.AT_ENV: str(n)})
        assert rc == -signal.SIGKILL, f"{what}: not killed ({rc})\n{out}"
        converges(env, sc, expected, baseline, what)


@pytest.mark.parametrize("scenario", ["iproute", "libvirt"], indirect=True)
def test_killed_after_a_random_delay_the_next_apply_converges(scenario, env):
    sc = scenario
    write_config(env.cfg, sc.config)
    baseline = sc.live()
    start = time.monotonic()
    env.ok("apply", "--auto-approve")
    took = time.monotonic() - start
    expected = sc.live()
    env.ok("destroy", "--auto-approve")
    rnd = random.Random(10)
    for _ in range(2):
        delay = rnd.uniform(0.2, 1.0) * took
        pid, fd = fork_cli(env.argv("apply", "--auto-approve"), {}, env.tmp / "out.txt")
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        wait_cli(pid, fd)
        converges(env, sc, expected, baseline, f"killed after {delay:.2f}s")


@pytest.mark.parametrize("scenario", ["iproute"], indirect=True)
def test_a_same_named_link_made_by_hand_after_a_killed_create_is_a_conflict(scenario, env, ns):
    """Killed before the bridge got its name: the next plan must not take a bridge
    of that name made by hand meanwhile; apply refuses, nothing changes."""
    write_config(env.cfg, scenario.config)
    rc, _ = env.k("apply", "--auto-approve", **{killpoints.AT_ENV: "iproute.link-created:1"})
    assert rc == -signal.SIGKILL
    in_ns(ns, "ip", "link", "add", "kvka0", "type", "bridge")
    rc, out = env.k("plan")
    assert rc == 1, out
    assert re.search(r'main\.hcl:\d+: bridge\.a: bridge "kvka0" exists, but it is not the object '
                     r"that an interrupted kvmnet create began \(intent \d+ of [^)]*\): it has no "
                     r"kvmnet mark", out), out
    before = scenario.live()
    rc, out = env.k("apply", "--auto-approve")
    assert rc == 1 and "not the object that an interrupted" in out, out
    assert scenario.live() == before
    assert env.open_intents() >= 1
