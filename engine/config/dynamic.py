"""``dynamic "TYPE" { for_each, iterator, content {} }`` blocks, as Terraform's:
one ``TYPE`` block per element of ``for_each``, its ``content`` evaluated with the
iterator (``TYPE`` unless ``iterator`` names another) bound to ``{key, value}``.
A list's keys are its indexes, a set's keys are its values.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kvmnet.engine import expr as X
from kvmnet.engine.config.hcl import Block
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.sdk.values import UNKNOWN, contains_unknown

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")

# evaluate(attr, scope, path) -> value; raises the evaluator's EvalFailure
Evaluate = Callable[[Any, X.Scope, str], Any]


def expand(block: Block, scope: X.Scope, evaluate: Evaluate, diags: Diagnostics,
           address: str | None, path: str) -> list[tuple[Block, X.Scope]] | None:
    """The generated blocks with the scope each is evaluated in; None on an error
    (reported to ``diags``). ``evaluate`` raises on an expression error."""
    def error(message: str, line: int) -> None:
        diags.add(message, file=block.file, line=line, address=address, attribute=path)

    if len(block.labels) != 1:
        error('a "dynamic" block needs one label: the type of block it makes', block.line)
        return None
    btype = block.labels[0]
    bad = False
    for k, a in block.attrs.items():
        if k == "labels":
            error(f'dynamic "{btype}": "labels" is not allowed; {btype} blocks take no labels', a.line)
            bad = True
        elif k not in ("for_each", "iterator"):
            error(f'unknown attribute "{k}" in dynamic "{btype}"; expected for_each, iterator '
                  "and a content block", a.line)
            bad = True
    contents = [b for b in block.blocks if b.type == "content" and not b.labels]
    for b in block.blocks:
        if b.type != "content" or b.labels:
            error(f'unexpected block "{b.type}" in dynamic "{btype}"; only one content block', b.line)
            bad = True
    if len(contents) != 1:
        error(f'dynamic "{btype}" needs exactly one content block', block.line)
        bad = True
    if "for_each" not in block.attrs:
        error(f'dynamic "{btype}" needs "for_each"', block.line)
        bad = True
    iterator = _iterator_name(block, btype, error)
    if bad or iterator is None:
        return None
    each = evaluate(block.attrs["for_each"], scope, f"{path}.for_each")
    items = _items(each)
    if isinstance(items, str):
        error(f'dynamic "{btype}": for_each {items}', block.attrs["for_each"].line)
        return None
    content = contents[0]
    made = Block(btype, (), content.line, content.file, content.attrs, content.blocks)
    out = []
    for key, value in items:
        child = scope.child_loop()
        assert child.loop is not None
        child.loop[iterator] = {"key": key, "value": value}
        out.append((made, child))
    return out


def _iterator_name(block: Block, btype: str, error) -> str | None:
    a = block.attrs.get("iterator")
    if a is None:
        return btype
    name = a.value
    if isinstance(name, str) and name.startswith("${") and name.endswith("}"):
        name = name[2:-1].strip()
    if not isinstance(name, str) or not _NAME.match(name):
        error(f'dynamic "{btype}": iterator must be a name, not {a.value!r}', a.line)
        return None
    return name


def _items(v) -> list[tuple[Any, Any]] | str:
    """(key, value) pairs of a for_each value, or why it cannot be iterated."""
    if v is UNKNOWN or (contains_unknown(v) and not isinstance(v, (dict, list))):
        return "depends on a value known only after apply"
    if v is None:
        return "is null; use [] for no blocks"
    if isinstance(v, dict):
        return [(k, v[k]) for k in sorted(v, key=str)]
    if isinstance(v, X.SetValue):
        return [(x, x) for x in v]
    if isinstance(v, list):
        return list(enumerate(v))
    return f"must be a map, list or set, not {type(v).__name__}"
