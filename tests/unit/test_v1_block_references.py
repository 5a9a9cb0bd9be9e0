"""References see a value in the shape its configuration wrote it: a kvmnet v1
shorthand (``bridge = "virbr9"``, now canonically ``bridge { name }``) reads back
as the plain value, so v1 configs keep working unchanged
(``ResourceType.reference_view``, applied by the engine wherever an instance's
value meets an expression). A config that writes the block form gets the block,
and using it as a string is one FILE:LINE error naming the fix."""
from __future__ import annotations

import dataclasses

from kvmnet.engine import blockref, registry
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.prepare import prepare
from kvmnet.providers.libvirt.network_canon import canonical_network, v1_view
from kvmnet.providers.libvirt.types import NETWORK
from kvmnet.sdk.values import UNKNOWN
from tests.e2e.helpers import run_kvmnet, write_config

PROVIDER = """provider "libvirt" {
  uri = "test:///default"
}

"""

V1_NET = PROVIDER + """resource "network" "lab" {
  mode           = "nat"
  bridge         = "virbr9"
  mtu            = 1400
  domain         = "lab"
  nat_port_range = [1024, 65535]
  ip {
    address = "10.9.0.1"
    prefix  = 24
    dhcp_range {
      start = "10.9.0.100"
      end   = "10.9.0.200"
    }
  }
}
"""

BLOCK_NET = PROVIDER + """resource "network" "lab" {
  forward {
    mode = "nat"
  }
  bridge {
    name = "virbr9"
  }
  ip {
    address = "10.9.0.1"
    prefix  = 24
  }
}
"""


def _outputs(tmp_path, text: str) -> dict:
    write_config(tmp_path, text)
    prepared = prepare(str(tmp_path), use_cache=False)
    diags = Diagnostics()
    out = prepared.evaluator.output_values(diags)
    assert not diags, diags
    return out


# -- v1 shorthands read back as written ---------------------------------------------
def test_v1_shorthands_read_back_as_v1_values(tmp_path):
    out = _outputs(tmp_path, V1_NET + """
output "v" {
  value = [network.lab.bridge, network.lab.mtu, network.lab.domain, network.lab.mode,
           network.lab.nat_port_range]
}
output "s" {
  value = "on ${network.lab.bridge}"
}
""")
    assert out["v"] == ["virbr9", 1400, "lab", "nat", [1024, 65535]]
    assert out["s"] == "on virbr9"


def test_a_v1_reference_where_a_string_is_wanted_validates(tmp_path):
    write_config(tmp_path, V1_NET + 'resource "nic_attachment" "a" {\n  domain = "test"\n'
                 "  bridge = network.lab.bridge\n}\n")
    rc, out, err = run_kvmnet(tmp_path, "--no-color", "plan", state=tmp_path / "s.db")
    assert rc == 0, out + err
    assert '+ bridge     = "virbr9"' in out, out


def test_count_and_for_each_instances_are_each_viewed(tmp_path):
    out = _outputs(tmp_path, PROVIDER + """
resource "network" "c" {
  count  = 2
  name   = "c${count.index}"
  mode   = "isolated"
  bridge = "virbr${count.index}"
}
resource "network" "e" {
  for_each = toset(["x"])
  forward {
    mode = "route"
  }
  bridge {
    name = "br-${each.key}"
  }
}
output "v" {
  value = [network.c[1].bridge, network.c[0].mode, network.e["x"].bridge.name]
}
""")
    assert out["v"] == ["virbr1", "isolated", "br-x"]


def test_a_module_output_sees_the_v1_value(tmp_path):
    write_config(tmp_path / "net", V1_NET.replace(PROVIDER, "") + 'output "br" {\n  value = network.lab.bridge\n}\n')
    out = _outputs(tmp_path, PROVIDER + """module "m" {
  source = "./net"
}
output "v" {
  value = module.m.br
}
""")
    assert out["v"] == "virbr9"


def test_self_in_a_postcondition_sees_the_v1_value(tmp_path):
    write_config(tmp_path, V1_NET.replace('  mode           = "nat"\n', '''  mode           = "nat"
  lifecycle {
    postcondition {
      condition     = self.bridge == "virbr9" && self.mtu == 1400
      error_message = "bridge is ${self.bridge}"
    }
  }
'''))
    rc, out, err = run_kvmnet(tmp_path, "--no-color", "plan", state=tmp_path / "s.db")
    assert rc == 0, out + err


