"""Terraform type constraints for variables, and conversion of values to them."""
from __future__ import annotations

from dataclasses import dataclass

from kvmnet.sdk.values import UNKNOWN

from . import nodes as N
from . import ops
from .errors import ExprError

PRIMITIVES = ("string", "number", "bool")


@dataclass(frozen=True)
class Type:
    """A type constraint. ``kind``: string, number, bool, any, list, set, map,
    object or tuple. ``elem`` for list/set/map; ``attrs`` for object (name, type,
    optional, default); ``elems`` for tuple."""

    kind: str
    elem: "Type | None" = None
    attrs: tuple = ()
    elems: tuple = ()

    @property
    def is_primitive(self) -> bool:
        return self.kind in PRIMITIVES

    def __str__(self) -> str:
        k = self.kind
        if k in ("list", "set", "map"):
            return f"{k}({self.elem})"
        if k == "object":
            inner = ", ".join(
                f"{n} = optional({t}{'' if d is None else ', ' + repr(d)})" if opt else f"{n} = {t}"
                for n, t, opt, d in self.attrs)
            return f"object({{{inner}}})"
        if k == "tuple":
            return f"tuple([{', '.join(str(t) for t in self.elems)}])"
        return k


ANY = Type("any")
STRING = Type("string")
NUMBER = Type("number")
BOOL = Type("bool")
_SIMPLE = {"string": STRING, "number": NUMBER, "bool": BOOL, "any": ANY,
           "list": Type("list", ANY), "map": Type("map", ANY), "set": Type("set", ANY)}


def parse_type(text) -> Type:
    """Parse a type constraint as the HCL reader gives it: ``string``,
    ``${list(string)}``, ``${object({a = string, b = optional(number, 1)})}``...
    A :class:`Type` passes through unchanged."""
    if isinstance(text, Type):
        return text
    if not isinstance(text, str):
        raise ExprError(f"invalid type constraint {text!r}")
    src = text.strip()
    if src.startswith("${") and src.endswith("}"):
        src = src[2:-1]
    if src in _SIMPLE:
        return _SIMPLE[src]
    data = getattr(text, "data", None)   # a Source from a file: already read
    if data is not None:
        from .build import build
        node = build(data, type_mode=True)
    else:
        from .parser import parse_expression
        node = parse_expression(src, type_mode=True)
    return _type_of(node, src)


def _type_of(node, src) -> Type:
    if isinstance(node, N.Traversal) and node.source is None and not node.steps:
        if node.root in _SIMPLE:
            return _SIMPLE[node.root]
        raise ExprError(f'unknown type "{node.root}"', node.offset)
    if isinstance(node, N.Literal) and node.value in _SIMPLE:   # legacy quoted form
        return _SIMPLE[node.value]
    if isinstance(node, N.FunctionCall):
        name, args = node.name, node.args
        if name in ("list", "set", "map"):
            if len(args) != 1:
                raise ExprError(f"{name}(...) takes exactly one element type", node.offset)
            return Type(name, _type_of(args[0], src))
        if name == "object":
            if len(args) != 1 or not isinstance(args[0], N.ObjectCons):
                raise ExprError("object(...) takes one object of attribute types, as in "
                                "object({name = string})", node.offset)
            attrs = []
            for k, v in args[0].items:
                if not (isinstance(k, N.Literal) and type(k.value) is str):
                    raise ExprError("object attribute names must be names", k.offset)
                optional, default = False, None
                if isinstance(v, N.FunctionCall) and v.name == "optional":
                    if not 1 <= len(v.args) <= 2:
                        raise ExprError("optional(...) takes a type and an optional default",
                                        v.offset)
                    optional = True
                    t = _type_of(v.args[0], src)
                    if len(v.args) == 2:
                        default = convert(_constant(v.args[1]), t)
                else:
                    t = _type_of(v, src)
                attrs.append((k.value, t, optional, default))
            return Type("object", attrs=tuple(attrs))
        if name == "tuple":
            if len(args) != 1 or not isinstance(args[0], N.TupleCons):
                raise ExprError("tuple(...) takes one list of element types, as in "
                                "tuple([string, number])", node.offset)
            return Type("tuple", elems=tuple(_type_of(e, src) for e in args[0].items))
        raise ExprError(f'unknown type constructor "{name}"', node.offset)
    raise ExprError(f'invalid type constraint "{src}"', node.offset)


def _constant(node):
    from .scope import Scope
    if node.references():
        raise ExprError("variables may not be used here", node.offset)
    return node.evaluate(Scope())


