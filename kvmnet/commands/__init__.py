"""kvmnet's commands, one module per group of commands."""
from kvmnet.commands import (  # noqa: F401
    core, state_cmds, fmt_cmd, history_cmd, confirm_cmd, doctor_cmd, output_cmd, console_cmd, sandbox_cmd,
    agent_install_cmd,
    fleet_group, fleet_plan_cmd, fleet_view_cmd,
    fleet_rollout_cmd, agent_run_cmd,
)
