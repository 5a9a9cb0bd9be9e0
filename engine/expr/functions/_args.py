"""Argument conversions shared by the function kinds.

Every function reads its arguments through these helpers (never through the
value representation directly), so a change of how numbers or collections are
held touches this module and ``ops`` only. ``what`` names the parameter in the
message, as Terraform does (``invalid value for "str" parameter: ...``).
"""
from __future__ import annotations

from kvmnet.engine import limits

from .. import ops
from ..errors import ExprError


def bad(param: str, message: str) -> ExprError:
    return ExprError(f'invalid value for "{param}" parameter: {message}')


def string(v, param: str) -> str:
    if isinstance(v, (list, dict)) or v is None:
        raise bad(param, f"string required, got {ops.type_name(v)}")
    return ops.to_string(v)


def number(v, param: str):
    try:
        return ops.to_number(v)
    except ExprError as e:
        raise bad(param, e.message) from None


def whole(v, param: str) -> int:
    n = number(v, param)
    if type(n) is not int:
        if isinstance(n, float) and n.is_integer():
            return int(n)
        raise bad(param, f"a whole number is required, got {ops.number_to_string(n)}")
    return n


def boolean(v, param: str) -> bool:
    try:
        return ops.to_bool(v)
    except ExprError as e:
        raise bad(param, e.message) from None


def sequence(v, param: str) -> list:
    """A list, tuple or set (sets are sorted lists: ``ops.SetValue``)."""
    if isinstance(v, list):
        return v
    raise bad(param, f"list, set or tuple required, got {ops.type_name(v)}")


def mapping(v, param: str) -> dict:
    if isinstance(v, dict):
        return v
    raise bad(param, f"map or object required, got {ops.type_name(v)}")


def is_set(v) -> bool:
    return isinstance(v, ops.SetValue)


def checked_string(s):
    """A computed string, refused when it breaks the string length limit (null and
    unknown pass: ``format`` gives them)."""
    if type(s) is str and len(s) > limits.MAX_STRING_CHARS:
        raise ExprError(f"the result is longer than {limits.MAX_STRING_CHARS} characters")
    return s


def checked_items(n: int) -> None:
    """Refuse building a collection of more than MAX_COLLECTION_ITEMS elements."""
    if n > limits.MAX_COLLECTION_ITEMS:
        raise ExprError(f"the result would have {n} elements, more than "
                        f"{limits.MAX_COLLECTION_ITEMS}")


def checked_depth(v, what: str):
    """Refuse decoded data nested deeper than the language's nesting limit (so no
    later recursion over it can reach Python's stack limit)."""
    stack = [(v, 1)]
    while stack:
        x, d = stack.pop()
        if isinstance(x, (list, dict)):
            if d > limits.MAX_NESTING:
                raise ExprError(f"the {what} is nested more than {limits.MAX_NESTING} levels deep")
            stack.extend((y, d + 1) for y in (x.values() if isinstance(x, dict) else x))
    return v


def as_list(items) -> list:
    """A list-typed result (Terraform's ``list(T)``, not a tuple)."""
    return ops.ListValue(items)


def as_map(entries) -> dict:
    """A map-typed result (Terraform's ``map(T)``, not an object)."""
    return ops.MapValue(entries)


def converted(v, kind: str, param: str):
    """``v`` converted to ``list(any)``, ``set(any)``, ``map(any)`` or ``bool`` as
    Terraform converts a function argument (element types unified: ``[1, "a"]``
    becomes ``["1", "a"]``)."""
    from ..types import ANY, BOOL, Type, convert
    try:
        return convert(v, BOOL if kind == "bool" else Type(kind, ANY))
    except ExprError as e:
        raise bad(param, e.message) from None


def is_list_typed(v) -> bool:
    """A list or set value, as opposed to a tuple (a plain ``list``)."""
    return isinstance(v, list) and type(v) is not list


def is_map_typed(v) -> bool:
    return isinstance(v, dict) and type(v) is not dict


def like(src, items) -> list:
    """A result of the same collection kind as ``src``: a tuple stays a tuple, a
    list (or a set, which has no order to keep) becomes a list."""
    return as_list(items) if is_list_typed(src) else list(items)
