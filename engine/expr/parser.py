"""A lone expression or template from text, read by the configuration's own
grammar (``engine/config/hcl.lark``, start rules ``expr_only`` and ``template``)
and the same tree reader as every file (``engine/config/exprtree.py``).

Files never come here: their expressions are read once, from the tree of the
whole file. This is for text that stands alone: ``kvmnet console``, ``--var``
values of collection types, type constraints, and raw template strings that did
not come from a file (:func:`kvmnet.engine.expr.compile_value` of a plain
``"virbr${count.index}"``). Errors are :class:`ExprError` whose ``offset`` is the
line within the text.
"""
from __future__ import annotations

import re

from . import nodes as N
from .build import build
from .errors import ExprError

_HEREDOC_WHOLE = re.compile(r"<<(-?)([A-Za-z_][\w.-]*)[ \t]*\r?\n(.*?)^[ \t]*\2[ \t]*\Z", re.S | re.M)
_EXPR_CACHE: dict[tuple[str, bool], N.Expr] = {}
_TEMPLATE_CACHE: dict[str, N.Expr] = {}
_CACHE_LIMIT = 100_000


def _read_expression(text: str) -> tuple:
    from lark.exceptions import UnexpectedInput

    from kvmnet.engine.config import exprtree
    from kvmnet.engine.config.grammar import parser
    try:
        tree = parser().parse(text + "\n", start="expr_only")
        return exprtree.Reader(text + "\n").expr(exprtree.trees(tree)[0])
    except UnexpectedInput as e:
        raise ExprError(exprtree.syntax_message(e), getattr(e, "line", None) or 1) from None
    except exprtree.Problem as p:
        raise ExprError(p.message, p.line) from None


def parse_expression(text: str, type_mode: bool = False) -> N.Expr:
    """Parse HCL expression source text (e.g. ``var.n > 2 ? "big" : "small"``).
    ``type_mode``: a type constraint, where any call name is allowed."""
    key = (text, type_mode)
    node = _EXPR_CACHE.get(key)
    if node is None:
        node = build(_read_expression(text), type_mode)
        if len(_EXPR_CACHE) > _CACHE_LIMIT:
            _EXPR_CACHE.clear()
        _EXPR_CACHE[key] = node
    return node


def parse_template(s: str) -> N.Expr:
    """Parse a raw string value: literal text (not escaped) with ``${...}``
    interpolations, ``%{...}`` directives, ``$${`` and ``%%{`` escapes, or a whole
    heredoc ``<<EOT ... EOT``. A string that is exactly one interpolation yields the
    expression itself, so its value keeps its type."""
    if "${" not in s and "%{" not in s and not s.startswith("<<"):
        return N.Literal(s)
    node = _TEMPLATE_CACHE.get(s)
    if node is None:
        node = build(_read_template(s))
        if len(_TEMPLATE_CACHE) > _CACHE_LIMIT:
            _TEMPLATE_CACHE.clear()
        _TEMPLATE_CACHE[s] = node
    return node


def _read_template(s: str) -> tuple:
    from kvmnet.engine.config import exprtree
    text = s
    if s.startswith("<<"):
        m = _HEREDOC_WHOLE.match(s)
        if m is not None:
            text = exprtree.dedent(m.group(3)) if m.group(1) else m.group(3)
    try:
        return exprtree.raw_template(text)
    except exprtree.Problem as p:
        raise ExprError(p.message, p.line) from None
