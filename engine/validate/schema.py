"""The schema pass: each instance's configured attributes against the JSON Schema
its type's provider ships (:meth:`kvmnet.sdk.ResourceType.schema`), with jsonschema's errors turned into findings that
name the attribute, the bad value and what is allowed.

Values known only after apply are removed before the check (and a ``required``
error for such a key is dropped), so they never fail a type check; an attribute
set to null counts as not set, as in Terraform. One compiled
validator per type is built once; a fast yes/no check compiled from the same
schema (:mod:`.precheck`) runs first, and jsonschema's error walk only happens for
an instance that fails it.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from kvmnet.engine import blockref
from kvmnet.engine.resources import TYPES
from kvmnet.sdk.rules import Finding, path_str, show
from kvmnet.sdk.values import UNKNOWN

from .precheck import Unsupported, compile_precheck

Path = tuple  # ("ip", 0, "dhcp_host", 1, "mac")

_VALIDATORS: dict[str, object] = {}   # type -> jsonschema.Draft202012Validator
_PRECHECKS: dict[str, object] = {}


def validator_for(rtype: str):
    """The type's compiled jsonschema validator (jsonschema is imported only here:
    it is needed only to explain an instance that fails the fast check)."""
    v = _VALIDATORS.get(rtype)
    if v is None:
        from jsonschema import Draft202012Validator
        v = _VALIDATORS[rtype] = Draft202012Validator(TYPES[rtype].schema())
    return v


def precheck_for(rtype: str):
    """The fast yes/no check of a type's attributes as configured, nulls and unknown
    values counting as not set (jsonschema's is_valid of the stripped value when
    the schema needs it); compiled once per type."""
    check = _PRECHECKS.get(rtype)
    if check is None:
        try:
            check = compile_precheck(TYPES[rtype].schema(), absent=True)
        except Unsupported:
            validator = validator_for(rtype)
            check = lambda attrs: validator.is_valid(strip_unknown(attrs).value)  # noqa: E731
        _PRECHECKS[rtype] = check
    return check


@dataclass
class SchemaResult:
    findings: list[Finding] = field(default_factory=list)
    bad_paths: list[Path] = field(default_factory=list)   # in the original attrs' coordinates


# ---------------------------------------------------------------- unknown values

@dataclass
class _Stripped:
    value: object
    unknown: set = field(default_factory=set)      # paths (stripped coordinates) of removed keys
    index_maps: dict = field(default_factory=dict)  # list path -> original indices kept


def strip_unknown(attrs: dict) -> _Stripped:
    """``attrs`` without UNKNOWN values and without attributes set to null (the
    same object when there are none)."""
    out = _Stripped(attrs)
    if _has_absent(attrs):
        out.value = _strip(attrs, (), out)
    return out


def _has_absent(value) -> bool:
    """Whether :func:`_strip` would remove anything (a cheap scan: most configs
    hold neither UNKNOWN nor null)."""
    if isinstance(value, dict):
        for v in value.values():
            if v is None or v is UNKNOWN or (type(v) is not str and _has_absent(v)):
                return True
    elif isinstance(value, list):
        for v in value:
            if v is UNKNOWN or (type(v) is not str and _has_absent(v)):
                return True
    return False


def _strip(value, spath: Path, acc: _Stripped):
    if isinstance(value, dict):
        new = None
        for k, v in value.items():
            if v is UNKNOWN or v is None:  # unknown, or null (= not set, as in Terraform)
                if v is UNKNOWN:
                    acc.unknown.add(spath + (k,))
                if new is None:
                    new = dict(value)
                del new[k]
            elif isinstance(v, (dict, list)):
                nv = _strip(v, spath + (k,), acc)
                if nv is not v:
                    if new is None:
                        new = dict(value)
                    new[k] = nv
        return value if new is None else new
    if isinstance(value, list):
        changed = False
        items: list[Any] = []
        kept: list[int] = []
        for i, v in enumerate(value):
            if v is UNKNOWN:
                changed = True
                continue
            nv = _strip(v, spath + (len(items),), acc) if isinstance(v, (dict, list)) else v
            changed = changed or nv is not v
            items.append(nv)
            kept.append(i)
        if not changed:
            return value
        if len(kept) != len(value):
            acc.index_maps[spath] = kept
        return items
    return value


def _original_path(spath: Path, index_maps: dict) -> Path:
    if not index_maps:
        return tuple(spath)
    out = []
    for i, p in enumerate(spath):
        if isinstance(p, int):
            kept = index_maps.get(tuple(spath[:i]))
            if kept:
                p = kept[p]
        out.append(p)
    return tuple(out)


# ---------------------------------------------------------------- the pass

def check_schema(rtype: str, attrs: dict) -> SchemaResult:
    """Findings of the schema pass for one instance's attributes."""
    result = SchemaResult()
    if rtype not in TYPES:
        result.findings.append(Finding("", f"unknown resource type {rtype!r}; kvmnet knows "
                                           + ", ".join(TYPES)))
        return result
    if precheck_for(rtype)(attrs):
        return result
    stripped = strip_unknown(attrs)
    validator = validator_for(rtype)
    seen: set[tuple[Path, str]] = set()
    errors = sorted(validator.iter_errors(stripped.value), key=lambda e: tuple(map(str, e.absolute_path)))
    for error in errors:
        for spath, message, bad in _explain(error, rtype, stripped):
            path = _original_path(spath, stripped.index_maps)
            if (path, message) in seen:
                continue
            seen.add((path, message))
            result.findings.append(Finding(path_str(path), message))
            if bad:
                result.bad_paths.append(path)
    return result


