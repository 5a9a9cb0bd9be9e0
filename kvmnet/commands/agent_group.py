"""The ``kvmnet agent`` group: the per-host agent's commands (docs/fleet.md)."""
from __future__ import annotations

from kvmnet.cli import cli


@cli.group()
def agent():
    """The per-host fleet agent: run it, or install it as systemd units."""
