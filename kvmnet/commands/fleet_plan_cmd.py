"""``kvmnet fleet plan``: every host of a fleet repository planned from the config
and its stored state (no refresh), with the drift its agent last reported
(docs/fleet.md, "Planning the fleet")."""
from __future__ import annotations

import click

from kvmnet.cli import Ctx, KvmnetFailure, fail
from kvmnet.commands.fleet_conn import conn_option, fleet_db, host_patterns, hosts_option

pass_ctx = click.make_pass_decorator(Ctx)

ICON = {"create": "+", "update": "~", "restart": "~", "replace": "-/+", "delete": "-",
        "forget": "forget", "moved": "moved"}


def _counts(p) -> str:
    if not p.has_changes:
        return "no changes"
    text = f"{p.add} to add, {p.change} to change, {p.destroy} to destroy"
    extra = [f"{n} to {w}" for n, w in ((p.imports, "import"), (p.forget, "forget")) if n]
    return text + (", " + ", ".join(extra) if extra else "")


def _reported(status) -> str:
    """The drift an agent last reported, and how old that report is."""
    from kvmnet.engine.fleet.view import age_text, drift_text
    if status is None:
        return "drift: no agent report"
    if status.drift_age is None:
        return "drift: never checked"
    return f"drift: {drift_text(status)}, reported {age_text(status.drift_age)}"


def human_lines(plans, statuses, totals) -> list[str]:
    lines = []
    for p in plans:
        if p.errors:
            lines.append(f"{p.host}: failed to plan (see the error)")
            continue
        drift = _reported(statuses.get(p.host)) if statuses is not None else "drift: unknown (no fleet database)"
        lines.append(f"{p.host}: {_counts(p)} ({p.resources} resources); {drift}")
    lines.append("")
    lines.append(f"Fleet: {totals['hosts']} hosts planned, {totals['changed']} with changes, "
                 f"{totals['failed']} failed; {totals['add']} to add, {totals['change']} to change, "
                 f"{totals['destroy']} to destroy.")
    return lines


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def markdown(plans, statuses, totals) -> str:
    """The fleet's plan as a pull-request comment: totals, one table row per host,
    each changed host's changes folded under it."""
    out = ["### kvmnet fleet plan", "",
           f"**{totals['hosts']} hosts**: {totals['changed']} with changes, {totals['failed']} failed · "
           f"**{totals['add']}** to add, **{totals['change']}** to change, **{totals['destroy']}** to destroy", "",
           "| Host | Add | Change | Destroy | Resources | Last reported drift |",
           "|---|---:|---:|---:|---:|---|"]
    for p in plans:
        drift = (_reported(statuses.get(p.host)).removeprefix("drift: ") if statuses is not None
                 else "unknown (no fleet database)")
        if p.errors:
            out.append(f"| `{p.host}` | ❌ | | | | {_cell(p.errors[0])} |")
        else:
            out.append(f"| `{p.host}` | {p.add} | {p.change} | {p.destroy} | {p.resources} | {_cell(drift)} |")
    for p in plans:
        if p.changes:
            out += ["", f"<details><summary><code>{p.host}</code>: {_counts(p)}</summary>", ""]
            out += [f"- `{ICON.get(kind, kind)}` `{addr}` ({kind})" for addr, kind in p.changes]
            out += ["", "</details>"]
    return "\n".join(out) + "\n"


@click.command(name="plan")
@click.argument("repo", required=False, default=".", type=click.Path(file_okay=False))
@hosts_option
@click.option("--label", "labels", multiple=True, metavar="LABEL",
              help="Only the hosts whose agent reports LABEL (repeatable: all of them)")
@click.option("--markdown", "as_markdown", is_flag=True, help="Markdown for a pull-request comment")
@conn_option
@pass_ctx
def fleet_plan(ctx: Ctx, repo, patterns, labels, as_markdown, conninfo):
    """Plan every host directory of REPO (default: .) from the config and each host's
    stored state; show the drift each agent last reported."""
    from kvmnet.engine.fleet.plan import discover, plan_host, select, totals
    from kvmnet.engine.fleet.view import read_hosts
    patterns = host_patterns(patterns)
    try:
        found = dict(discover(repo))
    except FileNotFoundError as e:
        fail(ctx, str(e))
    statuses = None
    with fleet_db(conninfo, required=bool(labels)) as conn:
        if conn is not None:
            statuses = {h.host: h for h in read_hosts(conn)}
    names = select(found, patterns, {h: s.labels for h, s in (statuses or {}).items()}, labels)
    if not names:
        what = [f"--hosts {p!r}" for p in patterns] + [f"--label {label!r}" for label in labels]
        fail(ctx, f"no host directory under {repo}/hosts matches {' and '.join(what)}" if what
             else f"{repo}/hosts has no host directories")
    plans = [plan_host(n, found[n]) for n in names]
    t = totals(plans)
    for p in plans:
        for problem in p.errors:
            ctx.err(f"Error: host {p.host} ({p.dir}): {problem}")
    if as_markdown:
        click.echo(markdown(plans, statuses, t), nl=False)
    else:
        for line in human_lines(plans, statuses, t):
            click.echo(line)
    if t["failed"]:
        raise KvmnetFailure()
