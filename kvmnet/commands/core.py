"""plan, apply, destroy, show, graph, import, force-unlock."""
from __future__ import annotations

import json
import os

import click

from kvmnet.cli import EXIT_CHANGES, Ctx, Duration, KvmnetFailure, error_line, fail, print_diagnostics
from kvmnet.commands.common import (
    backend, confirm_on_terminal, locked, prepare_or_fail, print_timings, provider_set,
    start_providers, timings_for,
)

pass_ctx = click.make_pass_decorator(Ctx)


def _make_plan(ctx: Ctx, prepared, be, snap, *, refresh=True, refresh_only=False,
               destroy=False, targets=(), settle=False, allow_loss=(), replace=()):
    """The plan; with ``settle`` (apply, destroy) open intents of an interrupted run
    are settled first (kvmnet.engine.reconcile), so the refresh sees the result."""
    from kvmnet.engine.diagnostics import DiagnosticError
    from kvmnet.engine.plan.planner import PlanOptions, make_plan
    from kvmnet.engine.timings import NULL
    from kvmnet.sdk.provider import ProviderError
    ps = provider_set(ctx, prepared)
    if refresh:
        start_providers(ctx, ps, prepared, snap)
    try:
        intents = _open_intents(ctx, be, ps, settle) if refresh else []
        opts = PlanOptions(refresh=refresh, refresh_only=refresh_only, destroy=destroy,
                           targets=list(targets), intents=intents, allow_loss=list(allow_loss),
                           replace=list(replace))
        plan = make_plan(prepared, snap, ps, opts, ctx.inputs.to_json(), ctx.timings or NULL)
    except ProviderError as e:      # a refusal: "FILE:LINE: provider.NAME: ..." when known
        ps.close()
        ctx.err(f"Error: {e}")
        raise KvmnetFailure() from None
    except DiagnosticError as e:
        ps.close()
        print_diagnostics(ctx, e.diagnostics)
        raise KvmnetFailure() from None
    return plan, ps


def _open_intents(ctx: Ctx, be, ps, settle: bool) -> list:
    """The open intents the plan must account for (after settling them, if asked)."""
    if settle:
        from kvmnet.engine.reconcile import settle as settle_intents
        for d in settle_intents(be, ps):
            if d.verdict == "rollback":
                ctx.err(f"Warning: {d.intent.address}: an unfinished {d.intent.action} (the run was "
                        "interrupted or the step failed) was rolled back (what it had made is "
                        "removed; the plan makes it afresh).")
    return be.open_intents()


def _render(ctx: Ctx, plan, fmt: str) -> None:
    if fmt == "json":
        click.echo(plan.dumps(), nl=False)
    elif fmt == "markdown":
        from kvmnet.engine.render.markdown import render_markdown
        click.echo(render_markdown(plan), nl=False)
    else:
        ctx.out_plan(plan)


def _report_plan_errors(ctx: Ctx, plan) -> None:
    for w in plan.warnings:
        ctx.err(f"Warning: {w}")
    if plan.errors:
        for e in plan.errors:
            ctx.err(error_line(str(e)))
        raise KvmnetFailure()


@click.command()
@click.option("--out", "out_file", metavar="FILE", help="Save the plan for a later apply")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as one JSON document")
@click.option("--format", "fmt", type=click.Choice(["human", "json", "markdown"]), default=None)
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when there are changes")
@click.option("--refresh-only", is_flag=True, help="Only show drift: what changed outside kvmnet")
@click.option("--refresh", "refresh", type=click.BOOL, default=True, metavar="BOOL",
              help="--refresh=false: trust the state, read nothing live")
@click.option("--target", "targets", multiple=True, metavar="ADDR")
@click.option("--destroy", is_flag=True, help="Plan to destroy everything kvmnet manages")
@click.option("--replace", "replace", multiple=True, metavar="ADDR",
              help="Replace the resource instance ADDR even if nothing in it changed")
@click.option("--allow-loss", "allow_loss", multiple=True, metavar="ADDR",
              help="Accept that replacing ADDR loses live configuration kvmnet cannot keep")
