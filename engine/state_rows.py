"""State rows against their type's JSON Schema: a row whose attributes do not fit
the schema of its type (from the provider that owns it) is a damaged state, found
when the state is read, before anything live is touched.

The state store knows no type (``state/`` imports neither the engine nor a
provider), so the CLI hands it :func:`row_problem` as the backend's ``check``.

The schema a row is checked against is the type's schema with two changes for
what a state row holds that a config does not: the attributes only the provider
sets (``computed``) may be there, and a block allowed at most once may be stored
as the block itself (the canonical form: ``forward = {mode = "nat"}`` where the
config has ``forward { mode = "nat" }``). Nulls count as unset, as in config.

A row that fits as stored (what today's kvmnet writes) is not upgraded: the
upgrade (a canonical form) costs more than the check. A row that does not fit is
checked again in today's shape (:meth:`kvmnet.sdk.ResourceType.upgraded`: a row
an older release wrote), and only then is it an error.

A row of a type that no installed provider serves is not checked: there is no
schema to check it against (the plan names such a row anyway).
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from kvmnet.engine.resources import TYPES
from kvmnet.engine.validate.precheck import Unsupported, compile_precheck
from kvmnet.engine.validate.schema import strip_unknown

_CHECKS: dict[str, Callable[[Any], bool]] = {}
_VALIDATORS: dict[str, Any] = {}
_UPGRADE_ERRORS = (KeyError, IndexError, TypeError, ValueError, AttributeError)


def row_problem(record) -> str:
    """What is wrong with a state record's ``attrs`` for its type, as
    ``attrs.PATH: message``; "" when it fits (or its type is not installed)."""
    t = TYPES.get(record.type)
    if t is None:
        return ""
    check = _check_for(record.type)
    if check(record.attrs):
        return ""
    try:
        upgraded = t.upgraded(record.attrs)
    except _UPGRADE_ERRORS as e:
        return f"attrs cannot be read as a {record.type} ({type(e).__name__}: {e})"
    if check(upgraded):
        return ""
    value = strip_unknown(upgraded).value
    errors = list(_validator_for(record.type).iter_errors(value))
    if not errors:          # the fast check and jsonschema disagree: trust jsonschema
        return ""
    from jsonschema.exceptions import best_match
    error = best_match(errors)
    path, message = tuple(error.absolute_path), error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict) \
            and isinstance(error.schema, dict):
        known = error.schema.get("properties", {})
        extra = sorted(k for k in error.instance if k not in known)
        if extra:
            path, message = path + (extra[0],), f"{record.type} has no such attribute"
    return f"{json_path(path)}: {message}"


def json_path(path: tuple) -> str:
    """``attrs.a.b[0].c`` (``attrs["odd key"]``) for a jsonschema error path."""
    out = "attrs"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if part.isidentifier() else f"[{part!r}]"
    return out


def state_schema(schema: dict, computed: frozenset[str]) -> dict:
    """The schema of a state row of a type whose config schema is ``schema``."""
    out = copy.deepcopy(schema)
    props = out.setdefault("properties", {})
    for name in computed:
        props.setdefault(name, {})
    _allow_single_blocks(out, out, 0)
    return out


def _allow_single_blocks(node: Any, root: dict, depth: int) -> None:
    """Every list of at most one block also accepts the block itself."""
    if depth > 64:
        return
    if isinstance(node, list):
        for x in node:
            _allow_single_blocks(x, root, depth + 1)
        return
    if not isinstance(node, dict):
        return
    for x in node.values():
        _allow_single_blocks(x, root, depth + 1)
    item = _resolve(node.get("items"), root)
    if node.get("maxItems") != 1 or not isinstance(item, dict) or "properties" not in item:
        return
    kinds = node.get("type", "array")
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    node["type"] = kinds + ["object"] if "object" not in kinds else kinds
    for key in ("properties", "required", "additionalProperties"):
        if key in item:
            node[key] = item[key]


def _resolve(node: Any, root: dict) -> Any:
    ref = node.get("$ref") if isinstance(node, dict) else None
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return node
    target: Any = root
    for part in ref[2:].split("/"):
        target = target.get(part) if isinstance(target, dict) else None
    return target


def _schema_for(rtype: str) -> dict:
    t = TYPES[rtype]
    return state_schema(t.schema(), t.computed)


def _validator_for(rtype: str):
    v = _VALIDATORS.get(rtype)
    if v is None:
        from jsonschema import Draft202012Validator
        v = _VALIDATORS[rtype] = Draft202012Validator(_schema_for(rtype))
    return v


def _check_for(rtype: str) -> Callable[[Any], bool]:
    """The fast yes/no check of a type's state rows, nulls counting as not set
    (jsonschema's of the stripped row when the fast compiler does not know a
    keyword of the schema)."""
    check = _CHECKS.get(rtype)
    if check is None:
        try:
            check = compile_precheck(_schema_for(rtype), absent=True)
        except Unsupported:
            validator = _validator_for(rtype)
            check = lambda attrs: validator.is_valid(strip_unknown(attrs).value)  # noqa: E731
        _CHECKS[rtype] = check
    return check
