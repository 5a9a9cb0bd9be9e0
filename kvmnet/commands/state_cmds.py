"""kvmnet state list | show ADDR | rm ADDR | history."""
from __future__ import annotations

import json

import click

from kvmnet.cli import Ctx, cli, fail
from kvmnet.commands.common import backend, locked

pass_ctx = click.make_pass_decorator(Ctx)


@cli.group()
def state():
    """Inspect and edit the state."""


@state.command(name="list")
@pass_ctx
def state_list(ctx: Ctx):
    """List the managed addresses."""
    for a in sorted(backend(ctx).read().instances):
        click.echo(a)


@state.command(name="show")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def state_show(ctx: Ctx, address, as_json):
    """Show one managed instance."""
    from kvmnet.engine.render.human import fmt_value
    rec = backend(ctx).read().instances.get(address)
    if rec is None:
        fail(ctx, f"{address} is not in the state")
    if as_json:
        click.echo(json.dumps(rec.to_dict(), indent=2))
        return
    click.echo(f"# {address}")
    click.echo(f"    id       = {rec.id}")
    click.echo(f"    provider = {rec.provider}")
    for k, v in rec.attrs.items():
        click.echo(f"    {k} = {fmt_value(v)}")


@state.command(name="rm")
@click.argument("address")
@pass_ctx
def state_rm(ctx: Ctx, address):
    """Forget an instance (the live object is left as it is, ownership mark included:
    while the address is in the configuration, the next plan adopts it again)."""
    from kvmnet.state import EXCLUSIVE
    be = backend(ctx)
    with locked(ctx, be, EXCLUSIVE):
        snap = be.read()
        if address not in snap.instances:
            fail(ctx, f"{address} is not in the state")
        with be.transaction() as w:
            w.remove(address)
    click.echo(f"Removed {address} from the state (the live object was not touched).")
    ctx.err(f"Warning: a live object that carries this state's ownership mark is adopted "
            f"again by the next plan while {address} is in the configuration; to stop "
            f"managing it, also remove {address} from the configuration.")
