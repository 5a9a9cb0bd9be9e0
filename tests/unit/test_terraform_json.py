"""Terraform's JSON plan/state pieces, the console's printing, did-you-mean and the
unclosed-construct finder: pure functions, no root."""
from __future__ import annotations

import json

import pytest

from kvmnet.engine import expr as X
from kvmnet.engine.config.hcl import parse_text
from kvmnet.engine.config.unclosed import unclosed
from kvmnet.engine.console import evaluate_line, render, type_name
from kvmnet.engine.plan import tfjson
from kvmnet.engine.plan.model import Plan, ResourceChange
from kvmnet.engine.suggest import did_you_mean
from kvmnet.sdk.values import UNKNOWN


def test_after_unknown_mirrors_the_value():
    after = {"name": "n", "bridge": {"name": UNKNOWN, "stp": True}, "ips": ["a", UNKNOWN], "uuid": UNKNOWN}
    assert tfjson.unknown_mirror(after) == {"bridge": {"name": True}, "ips": [False, True], "uuid": True}
    assert tfjson.unknown_mirror({"a": 1}) == {}
    assert tfjson.unknown_mirror(UNKNOWN) is True
    assert tfjson.unknown_mirror("x") is False


def test_sensitive_mirror_and_known_only():
    assert tfjson.sensitive_mirror({"a": 1}) == {}
    assert tfjson.sensitive_mirror([1]) == []
    assert tfjson.sensitive_mirror(3) is False
    assert tfjson.sensitive_mirror("s", sensitive=True) is True
    assert tfjson.known_only({"a": UNKNOWN, "b": [1, UNKNOWN]}) == {"b": [1]}


def test_output_changes_name_each_action():
    before = {"same": 1, "changed": "a", "gone": True}
    after = {"same": 1, "changed": "b", "new": [1], "later": UNKNOWN}
    got = tfjson.output_changes(before, after, frozenset({"changed"}))
    assert {n: c["actions"] for n, c in got.items()} == {
        "same": ["no-op"], "changed": ["update"], "new": ["create"], "later": ["create"],
        "gone": ["delete"]}
    assert got["changed"]["before"] is None and got["changed"]["after_sensitive"] is True
    assert got["later"]["after"] is None and got["later"]["after_unknown"] is True
    assert tfjson.changed_outputs(before, after) == [
        ("changed", "update"), ("new", "create"), ("later", "create"), ("gone", "delete")]


def test_type_of_in_terraform_notation():
    assert tfjson.type_of({"a": [1, "x"], "b": True, "c": None}) == [
        "object", {"a": ["tuple", ["number", "string"]], "b": "bool", "c": "dynamic"}]


def _plan(**kw) -> Plan:
    rc = ResourceChange("network.n", "network", "n", None, "libvirt", ["create"], None,
                        {"name": "n", "uuid": UNKNOWN})
    return Plan(lineage="L", serial=3, config_digest="d", resource_changes=[rc], **kw)


def test_plan_document_has_terraforms_keys_and_round_trips():
    p = _plan(outputs={"o": "v", "secret": "s"}, prior_outputs={"o": "old"},
              sensitive_outputs=["secret"], variable_values={"mtu": 1500},
              variables={"var_files": [], "vars": ["mtu=1500"]})
    doc = json.loads(p.dumps())
    for key in ("format_version", "kvmnet_version", "variables", "planned_values", "resource_changes",
                "resource_drift", "output_changes", "prior_state", "configuration", "timestamp", "errored"):
        assert key in doc, key
    (rc,) = doc["resource_changes"]
    assert rc["mode"] == "managed" and rc["provider_name"] == "libvirt"
    ch = rc["change"]
    assert ch["actions"] == ["create"] and ch["after_unknown"] == {"uuid": True}
    assert ch["before_sensitive"] is False and ch["after_sensitive"] == {}
    assert doc["variables"] == {"mtu": {"value": 1500}}
    (res,) = doc["planned_values"]["root_module"]["resources"]
    assert res["values"] == {"name": "n"}          # the unknown uuid is left out
    assert doc["planned_values"]["outputs"]["secret"] == {"sensitive": True, "type": "string"}
    assert doc["output_changes"]["o"]["actions"] == ["update"]
    assert "\"s\"" not in json.dumps(doc["output_changes"]["secret"]) and "\"s\"" not in json.dumps(doc["outputs"])
    again = Plan.from_json(doc)
    assert again.variables == {"var_files": [], "vars": ["mtu=1500"]}
    assert again.variable_values == {"mtu": 1500}
    assert again.prior_outputs == {"o": "old"} and again.sensitive_outputs == ["secret"]


