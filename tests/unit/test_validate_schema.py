"""The JSON Schemas themselves, the fast precheck against jsonschema, and speed."""
from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from kvmnet.engine.model import ResourceInstance, SourcePos
from kvmnet.engine.validate import validate_instances
from kvmnet.engine.validate.precheck import compile_precheck
from kvmnet.engine.resources import TYPES

RESOURCE_TYPES = ("network", "bridge", "vlan", "nic_attachment", "port_forward", "sysctl_profile")
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"


def load_schema(rtype: str) -> dict:
    return TYPES[rtype].schema()


VALID = {
    "network": {"name": "lab", "mode": "nat", "bridge": "virbr1", "autostart": True, "mtu": 1500,
                "domain": "lab.test", "nat_port_range": [1024, 65535], "virtualport": "openvswitch", "vlan_tag": 5,
                "ip": [{"address": "10.0.0.1", "prefix": 24, "netmask": "255.255.255.0",
                        "dhcp_range": [{"start": "10.0.0.10", "end": "10.0.0.20"}],
                        "dhcp_host": [{"mac": "52:54:00:00:00:01", "ip": "10.0.0.5", "name": "web"}]}]},
    "bridge": {"name": "br0", "interfaces": ["eth1"], "stp": True, "forward_delay": 4, "multicast_snooping": False,
               "mtu": 1500, "addresses": ["10.0.0.1/24"], "route": [{"to": "10.1.0.0/16", "via": "10.0.0.2", "metric": 5}],
               "routes": [{"to": "10.2.0.0/16"}], "dhcp4": False, "nameservers": ["1.1.1.1"]},
    "vlan": {"id": 100, "link": "eth0", "name": "vlan100", "addresses": ["10.0.0.1/24"], "mtu": 1500,
             "dhcp4": True, "nameservers": []},
    "nic_attachment": {"domain": "web", "network": "default", "bridge": "br0", "mac": "52:54:00:00:00:01",
                       "model": "virtio", "queues": 2, "link_state": "up", "live": True, "persistent": True},
    "port_forward": {"protocol": "tcp", "host_port": "8000-8010", "to_address": "10.0.0.5", "to_port": 80,
                     "in_interface": "eth0", "source": "0.0.0.0/0", "network": "lab"},
    "sysctl_profile": {"settings": {"net.ipv4.ip_forward": 1, "a.b": "x"}, "persist": True},
}

class SetLike(list):
    """Like the evaluator's toset() result: a list subclass."""


POOL = [SetLike(["a"]), SetLike([1]), "x", "", "nat", "tcp", "up", "virtio", "openvswitch", "8000-8010", "80", "80-", 0, 1, -1, 68, 4094,
        4095, 65535, 70000, 1.5, 3.0, True, False, None, [], [1], ["a"], [1, 2], [1, 2, 3], {}, {"a": 1},
        [{"to": "x"}], [{"address": "x"}], [{"start": "a", "end": "b"}], [{"ip": "a"}], [{}]]


def test_every_type_has_a_valid_draft_2020_12_schema():
    for rtype in RESOURCE_TYPES:
        schema = load_schema(rtype)
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert (SCHEMA_DIR / f"{rtype}.json").is_file()


def _objects(schema, node, path=""):
    """Every object schema inside a schema (resolving $defs once)."""
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            yield path, node
        for k, v in node.items():
            yield from _objects(schema, v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _objects(schema, v, f"{path}/{i}")


@pytest.mark.parametrize("rtype", RESOURCE_TYPES)
def test_additional_properties_are_closed_at_every_level(rtype):
    schema = load_schema(rtype)
    for path, obj in _objects(schema, schema):
        assert obj.get("additionalProperties") is False, f"{rtype}{path}"


@pytest.mark.parametrize("rtype", RESOURCE_TYPES)
def test_the_valid_examples_pass(rtype):
    assert Draft202012Validator(load_schema(rtype)).is_valid(VALID[rtype])


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _mutate(value, rng: random.Random, pool: list = POOL):
    out = copy.deepcopy(value)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(out) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent = out
        for key in path[:-1]:
            parent = parent[key]
        action = rng.random()
        if action < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        elif action < 0.3 and isinstance(parent, dict):
            parent[rng.choice(["colour", "prefix", "ip", "mac", "x"])] = copy.deepcopy(rng.choice(pool))
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(pool))
    return out


