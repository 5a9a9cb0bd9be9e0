"""The ``kvmnet fleet`` command group; its commands live in their own modules and
load when run."""
from __future__ import annotations

import click

from kvmnet.cli import LazyGroup

FLEET_COMMANDS = {
    "plan": "kvmnet.commands.fleet_plan_cmd:fleet_plan",
    "status": "kvmnet.commands.fleet_view_cmd:status",
    "drift": "kvmnet.commands.fleet_view_cmd:drift",
    "apply": "kvmnet.commands.fleet_rollout_cmd:apply_",
    "pause": "kvmnet.commands.fleet_rollout_cmd:pause",
    "resume": "kvmnet.commands.fleet_rollout_cmd:resume",
    "abort": "kvmnet.commands.fleet_rollout_cmd:abort",
    "forget": "kvmnet.commands.fleet_rollout_cmd:forget",
    "grant": "kvmnet.commands.fleet_rollout_cmd:grant",
}


@click.group(cls=LazyGroup, lazy=FLEET_COMMANDS)
def fleet():
    """Many KVM hosts from one repository: plan, roll out, watch."""