@click.option("--metrics-file", metavar="PATH", help="Write Prometheus textfile metrics")
@click.option("--timings", "show_timings", is_flag=True, help="Print phase timings to stderr")
@click.option("--generate-config-out", "generate_out", metavar="FILE",
              help="Write the resource blocks of import blocks' undeclared addresses to FILE")
@pass_ctx
def plan(ctx: Ctx, out_file, as_json, fmt, detailed_exitcode, refresh_only, refresh, targets,
         destroy, replace, allow_loss, metrics_file, show_timings, generate_out):
    """Show what apply would change."""
    from kvmnet.state import SHARED
    fmt = "json" if as_json else (fmt or "human")
    timings_for(ctx, show_timings)
    if generate_out:
        from kvmnet.commands.generate_imports import write_import_config
        write_import_config(ctx, prepare_or_fail(ctx), generate_out)
    try:
        prepared = _prepare_for_json(ctx) if fmt == "json" else prepare_or_fail(ctx)
        be = backend(ctx)
        with locked(ctx, be, SHARED):
            snap = be.read()
            plan_, ps = _make_plan(ctx, prepared, be, snap, refresh=refresh,
                                   refresh_only=refresh_only, destroy=destroy, targets=targets,
                                   allow_loss=allow_loss, replace=replace)
            ps.close()
    except KvmnetFailure:
        if metrics_file:
            _write_metrics_failure(metrics_file)
        print_timings(ctx)
        raise
    if fmt == "json":
        _render(ctx, plan_, fmt)
        if plan_.errors:
            raise KvmnetFailure()
    else:
        _report_plan_errors(ctx, plan_)
        _render(ctx, plan_, fmt)
    if metrics_file:
        from kvmnet.engine.render.metrics import write_metrics
        write_metrics(metrics_file, plan_, snap)
    if out_file:
        if plan_.refresh_only:
            fail(ctx, "--out cannot save a --refresh-only plan")
        fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(plan_.dumps())
        if fmt == "human":
            ctx.out(f"\nSaved the plan to: {out_file}\nTo perform exactly these actions, run: "
                    f"kvmnet -C {ctx.chdir} apply {out_file}")
    print_timings(ctx)
    if detailed_exitcode and plan_.has_changes:
        raise SystemExit(EXIT_CHANGES)


def _prepare_for_json(ctx: Ctx):
    """prepare_or_fail, but config errors also go to stdout as the one JSON document
    (``errors`` filled in), so a script reading ``plan --json`` always gets one."""
    from kvmnet.engine.diagnostics import DiagnosticError
    from kvmnet.engine.plan.model import FORMAT_VERSION
    from kvmnet.engine.prepare import prepare
    from kvmnet.engine.timings import NULL
    try:
        return prepare(ctx.dir, ctx.inputs, timings=ctx.timings or NULL)
    except DiagnosticError as e:
        from kvmnet.engine.plan.tfjson import kvmnet_version
        click.echo(json.dumps({"format_version": FORMAT_VERSION, "kvmnet_version": kvmnet_version(),
                               "resource_changes": [], "resource_drift": [], "output_changes": {},
                               "errored": True, "outputs": {},
                               "errors": [d.to_json() for d in e.diagnostics.errors],
                               "warnings": [d.to_json() for d in e.diagnostics.warnings]},
                              separators=(",", ":")))
        print_diagnostics(ctx, e.diagnostics)
        raise KvmnetFailure() from None


def _write_metrics_failure(path: str) -> None:
    try:
        from kvmnet.engine.render.metrics import write_failure
        write_failure(path)
    except ImportError:
        pass


def load_saved_plan(ctx: Ctx, path: str):
    from kvmnet.engine.plan.model import Plan
    try:
        with open(path) as f:
            return Plan.from_json(json.load(f))
    except (OSError, ValueError, KeyError) as e:
        fail(ctx, f"cannot read plan file {path}: {e}")


