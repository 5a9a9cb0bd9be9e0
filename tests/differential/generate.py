"""Writes cases/generated*.txt: seeded random expressions for the differential suite.

Run ``python tests/differential/generate.py`` after changing it; the file is
committed, so a case that fails can be read and rerun by hand. The mix covers every
operator, conversion, template form, for-expression, splat, conditional and
collection constructor, on operands of every primitive type (so some cases are
errors in both evaluators, which the suite checks too).
"""
from __future__ import annotations

import random
from pathlib import Path

CASES = Path(__file__).resolve().parent / "cases"
# (seed, file, deepest nesting): the later runs nest deeper, where a conditional's
# unchosen or failing inner branch meets conversions of the outer one.
RUNS = ((20261130, CASES / "generated.txt", 3), (7, CASES / "generated2.txt", 3),
        (3, CASES / "generated3.txt", 4), (11, CASES / "generated4.txt", 4),
        (23, CASES / "generated5.txt", 4), (42, CASES / "generated6.txt", 4),
        (501, CASES / "generated7.txt", 5))
COUNT = 1400                                                                 # per file

NUMBERS = ["0", "1", "2", "3", "7", "10", "-1", "-3", "0.1", "0.2", "0.5", "1.5", "2.25", "-0.75",
           "1e3", "1e-3", "1e20", "3.14159", "100", "12345678901234567890"]
STRINGS = ['"a"', '"b"', '""', '"10"', '"1.5"', '"true"', '"false"', '"x y"', '"0"', '"1"', '"é"']
BOOLS = ["true", "false"]


