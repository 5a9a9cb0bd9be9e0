"""``kvmnet import --generate-config`` end to end through the real CLI, against a
real libvirtd in its namespace and a running TCG guest: networks of every mode and
NICs made by hand (virsh) are adopted with their configuration written, and then
``kvmnet fmt --check``, ``kvmnet validate`` and ``kvmnet plan --detailed-exitcode``
(no change) all pass; every error path is one ``Error:`` line and changes nothing.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.helpers import run_kvmnet

pytestmark = pytest.mark.real

GUEST, OFF = "g-imp-run", "g-imp-off"
MAC_RUN, MAC_OFF, MAC_BR = "52:54:00:5a:00:01", "52:54:00:5a:00:02", "52:54:00:5a:00:03"
HOST_BR = "kvimphost"      # an existing bridge, for the bridge-mode network and a bridge NIC

NETWORKS = {
    # nat: everything the model has (mtu, domain, port range, DHCP range and hosts)
    "imp-nat": """
<network>
  <name>imp-nat</name>
  <forward mode='nat'><nat><port start='1024' end='65535'/></nat></forward>
  <bridge name='kvimp0' stp='on' delay='0'/>
  <mtu size='1400'/>
  <domain name='lab'/>
  <ip address='10.91.0.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='10.91.0.100' end='10.91.0.200'/>
      <host mac='52:54:00:5A:00:10' name='web' ip='10.91.0.10'/>
      <host mac='52:54:00:5a:00:11' ip='10.91.0.11'/>
    </dhcp>
  </ip>
</network>""",
    "imp.route": """
<network>
  <name>imp.route</name>
  <forward mode='route'/>
  <bridge name='kvimp1'/>
  <ip address='10.92.0.1' prefix='24'/>
</network>""",
    "imp_route": """
<network>
  <name>imp_route</name>
  <bridge name='kvimp2'/>
  <ip address='10.93.0.1' prefix='24'/>
</network>""",
    "1-isolated": """
<network>
  <name>1-isolated</name>
  <bridge name='kvimp3'/>
</network>""",
    "imp-bridge": f"""
<network>
  <name>imp-bridge</name>
  <forward mode='bridge'/>
  <bridge name='{HOST_BR}'/>
