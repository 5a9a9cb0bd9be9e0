"""The built-in functions, with Terraform's semantics (SPEC §2).

Each :class:`Function` checks its argument count, returns UNKNOWN when an
argument is unknown (or contains one, unless the function only needs the
collection's shape, like ``length`` or ``concat``), rejects null arguments unless
the function accepts them, and reports failures as ``call to function "NAME"
failed: ...``.
"""
from __future__ import annotations

import math

from kvmnet.engine import limits
from kvmnet.sdk.values import UNKNOWN, contains_unknown

from . import cidr, ops
from .errors import ExprError
from .formatting import format_string


class Function:
    __slots__ = ("name", "impl", "min_args", "max_args", "nested_unknown", "null_from")

    def __init__(self, name, impl, min_args, max_args, nested_unknown=False, null_from=None):
        self.name = name
        self.impl = impl
        self.min_args = min_args
        self.max_args = max_args          # None: variadic
        self.nested_unknown = nested_unknown  # may see UNKNOWN inside collections
        self.null_from = null_from        # arguments from this index on may be null

    def _arity(self) -> str:
        lo, hi = self.min_args, self.max_args
        if hi is None:
            return f"at least {lo} argument{'s' if lo != 1 else ''}"
        if lo == hi:
            return f"exactly {lo} argument{'s' if lo != 1 else ''}"
        return f"{lo} to {hi} arguments"

    def call(self, args: list, offset: int | None = None):
        n = len(args)
        if n < self.min_args or (self.max_args is not None and n > self.max_args):
            raise ExprError(f'function "{self.name}" expects {self._arity()}, got {n}', offset)
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
            return self.impl(*args)
        except ExprError as e:
            raise ExprError(f'call to function "{self.name}" failed: {e.message}', offset) from None


def _list_arg(v, what="argument") -> list:
    if isinstance(v, list):
        return v
    raise ExprError(f"{what} must be a list or set, got {ops.type_name(v)}")


def _map_arg(v, what="argument") -> dict:
    if isinstance(v, dict):
        return v
    raise ExprError(f"{what} must be a map or object, got {ops.type_name(v)}")


def _cidrhost(prefix, hostnum):
    return cidr.cidrhost(ops.to_string(prefix, "prefix: "), ops.to_int(hostnum, "hostnum: "))


def _cidrsubnet(prefix, newbits, netnum):
    return cidr.cidrsubnet(ops.to_string(prefix, "prefix: "), ops.to_int(newbits, "newbits: "),
                           ops.to_int(netnum, "netnum: "))


def _cidrnetmask(prefix):
    return cidr.cidrnetmask(ops.to_string(prefix, "prefix: "))


def _format(spec, *args):
    return _checked(format_string(ops.to_string(spec, "format: "), list(args)))


def _checked(s):
    if s is not None and s is not UNKNOWN and len(s) > limits.MAX_STRING_CHARS:
        raise ExprError(f"the result is longer than {limits.MAX_STRING_CHARS} characters")
    return s


def _join(sep, *lists):
    sep = ops.to_string(sep, "separator: ")
    items = []
    for li, lst in enumerate(lists):
        for i, v in enumerate(_list_arg(lst, f"argument {li + 2}")):
            if v is None:
                raise ExprError(f"element {i} of the list is null")
            items.append(ops.to_string(v, f"element {i}: "))
    return _checked(sep.join(items))


def _concat(*lists):
    out = []
    for i, lst in enumerate(lists):
        out.extend(_list_arg(lst, f"argument {i + 1}"))
    return out


def _length(v):
    if type(v) is str:
        return ops.string_length(v)
    if isinstance(v, (list, dict)):
        return len(v)
    raise ExprError(f"argument must be a string, list, set or map, got {ops.type_name(v)}")


