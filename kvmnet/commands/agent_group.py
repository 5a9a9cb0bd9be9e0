"""The ``kvmnet agent`` group: the per-host agent's commands (docs/fleet.md), each
in its own module, loaded when run."""
from __future__ import annotations

import click

from kvmnet.cli import LazyGroup

AGENT_COMMANDS = {
    "install": "kvmnet.commands.agent_install_cmd:install",
    "run": "kvmnet.commands.agent_run_cmd:run",
}


@click.group(cls=LazyGroup, lazy=AGENT_COMMANDS)
def agent():
    """The per-host fleet agent: run it, or install it as systemd units."""
