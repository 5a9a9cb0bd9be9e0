"""kvmnet's own HCL expression language: nodes, evaluator, functions, types.

Expressions are parsed once, with the files they are in: the HCL reader
(``engine/config/hcl.py``) reads each non-constant attribute value out of lark's
tree (``engine/config/exprtree.py``) into plain data, carried by a
:class:`~kvmnet.engine.expr.build.Source` raw value; this package turns that data
into nodes and the nodes into values.

Design
------
- ``build``: plain expression data → an immutable tree of ``nodes``; constant
  sub-expressions are folded and function names looked up here. Every node's
  ``offset`` is the source line it starts on, so errors name the line of the
  sub-expression. No Python ``eval`` anywhere. Nesting is limited
  (``engine/limits.py``) when the tree is read, so no input reaches Python's
  recursion limit.
- ``parser``: a lone expression or template from text (``console``, ``--var``
  values, type constraints, raw strings that did not come from a file), read by
  the same grammar (start rules ``expr_only``, ``template``) and the same tree
  reader. :func:`parse_template` reads a raw string value: literal text not
  escaped, ``${...}`` parts raw HCL. A string that is exactly ``"${expr}"`` is the
  expression itself, so ``"${var.n}"`` stays a number. (A bare single
  identifier, ``x = foo``, is read as the string ``"foo"``, as python-hcl2 did:
  what ``ignore_changes = [name]`` and ``type = string`` need.)
- :func:`compile_value` compiles a whole raw value (dicts, lists, scalars) once;
  ``Compiled.evaluate(scope)`` builds a fresh plain value per call.
- :class:`Scope` holds what the engine provides: ``variables``, ``locals``,
  ``count`` / ``each`` (via ``with_count(i)`` / ``with_each(k, v)``),
  ``resolve_resource(type, name)``, ``resource_types``, ``files`` (the module's
  :class:`FileAccess` for ``file()`` and friends), ``marks`` (a list
  ``sensitive()`` appends to) and ``console`` (``type()`` works only there).
- Values, as Terraform has them: str; numbers are cty's 512-bit binary floats
  (:mod:`.number`: an int when whole, ``4/2`` is 2, else a ``float`` subclass
  carrying the exact value, so ``0.1 + 0.2 == 0.3``); bool; None; a plain ``list`` is
  a tuple (``[1, "a"]``), ``ops.ListValue`` a list (``tolist``), :class:`SetValue` a
  set (sorted, de-duplicated; ``for`` iterates it with key == value); a plain ``dict``
  is an object, ``ops.MapValue`` a map; and ``UNKNOWN`` (known after apply), which
  every operation propagates. Maps iterate in sorted key order (``for``, ``keys``,
  ``values``). Conditionals unify their two results' types (``types.unify``);
  ``&&``/``||`` evaluate both sides, as Terraform does.
- :meth:`Expr.references` / ``Compiled.references()`` return :class:`Reference`
  objects for the dependency graph. Rule: a reference runs from its root name
  through attribute names and *constant* index keys, and stops at the first
  non-constant index or splat (``network.lab[count.index].name`` gives
  ``("network", "lab")`` plus ``("count", "index")``); names bound by an enclosing
  ``for`` are left out.
- Errors are :class:`ExprError` with a message naming the reference or function,
  an ``offset`` (the line of the sub-expression) and, from compiled values, a
  ``path``; the engine adds the file.
- ``types``: :func:`parse_type` / :func:`convert` implement Terraform type
  constraints and conversions for variables; :func:`parse_cli_value` reads
  ``--var NAME=VALUE``.
- Speed: a file's expressions are read with the file and cached with it (plain
  data); text given alone is parsed once per distinct text; a plain string costs
  two substring tests; constant sub-expressions (``cidrhost("10.0.0.0/24", 1)``)
  are folded at parse time when they yield a scalar. Creating many small nodes
  makes Python's cyclic GC a third of the cost of a 10,000-resource load: callers
  that load big configs should run the load under ``kvmnet.gcpause.gc_paused``.

Public API
----------
``parse_expression(text) -> Expr``; ``parse_template(s) -> Expr``;
``build(data) -> Expr`` (``kvmnet.engine.expr.build``);
``Expr.evaluate(scope)``, ``Expr.references() -> list[Reference]``;
``compile_value(raw) -> Compiled`` with ``.evaluate(scope)``, ``.references()``,
``.is_constant``, ``.node``;
``Scope(variables=, locals=, count=, each=, resolve_resource=, resource_types=)``
with ``.with_count(i)``, ``.with_each(k, v)``, ``.replace(**fields)``;
``Reference(parts, indexes, text, offset)`` with ``.root``, ``.is_resource``,
``.resource_address``, ``.instance_key``, ``.instance_address``;
``ExprError(message, offset, path)`` with ``.attribute``;
``FUNCTIONS: dict[str, Function]`` (``Function.call(args)``; one module per kind in
``functions/``, docs/functions.md); ``FileAccess(module_dir, on_read)`` for
``Scope(files=...)``; ``SetValue``;
``parse_type(text) -> Type``; ``convert(value, type)``;
``parse_cli_value(text, type)``; ``check_storable(value)`` (refuses an infinity
before a value reaches JSON); numbers: see :mod:`.number`.
"""
from typing import TYPE_CHECKING, Any

from .compiled import Compiled, compile_value
from .errors import ExprError
from .functions import Function
from .nodes import Expr
from .number import check_storable
from .ops import SetValue
from .parser import parse_expression, parse_template
from .reference import Reference
from .scope import Scope
from .types import Type, convert, parse_cli_value, parse_type

if TYPE_CHECKING:
    from .functions import FUNCTIONS, FileAccess, uses_sensitive

__all__ = [
    "Compiled", "ExprError", "Expr", "FUNCTIONS", "FileAccess", "Function", "Reference", "Scope",
    "SetValue", "Type", "check_storable", "compile_value", "convert", "parse_cli_value", "parse_expression",
    "parse_template", "parse_type", "uses_sensitive",
]


def __getattr__(name: str) -> Any:
    """The function table and its helpers, loaded on first use (see :mod:`.functions`)."""
    if name in ("FUNCTIONS", "FileAccess", "uses_sensitive"):
        from . import functions
        value = getattr(functions, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
