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
    if k == "any":
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
        if v in ("true", "false"):
            return v == "true"
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
        items = [_convert(e, t.elem, f"{path}[{i}]") for i, e in enumerate(v)]
        if t.elem.kind == "any" and k == "list":
            items = ops.unify_primitives(items)
        if k == "set":
            if any(e is None for e in items):
                raise ExprError(f"{_where(path)}a set cannot contain null values")
            if any(e is UNKNOWN for e in items):
                return UNKNOWN
            return ops.make_set(items)
        return items
    if k == "map":
        if not isinstance(v, dict):
            raise ExprError(f"{_where(path)}a map of {t.elem} is required, got {ops.type_name(v)}")
        assert t.elem is not None         # map types always have one
        return {key: _convert(e, t.elem, f"{path}[{_quote(key)}]") for key, e in v.items()}
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
