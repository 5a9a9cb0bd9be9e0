"""What several commands share: preparing the config, the state, the providers."""
from __future__ import annotations

import sys
from contextlib import contextmanager

import click

from kvmnet.cli import Ctx, KvmnetFailure, fail, print_diagnostics


def timings_for(ctx: Ctx, enabled: bool):
    from kvmnet.engine.timings import NULL, Timings
    ctx.timings = Timings() if enabled else NULL
    return ctx.timings


def print_timings(ctx: Ctx) -> None:
    t = ctx.timings
    if t is not None and getattr(t, "phases", None):
        click.echo(t.report(), err=True)


def prepare_or_fail(ctx: Ctx, inputs=None, validate: bool = True):
    from kvmnet.engine.diagnostics import DiagnosticError
    from kvmnet.engine.prepare import prepare
    from kvmnet.engine.timings import NULL
    try:
        prepared = prepare(ctx.dir, inputs or ctx.inputs, timings=ctx.timings or NULL, validate=validate)
        ctx.sensitive_vars = frozenset(prepared.evaluator.sensitivity.variables)
        return prepared
    except DiagnosticError as e:
        print_diagnostics(ctx, e.diagnostics)
        raise KvmnetFailure() from None


def provider_set(ctx: Ctx, prepared):
    from kvmnet.engine.diagnostics import Diagnostics
    from kvmnet.engine.registry import ProviderSet
    diags = Diagnostics()
    configs = {name: prepared.evaluator.provider_config(name, diags)
               for name in prepared.config.providers}
    if diags:
        print_diagnostics(ctx, diags)
        raise KvmnetFailure()
    where = {n: (p.file, p.line) for n, p in prepared.config.providers.items()}
    ps = ProviderSet(configs, where)
    ps.lines = {n: {k: a.line for k, a in p.attrs.items()} for n, p in prepared.config.providers.items()}
    return ps


def backend(ctx: Ctx, check_rows: bool = True):
    """The run's state. Each instance row read is checked against its type's JSON
    Schema (a row that does not fit is an error naming it); ``check_rows=False``
    only for the commands that repair such a state (state list, show, rm)."""
    check = None
    if check_rows:
        from kvmnet.engine.state_rows import row_problem
        check = row_problem
    return open_backend(ctx, check)


def open_backend(ctx: Ctx, check=None):
    """The state this directory's ``kvmnet { backend … }`` block names (PostgreSQL:
    one workspace per host directory), else the SQLite file ``--state``."""
    from kvmnet.engine.backend_block import backend_settings
    from kvmnet.state import open_pg_state, open_state
    settings, diags = backend_settings(ctx.dir)
    if diags:
        print_diagnostics(ctx, diags)
        raise KvmnetFailure()
    if settings.kind == "pg":
        return open_pg_state(settings.conn_str, settings.workspace, settings.schema_name,
                             check=check, lease_seconds=settings.lease_seconds)
    return open_state(ctx.state_path, check=check)


@contextmanager
def locked(ctx: Ctx, be, mode: str, *, recover: bool = True):
    """Hold the state lock in ``mode`` around the block. Exclusive runs (with
    ``recover``) first mark runs that died ``interrupted``, and after a block that
    ends normally keep the state as its last good copy (``<state>.backup``). A run
    whose lease is lost (PostgreSQL) says so in one ``Error:`` line and exits 1."""
    from kvmnet.state import EXCLUSIVE, LockError
    try:
        lock = be.lock(mode, ctx.command_line(), timeout=ctx.lock_timeout)
    except LockError as e:
        msg = str(e)
        if "waiting for confirmation" in msg:
            msg += ("\nAn apply is waiting to be confirmed: run 'kvmnet confirm' to keep its "
                    "changes or 'kvmnet confirm --revert' to roll them back.")
        fail(ctx, msg)
    told: list[str] = []
    if mode == EXCLUSIVE and hasattr(lock, "on_lost"):      # a PostgreSQL lease
        lock.on_lost = lambda why: _stop_run(ctx, why, told)
    for stale in getattr(lock, "stale", []) or []:
        desc = stale.describe() if hasattr(stale, "describe") else str(stale)
        ctx.err(f"Warning: cleared a stale lock left by a process that died: {desc}. "
                "A change it was making may be half done; the plan below shows what is left.")
    try:
        if mode == EXCLUSIVE and recover:
            for entry in be.mark_interrupted(lock):
                ctx.err(f"Warning: history entry #{entry.id} ({entry.command}) was left unfinished "
                        f"by a run that is gone or lost the state lock; marked it interrupted.")
        yield lock
        if getattr(lock, "lost", ""):
            raise KvmnetFailure()
        if mode == EXCLUSIVE and recover and getattr(lock, "held", True):
            keep_backup(ctx, be)
    except LockError as e:
        if not getattr(lock, "lost", ""):
            raise
        if not told:                        # lost before on_lost was set
            ctx.err(f"Error: {e}")
        raise KvmnetFailure() from None
    finally:
        lock.release()


def _stop_run(ctx: Ctx, why: str, told: list[str]) -> None:
    """The run's lease was lost: say so once, and stop the walk if one is running
    (its SIGTERM handler is installed: steps in progress finish, no new one starts).
    Whatever the run does next with the state raises at once (``LeaseLost``), before
    any further change, so outside a walk nothing more is needed."""
    import os
    import signal
    if told:
        return
    told.append(why)
    ctx.err(f"Error: the state lock was lost: {why}; stopping this run")
    if callable(signal.getsignal(signal.SIGTERM)):
        os.kill(os.getpid(), signal.SIGTERM)


def keep_backup(ctx: Ctx, be) -> None:
    """Copy the state to ``<state>.backup`` after a successful run. The run did
    succeed, so a copy that cannot be written is a warning, not an error."""
    from kvmnet.state import StateError
    try:
        be.backup()
    except StateError as e:
        ctx.err(f"Warning: the state was saved, but its backup copy was not: {e}")


def start_providers(ctx: Ctx, ps, prepared, snapshot):
    """Instantiate every provider the config or the state uses (so consumer checks
    reach all of them) and report configuration errors with FILE:LINE."""
    from kvmnet.engine.diagnostics import DiagnosticError
    from kvmnet.sdk.provider import ProviderError
    names = {i.provider for i in prepared.instances.values()}
    names |= {r.provider for r in snapshot.instances.values()}
    names |= set(prepared.config.providers)
    try:
        for n in sorted(names):
            ps.get(n)
    except DiagnosticError as e:
        print_diagnostics(ctx, e.diagnostics)
        raise KvmnetFailure() from None
    except ProviderError as e:
        fail(ctx, f"cannot start provider: {e}")
    except KeyError as e:       # no such provider plugin installed
        fail(ctx, f"cannot start provider: {e.args[0] if e.args else e}")


def confirm_on_terminal(ctx: Ctx, question: str) -> None:
    if not sys.stdin.isatty():
        fail(ctx, "no terminal to confirm on: run with --auto-approve, or apply a saved plan file")
    click.echo(question)
    click.echo("  Only 'yes' will be accepted to approve.\n")
    answer = click.prompt("  Enter a value", default="", show_default=False)
    if answer.strip() != "yes":
        fail(ctx, "not confirmed; nothing was changed")
