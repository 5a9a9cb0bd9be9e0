"""Variable type constraints, conversion and --var values."""
from __future__ import annotations

import pytest

from kvmnet.engine.expr import ExprError, SetValue, Type, convert, parse_cli_value, parse_type
from kvmnet.sdk.values import UNKNOWN


@pytest.mark.parametrize("text,rendered", [
    ("string", "string"), ("${string}", "string"), ("number", "number"), ("bool", "bool"),
    ("any", "any"), ("${list(string)}", "list(string)"), ("set(number)", "set(number)"),
    ("${map(object({a = list(number)}))}", "map(object({a = list(number)}))"),
    ("${object({a = string, b = number})}", "object({a = string, b = number})"),
    ("object({a = string, b = optional(number, 3)})", "object({a = string, b = optional(number, 3)})"),
    ("tuple([string, number])", "tuple([string, number])"),
    ("list", "list(any)"), ("map", "map(any)"),
])
def test_parse_type(text, rendered):
    t = parse_type(text)
    assert isinstance(t, Type) and str(t) == rendered


def test_python_hcl2_type_shapes():
    hcl2 = pytest.importorskip("hcl2")
    data = hcl2.loads('a = string\nb = list(string)\nc = object({x = number})\n',
                      serialization_options=hcl2.SerializationOptions(
                          strip_string_quotes=True, explicit_blocks=False))
    assert [str(parse_type(data[k])) for k in "abc"] == [
        "string", "list(string)", "object({x = number})"]


@pytest.mark.parametrize("text,message", [
    ("strin", 'unknown type "strin"'),
    ("list(string, number)", "takes exactly one element type"),
    ("object(string)", "takes one object of attribute types"),
    ("tuple(string)", "takes one list of element types"),
    ("frob(string)", 'unknown type constructor "frob"'),
    ("list(", "unexpected end"),
    ("1", "invalid type constraint"),
])
def test_parse_type_errors(text, message):
    with pytest.raises(ExprError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_type(text)


@pytest.mark.parametrize("value,type_,result", [
    ("3", "number", 3), ("2.5", "number", 2.5), (3.0, "number", 3), ("-1", "number", -1),
    ("true", "bool", True), ("false", "bool", False), (True, "bool", True),
    (3, "string", "3"), (True, "string", "true"), (1.5, "string", "1.5"), ("x", "string", "x"),
    ([1, "2"], "list(number)", [1, 2]), ([1, 2], "list(string)", ["1", "2"]),
    ({"a": "1"}, "map(number)", {"a": 1}),
    ([1, "a"], "any", [1, "a"]), ({"x": [1]}, "any", {"x": [1]}),
    ([1, "a"], "list(any)", ["1", "a"]),
    (None, "number", None), (UNKNOWN, "string", UNKNOWN),
    ({"a": 1, "extra": 2}, "object({a = string, b = optional(number, 3), c = optional(bool)})",
     {"a": "1", "b": 3, "c": None}),
    ({"a": "x", "b": None}, "object({a = string, b = optional(number, 7)})", {"a": "x", "b": 7}),
    (["a", 1], "tuple([string, number])", ["a", 1]),
    ([{"p": "1"}], "list(object({p = number}))", [{"p": 1}]),
])
def test_convert(value, type_, result):
    out = convert(value, type_)
    assert out == result and (type(out) is type(result) or isinstance(out, type(result))
                              and type(result) in (float, list, dict))


def test_convert_to_set():
    s = convert(["b", "a", "b"], "set(string)")
    assert isinstance(s, SetValue) and s == ["a", "b"]
    assert convert([2, 1], "set(number)") == [1, 2]


@pytest.mark.parametrize("value,type_,message", [
    ("abc", "number", 'a number is required, got "abc"'),
    (True, "number", "a number is required, got bool"),
    ([1], "number", "a number is required, got tuple"),
    ("yes", "bool", 'a bool is required, got "yes"'),
    (1, "bool", "a bool is required, got number"),
    ([1], "string", "a string is required, got tuple"),
    ("x", "list(string)", "a list of string is required, got string"),
    ([1, "x"], "list(number)", '[1]: a number is required, got "x"'),
    ({"a": "x"}, "map(number)", '["a"]: a number is required'),
    ([1], "map(string)", "a map of string is required, got tuple"),
    ({"b": 1}, "object({a = string})", 'attribute "a" is required'),
    ({"a": {"b": "x"}}, "object({a = object({b = number})})", 'a.b: a number is required'),
    ("x", "object({a = string})", "an object is required, got string"),
    (["a"], "tuple([string, number])", "a tuple of 2 elements is required, got 1"),
    (" 1", "number", 'a number is required, got " 1"'),
])
def test_convert_errors(value, type_, message):
    with pytest.raises(ExprError) as e:
        convert(value, type_)
    assert message in e.value.message


@pytest.mark.parametrize("text,type_,result", [
    ("3", "number", 3), ("3", None, "3"), ("3", "string", "3"), ("true", "bool", True),
    ("hello world", "string", "hello world"), ("[1,2]", "any", "[1,2]"),
    ("[1,2]", "list(number)", [1, 2]), ('["a", "b"]', "${list(string)}", ["a", "b"]),
    ('{a = "x", b = 2}', "map(string)", {"a": "x", "b": "2"}),
    ('{port = 80}', "object({port = number, host = optional(string, \"h\")})",
     {"port": 80, "host": "h"}),
    ('["b", "a"]', "set(string)", ["a", "b"]),
])
def test_parse_cli_value(text, type_, result):
    assert parse_cli_value(text, type_) == result


def test_parse_cli_value_errors():
    with pytest.raises(ExprError, match="a number is required"):
        parse_cli_value("three", "number")
    with pytest.raises(ExprError, match="variables may not be used here"):
        parse_cli_value("[var.x]", "list(string)")
    with pytest.raises(ExprError):
        parse_cli_value("[1,", "list(number)")
