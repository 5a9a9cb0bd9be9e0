"""The embedded state backend: one SQLite file (schema through sqlite-utils).

Layout of the file (see ``docs/state.md``):

* ``meta``      — one row: ``lineage``, ``serial``, ``format_version``.
* ``instances`` — one row per resource instance; ``attrs``, ``private``,
  ``dependencies`` and ``key`` are JSON text.
* ``history``   — one row per apply / destroy / import run; ``changes`` and
  ``snapshot`` are JSON text.

The file is opened in WAL mode with ``synchronous=FULL``: a commit is on disk when
:meth:`SqliteState.transaction` returns, and a SIGKILL (or power loss) at any moment
leaves either the old or the new state, never a mix. Reads use a separate read-only
connection and plain ``sqlite3`` (no sqlite-utils import, no per-row overhead), so a
plan neither creates nor modifies the file.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Iterator

from kvmnet.state.backend import LockHolder, StateBackend, StateError, StateWriter
from kvmnet.state.intents import Intent, delete_intent, insert_intents, select_intents
from kvmnet.state.lock import FileLock, FileLockManager
from kvmnet.state.records import (
    HISTORY_FIELDS, HISTORY_JSON_FIELDS, HistoryEntry, InstanceRecord, StateSnapshot,
    now_iso,
)

FORMAT_VERSION = 1
BUSY_TIMEOUT = 30.0           # seconds a connection waits for another's write
SYNCHRONOUS = "FULL"          # see the module docstring and docs/state.md

INSTANCE_COLUMNS = ("address", "type", "name", "key", "provider", "id", "attrs",
                    "private", "dependencies", "created_at", "updated_at")
# All instances as ONE JSON text ``[[address, type, ...], ...]``, built by SQLite:
# the JSON columns are spliced in as they are (they hold JSON we wrote), the text
# columns are quoted. One json.loads of that text is the fastest way to decode 10,000
# rows in Python (≈40% faster than a json.loads per column per row).
_ROW_AS_JSON = " || ',' || ".join(
    f"coalesce({c}, 'null')" if c == "key"
    else c if c in ("attrs", "private", "dependencies")
    else f"json_quote({c})"
    for c in INSTANCE_COLUMNS)
_SELECT_INSTANCES_AS_JSON = (
    f"SELECT '[' || coalesce(group_concat('[' || {_ROW_AS_JSON} || ']', ','), '') "
    "|| ']' FROM instances")
_SELECT_HISTORY = f"SELECT {', '.join(HISTORY_FIELDS)} FROM history ORDER BY id DESC"


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while decoding many small objects (it
    would otherwise walk them again and again; PERF-FACTS.md)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _dumps(value: Any, what: str) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise StateError(f"cannot store {what}: {e}") from None


class SqliteState(StateBackend):
    """State kept in the SQLite file ``path``; locks in ``path.lock`` (+ ``.lock.d``)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._locks = FileLockManager(self.path)
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._in_transaction = False

    # -- reading ---------------------------------------------------------------
    def read(self) -> StateSnapshot:
        conn = self._read_connection()
        if conn is None:
            return StateSnapshot()
        try:
            conn.execute("BEGIN")                 # one consistent snapshot
            try:
                meta = self._meta(conn)
                if meta is None:
                    return StateSnapshot()
                text = conn.execute(_SELECT_INSTANCES_AS_JSON).fetchone()[0]
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            raise StateError(f"cannot read state {self.path}: {e}") from None
        make = InstanceRecord
        with _gc_paused():
            try:
                rows = json.loads(text)
            except ValueError as e:
                raise StateError(f"state {self.path} is damaged: {e}") from None
            instances = {row[0]: make(*row) for row in rows}
        return StateSnapshot(lineage=meta[0], serial=meta[1], instances=instances,
                             exists=True)

    def history(self, limit: int | None = None) -> list[HistoryEntry]:
        conn = self._read_connection()
        if conn is None:
            return []
        sql = _SELECT_HISTORY
        params: tuple[int, ...] = ()
        if limit is not None:
            sql, params = sql + " LIMIT ?", (int(limit),)
        try:
            rows = conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as e:
            if "no such table" in str(e):
                return []
            raise StateError(f"cannot read state {self.path}: {e}") from None
        json_at = [i for i, f in enumerate(HISTORY_FIELDS) if f in HISTORY_JSON_FIELDS]
        entries = []
        for row in rows:
            values = list(row)
            for i in json_at:
                values[i] = json.loads(values[i]) if values[i] is not None else None
            entries.append(HistoryEntry(**dict(zip(HISTORY_FIELDS, values, strict=True))))
        return entries

    def _meta(self, conn: sqlite3.Connection) -> tuple[str, int] | None:
        """(lineage, serial), or None when the file holds no state yet."""
        try:
            row = conn.execute(
                "SELECT lineage, serial, format_version FROM meta").fetchone()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return None
            raise
        if row is None:
            return None
        if row[2] > FORMAT_VERSION:
            raise StateError(f"state {self.path} has format {row[2]}; this kvmnet "
                             f"understands up to {FORMAT_VERSION}: upgrade kvmnet")
        return row[0], row[1]

    def _read_connection(self) -> sqlite3.Connection | None:
        """A read-only connection, or None when there is no state file (read-only
        mode never creates the main file)."""
        if self._reader is not None:
            return self._reader
        if not os.path.exists(self.path):
            return None
        uri = Path(self.path).absolute().as_uri() + "?mode=ro"
        old = os.umask(0o077)    # SQLite may create the -shm/-wal side files
        try:
            self._reader = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT,
                                           isolation_level=None)
        except sqlite3.Error as e:
            raise StateError(f"cannot open state {self.path}: {e}") from None
        finally:
            os.umask(old)
        return self._reader

    # -- writing ---------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[SqliteWriter]:
        if self._in_transaction:
            raise StateError("a state transaction is already open")
        self._in_transaction = True
        writer = SqliteWriter(self)
        try:
            yield writer
        except BaseException:
            writer._rollback()
            raise
        else:
            writer._commit()
        finally:
            self._in_transaction = False

    def _write_connection(self) -> sqlite3.Connection:
        """The read-write connection; creates the file (mode 0600) when missing."""
        if self._writer is not None:
            return self._writer
        old = os.umask(0o077)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.fchmod(fd, 0o600)   # side files copy this mode
            finally:
                os.close(fd)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT)
            import sqlite_utils     # only writers pay for importing it
            db = sqlite_utils.Database(conn, recursive_triggers=False,
                                       execute_plugins=False)
            db.enable_wal()
            conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
            _ensure_schema(db)
        except sqlite3.Error as e:
            raise StateError(f"cannot open state {self.path} for writing: {e}") from None
        finally:
            os.umask(old)
        self._writer = conn
        return conn

    # -- locking -----------------------------------------------------------------
    def lock(self, mode: str, command: str, timeout: float | None = 0) -> FileLock:
        return self._locks.lock(mode, command, timeout)

    def force_unlock(self, lock_id: str) -> LockHolder:
        return self._locks.force_unlock(lock_id)

    def locks(self) -> list[LockHolder]:
        return self._locks.locks()

    def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                conn.close()
        self._reader = self._writer = None

    def __repr__(self) -> str:
        return f"SqliteState({self.path!r})"

    # -- intents (see kvmnet.state.intents) -------------------------------------------
    def record_intents(self, intents: list[Intent]) -> list[int]:
        with self.transaction() as w:
            conn = w._begin()
            try:
                return insert_intents(conn, intents)
            except sqlite3.DatabaseError as e:
                raise StateError(f"cannot write state {self.path}: {e}") from None

    def open_intents(self) -> list[Intent]:
        conn = self._read_connection()
        if conn is None:
            return []
        try:
            return select_intents(conn)
        except sqlite3.DatabaseError as e:
            raise StateError(f"cannot read state {self.path}: {e}") from None
        except ValueError as e:
            raise StateError(f"state {self.path} is damaged: {e}") from None


