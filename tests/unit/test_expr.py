"""Unit tests of kvmnet's HCL expression language (engine/expr)."""
from __future__ import annotations

import pytest

from kvmnet.engine.expr import (
    ExprError, Reference, Scope, SetValue, compile_value, parse_expression, parse_template,
)
from kvmnet.sdk.values import UNKNOWN

RESOURCES = {
    ("network", "lab"): {"name": "lab", "uuid": UNKNOWN, "bridge": "virbr9"},
    ("network", "multi"): [{"name": "m0"}, {"name": "m1"}],
    ("network", "each"): {"a": {"name": "ea"}, "b": {"name": "eb"}},
}



def same_type(result, value) -> bool:
    """The types match; a non-integral number is a float (number.Number carries cty's
    exact value), a list from tolist a ListValue, a map from tomap a MapValue."""
    return type(result) is type(value) or isinstance(result, type(value)) and type(value) in (float, list, dict)

def resolve(rtype, name):
    return RESOURCES[(rtype, name)]


def scope(**kw):
    base = dict(
        variables={"n": 3, "s": "str", "l": [1, 2, 3], "m": {"b": "x", "a": "y"},
                   "t": True, "nil": None, "subnet": "10.1.0.0/16", "strs": ["b", "a"]},
        locals={"name": "lab", "u": UNKNOWN, "lu": [1, UNKNOWN]},
        resolve_resource=resolve,
        resource_types={"network", "bridge"},
    )
    base.update(kw)
    return Scope(**base)


def ev(text, sc=None):
    return parse_expression(text).evaluate(sc or scope())


def err(text, sc=None) -> str:
    with pytest.raises(ExprError) as e:
        parse_expression(text).evaluate(sc or scope())
    return e.value.message


# ---- literals ---------------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("1", 1), ("1.5", 1.5), ("1e3", 1000), ("2.0", 2), ("-4", -4), ("-1.5", -1.5),
    ("true", True), ("false", False), ("null", None),
    ('"abc"', "abc"), ('"a\\"b\\\\c\\n\\t"', 'a"b\\c\n\t'), ('"\\u00e9"', "é"),
    ('"$${x}"', "${x}"), ('"%%{x}"', "%{x}"), ('"a$b%c"', "a$b%c"),
    ("[]", []), ("[1, \"a\", true,]", [1, "a", True]), ("{}", {}),
    ('{a = 1, "b" = 2, c: 3}', {"a": 1, "b": 2, "c": 3}),
    ("{for = 1}", {"for": 1}),
    ("[[1], {x = [2]}]", [[1], {"x": [2]}]),
    ("# comment\n 1 /* inline */ + 2 // trailing", 3),
])
def test_literals(text, value):
    result = ev(text)
    assert result == value and same_type(result, value)


def test_object_key_expressions():
    assert ev("{(var.s) = 1, (local.name) = 2}") == {"str": 1, "lab": 2}
    assert ev('{"k-${var.n}" = 1}') == {"k-3": 1}


def test_heredoc_in_expression():
    assert ev("upper(<<EOT\nhi ${var.n}\nEOT\n)") == "HI 3\n"   # the marker ends its line (HCL)
    assert ev("<<-EOT\n    a\n      b\n    EOT\n") == "a\n  b\n"