def _explain(error, rtype: str, stripped: _Stripped):
    """(path, message, value_is_bad) for one jsonschema error."""
    spath = tuple(error.absolute_path)
    kw = error.validator
    schema = error.schema if isinstance(error.schema, dict) else {}
    here = path_str(_original_path(spath, stripped.index_maps))
    where = f" in {_block_label(spath, here)}" if spath else ""

    if kw == "required":
        props = schema.get("properties", {})
        for key in error.validator_value:
            if key in error.instance or spath + (key,) in stripped.unknown:
                continue
            allowed = props.get(key, {}).get("enum")
            one_of = f" (one of {', '.join(map(str, allowed))})" if allowed else ""
            yield spath + (key,), f'missing required attribute "{key}"{where}{one_of}', False
        return
    if kw == "additionalProperties":
        props = list(schema.get("properties", {}))
        for key in error.instance:
            if key in props:
                continue
            yield spath + (key,), _unknown_attribute(rtype, spath, key, props, where), False
        return

    value = error.instance
    name = here or "value"
    hint = schema.get("x-kvmnet-hint")
    if kw == "type":
        wanted = _describe_type(error.validator_value, schema, spath)
        fix = blockref.hint(value) if "object" not in _kinds(error.validator_value) else ""
        yield spath, f"{name} must be {wanted}, not {_describe_value(value)}{fix}", True
    elif kw == "enum":
        choices = ", ".join(map(str, error.validator_value))
        yield spath, f"{name} = {show(value)} is not allowed: must be one of {choices}", True
    elif kw in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        allowed = f"{lo}..{hi}" if lo is not None and hi is not None else (
            f"at least {lo}" if lo is not None else f"at most {hi}")
        extra = f" ({hint})" if hint and allowed not in hint else ""
        yield spath, f"{name} = {show(value)} is out of range: must be {allowed}{extra}", True
    elif kw in ("minItems", "maxItems"):
        yield spath, _item_count_message(name, spath, schema, value), True
    elif kw == "pattern":
        yield spath, f"{name} = {show(value)} is not {hint or 'in the expected format'}", True
    elif kw == "minLength":
        yield spath, f"{name} must not be empty", True
    else:
        yield spath, f"{name}: {error.message}", True


def _block_label(spath: Path, here: str) -> str:
    return f"block {here}" if spath and isinstance(spath[-1], int) else here


def _unknown_attribute(rtype: str, spath: Path, key: str, props: list, where: str) -> str:
    if not spath and key in TYPES[rtype].computed:
        return f'"{key}" is computed by the provider and cannot be set'
    close = difflib.get_close_matches(key, props, n=1)
    if close:
        hint = f'; did you mean "{close[0]}"?'
    else:
        hint = f"; allowed: {', '.join(props)}"
    return f'unknown attribute "{key}"{where}{hint}'


_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a map",
    "array": "a list",
    "null": "null",
}


def _is_block_list(schema: dict) -> bool:
    items = schema.get("items")
    return isinstance(items, dict) and ("$ref" in items or items.get("type") == "object")


def _describe_type(expected, schema: dict, spath: Path) -> str:
    kinds = [expected] if isinstance(expected, str) else list(expected)
    if kinds == ["array"] and _is_block_list(schema) and spath:
        return f"one or more {spath[-1]} {{ ... }} blocks"
    if kinds == ["object"] and len(spath) >= 2 and isinstance(spath[-1], int):
        return f"a {spath[-2]} {{ ... }} block"
    words = [_TYPE_WORDS.get(k, k) for k in kinds if k != "array"]
    if "array" in kinds and _is_block_list(schema) and spath and words:
        # a v1 shorthand that may also be written as a block (network's mtu = 1400 / mtu { size })
        return f"{' or '.join(words)}, or a {spath[-1]} {{ ... }} block"
    return " or ".join(_TYPE_WORDS.get(k, k) for k in kinds)


def _kinds(expected) -> list[str]:
    return list(expected) if isinstance(expected, list) else [expected]


def _describe_value(value) -> str:
    if isinstance(value, bool):
        return f"the bool {show(value)}"
    if isinstance(value, (int, float)):
        return f"the number {show(value)}"
    if isinstance(value, str):
        return f"the string {show(value)}"
    if isinstance(value, list):
        return f"a list {show(value)}"
    if isinstance(value, dict):
        return f"a map {show(value)}"
    return show(value)


def _item_count_message(name: str, spath: Path, schema: dict, value) -> str:
    count = len(value) if isinstance(value, list) else 0
    lo, hi = schema.get("minItems"), schema.get("maxItems")
    if _is_block_list(schema) and hi == 1:
        return f"only one {name} block is allowed, found {count}"
    if lo == hi and schema.get("description"):
        return f"{name} = {show(value)} must be {schema['description']} ({lo} items), found {count}"
    if hi is not None and count > hi:
        return f"{name} has {count} items; at most {hi} are allowed"
    return f"{name} has {count} items; at least {lo} are required"
