"""The state backend interface: what the engine may ask of a state store.

Two implementations exist: :mod:`kvmnet.state.sqlite` (one SQLite file, the embedded
default) and :mod:`kvmnet.state.pg` (PostgreSQL, one workspace per host, row leases).
The engine talks only to these classes; see ``docs/state.md`` for how each method
maps onto SQLite and onto PostgreSQL.

Contract, whatever the backend:

* :meth:`StateBackend.read` is a consistent snapshot and never writes anything.
* Every write happens inside :meth:`StateBackend.transaction`; a transaction is
  atomic (all or nothing, also across a SIGKILL) and bumps ``serial`` by one when it
  put or removed any instance (history writes alone do not count). The first write of a new state
  assigns a fresh ``lineage``. A commit is durable (on disk, across a power loss)
  when ``transaction`` returns, unless the caller asked for ``durable=False``.
* Every state problem (not a state, damaged, foreign, newer, unwritable, full)
  is a :class:`StateError` with a one-line message saying what to do, raised
  before anything is changed.
* :meth:`StateBackend.lock` serialises runs: ``shared`` for plan, ``exclusive`` for
  apply / destroy / import / state rm. A lock dies with its process. Taking a lock
  never writes the state itself.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Callable, ContextManager

from kvmnet.state.intents import Intent
from kvmnet.state.records import HistoryEntry, InstanceRecord, StateSnapshot

SHARED = "shared"
EXCLUSIVE = "exclusive"
LOCK_MODES = (SHARED, EXCLUSIVE)


class StateError(Exception):
    """The state store cannot do what was asked; the message is shown as is."""


class LockError(StateError):
    """A lock could not be taken, or a force-unlock was refused."""


@dataclass
class LockHolder:
    """Who holds (or held) a lock; written next to the state, never into it."""

    id: str                 # lock ID (uuid4), what `kvmnet force-unlock` takes
    mode: str               # "shared" | "exclusive"
    host: str
    pid: int
    started: str            # ISO 8601 time the lock was taken
    command: str            # the command line of the holder, e.g. "kvmnet apply"
    boot_id: str = ""       # the host's boot ID: a holder from before a reboot is dead
    pid_start: int = 0      # process start time (clock ticks), guards against pid reuse
    # Filled in by listings, not stored: True = a live process on this host,
    # False = gone, None = cannot tell (another host).
    alive: bool | None = None

    def describe(self) -> str:
        return (f"{self.command} (pid {self.pid} on {self.host} since {self.started}, "
                f"lock ID {self.id})")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "mode": self.mode, "host": self.host, "pid": self.pid,
                "started": self.started, "command": self.command,
                "boot_id": self.boot_id, "pid_start": self.pid_start}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockHolder:
        return cls(id=str(data["id"]), mode=str(data["mode"]), host=str(data["host"]),
                   pid=int(data["pid"]), started=str(data["started"]),
                   command=str(data.get("command", "")),
                   boot_id=str(data.get("boot_id", "")),
                   pid_start=int(data.get("pid_start", 0)))


class Lock(abc.ABC):
    """A held lock. Use it as a context manager, or call :meth:`release`.

    ``stale`` lists holder records of dead processes that were found (and cleared)
    while taking this lock; the caller shows them as a warning.
    """

    holder: LockHolder
    stale: list[LockHolder]

    @property
    def id(self) -> str:
        return self.holder.id

    @property
    def mode(self) -> str:
        return self.holder.mode

    @abc.abstractmethod
    def release(self) -> None:
        """Give the lock up; calling it again does nothing."""

    def __enter__(self) -> Lock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class StateWriter(abc.ABC):
    """The handle of one open write transaction (see :meth:`StateBackend.transaction`)."""

    @property
    @abc.abstractmethod
    def lineage(self) -> str:
        """The state's lineage; for a new state, the one this transaction assigns.

        The engine needs it before creating the first live object (ownership marks
        carry it), so asking for it may start the transaction and create the state.
        """

    @property
    @abc.abstractmethod
    def serial(self) -> int:
        """The serial the state will have after this transaction commits."""

    @abc.abstractmethod
    def put(self, record: InstanceRecord) -> InstanceRecord:
        """Insert or replace the record at ``record.address``.

        Returns the record as stored (``created_at`` kept from the previous version,
        ``updated_at`` now). Every put is a change, even of an identical record: the
        engine puts after an applied change, and any apply makes saved plans stale.
        """

    @abc.abstractmethod
    def remove(self, address: str) -> bool:
        """Forget the instance; True when it was there."""

    @abc.abstractmethod
    def add_history(self, entry: HistoryEntry) -> int:
        """Append a history entry and return its ID (``entry.id`` is ignored)."""

    @abc.abstractmethod
    def update_history(self, entry_id: int, **fields: Any) -> None:
        """Change fields of a history entry (status, finished, changes, ...)."""

    @abc.abstractmethod
    def close_intent(self, intent_id: int) -> bool:
        """Close an open intent in this transaction (with the state write of its
        result); True when it was open."""

    def settle(self, address: str, record: InstanceRecord | None, intent_ids: list[int]) -> None:
        """A change's result: put ``record`` at ``address`` (None: remove it) and close
        its intents ``intent_ids``. A backend whose every statement is a round trip
        to a server does it in one."""
        if record is None:
            self.remove(address)
        else:
            self.put(record)
        for iid in intent_ids:
            self.close_intent(iid)

    def set_outputs(self, values: dict[str, Any], sensitive: frozenset[str] = frozenset()) -> None:
        """Make the state's outputs ``values`` (a change only when they differ)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no outputs")


