"""Running an apply: history record, the walk, the report."""
from __future__ import annotations


from kvmnet.cli import Ctx, KvmnetFailure


def _event_printer(ctx: Ctx):
    verbs = {"create": ("Creating...", "Creation complete"),
             "update": ("Modifying...", "Modifications complete"),
             "delete": ("Destroying...", "Destruction complete")}

    def on_event(address: str, action: str, what: str) -> None:
        start, done = verbs.get(action, (action, action))
        if what == "start":
            ctx.out(f"{address}: {start}")
        elif what == "done":
            ctx.out(f"{address}: {done}")
    return on_event


def snapshot_before(plan, ps) -> dict:
    """What providers save about the objects this apply is about to change."""
    out: dict = {}
    by: dict = {}
    for c in plan.changes:
        if c.id:
            by.setdefault((c.provider, c.type), []).append(c.id)
    for (pname, rtype), ids in by.items():
        try:
            snap = ps.get(pname).snapshot(rtype, ids)
        except Exception as e:   # a snapshot is best effort; never blocks the apply
            snap = {"error": str(e)}
        if snap:
            out[f"{pname}/{rtype}"] = snap
    return out


def execute(ctx: Ctx, be, plan, prepared, ps, snap, *, rollback=False, confirm_timeout=None,
            lock=None):
    from kvmnet.engine.plan.model import encode
    from kvmnet.engine.timings import NULL
    from kvmnet.engine.walk import Walk
    from kvmnet.state import FAILED, SUCCESS, HistoryEntry

    entry = HistoryEntry(command=ctx.command_line(), serial_before=snap.serial,
                         changes=[{"address": c.address, "action": "replace" if c.is_replace else c.actions[0],
                                   "before": encode(c.before), "after": encode(c.after)}
                                  for c in plan.changes],
                         snapshot=snapshot_before(plan, ps))
    with be.transaction() as w:
        hid = w.add_history(entry)
    ctx.out("")
    walk = Walk(plan, prepared, be, ps, lineage=be.read().lineage, timings=ctx.timings or NULL,
                on_event=_event_printer(ctx))
    report = walk.run()
    report.history_id = hid

    if not report.ok and rollback:
        from kvmnet.commands.rollback import rollback_apply
        rollback_apply(ctx, be, ps, prepared, report)

    status = SUCCESS if report.ok else FAILED
    add = sum(1 for _a, act in report.done if act == "create")
    chg = sum(1 for _a, act in report.done if act == "update")
    dst = sum(1 for _a, act in report.done if act == "delete")
    summary = f"{add} added, {chg} changed, {dst} destroyed"
    from kvmnet.state.records import now_iso
    fields = dict(status=status, summary=summary, serial_after=be.read().serial, finished=now_iso())
    rolled = getattr(report, "rollback", None)
    if rolled is not None:          # the rollback already set status and summary
        fields.pop("status")
        fields.pop("summary")
    with be.transaction() as w:
        w.update_history(hid, **fields)
    if report.ok:
        if confirm_timeout is not None:
            from kvmnet.commands.confirming import wait_for_confirmation
            wait_for_confirmation(ctx, be, ps, prepared, report, confirm_timeout, lock=lock)
        if plan.destroy:
            ctx.out(f"\n[green]Destroy complete![/] Resources: {dst} destroyed.")
        else:
            ctx.out(f"\n[green]Apply complete![/] Resources: {summary}.")
        return report
    if report.failed:
        addr, action, msg = report.failed
        ctx.err(f"Error: {addr}: {action} failed: {msg}")
    for v in report.verify_errors:
        ctx.err(f"Error: verify: {v}")
    if rolled is not None and getattr(rolled, "complete", False):
        ctx.err("\nApply failed; its changes were rolled back (see above).")
        raise KvmnetFailure()
    ctx.err(f"\nApply stopped. Done before the failure: {summary}"
            + (f"; not started: {', '.join(a for a, _ in report.not_started)}" if report.not_started else "")
            + ". The state records what was done; run kvmnet plan to see what is left.")
    raise KvmnetFailure()
