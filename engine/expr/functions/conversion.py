"""Type functions: can try tobool tolist tomap tonumber toset tostring
sensitive nonsensitive, and ``type`` (only where the scope says ``console``).

``sensitive`` marks the evaluation it happens in: it appends to ``scope.marks``
when the caller tracks marks (a list), and whoever evaluated the expression
treats the whole result as sensitive. ``nonsensitive`` evaluates its argument
with marks of its own and refuses a value that was not sensitive, as Terraform
does; sensitive variables mark the same list when they are read.
"""
from __future__ import annotations

from kvmnet.engine.expr.children import child_nodes
from kvmnet.sdk.values import UNKNOWN, contains_unknown

from .. import ops
from ..errors import ExprError
from ..types import ANY, BOOL, Type, convert
from . import _args as A


def _tobool(v):
    try:
        return convert(v, BOOL)
    except ExprError:
        if type(v) is str:
            raise ExprError(f'cannot convert "{v}" to bool; only the strings "true" or "false" '
                            "are allowed") from None
        raise ExprError(f"cannot convert {ops.type_name(v)} to bool") from None


def _tonumber(v):
    if v is None or ops.is_number(v):
        return v
    if type(v) is str:
        n = ops.parse_number(v) if v == v.strip() else None
        if n is None:
            raise ExprError(f'cannot convert "{v}" to number; given string must be a '
                            "decimal representation of a number")
        return n
    raise ExprError(f"cannot convert {ops.type_name(v)} to number")


def _tostring(v):
    if v is None or type(v) is str:
        return v
    if type(v) is bool or ops.is_number(v):
        return ops.to_string(v)
    raise ExprError(f"cannot convert {ops.type_name(v)} to string")


def _to(kind: str):
    """tolist / toset / tomap: Terraform's conversion to a collection of one
    element type (``types.convert``)."""
    def impl(v):
        return convert(v, Type(kind, ANY))
    impl.__name__ = f"_to{kind}"
    return impl


def _can(scope, nodes):
    try:
        v = nodes[0].evaluate(scope)
    except ExprError:
        return False
    return UNKNOWN if v is UNKNOWN else True


def _try(scope, nodes):
    problems = []
    for node in nodes:
        try:
            v = node.evaluate(scope)
        except ExprError as e:
            problems.append(e.message)
            continue
        return UNKNOWN if contains_unknown(v) else v
    listed = "".join(f"\n- {p}" for p in problems)
    raise ExprError(f"no expression succeeded:{listed}\nAt least one expression must produce "
                    "a successful result")


def _sensitive(scope, v):
    marks = getattr(scope, "marks", None)
    if marks is not None:
        marks.append("sensitive")
    return v


def _nonsensitive(scope, nodes):
    inner = scope.replace(marks=[]) if scope is not None else None
    v = nodes[0].evaluate(inner)
    if not inner.marks and v is not UNKNOWN:
        raise A.bad("value", "the given value is not sensitive, so this call is redundant")
    return v


def uses_sensitive(node) -> bool:
    """Whether an expression tree calls ``sensitive(...)`` outside a
    ``nonsensitive(...)``: its value is then sensitive (for checks that follow
    references instead of marking values, as the engine's Sensitivity does)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (list, tuple)):
            stack.extend(n)
            continue
        slots = getattr(type(n), "__slots__", None)
        if slots is None or not hasattr(n, "evaluate"):
            continue
        name = getattr(n, "name", None) if hasattr(n, "function") else None
        if name == "nonsensitive":
            continue
        if name == "sensitive":
            return True
        stack.extend(child_nodes(n))
    return False


def _type(scope, v):
    if not getattr(scope, "console", False):
        raise ExprError('the "type" function is only available in kvmnet console')
    return ops.TypeValue(type_string(v))


def type_string(v) -> str:
    """The type of a value as Terraform's console prints it: ``list(string)``,
    tuples and objects one element a line, four spaces deeper each level."""
    from ..types import type_of
    return _type_text(type_of(v), "")


def _type_text(t, indent: str) -> str:
    inner = indent + "    "
    k = t.kind
    if k == "any":
        return "dynamic"
    if k in ("list", "set", "map"):
        elem = _type_text(t.elem, inner)
        if t.elem.kind in ("object", "tuple", "list", "set", "map") and "\n" in elem:
            return f"{k}(\n{inner}{elem},\n{indent})"
        return f"{k}({elem})"
    if k == "tuple":
        if not t.elems:
            return "tuple([])"
        body = "".join(f"{inner}{_type_text(e, inner)},\n" for e in t.elems)
        return f"tuple([\n{body}{indent}])"
    if k == "object":
        if not t.attrs:
            return "object({})"
        body = "".join(f"{inner}{name}: {_type_text(at, inner)},\n" for name, at, _, _ in t.attrs)
        return f"object({{\n{body}{indent}}})"
    return k


FUNCTIONS: list[tuple] = [
    ("can", _can, 1, 1, {"lazy": True}),
    ("nonsensitive", _nonsensitive, 1, 1, {"lazy": True}),
    ("sensitive", _sensitive, 1, 1, {"scoped": True, "null_from": 0, "nested_unknown": True}),
    ("tobool", _tobool, 1, 1, {"null_from": 0}),
    ("tolist", _to("list"), 1, 1, {"nested_unknown": True, "null_from": 0}),
    ("tomap", _to("map"), 1, 1, {"nested_unknown": True, "null_from": 0}),
    ("tonumber", _tonumber, 1, 1, {"null_from": 0}),
    ("toset", _to("set"), 1, 1, {"null_from": 0}),
    ("tostring", _tostring, 1, 1, {"null_from": 0}),
    ("try", _try, 1, None, {"lazy": True}),
    ("type", _type, 1, 1, {"scoped": True, "null_from": 0, "nested_unknown": True}),
]