def run_apply(ctx: Ctx, *, planfile=None, auto_approve=False, targets=(), destroy=False,
              rollback=False, confirm_timeout=None, show_timings=False, parallelism=None, allow_loss=(),
              probe=None, replace=()):
    from kvmnet.engine.config.evaluate import VariableInputs
    from kvmnet.sdk.provider import ProviderError
    from kvmnet.state import EXCLUSIVE
    timings_for(ctx, show_timings)
    saved = load_saved_plan(ctx, planfile) if planfile else None
    inputs = ctx.inputs
    if saved and saved.variables:
        from kvmnet.engine.plan.redact import saved_inputs
        variables, why = saved_inputs(saved.variables, ctx.inputs.vars)
        if why:
            fail(ctx, f"saved plan {planfile}: {why}")
        inputs = VariableInputs(**variables)
    prepared = prepare_or_fail(ctx, inputs)
    be = backend(ctx)
    with locked(ctx, be, EXCLUSIVE) as lock:
        snap = be.read()
        if saved is not None:
            from kvmnet.engine.plan.model import stale_reason
            why = stale_reason(saved, snap.lineage, snap.serial, prepared.config.digest)
            if why:
                fail(ctx, f"saved plan {planfile} is stale: {why}. Run kvmnet plan again.")
            from kvmnet.engine.plan.redact import restore
            restore(saved, snap, prepared)
            saved.sensitive_variables = sorted(prepared.evaluator.sensitivity.variables)
            ps = provider_set(ctx, prepared)
            start_providers(ctx, ps, prepared, snap)
            try:
                _open_intents(ctx, be, ps, settle=True)
            except ProviderError as e:
                ps.close()
                fail(ctx, str(e))
            the_plan = saved
        else:
            the_plan, ps = _make_plan(ctx, prepared, be, snap, destroy=destroy, targets=targets,
                                      settle=True, allow_loss=allow_loss, replace=replace)
            _report_plan_errors(ctx, the_plan)
            ctx.out_plan(the_plan)
        try:
            if not the_plan.changes and not the_plan.resource_drift and not the_plan.adopted \
                    and not the_plan.imports:
                from kvmnet.commands.applying import print_outputs
                from kvmnet.engine.outputs import save_outputs
                save_outputs(be, prepared, destroy=the_plan.destroy)
                ctx.out("\n[green]Apply complete![/] Resources: 0 added, 0 changed, 0 destroyed.")
                if not the_plan.destroy:
                    print_outputs(ctx, be.read())
                return
            if saved is None and not auto_approve and the_plan.changes:
                verb = "destroy all resources managed by kvmnet" if destroy else "perform these actions"
                confirm_on_terminal(ctx, f"\nDo you really want to {verb}?")
            before = None
            if probe is not None:       # (user probes, timeout): probe before and after
                from kvmnet.commands.probing import probes_for, take_baseline
                before = take_baseline(ctx, probes_for(ctx, ps, snap, *probe), snap)
            from kvmnet.commands.applying import execute
            execute(ctx, be, the_plan, prepared, ps, rollback=rollback,
                    confirm_timeout=confirm_timeout, lock=lock, parallelism=parallelism,
                    probes=before)
        finally:
            ps.close()
            print_timings(ctx)


def _parallelism_option(fn):
    """``--parallelism=N`` (``-parallelism=N`` through kvmnet.argv, as Terraform spells
    it): at most N changes in flight at once; each provider caps its own share. Left
    out, the walk's own default applies (:data:`kvmnet.engine.walk.DEFAULT_PARALLELISM`,
    named in the help text; the walk is not imported to show it)."""
    return click.option("--parallelism", "parallelism", type=click.IntRange(min=1), default=None,
                        metavar="N", help="Apply at most N independent changes at once (default 10)")(fn)


@click.command()
@click.argument("planfile", required=False)
@click.option("--auto-approve", is_flag=True, help="Do not ask for 'yes'")
@click.option("--target", "targets", multiple=True, metavar="ADDR")
@click.option("--rollback-on-failure", is_flag=True, help="Undo this apply's changes if a step fails")
@click.option("--replace", "replace", multiple=True, metavar="ADDR",
              help="Replace the resource instance ADDR even if nothing in it changed")
