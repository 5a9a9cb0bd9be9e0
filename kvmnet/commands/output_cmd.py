"""kvmnet output: the outputs' values as the state holds them, as Terraform prints them."""
from __future__ import annotations

import json

import click

from kvmnet.cli import Ctx, cli, fail
from kvmnet.commands.common import backend, prepare_or_fail

pass_ctx = click.make_pass_decorator(Ctx)


def current_outputs(ctx: Ctx, prepared=None):
    """(values, sensitive names) of the outputs against the state."""
    from kvmnet.engine.outputs import sensitive_outputs, state_outputs
    prepared = prepared or prepare_or_fail(ctx)
    snap = backend(ctx).read()
    return state_outputs(prepared, snap), sensitive_outputs(prepared)


def output_lines(values: dict, sensitive: frozenset[str]) -> list[str]:
    """``NAME = VALUE`` per output, sorted by name (``<sensitive>`` hides a value)."""
    from kvmnet.engine.render.human import fmt_value
    return [f"{n} = {'<sensitive>' if n in sensitive else fmt_value(values[n])}" for n in sorted(values)]


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the values as JSON")
@click.option("--raw", is_flag=True, help="Print a string, number or bool value as it is (with NAME)")
@pass_ctx
def output(ctx: Ctx, name, as_json, raw):
    """Show the outputs (or output NAME) as the state holds them."""
    if raw and as_json:
        fail(ctx, "--raw and --json cannot be combined")
    if raw and name is None:
        fail(ctx, "--raw needs an output NAME")
    prepared = prepare_or_fail(ctx)
    values, sensitive = current_outputs(ctx, prepared)
    if name is not None:
        if name not in values:
            fail(ctx, _missing(name, prepared, values))
        v = values[name]
        if as_json:
            click.echo(json.dumps(v))
        elif raw:
            if isinstance(v, (dict, list)) or v is None:
                fail(ctx, f"output {name!r} is not a string, number or bool: --raw cannot print it "
                          "(use --json)")
            click.echo(("true" if v else "false") if isinstance(v, bool) else str(v))
        else:
            from kvmnet.engine.render.human import fmt_value
            click.echo(fmt_value(v))
        return
    if as_json:
        from kvmnet.engine.plan.tfjson import type_of
        click.echo(json.dumps({n: {"sensitive": n in sensitive, "type": type_of(values[n]),
                                   "value": values[n]} for n in sorted(values)}, indent=2))
        return
    if not values:
        ctx.err("Warning: No outputs found. The state has no output values: the configuration "
                "declares none, or they read resources not applied yet.")
        return
    for line in output_lines(values, sensitive):
        click.echo(line)


def _missing(name: str, prepared, values: dict) -> str:
    from kvmnet.engine.suggest import did_you_mean
    if name in prepared.config.outputs:
        o = prepared.config.outputs[name]
        return (f"{o.file}:{o.line}: output.{name}: has no value in the state yet "
                "(it reads resources not applied): run kvmnet apply")
    return f"no output named {name!r}{did_you_mean(name, prepared.config.outputs)}"
