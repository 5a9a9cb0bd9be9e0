"""kvmnet state history [--json]: the applies recorded in the state, newest last."""
from __future__ import annotations

import json

import click

from kvmnet.cli import Ctx
from kvmnet.commands.common import backend
from kvmnet.commands.state_cmds import pass_ctx


def history_line(e) -> str:
    """``#3  2025-01-02 10:00:00 UTC  applied  serial 4→6  kvmnet apply ...``"""
    after = "?" if e.serial_after is None else str(e.serial_after)
    when = e.started.replace("T", " ")[:19] + " UTC" if e.started else "?"
    return f"#{e.id}  {when}  {e.status}  serial {e.serial_before}\u2192{after}  {e.command}"


def change_lines(e) -> list[str]:
    """One line per change: ``  + network.lab (create)``."""
    marks = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
    return [f"    {marks.get(c.get('action'), '?'):>3} {c.get('address')} ({c.get('action')})"
            for c in e.changes or []]


def entry_json(e) -> dict:
    d = e.to_dict()
    d.pop("snapshot", None)
    d["snapshot_saved"] = sorted((e.snapshot or {}).keys())
    d["changes"] = [{"address": c.get("address"), "action": c.get("action")} for c in e.changes or []]
    return d


@click.command(name="history")
@click.option("--json", "as_json", is_flag=True, help="One JSON document")
@click.option("--limit", type=int, default=None, metavar="N", help="Only the last N entries")
@click.option("--full", is_flag=True, help="With --json: keep before/after values and provider snapshots")
@pass_ctx
def state_history(ctx: Ctx, as_json, limit, full):
    """List the applies recorded in the state: what changed, and how it ended."""
    entries = sorted(backend(ctx).history(limit=limit), key=lambda e: e.id or 0)
    if as_json:
        docs = [e.to_dict() if full else entry_json(e) for e in entries]
        click.echo(json.dumps({"format_version": "1", "history": docs}, indent=2, default=str))
        return
    if not entries:
        click.echo("No applies recorded in this state.")
        return
    for e in entries:
        click.echo(history_line(e))
        if e.summary:
            click.echo(f"    {e.summary}")
        for line in change_lines(e):
            click.echo(line)
