"""Value helpers shared by operators, functions and type conversion.

Values are plain Python: ``str``, ``int``/``float`` (numbers; whole numbers are
always ``int``), ``bool``, ``None`` (null), ``list`` (lists and tuples), ``dict``
(maps and objects), :class:`SetValue` (sets) and ``UNKNOWN``.
"""
from __future__ import annotations

import math
import re

from kvmnet.engine import limits
from kvmnet.sdk.values import UNKNOWN

from .errors import ExprError

NUMBER_TYPES = (int, float)
_NUMBER_TEXT = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


class SetValue(list):
    """A set (what ``toset`` returns): a sorted, de-duplicated list.

    It is a ``list`` so that JSON encoding, jsonschema ``array`` checks and
    iteration work unchanged; ``isinstance(v, SetValue)`` tells a set from a list
    (``for_each`` accepts a set of strings but not a list). Strings sort
    lexically and numbers numerically, as Terraform orders set elements.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"toset({list.__repr__(self)})"


def make_set(items) -> SetValue:
    out: list = []
    for item in items:
        if not any(equals(item, seen) for seen in out):
            out.append(item)
    out.sort(key=_set_sort_key)
    return SetValue(out)


def _set_sort_key(v):
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, bool):
        return (2, v)
    if isinstance(v, NUMBER_TYPES):
        return (0, v)
    return (3, repr(v))


def is_number(v) -> bool:
    return type(v) is int or type(v) is float


def type_name(v) -> str:
    """The Terraform-ish name of a value's type, for error messages."""
    if v is None:
        return "null"
    if v is UNKNOWN:
        return "unknown value"
    t = type(v)
    if t is bool:
        return "bool"
    if t is int or t is float:
        return "number"
    if t is str:
        return "string"
    if isinstance(v, SetValue):
        return "set"
    if isinstance(v, list):
        return "list"
    if isinstance(v, dict):
        return "object"
    return t.__name__


def normalize_number(n):
    """Whole floats become ints: ``4/2`` is 2, ``2.5`` stays 2.5."""
    if type(n) is float and n.is_integer():
        return int(n)
    return n


def parse_number(text: str):
    """A decimal number from text, or None when the text is not one (or is out of
    range: too many digits, or not finite as a float)."""
    s = text.strip()
    if len(s) > limits.MAX_NUMBER_DIGITS or not _NUMBER_TEXT.fullmatch(s):
        return None
    if "." in s or "e" in s or "E" in s:
        value = float(s)
        return normalize_number(value) if math.isfinite(value) else None
    return int(s)


def number_to_string(n) -> str:
    if type(n) is int:
        return str(n)
    if n != n or n in (float("inf"), float("-inf")):
        raise ExprError("number is not finite")
    if n.is_integer():
        return str(int(n))
    text = repr(n)
    if "e" in text or "E" in text:
        from decimal import Decimal
        text = format(Decimal(text), "f")
    return text


def to_string(v, what: str = "") -> str:
    """Terraform's conversion to string (numbers and bools convert)."""
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "true" if v else "false"
    if t is int or t is float:
        return number_to_string(v)
    if v is None:
        raise ExprError(f"{what}a string is required, got null")
    raise ExprError(f"{what}a string is required, got {type_name(v)}")


def to_number(v, what: str = ""):
    t = type(v)
    if t is int or t is float:
        return v
    if t is str:
        n = parse_number(v)
        if n is not None:
            return n
        raise ExprError(f'{what}a number is required, got "{v}"')
    if v is None:
        raise ExprError(f"{what}a number is required, got null")
    raise ExprError(f"{what}a number is required, got {type_name(v)}")


def to_int(v, what: str = "") -> int:
    n = to_number(v, what)
    if type(n) is float:
        raise ExprError(f"{what}a whole number is required, got {number_to_string(n)}")
    return n


def to_bool(v, what: str = "") -> bool:
    t = type(v)
    if t is bool:
        return v
    if t is str:
        if v == "true":
            return True
        if v == "false":
            return False
        raise ExprError(f'{what}a bool is required, got "{v}"')
    if v is None:
        raise ExprError(f"{what}a bool is required, got null")
    raise ExprError(f"{what}a bool is required, got {type_name(v)}")


def equals(a, b) -> bool:
    """HCL ``==`` on known values: no conversion between types, 1 == 1.0."""
    if a is None or b is None:
        return a is b
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a == b
    if ta is str or tb is str:
        return ta is tb and a == b
    if isinstance(a, list) and isinstance(b, list):
        if isinstance(a, SetValue) != isinstance(b, SetValue) or len(a) != len(b):
            return False
        return all(equals(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return False
        return all(equals(a[k], b[k]) for k in a)
    return False


def unify_primitives(values: list) -> list:
    """Give list elements one type as Terraform's tolist/toset/tomap do.

    Mixed strings, numbers and bools all become strings; otherwise unchanged.
    """
    kinds = set()
    for v in values:
        if v is None or v is UNKNOWN:
            continue
        t = type(v)
        if t is bool:
            kinds.add("bool")
        elif t is int or t is float:
            kinds.add("number")
        elif t is str:
            kinds.add("string")
        else:
            kinds.add("complex")
    if len(kinds) > 1:
        if "complex" in kinds:
            raise ExprError("all elements must have the same type")
        return [v if v is None or v is UNKNOWN else to_string(v) for v in values]
    return list(values)


def sorted_items(m: dict):
    """Map entries in Terraform's order: keys sorted lexically."""
    return sorted(m.items(), key=lambda kv: kv[0])
