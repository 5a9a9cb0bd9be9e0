"""Parallel apply (``--parallelism``) end to end through the CLI, against real bridges in
a throw-away namespace (iproute provider) and real NAT networks in the sandboxed
libvirtd: the same state and live result as a serial apply, each provider's
concurrency cap respected (counted through the ``KVMNET_TEST_CALL_LOG`` hook), and a
failure that stops new work while what already ran is recorded.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kvmnet.sandbox.netns import add_veth, in_ns
from kvmnet.state import open_state
from tests.e2e.helpers import run_kvmnet, write_config

pytestmark = pytest.mark.real

MARK_LINEAGE = re.compile(r"kvmnet:[0-9a-f-]+:")


def kvmnet(cfg: Path, *args: str, env: dict | None = None, rc: int = 0) -> tuple[str, str]:
    code, out, err = run_kvmnet(cfg, "--no-color", *args, state=cfg / "state.db", env=env, timeout=180)
    assert code == rc, f"kvmnet {' '.join(args)} exited {code}\n{out}\n{err}"
    return out, err


def state_attrs(cfg: Path, drop=()) -> dict:
    snap = open_state(cfg / "state.db").read()
    return {a: {k: v for k, v in r.attrs.items() if k not in drop} for a, r in snap.instances.items()}


def peak_calls(log: Path, provider: str) -> int:
    """Most calls of ``provider`` in flight at once, from the call log."""
    now = peak = 0
    for line in log.read_text().splitlines():
        what, who = line.split()
        if who == provider:
            now += 1 if what == "start" else -1
            peak = max(peak, now)
    return peak


# -- iproute: 20 bridges ----------------------------------------------------------------
BRIDGES = """
provider "iproute" {{
  netns = "{ns}"
}}

resource "bridge" "b" {{
  count      = 20
  name       = "b${{count.index}}"
  interfaces = ["p${{count.index}}"]
  addresses  = ["10.70.${{count.index}}.1/24"]
}}
"""


def live_bridges(ns: str) -> dict:
    links = json.loads(in_ns(ns, "ip", "-j", "-d", "link", "show").stdout)
    out = {}
    for link in links:
        kind = (link.get("linkinfo") or {}).get("info_kind")
        if kind == "bridge":
            addrs = json.loads(in_ns(ns, "ip", "-j", "addr", "show", "dev", link["ifname"]).stdout)
            out[link["ifname"]] = {
                "alias": MARK_LINEAGE.sub("kvmnet:L:", link.get("ifalias", "")),
                "ports": sorted(p["ifname"] for p in links if p.get("master") == link["ifname"]),
                "addresses": sorted(f"{a['local']}/{a['prefixlen']}" for a in addrs[0]["addr_info"]
                                    if a["family"] == "inet"),
            }
    return out


def bridges_cfg(tmp_path: Path, name: str, ns: str) -> Path:
    for i in range(20):
        add_veth(ns, f"p{i}", f"q{i}")
    cfg = tmp_path / name
    write_config(cfg, BRIDGES.format(ns=ns))
    return cfg


def test_parallel_bridges_match_a_serial_apply_and_destroy_cleanly(tmp_path, ns):
    from kvmnet.sandbox.netns import netns
    with netns("kpar") as ns2:
        serial, parallel = bridges_cfg(tmp_path, "serial", ns), bridges_cfg(tmp_path, "parallel", ns2)
        kvmnet(serial, "apply", "--auto-approve", "--parallelism=1")
        log = tmp_path / "calls.log"
        out, _ = kvmnet(parallel, "apply", "--auto-approve", "-parallelism=8",
                        env={"KVMNET_TEST_CALL_LOG": str(log)})
        assert "Apply complete! Resources: 20 added" in out
        assert len(live_bridges(ns)) == 20
        assert live_bridges(ns2) == live_bridges(ns)
        assert state_attrs(parallel) == state_attrs(serial)
        # the iproute provider takes one change at a time (netlink serialises on the
        # kernel's RTNL lock; threads were not reliably faster, benchmarks/README.md)
        assert peak_calls(log, "iproute") == 1
        kvmnet(parallel, "plan", "--detailed-exitcode")
        kvmnet(parallel, "destroy", "--auto-approve", "--parallelism=4")
        assert live_bridges(ns2) == {} and state_attrs(parallel) == {}


def test_parallelism_must_be_a_positive_number(tmp_path, ns):
    cfg = bridges_cfg(tmp_path, "zero", ns)
    code, out, err = run_kvmnet(cfg, "--no-color", "apply", "--auto-approve", "--parallelism=0",
                                state=cfg / "state.db")
    assert code == 1 and "Error:" in err and "--parallelism" in err and "0" in err
    assert live_bridges(ns) == {} and not (cfg / "state.db").exists()


# -- libvirt: NAT networks in the sandbox ------------------------------------------------
NETWORKS = """
provider "libvirt" {{
  uri = "{uri}"
}}

