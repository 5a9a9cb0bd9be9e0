"""validate: the configuration checked, nothing live read (no root, no libvirt)."""
from __future__ import annotations

import click

from kvmnet.cli import Ctx, KvmnetFailure, print_diagnostics
from kvmnet.commands.common import prepare_or_fail

pass_ctx = click.make_pass_decorator(Ctx)


@click.command()
@pass_ctx
def validate(ctx: Ctx):
    """Check the configuration (no root, no libvirt, no namespace needed)."""
    from kvmnet.engine.diagnostics import Diagnostics
    prepared = prepare_or_fail(ctx)         # resources and provider blocks, all at once
    print_diagnostics(ctx, prepared.diagnostics)
    problems = Diagnostics()
    prepared.evaluator.output_values(problems)      # outputs: what plan would evaluate
    if problems.errors:
        print_diagnostics(ctx, problems)
        raise KvmnetFailure()
    n = len(prepared.instances)
    ctx.out(f"[green]Success![/] The configuration is valid ({n} resource instance{'s' if n != 1 else ''}).")