def convert(value, type_, path: str = ""):
    """Convert ``value`` to ``type_`` (a :class:`Type` or constraint text) by
    Terraform's rules: "3" → 3 for number, "true" → True for bool, 3 → "3" for
    string, lists to sets, extra object attributes dropped, missing optional ones
    filled with their default or null. Raises ExprError ("a number is required")."""
    t = type_ if isinstance(type_, Type) else parse_type(type_)
    return _convert(value, t, path)


def _where(path: str) -> str:
    return f"{path}: " if path else ""


def _convert(v, t: Type, path: str):
    if v is UNKNOWN or v is None:
        return v
    k = t.kind
    if k == "any" or (k == "type" and type(v) is ops.TypeValue):
        return v
    if k == "string":
        if isinstance(v, (list, dict)):
            raise ExprError(f"{_where(path)}a string is required, got {ops.type_name(v)}")
        return ops.to_string(v, _where(path))
    if k == "number":
        if type(v) is str:
            n = ops.parse_number(v)
            if n is None:
                raise ExprError(f'{_where(path)}a number is required, got "{v}"')
            return n
        if ops.is_number(v):
            return ops.normalize_number(v)
        raise ExprError(f"{_where(path)}a number is required, got {ops.type_name(v)}")
    if k == "bool":
        if type(v) is bool:
            return v
        if type(v) is str and v in ("true", "false", "1", "0"):
            return v in ("true", "1")
        got = f'"{v}"' if type(v) is str else ops.type_name(v)
        raise ExprError(f"{_where(path)}a bool is required, got {got}")
    if k in ("list", "set", "tuple"):
        if not isinstance(v, list):
            what = "a tuple" if k == "tuple" else f"a {k} of {t.elem}"
            raise ExprError(f"{_where(path)}{what} is required, got {ops.type_name(v)}")
        if k == "tuple":
            if len(v) != len(t.elems):
                raise ExprError(f"{_where(path)}a tuple of {len(t.elems)} elements is required, "
                                f"got {len(v)}")
            return [_convert(e, et, f"{path}[{i}]") for i, (e, et) in enumerate(zip(v, t.elems, strict=True))]
        assert t.elem is not None         # list and set types always have one
        elem = t.elem
        if elem.kind == "any":
            elem = _unify_or_fail([type_of(e) for e in v], f"{_where(path)}cannot convert "
                                  f"{ops.type_name(v)} to {k} of any single type")
        items = [_convert(e, elem, f"{path}[{i}]") for i, e in enumerate(v)]
        if t.elem.kind == "any":
            message = f"{_where(path)}cannot convert {ops.type_name(v)} to {k} of any single type"
            if k == "list":
                items = _unify_list_elements(items, elem, message)
            else:
                _same_types([_effective_type(x, elem) for x in items], message)
        elif k == "list" and type(v) is list and _has_any(elem):
            # elements converted to a type still partly dynamic keep their own
            # types, which must then agree (cty's conversionTupleToList)
            items = _unify_list_elements(items, elem, f"{_where(path)}element types must all match "
                                         "for conversion to list")
        if k == "set":
            if any(e is UNKNOWN for e in items):
                return UNKNOWN
            return _typed_empty(ops.make_set(items), elem)
        return _typed_empty(ops.ListValue(items), elem)
    if k == "map":
        if not isinstance(v, dict):
            raise ExprError(f"{_where(path)}a map of {t.elem} is required, got {ops.type_name(v)}")
        assert t.elem is not None         # map types always have one
        elem = t.elem
        if elem.kind == "any":
            elem = _unify_or_fail([type_of(e) for e in v.values()], f"{_where(path)}cannot convert "
                                  f"{ops.type_name(v)} to map of any single type")
        keys = list(v)
        values = [_convert(v[key], elem, f"{path}[{_quote(key)}]") for key in keys]
        if t.elem.kind == "any" and values:
            message = f"{_where(path)}cannot convert {ops.type_name(v)} to map of any single type"
            if elem.kind in ("list", "set", "map", "tuple", "object"):
                values = _unify_list_elements(values, elem, message)
            else:
                _same_types([_effective_type(x, elem) for x in values], message)
        return _typed_empty(ops.MapValue(zip(keys, values, strict=True)), elem)
    if k == "object":
        if not isinstance(v, dict):
            raise ExprError(f"{_where(path)}an object is required, got {ops.type_name(v)}")
        out = {}
        for name, at, optional, default in t.attrs:
            sub = f"{path}.{name}" if path else name
            if name in v and v[name] is not None:
                out[name] = _convert(v[name], at, sub)
            elif optional:
                out[name] = default
            elif name in v:
                out[name] = None
            else:
                raise ExprError(f'{_where(path)}attribute "{name}" is required')
        return out
    raise ExprError(f"unsupported type {t}")


