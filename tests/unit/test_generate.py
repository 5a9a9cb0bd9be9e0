"""engine/generate.py: canonical attributes → HCL that reads back as the same
attributes (through the real parser, evaluator, schema and canonical form)."""
from __future__ import annotations

import pytest

from kvmnet.engine.fmt import format_hcl
from kvmnet.engine.generate import GenerateError, hcl_string, identifier, labels_for, resource_block
from kvmnet.engine.plan.diff import diff_attrs
from kvmnet.engine.prepare import prepare
from kvmnet.engine.resources import TYPES, canonical, with_defaults


def read_back(tmp_path, rtype: str, label: str, text: str) -> dict:
    """The canonical desired attributes ``text`` configures, as plan computes them."""
    d = tmp_path / "cfg"
    d.mkdir(exist_ok=True)
    (d / "main.hcl").write_text(text)
    prepared = prepare(str(d), use_cache=False)
    inst = prepared.instances[f"{rtype}.{label}"]
    return canonical(rtype, with_defaults(rtype, label, inst.attrs))


def roundtrip(tmp_path, rtype: str, label: str, attrs: dict) -> str:
    live = canonical(rtype, attrs)
    text = resource_block(TYPES[rtype], label, live)
    assert format_hcl(text) == text, "not in kvmnet fmt layout"
    desired = read_back(tmp_path, rtype, label, text)
    assert diff_attrs(desired, live) == [], text
    return text


def test_network_blocks_defaults_and_computed_left_out(tmp_path):
    text = roundtrip(tmp_path, "network", "lab", {
        "name": "lab", "mode": "nat", "bridge": "virbr7", "autostart": True,
        "uuid": "0b4e6b2a-2ec6-4f5a-8f4b-3a1d4c2b1e10", "active": True,
        "ip": {"address": "10.7.0.1", "prefix": 24,
               "dhcp_range": [{"start": "10.7.0.100", "end": "10.7.0.200"}],
               "dhcp_host": [{"mac": "52:54:00:00:00:01", "ip": "10.7.0.10", "name": "web"},
                             {"mac": "52:54:00:00:00:02", "ip": "10.7.0.11", "name": None}]},
    })
    assert "uuid" not in text                            # computed
    assert "autostart" not in text and "active" not in text   # equal to the type's defaults
    # the full issue-11 shape: ip { dhcp { host {...} } }, forward { mode }
    assert text.count("host {") == 2 and "dhcp {" in text and "ip {" in text
    assert text.startswith('resource "network" "lab" {\n  name = "lab"\n  forward {\n    mode = "nat"\n')


def test_value_differing_from_default_is_written(tmp_path):
    text = roundtrip(tmp_path, "network", "iso", {"name": "iso", "mode": "isolated", "autostart": False,
                                                          "active": True})
    assert "autostart = false" in text


def test_strings_are_escaped_including_templates(tmp_path):
    nasty = 'a"b\\c ${x} %{if} $${y} \n\t\r\x01 é'
    roundtrip(tmp_path, "nic_attachment", "n", {
        "domain": nasty, "bridge": "br0", "mac": "52:54:00:aa:bb:cc", "model": "virtio",
        "link_state": "up", "live": True, "persistent": True})


def test_map_attribute_and_quoted_keys(tmp_path):
    text = roundtrip(tmp_path, "sysctl_profile", "t", {
        "settings": {"net.ipv4.ip_forward": 1, "net.ipv4.tcp_rmem": "4096 87380 16777216"},
        "persist": False})
    assert '"net.ipv4.ip_forward" = "1"' in text


def test_empty_block_list_left_out_and_no_blocks_for_scalars(tmp_path):
    text = roundtrip(tmp_path, "network", "p", {"name": "p", "mode": "nat", "nat_port_range": [1024, 2048],
                                                 "autostart": True, "active": True, "ip": None})
    assert "port {\n        start = 1024\n        end   = 2048\n" in text and "ip" not in text


def test_hcl_string_evaluates_back(tmp_path):
    values = ["plain", "${a}", "%{b}", "$${", "%%{", "$$", "%", "$", 'q"\\', "a\u2028b", "\x7f", "a\x01b"]
    settings = {f"net.k{i}": v for i, v in enumerate(values)}
    roundtrip(tmp_path, "sysctl_profile", "t", {"settings": settings, "persist": True})
    assert hcl_string("${a}") == '"$${a}"' and hcl_string("%{a}") == '"%%{a}"'