</network>""",
}


@pytest.fixture(scope="module")
def host(libvirt_sandbox, guest_image, tmp_path_factory):
    """The hand-made host: five networks (one not autostarted, one not running),
    a running guest with a network NIC and a hot-plugged bridge NIC, and a shut-off
    guest with a NIC in its saved definition."""
    from kvmnet.sandbox.guest import define_guest, start_guest
    sb = libvirt_sandbox
    xml_dir = tmp_path_factory.mktemp("xml")
    sb.ip("link", "add", HOST_BR, "type", "bridge")
    sb.ip("link", "set", HOST_BR, "up")
    try:
        for name, xml in NETWORKS.items():
            f = xml_dir / f"{name}.xml"
            f.write_text(xml)
            sb.virsh("net-define", str(f))
            if name != "imp_route":
                sb.virsh("net-start", name)
            if name not in ("imp_route", "imp.route"):
                sb.virsh("net-autostart", name)
        start_guest(sb, GUEST, guest_image, network="imp-nat", mac=MAC_RUN)
        define_guest(sb, OFF, guest_image, network="imp-nat", mac=MAC_OFF)
        sb.virsh("attach-interface", GUEST, "bridge", HOST_BR, "--mac", MAC_BR,
                 "--model", "virtio", "--live", "--config")
        yield sb
    finally:
        sb.clean()
        sb.ip("link", "del", HOST_BR, check=False)


class Env:
    def __init__(self, sb, tmp_path: Path, provider: bool = True):
        self.cfg = tmp_path / "cfg"
        self.cfg.mkdir(parents=True)
        self.state = tmp_path / "kvmnet.state.db"
        if provider:
            (self.cfg / "provider.hcl").write_text(f'provider "libvirt" {{\n  uri = "{sb.uri}"\n}}\n')

    def k(self, *args):
        return run_kvmnet(self.cfg, "--no-color", *args, state=self.state, timeout=120)

    def ok(self, *args, rc=0) -> str:
        code, out, err = self.k(*args)
        assert code == rc, f"kvmnet {' '.join(args)} exited {code}\n{out}\n{err}"
        return out

    def error(self, *args) -> str:
        """The one ``Error:`` line of a refused command (exit 1)."""
        code, out, err = self.k(*args)
        lines = err.strip().splitlines()
        assert code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), (code, out, err)
        return lines[0]

    def no_change(self) -> None:
        self.ok("fmt", "--check")
        self.ok("validate")
        out = self.ok("plan", "--detailed-exitcode")
        assert "No changes" in out, out


def test_adopt_the_whole_host_in_one_command(host, tmp_path):
    env = Env(host, tmp_path)
    out = env.ok("import", "--all-networks", "--all-nics", "--generate-config", "host.hcl")
    text = (env.cfg / "host.hcl").read_text()
    # labels: names made identifiers, the collision of imp.route/imp_route suffixed in name order
    for label, name in (("imp-nat", "imp-nat"), ("imp_route", "imp.route"), ("imp_route_2", "imp_route"),
                        ("_1-isolated", "1-isolated"), ("imp-bridge", "imp-bridge")):
        assert f'resource "network" "{label}" {{\n  name' in text, text
        assert f'"{name}"' in text
        assert f"network.{label} now manages" in out
    for dom, mac in ((GUEST, MAC_RUN), (GUEST, MAC_BR), (OFF, MAC_OFF)):
        label = f"{dom}_{mac}".replace(":", "_")
        assert f'resource "nic_attachment" "{label}"' in text, text
        assert f'"{mac}"' in text
    assert 'mode = "isolated"' in text or 'mode   = "isolated"' in text
    assert "uuid" not in text                               # computed: left out
    squeezed = re.sub(r" +", " ", text)
    # defaults (autostart, active: true) left out; the network not running says so
    assert squeezed.count("autostart = false") == 2 and squeezed.count("active = false") == 1
    # the full network shape (issue 11): forward { mode }, bridge { name }
    block = squeezed.split('"imp_route_2" {\n', 1)[1].split("\n}\n", 1)[0]
    for part in (' name = "imp_route"\n', ' forward {\n mode = "isolated"\n }\n', ' bridge {\n name = "kvimp2"\n'):
        assert part in block, (part, text)
    assert " autostart = false\n" in block and " active = false\n" in block, text
    env.no_change()
    # again: everything is managed now, nothing more to import, the file is kept
    before = (env.cfg / "host.hcl").read_bytes()
    out = env.ok("import", "--all-networks", "--all-nics", "--generate-config", "host.hcl")
    assert "Nothing to import" in out
    assert (env.cfg / "host.hcl").read_bytes() == before


def test_one_network_and_one_nic_then_every_error_path(host, tmp_path):
    env = Env(host, tmp_path)
    (env.cfg / "gen.hcl").write_text("# adopted by hand\n")
    env.ok("import", "--generate-config", "gen.hcl", "network.nat", "imp-nat")
    env.ok("import", "--generate-config", "gen.hcl", "nic_attachment.web", f"{GUEST}/{MAC_BR.upper()}")
    text = (env.cfg / "gen.hcl").read_text()
    assert text.startswith("# adopted by hand\n\nresource \"network\" \"nat\" {\n")
    assert 'resource "nic_attachment" "web" {' in text and f'bridge = "{HOST_BR}"' in text.replace("  ", "")
    env.no_change()
    state = env.state.read_bytes()

    def unchanged():
        assert (env.cfg / "gen.hcl").read_text() == text
        assert env.state.read_bytes() == state

    # the address is already declared in FILE (which is part of the config)
    assert "network.nat is already declared" in env.error(
        "import", "--generate-config", "gen.hcl", "network.nat", "imp-bridge")
    unchanged()
    # ... in a FILE outside the configuration directory
    outside = tmp_path / "elsewhere.hcl"
    outside.write_text('resource "network" "x" {\n  mode = "nat"\n}\n')
    line = env.error("import", "--generate-config", str(outside), "network.x", "imp-bridge")
    assert f"network.x is already declared in {outside} at line 1" in line
    assert outside.read_text() == 'resource "network" "x" {\n  mode = "nat"\n}\n'
    # an ID nothing has
    assert "no network with ID 'nope' exists" in env.error(
        "import", "--generate-config", "gen.hcl", "network.nope", "nope")
    assert "no nic_attachment with ID" in env.error(
        "import", "--generate-config", "gen.hcl", "nic_attachment.n", f"{GUEST}/52:54:00:00:00:99")
    # a malformed ID, a bad address, an unknown type
    assert "DOMAIN/MAC" in env.error("import", "--generate-config", "gen.hcl", "nic_attachment.n", "nomac")
    assert "is not a resource address" in env.error(
        "import", "--generate-config", "gen.hcl", "network.a.b", "imp-bridge")
    assert "unknown resource type 'netwerk'" in env.error(
        "import", "--generate-config", "gen.hcl", "netwerk.a", "imp-bridge")
    assert "unknown resource type 'bogus' for --all" in env.error(
        "import", "--all", "bogus", "--generate-config", "gen.hcl")
    # an object already managed under another address
    assert "already managed as network.nat" in env.error(
        "import", "--generate-config", "gen.hcl", "network.again", "imp-nat")
    # flags that do not go together
    assert "take no ADDRESS" in env.error("import", "--all-networks", "--generate-config", "g.hcl",
                                          "network.a", "x")
    assert "need --generate-config" in env.error("import", "--all-nics")
    assert "needs ADDRESS and ID" in env.error("import", "--generate-config", "g.hcl")
    unchanged()
    assert not (env.cfg / "g.hcl").exists()

    # no provider block: kvmnet would not know which libvirtd to ask
    bare = Env(host, tmp_path / "bare", provider=False)
    line = bare.error("import", "--generate-config", "gen.hcl", "network.nat", "imp-nat")
    assert 'no provider "libvirt" block' in line
    assert not (bare.cfg / "gen.hcl").exists() and not bare.state.exists()
