"""engine/config/hcl.py reads structure and constants straight off lark's tree: the
result must be what python-hcl2 itself gives (its ``loads`` dict, and the module's
fallback through python-hcl2's whole-file transform), lines included."""
from __future__ import annotations

from pathlib import Path

import hcl2
import pytest
from hcl2.api import parses_to_tree, transform

from kvmnet.engine.config import hcl

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


def _as_hcl2_dict(attrs: dict, blocks: list) -> dict:
    """A body of the module's Blocks in python-hcl2's ``loads`` shape
    (``explicit_blocks=False``): attributes as keys, blocks grouped by type into
    lists of dicts nested by label."""
    out = {name: a.value for name, a in attrs.items()}
    for b in blocks:
        inner = _as_hcl2_dict(b.attrs, b.blocks)
        for label in reversed(b.labels):
            inner = {label: inner}
        out.setdefault(b.type, []).append(inner)
    return out


def _loads(text: str) -> dict:
    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    return _strip_comments(hcl2.loads(text, serialization_options=options))


def _fast(text: str, file: str = "t.hcl"):
    """The direct conversion alone (raises hcl._Unusual for a shape it leaves)."""
    errors: list = []
    tree = parses_to_tree(text)
    attrs, blocks = hcl._convert_lark_body(hcl._lark_body(tree), file,
                                           hcl._serialize_options(), errors)
    return attrs, blocks, errors


def _fallback(text: str, file: str = "t.hcl"):
    """python-hcl2's whole-file transform, as the module falls back to."""
    errors: list = []
    tree = transform(parses_to_tree(text))
    attrs, blocks = hcl._convert_body(tree.body, file, hcl._serialize_options(), errors)
    return attrs, blocks, errors


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
def test_fast_path_equals_python_hcl2(text):
    try:
        attrs, blocks, errors = _fast(text)
    except hcl._Unusual:
        # left to python-hcl2 whole (e.g. a keyword such as for_each as an
        # attribute name): parse_text's fallback, checked below
        pytest.skip("a shape the direct conversion leaves to python-hcl2")
    assert errors == []
    assert _as_hcl2_dict(attrs, blocks) == _loads(text)
    # and exactly what the fallback through python-hcl2's rule tree gives, lines too
    f_attrs, f_blocks, f_errors = _fallback(text)
    assert f_errors == []
    assert _as_hcl2_dict(attrs, blocks) == _as_hcl2_dict(f_attrs, f_blocks)
    assert _lines(attrs, blocks) == _lines(f_attrs, f_blocks)


@pytest.mark.parametrize("text", CASES)
def test_parse_text_equals_python_hcl2(text):
    pf = hcl.parse_text(text, "t.hcl")
    assert pf.errors == []
    assert _as_hcl2_dict(pf.attrs, pf.blocks) == _loads(text)


def test_types_of_constants():
    text = TRICKY["numbers_bools_null"]
    attrs, _, _ = _fast(text)
    loads = _loads(text)
    for name, a in attrs.items():
        assert type(a.value) is type(loads[name]), name


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
    assert _lines(*_fast(SAMPLE)[:2]) == _lines(*_fallback(SAMPLE)[:2])


def test_duplicate_attribute_diagnostic_same_as_fallback():
    text = 'a = 1\nb {\n  x = 1\n  x = 2\n}\n'
    _, _, fast_errors = _fast(text)
    _, _, slow_errors = _fallback(text)
    assert [(e.message, e.line) for e in fast_errors] == [(e.message, e.line) for e in slow_errors]
    assert fast_errors and fast_errors[0].line == 4


def test_syntax_error_is_a_diagnostic_with_line():
    pf = hcl.parse_text('a = 1\nb {\n  c = \n}\n', "bad.hcl")
    assert pf.blocks == [] and pf.errors
    assert pf.errors[0].file == "bad.hcl"


@pytest.mark.parametrize("name", [k for k in TRICKY if k != "keyword_names"])
def test_tricky_texts_take_the_fast_path(name):
    _fast(TRICKY[name])   # no hcl._Unusual: the comparison above did test the fast path