# -- the types of values, and their unification (cty's convert.Unify) -------------------
def type_of(v) -> Type:
    """The type a value has in Terraform: ``[1, "a"]`` is a tuple, ``tolist(...)`` a
    list, ``{a = 1}`` an object, ``tomap(...)`` a map; null and unknown are ``any``."""
    if v is None or v is UNKNOWN:
        return ANY
    t = type(v)
    if t is str:
        return STRING
    if t is bool:
        return BOOL
    if t is ops.TypeValue:
        return Type("type")
    if ops.is_number(v):
        return NUMBER
    if t is ops.SetValue or t is ops.ListValue:
        elem = ops.element_type(v) or unify([type_of(e) for e in v]) or ANY
        return Type("set" if t is ops.SetValue else "list", elem)
    if t is ops.MapValue:
        return Type("map", ops.element_type(v) or unify([type_of(e) for e in v.values()]) or ANY)
    if isinstance(v, list):
        return Type("tuple", elems=tuple(type_of(e) for e in v))
    if isinstance(v, dict):
        return Type("object", attrs=tuple((k, type_of(e), False, None) for k, e in sorted(v.items())))
    raise ExprError(f"unsupported value {v!r}")


def unify(types: list[Type]) -> Type | None:
    """One type every type in ``types`` converts to, as Terraform picks for the two
    results of a conditional or the elements of ``tolist`` (cty's convert.Unify, unsafe
    mode); None when there is none (a number and a bool, a tuple and an object). ``any``
    is cty's dynamic type: what null has."""
    if not types:
        return None
    first = types[0]
    if all(t == first for t in types):
        return first
    n = len(types)
    count = {k: 0 for k in ("map", "list", "set", "object", "tuple", "any")}
    for t in types:
        if t.kind in count:
            count[t.kind] += 1
    st, obj, tup, dyn = (count[k] for k in ("set", "object", "tuple", "any"))
    # the first matching case decides, as in cty's switch
    for kind, structural in (("map", "object"), ("list", "tuple")):
        c = count[kind]
        if c and c + dyn == n:
            return _unify_collections(kind, types, dyn)
        if c and c + count[structural] + dyn == n:
            as_kind = _unify_as(types, kind)
            return as_kind if as_kind is not None else _first_convertible(types)
    if st and st + dyn == n:
        return _unify_collections("set", types, dyn)
    if obj and obj + dyn == n:
        return ANY if dyn else _unify_objects(types)
    if tup and tup + dyn == n:
        return ANY if dyn else _unify_tuples(types)
    if obj and tup:
        return None
    return _first_convertible(types)


def _first_convertible(types: list[Type]) -> Type | None:
    """The first of ``types``, most general first (null's dynamic type last), that
    they all convert to; what cty's Unify falls back to when no case decides."""
    for i in _preference_order(types):
        want = types[i]
        if all(_convertible(t, want) for t in types):
            return want
    return None


def _preference_order(types: list[Type]) -> list[int]:
    """Indexes of ``types``, more general first (cty's sortTypes: a topological order
    of "more general than", ties in the given order)."""
    n = len(types)
    edges: list[list[int]] = [[] for _ in range(n)]
    for i in range(n - 1):
        for j in range(i + 1, n):
            c = _compare(types[i], types[j])
            if c < 0:
                edges[i].append(j)
            elif c > 0:
                edges[j].append(i)
    indegree = [0] * n
    for outs in edges:
        for j in outs:
            indegree[j] += 1
    queue = [i for i in range(n) if indegree[i] == 0]
    k = 0
    while k < len(queue):
        for j in edges[queue[k]]:
            indegree[j] -= 1
            if indegree[j] == 0:
                queue.append(j)
        k += 1
    return queue


