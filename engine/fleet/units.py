"""The systemd units of the per-host agent (``kvmnet agent install``): a oneshot
service that runs ``kvmnet agent run --once`` and a timer that starts it every
interval, plus the environment file that carries ``PG_CONN_STR`` (mode 0600: the
secret is never in a unit, which anyone may read, nor on a command line).

Pure text rendering; writing the files is the command's job
(:mod:`kvmnet.commands.agent_install_cmd`)."""
from __future__ import annotations

from dataclasses import dataclass

SERVICE = "kvmnet-agent.service"
TIMER = "kvmnet-agent.timer"


class UnitValueError(ValueError):
    """A value that cannot be written into a unit or env file as it is."""


@dataclass(frozen=True)
class AgentUnits:
    kvmnet: str             # absolute path of the kvmnet executable
    repo: str
    host: str
    env_file: str
    interval: float         # seconds between two runs of the agent
    labels: tuple[str, ...] = ()     # agent run --label (canary: goes first in a rollout)
    probe_file: str | None = None    # agent run --probe-file (absolute)


def _no_control(what: str, value: str) -> str:
    if any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise UnitValueError(f"{what} {value!r} holds a control character (a newline, a tab, ...)")
    return value


def exec_arg(what: str, value: str) -> str:
    """``value`` as one ExecStart= word: double-quoted with C escapes for ``\\`` and
    ``"``; ``%`` (specifiers) and ``$`` (variable expansion) doubled so both stay
    literal. systemd runs the command without a shell."""
    _no_control(what, value)
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def path_value(what: str, value: str) -> str:
    """An absolute path in a unit setting (no quoting there: no spaces either)."""
    _no_control(what, value)
    if not value.startswith("/") or any(c.isspace() for c in value):
        raise UnitValueError(f"{what} {value!r} must be an absolute path without spaces")
    return value.replace("%", "%%")


def seconds(value: float) -> str:
    """A systemd time span: whole milliseconds (``90s`` ``1500ms``)."""
    ms = round(value * 1000)
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def service(u: AgentUnits) -> str:
    words = [("kvmnet", u.kvmnet), ("", "agent"), ("", "run"), ("", "--repo"), ("the repository", u.repo),
             ("", "--host"), ("the host name", u.host), ("", "--once")]
    words += [w for label in u.labels for w in (("", "--label"), ("the label", label))]
    if u.probe_file is not None:
        words += [("", "--probe-file"), ("the probe file", u.probe_file)]
    exec_start = " ".join(exec_arg(what, v) for what, v in words)
    return f"""\
# Written by kvmnet agent install; run it again to change it.
[Unit]
Description=kvmnet agent: plan this host from the fleet repository and apply when granted a slot
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
EnvironmentFile={path_value("the env file", u.env_file)}
StateDirectory=kvmnet
WorkingDirectory=/var/lib/kvmnet
ExecStart={exec_start}
"""


def timer(u: AgentUnits) -> str:
    if not u.interval > 0:
        raise UnitValueError(f"the interval must be above zero, not {u.interval:g}")
    every = seconds(u.interval)
    return f"""\
# Written by kvmnet agent install; run it again to change it.
[Unit]
Description=Run the kvmnet agent every {every}

[Timer]
OnBootSec={every}
OnUnitInactiveSec={every}
RandomizedDelaySec={seconds(min(u.interval / 10, 30.0))}
Unit={SERVICE}

[Install]
WantedBy=timers.target
"""


def env_file(conn_str: str) -> str:
    """``PG_CONN_STR="…"`` as systemd reads an EnvironmentFile: inside double quotes a
    backslash escapes ``"`` ``\\`` `````` and ``$``; nothing is expanded."""
    _no_control("PG_CONN_STR", conn_str)
    escaped = "".join("\\" + c if c in '"\\`$' else c for c in conn_str)
    return f'# Written by kvmnet agent install (mode 0600): the agent\'s PostgreSQL connection.\n' \
           f'PG_CONN_STR="{escaped}"\n'
