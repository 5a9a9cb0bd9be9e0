"""How a rollback is shown: :class:`RollbackPrinter` renders the events of
:func:`kvmnet.engine.operations.roll_back` (the inverse plan run by the engine walk)
for ``apply --rollback-on-failure`` and for the confirm-revert waiter's log."""
from __future__ import annotations

from kvmnet.cli import Ctx
from kvmnet.engine.operations import Rollback, RollbackEvents
from kvmnet.engine.plan.inverse import UNDOES

# the walk action of an undo step -> what it did to the object
_DONE = {"delete": "destroyed", "update": "restored", "create": "re-created"}


class RollbackPrinter(RollbackEvents):
    def __init__(self, ctx: Ctx):
        self.ctx = ctx

    def _say(self, text: str) -> None:
        """A line on stdout, never read as rich markup (addresses hold brackets)."""
        self.ctx.console.print(text, markup=False)

    def begin(self, report, count: int) -> None:
        if report.failed:
            addr, action, msg = report.failed
            self._say(f"\nApply failed at {addr} ({action}): {msg}")
        for v in report.verify_errors:
            self._say(f"\nApply failed verification: {v}")
        if not count:
            self.ctx.out("\nRollback: this apply changed nothing before it failed; nothing to undo.")
        else:
            self.ctx.out(f"\nRolling back {count} change(s) this apply made:")

    def step(self, address: str, action: str, what: str) -> None:
        if what == "done":
            self._say(f"{address}: rolled back {UNDOES[action]} ({_DONE[action]})")

    def end(self, rb: Rollback) -> None:
        if rb.failed:
            address, action, msg = rb.failed
            self.ctx.err(f"Error: rollback of {address} ({action}) failed: {msg}")
        for v in rb.verify_errors:
            self.ctx.err(f"Error: rollback verify: {v}")
        for note in rb.notes:
            self._say(f"  note: {note}")
        if rb.complete:
            if rb.undone:
                self.ctx.out(f"Rollback complete: {len(rb.undone)} change(s) undone; "
                             "the live objects and the state are as they were before this apply.")
            return
        self.ctx.err("Rollback incomplete. Still as this apply left them: "
                     + ", ".join(f"{a} ({act})" for a, act in rb.not_undone)
                     + ". Run kvmnet plan to see the difference from the configuration.")