# -- the block form stays a block: a string use of it is a helpful error --------------
def test_a_block_where_a_string_is_wanted(tmp_path):
    write_config(tmp_path, BLOCK_NET + 'resource "nic_attachment" "a" {\n  domain = "test"\n'
                 "  bridge = network.lab.bridge\n}\n")
    rc, out, err = run_kvmnet(tmp_path, "--no-color", "validate", state=tmp_path / "s.db")
    assert rc == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "main.hcl:19: nic_attachment.a: bridge must be a string" in lines[0], err
    assert lines[0].endswith("this is a block where kvmnet v1 had a plain value: add .name to the reference"), err


def test_a_block_in_a_string_template(tmp_path):
    write_config(tmp_path, BLOCK_NET + 'output "br" {\n  value = "on ${network.lab.bridge}"\n}\n')
    rc, out, err = run_kvmnet(tmp_path, "--no-color", "plan", state=tmp_path / "s.db")
    assert rc == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "main.hcl:18: output.br" in lines[0], err
    assert "network.lab.bridge is a block (in kvmnet v1 a plain value): write network.lab.bridge.name" \
        in lines[0], err


def test_the_block_forms_reference_plans(tmp_path):
    out = _outputs(tmp_path, BLOCK_NET + 'output "br" {\n  value = "on ${network.lab.bridge.name}"\n}\n')
    assert out["br"] == "on virbr9"


def test_dot_name_on_a_shorthand_says_to_drop_it(tmp_path):
    write_config(tmp_path, V1_NET + 'output "br" {\n  value = network.lab.bridge.name\n}\n')
    rc, out, err = run_kvmnet(tmp_path, "--no-color", "plan", state=tmp_path / "s.db")
    assert rc == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "main.hcl:21: output.br" in lines[0], err
    assert lines[0].endswith("network.lab.bridge is the plain value its config writes (a kvmnet v1 "
                             "shorthand): drop .name"), err


def test_hint_names_the_inner_attribute():
    assert blockref.hint({"size": 1400}, "network.lab.mtu").endswith("write network.lab.mtu.size")
    assert blockref.hint({"name": "virbr1", "stp": True}).endswith("add .name to the reference")
    assert blockref.hint({"other": 1}) == "" and blockref.hint("virbr1") == ""
    assert blockref.plain_hint("size", "network.lab.mtu").endswith("drop .size")
    assert blockref.plain_hint("address", "network.lab.bridge") == ""


# -- the network type's view, pure ---------------------------------------------------
def test_v1_view_inverts_the_upgrade_for_what_was_written():
    a = canonical_network({"mode": "route", "bridge": "virbr3", "mtu": 9000, "virtualport": "openvswitch",
                           "vlan_tag": 10, "nat_port_range": [2000, 3000]})
    written = {"mode", "bridge", "mtu", "virtualport", "vlan_tag", "nat_port_range"}
    assert {k: v for k, v in v1_view(written, a).items() if k in written} == {
        "mode": "route", "bridge": "virbr3", "mtu": 9000, "virtualport": "openvswitch",
        "vlan_tag": 10, "nat_port_range": [2000, 3000]}
    assert v1_view({"ip", "name"}, a) is a                       # nothing shorthand: as is
    assert v1_view(set(), a)["bridge"] == {"name": "virbr3"}     # block form: the block
    assert a["bridge"] == {"name": "virbr3"}                     # the value itself is not changed


def test_v1_view_keeps_unknowns_unknown():
    a = canonical_network({"bridge": UNKNOWN, "mode": "nat"})
    assert v1_view({"bridge", "mode"}, a)["bridge"] is UNKNOWN
    assert NETWORK.view({"bridge"}, UNKNOWN) is UNKNOWN


# -- the engine applies any type's view (a fake one here) ------------------------------
def test_the_engine_applies_a_types_reference_view(tmp_path, monkeypatch):
    types = dict(registry.resource_types())
    types["bridge"] = dataclasses.replace(
        types["bridge"], reference_view=lambda written, v: {**v, "name": f"{v['name']}:{','.join(sorted(written))}"})
    monkeypatch.setattr(registry, "resource_types", lambda: types)
    out = _outputs(tmp_path, """resource "bridge" "b" {
  name = "br0"
}
output "n" {
  value = bridge.b.name
}
""")
    assert out["n"] == "br0:name"
