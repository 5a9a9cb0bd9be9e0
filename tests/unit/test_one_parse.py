"""One parse: a file's expressions are read from lark's tree once, into plain data
(engine/config/exprtree.py) that becomes nodes (engine/expr/build.py) without
reading any text a second time."""
from __future__ import annotations

import marshal

import pytest

from kvmnet.engine.config import grammar, hcl
from kvmnet.engine.expr import ExprError, Scope, compile_value, parse_template, parse_type
from kvmnet.engine.expr.build import Source

SCOPE = Scope(variables={"n": 3, "s": "str", "l": [1, 2], "m": {"a": {"y": 1}}},
              locals={}, count={"index": 2}, resolve_resource=None, resource_types=None)


def read(text: str) -> hcl.ParsedFile:
    pf = hcl.parse_text(text, "main.hcl")
    assert pf.errors == [], pf.errors
    return pf


def value(text: str, name: str = "v"):
    pf = read(text)
    return compile_value(pf.attrs[name].value).evaluate(SCOPE)


def test_compiling_a_file_never_parses_text_again(monkeypatch):
    pf = read('a = "x-${count.index}"\nb = [for i in var.l : i * 2]\nc = <<EOT\n${var.s}!\nEOT\n'
              't = list(string)\n')

    def no_parse():
        raise AssertionError("parsed again")
    monkeypatch.setattr(grammar, "parser", no_parse)
    from kvmnet.engine.expr import parser as P
    monkeypatch.setattr(P, "_read_expression", no_parse)
    monkeypatch.setattr(P, "_read_template", no_parse)
    values = {k: compile_value(a.value).evaluate(SCOPE) for k, a in pf.attrs.items() if k != "t"}
    assert values == {"a": "x-2", "b": [2, 4], "c": "str!\n"}
    assert str(parse_type(pf.attrs["t"].value)) == "list(string)"


def test_expressions_are_sources_whose_text_is_the_source():
    pf = read('a = var.n + 1 # note\nb = "lit"\nc = "$${x}"\nd = [network.lab]\n')
    a = pf.attrs["a"].value
    assert type(a) is Source and a == "${var.n + 1}" and a.data[0] == "bin"
    assert type(pf.attrs["b"].value) is str
    assert type(pf.attrs["c"].value) is Source          # a literal that reads like a template
    assert compile_value(pf.attrs["c"].value).evaluate(SCOPE) == "${x}"
    assert pf.attrs["d"].value == ["${network.lab}"]


@pytest.mark.parametrize("text,expected", [
    ('v = "a ${~ "b" ~} c"', "abc"),
    ('v = "x %{~ if true ~} y %{~ endif ~} z"', "xyz"),
    ('v = "%{ for x in var.l ~} ${x} %{~ endfor }"', "12"),
    ("v = <<-EOT\n    host ${count.index} %{ if true ~}\n    yes\n    %{~ endif }\n    EOT\n",
     "host 2 yes\n"),
    ('v = <<EOT\na "q" \\n $${x} %%{y}\nEOT\n', 'a "q" \\n ${x} %{y}\n'),
    ("v = <<EOT\r\nline ${var.n}\r\nEOT\r\n", "line 3\r\n"),
    ("v = <<EOT\nEOT\n", ""),
    ('v = <<EOT\n${"}"} ${ {a = 1}["a"] }\nEOT\n', "} 1\n"),
    # "$${" and "%%{" escape two characters; what follows is ordinary text
    ('v = "$${a} ${var.s}"', "${a} str"), ('v = "a%%{b"', "a%{b"), ('v = "$${"', "${"),
    ('v = "$${ ${var.s} }"', "${ str }"), ("v = <<EOT\n$${\nEOT\n", "${\n"),
    ('v = <<EOT\n$${"${"a"~}\nEOT\n', '${"a'),
    ("v = - -2", 2), ("v = !!true", True), ("v = -(-var.n)", 3), ("v = - - -var.n", -3),
    ("v = [for x in var.l : true]", [True, True]),
    ("v = [for x in var.l : null]", [None, None]),
    ('v = [for x in var.l : "s"]', ["s", "s"]),
    ("v = {for x in var.l : x => 1.5}", {"1": 1.5, "2": 1.5}),
    ('v = {for x in var.l : "k${x}" => [x]...}', {"k1": [[1]], "k2": [[2]]}),
    ("v = var.m.a.y", 1), ('v = var.m["a"]["y"]', 1), ("v = var.l.1", 2),
    ("v = [var.m][*].a", [{"y": 1}]), ("v = [var.m].*.a.y", [1]),
    ("v = (var.m).a", {"y": 1}),
    ("v = var.n > 2 ? \"big\" : \"small\"", "big"),
    ("v = 1 + 2 * 3 - 4 / 2", 5), ("v = (1 + 2) * 3", 9),
    ("v = var.n\n  + 1", 4),
    ("v = upper(\"a\") == \"A\" && !false || false", True),
    ("v = {for = 1, in = 2, if = 3}", {"for": 1, "in": 2, "if": 3}),
    ('v = { (var.s) = 1, "${var.s}x" = 2 }', {"str": 1, "strx": 2}),
    ('v = format("%s \\"x\\"", var.s)', 'str "x"'),
])
def test_forms(text, expected):
    got = value(text)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize("text,message,line", [
    ('x = 1\nv = [\n  1,\n  frob(2),\n]\n', 'unknown function "frob"', 4),
    ('x = 1\nv = <<EOT\nok\n${frob(1)}\nEOT\n', 'unknown function "frob"', 4),
    ('x = 1\nv = {\n  a = 1\n  b = var.nope\n}\n', "undeclared input variable", 4),
    ('v = "a"\nw = [\n  "a${var.l}",\n]\n', "string template", 3),
])
def test_errors_name_the_line_of_the_sub_expression(text, message, line):
    pf = read(text)
    name = "w" if "w =" in text else "v"
    with pytest.raises(ExprError) as e:
        compile_value(pf.attrs[name].value).evaluate(SCOPE)
    assert message in e.value.message and e.value.offset == line