def test_output_changes_are_whole_values():
    got = tfjson.output_changes({"l": [1]}, {"l": [1, 2], "u": [1, UNKNOWN]})
    assert got["l"]["after_unknown"] is False and got["l"]["before_sensitive"] is False
    assert got["u"]["after_unknown"] == [False, True] and got["u"]["after"] == [1]


def test_configuration_references_list_every_traversal():
    from kvmnet.engine.expr.reference import Reference
    from kvmnet.engine.plan.tfconfig import traversals
    ref = Reference(("network", "n", 0, "name"), (2,))
    assert traversals(ref) == ["network.n[0].name", "network.n[0]", "network.n"]
    assert traversals(Reference(("local", "hosts", 0), (2,))) == ["local.hosts[0]", "local.hosts"]
    assert traversals(Reference(("count", "index"))) == ["count.index"]


def test_a_plan_saved_before_the_terraform_format_still_loads():
    doc = {"format_version": "1.0", "lineage": "L", "serial": 1, "config_digest": "d",
           "variables": {"var_files": ["a.hcl"], "vars": []}, "resource_changes": []}
    p = Plan.from_json(doc)
    assert p.variables == {"var_files": ["a.hcl"], "vars": []} and p.variable_values == {}


def test_output_only_changes_count_as_changes():
    p = Plan(lineage="L", serial=1, config_digest="d", outputs={"a": 1}, prior_outputs={"a": 1})
    assert not p.has_changes
    p.outputs = {"a": 2}
    assert p.has_changes and p.output_changes == [("a", "update")]


def test_configuration_expressions():
    from kvmnet.engine.config.loader import load_config
    from kvmnet.engine.plan.tfconfig import configuration
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        Path(d, "main.hcl").write_text(
            'variable "mtu" {\n  default = 1400\n}\n'
            'locals {\n  sub = "10.0.0.0/24"\n}\n'
            'resource "network" "n" {\n  name = "n"\n  mode = "nat"\n'
            '  ip {\n    address = cidrhost(local.sub, 1)\n    prefix = 24\n  }\n}\n'
            'resource "port_forward" "f" {\n  count = 2\n  protocol = "tcp"\n  host_port = 8080 + count.index\n'
            '  to_address = "10.0.0.5"\n  to_port = 80\n  network = network.n.name\n}\n'
            'output "net" {\n  value = network.n.name\n}\n')
        cfg = load_config(d)
        doc = configuration(cfg)
    res = {r["address"]: r for r in doc["root_module"]["resources"]}
    n = res["network.n"]["expressions"]
    assert n["name"] == {"constant_value": "n"}
    assert n["ip"][0]["address"] == {"references": ["local.sub"]}
    f = res["port_forward.f"]
    assert f["expressions"]["network"] == {"references": ["network.n.name", "network.n"]}
    assert f["count_expression"] == {"constant_value": 2}
    assert doc["root_module"]["outputs"]["net"]["expression"]["references"][0] == "network.n.name"
    assert doc["root_module"]["variables"] == {"mtu": {"default": 1400}}


def _scope():
    return X.Scope(variables={"n": 2}, locals={"l": ["a", "b"]}, resolve_resource=None)


@pytest.mark.parametrize("line, printed", [
    ("var.n + 1", "3"),
    ('"x"', '"x"'),
    ("local.l", '[\n  "a",\n  "b",\n]'),
    ('{a = 1, b = [true]}', '{\n  "a" = 1\n  "b" = [\n    true,\n  ]\n}'),
    ("null", "null"),
    ("[]", "[]"),
    ("tolist([1, 2])", "tolist([\n  1,\n  2,\n])"),
    ("tomap({a = 1})", 'tomap({\n  "a" = 1\n})'),
    ("{a = tolist([])}", '{\n  "a" = tolist([])\n}'),
    ("toset([])", "toset([])"),
    ("type(local.l)", "tuple([\n    string,\n    string,\n])"),
    ("type({a = 1, b = [1]})", "object({\n    a: number,\n    b: tuple([\n        number,\n    ]),\n})"),
    ("type([])", "tuple([])"),
    ('type(toset(["a"]))', "set(string)"),
    ("type(tolist([1]))", "list(number)"),
    ("type(tomap({a = [1]}))", "map(\n    tuple([\n        number,\n    ]),\n)"),
    ('"${type(1)}"', "number"),
    ('var.n > 1 ? type(local.l[0]) : type(1)', "string"),
    (" type(type(1)) ", "type"),
    ("   ", None),
])
def test_console_lines(line, printed):
    assert evaluate_line(line, _scope()) == printed


