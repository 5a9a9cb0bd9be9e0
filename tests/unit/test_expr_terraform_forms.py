"""Forms of the Terraform language that the whole path (grammar, tree reader,
expression parser, evaluator) must accept, each checked against the semantics in
Terraform's documentation ("Strings and Templates", "for Expressions", "Operators")."""
from __future__ import annotations

import pytest

from kvmnet.engine import expr as X
from kvmnet.engine.config.hcl import parse_text

SCOPE = X.Scope(variables={"n": 3, "name": "", "ips": ["10.1.16.154", "10.1.16.1"],
                           "m": {"a": 1, "b": 2}, "on": True})


def value(source: str):
    """The value of ``a = SOURCE`` read as a file."""
    pf = parse_text(f"a = {source}\n", "t.hcl")
    assert pf.errors == [], pf.errors
    return X.compile_value(pf.attrs["a"].value).evaluate(SCOPE)


@pytest.mark.parametrize("source, expected", [
    # "Strip markers": a ~ next to a delimiter removes the whitespace, newlines
    # included, of the literal text on that side; interpolated values are untouched
    ('"${~ "x" ~}"', "x"),
    ('"a   ${~ "x" ~}   b"', "axb"),
    ('"a ${~ " x " ~} b"', "a x b"[0] + " x " + "b"),
    ('"a \\n\\t ${~ var.n}"', "a3"),
    ('"${var.n ~}  \\n  b"', "3b"),
    ('"a ${var.n} b"', "a 3 b"),
    ('"%{ if var.on ~}   yes   %{~ endif }"', "yes"),
    ('"%{ if var.on }   yes   %{ endif }"', "   yes   "),
    ('"[ %{~ if !var.on } no %{~ else ~} yes %{~ endif ~} ]"', "[yes]"),
    ('"%{ for ip in var.ips ~} ${ip} %{~ endfor }"', "10.1.16.15410.1.16.1"),
    ('"Hello, %{ if var.name != "" }${var.name}%{ else }unnamed%{ endif }!"', "Hello, unnamed!"),
    # the documentation's heredoc: one line per element, no blank lines
    ("<<EOT\n%{ for ip in var.ips ~}\nserver ${ip}\n%{ endfor ~}\nEOT\n",
     "server 10.1.16.154\nserver 10.1.16.1\n"),
    ("<<-EOT\n    %{~ if var.on ~}\n    on\n    %{~ endif ~}\n    EOT\n", "on"),
    # the closing marker is a line of its own: a body line that starts with it is text
    ("<<E\nE.\nEagle\n  E\n", "E.\nEagle\n"),
    # "for Expressions": the result expression may be any expression, literals too
    ("[for x in [1, 2] : 1]", [1, 1]),
    ('[for s in ["x", "y"] : "lit"]', ["lit", "lit"]),
    ("[for s in [1] : null]", [None]),
    ("[for s in [1] : true]", [True]),
    ("[for s in [1] : [s]]", [[1]]),
    ("[for s in [1] : {}]", [{}]),
    ("{for k, v in var.m : k => true}", {"a": True, "b": True}),
    ('{for k, v in var.m : "fixed" => v...}', {"fixed": [1, 2]}),
    ('{for s in ["x"] : "k" => null}', {"k": None}),
    ("{for x in [7] : 1 => x}", {"1": 7}),
    ("[for x in [1, 2, 3] : 0 if x > 1]", [0, 0]),
    # "Operators": unary operators apply to any operand, a unary expression too
    ("- -2", 2),
    ("- - - 1", -1),
    ("-(-2)", 2),
    ("!!true", True),
    ("!!!false", True),
    ("- -var.n", 3),
    ("!!var.on", True),
    ("-var.n * -2", 6),
])
def test_terraform_form(source, expected):
    assert value(source) == expected


def error_of(source: str) -> str:
    pf = parse_text(f"a = {source}\n", "t.hcl")
    if pf.errors:
        return pf.errors[0].message
    with pytest.raises(X.ExprError) as e:
        X.compile_value(pf.attrs["a"].value).evaluate(SCOPE)
    return str(e.value)


@pytest.mark.parametrize("source, message", [
    ("!-1", "bool"),
    ('"${var.n ~ }"', 'a strip marker "~" must be followed directly by "}"'),
    ('"%{ if true ~ }x%{ endif }"', 'a strip marker "~" must be followed directly by "}"'),
    ("~1", "syntax error"),
    ('"${~}"', "syntax error"),
])
def test_terraform_form_errors(source, message):
    assert message in error_of(source)
