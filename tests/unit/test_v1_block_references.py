"""A kvmnet v1 reference to a value that is a block now (``network.lab.bridge`` was
the bridge's name, now ``bridge { name }``): one FILE:LINE error that names the
fix, whether the block lands where a string is wanted or in a string template."""
from __future__ import annotations

from kvmnet.engine import blockref
from tests.e2e.helpers import run_kvmnet, write_config

NET = """provider "libvirt" {
  uri = "test:///default"
}

resource "network" "lab" {
  mode   = "nat"
  bridge = "virbr9"
  ip {
    address = "10.9.0.1"
    prefix  = 24
  }
}
"""


def test_a_block_where_a_string_is_wanted(tmp_path):
    write_config(tmp_path, NET + 'resource "nic_attachment" "a" {\n  domain = "test"\n'
                 "  bridge = network.lab.bridge\n}\n")
    rc, out, err = run_kvmnet(tmp_path, "--no-color", "validate", state=tmp_path / "s.db")
    assert rc == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "main.hcl:15: nic_attachment.a: bridge must be a string" in lines[0], err
    assert lines[0].endswith("this is a block where kvmnet v1 had a plain value: add .name to the reference"), err


def test_a_block_in_a_string_template(tmp_path):
    write_config(tmp_path, NET + 'output "br" {\n  value = "on ${network.lab.bridge}"\n}\n')
    rc, out, err = run_kvmnet(tmp_path, "--no-color", "plan", state=tmp_path / "s.db")
    assert rc == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "main.hcl:14: output.br" in lines[0], err
    assert "network.lab.bridge is a block (in kvmnet v1 a plain value): write network.lab.bridge.name" \
        in lines[0], err


def test_the_fixed_reference_plans(tmp_path):
    write_config(tmp_path, NET + 'output "br" {\n  value = "on ${network.lab.bridge.name}"\n}\n')
    rc, out, err = run_kvmnet(tmp_path, "--no-color", "plan", state=tmp_path / "s.db")
    assert rc == 0, out + err


def test_hint_names_the_inner_attribute():
    assert blockref.hint({"size": 1400}, "network.lab.mtu").endswith("write network.lab.mtu.size")
    assert blockref.hint({"name": "virbr1", "stp": True}).endswith("add .name to the reference")
    assert blockref.hint({"other": 1}) == "" and blockref.hint("virbr1") == ""
