"""Collection functions: alltrue anytrue chunklist coalesce coalescelist compact
concat contains distinct element flatten index keys length lookup matchkeys
merge one range reverse setintersection setproduct setsubtract setunion slice
sort sum transpose values zipmap.

Where Terraform's parameter is a list of one element type (``distinct``,
``compact``, ``sort``, the set functions), mixed strings, numbers and bools are
unified to strings first, as Terraform's conversion does (``distinct([1, "1"])``
is ``["1"]``).
"""
from __future__ import annotations

import math

from .. import number, ops
from ..errors import ExprError
from . import _args as A


def _unified(v, param: str) -> list:
    """A ``list(T)`` argument: its elements converted to one type."""
    A.sequence(v, param)
    return A.converted(v, "list", param)


def _bools(v, param: str) -> list:
    out: list = []
    for x in A.sequence(v, param):
        if x is None:
            out.append(None)
            continue
        if type(x) is not bool and x not in ("true", "false"):
            raise A.bad(param, "a bool is required")
        out.append(x is True or x == "true")
    return out


def _alltrue(lst):
    return all(x is True for x in _bools(lst, "list"))


def _anytrue(lst):
    return any(x is True for x in _bools(lst, "list"))


def _chunklist(lst, size):
    items = _unified(lst, "list")
    n = A.whole(size, "size")
    if n < 0:
        raise ExprError("the size argument must be positive")
    if n == 0:
        return A.as_list([A.as_list(items)])
    return A.as_list(A.as_list(items[i:i + n]) for i in range(0, len(items), n))


def _coalesce(*args):
    try:
        unified = ops.unify_primitives(list(args))
    except ExprError:
        raise A.bad("vals", "all arguments must have the same type") from None
    for v in unified:
        if v is None or v == "":
            continue
        return v
    raise ExprError("no non-null, non-empty-string arguments")


def _coalescelist(*lists):
    for lst in lists:
        if lst is None or A.is_set(lst) or not isinstance(lst, list):
            raise ExprError("coalescelist arguments must be lists or tuples")
        if lst:
            return lst
    raise ExprError("no non-null arguments")


def _compact(lst):
    out = []
    for x in _unified(lst, "list"):
        if x is None:
            continue
        s = A.string(x, "list")
        if s != "":
            out.append(s)
    return A.as_list(out)


def _concat(*seqs):
    if not seqs:
        raise ExprError("at least one argument is required")
    out: list = []
    for s in seqs:
        if A.is_set(s) or not isinstance(s, list):
            raise A.bad("seqs", f"all arguments must be lists or tuples; got {ops.type_name(s)}")
        out.extend(s)
    A.checked_items(len(out))
    return out


def _contains(lst, value):
    return any(ops.equals(x, value) for x in A.sequence(lst, "list"))


def _distinct(lst):
    out: list = []
    for x in _unified(lst, "list"):
        if not any(ops.equals(x, seen) for seen in out):
            out.append(x)
    return A.as_list(out)


def _element(lst, index):
    items = A.sequence(lst, "list")
    if A.is_set(items):
        raise ExprError("cannot read elements from set")
    try:
        i = A.whole(index, "index")
    except ExprError:
        raise ExprError("invalid index: value must be a whole number, between "
                        "-9223372036854775808 and 9223372036854775807") from None
    if not items:
        raise ExprError("cannot use element function with an empty list")
    if i < 0:
        raise ExprError("cannot use element function with a negative index")
    return items[i % len(items)]


def _flatten(lst):
    if not isinstance(lst, list):
        raise ExprError("can only flatten lists, sets and tuples")
    out: list = []
    _flatten_into(lst, out)
    A.checked_items(len(out))
    return out


def _flatten_into(lst: list, out: list) -> None:
    for x in lst:
        if isinstance(x, list):
            _flatten_into(x, out)
        else:
            out.append(x)


def _index(lst, value):
    if A.is_set(lst) or not isinstance(lst, list):
        raise ExprError("argument must be a list or tuple")
    for i, x in enumerate(lst):
        if ops.equals(x, value):
            return i
    raise ExprError("item not found")