@click.option("--allow-loss", "allow_loss", multiple=True, metavar="ADDR",
              help="Accept that replacing ADDR loses live configuration kvmnet cannot keep")
@click.option("--confirm-timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Roll back unless confirmed within SECONDS")
@click.option("--probe", "probe", is_flag=True,
              help="Probe the host before and after; revert the apply if it broke a probe")
@click.option("--probe-file", metavar="FILE", help="User probes (kvmnet { probe ... }); implies --probe")
@click.option("--probe-timeout", type=Duration(), default=5.0, show_default=True, metavar="DURATION",
              help="How long a built-in probe may take to pass after the change")
@click.option("--timings", "show_timings", is_flag=True)
@_parallelism_option
@pass_ctx
def apply(ctx: Ctx, planfile, auto_approve, targets, rollback_on_failure, replace, allow_loss,
          confirm_timeout, probe, probe_file, probe_timeout, show_timings, parallelism):
    """Make the live system match the configuration."""
    if planfile and targets:
        fail(ctx, "--target cannot be combined with a saved plan (the plan has its targets)")
    if planfile and replace:
        fail(ctx, "--replace cannot be combined with a saved plan (the plan has its replacements)")
    probing = probe or probe_file is not None
    if probing and confirm_timeout is not None:
        fail(ctx, "--probe cannot be combined with --confirm-timeout: the probes decide whether "
                  "the apply stays")
    if probing and probe_timeout <= 0:
        fail(ctx, "--probe-timeout must be above zero")
    user_probes = None
    if probing:
        from kvmnet.commands.probing import load_user_probes
        user_probes = load_user_probes(ctx, probe_file)
    run_apply(ctx, planfile=planfile, auto_approve=auto_approve, targets=targets,
              rollback=rollback_on_failure, confirm_timeout=confirm_timeout,
              show_timings=show_timings, parallelism=parallelism, allow_loss=allow_loss,
              probe=(user_probes, probe_timeout) if probing else None, replace=replace)


@click.command()
@click.option("--auto-approve", is_flag=True)
@click.option("--target", "targets", multiple=True, metavar="ADDR")
@click.option("--timings", "show_timings", is_flag=True)
@_parallelism_option
@pass_ctx
def destroy(ctx: Ctx, auto_approve, targets, show_timings, parallelism):
    """Remove everything kvmnet manages (or the targets and what depends on them)."""
    run_apply(ctx, auto_approve=auto_approve, targets=targets, destroy=True,
              show_timings=show_timings, parallelism=parallelism)


@click.command()
@click.argument("planfile", required=False)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def show(ctx: Ctx, planfile, as_json):
    """Show a saved plan, or the state."""
    if planfile:
        p = load_saved_plan(ctx, planfile)
        _render(ctx, p, "json" if as_json else "human")
        return
    be = backend(ctx)
    snap = be.read()
    if as_json:
        from kvmnet.engine.outputs import state_document
        click.echo(json.dumps(state_document(snap), separators=(",", ":")))
        return
    if not snap.instances and not snap.outputs:
        ctx.out("The state is empty.")
        return
    from kvmnet.engine.render.human import fmt_value
    from rich.markup import escape
    for a, r in snap.instances.items():
        ctx.out(f"# {escape(a)}  (id {escape(str(r.id))}, provider {r.provider})")
        for k, v in r.attrs.items():
            ctx.out(f"    {k} = {escape(fmt_value(v))}")
        ctx.out("")
    if snap.outputs:
        from kvmnet.commands.output_cmd import output_lines
        ctx.out("Outputs:\n")
        for line in output_lines(snap.outputs, snap.sensitive_outputs):
            ctx.out(escape(line))


@click.command()
@click.option("--format", "fmt", type=click.Choice(["dot", "mermaid"]), default="dot")
@pass_ctx
def graph(ctx: Ctx, fmt):
    """Print the dependency graph (Graphviz dot or Mermaid)."""
    from kvmnet.engine.graph import render_dot, render_mermaid
    prepared = prepare_or_fail(ctx, validate=False)
    click.echo(render_dot(prepared.graph) if fmt == "dot" else render_mermaid(prepared.graph), nl=False)


