"""kvmnet state list | show ADDR | rm ADDR | restore | history."""
from __future__ import annotations

import json
import os

import click

from kvmnet.cli import Ctx, LazyGroup, fail
from kvmnet.commands.common import backend, locked

pass_ctx = click.make_pass_decorator(Ctx)


@click.group(cls=LazyGroup, lazy={"history": "kvmnet.commands.history_cmd:state_history"})
def state():
    """Inspect and edit the state."""


@state.command(name="list")
@click.argument("addresses", nargs=-1)
@pass_ctx
def state_list(ctx: Ctx, addresses):
    """List the managed addresses (only those ADDRESSES name: a resource, an
    instance, or a module and everything in it)."""
    from kvmnet.sdk.addresses import parse_address, within
    for t in addresses:
        try:
            parse_address(t)
        except ValueError as e:
            fail(ctx, str(e))
    for a in sorted(backend(ctx, check_rows=False).read().instances):
        if not addresses or any(within(a, t) for t in addresses):
            click.echo(a)


@state.command(name="show")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def state_show(ctx: Ctx, address, as_json):
    """Show one managed instance."""
    from kvmnet.engine.config.sensitivity import masked
    from kvmnet.engine.render.human import fmt_value
    rec = backend(ctx, check_rows=False).read().instances.get(address)
    if rec is None:
        fail(ctx, f"{address} is not in the state")
    from kvmnet.engine.plan.redact import recorded_sensitive
    # what the configuration marks now, and what was sensitive when it was applied
    hide = sorted(set(_sensitive_keys(ctx, address)) | set(recorded_sensitive(rec.private)))
    if as_json:
        d = rec.to_dict()
        d["attrs"] = masked(d["attrs"], hide)
        click.echo(json.dumps(d, indent=2))
        return
    click.echo(f"# {address}")
    click.echo(f"    id       = {rec.id}")
    click.echo(f"    provider = {rec.provider}")
    from kvmnet.engine.resources import state_attrs
    from kvmnet.engine.plan.redact import shown
    from kvmnet.engine.state_rows import row_problem
    problem = row_problem(rec)
    for k, v in (rec.attrs if problem else state_attrs(rec)).items():
        click.echo(f"    {k} = {fmt_value(shown(v, k, hide))}")
    if problem:
        ctx.err(f"Warning: this row does not fit its type's schema ({problem}); shown as "
                "stored")


def _sensitive_keys(ctx: Ctx, address: str) -> list[str]:
    """What the configuration marks sensitive in this instance (none when the
    configuration does not load: said on stderr)."""
    from kvmnet.engine.diagnostics import DiagnosticError
    from kvmnet.engine.plan.redact import sensitive_keys
    from kvmnet.engine.prepare import prepare
    try:
        prepared = prepare(ctx.dir, ctx.inputs)
    except DiagnosticError:
        ctx.err("Warning: the configuration does not load, so only the sensitive values the "
                "state remembers are masked: run kvmnet validate")
        return []
    inst = prepared.instances.get(address)
    return sensitive_keys(inst) if inst is not None else []


@state.command(name="rm")
@click.argument("address")
@pass_ctx
def state_rm(ctx: Ctx, address):
    """Forget an instance, or every instance of a resource or module ADDRESS names
    (the live objects are left as they are, ownership marks included: while the
    address is in the configuration, the next plan adopts them again)."""
    from kvmnet.sdk.addresses import within
    from kvmnet.state import EXCLUSIVE
    be = backend(ctx, check_rows=False)     # the way out of a row that does not fit
    with locked(ctx, be, EXCLUSIVE):
        snap = be.read()
        gone = [address] if address in snap.instances else \
            sorted(a for a in snap.instances if within(a, address))
        if not gone:
            fail(ctx, f"{address} is not in the state")
        with be.transaction() as w:
            for a in gone:
                w.remove(a)
    for a in gone:
        click.echo(f"Removed {a} from the state (the live object was not touched).")
    ctx.err(f"Warning: a live object that carries this state's ownership mark is adopted "
            f"again by the next plan while {address} is in the configuration; to stop "
            f"managing it, also remove {address} from the configuration.")


