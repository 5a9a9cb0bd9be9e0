"""kvmnet fleet apply | pause | resume | abort | forget | grant: start and steer a paced
rollout (engine.fleet.rollout), retire a host, give a host its agent's role."""
from __future__ import annotations

from contextlib import contextmanager

import click

from kvmnet.commands.fleet_conn import actor, conn_option, error, fleet_db, host_patterns, hosts_option


@click.command("apply")
@click.option("--commit", required=True, metavar="SHA",
              help="The repo commit every host converges to (abbreviated: resolved in --repo)")
@click.option("--repo", metavar="DIR", type=click.Path(file_okay=False),
              help="The fleet repository holding COMMIT (default: the current directory, when a git work tree)")
@click.option("--max-unavailable", default="1", show_default=True, metavar="N|P%",
              help="Hosts applying at once: a count or a percentage (rounded down, at least 1)")
@click.option("--canary", default=1, show_default=True, type=int, metavar="N",
              help="Hosts labelled canary, else the first N by name, go first")
@click.option("--max-failures", default=0, show_default=True, type=int, metavar="N",
              help="Stop handing out slots once more than N hosts failed")
@hosts_option
@click.option("--retry-failed", is_flag=True, help="Retry hosts that failed or reverted this commit before")
@click.option("--lost-after", default=120.0, show_default=True, type=float, metavar="SECONDS",
              help="A host whose slot lease lapsed and that is unseen this long counts as failed")
@conn_option
def apply_(commit, repo, max_unavailable, canary, max_failures, patterns, retry_failed, lost_after, conninfo):
    """Start a rollout of COMMIT; the agents take slots from it. COMMIT is checked in
    the fleet repository first and the rollout names it by its full id."""
    from kvmnet.engine.fleet.checkout import CheckoutError, resolve
    from kvmnet.engine.fleet.rollout import FleetError, start
    with _refusal_is_error(CheckoutError):
        commit = resolve(repo, commit)
    selector = ",".join(host_patterns(patterns)) if patterns else None
    with fleet_db(conninfo) as c, _refusal_is_error(FleetError):
        rid = start(c, commit=commit, actor=actor(), max_unavailable=max_unavailable, canary=canary,
                    max_failures=max_failures, selector=selector, retry_failed=retry_failed,
                    lost_after=lost_after)
    click.echo(f"Rollout #{rid} of {commit} started: --max-unavailable {max_unavailable}, "
               f"--canary {canary}, --max-failures {max_failures}"
               + (f", hosts {selector}" if selector else "") + ".")


@contextmanager
def _refusal_is_error(refusal: type[Exception]):
    """A ``refusal`` raised inside (the rollout or the role store saying no) is one
    ``Error:`` line."""
    try:
        yield
    except refusal as e:
        error(str(e))


def _steer(action: str, conninfo: str | None) -> None:
    from kvmnet.engine.fleet.rollout import FleetError, change
    with fleet_db(conninfo) as c, _refusal_is_error(FleetError):
        r = change(c, action, actor())
    click.echo(f"Rollout #{r.id} of {r.commit}: {r.state}.")


@click.command()
@conn_option
def pause(conninfo):
    """Hand out no new slots until resumed (in-flight hosts finish)."""
    _steer("pause", conninfo)


@click.command()
@conn_option
def resume(conninfo):
    """Hand out slots again."""
    _steer("resume", conninfo)


@click.command()
@conn_option
def abort(conninfo):
    """End the rollout: no new slots; in-flight hosts finish."""
    _steer("abort", conninfo)


@click.command()
@click.argument("host")
@conn_option
def forget(host, conninfo):
    """Remove a retired HOST and its agent's role (its results and the audit stay)."""
    from kvmnet.engine.fleet.rollout import FleetError
    from kvmnet.engine.fleet.rollout import forget as forget_host
    with fleet_db(conninfo) as c, _refusal_is_error(FleetError):
        role = forget_host(c, host, actor())
    click.echo(f"Forgot host {host} ({role}).")


@click.command()
@click.argument("host")
@click.option("--state-schema", default="kvmnet", show_default=True, metavar="NAME",
              help="The PostgreSQL state's schema (the hosts' backend \"pg\" schema_name)")
@conn_option
def grant(host, state_schema, conninfo):
    """Create HOST's PostgreSQL login role: it reads the fleet, writes only HOST's rows."""
    from kvmnet.state.fleet_roles import RoleError, create_agent_role
    with fleet_db(conninfo) as c, _refusal_is_error(RoleError):
        create_agent_role(c, host, state_schema=state_schema)
    click.echo(f"Role {host} can now run the agent of host {host} (set its authentication in pg_hba.conf).")
