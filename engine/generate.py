"""HCL for a resource's canonical attributes: ``kvmnet import --generate-config``.

:func:`resource_block` writes one ``resource "TYPE" "LABEL" { ... }`` block from
the attributes a provider read, driven only by the type's JSON Schema and its
:class:`~kvmnet.sdk.types.ResourceType` declarations, so it knows no resource type:

- a value the schema allows as a list of objects (an array whose items are
  objects, possibly one branch of a ``type`` list such as ``["string", "array"]``)
  is written as blocks — a list of dicts as repeated blocks, a dict (a single
  block in canonical form) as one block; an empty list of blocks is left out;
- every other value is an attribute (a dict then is a map, ``{ "key" = value }``);
- computed attributes and ``None`` are left out, and so is a value equal to the
  type's default (``ResourceType.defaults`` at the top level, a schema ``default``
  anywhere);
- strings are escaped for HCL, ``${`` and ``%{`` included, so a value is read back
  as the same characters and never as a template.

The text is laid out by :func:`kvmnet.engine.fmt.format_hcl`, so ``kvmnet fmt
--check`` passes on it. The caller checks that the next plan finds no change; the
tests do so against the real providers.

:func:`identifier` and :func:`labels_for` turn object names into block labels.
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Iterable

from kvmnet.engine.fmt import format_hcl
from kvmnet.sdk.types import ResourceType

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
_NOT_IDENT_CHAR = re.compile(r"[^A-Za-z0-9_-]")


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class GenerateError(Exception):
    """An attribute value HCL cannot express (a NaN, an unknown value)."""


# -- labels --------------------------------------------------------------------------

def identifier(name: str) -> str:
    """``name`` as a valid block label (``[a-zA-Z_][a-zA-Z0-9_-]*``): every other
    character becomes ``_``, and a leading digit or dash gets a ``_`` in front."""
    label = _NOT_IDENT_CHAR.sub("_", name)
    if not label or not (label[0].isalpha() or label[0] == "_"):
        label = "_" + label
    return label


def labels_for(names: Iterable[str], taken: Iterable[str] = ()) -> dict[str, str]:
    """A distinct label for each name, none of them in ``taken``. Names are taken
    in sorted order and a label already used gets ``_2``, ``_3``, ... appended, so
    the same names always give the same labels."""
    used = set(taken)
    out: dict[str, str] = {}
    for name in sorted(set(names)):
        base = identifier(name)
        label, n = base, 1
        while label in used:
            n += 1
            label = f"{base}_{n}"
        used.add(label)
        out[name] = label
    return out


# -- values --------------------------------------------------------------------------

def hcl_string(s: str) -> str:
    """``s`` as a quoted HCL string literal: escapes, and ``${``/``%{`` kept
    literal as ``$${``/``%%{`` (or ``\\u0024{``/``\\u0025{`` where no ``}`` follows,
    which kvmnet's grammar needs for the escaped form)."""
    out = ['"']
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in "$%" and s[i + 1:i + 2] == "{":
            out.append(c + c + "{" if "}" in s[i + 2:] else f"\\u{ord(c):04x}{{")
            i += 2
            continue
        if c in "$%" and s[i + 1:i + 2] == c:
            # a doubled "$" or "%" before "{" would be read as the escape
            out.append(f"\\u{ord(c):04x}")
        elif c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
        i += 1
    out.append('"')
    return "".join(out)


def hcl_value(v: Any) -> str:
    """A plain value (str, bool, number, list, dict) as an HCL expression."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise GenerateError(f"{v!r} cannot be written in HCL")
        return repr(v)
    if isinstance(v, str):
        return hcl_string(v)
    if v is None:
        return "null"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(hcl_value(x) for x in v) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        rows = "".join(f"{hcl_string(str(k))} = {hcl_value(x)}\n" for k, x in v.items())
        return "{\n" + rows + "}"
    raise GenerateError(f"{v!r} cannot be written in HCL")


# -- schema --------------------------------------------------------------------------

def _resolve(schema: Any, root: dict) -> dict:
    """``schema`` with a local ``$ref`` (``#/$defs/x``) followed."""
    seen = 0
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and seen < 32:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            return {}
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        schema, seen = node, seen + 1
    return schema if isinstance(schema, dict) else {}


def _is_object(schema: dict) -> bool:
    t = schema.get("type")
    return t == "object" or (isinstance(t, list) and "object" in t) or "properties" in schema


def block_schema(schema: dict, root: dict) -> dict | None:
    """The schema of one block when ``schema`` allows a list of blocks (an array
    of objects, possibly among other types or in an ``anyOf``/``oneOf``), else None."""
    schema = _resolve(schema, root)
    t = schema.get("type")
    if t == "array" or (isinstance(t, list) and "array" in t) or (t is None and "items" in schema):
        items = _resolve(schema.get("items"), root)
        if items and _is_object(items):
            return items
    for key in ("anyOf", "oneOf"):
        for branch in schema.get(key) or ():
            found = block_schema(branch, root)
            if found is not None:
                return found
    return None


def _properties(schema: dict, root: dict) -> dict:
    props = schema.get("properties")
    return {k: _resolve(v, root) for k, v in props.items()} if isinstance(props, dict) else {}


# -- blocks --------------------------------------------------------------------------

def _is_block_value(v: Any) -> bool:
    return isinstance(v, dict) or (isinstance(v, list) and all(isinstance(x, dict) for x in v))


def _body(attrs: dict, schema: dict, root: dict, skip: frozenset[str],
          defaults: dict, path: str) -> list[str]:
    """The lines of one body (attributes first, then blocks), unindented;
    ``format_hcl`` indents and aligns them."""
    props = _properties(schema, root)
    order = [k for k in props if k in attrs] + sorted(k for k in attrs if k not in props)
    lines: list[str] = []
    blocks: list[str] = []
    for key in order:
        value = attrs[key]
        where = f"{path}{key}"
        if value is None or where in skip:
            continue
        sub = props.get(key, {})
        if "default" in sub and sub["default"] == value:
            continue
        if key in defaults and defaults[key] == value:
            continue
        inner = block_schema(sub, root) if _is_block_value(value) else None
        if inner is None:
            if not _IDENT.match(key):
                raise GenerateError(f"attribute name {key!r} is not an HCL identifier")
            lines.append(f"{key} = {_attribute_value(value, where)}")
            continue
        for item in ([value] if isinstance(value, dict) else value):
            body = _body(item, inner, root, skip, {}, where + ".")
            blocks.append(f"{key} {{\n" + "".join(x + "\n" for x in body) + "}" if body else f"{key} {{}}")
    return lines + blocks


def _attribute_value(value: Any, where: str) -> str:
    try:
        return hcl_value(value)
    except GenerateError as e:
        raise GenerateError(f"{where}: {e}") from None


def resource_block(rtype: ResourceType, label: str, attrs: dict) -> str:
    """The ``resource`` block, in ``kvmnet fmt`` layout, that configures what
    ``attrs`` (canonical attributes, as read) describe."""
    if not _IDENT.match(label):
        raise GenerateError(f"{label!r} is not a valid resource name")
    root = rtype.schema()
    body = _body(attrs, root, root, frozenset(rtype.computed), dict(rtype.defaults), "")
    text = f"resource {json.dumps(rtype.name)} {json.dumps(label)} {{\n"
    text += "".join(line + "\n" for line in body) + "}\n"
    return format_hcl(text)