resource "network" "n" {{
  count  = {count}
  name   = "par${{count.index}}"
  mode   = "nat"
  bridge = "kvpar${{count.index}}"
  ip {{
    address = "10.71.${{count.index}}.1"
    prefix  = 24
    dhcp_range {{
      start = "10.71.${{count.index}}.100"
      end   = "10.71.${{count.index}}.200"
    }}
  }}
}}
{extra}"""

BAD = """
resource "network" "a_bad" {
  name   = "apar-bad"
  mode   = "nat"
  bridge = "kvparbad"
  ip {
    address = "10.72.0.1"
    prefix  = 24
  }
}
"""


def live_networks(sb) -> dict:
    conn = sb.connect()
    try:
        out = {}
        for net in conn.listAllNetworks(0):
            xml = re.sub(r"<uuid>.*?</uuid>|<mac address='[^']+'/>", "", net.XMLDesc(0))
            out[net.name()] = (bool(net.isActive()), MARK_LINEAGE.sub("kvmnet:L:", xml))
        return out
    finally:
        conn.close()


def test_parallel_networks_match_serial_and_respect_the_provider_cap(tmp_path, libvirt):
    cfg = tmp_path / "nets"
    write_config(cfg, NETWORKS.format(uri=libvirt.uri, count=8, extra=""))
    kvmnet(cfg, "apply", "--auto-approve", "--parallelism=1")
    # uuid and mac: libvirt generates them per definition
    serial_live, serial_state = live_networks(libvirt), state_attrs(cfg, drop=("uuid", "mac"))
    assert len(serial_live) == 8
    log = tmp_path / "destroy.log"
    kvmnet(cfg, "destroy", "--auto-approve", env={"KVMNET_TEST_CALL_LOG": str(log)})
    assert live_networks(libvirt) == {} and state_attrs(cfg) == {}
    # at most 4 at once (how many overlap depends on the consumer re-check before each
    # delete, which runs in the walk's thread)
    assert 1 <= peak_calls(log, "libvirt") <= 4

    log = tmp_path / "apply.log"
    out, _ = kvmnet(cfg, "apply", "--auto-approve", env={"KVMNET_TEST_CALL_LOG": str(log)})
    assert "Apply complete! Resources: 8 added" in out
    assert live_networks(libvirt) == serial_live
    assert state_attrs(cfg, drop=("uuid", "mac")) == serial_state
    assert 2 <= peak_calls(log, "libvirt") <= 4       # default 10, libvirt takes at most 4
    kvmnet(cfg, "plan", "--detailed-exitcode")


def test_a_failure_stops_new_work_and_what_ran_is_recorded(tmp_path, libvirt):
    # the first network in apply order cannot start: its subnet is taken by an interface
    libvirt.ip("link", "add", "taken0", "type", "bridge")
    libvirt.ip("addr", "add", "10.72.0.9/24", "dev", "taken0")
    libvirt.ip("link", "set", "taken0", "up")
    try:
        cfg = tmp_path / "fail"
        write_config(cfg, NETWORKS.format(uri=libvirt.uri, count=12, extra=BAD))
        code, out, err = run_kvmnet(cfg, "--no-color", "apply", "--auto-approve",
                                    state=cfg / "state.db", timeout=180)
        assert code == 1, out + err
        assert re.search(r"^Error: network\.a_bad: create failed: .*", err, re.M), err
        assert "not started:" in err
        live = live_networks(libvirt)
        recorded = {r["name"] for r in state_attrs(cfg).values()}
        assert "apar-bad" not in live
        assert set(live) == recorded                 # nothing live that the state does not know
        assert len(recorded) < 12                     # new work stopped at the failure
        not_started = re.search(r"not started: (.*?)\. The state records", err).group(1)
        assert len(not_started.split(", ")) >= 12 - len(recorded)
        # the state is right: the next plan wants exactly the rest
        write_config(cfg, NETWORKS.format(uri=libvirt.uri, count=12, extra=""))
        out, _ = kvmnet(cfg, "plan", "--detailed-exitcode", rc=2)
        assert f"Plan: {12 - len(recorded)} to add, 0 to change, 0 to destroy." in out
    finally:
        libvirt.ip("link", "del", "taken0", check=False)
