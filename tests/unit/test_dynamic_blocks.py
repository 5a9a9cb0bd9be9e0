"""``dynamic`` blocks: one nested block per for_each element, evaluated with the
iterator; every malformed dynamic block is a FILE:LINE error."""
from __future__ import annotations

import textwrap

import pytest

from kvmnet.engine.diagnostics import DiagnosticError
from kvmnet.engine.prepare import prepare


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def _net(tmp_path, hosts_block, extra=""):
    text = textwrap.dedent('''
    variable "hosts" {
      default = {
        "10.70.0.11" = { mac = "52:54:00:70:00:11", name = "a" }
        "10.70.0.12" = { mac = "52:54:00:70:00:12", name = "b" }
      }
    }
    %s
    resource "network" "lab" {
      mode   = "nat"
      bridge = "kvdyn0"
      ip {
        address = "10.70.0.1"
        prefix  = 24
    %s
      }
    }
    ''') % (extra, hosts_block)
    (tmp_path / "main.hcl").write_text(text)
    return prepare(str(tmp_path))


def _errors(tmp_path, block, extra=""):
    with pytest.raises(DiagnosticError) as e:
        _net(tmp_path, block, extra)
    return [str(d) for d in e.value.diagnostics.errors]


def test_one_block_per_map_entry_with_the_default_iterator(tmp_path):
    p = _net(tmp_path, '''
        dynamic "dhcp_host" {
          for_each = var.hosts
          content {
            ip   = dhcp_host.key
            mac  = dhcp_host.value.mac
            name = dhcp_host.value.name
          }
        }''')
    ip = p.instances["network.lab"].attrs["ip"][0]
    assert ip["dhcp_host"] == [
        {"ip": "10.70.0.11", "mac": "52:54:00:70:00:11", "name": "a"},
        {"ip": "10.70.0.12", "mac": "52:54:00:70:00:12", "name": "b"},
    ]


def test_named_iterator_list_and_static_blocks_mix(tmp_path):
    p = _net(tmp_path, '''
        dhcp_host {
          mac = "52:54:00:70:00:01"
          ip  = "10.70.0.2"
        }
        dynamic "dhcp_host" {
          for_each = ["10.70.0.21", "10.70.0.22"]
          iterator = h
          content {
            ip  = h.value
            mac = format("52:54:00:70:00:%02d", 30 + h.key)
          }
        }''')
    hosts = p.instances["network.lab"].attrs["ip"][0]["dhcp_host"]
    assert [h["ip"] for h in hosts] == ["10.70.0.2", "10.70.0.21", "10.70.0.22"]
    assert hosts[2]["mac"] == "52:54:00:70:00:31"
    assert p.instances["network.lab"].attr_lines["ip[0].dhcp_host[2]"] > 0


def test_nested_dynamic_and_an_empty_for_each(tmp_path):
    text = textwrap.dedent('''
    resource "network" "lab" {
      mode   = "nat"
      bridge = "kvdyn0"
      dynamic "ip" {
        for_each = { "10.71.0.1" = [] }
        content {
          address = ip.key
          prefix  = 24
          dynamic "dhcp_host" {
            for_each = ip.value
            content {
              mac = dhcp_host.value
            }
          }
        }
      }
    }
    ''')
    (tmp_path / "main.hcl").write_text(text)
    ip = prepare(str(tmp_path)).instances["network.lab"].attrs["ip"]
    assert ip == [{"address": "10.71.0.1", "prefix": 24}]


@pytest.mark.parametrize("block, message", [
    ('dynamic "dhcp_host" {\n content {\n }\n }', 'dynamic "dhcp_host" needs "for_each"'),
    ('dynamic "dhcp_host" {\n for_each = []\n }', "needs exactly one content block"),
    ('dynamic "dhcp_host" {\n for_each = []\n labels = ["x"]\n content {\n }\n }', '"labels" is not allowed'),
    ('dynamic "dhcp_host" {\n for_each = []\n bogus = 1\n content {\n }\n }', 'unknown attribute "bogus"'),
    ('dynamic "dhcp_host" {\n for_each = []\n iterator = "a b"\n content {\n }\n }', "iterator must be a name"),
    ('dynamic "dhcp_host" {\n for_each = 3\n content {\n }\n }', "for_each must be a map, list or set"),
    ('dynamic "dhcp_host" {\n for_each = null\n content {\n }\n }', "for_each is null"),
    ('dynamic "dhcp_host" {\n for_each = var.nope\n content {\n }\n }', 'undeclared input variable "nope"'),
    ('dynamic "dhcp_host" {\n for_each = [1]\n content {\n mac = h.value\n }\n }', "h"),
    ('dynamic {\n for_each = []\n content {\n }\n }', "needs one label"),
])
def test_malformed_dynamic_blocks(tmp_path, block, message):
    errs = _errors(tmp_path, block)
    assert errs and all(e.startswith("main.hcl:") for e in errs), errs
    assert any(message in e for e in errs), errs


def test_a_for_each_known_only_after_apply_is_an_error(tmp_path):
    text = textwrap.dedent('''
    resource "network" "other" {
      mode = "nat"
    }
    resource "network" "lab" {
      mode = "nat"
      ip {
        address = "10.72.0.1"
        prefix  = 24
        dynamic "dhcp_host" {
          for_each = network.other.uuid
          content {
          }
        }
      }
    }
    ''')
    (tmp_path / "main.hcl").write_text(text)
    with pytest.raises(DiagnosticError) as e:
        prepare(str(tmp_path))
    errs = [str(d) for d in e.value.diagnostics.errors]
    assert errs == ['main.hcl:11: network.lab: ip[0].dynamic: dynamic "dhcp_host": for_each depends '
                    "on a value known only after apply"]