def _keys(m):
    if not isinstance(m, dict):
        raise A.bad("inputMap", "must have map or object type")
    return A.as_list(sorted(m)) if A.is_map_typed(m) else sorted(m)


def _values(m):
    if not isinstance(m, dict):
        raise A.bad("mapping", "must have map or object type")
    out = [v for _, v in ops.sorted_items(m)]
    return A.as_list(out) if A.is_map_typed(m) else out


def _length(v):
    if isinstance(v, str):
        return ops.string_length(v)
    if isinstance(v, (list, dict)):
        return len(v)
    raise A.bad("value", f"must have a string, list, set, tuple, map or object type, got "
                         f"{ops.type_name(v)}")


_NO_DEFAULT = object()


def _lookup(m, key, default=_NO_DEFAULT):
    m = A.mapping(m, "inputMap")
    key = A.string(key, "key")
    if key in m:
        return m[key]
    if default is _NO_DEFAULT:
        raise ExprError(f'the given key "{key}" does not exist in the map')
    return default


def _matchkeys(values, keys, searchset):
    vals, ks = A.sequence(values, "values"), _unified(keys, "keys")
    search = _unified(searchset, "searchset")
    if len(vals) != len(ks):
        raise ExprError("length of keys and values should be equal")
    return A.as_list(v for v, k in zip(vals, ks, strict=True) if any(ops.equals(k, s) for s in search))


def _merge(*maps) -> dict:
    out: dict = {}
    all_maps = True
    for m in maps:
        if m is None:
            continue
        if not isinstance(m, dict):
            raise ExprError(f'arguments must be maps or objects, got "{ops.type_name(m)}"')
        all_maps = all_maps and A.is_map_typed(m)
        out.update(m)
    return A.as_map(out) if all_maps and out else out


def _one(lst):
    if not isinstance(lst, list) or len(lst) > 1:
        raise A.bad("list", "must be a list, set, or tuple value with either zero or one elements")
    return lst[0] if lst else None


def _range(*args):
    nums = [A.number(a, ("start", "limit", "step")[i]) for i, a in enumerate(args)]
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
    qs, qe, qstep = number.exact(start), number.exact(end), number.exact(step)
    if qs is None or qe is None or qstep is None:
        raise ExprError("the range limits must be finite")
    count = math.ceil((qe - qs) / qstep)
    if count > 1024:
        raise ExprError("more than 1024 values were generated; either decrease the "
                        "difference between start and end or use a smaller step")
    return A.as_list(number.make(qs + i * qstep) for i in range(count))


def _reverse(lst):
    items = A.sequence(lst, "list")
    return A.like(items, reversed(items))


def _sets(args, param: str) -> list[list]:
    """The set arguments, their elements converted to one type across them all."""
    flat = A.converted([x for a in args for x in A.sequence(a, param)], "list", param)
    out, pos = [], 0
    for a in args:
        out.append(flat[pos:pos + len(a)])
        pos += len(a)
    return out


def _setintersection(first, *others):
    sets = _sets((first, *others), "first_set")
    keep = [x for x in sets[0] if all(any(ops.equals(x, y) for y in s) for s in sets[1:])]
    return ops.make_set(keep)


def _setsubtract(a, b):
    sa, sb = _sets((a, b), "a")
    return ops.make_set([x for x in sa if not any(ops.equals(x, y) for y in sb)])


def _setunion(first, *others):
    return ops.make_set([x for s in _sets((first, *others), "first_set") for x in s])


def _setproduct(*sets):
    if len(sets) < 2:
        raise ExprError("at least two arguments are required")
    total = 1
    for s in sets:
        total *= len(A.sequence(s, "sets"))
    A.checked_items(total)
    rows: list[list] = [[]]
    for s in sets:
        elems = list(s)
        rows = [r + [x] for r in rows for x in elems]
    return A.as_list(rows)


