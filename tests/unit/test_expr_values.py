"""Terraform's values in kvmnet: cty numbers, list/tuple and map/object, type
unification, Go's string casing. tests/differential/ checks the same against
OpenTofu; these pin the pieces without it, and the errors end to end (FILE:LINE)."""
from __future__ import annotations

from fractions import Fraction

import pytest

from kvmnet.cli import main
from kvmnet.engine.expr import ExprError, Scope, number, ops, parse_expression
from kvmnet.engine.expr.types import ANY, NUMBER, STRING, Type, type_of, unify


def ev(text):
    return parse_expression(text).evaluate(Scope())


# -- numbers ----------------------------------------------------------------------
@pytest.mark.parametrize("text,printed", [
    ("0.1 + 0.2", "0.3"), ("1 / 3", "0." + "3" * 154 + "5"), ("2 / 3", "0." + "6" * 153 + "7"),
    ("1e-7", "0.0000001"), ("1e20", "100000000000000000000"), ("-2.5", "-2.5"),
    ("1e30 * 1e30 + 0.5", "1" + "0" * 60 + ".5"), ("9007199254740993.5", "9007199254740993.5"),
    ("-5 % 3", "-2"), ("5 % -3", "2"), ("-5.5 % 2", "-1.5"), ("5 % 0", "5"), ("0.3 % 0.1", "0"),
    ("9" * 160, "1" + "0" * 160),
])
def test_number_text(text, printed):
    assert number.to_text(ev(text)) == printed


def test_numbers_compare_exactly():
    assert ev("0.1 + 0.2 == 0.3") is True
    assert ev("1 / 3 * 3 == 1") is True
    assert ev("0.1 + 0.2 > 0.3") is False
    a, b = ev("1 / 3"), ev("1 / 3 + 1e-100")
    assert float(a) == float(b) and not ops.equals(a, b) and ev("1 / 3 < 1 / 3 + 1e-100") is True


def test_number_is_a_float_carrying_its_exact_value():
    v = ev("0.1")
    assert isinstance(v, float) and v == 0.1 and v.exact == number.exact(v)
    assert number.exact(0.1) == Fraction(1, 10)       # a plain float reads as its shortest text
    assert type(ev("4 / 2")) is int and type(ev("1e3")) is int


@pytest.mark.parametrize("text", ["1.", ".5", "+5", "-5", "1e3", "1E-3", "007"])
def test_parse_accepts_what_cty_accepts(text):
    assert number.parse(text) is not None


@pytest.mark.parametrize("text", [" 1", "1 ", "0x10", "1_000", "", "Infinity", "NaN", "1e", "1e501"])
def test_parse_refuses(text):
    assert number.parse(text) is None


def test_infinity_compares_but_zero_by_zero_fails():
    assert ev("1 / 0 > 1e300") is True and ev("-1 / 0 < 0") is True
    with pytest.raises(ExprError, match="divide zero by zero"):
        ev("0 / 0")
    with pytest.raises(ExprError, match="cannot be stored"):
        number.check_storable({"a": [ev("1 / 0")]})


# -- types ------------------------------------------------------------------------
def test_list_and_tuple_map_and_object_differ():
    assert ev("tolist([1]) == [1]") is False and ev("tolist([1]) == tolist([1])") is True
    assert ev("tomap({a = 1}) == {a = 1}") is False
    assert ev("toset([1]) == tolist([1])") is False
    assert type(ev("tolist([1])")) is ops.ListValue and type(ev("tomap({a = 1})")) is ops.MapValue
    assert ops.type_name(ev("[1]")) == "tuple" and ops.type_name(ev("{}")) == "object"


@pytest.mark.parametrize("types,result", [
    ([NUMBER, STRING], STRING), ([NUMBER, ANY], NUMBER), ([ANY, ANY], ANY),
    ([NUMBER, Type("bool")], None),
    ([Type("tuple", elems=(NUMBER,)), Type("tuple", elems=(STRING, NUMBER))], Type("list", STRING)),
    ([Type("list", NUMBER), Type("set", STRING)], Type("list", NUMBER)),   # a list is preferred to a set
    ([Type("object", attrs=(("a", NUMBER, False, None),)), Type("object", attrs=(("b", STRING, False, None),))],
     Type("map", STRING)),
    ([Type("tuple", elems=()), Type("object")], None),
])
def test_unify(types, result):
    assert unify(types) == result


def test_type_of():
    assert type_of(ev('[1, "a"]')) == Type("tuple", elems=(NUMBER, STRING))
    assert type_of(ev('tolist(["a"])')) == Type("list", STRING)
    assert type_of(None) == ANY


@pytest.mark.parametrize("text,value", [
    ('true ? 1 : "b"', "1"), ('false ? 1 : "b"', "b"), ('true ? [1] : ["a"]', ["1"]),
    ("true ? 1 : null", 1), ('true ? {a = 1} : {b = "x"}', {"a": "1"}),
    ('true ? 1 : tonumber("x")', 1),       # the branch not taken may fail, as in Terraform
])
def test_conditional_unifies(text, value):
    assert ev(text) == value


