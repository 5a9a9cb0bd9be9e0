"""issue 11's plan-time checks against the real sandboxed libvirtd, through the CLI:
a nat network without an address is refused at plan (FILE:LINE, nothing changed)
unless the live network it adopts keeps one; and an IPv6 port forward names an
IPv6-only network (its IPv6 subnet checks the forward's ``to_address``), applied
with nftables (``table ip6 kvmnet``) in the sandbox's namespace."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.e2e.helpers import run_kvmnet, write_config


def _k(cfg: Path, state: Path, *args):
    return run_kvmnet(cfg, "--no-color", *args, state=state, timeout=120)


def test_a_nat_network_without_an_address_is_refused_at_plan(libvirt, tmp_path):
    cfg, state = tmp_path / "cfg", tmp_path / "s.db"
    head = f'provider "libvirt" {{\n  uri = "{libvirt.uri}"\n}}\n'
    write_config(cfg, head + 'resource "network" "noip" {\n  forward {\n    mode = "route"\n  }\n}\n')
    rc, out, err = _k(cfg, state, "plan")
    assert rc == 1, out + err
    assert len(err.strip().splitlines()) == 1, err
    assert 'forward mode "route" needs an ip block' in err and "main.hcl:" in err, err
    conn = libvirt.connect()
    try:
        assert "noip" not in conn.listNetworks() + conn.listDefinedNetworks()
        # an adopted network keeps its live address when the config leaves ip out
        net = conn.networkDefineXML("<network><name>noip</name><forward mode='route'/><bridge name='kvnoip0'/>"
                                    "<ip address='10.71.0.1' prefix='24'/><ip family='ipv6' address='fd71::1' prefix='64'/>"
                                    "</network>")
        rc, out, err = _k(cfg, state, "import", "network.noip", "noip")
        assert rc == 0, out + err
        rc, out, err = _k(cfg, state, "plan", "--detailed-exitcode")
        assert rc == 2 and "Error" not in err, out + err        # only autostart and active differ
        assert not re.search(r"^\s*[~+-] ip\b", out, re.M), out
        net.undefine()
    finally:
        conn.close()


FORWARD6 = """
provider "libvirt" {{
  uri = "{uri}"
}}

provider "nftables" {{
  netns = "{netns}"
}}

resource "network" "six" {{
  name = "six"
  forward {{
    mode = "nat"
  }}
  bridge {{
    name = "kvsix0"
  }}
  ip {{
    family  = "ipv6"
    address = "fd72::1"
    prefix  = 64
  }}
}}

resource "port_forward" "web6" {{
  provider   = "nftables"
  protocol   = "tcp"
  host_port  = 8086
  to_address = "{to}"
  to_port    = 80
  network    = network.six.name      # a reference: the network starts first
}}
"""


def test_an_ipv6_forward_names_an_ipv6_only_network(libvirt, tmp_path):
    cfg, state = tmp_path / "cfg", tmp_path / "s.db"
    write_config(cfg, FORWARD6.format(uri=libvirt.uri, netns=libvirt.netns, to="fd73::50"))
    rc, out, err = _k(cfg, state, "plan")
    assert rc == 1, out + err
    assert 'to_address = "fd73::50" is not in the subnet fd72::/64 of network "six" (network.six)' in err, err
    assert len(err.strip().splitlines()) == 1 and "main.hcl:" in err, err

    write_config(cfg, FORWARD6.format(uri=libvirt.uri, netns=libvirt.netns, to="fd72::50"))
    rc, out, err = _k(cfg, state, "apply", "--auto-approve")
    try:
        assert rc == 0, out + err
        table = subprocess.run(["ip", "netns", "exec", libvirt.netns, "nft", "list", "table", "ip6", "kvmnet"],
                               capture_output=True, text=True, check=True).stdout
        assert "dnat to [fd72::50]:80" in table or "dnat ip6 to [fd72::50]:80" in table, table
        rc, out, err = _k(cfg, state, "plan", "--detailed-exitcode")
        assert rc == 0, out + err
    finally:
        rc, out, err = _k(cfg, state, "destroy", "--auto-approve")
        assert rc == 0, out + err
