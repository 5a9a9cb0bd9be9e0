"""What ``moved``, ``removed`` and ``import`` blocks do to a plan.

- ``moved``: before the refresh, the state's records at ``from`` are read as if at
  ``to`` (in the blocks' order, so moves chain); the change at ``to`` carries
  ``moved_from``. A move onto an address the state already holds is ignored with
  a warning, as Terraform does. The walk renames the record first, then the
  provider rewrites the object's ownership mark in its update.
- ``removed``: the state's records at ``from`` are planned as ``forget``: the walk
  drops them from the state and never calls a provider.
- ``import``: an address the state does not hold yet is read live by its ID
  through its provider (``Provider.import_object``) and planned as adopted ("will
  be imported"); the walk records it and changes the object only where the
  configuration differs.
"""
from __future__ import annotations

import dataclasses

from kvmnet.engine import expr as X
from kvmnet.engine.config.model import Config
from kvmnet.engine.config.refactoring import Address, is_whole, parse, render, with_key
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.sdk.addresses import within


def _parsed(address: str) -> Address:
    a = parse(address)
    assert a is not None, address
    return a


def move_target(now: str, src: Address, dst: Address) -> str | None:
    """Where the state address ``now`` goes under a move from ``src`` to ``dst``, or
    None when the move does not name it. A module moves everything inside it; a
    whole resource (or module call) moves each instance with its key."""
    if src.type is None:
        sp, dp = render(src), render(dst)
        if now.startswith(sp + "."):
            return dp + now[len(sp):]
        if is_whole(src) and is_whole(dst) and now.startswith(sp + "["):
            return dp + now[len(sp):]
        return None
    a = parse(now)
    if a is None or a.type is None or a.resource != src.resource:
        return None
    if not is_whole(src):
        return render(dst) if a.key == src.key else None
    if is_whole(dst):
        return with_key(dst, a.key)
    return render(dst) if a.key is None else None


def moves_for(addresses, source: str, destination: str) -> dict[str, str]:
    """{old: new} for every address one move names."""
    src, dst = _parsed(source), _parsed(destination)
    out = {}
    for now in addresses:
        new = move_target(now, src, dst)
        if new is not None and new != now:
            out[now] = new
    return out


def moved_snapshot(config: Config, snapshot, diags: Diagnostics):
    """(snapshot with moved records at their new addresses, {new: old})."""
    if not config.moved:
        return snapshot, {}
    current = {a: a for a in snapshot.instances}        # address now -> address in the state
    for m in config.moved:
        for now, new in sorted(moves_for(list(current), m.from_addr, m.to_addr).items()):
            if new in current:
                diags.warn(f"moved: {new} is already in the state; the move from {now} is "
                           "ignored (remove one of them with kvmnet state rm)",
                           file=m.file, line=m.line)
                continue
            current[new] = current.pop(now)
    renames = {new: old for new, old in current.items() if new != old}
    if not renames:
        return snapshot, {}
    instances = {}
    for new, old in current.items():
        rec = snapshot.instances[old]
        if new != old:
            a = _parsed(new)
            rec = dataclasses.replace(rec, address=new, name=a.name, key=a.key)
        instances[new] = rec
    return dataclasses.replace(snapshot, instances=instances), renames


def forgotten(config: Config, snapshot) -> dict[str, object]:
    """{state address: the removed block} for every record a ``removed`` block names."""
    out: dict[str, object] = {}
    for r in config.removed:
        for a in snapshot.instances:
            if within(a, r.from_addr):
                out[a] = r
    return out


def import_ids(config: Config, scope: X.Scope, snapshot, diags: Diagnostics) -> dict[str, str]:
    """{address: live ID} of each ``import`` block whose address the state does not
    hold; the ID may use variables and locals."""
    out = {}
    for i in config.imports:
        if i.to_addr in snapshot.instances:
            continue                 # already managed: the block has done its work
        try:
            value = X.compile_value(i.id.value).evaluate(scope)   # type: ignore[attr-defined]
        except X.ExprError as e:
            diags.add(f"import.id: {e}", file=i.file, line=i.id.line)   # type: ignore[attr-defined]
            continue
        if not isinstance(value, str) or not value:
            diags.add(f"import.id must be a non-empty string, not {value!r}", file=i.file,
                      line=i.id.line)   # type: ignore[attr-defined]
            continue
        out[i.to_addr] = value
    return out
