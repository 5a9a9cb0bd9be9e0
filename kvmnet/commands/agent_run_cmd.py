"""kvmnet agent run: the per-host agent (engine.fleet.agent), once or in a loop."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import click

from kvmnet.commands.fleet_conn import NO_DATABASE, conn_option, error


@click.command("run")
@click.option("--repo", required=True, metavar="PATH|URL", help="The fleet's git repository")
@click.option("--host", required=True, metavar="NAME", help="This host's name (its directory is hosts/NAME)")
@click.option("--once", "mode", flag_value="once", help="One pass, then exit")
@click.option("--loop", "mode", flag_value="loop", default=True, help="A pass every --interval (default)")
@click.option("--interval", default=30.0, show_default=True, type=float, metavar="S")
@click.option("--label", "labels", multiple=True, metavar="LABEL", help="A label of this host (e.g. canary)")
@click.option("--workdir", default="/var/lib/kvmnet/agent", show_default=True, metavar="DIR",
              help="The checkout, the local state and the pending report")
@click.option("--lease", default=30.0, show_default=True, type=float, metavar="S",
              help="A slot's lease, renewed every third of it while applying")
@click.option("--probe-file", metavar="FILE", help="User probes (docs/fleet.md), run around each apply")
@click.option("--probe-timeout", default=5.0, show_default=True, type=float, metavar="S",
              help="How long a built-in probe may take to pass after an apply")
@conn_option
def run(repo, host, mode, interval, labels, workdir, lease, probe_file, probe_timeout, conninfo):
    """Heartbeat, fetch the pinned commit, plan, apply when granted a slot, report."""
    import psycopg

    from kvmnet import __version__
    from kvmnet.engine.fleet.agent import Agent, AgentConfig, AgentError
    from kvmnet.engine.fleet.agent_checks import ProbeChecks
    from kvmnet.engine.fleet.probes import ProbeConfigError, load_probe_file
    if not conninfo:
        error(NO_DATABASE)
    if not os.environ.get("PG_CONN_STR"):   # a host's backend "pg" block reads it: the agent's own connection
        os.environ["PG_CONN_STR"] = conninfo
    if interval <= 0 or lease <= 0 or probe_timeout <= 0:
        error("--interval, --lease and --probe-timeout must be positive")
    try:
        user_probes = load_probe_file(probe_file) if probe_file else []
    except ProbeConfigError as e:
        error(str(e))
    stopping = []
    if mode == "loop":
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        from kvmnet import gcpause
        gcpause.allow_freezing(False)       # a pass a minute for months: nothing may be frozen for good

    def log(line: str) -> None:
        print(f"{host}: {line}", file=sys.stderr, flush=True)

    from kvmnet.state.pg_conn import RETRY_ENV
    try:
        retry_for = float(os.environ.get(RETRY_ENV) or 120.0)
    except ValueError:
        error(f"{RETRY_ENV}={os.environ[RETRY_ENV]!r} is not a number of seconds")
    cfg = AgentConfig(conninfo=conninfo, repo=repo, host=host, workdir=Path(workdir), version=__version__,
                      labels=tuple(labels), lease_seconds=lease, retry_for=retry_for, log=log)
    cfg.checks = ProbeChecks(cfg.state_path, user_probes, probe_timeout)
    a = Agent(cfg)
    try:
        condition = a.run(once=mode == "once", interval=interval, should_stop=lambda: bool(stopping))
    except AgentError as e:
        error(str(e))
    except psycopg.Error as e:
        error(f"PostgreSQL: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}")
    finally:
        a.close()
    if condition in ("Failing", "Reverted"):
        raise SystemExit(1)
