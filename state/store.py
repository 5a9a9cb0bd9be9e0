"""What the SQLite and PostgreSQL backends share, written once.

:class:`Store` and :class:`StoreWriter` hold the logic that is the same on both
stores (the row check, reading and marking history, the frame of a write
transaction, a writer's serial bookkeeping), written against the few primitives
each backend provides: its history query, its writer, its error lines, its
``BEGIN``/``COMMIT``/``ROLLBACK``. A backend keeps only what is its own: its SQL
dialect, its connections, its locks. The encoders below turn records into the JSON
text both stores keep.
"""
from __future__ import annotations

import abc
import contextlib
import json
from typing import Any, Iterator

from kvmnet.state.backend import EXCLUSIVE, Lock, RowCheck, StateBackend, StateError, StateWriter
from kvmnet.state.records import (
    HISTORY_FIELDS, HISTORY_JSON_FIELDS, INTERRUPTED, SUCCESS, HistoryEntry, InstanceRecord,
    StateSnapshot, now_iso,
)
from kvmnet.state.liveness import process_alive


def dumps(value: Any, what: str) -> str:
    """``value`` as the stable JSON text a store keeps; a value JSON cannot hold is
    a StateError naming ``what``."""
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise StateError(f"cannot store {what}: {e}") from None


def instance_values(r: InstanceRecord) -> tuple[Any, ...]:
    """The stored columns of ``r`` up to its times: address, type, name, key,
    provider, id, attrs, private, dependencies (JSON ones encoded; dependencies,
    a set in meaning, sorted so the text is stable)."""
    what = f"{r.address} in state"
    return (r.address, r.type, r.name, None if r.key is None else dumps(r.key, what),
            r.provider, r.id, dumps(r.attrs, what), dumps(r.private, what),
            dumps(sorted(r.dependencies), what))


def history_values(fields: dict[str, Any]) -> dict[str, Any]:
    """History ``fields`` as stored: the JSON ones encoded, the others as they are."""
    return {name: dumps(value, f"history {name}") if name in HISTORY_JSON_FIELDS else value
            for name, value in fields.items()}


def stored(record: InstanceRecord, dependencies: list[str], created: str,
           updated: str) -> InstanceRecord:
    """``record`` as a put stored it: sorted dependencies, its times."""
    return InstanceRecord(record.address, record.type, record.name, record.key,
                          record.provider, record.id, record.attrs, record.private,
                          dependencies, created, updated)


def restored_entry(command: str, snap: StateSnapshot, source: str) -> HistoryEntry:
    """The history entry a restore writes into the state it brought back from ``source``."""
    return HistoryEntry(command=command, status=SUCCESS, finished=now_iso(),
                        serial_before=snap.serial, serial_after=snap.serial,
                        summary=f"restored from {source}: serial {snap.serial}, "
                                f"lineage {snap.lineage}")


def require_exclusive(lock: Lock, doing: str) -> None:
    """Refuse ``doing`` unless ``lock`` is an exclusive lock still held."""
    if lock.mode != EXCLUSIVE or not getattr(lock, "held", True):
        raise StateError(f"{doing} needs the exclusive state lock")


