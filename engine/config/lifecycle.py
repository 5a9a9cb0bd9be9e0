"""The parts of a resource's ``lifecycle`` block beyond prevent_destroy and
ignore_changes: ``precondition`` / ``postcondition`` blocks and
``replace_triggered_by`` (as Terraform's).

A precondition is checked each time the resource's instances are evaluated (plan,
apply); a postcondition after the object is applied, with ``self`` its applied
attributes. ``replace_triggered_by`` names resources (or their attributes): a
planned update or replace of one (a change of that attribute) replaces this one.
"""
from __future__ import annotations

import json

from kvmnet.engine import expr as X
from kvmnet.engine.config.checks import read_rule
from kvmnet.engine.config.hcl import Block
from kvmnet.engine.config.model import ResourceDecl
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.resources import TYPES


def read_lifecycle_blocks(r: ResourceDecl, lc: Block, d: Diagnostics) -> None:
    owner = f"resource {r.address}"
    for sub in lc.blocks:
        if sub.type not in ("precondition", "postcondition"):
            d.add(f'unexpected block "{sub.type}" in lifecycle; expected precondition or '
                  "postcondition", file=sub.file, line=sub.line, address=r.address)
            continue
        rule = read_rule(sub, owner, d, address=r.address)
        if rule is None:
            continue
        if sub.type == "precondition" and _mentions_self(rule.condition.value):
            d.add("a precondition cannot refer to self (use a postcondition)", file=sub.file,
                  line=rule.condition.line, address=r.address)
            continue
        (r.preconditions if sub.type == "precondition" else r.postconditions).append(rule)
    if r.replace_triggered_by is not None:
        trigger_texts(r, d)


def _mentions_self(raw) -> bool:
    try:
        return any(ref.root == "self" for ref in X.compile_value(raw).references())
    except X.ExprError:
        return False


def trigger_texts(r: ResourceDecl, d: Diagnostics) -> tuple[str, ...]:
    """The reference texts of ``replace_triggered_by``; each must name a resource of
    this configuration (an index may use count.index or each.key)."""
    a = r.replace_triggered_by
    if a is None:
        return ()
    where = dict(file=r.file, line=a.line, address=r.address,
                 attribute="lifecycle.replace_triggered_by")
    if not isinstance(a.value, list):
        d.add("must be a list of resource references", **where)
        return ()
    out: list[str] = []
    for item in a.value:
        text = item[2:-1].strip() if isinstance(item, str) and item.startswith("${") \
            and item.endswith("}") else None
        ref = _one_reference(text, 0) if text else None
        if text is None or ref is None or ref.root not in TYPES:
            d.add(f"{item!r} is not a resource reference (TYPE.NAME, TYPE.NAME[KEY] or "
                  "TYPE.NAME.ATTRIBUTE)", **where)
            continue
        out.append(text)
    return tuple(out)


def _one_reference(text: str, key):
    """The single resource reference of ``text`` with count.index / each.key replaced
    by ``key``; None when it is not exactly one reference."""
    if key is not None:
        text = text.replace("count.index", json.dumps(key)).replace("each.key", json.dumps(key))
    try:
        refs = X.parse_expression(text).references()
    except X.ExprError:
        return None
    refs = [ref for ref in refs if ref.root not in ("count", "each")]
    return refs[0] if len(refs) == 1 else None


def resolve_trigger(text: str, key) -> tuple[str, tuple]:
    """(instance address, attribute path) a trigger text names in instance ``key``."""
    from kvmnet.engine.model import format_address
    ref = _one_reference(text, key if key is not None else None)
    if ref is None or len(ref.parts) < 2:
        return text, ()
    parts = ref.parts
    if len(parts) > 2 and 2 in ref.indexes:
        return format_address(parts[0], parts[1], parts[2]), tuple(parts[3:])
    return format_address(parts[0], parts[1]), tuple(parts[2:])
