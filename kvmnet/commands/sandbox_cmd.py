"""kvmnet sandbox up / down: the demo's sandbox, for trying a config of your own."""
from __future__ import annotations

import os
from pathlib import Path

import click

from kvmnet.cli import Ctx, fail

pass_ctx = click.make_pass_decorator(Ctx)


@click.group()
def sandbox():
    """A real libvirtd and kernel namespaces to try a config in (needs root)."""


def _record_option(fn):
    return click.option("--record", "record", type=click.Path(dir_okay=False), default=None,
                        metavar="FILE",
                        help="Where the sandbox is recorded (default $KVMNET_SANDBOX_RECORD or "
                             "/tmp/kvmnet-sandbox/session.json)")(fn)


def _record(record: str | None) -> Path:
    from kvmnet.sandbox.session import default_record
    return Path(record) if record else default_record()


@sandbox.command()
@click.option("--guest", is_flag=True, help="Also start a small TCG guest 'web-server' on 'default' "
                                            "(the first run downloads a 27 MB Debian kernel)")
@_record_option
@pass_ctx
def up(ctx: Ctx, guest: bool, record: str | None):
    """Start the sandbox and print the provider blocks that use it."""
    from kvmnet.sandbox.libvirtd import SandboxError
    from kvmnet.sandbox.session import SessionError, up as bring_up
    if os.geteuid() != 0:
        fail(ctx, "kvmnet sandbox up needs root (it creates network namespaces and runs libvirtd)")
    where = _record(record)
    try:
        s = bring_up(where, guest=guest)
    except (SessionError, SandboxError, OSError) as e:
        fail(ctx, f"cannot start the sandbox: {e}")
    click.echo(f"Sandbox up: libvirtd in network namespace {s.name} (stock 'default' network), "
               f"uplink {s.name}:eth0 <-> {s.client_ns} (198.18.0.2/24)"
               + (f", guest {s.guest} on 'default'" if s.guest else "") + f"; record {where}.")
    click.echo("Paste these provider blocks into your config (nothing outside the sandbox is touched):\n")
    click.echo(s.provider_blocks(), nl=False)
    click.echo("\nWhen done: kvmnet sandbox down" + (f" --record {where}" if record else ""))


@sandbox.command()
@_record_option
@pass_ctx
def down(ctx: Ctx, record: str | None):
    """Remove the sandbox: daemon, namespaces, files."""
    from kvmnet.sandbox.session import SessionError, down as take_down
    if os.geteuid() != 0:
        fail(ctx, "kvmnet sandbox down needs root")
    try:
        s = take_down(_record(record))
    except (SessionError, OSError) as e:
        fail(ctx, f"cannot remove the sandbox: {e}")
    click.echo(f"Sandbox down: {s.name} and {s.client_ns} deleted, {s.tmp} removed.")