def _slice(lst, start, end):
    items = A.sequence(lst, "list")
    i, j = A.whole(start, "start_index"), A.whole(end, "end_index")
    if i < 0:
        raise A.bad("start_index", "start index must not be less than zero")
    if j > len(items):
        raise A.bad("end_index", "end index must not be greater than the length of the list")
    if i > j:
        raise A.bad("start_index", "start index must not be greater than end index")
    return A.like(items, items[i:j])


def _sort(lst):
    items = _unified(lst, "list")
    out = []
    for i, x in enumerate(items):
        if x is None:
            raise ExprError(f"given list element {i} is null; a null string cannot be sorted")
        out.append(A.string(x, "list"))
    return A.as_list(sorted(out))


def _sum(lst):
    items = A.sequence(lst, "list")
    if not items:
        raise A.bad("list", "cannot sum an empty list")
    total = 0
    for x in items:
        if x is None or isinstance(x, (list, dict, bool)):
            raise A.bad("list", "argument must be list, set, or tuple of number values")
        total = number.add(total, A.number(x, "list"))
    return total


def _transpose(m):
    m = A.mapping(m, "values")
    out: dict[str, list] = {}
    for key, lst in ops.sorted_items(m):
        if not isinstance(lst, list):
            raise A.bad("values", f"element {key!r} must be a list of strings")
        for x in lst:
            if x is None:
                raise A.bad("values", "lists must not contain null values")
            out.setdefault(A.string(x, "values"), []).append(key)
    return A.as_map((k, A.as_list(v)) for k, v in sorted(out.items()))


def _zipmap(keys, values):
    ks, vs = A.sequence(keys, "keys"), A.sequence(values, "values")
    if len(ks) != len(vs):
        raise ExprError(f"number of keys ({len(ks)}) does not match number of values ({len(vs)})")
    out = {}
    for k, v in zip(ks, vs, strict=True):
        if k is None:
            raise A.bad("keys", "keys must not be null")
        out[A.string(k, "keys")] = v
    return A.as_map(out) if A.is_list_typed(vs) else out


FUNCTIONS: list[tuple] = [
    ("alltrue", _alltrue, 1, 1, {}),
    ("anytrue", _anytrue, 1, 1, {}),
    ("chunklist", _chunklist, 2, 2, {}),
    ("coalesce", _coalesce, 1, None, {"null_from": 0}),
    ("coalescelist", _coalescelist, 1, None, {"nested_unknown": True}),
    ("compact", _compact, 1, 1, {}),
    ("concat", _concat, 0, None, {"nested_unknown": True}),
    ("contains", _contains, 2, 2, {}),
    ("distinct", _distinct, 1, 1, {}),
    ("element", _element, 2, 2, {"nested_unknown": True}),
    ("flatten", _flatten, 1, 1, {"nested_unknown": True}),
    ("index", _index, 2, 2, {}),
    ("keys", _keys, 1, 1, {"nested_unknown": True}),
    ("length", _length, 1, 1, {"nested_unknown": True}),
    ("lookup", _lookup, 2, 3, {"nested_unknown": True, "null_from": 2}),
    ("matchkeys", _matchkeys, 3, 3, {}),
    ("merge", _merge, 0, None, {"nested_unknown": True, "null_from": 0}),
    ("one", _one, 1, 1, {"nested_unknown": True}),
    ("range", _range, 1, 3, {}),
    ("reverse", _reverse, 1, 1, {"nested_unknown": True}),
    ("setintersection", _setintersection, 1, None, {}),
    ("setproduct", _setproduct, 0, None, {}),
    ("setsubtract", _setsubtract, 2, 2, {}),
    ("setunion", _setunion, 1, None, {}),
    ("slice", _slice, 3, 3, {"nested_unknown": True}),
    ("sort", _sort, 1, 1, {}),
    ("sum", _sum, 1, 1, {}),
    ("transpose", _transpose, 1, 1, {}),
    ("values", _values, 1, 1, {"nested_unknown": True}),
    ("zipmap", _zipmap, 2, 2, {"nested_unknown": True}),
]
