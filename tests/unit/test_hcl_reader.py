"""engine/config/hcl.py reads lark's tree of kvmnet's grammar itself. Every value
must mean what python-hcl2 8.1.4 (whose grammar kvmnet's extends) gives for it:
the same expression structure once compiled by the engine, lines included."""
from __future__ import annotations

from pathlib import Path

import hcl2
import pytest

from kvmnet.engine.config import hcl
from kvmnet.engine.expr.compiled import structure

REPO = Path(__file__).resolve().parents[2]
REPO_HCL_FILES = sorted(
    p for p in REPO.rglob("*.hcl")
    if ".venv" not in p.parts and ".git" not in p.parts)

TRICKY = {
    "nested_and_repeated_blocks": '''
resource "kvm_network" "a" {
  name = "a"
  dns {
    host {
      ip = "10.0.0.5"
      hostnames = ["one", "two"]
    }
    host {
      ip = "10.0.0.6"
    }
  }
  dns {
    enabled = false
  }
}
resource "kvm_network" "b" { name = "b" }
resource "kvm_network" "b" { name = "b-again" }
''',
    "heredocs": '''
x = <<EOT
line one
  line "two" with ${var.a}
EOT
y = <<-EOT
    indented
      more
    EOT
block "h" {
  text = <<EOF
a $${not} %{ if true }yes%{ endif }
EOF
}
''',
    "templates": '''
a = "${var.x}"
b = "pre-${var.x}-post"
c = "%{ for n in var.names }${n},%{ endfor }"
d = "%{ if var.on }on%{ else }off%{ endif }"
e = "nested ${format("%s-%d", var.a, 3)} end"
f = "${var.m["key"]}"
''',
    "escapes": r'''
a = "quote \" inside"
b = "dollar $${literal}"
c = "percent %%{literal}"
d = "back\\slash"
e = "tab\there\nnewline"
f = "unicode \u00e9 and ✓ and 网络"
g = ""
h = "\\"
i = "[bold] not markup"
''',
    "numbers_bools_null": '''
a = -1
b = 0
c = 42
d = 3.5
e = -0.25
f = 1e3
g = 2.5E-2
h = true
i = false
j = null
k = 007
''',
    "collections": '''
a = []
b = [1, 2, 3]
c = ["x", var.y, 1 + 2, [true, null]]
d = {}
e = { a = 1, "b-c" = "two", d = var.e }
f = {
  nested = { deep = [1, { k = "v" }] }
  "quoted key" = null
  (var.k) = 3
}
g = [
  "trailing",
  "comma",
]
''',
    "expressions": '''
a = [for s in var.list : upper(s)]
b = {for k, v in var.map : k => v if v != null}
c = {for i, v in var.l : v => i...}
d = var.x ? "yes" : "no"
e = var.n > 3 && !var.off || var.m == "z"
f = length(var.list) * 2 - 1 % 3
g = cidrsubnet("10.0.0.0/16", 8, 1)
h = var.list[0]
i = var.obj.attr.deeper
j = var.list[*].name
k = -var.n
l = (1 + 2) * 3
m = join(",", [for x in var.xs : x])
n = try(var.a, "fallback")
''',
    "comments_everywhere": '''
# hash comment
// slash comment
/* block
   comment */
a = 1 # trailing
b = 2 // trailing
block "x" { # after brace
  # inside
  c = 3 /* inline */
  inner {
    // deep
    d = [
      1, # in list
      2,
    ]
    e = {
      k = "v" # in map
    }
  }
} # after close
''',
    "names_and_labels": '''
some-attr = 1
with_underscore = 2
resource kvm_network unquoted {
  dash-name = "x"
}
resource "kvm_network" "with-dash" {}
thing "quoted label with spaces" "é-unicode" {
  x = 1
}
nolabels {
  y = 2
}
three "a" b "c" {
  z = 3
}
''',
    "keyword_names": '''
resource "t" "n" {
  for_each = toset(["a", "b"])
  count    = 2
  name     = "x-${each.key}"
  dynamic "d" {
    for_each = var.l
    content { v = d.value }
  }
}
''',
    "empty": '',
    "only_comments": '# nothing\n// at all\n',
    "one_line_block": 'a "b" { c = 1 }\n',
}


def _strip_comments(v):
    if isinstance(v, dict):
        return {k: _strip_comments(x) for k, x in v.items()
                if k not in ("__comments__", "__inline_comments__")}
    if isinstance(v, list):
        return [_strip_comments(x) for x in v]
    return v