@pytest.mark.parametrize("rtype", RESOURCE_TYPES)
def test_precheck_agrees_with_jsonschema(rtype):
    schema = load_schema(rtype)
    fast, full = compile_precheck(schema), Draft202012Validator(schema)
    rng = random.Random(rtype)
    valid = invalid = 0
    for _ in range(3000):
        candidate = _mutate(VALID[rtype], rng)
        expected = full.is_valid(candidate)
        assert fast(candidate) == expected, candidate
        valid += expected
        invalid += not expected
    assert valid > 50 and invalid > 50


@pytest.mark.parametrize("rtype", RESOURCE_TYPES)
def test_the_precheck_of_values_with_nulls_and_unknowns_agrees_with_jsonschema_of_them_stripped(rtype):
    """``absent=True``: nulls and UNKNOWN read as strip_unknown leaves them, without the copy."""
    from kvmnet.engine.validate.schema import strip_unknown
    from kvmnet.sdk.values import UNKNOWN
    schema = load_schema(rtype)
    fast, full = compile_precheck(schema, absent=True), Draft202012Validator(schema)
    rng = random.Random(f"absent {rtype}")
    pool = POOL + [UNKNOWN, UNKNOWN, None, [UNKNOWN], [UNKNOWN, "a"], [{"to": UNKNOWN}], {"a": None}]
    valid = invalid = absent = 0
    for _ in range(3000):
        candidate = _mutate(VALID[rtype], rng, pool)
        stripped = strip_unknown(candidate).value
        expected = full.is_valid(stripped)
        assert fast(candidate) == expected, candidate
        valid += expected
        invalid += not expected
        absent += stripped is not candidate
    assert valid > 50 and invalid > 50 and absent > 500


def _instances(n):
    out = []
    for i in range(n):
        a, b = divmod(i, 250)
        kind = i % 5
        if kind == 0:
            t, attrs, p = "network", {"mode": "nat", "bridge": f"vb{i}", "ip": [{
                "address": f"10.{a}.{b}.1", "prefix": 24,
                "dhcp_range": [{"start": f"10.{a}.{b}.10", "end": f"10.{a}.{b}.100"}],
                "dhcp_host": [{"mac": "52:54:00:12:34:56", "ip": f"10.{a}.{b}.50", "name": "web"}]}]}, "libvirt"
        elif kind == 1:
            t, attrs, p = "bridge", {"interfaces": [f"p{i}"], "stp": False, "mtu": 1500,
                                     "addresses": [f"172.16.{b}.1/24"],
                                     "route": [{"to": "192.168.0.0/16", "via": f"172.16.{b}.254"}]}, "iproute"
        elif kind == 2:
            t, attrs, p = "vlan", {"id": i % 4000 + 1, "link": "eth0", "name": f"vl{i}"}, "iproute"
        elif kind == 3:
            t, attrs, p = "port_forward", {"protocol": "tcp", "host_port": 1000 + i, "to_address": "10.0.0.5",
                                           "to_port": 80}, "nftables"
        else:
            t, attrs, p = "nic_attachment", {"domain": "web", "network": "default", "mac": "52:54:00:12:34:56"}, "libvirt"
        out.append(ResourceInstance(address=f"{t}.r{i}", type=t, name=f"r{i}", key=None, provider=p, attrs=attrs,
                                    pos=SourcePos("big.hcl", i + 1)))
    return out


def test_ten_thousand_instances_validate_clean():
    """Every kind of instance, 10,000 of them, and no finding (the speed of this is a
    benchmark: ``make bench``, 10,000-resource validate)."""
    diags = validate_instances(_instances(10_000))
    assert not diags, [str(d) for d in list(diags)[:5]]
