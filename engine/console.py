"""``kvmnet console``: one expression per line, evaluated against the configuration
(variables, locals) and the state (resource attributes as last applied), printed
as Terraform's console prints values.

``type(EXPR)`` is answered here only, as in Terraform, where the function exists
in the console and nowhere else: a line that is one call of it prints the type of
its argument's value.
"""
from __future__ import annotations

import json
import re
from typing import Any

from kvmnet.engine import expr as X
from kvmnet.engine.expr import ops
from kvmnet.engine.expr.ops import SetValue
from kvmnet.sdk.values import UNKNOWN

_TYPE_CALL = re.compile(r"\s*type\s*\((.*)\)\s*", re.S)


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
    if isinstance(v, SetValue):
        if not v:
            return "toset([])"
        return "toset([\n" + "".join(f"{inner}{render(x, inner)},\n" for x in v) + indent + "])"
    if isinstance(v, (list, tuple)):
        if not v:
            return "[]"
        return "[\n" + "".join(f"{inner}{render(x, inner)},\n" for x in v) + indent + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        return "{\n" + "".join(f"{inner}{json.dumps(str(k))} = {render(x, inner)}\n"
                               for k, x in v.items()) + indent + "}"
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
    m = _TYPE_CALL.fullmatch(text)
    if m is not None and _balanced(m.group(1)):
        return type_name(X.parse_expression(m.group(1).strip()).evaluate(scope))
    return render(X.parse_expression(text.strip()).evaluate(scope))


def _balanced(text: str) -> bool:
    """``text`` closes every bracket it opens (so ``type(a) + f(b)`` is not one call)."""
    depth = 0
    for ch in text:
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth < 0:
            return False
    return depth == 0
