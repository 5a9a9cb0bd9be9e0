"""Showing an apply: its steps, its outcome, and its exit code. The run itself
(history entry, walk, rollback, stop on a signal) is
:func:`kvmnet.engine.operations.run_plan`."""
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


def print_outputs(ctx: Ctx, snapshot) -> None:
    """Terraform's ``Outputs:`` section after an apply: the values the state keeps."""
    from kvmnet.commands.output_cmd import output_lines
    if snapshot.outputs:
        from rich.markup import escape
        ctx.out("\n[green]Outputs:[/]\n")
        for line in output_lines(snapshot.outputs, snapshot.sensitive_outputs):
            ctx.out(escape(line))


def execute(ctx: Ctx, be, plan, prepared, ps, *, rollback=False, confirm_timeout=None, lock=None,
            parallelism=None, probes=None):
    """Run the plan; exit 0 (returns), 1 (failed) or 128+N (stopped by signal N)."""
    from kvmnet.commands.rollback import RollbackPrinter
    from kvmnet.engine import operations
    from kvmnet.engine.timings import NULL

    ctx.out("")
    with operations.stop_on_signals() as stop:
        outcome = operations.run_plan(be, plan, prepared, ps, command=ctx.command_line(),
                                      rollback_on_failure=rollback, timings=ctx.timings or NULL,
                                      on_event=_event_printer(ctx),
                                      rollback_events=RollbackPrinter(ctx), stop=stop,
                                      parallelism=parallelism)
    report = outcome.report
    for address in report.forgotten:
        ctx.out(f"{address}: Forgotten (removed block; the live object was left as it is)")
    summary = (f"{outcome.count('create')} added, {outcome.count('update')} changed, "
               f"{outcome.count('delete')} destroyed")
    if report.interrupted is not None:
        for addr, action, msg in ([report.failed] if report.failed else []) + report.also_failed:
            ctx.err(f"Error: {addr}: {action} failed: {msg}")
        left = ", ".join(a for a, _ in report.not_started)
        ctx.err(f"Error: interrupted by {operations.signal_name(report.interrupted)}: stopped after "
                f"the steps in progress ({summary}"
                + (f"; not started: {left}" if left else "")
                + "). The state records what was done; run kvmnet plan to see what is left.")
        raise SystemExit(128 + report.interrupted)
    if report.ok:
        if probes is not None:          # the baseline: keep the apply only if the probes pass
            from kvmnet.commands.probing import decide
            decide(ctx, be, ps, prepared, report, probes)
        if confirm_timeout is not None:
            from kvmnet.commands.confirming import wait_for_confirmation
            wait_for_confirmation(ctx, be, ps, prepared, report, confirm_timeout, lock=lock)
        if plan.destroy:
            ctx.out(f"\n[green]Destroy complete![/] Resources: {outcome.count('delete')} destroyed.")
        else:
            ctx.out(f"\n[green]Apply complete![/] Resources: {summary}.")
            print_outputs(ctx, be.read())
        return report
    if report.failed:
        addr, action, msg = report.failed
        ctx.err(f"Error: {addr}: {action} failed: {msg}")
    for addr, action, msg in report.also_failed:    # running alongside when the first failed
        ctx.err(f"Error: {addr}: {action} failed: {msg}")
    for v in report.verify_errors:
        ctx.err(f"Error: verify: {v}")
    if outcome.rollback is not None and outcome.rollback.complete:
        ctx.err("\nApply failed; its changes were rolled back (see above).")
        raise KvmnetFailure()
    ctx.err(f"\nApply stopped. Done before the failure: {summary}"
            + (f"; not started: {', '.join(a for a, _ in report.not_started)}" if report.not_started else "")
            + ". The state records what was done; run kvmnet plan to see what is left.")
    raise KvmnetFailure()