class Store(StateBackend):
    """The backend-agnostic half of a state backend; a subclass provides
    :meth:`_history`, :meth:`_writer`, :meth:`_restore_hint` and, where its driver
    raises its own errors, :meth:`_write_error`."""

    _check: RowCheck | None
    _checked: set[tuple[str, str | None]]    # (address, updated_at) rows already checked
    _in_transaction: bool

    def _init_store(self, check: RowCheck | None) -> None:
        self._check = check
        self._checked = set()
        self._in_transaction = False

    # -- the primitives each backend provides -------------------------------------------
    @abc.abstractmethod
    def _history(self, limit: int | None = None, only_open: bool = False) -> list[HistoryEntry]:
        """History entries, newest first; ``only_open``: those not in FINAL_STATUSES."""

    @abc.abstractmethod
    def _writer(self) -> StoreWriter:
        """A fresh writer for one transaction (it begins lazily)."""

    @abc.abstractmethod
    def _restore_hint(self) -> str:
        """How to bring back the last good copy, said after a damaged row."""

    def _write_error(self, error: BaseException, committing: bool) -> StateError | None:
        """The one line for ``error`` raised inside a transaction (``committing``: by
        its commit), or None to let it through as it is."""
        return None

    # -- shared logic ------------------------------------------------------------------------
    def history(self, limit: int | None = None) -> list[HistoryEntry]:
        return self._history(limit)

    def _check_rows(self, instances: dict[str, InstanceRecord]) -> None:
        """Run the row check on every record not checked yet; the first problem is a
        StateError naming the state, the row and the attribute, and how to recover."""
        assert self._check is not None
        checked = self._checked
        for address, record in instances.items():
            seen = (address, record.updated_at)
            if seen in checked:
                continue
            problem = self._check(record)
            if problem:
                raise StateError(
                    f"state {self.path} is damaged: in the row of {address!r}, {problem}; "
                    f"{self._restore_hint()}; or forget that row with 'kvmnet state rm "
                    f"{address}' (the live object is left as it is, and adopted again while "
                    "the configuration has it)")
            checked.add(seen)

    @contextlib.contextmanager
    def transaction(self, durable: bool = True) -> Iterator[Any]:
        if self._in_transaction:
            raise StateError("a state transaction is already open")
        self._in_transaction = True
        writer = self._writer()
        writer._durable = durable
        try:
            yield writer
        except BaseException as e:
            writer._rollback()
            err = self._write_error(e, committing=False)
            if err is None:
                raise
            raise err from None
        else:
            try:
                writer._commit()
            except Exception as e:
                err = self._write_error(e, committing=True)
                if err is None:
                    raise
                raise err from None
        finally:
            self._in_transaction = False

    def mark_interrupted(self, lock: Lock) -> list[HistoryEntry]:
        """Mark ``interrupted`` every history entry left unfinished by a process that
        is gone; return them. Needs the exclusive lock: under it no other run can be
        writing history, so an entry of another host (which /proc cannot check) is
        dead too. Writes nothing when there is nothing to mark."""
        require_exclusive(lock, "marking interrupted runs")
        dead = [(e, why) for e in self._history(only_open=True)
                for why in [self._cannot_finish(e)] if why]
        if not dead:
            return []
        finished = now_iso()
        with self.transaction() as w:
            for e, gone in dead:
                why = f"interrupted: {gone}; {e.summary}".rstrip("; ")
                assert e.id is not None          # entries read from the store have one
                w.update_history(e.id, status=INTERRUPTED, finished=finished, summary=why)
                e.status, e.finished, e.summary = INTERRUPTED, finished, why
        return [e for e, _ in dead]

    def _cannot_finish(self, e: HistoryEntry) -> str:
        """Why the run of the unfinished entry ``e`` can no longer end it ("" when it
        still may): its process is gone."""
        if process_alive(e.host, e.pid, e.boot_id, e.pid_start) is True:
            return ""
        return f"its process (pid {e.pid} on {e.host}) ended before the run did"


class StoreWriter(StateWriter):
    """The backend-agnostic half of a writer: one transaction, begun lazily by the
    first call (so a transaction that writes nothing sends nothing), bumping the
    serial at commit when it put or removed an instance. A subclass provides
    :meth:`_begin`, :meth:`_finish`, :meth:`_abort` and :meth:`_set_history`."""

    def __init__(self) -> None:
        self._conn: Any = None
        self._lineage = ""
        self._serial = 0
        self._changed = False
        self._committed = False
        self._durable = True      # False: the commit need not survive a power loss

    # -- the primitives each backend provides -------------------------------------------
    @abc.abstractmethod
    def _begin(self) -> Any:
        """The transaction's connection, beginning the transaction on first use (and
        setting ``_lineage``/``_serial``, creating the state when there is none)."""

    @abc.abstractmethod
    def _finish(self, conn: Any, bump: bool) -> None:
        """Add one to the stored serial when ``bump``, then commit (durably unless
        ``_durable`` is False, see :meth:`StateBackend.transaction`)."""

    @abc.abstractmethod
    def _abort(self, conn: Any) -> None:
        """Roll back after a failure, quietly: the first error is the one reported."""

    @abc.abstractmethod
    def _set_history(self, entry_id: int, values: dict[str, Any]) -> bool:
        """Set the stored ``values`` (encoded) of history entry ``entry_id``; False
        when there is no such entry."""

    # -- shared logic ------------------------------------------------------------------------
    @property
    def lineage(self) -> str:
        self._begin()
        return self._lineage

    @property
    def serial(self) -> int:
        if self._committed:
            return self._serial
        self._begin()
        return self._serial + (1 if self._changed else 0)

    def update_history(self, entry_id: int, **fields: Any) -> None:
        unknown = set(fields) - set(HISTORY_FIELDS) | ({"id"} & set(fields))
        if unknown:
            raise StateError(f"cannot update history field(s) {', '.join(sorted(unknown))}")
        if not fields:
            return
        if not self._set_history(entry_id, history_values(fields)):
            raise StateError(f"no history entry {entry_id}")

    def _commit(self) -> None:
        self._committed = True
        if self._conn is None:
            return
        conn, self._conn = self._conn, None
        try:
            self._finish(conn, self._changed)
        except BaseException:
            self._changed = False
            self._abort(conn)
            raise
        if self._changed:
            self._serial += 1

    def _rollback(self) -> None:
        self._committed = True
        if self._conn is not None:
            conn, self._conn = self._conn, None
            self._changed = False
            self._abort(conn)