# ---- operators and precedence ---------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("10 - 4 - 3", 3), ("2 * 3 % 4", 2),
    ("5 / 2", 2.5), ("4 / 2", 2), ("7 % 3", 1), ("-7 % 3", -1), ("7 % -3", 1),
    ("5.5 % 2", 1.5), ("0.5 + 0.5", 1), ("- - 3", 3), ("-var.n", -3), ('"3" + 1', 4),
    ("1 < 2", True), ("2 <= 2", True), ("3 > 4", False), ("3 >= 4", False),
    ("1 + 1 == 2", True), ("1 == 1.0", True), ('1 == "1"', False), ("true == 1", False),
    ("null == null", True), ('var.nil == null', True), ('[1, "a"] == [1, "a"]', True),
    ("{a = 1} != {a = 2}", True),
    ("true && false", False), ("true || false", True), ("!true", False),
    ("!false && false", False), ("true || false && false", True),
    ("false && true || true", True), ("1 < 2 == true", True),
    ("var.n > 2 ? \"big\" : \"small\"", "big"), ("false ? 1 : true ? 2 : 3", 2),
    ("1 + 1 > 1 ? 10 : 20", 10), ("var.t && var.n == 3", True),
    ('"true" && true', True), ('"1" && true', True), ('!"0"', True),
    ("1 % 0", 1), ("0.1 + 0.2 == 0.3", True), ("1 / 0 > 1e300", True), ("-5 % 3", -2),
])
def test_operators(text, value):
    result = ev(text)
    assert result == value and same_type(result, value)


def test_logical_evaluates_both_sides():
    """As in Terraform: && and || do not short-circuit, so a guard does not hide an error."""
    assert "cannot get attribute" in err("var.nil != null && var.nil.x == 1")
    assert "cannot get attribute" in err("var.nil == null || var.nil.x")
    assert ev("var.nil == null ? 1 : var.nil.x") == 1


@pytest.mark.parametrize("text,message", [
    ('1 + "a"', 'a number is required, got "a"'),
    ("1 + null", "a number is required, got null"),
    ("1 + [1]", "a number is required, got tuple"),
    ("0 / 0", "can't divide zero by zero"), ("(1 / 0) % 2", "infinite dividend"),
    ("true ? 1 : true", "inconsistent conditional result types"),
    ("true ? [] : {}", "inconsistent conditional result types"),
    ("!1", "a bool is required"), ('1 && true', "a bool is required"),
    ("null ? 1 : 2", "the condition value is null"),
    ('"x" ? 1 : 2', "the condition must be a bool"),
    ('"a" < "b"', "a number is required"),
])
def test_operator_errors(text, message):
    assert message in err(text)


# ---- templates --------------------------------------------------------------

def test_templates():
    assert ev('"a-${var.n}-b"') == "a-3-b"
    assert ev('"${var.t}/${1.5}/${var.s}"') == "true/1.5/str"
    assert ev('"${var.n}"') == 3                       # single interpolation unwraps
    assert ev('"${var.l}"') == [1, 2, 3]
    assert ev('"x${"nested ${var.n} q"}y"') == "xnested 3 qy"
    assert ev('"%{ if var.t }yes%{ else }no%{ endif }"') == "yes"
    assert ev('"%{ if !var.t }yes%{ endif }"') == ""
    assert ev('"%{ for i, x in var.l }${i}=${x};%{ endfor }"') == "0=1;1=2;2=3;"


def test_template_errors():
    assert "null value" in err('"a${var.nil}"')
    assert "string template" in err('"a${var.l}"')
    with pytest.raises(ExprError, match="unexpected end of expression"):
        parse_expression('"abc')
    with pytest.raises(ExprError, match="invalid escape"):
        parse_expression('"a\\qb"')
    with pytest.raises(ExprError, match="endif"):
        parse_template("%{ if true }x")


@pytest.mark.parametrize("raw,value", [
    ("plain", "plain"), ("virbr${count.index}", "virbr2"), ("${count.index}", 2),
    ("${var.l}", [1, 2, 3]), ("${var.n}${var.n}", "33"), ("$${literal}", "${literal}"),
    ('a "q" \\ \n ${var.s}', 'a "q" \\ \n str'),             # literal parts already unescaped
    ('${format("%s \\"x\\"", var.s)}', 'str "x"'),          # escapes inside ${} are raw HCL
    ('a ${format("\\"%s\\"", var.s)} b', 'a "str" b'),
    ('a${"}"}b', "a}b"), ("%%{x}", "%{x}"),
    ("%{ for x in var.strs }${x},%{ endfor }", "b,a,"),
    ("<<EOT\nhello ${var.s}\n  world\nEOT", "hello str\n  world\n"),
    ("<<-EOT\n    indented ${var.n}\n    more\n    EOT", "indented 3\nmore\n"),
    ("<<EOT\na \\n $${x}\nEOT", "a \\n ${x}\n"),
    ("${ var.n }", 3), ('${var.m["a"]}', "y"), ("${true}", True),
])
def test_parse_template(raw, value):
    assert parse_template(raw).evaluate(scope(count={"index": 2})) == value


