"""Plain expression data (what ``engine/config/exprtree.py`` reads out of lark's
tree) → expression nodes, and :class:`Source`, the raw value of an expression.

Building is where constant sub-expressions are folded (``cidrhost("10.0.0.0/24",
1)`` becomes a literal) and function names are looked up. Every node's ``offset``
is the source line it starts on, so an error names the line of the offending
sub-expression.
"""
from __future__ import annotations

import unicodedata

from . import nodes as N
from . import number
from .errors import ExprError
from .ops import normalize_number


class Source(str):
    """The raw value of an expression that is not a constant: a ``str`` whose text
    is ``"${SOURCE}"`` (what ``depends_on``, ``ignore_changes``, ``fmt`` and messages
    read), carrying ``data``, the expression already read from the parse tree
    (:mod:`kvmnet.engine.config.exprtree`), which :func:`build` turns into nodes."""

    data: tuple

    def __new__(cls, text: str, data: tuple) -> "Source":
        self = super().__new__(cls, text)
        self.data = data
        return self

    def __getnewargs__(self):   # copy.copy / deepcopy
        return (str(self), self.data)


_BINARY_NODE = {
    "||": N.Logical, "&&": N.Logical, "==": N.Equality, "!=": N.Equality,
    "<": N.Compare, ">": N.Compare, "<=": N.Compare, ">=": N.Compare,
    "+": N.Arithmetic, "-": N.Arithmetic, "*": N.Arithmetic, "/": N.Arithmetic,
    "%": N.Arithmetic,
}
_IMMUTABLE = (str, int, float, number.Number, bool, type(None))


def build(data: tuple, type_mode: bool = False) -> N.Expr:
    """The node of expression data. ``type_mode``: a type constraint, where any
    call name (``list(string)``) is allowed."""
    return _Builder(type_mode).node(data)


class _Builder:
    def __init__(self, type_mode: bool):
        self.type_mode = type_mode

    def parts(self, parts) -> list:
        return [p if type(p) is str else self.node(p) for p in parts]

    def node(self, d: tuple) -> N.Expr:
        tag, line = d[0], d[1]
        if tag == "lit":
            v = d[2]
            if type(v) is str and not v.isascii():      # HCL's normal form C, as templates
                v = unicodedata.normalize("NFC", v)
            return N.Literal(normalize_number(v) if type(v) is float else v, line)
        if tag == "num":        # a fraction's text, read at cty's 512-bit precision
            value = number.parse(d[2])
            if value is None:
                raise ExprError(f"number out of range: {d[2]}", line)
            return N.Literal(value, line)
        if tag == "trav":
            return self.traversal(d)
        if tag == "tpl":
            return make_template(self.parts(d[2]), line)
        if tag == "call":
            return self.call(d)
        if tag == "bin":
            op, left, right = d[2], self.node(d[3]), self.node(d[4])
            node = _BINARY_NODE[op](op, left, right, line)
            return fold(node) if type(left) is N.Literal and type(right) is N.Literal else node
        if tag == "un":
            op, operand = d[2], self.node(d[3])
            if op == "-" and type(operand) is N.Literal and number.is_number(operand.value):
                return N.Literal(number.neg(operand.value), line)
            node = N.Unary(op, operand, line)
            return fold(node) if type(operand) is N.Literal else node
        if tag == "cond":
            cond = self.node(d[2])
            then, otherwise = self.node(d[3]), self.node(d[4])
            node = N.Conditional(cond, then, otherwise, line)
            # the result's type depends on both branches (true ? 1 : "b" is "1")
            if type(cond) is N.Literal and type(then) is N.Literal and type(otherwise) is N.Literal:
                return fold(node)
            return node
        if tag == "tuple":
            return N.TupleCons([self.node(e) for e in d[2]], line)
        if tag == "obj":
            return N.ObjectCons([(self.node(k), self.node(v)) for k, v in d[2]], line)
        if tag == "for":
            _, _, key_var, value_var, coll, key, value, cond, group, is_object = d
            return N.ForExpr(key_var, value_var, self.node(coll),
                             None if key is None else self.node(key), self.node(value),
                             None if cond is None else self.node(cond), group, is_object, line)
        if tag == "tif":
            return N.TemplateIf(self.node(d[2]), N.Template(self.parts(d[3]), line),
                                N.Template(self.parts(d[4]), line), line)
        if tag == "tfor":
            return N.TemplateFor(d[2], d[3], self.node(d[4]), N.Template(self.parts(d[5]), line),
                                 line)
        raise ExprError(f"unknown expression node {tag!r}", line)

    def traversal(self, d: tuple) -> N.Expr:
        _, line, root, source, steps, texts, root_text = d
        built = []
        for kind, value in steps:
            if kind == N.INDEX_EXPR:
                key = self.node(value)
                if type(key) is N.Literal and type(key.value) in (str, int):
                    built.append((N.INDEX, key.value))
                else:
                    built.append((N.INDEX_EXPR, key))
            else:
                built.append((kind, value))
        return N.Traversal(root, None if source is None else self.node(source), built, texts,
                           root_text, line)

    def call(self, d: tuple) -> N.Expr:
        _, line, name, args, expand = d
        function = None
        if not self.type_mode:
            from .functions import FUNCTIONS
            function = FUNCTIONS.get(name)
            if function is None:
                raise ExprError(f'unknown function "{name}"', line)
        built = [self.node(a) for a in args]
        node = N.FunctionCall(name, function, built, expand, line)
        if function is not None and function.foldable and all(type(a) is N.Literal for a in built):
            return fold(node)
        return node


def fold(node: N.Expr) -> N.Expr:
    """Constant folding: a node whose operands are all literals becomes a literal
    when it evaluates to a scalar; on an error it is kept, to fail at evaluation."""
    from .scope import Scope
    try:
        value = node.evaluate(Scope())
    except ExprError:
        return node
    if type(value) in _IMMUTABLE:
        return N.Literal(value, node.offset)
    return node


def make_template(parts: list, line: int) -> N.Expr:
    """A template node; a lone ``${expr}`` is the expression itself (HCL unwrapping).
    Literal text is in Unicode normal form C, as HCL reads it ("e\u0301" is "é")."""
    parts = [unicodedata.normalize("NFC", p) if type(p) is str and not p.isascii() else p
             for p in parts]
    if not parts:
        return N.Literal("", line)
    if len(parts) == 1:
        p = parts[0]
        if type(p) is str:
            return N.Literal(p, line)
        if not isinstance(p, (N.TemplateIf, N.TemplateFor)):
            return p
    node = N.Template(parts, line)
    if all(type(p) is str or type(p) is N.Literal for p in parts):
        return fold(node)
    return node