# What the engine hands a backend to check each instance row it reads: the problem
# of a record ("attrs.PATH: message"), or "" when the row is fine. The store knows
# no resource type, so the check (against the type's JSON Schema) comes from above.
RowCheck = Callable[[InstanceRecord], str]


class StateBackend(abc.ABC):
    """One state: its instances, serial, lineage, history and lock."""

    path: str     # file path (SQLite) or connection URL (PostgreSQL)

    @abc.abstractmethod
    def read(self) -> StateSnapshot:
        """The state as last committed. A state never written reads as empty
        (``exists`` False) and is not created by reading. With a ``check`` (see
        :data:`RowCheck`), a row it finds a problem in is a StateError."""

    @abc.abstractmethod
    def transaction(self, durable: bool = True) -> ContextManager[StateWriter]:
        """One atomic write transaction; an exception inside rolls it back.

        ``durable=False``: the commit is atomic and survives the process being
        killed, but a power loss may undo it until the next durable commit (which
        makes every earlier one durable too). Only for a write whose loss the next
        run recovers: the result of a change whose durable intent is still open.
        """

    def record_intent(self, intent: Intent) -> int:
        """Record ``intent`` and commit it before its provider is called; its ID."""
        return self.record_intents([intent])[0]

    @abc.abstractmethod
    def record_intents(self, intents: list[Intent]) -> list[int]:
        """Record several intents in one committed transaction; their IDs, in order."""

    @abc.abstractmethod
    def open_intents(self) -> list[Intent]:
        """Intents recorded and not closed (changes interrupted), oldest first."""

    @abc.abstractmethod
    def history(self, limit: int | None = None) -> list[HistoryEntry]:
        """History entries, newest first."""

    @abc.abstractmethod
    def lock(self, mode: str, command: str, timeout: float | None = 0) -> Lock:
        """Take the state lock in ``mode`` ("shared" or "exclusive").

        Polls for up to ``timeout`` seconds (0: try once; None: wait forever), then
        raises :class:`LockError` naming every live holder.
        """

    @abc.abstractmethod
    def force_unlock(self, lock_id: str) -> LockHolder:
        """Clear the holder record ``lock_id`` of a dead (or unverifiable) holder.

        Raises :class:`LockError` for an unknown ID or a live holder on this host.
        """

    @abc.abstractmethod
    def locks(self) -> list[LockHolder]:
        """Current holder records, each with ``alive`` filled in."""

    @abc.abstractmethod
    def mark_interrupted(self, lock: Lock) -> list[HistoryEntry]:
        """Under the exclusive ``lock``: mark ``interrupted`` every history entry left
        unfinished (not in FINAL_STATUSES) by a process that is gone; return them."""

    @abc.abstractmethod
    def backup(self) -> str | None:
        """Keep a copy of the committed state as its last good copy; where it is
        (None when there is no state yet)."""

    @abc.abstractmethod
    def restore(self, lock: Lock, command: str) -> StateSnapshot:
        """Under the exclusive ``lock``: replace the state by its last good copy,
        keeping what it replaces; the snapshot restored."""

    def close(self) -> None:  # noqa: B027 - an optional hook: a backend holding nothing has nothing to release
        """Release connections (held locks are released by their own objects)."""

    def __enter__(self) -> StateBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_mode(mode: str) -> str:
    if mode not in LOCK_MODES:
        raise ValueError(f"lock mode must be one of {', '.join(LOCK_MODES)}, not {mode!r}")
    return mode