@pytest.mark.parametrize("text,message,line", [
    ('x = 1\nv = "${var.n ~ }"\n', 'a strip marker "~" must be followed directly by "}"', 2),
    ('v = "%{ if true }x"\n', "%{ if } without a matching %{ endif }", 1),
    ('v = "x%{ endif }"\n', "%{ endif } without a matching %{ if }", 1),
    ('v = "%{ for x in y }x%{ endif }"\n', "%{ endif } without a matching %{ if }", 1),
    ('v = "x%{ else }y"\n', "%{ else } without a matching %{ if }", 1),
    ("x = 1\nv = <<EOT\nok\n%{ if true }\nEOT\n", "%{ if } without a matching %{ endif }", 4),
    ("x = 1\nv = <<EOT\nok\n${ 1 + }\nEOT\n", "syntax error", 4),
    ('v = "\\q"\n', 'invalid escape sequence "\\q"', 1),
    ("v = 1\nw = [\n  1e999,\n]\n", "number out of range", 3),
])
def test_parse_errors_are_file_line(text, message, line):
    pf = hcl.parse_text(text, "main.hcl")
    assert [(message in d.message, d.file, d.line) for d in pf.errors] == [(True, "main.hcl", line)], \
        pf.errors


def test_the_cache_entry_is_plain_data_and_loads_as_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    f = tmp_path / "main.hcl"
    f.write_text('resource "network" "n" {\n  name = "n-${count.index}"\n'
                 '  tags = { "${var.s}" = [var.n, "x"] }\n  t = <<EOT\n${var.s}\nEOT\n}\n')
    (first,) = hcl.parse_files([(f, "main.hcl")])
    entries = list((tmp_path / "cache").rglob("*"))
    data = [p for p in entries if p.is_file() and "parse" in str(p)]
    assert data, entries
    marshal.loads(data[0].read_bytes())   # marshal, never a pickle
    (second,) = hcl.parse_files([(f, "main.hcl")])
    a, b = first.blocks[0].attrs, second.blocks[0].attrs
    for name in a:
        assert a[name].value == b[name].value
        assert compile_value(a[name].value).evaluate(SCOPE) == \
            compile_value(b[name].value).evaluate(SCOPE)
    key = next(iter(b["tags"].value))
    assert type(key) is Source and type(b["name"].value) is Source


def test_a_damaged_source_in_the_cache_is_parsed_afresh():
    assert hcl._file_from(([], [("a", ("${x}", "not data"), 1, False)]), "f") is None
    assert hcl._file_from(([], [("a", ("${x}",), 1, False)]), "f") is None


def test_plain_template_strings_still_compile():
    assert parse_template("virbr${count.index}").evaluate(SCOPE) == "virbr2"
    assert compile_value({"a": "${var.n}", "${var.s}": 1}).evaluate(SCOPE) == {"a": 3, "str": 1}


def test_a_long_operator_chain_is_a_nesting_error_not_a_recursion_error():
    pf = hcl.parse_text("x = 1\nv = " + " + ".join(["var.n"] * 100) + "\n", "main.hcl")
    assert [(d.line, d.message) for d in pf.errors] == [
        (2, "expression nested more than 64 levels deep")]
    assert value("v = " + " + ".join(["var.n"] * 60)) == 180


def test_a_source_survives_a_copy():
    import copy
    (s,) = read("v = [var.n + 1]\n").attrs["v"].value
    c = copy.deepcopy(s)
    assert type(c) is Source and c == s and c.data == s.data
