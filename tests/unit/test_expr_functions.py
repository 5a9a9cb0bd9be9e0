"""The built-in functions, compared with Terraform's documented results."""
from __future__ import annotations

import pytest

from kvmnet.engine.expr import FUNCTIONS, ExprError, Scope, SetValue, parse_expression
from kvmnet.sdk.values import UNKNOWN

SCOPE = Scope(variables={"nums": [3, 1, 2], "m": {"b": 2, "a": 1}, "u": UNKNOWN})


def ev(text):
    return parse_expression(text).evaluate(SCOPE)


def err(text) -> str:
    with pytest.raises(ExprError) as e:
        ev(text)
    return e.value.message


ISSUE_12_FUNCTIONS = """
abs ceil floor log max min parseint pow signum
chomp endswith format formatlist indent join lower regex regexall replace split startswith
strcontains strrev substr title trim trimprefix trimsuffix trimspace upper
alltrue anytrue chunklist coalesce coalescelist compact concat contains distinct element
flatten index keys length lookup matchkeys merge one range reverse setintersection setproduct
setsubtract setunion slice sort sum transpose values zipmap
base64decode base64encode csvdecode jsondecode jsonencode urlencode yamldecode yamlencode
file fileexists fileset templatefile abspath basename dirname
md5 sha1 sha256 sha512 uuidv5
cidrhost cidrnetmask cidrsubnet cidrsubnets
can try tobool tolist tomap tonumber toset tostring sensitive nonsensitive type
""".split()


def test_function_list_is_the_issue_list():
    assert set(FUNCTIONS) == set(ISSUE_12_FUNCTIONS)


