"""Undoing what one apply did (``kvmnet apply --rollback-on-failure``).

The changes the apply completed (``ApplyReport.done``) are undone newest first,
using the state as it was before the apply (``ApplyReport.records_before``):

=============  =====================================================================
done           undo
=============  =====================================================================
create         delete the object again (with the record and provider-private data
               the apply wrote, so a sysctl profile restores its original values)
update         update back to the attributes recorded before the apply
delete         create again from the attributes recorded before the apply
=============  =====================================================================

A replace is a delete and a create, so it is undone by both in reverse order. The
state is written after every undo step, exactly as the walk writes it
(:func:`kvmnet.engine.walk.instance_record`). The first undo step that fails stops
the rollback (what is left might depend on it); the report names what was not
rolled back. The failed step itself is not in ``done``: whatever its provider left
half done is its provider's to clean (most undo their own partial writes).

:func:`undo_steps` is pure (it decides); :func:`rollback_apply` does it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kvmnet.cli import Ctx

if TYPE_CHECKING:
    from kvmnet.state.records import InstanceRecord

_UNDO = {"create": "delete", "update": "update", "delete": "create"}
_DONE = {"delete": "destroyed", "update": "restored", "create": "re-created"}


@dataclass
class UndoStep:
    address: str
    undoes: str                     # the action the apply did
    action: str                     # what undoes it: "delete" | "update" | "create"
    template: InstanceRecord        # names the instance (type, provider, deps)
    before: dict | None             # attributes now (None for a create)
    after: dict | None              # attributes to restore (None for a delete)
    private: dict = field(default_factory=dict)


@dataclass
class RollbackReport:
    undone: list[tuple[str, str]] = field(default_factory=list)       # (address, action undone)
    failed: tuple[str, str, str] | None = None                        # (address, undo action, message)
    not_undone: list[tuple[str, str]] = field(default_factory=list)   # (address, action) left as applied
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.failed is None and not self.not_undone


class CannotUndo(Exception):
    pass


def _say(ctx: Ctx, text: str) -> None:
    """A line on stdout, never read as rich markup (addresses hold brackets)."""
    ctx.console.print(text, markup=False)


def undo_step(address: str, action: str, now: dict, before: dict) -> UndoStep:
    """How to undo ``action`` on ``address``; ``now``/``before`` map addresses to the
    InstanceRecord (or None) currently in state / from before the apply."""
    from kvmnet.engine.walk import provider_after

    current, earlier = now.get(address), before.get(address)
    undo = _UNDO.get(action)
    if undo is None:
        raise CannotUndo(f"unknown action {action!r}")
    if undo == "delete":
        if current is None:
            raise CannotUndo("the object it created is not in the state")
        return UndoStep(address, action, undo, current, dict(current.attrs), None, dict(current.private or {}))
    if earlier is None:
        raise CannotUndo("the state kept no record of it from before this apply")
    restore = provider_after(earlier.type, dict(earlier.attrs))
    if undo == "update":
        if current is None:
            raise CannotUndo("it is no longer in the state")
        return UndoStep(address, action, undo, earlier, dict(current.attrs), restore, dict(current.private or {}))
    return UndoStep(address, action, undo, earlier, None, restore, {})


def undo_steps(done: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The completed changes in the order they are undone: newest first."""
    return list(reversed(done))


def rollback_apply(ctx: Ctx, be, ps, prepared, report) -> RollbackReport:
    """Undo ``report.done`` after a failed apply, print each step, write the state after
    each one, and mark the apply's history entry. Returns what was rolled back (also
    kept as ``report.rollback``)."""
    if report.failed:
        addr, action, msg = report.failed
        _say(ctx, f"\nApply failed at {addr} ({action}): {msg}")
    for v in report.verify_errors:
        _say(ctx, f"\nApply failed verification: {v}")
    todo = undo_steps(report.done)
    rb = RollbackReport()
    report.rollback = rb
    if not todo:
        ctx.out("\nRollback: this apply changed nothing before it failed; nothing to undo.")
        _mark_history(be, report, rb)
        return rb
    ctx.out(f"\nRolling back {len(todo)} change(s) this apply made, newest first:")
    for i, (address, action) in enumerate(todo):
        try:
            step = undo_step(address, action, be.read().instances, report.records_before)
            _run_undo(be, ps, step, rb)
        except Exception as e:   # a provider or state failure: stop, report what is left
            from kvmnet.providers.base import ProviderError
            msg = str(e) if isinstance(e, (ProviderError, CannotUndo)) else f"{type(e).__name__}: {e}"
            rb.failed = (address, _UNDO.get(action, "?"), msg)
            rb.not_undone = todo[i:]
            ctx.err(f"Error: rollback of {address} ({action}) failed: {msg}")
            break
        rb.undone.append((address, action))
        _say(ctx, f"{address}: rolled back {action} ({_DONE[step.action]})")
    for note in rb.notes:
        _say(ctx, f"  note: {note}")
    if rb.complete:
        ctx.out(f"Rollback complete: {len(rb.undone)} change(s) undone; "
                "the live objects and the state are as they were before this apply.")
    else:
        ctx.err("Rollback incomplete. Still as this apply left them: "
                + ", ".join(f"{a} ({act})" for a, act in rb.not_undone)
                + ". Run kvmnet plan to see the difference from the configuration.")
    _mark_history(be, report, rb)
    return rb


def _run_undo(be, ps, step: UndoStep, rb: RollbackReport) -> None:
    from kvmnet.engine.ownership import format_mark
    from kvmnet.engine.walk import instance_record
    from kvmnet.providers.base import Change

    rec = step.template
    lineage = be.read().lineage
    change = Change(action=step.action, type=rec.type, address=step.address, before=step.before,
                    after=step.after, private=step.private,
                    mark=format_mark(lineage, step.address) if lineage else "")
    provider = ps.get(rec.provider)
    results = list(provider.apply([change]))
    if not results:
        raise CannotUndo(f"the {rec.provider} provider returned no result")
    result = results[-1]
    with be.transaction() as w:
        if step.action == "delete":
            w.remove(step.address)
        else:
            new = instance_record(rec, result.attrs or {}, result.private)
            w.put(new)
            rb.notes.extend(_computed_differences(rec, new))


def _computed_differences(earlier, now) -> list[str]:
    """Computed attributes (a network's uuid) that differ after re-creating an object."""
    from kvmnet.engine.resources import TYPES
    out = []
    for k in sorted(TYPES[earlier.type].computed):
        a, b = earlier.attrs.get(k), now.attrs.get(k)
        if a is not None and a != b:
            out.append(f"{earlier.address}: {k} was {a!r}, is now {b!r} (re-created objects get new ones)")
    return out


def _mark_history(be, report, rb: RollbackReport) -> None:
    from kvmnet.state import FAILED, ROLLED_BACK
    if report.history_id is None:
        return
    status = ROLLED_BACK if rb.complete else FAILED
    summary = (f"rolled back {len(rb.undone)} change(s)" if rb.complete else
               f"rollback incomplete: {len(rb.undone)} undone, {len(rb.not_undone)} left as applied")
    serial = be.read().serial
    with be.transaction() as w:
        w.update_history(report.history_id, status=status, summary=summary, serial_after=serial)