@pytest.mark.parametrize("line", [
    "[type(1), type(\"a\")]", "{a = type(var.n)}", "type(1) == type(2)", "type(1) != null",
    'join(",", [type(1)])', "length(type(1))", '"x${type(1)}"'])
def test_console_refuses_type_inside_a_larger_value(line):
    with pytest.raises(X.ExprError):
        evaluate_line(line, _scope())


def test_console_type_errors_raise():
    with pytest.raises(X.ExprError):
        evaluate_line("type(1) + type(2)", _scope())        # a type is no number
    with pytest.raises(X.ExprError):
        evaluate_line("1 +", _scope())
    assert render(UNKNOWN) == "(known after apply)" and type_name(None) == "dynamic"


def test_type_is_not_a_function_in_configs():
    with pytest.raises(X.ExprError):
        X.parse_expression("type(1)").evaluate(_scope())


def test_did_you_mean():
    assert did_you_mean("netwrk", ["network", "bridge"]) == ' (did you mean "network"?)'
    assert did_you_mean("Bridge", ["network", "bridge"]) == ' (did you mean "bridge"?)'
    assert did_you_mean("zzz", ["network", "bridge"]) == ""


@pytest.mark.parametrize("text, found", [
    ('locals {\n  a = 1\n', ("block or object", 1)),
    ('locals {\n  a = "x\n}\n', ("string", 2)),
    ('locals {\n  a = [1,\n  2\n', ("list", 2)),
    ('locals {\n  a = "${x\n', ("interpolation", 2)),
    ('locals {\n  # {\n  a = "}" // {\n}\n', None),
    ('locals {\n  a = <<EOT\n{\nEOT\n}\n', None),
    ('locals {\n  a = <<EOT\n{\n', ("heredoc", 2)),
    ('/* {\n', ("comment", 1)),
])
def test_unclosed(text, found):
    assert unclosed(text) == found


def test_syntax_error_points_at_the_unclosed_block():
    parsed = parse_text('locals {\n  a = 1\n  b = 2\n\n\n', "main.hcl")
    (d,) = parsed.errors
    assert d.line == 1 and "block or object opened here is never closed" in str(d)


def test_module_resources_are_child_modules():
    rs = [tfjson.state_resource(a, "network", "n", None, "libvirt", {"name": a})
          for a in ("network.n", 'module.lab["a"].network.n', "module.x.network.n")]
    root = tfjson.state_values(rs, {})["root_module"]
    assert [r["address"] for r in root["resources"]] == ["network.n"]
    assert [(m["address"], [r["address"] for r in m["resources"]]) for m in root["child_modules"]] == [
        ('module.lab["a"]', ['module.lab["a"].network.n']), ("module.x", ["module.x.network.n"])]


def test_nested_module_resources_nest_under_their_parent_module():
    rs = [tfjson.state_resource(a, "network", "n", None, "libvirt", {"name": a})
          for a in ('module.site["b"].module.net.network.n', "module.x.module.y[0].network.n",
                    "module.x.network.n")]
    root = tfjson.state_values(rs, {})["root_module"]
    assert "resources" not in root
    site, x = root["child_modules"]
    assert site == {"address": 'module.site["b"]', "child_modules": [
        {"address": 'module.site["b"].module.net', "resources": [rs[0]]}]}
    assert x == {"address": "module.x", "resources": [rs[2]], "child_modules": [
        {"address": "module.x.module.y[0]", "resources": [rs[1]]}]}


def test_sensitive_attributes_are_never_in_clear_in_the_documents():
    rc = ResourceChange("network.n", "network", "n", None, "libvirt", ["create"], None,
                        {"name": "secret-net", "mode": "nat"})
    rc.sensitive = ["name"]
    p = Plan(lineage="L", serial=1, config_digest="d", resource_changes=[rc])
    (res,) = p.to_json()["planned_values"]["root_module"]["resources"]
    assert res["values"]["name"] != "secret-net" and res["values"]["mode"] == "nat"
    assert res["sensitive_values"] == {"name": True}
    assert "secret-net" not in p.dumps()
