"""The plain records the state store keeps: instances, the snapshot, history.

Every record is a dataclass of plain values (str, int, None, dict, list) so it can
be written as JSON as it is (``dataclasses.asdict`` or :meth:`to_dict`) — into a
saved plan, ``kvmnet state show --json``, or a future backend's JSON column.
"""
from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any

from kvmnet.sdk.addresses import matches_record
from kvmnet.state.liveness import boot_id as _boot_id
from kvmnet.state.liveness import process_start


def now_iso() -> str:
    """The current time as an ISO 8601 string in UTC, to the microsecond."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass(slots=True)
class InstanceRecord:
    """One managed resource instance as the state remembers it."""

    address: str                      # primary key: network.lab, network.t[0], ...
    type: str
    name: str                         # the block label
    key: int | str | None = None      # count index / for_each key
    provider: str = ""                # provider instance name ("libvirt", ...)
    id: str | None = None             # live id = import ID
    attrs: dict = field(default_factory=dict)
    private: dict = field(default_factory=dict)   # provider-private (e.g. sysctl originals)
    dependencies: list = field(default_factory=list)  # addresses it depends on (stored sorted)
    created_at: str = ""              # ISO time; set by the store on first put
    updated_at: str = ""              # ISO time; set by the store on every change

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceRecord:
        return cls(**_known(cls, data))


@dataclass(slots=True)
class StateSnapshot:
    """The whole state at one serial.

    ``exists`` is False (and ``lineage`` None, ``serial`` 0) when nothing was ever
    written; a plan against such a state plans to create everything.
    """

    lineage: str | None = None
    serial: int = 0
    instances: dict[str, InstanceRecord] = field(default_factory=dict)
    exists: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "lineage": self.lineage,
            "serial": self.serial,
            "exists": self.exists,
            "instances": {a: r.to_dict() for a, r in self.instances.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StateSnapshot:
        return cls(
            lineage=data.get("lineage"),
            serial=int(data.get("serial", 0)),
            exists=bool(data.get("exists", False)),
            instances={a: InstanceRecord.from_dict(r)
                       for a, r in (data.get("instances") or {}).items()},
        )


# History statuses. A run's entry is RUNNING until it ends in one of FINAL_STATUSES
# (written by engine/operations.py); other in-between statuses (a confirm waiter's)
# are allowed, the store takes any string. An entry left unfinished by a process
# that died is marked INTERRUPTED by the next run that takes the exclusive lock.
RUNNING = "running"
APPLIED = "applied"
SUCCESS = APPLIED          # the name callers use for a run that ended well
FAILED = "failed"
ROLLED_BACK = "rolled back"
INTERRUPTED = "interrupted"
FINAL_STATUSES = (APPLIED, FAILED, ROLLED_BACK, INTERRUPTED)
# the spellings of state format 1, read as today's (and rewritten by format 2's upgrade)
FORMAT_1_STATUSES = {"success": APPLIED, "rolled-back": ROLLED_BACK}


@dataclass(slots=True)
class HistoryEntry:
    """One run that changed (or meant to change) the state: an apply, destroy, import.

    ``changes`` holds one dict per applied change — ``address``, ``action``,
    ``before``, ``after`` — the before-values are what a rollback restores.
    ``snapshot`` holds what providers saved just before the apply
    (``Provider.snapshot``: libvirt XML, owned rulesets, files, prior values).
    """

    command: str
    started: str = field(default_factory=now_iso)
    finished: str | None = None
    status: str = RUNNING
    serial_before: int = 0
    serial_after: int | None = None
    changes: list = field(default_factory=list)
    snapshot: dict = field(default_factory=dict)
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    summary: str = ""
    id: int | None = None             # assigned by the store
    # with host and pid: is the run's process still alive (see state/liveness.py)
    boot_id: str = field(default_factory=_boot_id)
    pid_start: int = field(default_factory=lambda: process_start(os.getpid()) or 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HistoryEntry:
        return cls(**_known(cls, data))


HISTORY_JSON_FIELDS = ("changes", "snapshot")
HISTORY_FIELDS = tuple(f.name for f in fields(HistoryEntry))


INSTANCE_FIELDS = tuple(f.name for f in fields(InstanceRecord))
_ROW_TYPES = (("address", (str,)), ("type", (str,)), ("name", (str,)),
              ("key", (int, str, type(None))), ("provider", (str,)),
              ("id", (str, type(None))), ("attrs", (dict,)), ("private", (dict,)),
              ("dependencies", (list,)), ("created_at", (str, type(None))),
              ("updated_at", (str, type(None))))


def row_problem(row: Any) -> str:
    """What is wrong with one decoded instance row (a list in INSTANCE_FIELDS order),
    or "" when it has the shape of an :class:`InstanceRecord`."""
    if type(row) is not list or len(row) != len(_ROW_TYPES):
        return "the row does not have the instance columns"
    for value, (name, allowed) in zip(row, _ROW_TYPES, strict=True):
        if type(value) not in allowed or type(value) is bool:
            want = " or ".join("null" if t is type(None) else {"str": "a string",
                               "int": "an integer", "dict": "a JSON object",
                               "list": "a JSON array"}[t.__name__] for t in allowed)
            return f"{name} is {_json_kind(value)}, not {want}"
    if any(type(d) is not str for d in row[8]):
        return "dependencies holds something that is not an address"
    if not matches_record(row[0], row[1], row[2]):
        return f"the address does not match type {row[1]!r} and name {row[2]!r}"
    return ""


def _json_kind(value: Any) -> str:
    return {type(None): "null", bool: "a boolean", int: "an integer", float: "a number",
            str: "a string", list: "a JSON array", dict: "a JSON object"}.get(
                type(value), type(value).__name__)


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}
