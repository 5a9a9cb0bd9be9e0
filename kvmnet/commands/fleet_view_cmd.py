"""``kvmnet fleet status`` and ``kvmnet fleet drift``: what every host's agent
reported, from the fleet's PostgreSQL database (docs/fleet.md, "The fleet view")."""
from __future__ import annotations

import json
import time

import click

from kvmnet.cli import Ctx, KvmnetFailure, fail
from kvmnet.commands.fleet_conn import conn_option, fleet_db, host_patterns, hosts_option
from kvmnet.engine.fleet.view import DEFAULT_INTERVAL, DEFAULT_STALE_INTERVALS

pass_ctx = click.make_pass_decorator(Ctx)


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "-"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def status_lines(hosts, rollout, totals) -> list[str]:
    from kvmnet.engine.fleet.view import age_text, drift_text
    rows = [["HOST", "CONDITION", "DESIRED", "APPLIED", "DRIFT", "LAST SEEN", ""]]
    for h in hosts:
        drift = drift_text(h) + (f" ({age_text(h.drift_age)})" if h.drift_age is not None else "")
        rows.append([h.host, h.condition, _short(h.desired_commit), _short(h.applied_commit), drift,
                     age_text(h.seen_age), "STALE" if h.stale else ""])
    lines = _table(rows)
    failures = [h for h in hosts if h.condition in ("Failing", "Reverted") and h.message]
    if failures:
        lines += ["", "Failures:"] + [f"  {h.host} ({h.condition}): {h.message}" for h in failures]
    conds = ", ".join(f"{c} {totals[c]}" for c in ("Pending", "Progressing", "Available", "Failing", "Reverted")
                      if totals.get(c))
    lines += ["", f"Fleet: {totals['hosts']} hosts, {totals['in_sync']} in sync, {totals['stale']} stale, "
                  f"{totals['drifted']} drifted" + (f"; {conds}." if conds else ".")]
    if rollout is not None:
        res = ", ".join(f"{k} {v}" for k, v in sorted(rollout.results.items())) or "no results yet"
        lines.append(f"Rollout #{rollout.id} of {_short(rollout.commit)}: {rollout.state}, "
                     f"{rollout.slots_in_use} slots in use; {res}.")
    return lines


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document: hosts, totals, the latest rollout")
@click.option("--metrics", is_flag=True, help="Prometheus text exposition format")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_INTERVAL, show_default=True,
              metavar="SECONDS", help="How often agents report (agent install --interval)")
@click.option("--stale-after", "stale_after", type=click.IntRange(min=1), default=DEFAULT_STALE_INTERVALS,
              show_default=True,
              metavar="N", help="A host silent for more than N intervals is stale")
@conn_option
@pass_ctx
def status(ctx: Ctx, as_json, metrics, interval, stale_after, conninfo):
    """Per host: desired vs applied commit, condition, drift, last seen (stale flagged), failures."""
    from kvmnet.engine.fleet.view import metrics_text, read_hosts, read_rollout, summary
    if as_json and metrics:
        fail(ctx, "--json and --metrics: choose one")
    with fleet_db(conninfo) as conn:
        hosts = read_hosts(conn, interval, stale_after)
        rollout = read_rollout(conn)
    totals = summary(hosts)
    if metrics:
        click.echo(metrics_text(hosts, rollout), nl=False)
    elif as_json:
        click.echo(json.dumps({"hosts": [h.to_json() for h in hosts], "totals": totals,
                               "rollout": rollout.to_json() if rollout else None,
                               "stale_after_seconds": interval * stale_after}, indent=2))
    elif not hosts:
        ctx.out("No hosts have reported yet.")
    else:
        for line in status_lines(hosts, rollout, totals):
            click.echo(line)


@click.command()
@hosts_option
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=60.0, show_default=True, metavar="SECONDS",
              help="How long to wait for the agents' answers (0: only ask)")
@conn_option
@pass_ctx
def drift(ctx: Ctx, patterns, wait, conninfo):
    """Ask every selected host's agent to check for drift now, and show the answers as they arrive."""
    from kvmnet.engine.fleet import drift as fdrift
    from kvmnet.engine.fleet.plan import select
    from kvmnet.engine.fleet.view import read_hosts
    patterns = host_patterns(patterns)
    with fleet_db(conninfo) as conn:
        known = read_hosts(conn)
        names = select([h.host for h in known], patterns)
        if not names:
            fail(ctx, "--hosts: no known host matches " + ", ".join(repr(p) for p in patterns)
                 if patterns else "no hosts have reported yet: nothing to ask")
        since, asked = fdrift.request(conn, names)
        click.echo(f"Asked {len(asked)} host{'s' if len(asked) != 1 else ''} for a drift check.")
        for h in known:
            if h.host in asked and h.stale:
                ctx.err(f"Warning: {h.host} is stale (its agent has not reported lately); it may not answer.")
        if wait == 0:
            return
        done: dict[str, dict] = {}
        deadline = time.monotonic() + wait
        while len(done) < len(asked):
            for host, report in sorted(fdrift.arrived(conn, asked, since).items()):
                if host not in done:
                    done[host] = report
                    click.echo(f"{host}: {_drift_line(report)}")
            if len(done) == len(asked) or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
    drifted = sum(1 for r in done.values() if isinstance(r, dict) and r.get("resources"))
    click.echo(f"Drift: {len(done)} of {len(asked)} hosts answered, {drifted} drifted.")
    missing = [h for h in asked if h not in done]
    if missing:
        ctx.err(f"Error: no answer within {wait:g}s from: {', '.join(missing)}")
        raise KvmnetFailure()


def _drift_line(report) -> str:
    n = report.get("resources") if isinstance(report, dict) else None
    if not isinstance(n, int):
        return "no drift report"
    if n == 0:
        return "no drift"
    names = ", ".join(report.get("addresses") or [])
    return f"{n} resource{'s' if n != 1 else ''} changed outside kvmnet: {names}"