def _ensure_schema(db: Any) -> None:
    """Create the tables when missing, in one transaction (a crash here leaves a
    file that reads as empty). ``db`` is a sqlite_utils.Database."""
    if db["meta"].exists():
        return
    with db.atomic():
        db["meta"].create({"lineage": str, "serial": int, "format_version": int},
                          not_null={"lineage", "serial", "format_version"},
                          if_not_exists=True)
        db["instances"].create(
            {"address": str, "type": str, "name": str, "key": str, "provider": str,
             "id": str, "attrs": str, "private": str, "dependencies": str,
             "created_at": str, "updated_at": str},
            pk="address",
            not_null={"type", "name", "provider", "attrs", "private", "dependencies"},
            if_not_exists=True)
        db["history"].create(
            {"id": int, "command": str, "started": str, "finished": str, "status": str,
             "serial_before": int, "serial_after": int, "changes": str,
             "snapshot": str, "host": str, "pid": int, "summary": str},
            pk="id", if_not_exists=True)


class SqliteWriter(StateWriter):
    """One ``BEGIN IMMEDIATE`` … ``COMMIT``, begun lazily by the first call, so a
    transaction that writes nothing touches nothing."""

    def __init__(self, state: SqliteState) -> None:
        self._state = state
        self._conn: sqlite3.Connection | None = None
        self._lineage = ""
        self._serial = 0
        self._changed = False
        self._committed = False

    @property
    def changed(self) -> bool:
        return self._changed

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

    def _begin(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if self._committed:
            raise StateError("this state transaction is already finished")
        conn = self._state._write_connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            raise StateError(f"cannot write state {self._state.path}: {e}") from None
        self._conn = conn
        meta = self._state._meta(conn)
        if meta is None:
            self._lineage, self._serial = str(uuid.uuid4()), 0
            conn.execute("INSERT INTO meta (lineage, serial, format_version) "
                         "VALUES (?, 0, ?)", (self._lineage, FORMAT_VERSION))
        else:
            self._lineage, self._serial = meta
        return conn

    # -- instances ---------------------------------------------------------------
    def put(self, record: InstanceRecord) -> InstanceRecord:
        conn = self._begin()
        what = f"{record.address} in state"
        dependencies = sorted(record.dependencies)     # a set in meaning: stable text
        row = (record.type, record.name,
               None if record.key is None else _dumps(record.key, what),
               record.provider, record.id,
               _dumps(record.attrs, what), _dumps(record.private, what),
               _dumps(dependencies, what))
        old = conn.execute("SELECT created_at FROM instances WHERE address = ?",
                           (record.address,)).fetchone()
        now = now_iso()
        created = old[0] if old is not None else (record.created_at or now)
        conn.execute(
            "INSERT OR REPLACE INTO instances (address, type, name, key, provider, id, "
            "attrs, private, dependencies, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.address, *row, created, now))
        self._changed = True
        return _stored(record, dependencies, created, now)

    def remove(self, address: str) -> bool:
        conn = self._begin()
        gone = conn.execute("DELETE FROM instances WHERE address = ?",
                            (address,)).rowcount > 0
        self._changed = self._changed or gone
        return gone

    # -- history -----------------------------------------------------------------
    def add_history(self, entry: HistoryEntry) -> int:
        conn = self._begin()
        values = _history_values(entry.to_dict(), exclude_id=True)
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = conn.execute(f"INSERT INTO history ({cols}) VALUES ({marks})",
                           tuple(values.values()))
        assert cur.lastrowid is not None      # set by the INSERT
        return int(cur.lastrowid)

    def update_history(self, entry_id: int, **fields: Any) -> None:
        unknown = set(fields) - set(HISTORY_FIELDS) | ({"id"} & set(fields))
        if unknown:
            raise StateError(f"cannot update history field(s) {', '.join(sorted(unknown))}")
        if not fields:
            return
        conn = self._begin()
        values = _history_values(fields, exclude_id=True)
        sets = ", ".join(f"{c} = ?" for c in values)
        cur = conn.execute(f"UPDATE history SET {sets} WHERE id = ?",
                           (*values.values(), entry_id))
        if cur.rowcount == 0:
            raise StateError(f"no history entry {entry_id}")

    # -- intents (see kvmnet.state.intents) -----------------------------------------
    def close_intent(self, intent_id: int) -> bool:
        return delete_intent(self._begin(), intent_id)

    # -- end -------------------------------------------------------------------------
    def _commit(self) -> None:
        if self._conn is None:
            self._committed = True
            return
        conn, self._conn = self._conn, None
        self._committed = True
        try:
            if self._changed:
                conn.execute("UPDATE meta SET serial = serial + 1")
            conn.commit()
        except BaseException:
            conn.rollback()
            self._changed = False
            raise
        if self._changed:
            self._serial += 1

    def _rollback(self) -> None:
        self._committed = True
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.rollback()
            self._changed = False


def _stored(record: InstanceRecord, dependencies: list[str], created: str,
            updated: str) -> InstanceRecord:
    return InstanceRecord(record.address, record.type, record.name, record.key,
                          record.provider, record.id, record.attrs, record.private,
                          dependencies, created, updated)


def _history_values(fields: dict[str, Any], exclude_id: bool) -> dict[str, Any]:
    values = {}
    for name, value in fields.items():
        if exclude_id and name == "id":
            continue
        if name in HISTORY_JSON_FIELDS:
            value = _dumps(value, f"history {name}")
        values[name] = value
    return values
