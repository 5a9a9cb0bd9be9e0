"""kvmnet output: the output values the last apply kept in the state, printed as
Terraform prints them."""
from __future__ import annotations

import json

import click

from kvmnet.cli import Ctx, fail
from kvmnet.commands.common import backend

pass_ctx = click.make_pass_decorator(Ctx)


def output_lines(values: dict, sensitive: frozenset[str]) -> list[str]:
    """``NAME = VALUE`` per output, sorted by name (``<sensitive>`` hides a value)."""
    from kvmnet.engine.render.human import fmt_value
    return [f"{n} = {'<sensitive>' if n in sensitive else fmt_value(values[n])}" for n in sorted(values)]


@click.command()
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
    snap = backend(ctx).read()
    values, sensitive = snap.outputs, snap.sensitive_outputs
    if name is not None:
        if name not in values:
            fail(ctx, _missing(name, values))
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
                "declares none, or they were not applied yet (run kvmnet apply).")
        return
    for line in output_lines(values, sensitive):
        click.echo(line)


def _missing(name: str, values: dict) -> str:
    from kvmnet.engine.suggest import did_you_mean
    return (f"no output named {name!r} in the state{did_you_mean(name, values)}: an output "
            "gets its value when kvmnet apply runs with it in the configuration")
