"""Compile whole raw values (what ``engine/config/hcl.py`` reads) once, evaluate them many times."""
from __future__ import annotations

from . import nodes as N
from .errors import ExprError
from .ops import normalize_number
from .build import Source, build
from .parser import parse_template
from .reference import Reference


class RawList(N.Expr):
    """A raw list (an HCL tuple of raw values)."""

    __slots__ = ("items",)

    def __init__(self, items):
        self.items = tuple(items)
        self.offset = 0

    def evaluate(self, scope):
        out = []
        Lit = N.Literal
        for e in self.items:
            if type(e) is Lit:
                out.append(e.value)
                continue
            try:
                out.append(e.evaluate(scope))
            except ExprError as err:
                err.at(len(out))
                raise
        return out

    def collect_refs(self, bound, out):
        for e in self.items:
            e.collect_refs(bound, out)


class RawMap(N.Expr):
    """A raw dict (an HCL object); keys are plain strings or templates."""

    __slots__ = ("items",)

    def __init__(self, items):
        self.items = tuple(items)   # (str | Expr, Expr)
        self.offset = 0

    def evaluate(self, scope):
        out = {}
        Lit = N.Literal
        for k, e in self.items:
            if type(k) is not str:
                key = k.evaluate(scope)
                if type(key) is not str:
                    from kvmnet.sdk.values import UNKNOWN
                    if key is UNKNOWN:
                        return UNKNOWN
                    from .ops import to_string
                    try:
                        key = to_string(key, "object key: ")
                    except ExprError as err:
                        raise ExprError(err.message, k.offset) from None
            else:
                key = k
                if type(e) is Lit:
                    out[key] = e.value
                    continue
            try:
                out[key] = e.evaluate(scope)
            except ExprError as err:
                err.at(key)
                raise
        return out

    def collect_refs(self, bound, out):
        for k, e in self.items:
            if type(k) is not str:
                k.collect_refs(bound, out)
            e.collect_refs(bound, out)


def _compile(raw) -> N.Expr:
    t = type(raw)
    if t is Source:
        return build(raw.data)
    if t is str:
        if "${" not in raw and "%{" not in raw and not raw.startswith("<<"):
            return N.Literal(raw)
        return parse_template(raw)
    if t is int or t is bool or raw is None:
        return N.Literal(raw)
    if t is float:
        return N.Literal(normalize_number(raw))
    if isinstance(raw, list):
        items = []
        for i, x in enumerate(raw):
            try:
                items.append(_compile(x))
            except ExprError as err:
                err.at(i)
                raise
        return RawList(items)
    if isinstance(raw, dict):
        pairs: list[tuple[str | N.Expr, N.Expr]] = []
        for k, v in raw.items():
            key: str | N.Expr = k
            if type(k) is Source:
                key = build(k.data)
            elif "${" in k or "%{" in k:
                try:
                    key = parse_template(k)
                except ExprError as err:
                    err.at(k)
                    raise
            try:
                pairs.append((key, _compile(v)))
            except ExprError as err:
                err.at(k)
                raise
        return RawMap(pairs)
    raise ExprError(f"unsupported value of type {t.__name__}")


class Compiled:
    """A raw value compiled once. ``evaluate(scope)`` returns a fresh plain Python
    value each time; ``references()`` lists every reference it contains.
    Errors carry ``path`` (e.g. ``("ip", 0, "address")``) to where they occurred."""

    __slots__ = ("node", "_refs")

    def __init__(self, node: N.Expr):
        self.node = node
        self._refs: list[Reference] | None = None

    def evaluate(self, scope):
        return self.node.evaluate(scope)

    def references(self) -> list[Reference]:
        if self._refs is None:
            self._refs = self.node.references()
        return list(self._refs)

    @property
    def is_constant(self) -> bool:
        """True when evaluation needs no scope at all (no references)."""
        return not self.references()

    def __repr__(self) -> str:
        return f"Compiled({self.node!r})"


def compile_value(raw) -> Compiled:
    """Compile a raw value (dict/list/str/number/bool/None, nested).

    A :class:`Source` (an expression read from a file) is built from its data,
    not parsed again; a plain string with ``${``/``%{`` is parsed once (cached by
    text); strings without cost one substring test. Raises :class:`ExprError` with ``path`` set on a
    syntax error or unknown function.
    """
    return Compiled(_compile(raw))


_NOT_MEANING = frozenset({"offset", "texts", "root_text", "first", "_ref", "fn", "function"})


def structure(raw):
    """What a raw value means, as nested tuples, without source positions or layout:
    two values with the same structure evaluate alike (used by ``kvmnet fmt`` to
    prove that re-indenting changed nothing). A value that does not compile is its
    own structure."""
    try:
        node = _compile(raw)
    except ExprError:
        return ("invalid", repr(raw))
    return _structure(node)


def _structure(v):
    if isinstance(v, N.Expr):
        slots = [s for c in type(v).__mro__ for s in getattr(c, "__slots__", ())
                 if s not in _NOT_MEANING]
        return (type(v).__name__,) + tuple(_structure(getattr(v, s, None)) for s in slots)
    if isinstance(v, (list, tuple)):
        return tuple(_structure(x) for x in v)
    if isinstance(v, dict):
        return tuple((k, _structure(x)) for k, x in v.items())
    return (type(v).__name__, v)
