"""Modules and provider aliases end to end through the real CLI, against the kernel
(bridges through the iproute provider), nft (port forwards) and a real libvirtd,
all inside namespaces the tests create and delete.

- one module, three ways: ``for_each`` (with a key long enough that the forward's
  ownership mark must be shortened to fit nft's rule comment), ``count`` with a
  provider alias into a second namespace (``providers = {...}``), and a plain call;
- ``--target module.X``, ``state list module.X``, ``state rm`` + adoption by the
  shortened mark, ``import`` to a module address, destroy;
- a libvirt network made in a module through ``provider = libvirt.ALIAS``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kvmnet.sandbox.netns import add_veth, in_ns, netns
from kvmnet.sdk.ownership import MAX_BYTES, mark_address, parse_mark
from tests.e2e.helpers import run_kvmnet, write_config

pytestmark = [pytest.mark.real, pytest.mark.skipif(os.geteuid() != 0, reason="needs root (real namespaces)")]

LONG_KEY = "edge-" + "x" * 70

EDGE = """
variable "name" {
  type = string
}

variable "port" {
  type = string
}

variable "address" {
  type = string
}

variable "http_port" {
  type = number
}

resource "bridge" "br" {
  name       = var.name
  interfaces = [var.port]
  addresses  = [var.address]
  stp        = false
}

resource "port_forward" "web" {
  protocol   = "tcp"
  host_port  = var.http_port
  to_address = cidrhost(var.address, 50)
  to_port    = 80
}

output "bridge" {
  value = bridge.br.name
}
"""

ROOT = """
provider "iproute" {{
  netns = "{a}"
}}

provider "nftables" {{
  netns = "{a}"
}}

provider "iproute" {{
  alias = "b"
  netns = "{b}"
}}

provider "nftables" {{
  alias = "b"
  netns = "{b}"
}}

module "site" {{
  source    = "../../modules/edge"
  for_each  = {{ "{long}" = "p0" }}
  name      = "br-site"
  port      = each.value
  address   = "10.61.0.1/24"
  http_port = 8061
}}

module "remote" {{
  source    = "../../modules/edge"
  count     = 1
  name      = "br-remote${{count.index}}"
  port      = "p1"
  address   = "10.62.0.1/24"
  http_port = 8062
  providers = {{
    iproute  = iproute.b
    nftables = nftables.b
  }}
}}

