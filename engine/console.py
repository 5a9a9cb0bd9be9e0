"""``kvmnet console``: one expression per line, evaluated against the configuration
(variables, locals) and the state (resource attributes as last applied), printed
as Terraform's console prints values.

``type(EXPR)`` is answered here only, as in Terraform, where the function exists
in the console and nowhere else: a line whose value is what a call of it returned
(``type(x)``, ``"${type(x)}"``, ``c ? type(a) : type(b)``) prints that type; a line
that uses it inside a larger value is refused, as Terraform's console refuses it.
"""
from __future__ import annotations

import json
from typing import Any

from kvmnet.engine import expr as X
from kvmnet.engine.expr import ops
from kvmnet.engine.expr.children import child_nodes
from kvmnet.engine.expr.nodes import FunctionCall
from kvmnet.engine.expr.ops import ListValue, MapValue, SetValue, TypeValue
from kvmnet.sdk.values import UNKNOWN

def render(v: Any, indent: str = "") -> str:
    """A value as Terraform's console prints it (multi-line lists and objects)."""
    if v is UNKNOWN:
        return "(known after apply)"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return ops.to_string(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    inner = indent + "  "
    if isinstance(v, list):
        # a set, a list and a tuple print alike but for the conversion around them
        wrap = "toset(" if isinstance(v, SetValue) else "tolist(" if isinstance(v, ListValue) else ""
        if not v:
            return f"{wrap}[]{')' if wrap else ''}"
        body = "".join(f"{inner}{render(x, inner)},\n" for x in v)
        return f"{wrap}[\n{body}{indent}]{')' if wrap else ''}"
    if isinstance(v, dict):
        wrap = "tomap(" if isinstance(v, MapValue) else ""
        if not v:
            return f"{wrap}{{}}{')' if wrap else ''}"
        body = "".join(f"{inner}{json.dumps(str(k))} = {render(x, inner)}\n" for k, x in v.items())
        return f"{wrap}{{\n{body}{indent}}}{')' if wrap else ''}"
    return str(v)


def type_name(v: Any) -> str:
    """A value's type as Terraform's ``type()`` prints it (``list(string)``, tuples
    and objects one element a line): the ``type`` function's own text."""
    from kvmnet.engine.expr.functions.conversion import type_string
    return type_string(v)


def evaluate_line(text: str, scope: X.Scope) -> str | None:
    """The printed result of one console line (None for a blank line); raises
    :class:`kvmnet.engine.expr.ExprError` for a bad expression."""
    if not text.strip():
        return None
    scope = scope.replace(console=True)         # type() is a function here
    node = X.parse_expression(text.strip())
    value = node.evaluate(scope)
    if isinstance(value, TypeValue):
        return str(value)
    if _calls_type(node):
        raise X.ExprError('invalid use of type function: the console-only "type" function cannot '
                          'be used as part of an expression')
    return render(value)


def _calls_type(node) -> bool:
    """Whether an expression tree calls ``type(...)`` anywhere."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (list, tuple)):
            stack.extend(n)
            continue
        if not hasattr(n, "evaluate"):
            continue
        if isinstance(n, FunctionCall) and n.name == "type":
            return True
        stack.extend(child_nodes(n))
    return False
