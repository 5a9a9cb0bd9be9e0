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
    "INTERRUPTED", "Intent", "open_pg_state",
]


def open_state(path: str | os.PathLike, check: RowCheck | None = None) -> StateBackend:
    """The state store at ``path``. Opening creates nothing; the file appears with
    the first write transaction (the PostgreSQL backend: :func:`open_pg_state`).
    ``check``: see :data:`RowCheck`."""
    location = os.fspath(path)
    if location.startswith(("postgres://", "postgresql://")):
        raise StateError(f"{location.split('://')[0]}:// is not a state file: the PostgreSQL "
                         'state is selected with a backend "pg" block in the kvmnet block')
    from kvmnet.state.sqlite import SqliteState
    return SqliteState(location, check=check)


def open_pg_state(conninfo: str, workspace: str, schema: str = "kvmnet",
                  check: RowCheck | None = None, lease_seconds: float | None = None) -> StateBackend:
    """The state of ``workspace`` (one host) in PostgreSQL (``conninfo``: a libpq
    connection string or URL). Opening connects to nothing yet."""
    from kvmnet.state.pg import PgState
    from kvmnet.state.pg_lease import LEASE_SECONDS
    return PgState(conninfo, workspace, schema, check=check,
                   lease_seconds=LEASE_SECONDS if lease_seconds is None else lease_seconds)