@state.command(name="restore")
@pass_ctx
def state_restore(ctx: Ctx):
    """Bring back the last good copy of the state (<state>.backup, written after
    every successful apply, destroy, import and state rm). Nothing live is changed;
    the file it replaces is kept as <state>.before-restore."""
    from kvmnet.state import EXCLUSIVE
    from kvmnet.state.copies import BEFORE_RESTORE
    from kvmnet.state.faults import backup_path
    be = backend(ctx)
    with locked(ctx, be, EXCLUSIVE, recover=False) as lock:
        had = os.path.lexists(ctx.state_path)
        snap = be.restore(lock, ctx.command_line())
    n = len(snap.instances)
    if getattr(be, "workspace", None):          # PostgreSQL: the backup rows
        click.echo(f"Restored {be.path} from its backup rows: serial {snap.serial}, lineage "
                   f"{snap.lineage}, {n} instance{'s' if n != 1 else ''}; the rows it "
                   "replaced are kept as the before-restore copy.")
        click.echo("Run kvmnet plan to see how the live system compares with it.")
        return
    click.echo(f"Restored {ctx.state_path} from {backup_path(ctx.state_path)}: serial "
               f"{snap.serial}, lineage {snap.lineage}, {n} instance{'s' if n != 1 else ''}.")
    if had:
        click.echo(f"The file it replaced is kept as {ctx.state_path}{BEFORE_RESTORE}.")
    click.echo("Run kvmnet plan to see how the live system compares with it.")


@state.command(name="mv")
@click.argument("source")
@click.argument("destination")
@pass_ctx
def state_mv(ctx: Ctx, source, destination):
    """Move an instance, every instance of a resource, or everything in a module to
    another address in the state. Nothing live changes now; the next apply rewrites
    each object's ownership mark to its new address (an in-place update, never a
    replace)."""
    import dataclasses
    from kvmnet.engine.config.refactoring import parse
    from kvmnet.engine.plan.refactor import moves_for
    from kvmnet.state import EXCLUSIVE
    src, dst = parse(source), parse(destination)
    for text, parsed in ((source, src), (destination, dst)):
        if parsed is None:
            fail(ctx, f"{text!r} is not a resource or module address (TYPE.NAME, TYPE.NAME[KEY], "
                      "module.NAME...)")
    assert src is not None and dst is not None
    if (src.type is None) != (dst.type is None):
        fail(ctx, f"cannot move {source} to {destination}: not both modules or both resources")
    if src.type != dst.type:
        fail(ctx, f"cannot move a {src.type} to a {dst.type} address: an object keeps its type")
    be = backend(ctx)
    with locked(ctx, be, EXCLUSIVE):
        snap = be.read()
        moves = moves_for(sorted(snap.instances), source, destination)
        if not moves:
            fail(ctx, f"{source} is not in the state")
        taken = [b for b in moves.values() if b in snap.instances and b not in moves]
        if taken:
            fail(ctx, f"{taken[0]} is already in the state; remove it first (kvmnet state rm)")
        with be.transaction() as w:
            for a in moves:
                w.remove(a)
            for a, b in moves.items():
                new = parse(b)
                assert new is not None
                w.put(dataclasses.replace(snap.instances[a], address=b, name=new.name, key=new.key))
    for a, b in moves.items():
        click.echo(f"Moved {a} to {b}.")
    click.echo("The live objects were not touched: the next apply rewrites their ownership marks "
               "to the new addresses (no replace).")


@state.command(name="migrate")
@click.option("--to", "to", type=click.Choice(["pg", "sqlite"]), required=True,
              help="pg: copy the SQLite file (--state) into the workspace the backend "
                   "\"pg\" block names; sqlite: copy that workspace into the SQLite file")
@pass_ctx
def state_migrate(ctx: Ctx, to):
    """Move this host's state between the SQLite file and PostgreSQL, losing nothing
    (instances, outputs, lineage, serial, history, open intents). Both sides are
    locked; the target must be empty; the copy is read back and compared, and kept
    as the target's last good copy (state restore). The source is left as it is."""
    from kvmnet.commands.common import open_backend
    from kvmnet.state import EXCLUSIVE, open_state
    from kvmnet.state.migrate import migrate
    pg = open_backend(ctx)
    if not getattr(pg, "workspace", None):
        fail(ctx, 'state migrate needs a kvmnet { backend "pg" { ... } } block naming the '
                  "PostgreSQL side")
    sqlite = open_state(ctx.state_path)
    source, target = (sqlite, pg) if to == "pg" else (pg, sqlite)
    with locked(ctx, source, EXCLUSIVE, recover=False), \
            locked(ctx, target, EXCLUSIVE, recover=False):
        copy = migrate(source, target)
        target.backup()             # the copy is the target's first last-good copy
    n = len(copy.snapshot.instances)
    click.echo(f"Migrated {source.path} to {target.path}: serial {copy.snapshot.serial}, "
               f"lineage {copy.snapshot.lineage}, {n} instance{'s' if n != 1 else ''}, "
               f"{len(copy.history)} history entries, {len(copy.intents)} open intents.")
    if to == "pg":
        click.echo(f"The SQLite file {ctx.state_path} was left as it is; kvmnet now uses "
                   "PostgreSQL (the backend block). Move the file away once you are sure.")
    else:
        click.echo("The PostgreSQL workspace was left as it is; remove the backend block "
                   "to use the SQLite file.")
