"""A network replace never leaves the host without its network (issue 11, item 3),
against the real sandboxed libvirtd.

- libvirt refuses the new definition (``mtu`` on a bridge-mode network): the check
  under a temporary name stops the replace before the old network goes, and leaves
  no temporary network behind;
- the create fails only at apply (the new bridge name taken by a link made after
  the plan): the old network is back with the same UUID, byte-equal saved XML,
  running and autostarted as before, and the state still holds it.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from kvmnet.providers.libvirt import safe_replace
from tests.e2e.helpers import run_kvmnet, write_config

NET = """
resource "network" "sr" {{
  mode   = "nat"
  bridge = "{bridge}"
  ip {{
    address = "10.63.0.1"
    prefix  = 24
    dhcp_range {{
      start = "10.63.0.100"
      end   = "10.63.0.200"
    }}
  }}
}}
"""


def _inactive_xml(conn, name: str) -> str:
    import libvirt as lv
    return conn.networkLookupByName(name).XMLDesc(lv.VIR_NETWORK_XML_INACTIVE)


def test_libvirt_refuses_new_definition_before_old_goes(libvirt):
    from kvmnet.providers.libvirt.provider import LibvirtProvider
    from kvmnet.sdk.provider import ProviderError
    sb = libvirt
    sb.ip("link", "add", "kvsrbr", "type", "bridge")
    p = LibvirtProvider({"uri": sb.uri})
    try:
        before = {"name": "srbr", "mode": "bridge", "bridge": "kvsrbr", "autostart": True}
        p.create("network", "network.srbr", before, "")
        conn = sb.connect()
        old = _inactive_xml(conn, "srbr")
        with pytest.raises(ProviderError, match="libvirt refuses the new definition.*left as it is"):
            p.before_replace("network", "network.srbr", before, dict(before, mtu=1400))
        assert _inactive_xml(conn, "srbr") == old
        assert conn.networkLookupByName("srbr").isActive()
        names = [n.name() for n in conn.listAllNetworks(0)]
        assert not [n for n in names if n.startswith(safe_replace.PROBE_PREFIX)], names
        conn.close()
    finally:
        p.close()
        sb.ip("link", "del", "kvsrbr", check=False)


def test_failed_create_puts_old_network_back(libvirt, tmp_path: Path):
    sb = libvirt
    cfg, state, planfile = tmp_path / "cfg", tmp_path / "s.db", tmp_path / "plan.json"

    def write(bridge):
        write_config(cfg, f'provider "libvirt" {{\n  uri = "{sb.uri}"\n}}\n' + NET.format(bridge=bridge))

    def k(*args):
        return run_kvmnet(cfg, "--no-color", *args, state=state, timeout=120)

    write("kvsr0")
    rc, out, err = k("apply", "--auto-approve")
    assert rc == 0, out + err
    conn = sb.connect()
    net = conn.networkLookupByName("sr")
    old_xml, old_uuid = _inactive_xml(conn, "sr"), net.UUIDString()
    assert net.isActive() and net.autostart()

    write("kvsr1")
    rc, out, err = k("plan", "--out", str(planfile))
    assert rc == 0, out + err
    assert "replace" in out
    sb.ip("link", "add", "kvsr1", "type", "bridge")    # taken after the plan (no dummy module here)
    try:
        rc, out, err = k("apply", str(planfile))
        assert rc == 1, out + err
        assert err.count("Error:") == 1 and "back as it was" in err, err
        net = conn.networkLookupByName("sr")
        assert net.UUIDString() == old_uuid
        assert _inactive_xml(conn, "sr") == old_xml
        assert net.isActive() and net.autostart()
        assert "kvsr0" in sb.ip("-br", "link", "show", "kvsr0").stdout
        rc, out, err = k("state", "list")
        assert rc == 0 and "network.sr" in out, out + err
        write("kvsr0")                                 # the state matches what is live
        rc, out, err = k("plan", "--detailed-exitcode")
        assert rc == 0, out + err
    finally:
        sb.ip("link", "del", "kvsr1", check=False)
        conn.close()


def test_probe_xml_has_its_own_name_uuid_bridge_and_mac():
    xml = ("<network><name>lab</name><uuid>0b6f2a1e-0000-4000-8000-000000000001</uuid>"
           "<bridge name='virbr7' stp='on'/><mac address='52:54:00:aa:bb:cc'/>"
           "<ip address='10.1.0.1' prefix='24'/></network>")
    out = safe_replace.probe_xml(xml, "1a2b3c4d")
    assert "<name>kvmnet-probe-1a2b3c4d</name>" in out
    assert "uuid" not in out and "52:54:00:aa:bb:cc" not in out
    assert "name=\"kvp1a2b3c4d\"" in out and "stp=\"on\"" in out
    assert "10.1.0.1" in out