resource "bridge" "top" {{
  name  = "top-${{module.site["{long}"].bridge}}"
  stp   = false
}}
"""


class Env:
    def __init__(self, tmp_path: Path, a: str, b: str):
        self.cfg = tmp_path / "hosts" / "h1"
        self.state = tmp_path / "state.db"
        write_config(tmp_path / "modules" / "edge", EDGE)
        write_config(self.cfg, ROOT.format(a=a, b=b, long=LONG_KEY))

    def ok(self, *args, rc=0):
        code, out, err = run_kvmnet(self.cfg, "--no-color", *args, state=self.state, timeout=120)
        assert code == rc, f"kvmnet {' '.join(args)} exited {code}\n{out}\n{err}"
        return out


def links(ns: str) -> set[str]:
    return {x["ifname"] for x in json.loads(in_ns(ns, "ip", "-j", "link", "show").stdout)}


def nft_comments(ns: str) -> list[str]:
    out = json.loads(in_ns(ns, "nft", "-j", "list", "ruleset").stdout)["nftables"]
    return [r["rule"]["comment"] for r in out if "rule" in r and r["rule"].get("comment")]


def test_modules_for_each_count_alias_target_marks_and_destroy(ns, tmp_path):
    with netns() as b:
        add_veth(ns, "p0", "q0")
        add_veth(b, "p1", "q1")
        env = Env(tmp_path, ns, b)
        site_fw = f'module.site["{LONG_KEY}"].port_forward.web'

        # -target a module: only what is in it (and what it depends on)
        out = env.ok("plan", "-target=module.remote")
        assert "module.remote[0].bridge.br will be created" in out and "Plan: 2 to add" in out
        assert "module.site" not in out and "bridge.top" not in out
        env.ok("apply", "--auto-approve", "--target", "module.remote[0]")
        assert "br-remote0" in links(b) and "br-site" not in links(ns)

        out = env.ok("apply", "--auto-approve")
        assert "br-site" in links(ns) and "top-br-site" in links(ns)
        assert "br-remote0" not in links(ns) and "br-site" not in links(b)
        alias = json.loads(in_ns(ns, "ip", "-j", "-d", "link", "show", "br-site").stdout)[0]["ifalias"]
        assert parse_mark(alias).address == mark_address(f'module.site["{LONG_KEY}"].bridge.br')
        lineage = parse_mark(alias).lineage

        # the long forward address fits nft's comment through the shortened mark
        comments = [c for c in nft_comments(ns) if c.startswith("kvmnet:")]
        assert comments and all(len(c.encode()) <= MAX_BYTES for c in comments)
        assert f"kvmnet:{lineage}:{mark_address(site_fw)}" in comments
        assert any(c.endswith(":module.remote[0].port_forward.web") for c in nft_comments(b))

        assert env.ok("plan", "--detailed-exitcode").count("will be") == 0
        listed = env.ok("state", "list", "module.remote").split()
        assert listed == ["module.remote[0].bridge.br", "module.remote[0].port_forward.web"]
        assert len(env.ok("state", "list").split()) == 5
        shown = env.ok("state", "show", "module.remote[0].bridge.br")
        assert "iproute.b" in shown

        # forgotten by the state: adopted again by its (shortened) mark, not recreated
        env.ok("state", "rm", site_fw)
        out = env.ok("plan")
        assert site_fw in out and "will be created" not in out
        env.ok("apply", "--auto-approve")
        assert site_fw in env.ok("state", "list").split()

        # import into a module address
        env.ok("state", "rm", "module.remote[0].bridge.br")
        env.ok("import", "module.remote[0].bridge.br", "br-remote0")
        assert env.ok("plan", "--detailed-exitcode").count("will be") == 0

        # state rm of a module forgets everything in it; the marks adopt it back
        out = env.ok("state", "rm", "module.remote")
        assert out.count("Removed module.remote[0].") == 2
        assert env.ok("state", "list", "module.remote").split() == []
        # a saved plan: refused once a module file changed, applied as made otherwise
        plan_file = str(env.cfg.parent / "adopt.plan")
        env.ok("plan", f"-out={plan_file}")
        edge = env.cfg.parent.parent / "modules" / "edge" / "main.hcl"
        text = edge.read_text()
        edge.write_text(text + "\n# touched\n")
        code, _, err = run_kvmnet(env.cfg, "--no-color", "apply", plan_file, state=env.state, timeout=120)
        assert code == 1 and "configuration files have changed" in err, err
        edge.write_text(text)
        env.ok("apply", plan_file)
        assert len(env.ok("state", "list", "module.remote").split()) == 2
        assert "br-remote0" in links(b)
        env.ok("state", "list", "module.", rc=1)

        env.ok("destroy", "--auto-approve")
        assert not {"br-site", "top-br-site"} & links(ns) and "br-remote0" not in links(b)
        assert not [c for c in nft_comments(ns) + nft_comments(b) if c.startswith("kvmnet:")]
        assert env.ok("state", "list").split() == []


def test_libvirt_network_in_a_module_through_a_provider_alias(libvirt, tmp_path):
    write_config(tmp_path / "modules" / "lab", """
    variable "name" {
      type = string
    }
    variable "subnet" {
      type = string
    }
    resource "network" "this" {
      name   = var.name
      mode   = "nat"
      bridge = "virbr-${var.name}"
      ip {
        address = cidrhost(var.subnet, 1)
        netmask = cidrnetmask(var.subnet)
      }
    }
    output "uuid" {
      value = network.this.uuid
    }
    """)
    cfg = tmp_path / "root"
    write_config(cfg, f"""
    provider "libvirt" {{
      alias = "sandbox"
      uri   = "{libvirt.uri}"
    }}
    module "lab" {{
      source    = "../modules/lab"
      for_each  = {{ kmod1 = "10.63.1.0/24", kmod2 = "10.63.2.0/24" }}
      name      = each.key
      subnet    = each.value
      providers = {{ libvirt = libvirt.sandbox }}
    }}
    output "uuids" {{
      value = {{ for k, m in module.lab : k => m.uuid }}
    }}
    """)
    state = tmp_path / "state.db"

    def ok(*args):
        code, out, err = run_kvmnet(cfg, "--no-color", *args, state=state, timeout=120)
        assert code == 0, f"kvmnet {' '.join(args)} exited {code}\n{out}\n{err}"
        return out

    out = ok("apply", "--auto-approve")
    assert 'module.lab["kmod1"].network.this' in out
    import libvirt as lv
    conn = lv.open(libvirt.uri)
    try:
        nets = {n.name(): n for n in conn.listAllNetworks()}
        assert {"kmod1", "kmod2"} <= set(nets)
        assert nets["kmod1"].isActive()
        meta = nets["kmod2"].XMLDesc()
        assert 'module.lab["kmod2"].network.this' in meta
        assert ok("plan", "--detailed-exitcode").count("will be") == 0
        ok("destroy", "--auto-approve", "--target", 'module.lab["kmod1"]')
        names = {n.name() for n in conn.listAllNetworks()}
        assert "kmod1" not in names and "kmod2" in names
        ok("destroy", "--auto-approve")
        assert not {"kmod1", "kmod2"} & {n.name() for n in conn.listAllNetworks()}
    finally:
        conn.close()
