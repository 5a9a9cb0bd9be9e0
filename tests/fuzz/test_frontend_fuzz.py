"""Property-based fuzzing of the front end (parse, load, evaluate, validate).

Whatever the input, ``kvmnet validate`` either succeeds or rejects it with
``FILE:LINE: message`` lines and exit code 1: never a traceback, a hang or a
MemoryError. Inputs run in a child process (conftest.Worker) under a 2 GiB
address-space limit with a per-input timeout. Hypothesis runs derandomized
(a fixed seed) so the suite is reproducible; examples: structured HCL (blocks,
attributes, expressions, templates with strip markers, for, splat, heredocs,
count/for_each) and mutated or random text.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
SEEDS = [p.read_text(encoding="utf-8") for p in sorted((REPO / "examples").rglob("*.hcl"))]

FUZZ = settings(derandomize=True, database=None, deadline=None, print_blob=True,
                suppress_health_check=list(HealthCheck))
# at least 2,000 in all; KVMNET_FUZZ_EXAMPLES=N runs N of each (longer hunts, quick checks)
_N = os.environ.get("KVMNET_FUZZ_EXAMPLES")
EXAMPLES = {"structured": int(_N or 1100), "mutated": int(_N or 900)}
LOCATED = re.compile(r"^Error: [\w./-]+\.hcl:\d+: \S")


def check(answer: dict, text: str) -> None:
    __tracebackhide__ = True
    for bad in ("crash", "dead", "hang"):
        assert bad not in answer, f"{bad} on input {text!r}:\n{answer[bad]}"
    rc, err = answer["rc"], answer["stderr"]
    assert rc in (0, 1), (rc, err, text)
    if rc == 0:
        assert "Success!" in answer["stdout"], (answer, text)
        return
    errors = [ln for ln in err.splitlines() if ln and not ln.startswith("Warning: ")]
    assert errors, f"exit 1 without an error on input {text!r}"
    for line in errors:
        assert LOCATED.match(line), f"error without FILE:LINE: {line!r} on input {text!r}"


# -- structured HCL -------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "x", "name", "for_each", "count", "in", "if", "each",
                         "var", "local", "network", "bridge", "_u", "d-1", "true", "null"])
IDENT = st.from_regex(r"[a-z_][a-z0-9_-]{0,6}", fullmatch=True)
# literal text inside quotes: mostly well-formed, sometimes escapes that are not
SAFE_TEXT = st.lists(st.sampled_from(list("ab $%{}~ntu0-.") + ["\\n", "\\t", "\\\"", "\\\\",
                                     "\\u00e9", "$${", "%%{", " ", "\\U0001F600"]),
                     max_size=6).map("".join)
QUOTED = st.one_of(SAFE_TEXT, SAFE_TEXT, SAFE_TEXT, st.lists(st.sampled_from(
    list('ab $%{}~\\"\'\t#') + ["\\U00110000", "\\ud800", "\\q", "\\u12"]), max_size=6)
    .map("".join))
TEXT = st.lists(st.sampled_from(list('ab $%{}~\\"\'\nntu0\t#') + ["\\n", "\\u00e9",
                                  "\\U0010FFFF", "\\U00110000", "\\ud800", "$${", "%%{"]),
                max_size=8).map("".join)
NUMBER = st.one_of(st.integers(-10**6, 10**6).map(str), st.sampled_from(
    ["0", "1", "007", "1.5", "1e3", "1e999", "-1e999", "1e-999", "2.5E-2", "9" * 400,
     "10000000000000000000000", "0.1", "65536", "4096"]))
TRAVERSAL = st.sampled_from([
    "var.n", "var.s", "var.l", "var.m", "local.a", "local.b", "each.key", "each.value",
    "count.index", "network.n.name", "bridge.b", "bridge.b[0].name", "var.l[0]",
    "var.l[*].x", "var.m.k", "var.l.*.y", "self", "path.module", "x", "var.missing",
])
FUNCS = st.sampled_from(["length", "upper", "lower", "join", "format", "range", "concat",
                         "merge", "keys", "values", "toset", "tolist", "tostring", "tonumber",
                         "cidrsubnet", "cidrhost", "min", "max", "lookup", "nosuch"])


def templates(expr):
    interp = st.tuples(st.sampled_from(["${", "${~"]), expr, st.sampled_from(["}", "~}"])) \
        .map("".join)
    directive = st.one_of(
        st.tuples(st.sampled_from(["%{ if ", "%{~ if "]), expr,
                  st.sampled_from([" }", " ~}"]), TEXT,
                  st.sampled_from(["", "%{ else }", "%{~ else ~}"]), TEXT,
                  st.sampled_from(["%{ endif }", "%{~ endif ~}", "%{ endif ~}", ""])).map("".join),
        st.tuples(st.sampled_from(["%{ for v in ", "%{~ for k, v in "]), expr,
                  st.sampled_from([" }", " ~}"]), TEXT, st.sampled_from(["${v}", ""]),
                  st.sampled_from(["%{ endfor }", "%{~ endfor ~}", ""])).map("".join))
    return st.lists(st.one_of(TEXT, interp, directive), max_size=4).map("".join)


def expressions():
    leaf = st.one_of(NUMBER, TRAVERSAL, st.sampled_from(["true", "false", "null", "[]", "{}"]),
                     QUOTED.map(lambda t: '"' + t.replace("\n", "") + '"'))

    def extend(inner):
        return st.one_of(
            st.tuples(st.sampled_from(["-", "!", "- -", "!!", "-(", "!("]), inner)
              .map(lambda t: t[0] + t[1] + (")" if t[0].endswith("(") else "")),
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%", "==", "!=", "<", ">=",
                                              "&&", "||", "\n+"]), inner).map(" ".join),
            st.tuples(inner, inner, inner).map(lambda t: f"{t[0]} ? {t[1]} : {t[2]}"),
            inner.map(lambda e: f"({e})"),
            st.lists(inner, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
            st.lists(st.tuples(st.one_of(IDENT, inner.map(lambda e: f"({e})"),
                                         QUOTED.map(lambda t: '"' + t.replace("\n", "") + '"')),
                               inner), max_size=3)
              .map(lambda kv: "{" + ", ".join(f"{k} = {v}" for k, v in kv) + "}"),
            st.tuples(FUNCS, st.lists(inner, max_size=3), st.booleans())
              .map(lambda t: f"{t[0]}({', '.join(t[1])}{'...' if t[2] and t[1] else ''})"),
            st.tuples(IDENT, inner, inner, st.sampled_from(["", " if true", " if x != 1"]))
              .map(lambda t: f"[for {t[0]} in {t[1]} : {t[2]}{t[3]}]"),
            st.tuples(inner, inner, inner, st.sampled_from(["", "..."]))
              .map(lambda t: f"{{for k, v in {t[0]} : {t[1]} => {t[2]}{t[3]}}}"),
            st.tuples(inner, st.sampled_from([".x", "[0]", "[*].y", ".*", '["k"]', "[var.n]"]))
              .map("".join),
            templates(inner).map(lambda t: '"' + t.replace("\n", "\\n") + '"'),
            st.tuples(st.sampled_from(["<<EOT\n", "<<-EOT\n", "<<E.x\n"]), templates(inner),
                      st.sampled_from(["\nEOT\n", "\n  EOT\n", "\nE.x\n", "\n"]))
              .map(lambda t: t[0] + t[1].replace("EOT", "E0T") + t[2]),
        )
    return st.recursive(leaf, extend, max_leaves=8)


EXPR = expressions()


@st.composite
def bodies(draw, depth=0):
    lines = []
    for _ in range(draw(st.integers(0, 3))):
        if depth < 3 and draw(st.booleans()):
            lines.append(f"{draw(NAMES)} {{\n{draw(bodies(depth + 1))}}}")
        else:
            lines.append(f"{draw(NAMES)} = {draw(EXPR)}")
    return "".join(line + "\n" for line in lines)


@st.composite
def configs(draw):
    blocks = []
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["resource"] * 4 + ["variable"] * 2 + ["locals"] * 2 + [
            "meta"] * 2 + ["output", "provider", "deep", "other"]))
        if kind == "resource":
            rtype = draw(st.sampled_from(["bridge", "network", "vlan", "sysctl_profile",
                                          "port_forward", "nic_attachment", "nosuch"]))
            blocks.append(f'resource "{rtype}" "r{i}" {{\n{draw(bodies())}}}')
        elif kind == "meta":
            meta = draw(st.sampled_from(["count", "for_each"]))
            value = draw(st.one_of(EXPR, NUMBER, st.sampled_from([
                "1e999", "100000000", "-1", "1.5", "var.n", 'toset(["a", "b"])',
                "{for i in range(1000) : tostring(i) => i}", "10001", "{}"])))
            blocks.append(f'resource "bridge" "m{i}" {{\n  {meta} = {value}\n'
                          f'  name = "br-${{{"count.index" if meta == "count" else "each.key"}}}"\n}}')
        elif kind == "variable":
            blocks.append(f'variable "{draw(st.sampled_from(["n", "s", "l", "m", "on", "v"]))}" {{\n  type = '
                          f'{draw(st.sampled_from(["string", "number", "list(string)", "map(number)", "any", "bogus(", "object({a = string})"]))}'
                          f'\n  default = {draw(EXPR)}\n}}')
        elif kind == "locals":
            blocks.append(f"locals {{\n{draw(bodies(3))}}}")
        elif kind == "output":
            blocks.append(f'output "o{i}" {{\n  value = {draw(EXPR)}\n}}')
        elif kind == "provider":
            blocks.append(f'provider "{draw(st.sampled_from(["sysctl", "iproute", "bogus"]))}" '
                          f'{{\n{draw(bodies(2))}}}')
        elif kind == "deep":
            n = draw(st.sampled_from([5, 63, 64, 65, 200, 3000]))
            what = draw(st.sampled_from(["blocks", "parens", "lists", "unary", "strings",
                                         "objects", "calls", "directives"]))
            inner = {
                "blocks": lambda: "a {\n" * n + "x = 1\n" + "}\n" * n,
                "parens": lambda: "x = " + "(" * n + "1" + ")" * n + "\n",
                "lists": lambda: "x = " + "[" * n + "]" * n + "\n",
                "unary": lambda: "x = " + "-" * n + "1\n",
                "strings": lambda: "x = " + '"${' * n + "1" + '}"' * n + "\n",
                "objects": lambda: "x = " + "{a = " * n + "1" + "}" * n + "\n",
                "calls": lambda: "x = " + "upper(" * n + '"a"' + ")" * n + "\n",
                "directives": lambda: 'x = "' + "%{ if true }" * n + "y" + "%{ endif }" * n + '"\n',
            }[what]()
            blocks.append(f"locals {{\n{inner}}}" if what != "blocks" else
                          f'resource "bridge" "deep{i}" {{\nname = "b"\n{inner}}}')
        else:
            blocks.append(f"{draw(NAMES)} {draw(st.lists(IDENT.map(repr), max_size=2).map(' '.join))}"
                          f" {{\n{draw(bodies(1))}}}".replace("'", '"'))
    return "\n".join(blocks) + "\n"


@settings(FUZZ, max_examples=EXAMPLES["structured"])
@given(configs())
def test_structured_configs_never_crash(worker, text):
    check(worker.run({"main.hcl": text}), text)


# -- mutated and random text ---------------------------------------------------------

SPECIAL = list('{}[]()"$%~<>=!-+*/\\\n\t #.,:?&|') + ["${", "%{", "<<EOT\n", "\nEOT\n", "~}",
                                                       "\\u", "1e999", "for ", " in ", "=>", "..."]


@st.composite
def mutated(draw):
    base = draw(st.one_of(st.sampled_from(SEEDS), configs()))
    for _ in range(draw(st.integers(1, 6))):
        if not base:
            base = draw(st.text(max_size=20))
        i = draw(st.integers(0, len(base)))
        j = draw(st.integers(i, min(len(base), i + 40)))
        op = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "truncate"]))
        piece = draw(st.one_of(st.sampled_from(SPECIAL), st.text(max_size=6)))
        if op == "delete":
            base = base[:i] + base[j:]
        elif op == "insert":
            base = base[:i] + piece + base[i:]
        elif op == "replace":
            base = base[:i] + piece + base[j:]
        elif op == "duplicate":
            base = base[:j] + base[i:j] * draw(st.integers(1, 3)) + base[j:]
        else:
            base = base[:i]
    return base


@settings(FUZZ, max_examples=EXAMPLES["mutated"])
@given(st.one_of(mutated(), st.lists(st.sampled_from(SPECIAL + list("abx01 ")), max_size=60)
                 .map("".join)))
def test_mutated_and_random_text_never_crashes(worker, text):
    check(worker.run({"main.hcl": text}), text)
