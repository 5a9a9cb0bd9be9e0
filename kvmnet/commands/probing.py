"""``kvmnet apply --probe``: probe the host before and after the apply and revert it
when the apply broke a probe (:mod:`kvmnet.engine.fleet.probes`). The same functions
serve the fleet agent after its applies."""
from __future__ import annotations

from kvmnet.cli import Ctx, KvmnetFailure, fail


def load_user_probes(ctx: Ctx, probe_file: str | None) -> list:
    """The user's probes from ``probe_file`` (none without one); a bad probe file is
    an error naming its line, before anything is planned."""
    from kvmnet.engine.fleet.probes import ProbeConfigError, load_probe_file
    if not probe_file:
        return []
    try:
        return load_probe_file(probe_file)
    except ProbeConfigError as e:
        fail(ctx, str(e))


def probes_for(ctx: Ctx, ps, snapshot, user: list, timeout: float) -> list:
    """The host's probes (from the state and the provider configuration), the
    built-in ones with ``timeout``, then the user's."""
    from kvmnet.engine.fleet.probes import discover
    return discover(ps, snapshot, user, timeout)


def take_baseline(ctx: Ctx, probes: list, snapshot):
    from kvmnet.engine.fleet.probes import baseline
    before = baseline(probes, snapshot)
    ctx.out(f"\nProbes before the change ({len(before.results)}):")
    for r in before.results:
        ctx.console.print(f"  {r.line()}" + ("" if r.ok else " (not counted: it failed before the change)"),
                          markup=False)
    return before


def decide(ctx: Ctx, be, ps, prepared, report, before) -> None:
    """Keep the apply when the probes pass after it, else revert it and fail."""
    from kvmnet.commands.rollback import RollbackPrinter
    from kvmnet.engine.fleet.probes import run_after_apply

    def show(results) -> None:
        ctx.out("\nProbes after the change:")
        for r in results:
            ctx.console.print(f"  {r.line()}", markup=False)

    outcome = run_after_apply(be, ctx.state_path, prepared, ps, report, before, events=RollbackPrinter(ctx),
                              on_results=show)
    if not outcome.reverted:
        ctx.console.print(outcome.message, markup=False)
        return
    for r in outcome.failed:
        ctx.err(f"Error: probe {r.line()}")
    ctx.err(f"\nA probe failed after the change: this apply's changes were "
            f"{'rolled back' if outcome.rollback.complete else 'only partly rolled back'} "
            f"(history #{report.history_id}).")
    raise KvmnetFailure()