def _compare(a: Type, b: Type) -> int:
    """-1 when ``a`` is the more general of the two (cty's compareTypes), 1 when ``b``
    is, 0 when neither."""
    if a.kind == "any" or b.kind == "any":
        return 0 if a.kind == b.kind else (-1 if b.kind == "any" else 1)
    if a.is_primitive and b.is_primitive:
        if a.kind == "string" or b.kind == "string":
            return 0 if a.kind == b.kind else (-1 if a.kind == "string" else 1)
        return 0
    if a.kind == b.kind and a.kind in ("list", "set", "map"):
        assert a.elem is not None and b.elem is not None
        return _compare(a.elem, b.elem)
    swap = 1
    if (a.kind, b.kind) in (("tuple", "list"), ("object", "map"), ("set", "tuple"), ("set", "list")):
        a, b, swap = b, a, -1
    if b.kind == "set" and a.kind in ("tuple", "list"):
        return -swap
    if (a.kind, b.kind) in (("list", "tuple"), ("map", "object")):
        return -swap
    if a.kind == b.kind == "object":
        ta, tb = {x[0]: x[1] for x in a.attrs}, {x[0]: x[1] for x in b.attrs}
        if ta.keys() != tb.keys():
            return 0
        return _combine(_compare(ta[k], tb[k]) for k in ta)
    if a.kind == b.kind == "tuple":
        if len(a.elems) != len(b.elems):
            return 0
        return _combine(_compare(x, y) for x, y in zip(a.elems, b.elems, strict=True))
    return 0


def _combine(cmps) -> int:
    seen = set(cmps)
    if -1 in seen and 1 in seen:
        return 0
    return -1 if -1 in seen else 1 if 1 in seen else 0


def _unify_collections(kind: str, types: list[Type], dyn: int) -> Type | None:
    if dyn:
        return ANY
    elem = unify([t.elem for t in types if t.elem is not None])
    return None if elem is None else Type(kind, elem)


def _unify_as(types: list[Type], kind: str) -> Type | None:
    """Lists with tuples (maps with objects): the tuples alone unified to one list type
    first, then that type with the rest (cty's unifyTuplesAsList/unifyObjectsAsMaps)."""
    src = "tuple" if kind == "list" else "object"
    one = _unify_to_collection([t for t in types if t.kind == src], kind)
    if one is None:
        return None
    out = unify([one if t.kind == src else t for t in types])
    return out if out is not None and out.kind == kind else None


def _members(t: Type) -> list[Type]:
    return list(t.elems) if t.kind == "tuple" else [a[1] for a in t.attrs]


def _unify_to_collection(types: list[Type], kind: str) -> Type | None:
    """Tuples as one list type (objects as one map type): their elements unified, and
    every one of them convertible to it (cty's unifyTupleTypesToList/ToMap)."""
    elem = unify([e for t in types for e in _members(t)])
    if elem is None:
        return None
    out = Type(kind, elem)
    return out if all(_convertible(t, out) for t in types) else None


def _unify_objects(types: list[Type]) -> Type | None:
    names = {tuple(a[0] for a in t.attrs) for t in types}
    if len(names) != 1:
        return _unify_to_collection(types, "map")
    attrs = []
    for col in zip(*(t.attrs for t in types), strict=True):
        at = unify([a[1] for a in col])
        if at is None:
            return None
        attrs.append((col[0][0], at, False, None))
    out = Type("object", attrs=tuple(attrs))
    return out if all(_convertible(t, out) for t in types) else _unify_to_collection(types, "map")


def _unify_tuples(types: list[Type]) -> Type | None:
    if len({len(t.elems) for t in types}) != 1:
        return _unify_to_collection(types, "list")
    elems = []
    for col in zip(*(t.elems for t in types), strict=True):
        et = unify(list(col))
        if et is None:
            return None
        elems.append(et)
    out = Type("tuple", elems=tuple(elems))
    return out if all(_convertible(t, out) for t in types) else _unify_to_collection(types, "list")


def _single_elem(elems: list[Type]) -> bool:
    """Whether a tuple's or object's elements convert to one element type (what a
    conversion to ``list(any)``/``map(any)`` needs)."""
    if not elems:
        return True
    t = unify(elems)
    return t is not None and (t.kind != "any" or all(e.kind == "any" for e in elems))


