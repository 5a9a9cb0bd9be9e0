"""``kvmnet confirm [--revert] [--id N]``: keep (or roll back now) the changes of an
``apply --confirm-timeout`` that is waiting for confirmation (the protocol is
:mod:`kvmnet.engine.confirmation`; the waiter :mod:`kvmnet.commands.confirming`)."""
from __future__ import annotations

import time

import click

from kvmnet.cli import Ctx, fail
from kvmnet.commands.common import backend

pass_ctx = click.make_pass_decorator(Ctx)

GRACE = 30.0     # how long past the deadline to wait for the waiter's answer


@click.command()
@click.option("--revert", is_flag=True, help="Roll the changes back now instead of keeping them")
@click.option("--id", "apply_id", type=int, default=None, metavar="N",
              help="Only if the waiting apply is history entry N")
@pass_ctx
def confirm(ctx: Ctx, revert, apply_id):
    """Keep the changes of an apply --confirm-timeout that is waiting."""
    from kvmnet.commands.confirming import no_pending_apply
    from kvmnet.engine import confirmation
    from kvmnet.engine.operations import ROLLED_BACK, SUCCESS
    pending = confirmation.read_pending(ctx.state_path)
    if pending is None:
        no_pending_apply(ctx)
    if apply_id is not None and apply_id != pending.history_id:
        fail(ctx, f"apply #{apply_id} is not the one waiting for confirmation "
                  f"(#{pending.history_id} is); nothing was changed")
    be = backend(ctx)
    if not confirmation.waiter_alive(be, pending):
        status = confirmation.history_status(be, pending.history_id)
        confirmation.forget_pending(ctx.state_path, pending)   # reported once, below
        if status in (None, confirmation.AWAITING):
            fail(ctx, f"apply #{pending.history_id} was waiting for confirmation, but its waiter "
                      f"(pid {pending.pid}) is gone without deciding (see {pending.log}): its "
                      "changes are still applied; run kvmnet plan to see where things stand")
        no_pending_apply(ctx)
    confirmation.write_request(ctx.state_path, pending,
                               confirmation.REVERT if revert else confirmation.CONFIRM)
    limit = max(0.0, pending.deadline - time.time()) + GRACE
    outcome = confirmation.await_outcome(be, pending, limit)
    hid = pending.history_id
    if outcome == SUCCESS and not revert:
        ctx.out(f"Confirmed apply #{hid}: its changes stay.")
        return
    if outcome == ROLLED_BACK and revert:
        ctx.out(f"Rolled back apply #{hid} (log: {pending.log}).")
        return
    if outcome == ROLLED_BACK:
        fail(ctx, f"too late: apply #{hid} was not confirmed within {pending.timeout:g} s and "
                  "has been rolled back")
    fail(ctx, f"apply #{hid} ended as {outcome or 'undecided (its waiter died)'}; "
              f"see kvmnet state history and {pending.log}")