def test_unwritable_value_is_an_error():
    with pytest.raises(GenerateError):
        resource_block(TYPES["sysctl_profile"], "t", {"settings": {"a.b": float("nan")}})
    with pytest.raises(GenerateError):
        resource_block(TYPES["sysctl_profile"], "1t", {"settings": {}})


def test_identifiers_and_deterministic_collisions():
    assert identifier("default") == "default"
    assert identifier("my.net 1") == "my_net_1"
    assert identifier("1abc") == "_1abc"
    assert identifier("-x") == "_-x"
    assert identifier("") == "_"
    got = labels_for(["a.b", "a_b", "a-b", "c"], taken={"c"})
    assert got == {"a-b": "a-b", "a.b": "a_b", "a_b": "a_b_2", "c": "c_2"}
    assert labels_for(["a_b", "a.b"]) == got_subset(got, ["a.b", "a_b"])


def got_subset(d: dict, keys: list[str]) -> dict:
    return {k: d[k] for k in keys}


def test_a_provider_that_cannot_list_its_objects_says_so():
    from kvmnet.sdk.provider import Provider, ProviderError

    class Keys(Provider):
        name = "keys"

    with pytest.raises(ProviderError, match="cannot list the thing objects"):
        Keys().importable("thing")


def test_widened_network_shape_blocks_from_type_lists_and_nesting():
    """The issue-11 network shape (single blocks as arrays of at most one object,
    v1 shorthands as a second type of the same attribute): decided by the schema
    and the value alone, so the generator follows it without knowing it."""
    import json

    from kvmnet.sdk.types import ResourceType

    def blocks(props, one=True):
        s = {"type": "array", "items": {"type": "object", "additionalProperties": False,
                                        "properties": props}}
        return {**s, "maxItems": 1} if one else s

    schema = {"type": "object", "properties": {
        "name": {"type": "string"},
        "forward": blocks({"mode": {"enum": ["nat"]}, "nat": blocks({
            "ipv6": {"type": "boolean"}, "port": blocks({"start": {"type": "integer"},
                                                        "end": {"type": "integer"}})})}),
        "bridge": {"type": ["string", "array"], "maxItems": 1, "items": {
            "type": "object", "properties": {"name": {"type": "string"}, "stp": {"type": "boolean"}}}},
        "mtu": {"type": ["integer", "array"], "items": {"$ref": "#/$defs/mtu"}},
        "dns": blocks({"host": blocks({"ip": {"type": "string"},
                                       "hostname": {"type": "array", "items": {"type": "string"}}}, one=False)}),
        "ip": blocks({"family": {"enum": ["ipv4", "ipv6"], "default": "ipv4"}, "address": {"type": "string"}},
                     one=False),
        "kept": {"type": "string"},
    }, "$defs": {"mtu": {"type": "object", "properties": {"size": {"type": "integer"}}}}}
    rt = ResourceType(name="network", default_provider="libvirt", schema_file=("x", "y"),
                      computed=frozenset({"uuid", "kept"}))
    rt.__dict__["_schema_text"] = json.dumps(schema)   # the cached schema text, without a package file
    text = resource_block(rt, "lab", {
        "name": "lab", "uuid": "u", "kept": "<metadata/>",
        "forward": {"mode": "nat", "nat": {"ipv6": True, "port": {"start": 1024, "end": 65535}}},
        "bridge": {"name": "virbr1", "stp": False}, "mtu": {"size": 1400},
        "dns": {"host": [{"ip": "10.0.0.2", "hostname": ["a", "b.lab"]}]},
        "ip": [{"family": "ipv4", "address": "10.0.0.1"}, {"family": "ipv6", "address": "fd00::1"}],
    })
    assert text == '''resource "network" "lab" {
  name = "lab"
  forward {
    mode = "nat"
    nat {
      ipv6 = true
      port {
        start = 1024
        end   = 65535
      }
    }
  }
  bridge {
    name = "virbr1"
    stp  = false
  }
  mtu {
    size = 1400
  }
  dns {
    host {
      ip       = "10.0.0.2"
      hostname = ["a", "b.lab"]
    }
  }
  ip {
    address = "10.0.0.1"
  }
  ip {
    family  = "ipv6"
    address = "fd00::1"
  }
}
''', text