@click.command(name="import")
@click.argument("address", required=False)
@click.argument("id_", required=False)
@click.option("--generate-config", "generate_to", metavar="FILE",
              help="Append the adopted objects' resource blocks to FILE (relative to -C DIR).")
@click.option("--all", "all_types", multiple=True, metavar="TYPE",
              help="Adopt every object of TYPE not yet managed (with --generate-config).")
@click.option("--all-networks", is_flag=True, help="Same as --all network.")
@click.option("--all-nics", is_flag=True, help="Same as --all nic_attachment.")
@pass_ctx
def import_(ctx: Ctx, address, id_, generate_to, all_types, all_networks, all_nics):
    """Adopt an existing object as ADDRESS without changing it; with
    --generate-config FILE also write its configuration (or, with --all-networks,
    --all-nics, --all TYPE, adopt and write every such object)."""
    from kvmnet.commands import import_cmd
    flags = {"all_networks": all_networks, "all_nics": all_nics}
    every = list(all_types) + [import_cmd.ALL_FLAGS[f] for f, on in flags.items() if on]
    if every and (address is not None or id_ is not None):
        fail(ctx, "--all-networks, --all-nics and --all take no ADDRESS or ID")
    if every and generate_to is None:
        fail(ctx, "--all-networks, --all-nics and --all need --generate-config FILE "
                  "(the adopted objects need configuration to stay managed)")
    if not every and (address is None or id_ is None):
        fail(ctx, "import needs ADDRESS and ID (or --all-networks, --all-nics, --all TYPE "
                  "with --generate-config FILE)")
    if generate_to is not None:
        import_cmd.run(ctx, generate_to, address, id_, every)
        return
    from kvmnet.engine.resources import canonical, identity, import_id_problem
    from kvmnet.sdk.provider import ProviderError
    from kvmnet.state import EXCLUSIVE, InstanceRecord
    prepared = prepare_or_fail(ctx)
    inst = prepared.instances.get(address)
    if inst is None:
        fail(ctx, f"{address} is not in the configuration: declare the resource first, "
                  "then import the object into it")
    problem = import_id_problem(inst.type, id_)
    if problem:
        fail(ctx, f"{problem}, not {id_!r}")
    be = backend(ctx)
    with locked(ctx, be, EXCLUSIVE):
        snap = be.read()
        if address in snap.instances:
            fail(ctx, f"{address} is already managed (id {snap.instances[address].id}); "
                      f"use kvmnet state rm first to re-import")
        for a, r in snap.instances.items():
            if r.type == inst.type and r.id == id_:
                fail(ctx, f"{inst.type} {id_!r} is already managed as {a}")
        ps = provider_set(ctx, prepared)
        try:
            obj = ps.get(inst.provider).import_object(inst.type, id_)
        except ProviderError as e:
            fail(ctx, str(e))
        finally:
            ps.close()
        if obj is None:
            fail(ctx, f"no {inst.type} with ID {id_!r} exists to import")
        deps = sorted(prepared.graph.predecessors(inst.resource_address))
        attrs = canonical(inst.type, obj.attrs)
        rec = InstanceRecord(address=address, type=inst.type, name=inst.name, key=inst.key,
                             provider=inst.provider, id=identity(inst.type, attrs) or obj.id,
                             attrs=attrs, private=obj.private or {}, dependencies=deps)
        with be.transaction() as w:
            w.put(rec)
    ctx.out(f"[green]Import successful![/] {address} now manages {inst.type} {id_!r}; "
            "run kvmnet plan to see how it compares with the configuration.")


@click.command(name="force-unlock")
@click.argument("lock_id")
@pass_ctx
def force_unlock(ctx: Ctx, lock_id):
    """Remove a lock left by a process that died."""
    from kvmnet.state import LockError
    be = backend(ctx)
    try:
        holder = be.force_unlock(lock_id)
    except LockError as e:
        fail(ctx, str(e))
    ctx.out(f"Lock {lock_id} released ({holder.describe() if hasattr(holder, 'describe') else holder}).")