def _loads(text: str) -> dict:
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    return _strip_comments(hcl2.loads(text, serialization_options=options))


def _pairs(attrs: dict, blocks: list, theirs: dict, where: str = ""):
    """(ours, theirs) expression structures of every attribute, walking our blocks
    into python-hcl2's ``loads`` shape (blocks grouped by type, nested by label)."""
    block_types = {b.type for b in blocks}
    assert set(attrs) | block_types == set(theirs), where
    for name, a in attrs.items():
        yield f"{where}{name}", structure(a.value), structure(theirs[name])
    seen: dict[str, int] = {}
    for b in blocks:
        i = seen.get(b.type, 0)
        seen[b.type] = i + 1
        inner = theirs[b.type][i]
        for label in b.labels:
            assert list(inner) == [label], where
            inner = inner[label]
        yield from _pairs(b.attrs, b.blocks, inner, f"{where}{b.type}[{i}].")


def _lines(attrs: dict, blocks: list) -> list:
    """Every attribute's and block's line, in order, with what it is."""
    out: list = [(n, a.line) for n, a in attrs.items()]
    for b in blocks:
        out.append(((b.type, b.labels), b.line, _lines(b.attrs, b.blocks)))
    return out


CASES = [pytest.param(p.read_text(encoding="utf-8"), id=str(p.relative_to(REPO)))
         for p in REPO_HCL_FILES] + [pytest.param(t, id=k) for k, t in TRICKY.items()]


def test_repo_has_hcl_examples():
    assert any("examples" in p.parts for p in REPO_HCL_FILES)


@pytest.mark.parametrize("text", CASES)
def test_values_mean_what_python_hcl2_gives(text):
    pf = hcl.parse_text(text, "t.hcl")
    assert pf.errors == []
    pairs = list(_pairs(pf.attrs, pf.blocks, _loads(text)))
    for where, ours, theirs in pairs:
        assert ours == theirs, where


SAMPLE = '''# line 1
variable "a" {        # line 2
  default = 1         # line 3

  validation {        # line 5
    condition = true  # line 6
  }
}

top = "x"             # line 10
resource "t" "n" {    # line 11
  m = {               # line 12
    k = 1
  }
  after = <<EOT
one
EOT
  last = 2            # line 18
}
'''


def test_lines_of_blocks_and_attributes():
    pf = hcl.parse_text(SAMPLE, "s.hcl")
    assert pf.errors == []
    assert pf.attrs["top"].line == 10
    var, res = pf.blocks
    assert (var.type, var.labels, var.line, var.file) == ("variable", ("a",), 2, "s.hcl")
    assert var.attrs["default"].line == 3
    (val,) = var.blocks
    assert (val.type, val.line) == ("validation", 5)
    assert val.attrs["condition"].line == 6
    assert (res.type, res.labels, res.line) == ("resource", ("t", "n"), 11)
    assert res.attrs["m"].line == 12
    assert res.attrs["after"].line == 15
    assert res.attrs["last"].line == 18


def test_constants_are_plain_values():
    """Whole numbers, bools and null are plain values; a fraction stays expression
    text, so the expression parser reads it at cty's 512-bit precision."""
    pf = hcl.parse_text(TRICKY["numbers_bools_null"], "t.hcl")
    got = {n: a.value for n, a in pf.attrs.items()}
    assert got == {"a": -1, "b": 0, "c": 42, "d": "${3.5}", "e": "${-0.25}", "f": 1000, "g": "${2.5E-2}",
                   "h": True, "i": False, "j": None, "k": 7}
    from kvmnet.engine.expr import Scope, compile_value
    assert [compile_value(got[k]).evaluate(Scope()) for k in "deg"] == [3.5, -0.25, 0.025]


def test_duplicate_attribute_diagnostic():
    pf = hcl.parse_text('a = 1\nb {\n  x = 1\n  x = 2\n}\n', "t.hcl")
    assert [(e.message, e.line) for e in pf.errors] == [
        ('attribute "x" is defined twice (first on line 3)', 4)]


def test_syntax_error_is_a_diagnostic_with_line():
    pf = hcl.parse_text('a = 1\nb {\n  c = \n}\n', "bad.hcl")
    assert pf.blocks == [] and pf.errors
    assert pf.errors[0].file == "bad.hcl"