def _convertible(src: Type, dst: Type) -> bool:
    """Whether a value of type ``src`` converts to ``dst`` (cty, unsafe conversions)."""
    if src == dst or dst.kind == "any" or src.kind == "any":
        return True
    if src.is_primitive or dst.is_primitive:
        if not (src.is_primitive and dst.is_primitive):
            return False
        return "string" in (src.kind, dst.kind)
    if dst.kind in ("list", "set"):
        assert dst.elem is not None
        if src.kind in ("list", "set"):
            assert src.elem is not None
            return _convertible(src.elem, dst.elem)
        if src.kind == "tuple":
            if dst.elem.kind == "any":
                return _single_elem(list(src.elems))
            return all(_convertible(e, dst.elem) for e in src.elems)
        return False
    if dst.kind == "map":
        assert dst.elem is not None
        if src.kind == "map":
            assert src.elem is not None
            return _convertible(src.elem, dst.elem)
        if src.kind == "object":
            if dst.elem.kind == "any":
                # unlike a tuple to a list, no check that a dynamic result type
                # comes only from dynamic attributes (cty's conversionObjectToMap)
                return not src.attrs or unify([a[1] for a in src.attrs]) is not None
            return all(_convertible(a[1], dst.elem) for a in src.attrs)
        return False
    if dst.kind == "tuple":
        return src.kind == "tuple" and len(src.elems) == len(dst.elems) and all(
            _convertible(a, b) for a, b in zip(src.elems, dst.elems, strict=True))
    if dst.kind == "object":
        if src.kind == "map":
            assert src.elem is not None
            return all(_convertible(src.elem, a[1]) for a in dst.attrs)
        if src.kind == "object":
            have = {a[0]: a[1] for a in src.attrs}
            return all(a[0] in have and _convertible(have[a[0]], a[1]) for a in dst.attrs)
    return False


def _unify_or_fail(types: list[Type], message: str) -> Type:
    """The element type of a conversion to ``list(any)``/``set(any)``/``map(any)``."""
    if not types:
        return ANY
    if not _single_elem(types):
        raise ExprError(message)
    t = unify(types)
    assert t is not None
    return t


def _has_any(t: Type) -> bool:
    if t.kind == "any":
        return True
    return any(_has_any(x) for x in (*((t.elem,) if t.elem else ()), *t.elems, *(a[1] for a in t.attrs)))


def _effective_type(x, target: Type) -> Type:
    """The type of ``x`` after its conversion to ``target``: converted to a type still
    partly unknown (null's dynamic type), an element keeps its own; an empty collection
    takes the target's, unless that type's own elements are unknown."""
    if x is None or x is UNKNOWN:
        return ANY
    if not _has_any(target):
        return target
    if isinstance(x, (list, dict)) and not x and target.elem is not None and target.elem.kind != "any":
        return target
    # a tuple or object keeps the target's definite parts (a null in them included)
    if target.kind == "tuple" and type(x) is list and len(x) == len(target.elems):
        return Type("tuple", elems=tuple(_effective_part(e, et) for e, et in zip(x, target.elems, strict=True)))
    if target.kind == "object" and type(x) is dict and {a[0] for a in target.attrs} == set(x):
        return Type("object", attrs=tuple((a[0], _effective_part(x[a[0]], a[1]), False, None)
                                          for a in target.attrs))
    return type_of(x)


def _effective_part(x, target: Type) -> Type:
    return target if not _has_any(target) else _effective_type(x, target)


def _same_types(types: list[Type], message: str) -> None:
    """Elements of one list or set must all have one type (cty's CanListVal)."""
    if len({t for t in types if t.kind != "any"}) > 1:
        raise ExprError(message)


def _unify_list_elements(items: list, elem: Type, message: str) -> list:
    """A tuple converted to ``list(any)`` (an object to ``map(any)``): its converted
    elements unified once more by their own types (cty's conversionUnifyListElements),
    then of one type."""
    if not items:
        return items
    types = [_effective_type(x, elem) for x in items]
    u = unify(types)
    if u is None:
        raise ExprError(message)
    out = []
    for x, t in zip(items, types, strict=True):
        if t != u:
            x = conform(x, u)
            t = _effective_type(x, u)
        out.append((x, t))
    _same_types([t for _, t in out], message)
    return [x for x, _ in out]


def _typed_empty(coll, elem: Type):
    """``coll``, remembering ``elem`` when it is empty and ``elem`` is definite."""
    if not coll and elem.kind != "any":
        coll.elem_type = elem
    return coll


def conform(v, t: Type):
    """``v`` converted to ``t`` (a type :func:`unify` chose for it)."""
    if t.kind == "any" or v is None or v is UNKNOWN:
        return v
    return _convert(v, t, "")


def _quote(key: str) -> str:
    import json
    return json.dumps(key)


def parse_cli_value(text: str, type_=None):
    """The value of ``--var NAME=VALUE`` for a variable of type ``type_``.

    With no type, ``any`` or a primitive type the text is taken literally as a
    string (then converted: "3" → 3 for a number); for a list, set, map, object
    or tuple type the text is read as an HCL expression made of literals
    (``[1, 2]``, ``{a = "x"}``) and converted.
    """
    t = None if type_ is None else parse_type(type_)
    if t is None or t.kind == "any" or t.is_primitive:
        return text if t is None else _convert(text, t, "")
    from .parser import parse_expression
    return _convert(_constant(parse_expression(text)), t, "")