@pytest.mark.parametrize("text,value", [
    # cidr
    ('cidrhost("10.0.0.0/24", 1)', "10.0.0.1"),
    ('cidrhost("10.0.0.0/24", 0)', "10.0.0.0"),
    ('cidrhost("10.0.0.0/24", 255)', "10.0.0.255"),
    ('cidrhost("10.0.0.0/24", -1)', "10.0.0.255"),
    ('cidrhost("10.0.0.0/24", -256)', "10.0.0.0"),
    ('cidrhost("10.12.112.0/20", 16)', "10.12.112.16"),
    ('cidrhost("10.12.112.0/20", 268)', "10.12.113.12"),
    ('cidrhost("10.0.0.5/24", 2)', "10.0.0.2"),
    ('cidrhost("fd00:fd12:3456:7890:00a2::/72", 34)', "fd00:fd12:3456:7890::22"),
    ('cidrhost("10.0.0.0/24", "3")', "10.0.0.3"),
    ('cidrsubnet("10.0.0.0/16", 8, 2)', "10.0.2.0/24"),
    ('cidrsubnet("172.16.0.0/12", 4, 2)', "172.18.0.0/16"),
    ('cidrsubnet("10.1.2.0/24", 4, 15)', "10.1.2.240/28"),
    ('cidrsubnet("fd00:fd12:3456:7890::/56", 16, 162)', "fd00:fd12:3456:7800:a200::/72"),
    ('cidrsubnet("10.0.0.0/16", 0, 0)', "10.0.0.0/16"),
    ('cidrnetmask("172.16.0.0/12")', "255.240.0.0"),
    ('cidrnetmask("10.0.0.0/24")', "255.255.255.0"),
    # format
    ('format("net-%d", 3)', "net-3"),
    ('format("Hello, %s!", "Ander")', "Hello, Ander!"),
    ('format("There are %d lights", 4)', "There are 4 lights"),
    ('format("%v|%v|%v", "a", 1.5, true)', "a|1.5|true"), ('format("%v|%v", "a", null)', None),
    ('format("%v", [1, "a"])', '[1,"a"]'),
    ('format("%#v", "a")', '"a"'),
    ('format("%q", "a\\"b")', '"a\\"b"'),
    ('format("%5s|%-5s|%.2s", "ab", "ab", "abc")', "   ab|ab   |ab"),
    ('format("%03d|%+d|%x|%X|%o|%b|%#x", 7, 5, 255, 255, 8, 5, 255)', "007|+5|ff|FF|10|101|0xff"),
    ('format("%.2f|%8.3f|%f", 3.14159, 2.5, 1)', "3.14|   2.500|1.000000"),
    ('format("%e", 1500)', "1.500000e+03"),
    ('format("%t", true)', "true"),
    ('format("100%%")', "100%"),
    ('format("%[2]s-%[1]s", "a", "b")', "b-a"),
    ('format("%d", "12")', "12"),
    ('format("%02d-%s", 1, "x")', "01-x"),
    # collections
    ('join(", ", ["a", "b", "c"])', "a, b, c"),
    ('join("-", ["a"], [1, 2])', "a-1-2"),
    ('join(",", [])', ""),
    ("concat([1, 2], [3], [])", [1, 2, 3]),
    ("length([1, 2])", 2), ('length("abc")', 3), ("length({a = 1})", 1), ("length([])", 0),
    ('length(toset(["a", "a"]))', 1),
    ("range(3)", [0, 1, 2]), ("range(1, 4)", [1, 2, 3]), ("range(1, 8, 2)", [1, 3, 5, 7]),
    ("range(4, 1)", [4, 3, 2]), ("range(-3)", [0, -1, -2]), ("range(0)", []),
    ("range(10, 5, -2)", [10, 8, 6]), ("range(0, 1, 0.25)", [0, 0.25, 0.5, 0.75]),
    ('lookup({a = "ay", b = "bee"}, "a", "what?")', "ay"),
    ('lookup({a = "ay", b = "bee"}, "c", "what?")', "what?"),
    ('lookup({a = 1}, "a")', 1),
    ('lookup({a = 1}, "c", null)', None),
    ('merge({a = "b", c = "d"}, {e = "f", c = "z"})', {"a": "b", "c": "z", "e": "f"}),
    ("merge()", {}), ("merge(null, {a = 1})", {"a": 1}),
    ("keys(var.m)", ["a", "b"]), ("values(var.m)", [1, 2]),
    ('keys({z = 1, "a b" = 2, B = 3})', ["B", "a b", "z"]),
    ("tolist(toset([3, 1]))", [1, 3]), ('tolist(["a", 1, true])', ["a", "1", "true"]),
    ('tomap({a = 1, b = "x"})', {"a": "1", "b": "x"}), ("tomap({a = 1})", {"a": 1}),
    ('lower("HeLLo")', "hello"), ('upper("hello")', "HELLO"), ("upper(1)", "1"),
    ("min(12, 54, 3)", 3), ("max(12, 54, 3)", 54), ("max(var.nums...)", 3),
    ('min("2", 5)', 2), ("max(1.5, 1)", 1.5),
    ("tostring(12)", "12"), ("tostring(true)", "true"), ('tostring("x")', "x"),
    ("tostring(null)", None), ("tostring(1.5)", "1.5"),
    ('tonumber("1")', 1), ('tonumber("1.5")', 1.5), ("tonumber(3)", 3), ("tonumber(null)", None),
    ('tonumber("-2e2")', -200),
])
def test_functions(text, value):
    result = ev(text)
    assert result == value and (type(result) is type(value) or isinstance(result, type(value))
                                and type(value) in (float, list, dict))


def test_toset():
    s = ev('toset(["c", "b", "c", "a"])')
    assert isinstance(s, SetValue) and s == ["a", "b", "c"]
    assert ev("toset([3, 1, 2, 1])") == [1, 2, 3]
    assert ev('toset(["a", 1])') == ["1", "a"]                  # unified to strings
    assert isinstance(ev("toset([])"), SetValue)