def _range(*args):
    nums = [ops.to_number(a, f"argument {i + 1}: ") for i, a in enumerate(args)]
    if len(nums) == 1:
        start, end = 0, nums[0]
        step = -1 if end < 0 else 1
    elif len(nums) == 2:
        start, end = nums
        step = -1 if end < start else 1
    else:
        start, end, step = nums
    if step == 0:
        raise ExprError("step must not be zero")
    if step < 0 and end > start:
        raise ExprError("end must be less than start when step is negative")
    if step > 0 and end < start:
        raise ExprError("end must be greater than start when step is positive")
    count = math.ceil((end - start) / step)
    if count > 1024:
        raise ExprError("more than 1024 values were generated; either decrease the "
                        "difference between start and end or use a smaller step")
    return [ops.normalize_number(start + i * step) for i in range(count)]


_NO_DEFAULT = object()


def _lookup(m, key, default=_NO_DEFAULT):
    m = _map_arg(m, "the first argument")
    key = ops.to_string(key, "key: ")
    if key in m:
        return m[key]
    if default is _NO_DEFAULT:
        raise ExprError(f'the given key "{key}" does not exist in the map')
    return default


def _merge(*maps) -> dict:
    out: dict = {}
    for i, m in enumerate(maps):
        if m is None:
            continue
        out.update(_map_arg(m, f"argument {i + 1}"))
    return out


def _keys(m):
    return sorted(_map_arg(m))


def _values(m):
    return [v for _, v in ops.sorted_items(_map_arg(m))]


def _to_kind(kind):
    """tolist / toset / tomap / tobool: Terraform's conversion to ``kind`` (see types.py)."""
    def impl(v):
        from .types import ANY, BOOL, Type, convert
        return convert(v, BOOL if kind == "bool" else Type(kind, ANY))
    return impl


def _lower(s):
    return ops.lower(ops.to_string(s))


def _upper(s):
    return ops.upper(ops.to_string(s))


def _min(*nums):
    return min(ops.to_number(n, f"argument {i + 1}: ") for i, n in enumerate(nums))


def _max(*nums):
    return max(ops.to_number(n, f"argument {i + 1}: ") for i, n in enumerate(nums))


def _tostring(v):
    if v is None or type(v) is str:
        return v
    if type(v) is bool or ops.is_number(v):
        return ops.to_string(v)
    raise ExprError(f"cannot convert {ops.type_name(v)} to string")


def _tonumber(v):
    if v is None or ops.is_number(v):
        return v
    if type(v) is str:
        n = ops.parse_number(v)
        if n is None:
            raise ExprError(f'cannot convert "{v}" to number; given string must be a '
                            "decimal representation of a number")
        return n
    raise ExprError(f"cannot convert {ops.type_name(v)} to number")


def _fn(name, impl, lo, hi, **kw):
    return name, Function(name, impl, lo, hi, **kw)


FUNCTIONS: dict[str, Function] = dict([
    _fn("cidrhost", _cidrhost, 2, 2),
    _fn("cidrsubnet", _cidrsubnet, 3, 3),
    _fn("cidrnetmask", _cidrnetmask, 1, 1),
    _fn("format", _format, 1, None, null_from=1),
    _fn("join", _join, 2, None),
    _fn("concat", _concat, 1, None, nested_unknown=True),
    _fn("length", _length, 1, 1, nested_unknown=True),
    _fn("range", _range, 1, 3),
    _fn("lookup", _lookup, 2, 3, nested_unknown=True, null_from=2),
    _fn("merge", _merge, 0, None, nested_unknown=True, null_from=0),
    _fn("keys", _keys, 1, 1, nested_unknown=True),
    _fn("values", _values, 1, 1, nested_unknown=True),
    _fn("toset", _to_kind("set"), 1, 1, null_from=0),
    _fn("tolist", _to_kind("list"), 1, 1, nested_unknown=True, null_from=0),
    _fn("tomap", _to_kind("map"), 1, 1, nested_unknown=True, null_from=0),
    _fn("tobool", _to_kind("bool"), 1, 1, null_from=0),
    _fn("lower", _lower, 1, 1),
    _fn("upper", _upper, 1, 1),
    _fn("min", _min, 1, None),
    _fn("max", _max, 1, None),
    _fn("tostring", _tostring, 1, 1, null_from=0),
    _fn("tonumber", _tonumber, 1, 1, null_from=0),
])
