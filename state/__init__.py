"""The state store: what kvmnet manages, its history, and the lock that serialises runs.

``open_state(path)`` gives the backend for a state location; the engine uses only
the :class:`StateBackend` interface, so another backend (PostgreSQL) can slot in.
"""
from __future__ import annotations

import os

from kvmnet.state.backend import (
    EXCLUSIVE, LOCK_MODES, SHARED, Lock, LockError, LockHolder, RowCheck, StateBackend,
    StateError, StateWriter,
)
from kvmnet.state.intents import Intent
from kvmnet.state.records import (
    APPLIED, FAILED, INTERRUPTED, ROLLED_BACK, RUNNING, SUCCESS, HistoryEntry, InstanceRecord, StateSnapshot,
)

__all__ = [
    "open_state", "StateBackend", "StateWriter", "Lock", "LockHolder", "StateError",
    "LockError", "InstanceRecord", "StateSnapshot", "HistoryEntry", "SHARED",
    "EXCLUSIVE", "LOCK_MODES", "RowCheck", "RUNNING", "APPLIED", "SUCCESS", "FAILED", "ROLLED_BACK",
    "INTERRUPTED", "Intent",
]


def open_state(path: str | os.PathLike, check: RowCheck | None = None) -> StateBackend:
    """The state store at ``path``. Opening creates nothing; the file appears with
    the first write transaction. (A ``postgres://`` URL would select the PostgreSQL
    backend here once it exists.) ``check``: see :data:`RowCheck`."""
    location = os.fspath(path)
    if location.startswith(("postgres://", "postgresql://")):
        raise StateError("the PostgreSQL state backend is not implemented yet")
    from kvmnet.state.sqlite import SqliteState
    return SqliteState(location, check=check)