def test_plain_strings_are_literals():
    from kvmnet.engine.expr.nodes import Literal
    assert isinstance(parse_template("a $ % { } plain"), Literal)


# ---- traversals ---------------------------------------------------------------

def test_traversals():
    assert ev("var.l[1]") == 2
    assert ev("var.l.1") == 2                     # legacy index syntax
    assert ev('var.m["a"]') == "y"
    assert ev("var.m.b") == "x"
    assert ev("network.lab.name") == "lab"
    assert ev("network.multi[1].name") == "m1"
    assert ev('network.each["b"].name') == "eb"
    assert ev("network.multi[*].name") == ["m0", "m1"]
    assert ev("network.multi.*.name") == ["m0", "m1"]
    assert ev("network.lab[*].name") == ["lab"]
    assert ev("var.nil[*]") == []
    assert ev("[1, 2, 3][2]") == 3
    assert ev('{a = {b = 5}}.a["b"]') == 5
    assert ev("keys(var.m)[0]") == "a"
    assert ev("var.l[var.n - 2]") == 2
    assert ev('var.l["1"]') == 2
    assert ev("local.name") == "lab"
    assert ev("count.index", scope(count={"index": 4})) == 4
    assert ev("each.key", scope(each={"key": "k", "value": "v"})) == "k"
    assert ev("each.value", scope(each={"key": "k", "value": "v"})) == "v"


@pytest.mark.parametrize("text,message", [
    ("var.x", 'reference to undeclared input variable "x"'),
    ("local.x", 'reference to undeclared local value "x"'),
    ("network.nope", 'reference to undeclared resource "network.nope"'),
    ("network.nope.name", 'reference to undeclared resource "network.nope"'),
    ("foo.x", 'unknown reference "foo.x"'),
    ("foo", 'unknown name "foo"'),
    ("network", 'must be followed by the resource name'),
    ("var", '"var" must be followed by a name'),
    ("count.index", '"count.index" can only be used in a resource that sets "count"'),
    ("each.key", 'can only be used in a resource that sets "for_each"'),
    ("network.lab.nam", '"network.lab.nam": object has no attribute "nam"'),
    ("network.multi[5].name", '"network.multi[5]": index 5 out of range for a list of 2 elements'),
    ("var.l[-1]", "index -1 out of range"),
    ('var.m["zz"]', 'has no element with key "zz"'),
    ("var.nil.x", "null value"),
    ("var.n.x", "a number value has no attributes"),
    ("var.s[0]", "cannot index a string"),
    ('toset(["a"])[0]', "elements of a set cannot be selected"),
    ("frobnicate(1)", 'unknown function "frobnicate"'),
])
def test_reference_errors(text, message):
    assert message in err(text)


def test_count_and_each_errors():
    assert 'only the attribute "index"' in err("count.foo", scope(count={"index": 0}))
    assert '"key" and "value"' in err("each.foo", scope(each={"key": 1, "value": 2}))


def test_resource_roots_without_resolver():
    assert 'unknown reference "network.lab.name"' in err(
        "network.lab.name", Scope(variables={}))
    # without resource_types every other root goes to the resolver
    assert ev("network.lab.name", Scope(resolve_resource=resolve)) == "lab"


