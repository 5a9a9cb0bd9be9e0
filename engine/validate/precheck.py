"""A fast yes/no check compiled from a type's JSON Schema.

jsonschema costs tens of microseconds per small instance even when compiled; most
instances are valid, so :func:`compile_precheck` turns the schema into nested
Python closures that only answer "valid?". When the answer is no, jsonschema itself
runs and explains the errors, so the messages never depend on this module.

Only the keywords kvmnet's schemas use are supported, with jsonschema's Draft
2020-12 semantics (bool is not a number; 3.0 is an integer); any other keyword
raises :class:`Unsupported`, and the caller then falls back to jsonschema alone.
The unit tests compare this check with jsonschema on many instances.
"""
from __future__ import annotations

import numbers
import re
from typing import Any, Callable

Check = Callable[[object], bool]

_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description", "x-kvmnet-hint", "$comment"}


class Unsupported(Exception):
    """The schema uses a keyword this compiler does not handle."""


def _is_integer(v) -> bool:
    if isinstance(v, bool):
        return False
    return isinstance(v, int) or (isinstance(v, float) and v.is_integer())


def _is_number(v) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, bool)


def _is_list(v) -> bool:   # subclasses too: the evaluator's sets are lists
    return isinstance(v, list)


def _is_dict(v) -> bool:
    return isinstance(v, dict)


def _is_str(v) -> bool:
    return isinstance(v, str)


_TYPE_TESTS: dict[str, Check] = {
    "string": _is_str,
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: isinstance(v, bool),
    "array": _is_list,
    "object": _is_dict,
    "null": lambda v: v is None,
}


def compile_precheck(schema: dict) -> Check:
    """A function telling whether an instance is valid against ``schema``."""
    return _compile(schema, schema)


def _any_of(tests: list[Check]) -> Check:
    """A check passing when one of ``tests`` passes (``"type": [...]``)."""
    return lambda v: any(t(v) for t in tests)


def _compile(node: dict, root: dict) -> Check:
    unknown = set(node) - _ANNOTATIONS - {
        "$ref", "type", "enum", "minimum", "maximum", "minLength", "pattern", "properties",
        "required", "additionalProperties", "items", "minItems", "maxItems"}
    if unknown:
        raise Unsupported(", ".join(sorted(unknown)))
    checks: list[Check] = []
    kind: Any = node.get("type")     # a name or a list of names
    # "type": "object" / "array" is folded into the object / list check below
    fold_object = kind == "object" and bool({"properties", "required", "additionalProperties"} & set(node))
    fold_list = kind == "array" and bool({"items", "minItems", "maxItems"} & set(node))
    if "$ref" in node:
        checks.append(_compile(_resolve(node["$ref"], root), root))
    if "type" in node and not (fold_object or fold_list):
        kinds = [kind] if isinstance(kind, str) else list(kind)
        tests = [_TYPE_TESTS[k] for k in kinds]
        checks.append(tests[0] if len(tests) == 1 else _any_of(tests))
    if "enum" in node:
        choices = node["enum"]
        if not all(type(c) is str for c in choices):
            raise Unsupported("enum of non-strings")
        allowed = frozenset(choices)
        checks.append(lambda v: isinstance(v, str) and v in allowed)
    if "minimum" in node:
        lo = node["minimum"]
        checks.append(lambda v: not _is_number(v) or v >= lo)
    if "maximum" in node:
        hi = node["maximum"]
        checks.append(lambda v: not _is_number(v) or v <= hi)
    if "minLength" in node:
        n = node["minLength"]
        checks.append(lambda v: not isinstance(v, str) or len(v) >= n)
    if "pattern" in node:
        rx = re.compile(node["pattern"])
        checks.append(lambda v: not isinstance(v, str) or rx.search(v) is not None)
    if {"items", "minItems", "maxItems"} & set(node):
        checks.append(_list_check(node, root, strict=fold_list))
    if {"properties", "required", "additionalProperties"} & set(node):
        checks.append(_object_check(node, root, strict=fold_object))
    if not checks:
        return lambda v: True
    return _all_of(checks)


def _all_of(checks: list[Check]) -> Check:
    """One check passing when every check passes (tried in order)."""
    if len(checks) == 1:
        return checks[0]
    first, rest = checks[0], _all_of(checks[1:])
    return lambda v: first(v) and rest(v)


def _list_check(node: dict, root: dict, strict: bool) -> Check:
    """minItems, maxItems and items; with ``strict`` a non-list fails ("type": "array")."""
    lo, hi = node.get("minItems"), node.get("maxItems")
    item = _compile(node["items"], root) if "items" in node else None

    def check(v) -> bool:
        if not isinstance(v, list):
            return not strict
        if lo is not None and len(v) < lo:
            return False
        if hi is not None and len(v) > hi:
            return False
        if item is not None:
            for x in v:
                if not item(x):
                    return False
        return True
    return check


def _object_check(node: dict, root: dict, strict: bool = False) -> Check:
    """properties, required and additionalProperties; with ``strict`` a non-dict
    fails ("type": "object")."""
    props = {k: _compile(s, root) for k, s in node.get("properties", {}).items()}
    required = tuple(node.get("required", ()))
    extra = node.get("additionalProperties", True)
    if extra is True:
        extra_check = None
    elif extra is False:
        extra_check = lambda v: False  # noqa: E731
    else:
        extra_check = _compile(extra, root)

    def check(v) -> bool:
        if not isinstance(v, dict):
            return not strict
        for key in required:
            if key not in v:
                return False
        for key, value in v.items():
            prop = props.get(key)
            if prop is not None:
                if not prop(value):
                    return False
            elif extra_check is not None and not extra_check(value):
                return False
        return True
    return check


def _resolve(ref: str, root: dict) -> dict:
    if not ref.startswith("#/"):
        raise Unsupported(f"$ref {ref}")
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node
