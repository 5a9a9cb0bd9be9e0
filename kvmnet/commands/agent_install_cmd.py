"""``kvmnet agent install``: write the agent's systemd service and timer and the
environment file with ``PG_CONN_STR`` (mode 0600). It writes files only; enabling
the timer is the operator's ``systemctl`` step (printed), so it also works where
systemd is not running, and tests write into a temp dir (``--unit-dir``)."""
from __future__ import annotations

import os
import shutil
import socket
import sys

import click

from kvmnet.cli import Ctx, Duration, fail

pass_ctx = click.make_pass_decorator(Ctx)


def _kvmnet_executable() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "kvmnet")
    return beside if os.access(beside, os.X_OK) else (shutil.which("kvmnet") or beside)


@click.command()
@click.option("--repo", required=True, metavar="URL", help="The fleet repository (git URL or path)")
@click.option("--host", default=None, metavar="NAME", help="This host's name in the fleet (default: hostname)")
@click.option("--unit-dir", default="/etc/systemd/system", show_default=True, metavar="DIR")
@click.option("--env-file", default="/etc/kvmnet/agent.env", show_default=True, metavar="PATH",
              help="Where PG_CONN_STR is kept (mode 0600)")
@click.option("--interval", type=Duration(), default=60.0, show_default=True, metavar="DURATION",
              help="Run the agent this long after its last run ended")
@click.option("--kvmnet", "kvmnet_path", default=None, metavar="PATH", help="The kvmnet executable to run")
@click.option("--label", "labels", multiple=True, metavar="LABEL",
              help="A label of this host, passed to agent run (canary: it goes first in a rollout)")
@click.option("--probe-file", default=None, metavar="FILE", help="User probes, passed to agent run")
@pass_ctx
def install(ctx: Ctx, repo, host, unit_dir, env_file, interval, kvmnet_path, labels, probe_file):
    """Write kvmnet-agent.service, kvmnet-agent.timer and the PG_CONN_STR env file."""
    from kvmnet.engine.fleet.units import SERVICE, TIMER, AgentUnits, UnitValueError
    from kvmnet.engine.fleet.units import env_file as env_text
    from kvmnet.engine.fleet.units import service, timer
    from kvmnet.sdk.files import atomic_write
    exe = os.path.abspath(kvmnet_path) if kvmnet_path else _kvmnet_executable()
    if not os.access(exe, os.X_OK):
        fail(ctx, f"--kvmnet: {exe} is not an executable file")
    if os.path.isdir(repo):         # a local repository: the service runs from /var/lib/kvmnet
        repo = os.path.abspath(repo)
    if probe_file is not None:      # checked now, not at every run of the service
        from kvmnet.engine.fleet.probes import ProbeConfigError, load_probe_file
        probe_file = os.path.abspath(probe_file)
        try:
            load_probe_file(probe_file)
        except ProbeConfigError as e:
            fail(ctx, str(e))
    units = AgentUnits(kvmnet=exe, repo=repo, host=host or socket.gethostname(),
                       env_file=os.path.abspath(env_file), interval=interval, labels=tuple(labels),
                       probe_file=probe_file)
    conn = os.environ.get("PG_CONN_STR")
    if not conn and not os.path.exists(units.env_file):
        fail(ctx, f"PG_CONN_STR is not set: export the agent's PostgreSQL connection string and run "
                  f"again (it goes into {units.env_file}, mode 0600, never into a unit)")
    try:
        texts = {os.path.join(unit_dir, SERVICE): service(units), os.path.join(unit_dir, TIMER): timer(units)}
        env = env_text(conn) if conn else None
    except UnitValueError as e:
        fail(ctx, str(e))
    for d in {unit_dir, os.path.dirname(units.env_file)}:
        if not os.path.isdir(d):
            fail(ctx, f"{d} is not a directory")
    if env is not None:
        atomic_write(units.env_file, env, 0o600)
        ctx.out(f"Wrote {units.env_file} (mode 0600)")
    else:
        os.chmod(units.env_file, 0o600)
        ctx.out(f"Kept {units.env_file} (PG_CONN_STR is not set; mode set to 0600)")
    for path, text in texts.items():
        atomic_write(path, text, 0o644)
        ctx.out(f"Wrote {path}")
    ctx.out(f"Enable it with:  systemctl daemon-reload && systemctl enable --now {TIMER}")