def test_loop_variables_shadow_and_scope():
    assert ev("[for var in [1, 2] : var]") == [1, 2]
    assert "unknown name" in err("[for x in [1] : y]")


# ---- for expressions -----------------------------------------------------------

def test_for_expressions():
    assert ev("[for i in range(3) : i * 2]") == [0, 2, 4]
    assert ev("[for i, x in var.l : x if i > 0]") == [2, 3]
    assert ev("{for k, v in var.m : k => upper(v)}") == {"a": "Y", "b": "X"}
    assert ev("[for k, v in var.m : k]") == ["a", "b"]                # sorted keys
    assert ev("[for v in var.m : v]") == ["y", "x"]
    assert ev('{for s in ["a", "b", "a"] : s => s...}') == {"a": ["a", "a"], "b": ["b"]}
    assert ev("[for x in toset(var.strs) : x]") == ["a", "b"]
    assert ev("[for k, v in toset(var.strs) : k == v]") == [True, True]
    assert ev("{for i, x in var.l : x => i if x != 2}") == {"1": 0, "3": 2}
    assert ev("[for x in [[1, 2], [3]] : [for y in x : y * 10]]") == [[10, 20], [30]]
    assert ev("[for x in var.l : x if x > var.n - 2]") == [2, 3]


def test_for_errors():
    assert "duplicate object key" in err('{for x in [1, 1] : "k" => x}')
    assert "cannot iterate over a null" in err("[for x in null : x]")
    assert "needs a list, set or map" in err("[for x in 3 : x]")
    assert "a bool is required" in err("[for x in [1] : x if 1]")


# ---- unknown values ----------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "local.u", "local.u + 1", "-local.u", "!local.u", '"a-${local.u}"', "local.u.name",
    "local.u[0]", "var.l[local.u]", "upper(local.u)", 'format("%s", local.u)',
    "local.u ? 1 : 2", "local.u == 1", "local.lu == [1, 2]", "local.u && true",
    "network.lab.uuid", "[for x in local.u : x]", "cidrhost(local.u, 1)",
    'join(",", local.lu)', "toset(local.lu)", "{(local.u) = 1}", "local.u > 1",
    "[for x in var.l : x if local.u]", "local.u[*].name",
])
def test_unknown_propagates(text):
    assert ev(text) is UNKNOWN


def test_unknown_inside_collections():
    assert ev("[1, local.u]") == [1, UNKNOWN]
    assert ev("length(local.lu)") == 2
    assert ev("concat(local.lu, [3])") == [1, UNKNOWN, 3]
    assert ev("{a = local.u}") == {"a": UNKNOWN}
    assert ev("false && local.u") is False
    assert ev("local.u || true") is True
    assert ev("true ? 1 : local.u") == 1
    assert ev("keys({b = local.u, a = 1})") == ["a", "b"]


# ---- references -----------------------------------------------------------------------

def refs(text):
    return [r.parts for r in parse_expression(text).references()]


def test_references():
    assert refs("var.x") == [("var", "x")]
    assert refs("network.lab[0].name") == [("network", "lab", 0, "name")]
    assert refs('network.v["a"].name') == [("network", "v", "a", "name")]
    assert refs("network.lab[count.index].name") == [("network", "lab"), ("count", "index")]
    assert refs("network.lab[*].name") == [("network", "lab")]
    assert refs('format("%s-%d", var.a, count.index)') == [("var", "a"), ("count", "index")]
    assert refs("[for x in var.xs : x.name if x.on]") == [("var", "xs")]
    assert refs("{for k, v in var.m : k => v + local.add}") == [("var", "m"), ("local", "add")]
    assert refs("[for x in var.a : [for y in x : y + var.b]]") == [("var", "a"), ("var", "b")]
    assert refs("var.x + var.x") == [("var", "x")]
    assert refs("1 + 2") == []
    assert refs('"${each.value}-${bridge.br0.name}"') == [("each", "value"), ("bridge", "br0", "name")]
    assert refs("(var.m).a") == [("var", "m")]
    assert refs("var.l.1") == [("var", "l", 1)]


