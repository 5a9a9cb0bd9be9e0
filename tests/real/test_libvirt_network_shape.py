"""issue 11 through the real CLI and a real libvirtd: a hand-made network with what
v1 did not model (IPv6, DNS hosts, a route, port isolation, someone else's
metadata) is imported, and a replace its config forces (mtu) keeps all of it: the
plan says "kept as found", the new definition has every element again."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.e2e.helpers import run_kvmnet, write_config

HANDMADE = """<network>
  <name>keep1</name>
  <metadata><app:note xmlns:app="urn:example:app">owned by the lab team</app:note></metadata>
  <forward mode='nat'/>
  <bridge name='kk1' stp='on' delay='0'/>
  <domain name='lab.example' localOnly='yes'/>
  <dns>
    <host ip='10.61.0.5'><hostname>db</hostname><hostname>db.lab.example</hostname></host>
    <txt name='ver' value='1'/>
  </dns>
  <port isolated='yes'/>
  <ip address='10.61.0.1' prefix='24'>
    <dhcp><range start='10.61.0.100' end='10.61.0.200'><lease expiry='2' unit='hours'/></range></dhcp>
  </ip>
  <ip family='ipv6' address='fd61::1' prefix='64'/>
  <route address='10.62.0.0' prefix='24' gateway='10.61.0.5'/>
</network>"""

CONFIG = """provider "libvirt" {{
  uri = "{uri}"
}}

resource "network" "keep1" {{
  name   = "keep1"
  mode   = "nat"
  bridge = "kk1"
{extra}}}
"""


def test_a_replace_keeps_what_the_config_leaves_out(libvirt, tmp_path):
    import libvirt as lv
    conn = libvirt.connect()
    try:
        net = conn.networkDefineXMLFlags(HANDMADE, lv.VIR_NETWORK_DEFINE_VALIDATE)
        net.setAutostart(1)
        net.create()
        cfg, state = tmp_path / "cfg", tmp_path / "state.db"

        def k(*args):
            return run_kvmnet(cfg, "--no-color", *args, state=state, timeout=120)

        write_config(cfg, CONFIG.format(uri=libvirt.uri, extra=""))
        rc, out, err = k("import", "network.keep1", "keep1")
        assert rc == 0, out + err
        rc, out, err = k("plan", "--detailed-exitcode")
        assert rc == 0, out + err                    # the v1 config, unchanged: no change

        write_config(cfg, CONFIG.format(uri=libvirt.uri, extra="  mtu    = 1400\n"))
        rc, out, err = k("plan", "--detailed-exitcode")
        assert rc == 2, out + err
        assert "must be replaced" in out
        assert "# kept as found: " in out
        for part in ("domain", "dns", "port", "ip", "route"):
            assert part in out.split("# kept as found: ")[1].split("\n")[0], out
        assert "# kept as found (verbatim, not managed): <metadata>" in out

        rc, out, err = k("apply", "--auto-approve")
        assert rc == 0, out + err
        new = ET.fromstring(conn.networkLookupByName("keep1").XMLDesc(lv.VIR_NETWORK_XML_INACTIVE))
        assert new.find("mtu").get("size") == "1400"
        assert [h.text for h in new.findall("dns/host/hostname")] == ["db", "db.lab.example"]
        assert new.find("dns/txt").attrib == {"name": "ver", "value": "1"}
        assert new.find("domain").attrib == {"name": "lab.example", "localOnly": "yes"}
        assert new.find("port").get("isolated") == "yes"
        assert [ip.get("address") for ip in new.findall("ip")] == ["10.61.0.1", "fd61::1"]
        assert new.find("ip/dhcp/range/lease").attrib == {"expiry": "2", "unit": "hours"}
        assert new.find("route").get("gateway") == "10.61.0.5"
        assert new.find("metadata/{urn:example:app}note") is not None, ET.tostring(new, encoding="unicode")
        assert new.find("metadata/{urn:example:app}note").text == "owned by the lab team"
        rc, out, err = k("plan", "--detailed-exitcode")
        assert rc == 0, out + err
    finally:
        conn.close()