class Gen:
    def __init__(self, rng: random.Random):
        self.r = rng

    def pick(self, xs):
        return self.r.choice(xs)

    def one_of(self, *forms):
        """One of ``forms`` (functions making an expression), drawn evenly, then made."""
        return forms[self.r.randrange(len(forms))]()

    def number(self, d: int) -> str:
        if d <= 0 or self.r.random() < 0.3:
            return self.pick(NUMBERS)
        e = d - 1

        def arithmetic():
            return f"{self.number(e)} {self.pick(['+', '-', '*', '/', '%'])} {self.number(e)}"
        return self.one_of(
            arithmetic, arithmetic, arithmetic,             # three times as likely as the others
            lambda: f"-{self.number(e)}" if self.r.random() < 0.5 else f"({self.number(e)})",
            lambda: f"{self.boolean(e)} ? {self.number(e)} : {self.number(e)}",
            lambda: f"length({self.collection(e)})",
            lambda: "tonumber(" + self.pick(['"1"', '"2.5"', '"-4"', '"0.1"', '"1e2"']) + ")",
            lambda: f"{self.collection_num(e)}[0]")

    def string(self, d: int) -> str:
        if d <= 0 or self.r.random() < 0.3:
            return self.pick(STRINGS)
        e = d - 1

        def template_for():
            strip = self.pick(["", "~"])
            return f'"[%{{ for v in {self.collection(e)} {strip}}} ${{v}} %{{{strip} endfor }}]"'
        return self.one_of(
            lambda: f'"${{{self.any(e)}}}"',
            lambda: f'"p-${{{self.number(e)}}}-${{{self.string(e)}}}"',
            lambda: f"tostring({self.pick([self.number(e), self.boolean(e), self.string(e)])})",
            lambda: f'"%{{ if {self.boolean(e)} }}T%{{ else }}F%{{ endif }}"',
            template_for,
            lambda: f"{self.boolean(e)} ? {self.string(e)} : {self.any(e)}",
            lambda: f'"a ${{~ {self.string(e)} ~}} b"')

    def boolean(self, d: int) -> str:
        if d <= 0 or self.r.random() < 0.3:
            return self.pick(BOOLS)
        e = d - 1
        return self.one_of(
            lambda: f"{self.number(e)} {self.pick(['<', '>', '<=', '>='])} {self.number(e)}",
            lambda: f"{self.any(e)} {self.pick(['==', '!='])} {self.any(e)}",
            lambda: f"{self.boolean(e)} {self.pick(['&&', '||'])} {self.boolean(e)}",
            lambda: f"!{self.boolean(e)}",
            lambda: "tobool(" + self.pick(["true", "false", '"true"', '"false"']) + ")",
            lambda: f"length({self.collection(e)}) {self.pick(['<', '>=', '=='])} {self.number(e)}",
            lambda: f"{self.boolean(e)} ? {self.boolean(e)} : {self.boolean(e)}")

    def primitive(self, d: int) -> str:
        return self.pick([self.number, self.string, self.boolean])(d)

    def any(self, d: int) -> str:
        if self.r.random() < 0.25:
            return self.collection(d)
        if self.r.random() < 0.05:
            return "null"
        return self.primitive(d)

    def collection_num(self, d: int) -> str:
        return "[" + ", ".join(self.number(d) for _ in range(self.r.randint(1, 3))) + "]"

    def collection(self, d: int) -> str:
        e = d - 1

        def indexed(n):
            body = self.pick(["i", "x", '"${i}"'])            # drawn before the collection
            return f"[for i, x in {self.collection(e)} : {body}]"

        def converted(n):
            conv = self.pick(["tolist", "toset"])
            return f"{conv}([" + ", ".join(self.primitive(e) for _ in range(n)) + "])"
        forms = (
            lambda n: "[" + ", ".join(self.primitive(e) for _ in range(n)) + "]",
            lambda n: "{" + ", ".join(f"k{i} = {self.primitive(e)}" for i in range(n)) + "}",
            lambda n: f"[for x in {self.collection_num(e)} : x {self.pick(['+', '*', '-'])} {self.number(e)}]",
            indexed,
            lambda n: f'{{for x in {self.collection_num(e)} : "k${{x}}" => x}}',
            converted,
            lambda n: "tomap({" + ", ".join(f"k{i} = {self.primitive(e)}" for i in range(n)) + "})",
            lambda n: "[" + ", ".join(f"{{a = {self.primitive(e)}}}" for _ in range(n + 1)) + "][*].a",
            lambda n: "[" + ", ".join(f"{{a = {self.primitive(e)}}}" for _ in range(n + 1)) + "].*.a",
            lambda n: f"{self.boolean(e)} ? {self.collection(e)} : {self.collection(e)}",
            lambda n: f"[for x in {self.collection(e)} : x if {self.pick(['true', 'false', 'x != null'])}]",
            lambda n: f"[{self.collection(e)}, {self.collection(e)}]")
        form = self.r.randrange(len(forms))
        return forms[form](self.r.randint(0, 3))        # the size is drawn after the form, for every form

    def typed(self, d: int) -> str:
        """A collection of a definite kind (tuple, list, set, object, map), for mixing kinds."""
        n = self.r.randint(0, 3)
        kind = self.r.randrange(5)
        if d > 0 and self.r.random() < 0.3:
            inner = [self.typed(d - 1) for _ in range(n)]
        else:
            inner = [self.pick([self.pick(NUMBERS), self.pick(STRINGS), self.pick(BOOLS), "null"])
                     for _ in range(n)]
        seq = "[" + ", ".join(inner) + "]"
        obj = "{" + ", ".join(f"k{i} = {v}" for i, v in enumerate(inner)) + "}"
        return [seq, f"tolist({seq})", f"toset({seq})", obj, f"tomap({obj})"][kind]

    def mixed(self, d: int) -> str:
        a, b = self.typed(d), self.typed(d)
        return self.one_of(
            lambda: f"{self.boolean(1)} ? {a} : {b}",
            lambda: f"{a} {self.pick(['==', '!='])} {b}",
            lambda: f"{self.pick(['tolist', 'toset'])}([{a}, {b}])",
            lambda: f"tomap({{x = {a}, y = {b}}})",
            lambda: f"[for k, v in {a} : {self.pick(['k', 'v', '[k, v]', '{k = k}'])}]",
            lambda: f'{{for k, v in {a} : "${{k}}" => {self.pick(["v", "k", "[v]"])}}}',
            lambda: f'"%{{ for v in {a} }}${{v}},%{{ endfor }}"')


def main() -> None:
    generated = {out for _, out, _ in RUNS}
    seen = {line.strip() for p in CASES.glob("*.txt") if p not in generated
            for line in p.read_text(encoding="utf-8").splitlines()}
    for seed, out, depth in RUNS:
        g = Gen(random.Random(seed))
        lines: list[str] = []
        while len(lines) < COUNT:
            e = g.pick([g.number, g.string, g.boolean, g.collection, g.any, g.mixed, g.mixed])(g.r.randint(1, depth))
            if e not in seen and 8 <= len(e) < 400:
                seen.add(e)
                lines.append(e)
        out.write_text(f"# Generated by tests/differential/generate.py (seed {seed}); do not edit.\n"
                       + "\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