@pytest.mark.parametrize("text,message", [
    ('cidrhost("10.0.0.0/24", 256)', "prefix of 24 bits cannot accommodate a host numbered 256"),
    ('cidrhost("10.0.0.0/24", -257)', "cannot accommodate a host numbered -257"),
    ('cidrhost("10.300.1.0/24", 1)', 'invalid CIDR expression: invalid CIDR address: 10.300.1.0/24'),
    ('cidrhost("10.0.0.0/24", 1.5)', "a whole number is required"),
    ('cidrsubnet("10.0.0.0/16", 8, 256)', "prefix extension of 8 does not accommodate a subnet numbered 256"),
    ('cidrsubnet("10.0.0.0/16", 17, 0)', "insufficient address space to extend prefix of 16 by 17"),
    ('cidrsubnet("10.0.0.0/16", 8, -1)', "does not accommodate a subnet numbered -1"),
    ('cidrnetmask("fd00::/8")', "IPv6 addresses cannot have a netmask"),
    ('cidrnetmask("nope")', "invalid CIDR expression"),
    ('format("%d %d", 1)', "not enough arguments"),
    ('format("%d", 1, 2)', "too many arguments; only 1 used by format string"),
    ('format("%d", 1.5)', "a whole number is required"),
    ('format("%d", "x")', 'a number is required, got "x"'),
    ('format("%s", [1])', "a string is required, got tuple"),
    ('format("%y", 1)', 'unrecognized format verb "y"'),
    ('join(",", ["a", null])', "element 1 is null; cannot concatenate null values"),
    ('join(",", "a")', 'invalid value for "lists" parameter: list, set or tuple required, got string'),
    ('join(",", [[1]])', 'invalid value for "lists" parameter: string required, got tuple'),
    ("concat()", "at least one argument is required"),
    ('concat(["a"], toset(["b"]))', "all arguments must be lists or tuples; got set"),
    ("concat(1)", "all arguments must be lists or tuples; got number"),
    ("length(1)", "must have a string, list, set, tuple, map or object type, got number"),
    ("length(null)", 'call to function "length" failed: argument 1 must not be null'),
    ("range()", 'function "range" expects 1 to 3 arguments, got 0'),
    ("range(1, 2, 3, 4)", "expects 1 to 3 arguments, got 4"),
    ("range(0, 5, 0)", "step must not be zero"),
    ("range(0, 5, -1)", "end must be less than start when step is negative"),
    ("range(5, 0, 1)", "end must be greater than start when step is positive"),
    ("range(2000)", "more than 1024 values were generated"),
    ('range("a")', "a number is required"),
    ('lookup({a = 1}, "b")', 'the given key "b" does not exist in the map'),
    ('lookup([1], "b", 1)', 'invalid value for "inputMap" parameter: map or object required, got tuple'),
    ("lookup({})", 'function "lookup" expects 2 to 3 arguments, got 1'),
    ("merge({a = 1}, [1])", 'arguments must be maps or objects, got "tuple"'),
    ("keys([1])", 'invalid value for "inputMap" parameter: must have map or object type'),
    ("lower([1])", 'invalid value for "str" parameter: string required, got tuple'),
    ("toset({a = 1})", "a set of any is required, got object"),
    ("tomap([1])", "a map of any is required, got tuple"),
    ("tolist([1, true])", "cannot convert tuple to list of any single type"),
    ("tomap({a = 1, b = [1]})", "cannot convert object to map of any single type"),
    ('tobool("yes")', 'cannot convert "yes" to bool'),
    ('tonumber(" 1")', 'cannot convert " 1" to number'),
    ("min()", 'function "min" expects at least 1 argument, got 0'),
    ('max("a")', 'a number is required, got "a"'),
    ("tostring([1])", "cannot convert tuple to string"),
    ('tonumber("abc")', 'cannot convert "abc" to number'),
    ("tonumber(true)", "cannot convert bool to number"),
    ("upper()", 'function "upper" expects exactly 1 argument, got 0'),
    ("max(1...)", 'the argument before "..." must be a list'),
])
def test_function_errors(text, message):
    m = err(text)
    assert message in m
    if "expects" not in m:
        fn = text.split("(")[0]
        assert f'"{fn}"' in m


def test_unknown_arguments():
    for text in ["upper(var.u)", 'cidrhost(var.u, 1)', 'format("%s-%s", "a", var.u)',
                 "max(1, var.u)", "range(var.u)", "toset([var.u])", "lookup({a = 1}, var.u)",
                 "tostring(var.u)", "max(var.u...)", 'join(",", ["a", var.u])']:
        assert ev(text) is UNKNOWN, text
    assert ev('format("%s", "a")') == "a"
    assert ev("length([var.u, 1])") == 2
    assert ev("lookup({a = var.u}, \"a\")") is UNKNOWN
    assert ev("merge({a = var.u}, {b = 1})") == {"a": UNKNOWN, "b": 1}
    assert ev("values({a = var.u})") == [UNKNOWN]
    assert ev("tolist([var.u, 1])") == [UNKNOWN, 1]


def test_constant_calls_are_folded_but_errors_wait_for_evaluation():
    from kvmnet.engine.expr.nodes import Literal
    assert isinstance(parse_expression('cidrhost("10.0.0.0/24", 1)'), Literal)
    e = parse_expression('cidrhost("10.0.0.0/24", 999)')     # parses fine, fails when evaluated
    with pytest.raises(ExprError, match="cannot accommodate"):
        e.evaluate(SCOPE)
