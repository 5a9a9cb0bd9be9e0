"""The ``kvmnet fleet`` command group; each fleet command registers itself on it
from its own module."""
from __future__ import annotations

from kvmnet.cli import cli


@cli.group()
def fleet():
    """Many KVM hosts from one repository: plan, roll out, watch."""
