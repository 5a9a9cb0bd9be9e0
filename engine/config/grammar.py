"""The HCL parser: lark's LALR parser for ``hcl.lark``, built once per grammar.

One parser for everything: whole files (start rule ``start``), a lone expression
(``expr_only``) and a raw template (``template``); pass ``start=`` to ``parse``.

Building the LALR tables takes ≈1.4 s, so they are kept as plain data (lark's
``memo_serialize`` written with marshal), keyed by the grammar text and the lark
and Python versions: beside the grammar in the installed package when that
directory can be written (as python-hcl2 keeps its tables; then every user and
every fresh ``XDG_CACHE_HOME`` finds them), else in the user's cache
(:mod:`kvmnet.engine.config.cache`). Loading them takes ≈80 ms. A file is read
only if it is owned by us or root and writable by nobody else. lark's own cache
option is not used: it pickles, into a shared temporary directory.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from kvmnet.engine.config import cache

GRAMMAR = Path(__file__).with_name("hcl.lark")

# Operator tokens that may follow a line break inside an expression (python-hcl2's
# postlexer, MIT licence). MINUS is left out: it also starts a negative number on
# the next line ("a = 1\nb = -2").
_CONTINUATION_OPERATORS = frozenset({
    "DOUBLE_EQ", "NEQ", "LT", "GT", "LEQ", "GEQ", "ASTERISK", "SLASH", "PERCENT",
    "DOUBLE_AMP", "DOUBLE_PIPE", "PLUS", "QMARK",
})


class PostLexer:
    """Merge a newline into a binary operator that starts the next line, so the
    LALR parser reads ``a\\n  + b`` as one expression."""

    always_accept = ()

    def process(self, stream):
        pending = None
        for token in stream:
            if token.type == "NL_OR_COMMENT":
                if pending is not None:
                    yield pending
                pending = token
                continue
            if pending is not None:
                if token.type in _CONTINUATION_OPERATORS:
                    token = token.update(value=str(pending) + str(token))
                else:
                    yield pending
                pending = None
            yield token
        if pending is not None:
            yield pending


_parser = None
START_RULES = ("start", "expr_only", "template")


def _key(text: bytes) -> str:
    import lark
    h = hashlib.sha256(text)
    h.update(f"\0lark {lark.__version__}\0python {sys.version}".encode())
    return f"lalr-{h.hexdigest()}"


def parser():
    """The parser (built, or loaded from the cache, on first use)."""
    global _parser
    if _parser is None:
        from lark import Lark
        text = GRAMMAR.read_bytes()
        key = _key(text)
        beside = GRAMMAR.with_name(f".{GRAMMAR.name}.{key[:24]}.tables")
        for saved in (cache.load_file(beside, owners=(0,)), cache.load("grammar", key)):
            if isinstance(saved, dict) and "data" in saved and "memo" in saved:
                try:
                    _parser = Lark._load_from_dict(saved["data"], saved["memo"],
                                                   postlex=PostLexer())
                    break
                except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                    _parser = None   # a damaged entry: try the next, or build afresh
        if _parser is None:
            _parser = Lark(text.decode(), parser="lalr", propagate_positions=True,
                           postlex=PostLexer(), start=list(START_RULES))
            from lark.grammar import Rule
            from lark.lexer import TerminalDef
            data, memo = _parser.memo_serialize([TerminalDef, Rule])
            data["options"] = {k: v for k, v in data["options"].items() if k != "postlex"}
            tables = {"data": data, "memo": memo}
            if not cache.store_file(beside, tables):
                cache.store("grammar", key, tables)
    return _parser
