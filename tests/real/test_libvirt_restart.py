"""The ``restart`` plan action for a network (issue 11, item 4), against the real
sandboxed libvirtd, through the CLI: a new address on the network's ``ip`` is an
update that redefines and restarts it (same UUID, running again, the plan shows it
as a restart in text, JSON and Markdown); a running guest on the network refuses it,
a shut-off one does not.
"""
from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.helpers import run_kvmnet, write_config

NET = """
resource "network" "rs" {{
  mode   = "nat"
  bridge = "kvrs0"
  ip {{
    address = "{address}"
    prefix  = 24
  }}
}}
"""
GUEST = "g-restart"


class Env:
    def __init__(self, sb, tmp_path: Path):
        self.sb, self.cfg, self.state = sb, tmp_path / "cfg", tmp_path / "s.db"

    def write(self, address: str) -> None:
        write_config(self.cfg, f'provider "libvirt" {{\n  uri = "{self.sb.uri}"\n}}\n'
                     + NET.format(address=address))

    def k(self, *args):
        return run_kvmnet(self.cfg, "--no-color", *args, state=self.state, timeout=120)


def _ip_of(sb, name: str) -> str:
    import xml.etree.ElementTree as ET
    conn = sb.connect()
    try:
        return ET.fromstring(conn.networkLookupByName(name).XMLDesc(0)).find("ip").get("address")
    finally:
        conn.close()


def test_restart_action_and_its_consumer_rule(libvirt, guest_image, tmp_path):
    from kvmnet.sandbox.guest import define_guest
    sb = libvirt
    env = Env(sb, tmp_path)
    env.write("10.64.0.1")
    rc, out, err = env.k("apply", "--auto-approve")
    assert rc == 0, out + err
    conn = sb.connect()
    uuid = conn.networkLookupByName("rs").UUIDString()

    define_guest(sb, GUEST, guest_image, network="rs")
    conn.lookupByName(GUEST).create()                    # running on the network
    env.write("10.64.1.1")
    rc, out, err = env.k("plan")
    assert rc == 1, out + err
    assert "network.rs is in use by domain(s) g-restart (running)" in err, err
    assert "cannot be restarted" in err, err

    conn.lookupByName(GUEST).destroy()                   # shut off: a restart is fine
    rc, out, err = env.k("plan")
    assert rc == 0, out + err
    assert "network.rs will be updated and restarted" in out, out
    assert "# forces restart" in out and "forces replacement" not in out, out
    assert "1 to change, 0 to destroy" in out, out
    rc, out, err = env.k("plan", "--json")
    change = next(c for c in json.loads(out)["resource_changes"] if c["address"] == "network.rs")
    assert change["actions"] == ["update"] and change["action"] == "restart", change
    # ``ip.address`` (v1 shape) or ``ip[0].address`` (ip blocks repeat)
    paths = change["change"]["restart_paths"]
    assert len(paths) == 1 and paths[0][0] in ("ip", "ip[0]") and paths[0][1:] == ["address"], change
    rc, out, err = env.k("plan", "--format", "markdown")
    assert "🔁 update and restart | `network.rs` | `ip" in out, out

    rc, out, err = env.k("apply", "--auto-approve")
    assert rc == 0, out + err
    net = conn.networkLookupByName("rs")
    assert net.UUIDString() == uuid and net.isActive()
    assert _ip_of(sb, "rs") == "10.64.1.1"
    assert "10.64.1.1/24" in sb.ip("-br", "addr", "show", "kvrs0").stdout
    rc, out, err = env.k("plan", "--detailed-exitcode")
    assert rc == 0, out + err
    conn.close()


def test_failed_restart_puts_old_network_back(libvirt, tmp_path):
    import libvirt as lv
    sb = libvirt
    env = Env(sb, tmp_path)
    env.write("10.64.0.1")
    rc, out, err = env.k("apply", "--auto-approve")
    assert rc == 0, out + err
    conn = sb.connect()
    net = conn.networkLookupByName("rs")
    uuid, old = net.UUIDString(), net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)
    # the new subnet is routed on another link already: libvirt refuses to start on it
    sb.ip("link", "add", "kvrsx", "type", "bridge")
    try:
        sb.ip("addr", "add", "10.64.2.5/24", "dev", "kvrsx")
        sb.ip("link", "set", "kvrsx", "up")
        env.write("10.64.2.1")
        rc, out, err = env.k("apply", "--auto-approve")
        assert rc == 1, out + err
        assert err.count("Error:") == 1 and "the old network is back as it was" in err, err
        net = conn.networkLookupByName("rs")
        assert net.UUIDString() == uuid and net.isActive() and net.autostart()
        assert net.XMLDesc(lv.VIR_NETWORK_XML_INACTIVE) == old
        assert _ip_of(sb, "rs") == "10.64.0.1"
        env.write("10.64.0.1")
        rc, out, err = env.k("plan", "--detailed-exitcode")
        assert rc == 0, out + err
    finally:
        sb.ip("link", "del", "kvrsx", check=False)
        conn.close()


def test_restart_leaves_running_guests_taps_off_the_bridge(libvirt, guest_image):
    """Why a restart is refused while guests run: libvirt 9.0 does not put a running
    guest's tap back on the bridge when the network starts again (so the guest would
    not lose seconds but its link, until it is re-attached)."""
    import time
    from kvmnet.sandbox.guest import define_guest
    sb = libvirt
    conn = sb.connect()
    net = conn.networkDefineXML("<network><name>rs-taps</name><forward mode='nat'/>"
                                "<bridge name='kvrst0'/><ip address='10.64.5.1' prefix='24'/></network>")
    net.create()
    define_guest(sb, GUEST, guest_image, network="rs-taps")
    conn.lookupByName(GUEST).create()
    assert "vnet" in sb.ip("-br", "link", "show", "master", "kvrst0").stdout
    net.destroy()
    net.create()
    time.sleep(3)
    assert sb.ip("-br", "link", "show", "master", "kvrst0").stdout.strip() == ""
    assert "vnet" in sb.ip("-br", "link").stdout          # the tap is still there, unbridged
    conn.close()
