"""kvmnet console: evaluate expressions read from stdin against the config and state."""
from __future__ import annotations

import sys

import click

from kvmnet.cli import Ctx, KvmnetFailure
from kvmnet.commands.common import backend, prepare_or_fail

pass_ctx = click.make_pass_decorator(Ctx)


@click.command()
@pass_ctx
def console(ctx: Ctx):
    """Evaluate one expression per line of stdin (variables, locals, the state's
    resources; type() works here only). Exit 1 if any line fails."""
    from kvmnet.engine import expr as X
    from kvmnet.engine.console import evaluate_line
    from kvmnet.engine.outputs import recorded_values
    from kvmnet.engine.prepare import resource_value
    prepared = prepare_or_fail(ctx)
    values = recorded_values(backend(ctx).read())
    ev = prepared.evaluator
    ev.resolve_resource = lambda t, n: resource_value(prepared.config, values, t, n)
    ev.reset_locals()
    scope = ev.scope()
    failed = False
    for n, line in enumerate(sys.stdin, start=1):
        if line.strip() in ("exit", "quit"):
            break
        try:
            out = evaluate_line(line.rstrip("\n"), scope)
        except X.ExprError as e:
            ctx.err(f"Error: <stdin>:{n}: {e}")
            failed = True
            continue
        except RecursionError:
            ctx.err(f"Error: <stdin>:{n}: the expression is nested too deeply")
            failed = True
            continue
        if out is not None:
            click.echo(out)
    if failed:
        raise KvmnetFailure()