# -- strings ----------------------------------------------------------------------
@pytest.mark.parametrize("fn,text,out", [
    (ops.upper, "straße", "STRAßE"), (ops.upper, "ﬁ", "ﬁ"), (ops.upper, "ǆ", "Ǆ"),
    (ops.lower, "ΟΔΟΣ", "οδοσ"), (ops.lower, "İ", "i"), (ops.upper, "abc", "ABC"),
])
def test_case_maps_character_by_character(fn, text, out):
    assert fn(text) == out


@pytest.mark.parametrize("text,n", [("abc", 3), ("e\u0301", 1), ("🇫🇷", 1), ("👨‍👩‍👧", 1), ("a\r\nb", 3)])
def test_length_counts_grapheme_clusters(text, n):
    assert ops.string_length(text) == n


# -- errors end to end ------------------------------------------------------------
@pytest.mark.parametrize("expr,message", [
    ('true ? 1 : true', "inconsistent conditional result types: the true result is number but the false "
                        "result is bool"),
    ("1 / 0", "the value is an infinite number, which cannot be stored"),
    ("tolist([1, [2]])", "cannot convert tuple to list of any single type"),
    ("tomap({a = 1, b = true})", "cannot convert object to map of any single type"),
    ('tonumber(" 1")', 'cannot convert " 1" to number'),
    ('tobool("yes")', 'cannot convert "yes" to bool; only the strings "true" or "false" are allowed'),
    ("1e999", "number out of range: 1e999"),
    ("1e300 * 1e300", "arithmetic result is out of range"),
    ("[{a = [1]}].*.a[1]", "index 1 out of range"),
    ('"\\x41"', 'invalid escape sequence "\\x"'),
])
def test_refusals_name_file_and_line(tmp_path, capsys, expr, message):
    (tmp_path / "main.hcl").write_text(f'resource "bridge" "b" {{\n  name = "br0"\n  mtu = {expr}\n}}\n')
    rc = main(["-C", str(tmp_path), "--no-color", "validate"])
    err = capsys.readouterr().err.replace(f"{tmp_path}/", "")
    assert rc == 1 and "Traceback" not in err
    assert err.startswith("Error: main.hcl:3: "), err
    assert message in err, err


def test_for_each_over_a_list_names_its_type(tmp_path, capsys):
    (tmp_path / "main.hcl").write_text('resource "bridge" "b" {\n  for_each = tolist(["a"])\n'
                                       '  name = each.key\n}\n')
    rc = main(["-C", str(tmp_path), "--no-color", "validate"])
    err = capsys.readouterr().err
    assert rc == 1 and "main.hcl:2: " in err and "got list" in err, err


# -- a failing branch's type, and dynamic elements, as cty unifies them ------------
@pytest.mark.parametrize("text", [
    # a for expression with a duplicate key is still an object of its first keys
    '10 <= 3 ? {for x in [-3, -3] : "k${x}" => x} : {k0 = false}',
    # a tuple with a failing element keeps its length; that element is dynamic
    'false ? [tolist([-3, true]), []] : [for x in [1] : x if false]',
    # a conditional whose condition fails still has the type its results unify to
    '[1] != true ? [1] : {} ? "a" : 2.25',
    # a tuple to a list of lists: the converted elements must share one type
    'false ? [toset([1])] : [tolist([{}]), tolist([]), tolist([null, true])]',
    # tuples alone unified to a list first, then with the other lists
    'tolist([[tomap({k0 = true, k1 = "false"}), {k0 = false}], tolist([])])',
    'tomap({x = tomap({}), y = {k0 = tolist(["1.5", null]), k1 = [false, null, 0.1]}})',
])
def test_refused_as_opentofu_refuses(text):
    with pytest.raises(ExprError):
        ev(text)


def test_object_to_map_of_dynamic_allows_mixed_attribute_types():
    # unlike a tuple to a list: cty's object-to-map conversion has no all-dynamic check
    assert ev('false ? {k0 = toset([[null], {k0 = 1}]), k1 = toset(["a"])} : {k0 = "1.5"}') == {"k0": "1.5"}
    obj = Type("object", attrs=(("a", ANY, False, None), ("b", Type("set", STRING), False, None)))
    assert unify([obj, Type("object", attrs=(("a", STRING, False, None),))]) == Type("map", ANY)
    tup = Type("tuple", elems=(ANY, Type("tuple")))
    assert unify([tup, Type("tuple")]) is None


def test_a_failing_call_is_dynamic_in_the_branch_not_taken():
    # HCL gives a failing call no type, so the object is kept
    assert ev('false ? tostring(true ? 1 : true) : {k = 1}') == {"k": 1}


def test_nulls_converted_into_a_tuple_keep_its_definite_types():
    assert len(ev('toset([[null, true, "é"], [null, "x y", null]])')) == 2


def test_a_for_over_a_failing_tuple_keeps_its_length():
    # HCL iterates the failing inner tuple's unknown elements: the 'false' tuple has length 1
    with pytest.raises(ExprError, match="inconsistent conditional result types"):
        ev('true ? [{k = 1}, toset([true])] : [for x in [for x in [1] : x + true ? 1.5 : 7] : x if true]')