def test_reference_object():
    r = parse_expression('network.v["a"].name').references()[0]
    assert isinstance(r, Reference)
    assert r.text == 'network.v["a"].name' and str(r) == r.text
    assert r.indexes == (2,)
    assert r.is_resource and r.resource_address == "network.v"
    assert r.instance_key == "a" and r.instance_address == 'network.v["a"]'
    r = parse_expression("network.lab.name").references()[0]
    assert r.instance_key is None and r.instance_address == "network.lab"
    r = parse_expression("network.lab[count.index].name").references()[0]
    assert r.text == "network.lab" and r.parts == ("network", "lab")
    r = parse_expression("var.x").references()[0]
    assert not r.is_resource and r.resource_address is None and r.root == "var"
    assert Reference(("var", "x")) == r          # text and offset do not take part
    r = parse_expression("1 + network.multi[1].name").references()[0]
    assert r.offset == 1 and r.instance_address == "network.multi[1]"   # offset: the line


# ---- parse errors ---------------------------------------------------------------------

@pytest.mark.parametrize("text,message", [
    ("1 +", "unexpected end of expression"),
    ("(1", 'unexpected end of expression; expected ")"'),
    ("[1 2]", 'unexpected "2"; expected "," or "]"'),
    ("a ? b", "unexpected end of expression"),
    ("1 2", 'unexpected "2"'),
    ("{a 1}", 'unexpected "1"'),
    ("f(", "unexpected end of expression"),
    ("frob(1)", 'unknown function "frob"'),
    ("upper(1", 'expected "," or ")"'),
    ("[for x in y x]", 'unexpected "x"'),
    ("1 @ 2", 'unexpected character "@"'),
    ("a.", "unexpected end of line"),
])
def test_parse_errors(text, message):
    with pytest.raises(ExprError) as e:
        parse_expression(text)
    assert message in e.value.message
    assert e.value.offset == 1      # the line, within the text


def test_errors_name_the_line_of_the_sub_expression():
    with pytest.raises(ExprError) as e:
        parse_expression("[\n  1,\n  frob(2),\n]")
    assert e.value.offset == 3
    with pytest.raises(ExprError) as e:
        parse_expression("{\n  a = 1\n  b = 2 +\n}")
    assert e.value.offset == 4
    with pytest.raises(ExprError) as e:
        parse_expression("[\n 1,\n var.l + 1\n]").evaluate(scope())
    assert e.value.offset == 3


# ---- compiled values ---------------------------------------------------------------------

def test_compile_value():
    raw = {
        "name": '${format("net-%d", count.index)}',
        "bridge": "virbr${count.index}",
        "mode": "nat",
        "mtu": 1500.0,
        "autostart": True,
        "domain": None,
        "ports": [1, "a", "${var.n}"],
        "depends_on": ["${network.lab}"],
        "ignore_changes": ["autostart"],
        "ip": [{"address": '${cidrhost(var.subnet, count.index + 1)}', "prefix": 24}],
        "tags": {"a": 1, "b": "${var.n}", "${var.s}": "dyn"},
    }
    c = compile_value(raw)
    sc = scope()
    v0 = c.evaluate(sc.with_count(0))
    v1 = c.evaluate(sc.with_count(1))
    assert v0 == {
        "name": "net-0", "bridge": "virbr0", "mode": "nat", "mtu": 1500, "autostart": True,
        "domain": None, "ports": [1, "a", 3],
        "depends_on": [{"name": "lab", "uuid": UNKNOWN, "bridge": "virbr9"}],
        "ignore_changes": ["autostart"], "ip": [{"address": "10.1.0.1", "prefix": 24}],
        "tags": {"a": 1, "b": 3, "str": "dyn"},
    }
    assert type(v0["mtu"]) is int
    assert v1["name"] == "net-1" and v1["ip"][0]["address"] == "10.1.0.2"
    assert v0["ports"] is not v1["ports"]                 # fresh values per evaluation
    assert [r.parts for r in c.references()] == [
        ("count", "index"), ("var", "n"), ("network", "lab"), ("var", "subnet"), ("var", "s")]
    assert not c.is_constant and compile_value({"a": [1, "x"]}).is_constant


