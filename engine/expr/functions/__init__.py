"""The built-in functions, with Terraform's semantics (SPEC §2), one module per
kind: ``numeric``, ``strings``, ``collection``, ``encoding``, ``filesystem``,
``hashing``, ``ip``, ``conversion`` (type conversion, ``can``/``try``,
``sensitive``/``nonsensitive`` and the console-only ``type``).

Each :class:`Function` checks its argument count, returns UNKNOWN when an
argument is unknown (or contains one, unless the function only needs the
collection's shape, like ``length`` or ``concat``), rejects null arguments unless
the function accepts them, and reports failures as ``call to function "NAME"
failed: ...``; the engine adds FILE:LINE.

Three kinds of function need more than their argument values:

- ``scoped``: the implementation gets the :class:`~kvmnet.engine.expr.Scope`
  first (the ``file*`` functions read ``scope.files``, ``sensitive`` records on
  ``scope.marks``, ``type`` checks ``scope.console``);
- ``lazy``: the implementation gets the scope and the argument *expressions*
  (``can`` and ``try`` evaluate them one by one and catch errors);
- ``foldable=False``: never folded to a constant at parse time (everything
  scoped or lazy, whose result depends on more than the argument values).

The kind modules (and what they import: YAML, RE2, ...) load when the table is
first used, not with this package: a config that calls no function, and
``kvmnet validate`` of an empty directory, never pay for them. ``FileAccess`` and
``uses_sensitive`` likewise load their own module on first use.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kvmnet.sdk.values import UNKNOWN, contains_unknown

from ..errors import ExprError

if TYPE_CHECKING:
    from .conversion import uses_sensitive
    from .filesystem import FileAccess


class Function:
    __slots__ = ("name", "impl", "min_args", "max_args", "nested_unknown", "null_from",
                 "scoped", "lazy", "foldable")

    def __init__(self, name, impl, min_args, max_args, nested_unknown=False, null_from=None,
                 scoped=False, lazy=False):
        self.name = name
        self.impl = impl
        self.min_args = min_args
        self.max_args = max_args          # None: variadic
        self.nested_unknown = nested_unknown  # may see UNKNOWN inside collections
        self.null_from = null_from        # arguments from this index on may be null
        self.scoped = scoped              # impl(scope, *args)
        self.lazy = lazy                  # impl(scope, arg_nodes)
        self.foldable = not (scoped or lazy)

    def _arity(self) -> str:
        lo, hi = self.min_args, self.max_args
        if hi is None:
            return f"at least {lo} argument{'s' if lo != 1 else ''}"
        if lo == hi:
            return f"exactly {lo} argument{'s' if lo != 1 else ''}"
        return f"{lo} to {hi} arguments"

    def check_arity(self, n: int, offset: int | None = None) -> None:
        if n < self.min_args or (self.max_args is not None and n > self.max_args):
            raise ExprError(f'function "{self.name}" expects {self._arity()}, got {n}', offset)

    def call(self, args: list, offset: int | None = None, scope=None):
        self.check_arity(len(args), offset)
        null_from = self.null_from
        check_nested = not self.nested_unknown
        for i, a in enumerate(args):
            if a is UNKNOWN:
                return UNKNOWN
            if a is None:
                if null_from is None or i < null_from:
                    raise ExprError(f'call to function "{self.name}" failed: argument {i + 1} '
                                    'must not be null', offset)
            elif check_nested and isinstance(a, (list, dict)) and contains_unknown(a):
                return UNKNOWN
        try:
            if self.scoped:
                return self.impl(scope, *args)
            return self.impl(*args)
        except ExprError as e:
            raise ExprError(f'call to function "{self.name}" failed: {e.message}', offset) from None

    def call_lazy(self, scope, nodes, offset: int | None = None):
        """Call a lazy function (``can``, ``try``) on its argument expressions."""
        self.check_arity(len(nodes), offset)
        try:
            return self.impl(scope, nodes)
        except ExprError as e:
            raise ExprError(f'call to function "{self.name}" failed: {e.message}', offset) from None


def _table() -> dict[str, Function]:
    from . import collection, conversion, encoding, filesystem, hashing, ip, numeric, strings
    out: dict[str, Function] = {}
    for kind in (numeric, strings, collection, encoding, filesystem, hashing, ip, conversion):
        for name, impl, lo, hi, opts in kind.FUNCTIONS:
            if name in out:
                raise AssertionError(f"function {name} is defined twice")
            out[name] = Function(name, impl, lo, hi, **opts)
    return dict(sorted(out.items()))


FUNCTIONS: dict[str, Function]
"""Every built-in function by name, built on first use. ``type`` is among them but
works only where the scope says ``console=True`` (``kvmnet console``), as in
Terraform."""

CONSOLE_ONLY = frozenset({"type"})


def __getattr__(name: str) -> Any:
    """``FUNCTIONS``, ``FileAccess`` and ``uses_sensitive``, loaded on first use (and
    then kept as ordinary module attributes)."""
    if name == "FUNCTIONS":
        value: Any = _table()
    elif name == "FileAccess":
        from .filesystem import FileAccess as value
    elif name == "uses_sensitive":
        from .conversion import uses_sensitive as value
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value

__all__ = ["CONSOLE_ONLY", "FUNCTIONS", "FileAccess", "Function", "uses_sensitive"]