def test_compile_errors_carry_path():
    with pytest.raises(ExprError) as e:
        compile_value({"ip": [{"address": "${frob(1)}"}]})
    assert e.value.path == ("ip", 0, "address") and e.value.attribute == "ip[0].address"
    c = compile_value({"ip": [{"dhcp": [{"x": 1}, {"start": "${var.nope}"}]}]})
    with pytest.raises(ExprError) as e:
        c.evaluate(scope())
    assert e.value.attribute == "ip[0].dhcp[1].start"
    assert "undeclared input variable" in e.value.message


def test_compile_caches_parsed_strings():
    a = compile_value("${var.n + 1}")
    b = compile_value("${var.n + 1}")
    assert a.node is b.node


def test_compile_against_python_hcl2_output():
    hcl2 = pytest.importorskip("hcl2")
    text = '''
resource "network" "lab" {
  count   = 2
  name    = format("net-%d", count.index)
  bridge  = "virbr${count.index}"
  doubled = [for i in range(3) : i * 2]
  upper   = {for k, v in var.m : k => upper(v)}
  size    = var.n > 2 ? "big" : "small"
  mixed   = [1, "a", var.n]
  map     = {a = 1, "b" = var.n}
  quoted  = format("%s \\"x\\"", var.s)
  neg     = -1
  cidr    = cidrsubnet("10.0.0.0/16", 8, 2)
  text    = <<-EOT
    host ${count.index}
    EOT
  lifecycle {
    ignore_changes = [autostart]
  }
}
'''
    data = hcl2.loads(text, serialization_options=hcl2.SerializationOptions(
        strip_string_quotes=True, explicit_blocks=False))
    body = data["resource"][0]["network"]["lab"]
    c = compile_value({k: v for k, v in body.items() if k not in ("count", "__is_block__")})
    v = c.evaluate(scope(count={"index": 1}))
    assert v["name"] == "net-1" and v["bridge"] == "virbr1"
    assert v["doubled"] == [0, 2, 4] and v["upper"] == {"a": "Y", "b": "X"}
    assert v["size"] == "big" and v["mixed"] == [1, "a", 3] and v["map"] == {"a": 1, "b": 3}
    assert v["quoted"] == 'str "x"' and v["neg"] == -1 and v["cidr"] == "10.0.2.0/24"
    assert v["text"] == "host 1\n"
    assert v["lifecycle"][0]["ignore_changes"] == ["autostart"]


def test_set_value_type():
    s = ev('toset(["b", "a", "b"])')
    assert isinstance(s, SetValue) and isinstance(s, list) and s == ["a", "b"]
    assert repr(s) == "toset(['a', 'b'])"


def test_count_resource_needs_an_index():
    assert 'network.multi has "count" set' in err("network.multi.name")


def test_dashed_names_hint():
    assert '"n - 1"' in err("var.n-1")
    assert '"index - 1"' in err("count.index-1", scope(count={"index": 1}))


def test_scope_derivations_share_tables():
    base = scope()
    c = base.with_count(3)
    e = base.with_each("k", "v")
    r = base.replace(locals={"name": "other"})
    assert c.count == {"index": 3} and base.count is None and c.variables is base.variables
    assert e.each == {"key": "k", "value": "v"}
    assert ev("local.name", r) == "other" and ev("local.name", base) == "lab"
    assert "only var., local., count. and each. can be used here" in err(
        "network.lab.name", Scope())
