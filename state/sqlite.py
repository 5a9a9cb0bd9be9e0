"""The embedded state backend: one SQLite file (schema through sqlite-utils).

Layout of the file (see ``docs/state.md``):

* ``meta``      — one row: ``lineage``, ``serial``, ``format_version``.
* ``instances`` — one row per resource instance; ``attrs``, ``private``,
  ``dependencies`` and ``key`` are JSON text.
* ``history``   — one row per apply / destroy / import run; ``changes`` and
  ``snapshot`` are JSON text.

The file is opened in WAL mode with ``synchronous=FULL``: a commit is on disk when
:meth:`SqliteState.transaction` returns, and a SIGKILL (or power loss) at any moment
leaves either the old or the new state, never a mix. A ``durable=False`` transaction
commits with ``synchronous=NORMAL`` (no fsync: the WAL frames are in the page cache,
safe from a SIGKILL; the next durable commit's fsync of the same WAL file makes them
durable too). Reads use a separate read-only
connection and plain ``sqlite3`` (no sqlite-utils import, no per-row overhead), so a
plan neither creates nor modifies the file.
"""
from __future__ import annotations

import json
import os
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Callable, TypeVar

from kvmnet.gcpause import gc_paused
from kvmnet.state.backend import Lock, LockHolder, RowCheck, StateError
from kvmnet.state.faults import (
    DATABASE, EMPTY, MISSING, backup_path, inspect_path, os_error, restore_hint,
    sqlite_error,
)
from kvmnet.state.intents import Intent, delete_intent, insert_intents, select_intents
from kvmnet.sdk.addresses import matches_record
from kvmnet.state.outputs import replace_outputs, select_outputs
from kvmnet.state.lock import FileLock, FileLockManager
from kvmnet.state.records import (
    FINAL_STATUSES, FORMAT_1_STATUSES, HISTORY_FIELDS, HISTORY_JSON_FIELDS,
    HistoryEntry, InstanceRecord, StateSnapshot, now_iso, row_problem,
)
from kvmnet.state.store import (
    Store, StoreWriter, dumps, history_values, instance_values, require_exclusive,
    restored_entry, stored,
)

T = TypeVar("T")

# 2: history statuses spelled applied / rolled back (format 1: success / rolled-back);
# a format 1 file is read as format 2 and upgraded by its next write transaction
FORMAT_VERSION = 2
APPLICATION_ID = 0x6B766D6E   # "kvmn" in the file header: this file is a kvmnet state
TABLES = frozenset({"meta", "instances", "history"})
# history columns added after format 1 was released; added to older files on write
HISTORY_ADDED_COLUMNS = (("boot_id", "TEXT"), ("pid_start", "INTEGER"))
BUSY_TIMEOUT = 30.0           # seconds a connection waits for another's write
SYNCHRONOUS = "FULL"          # see the module docstring and docs/state.md
LAZY_SYNCHRONOUS = "NORMAL"   # a durable=False transaction's commit: no fsync

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
_KEY_TYPES = (int, str, type(None))
_BAD_JSON_ROW = (
    "SELECT address FROM instances WHERE NOT json_valid(attrs) OR NOT json_valid(private) "
    "OR NOT json_valid(dependencies) OR (key IS NOT NULL AND NOT json_valid(key)) LIMIT 1")


class SqliteState(Store):
    """State kept in the SQLite file ``path``; locks in ``path.lock`` (+ ``.lock.d``).
    ``check``: each instance row read is checked once (per address and update)."""

    def __init__(self, path: str | os.PathLike, check: RowCheck | None = None) -> None:
        self.path = os.fspath(path)
        self._init_store(check)
        self._locks = FileLockManager(self.path)
        self._reader: sqlite3.Connection | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._synchronous = SYNCHRONOUS     # the write connection's current setting
        self._upgraded = False

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
                try:
                    outputs, sensitive = select_outputs(conn)
                except ValueError as e:
                    raise StateError(f"state {self.path} is damaged: {e}; "
                                     f"{restore_hint(self.path)}") from None
            finally:
                if conn.in_transaction:
                    conn.execute("COMMIT")
        except sqlite3.Error as e:
            raise sqlite_error("read state", self.path, e) from None
        make = InstanceRecord
        with gc_paused(freeze=True):       # a snapshot lives as long as the run
            try:
                rows = json.loads(text)
            except ValueError as e:
                raise self._bad_json(conn, e) from None
            instances = {}
            for row in rows:
                if type(row) is not list or len(row) != 11 or type(row[0]) is not str \
                        or type(row[6]) is not dict or type(row[7]) is not dict \
                        or type(row[8]) is not list or type(row[3]) not in _KEY_TYPES \
                        or type(row[1]) is not str or type(row[2]) is not str \
                        or not all(type(d) is str for d in row[8]) \
                        or not _address_matches(row[0], row[1], row[2]):
                    raise self._bad_row(row)
                instances[row[0]] = make(*row)
            if self._check is not None:
                self._check_rows(instances)
        return StateSnapshot(lineage=meta[0], serial=meta[1], instances=instances,
                             exists=True, outputs=outputs, sensitive_outputs=sensitive)

    def _restore_hint(self) -> str:
        return restore_hint(self.path)

    def _bad_json(self, conn: sqlite3.Connection, err: ValueError) -> StateError:
        try:
            found = conn.execute(_BAD_JSON_ROW).fetchone()
        except sqlite3.Error:
            found = None
        where = f"the row of {found[0]!r} does not hold valid JSON" if found else f"{err}"
        return StateError(f"state {self.path} is damaged: {where}; {restore_hint(self.path)}")

    def _bad_row(self, row: object) -> StateError:
        problem = row_problem(row) or "the row does not have the instance columns"
        who = (f"the row of {row[0]!r}" if isinstance(row, list) and row
               and isinstance(row[0], str) else "an instance row")
        return StateError(f"state {self.path} is damaged: in {who}, {problem}; "
                          f"{restore_hint(self.path)}")

    def _history(self, limit: int | None = None, only_open: bool = False) -> list[HistoryEntry]:
        conn = self._read_connection()
        if conn is None:
            return []
        try:
            present = {r[1] for r in conn.execute("PRAGMA table_info(history)")}
            if not present:
                return []
            columns = [f for f in HISTORY_FIELDS if f in present]
            sql = f"SELECT {', '.join(columns)} FROM history"
            params: list[str | int] = []
            if only_open:
                done = (*FINAL_STATUSES, *FORMAT_1_STATUSES)
                sql += (" WHERE status IS NULL OR status NOT IN ("
                        + ", ".join("?" for _ in done) + ")")
                params += done
            sql += " ORDER BY id DESC"
            if limit is not None:
                sql, params = sql + " LIMIT ?", params + [int(limit)]
            rows = conn.execute(sql, params).fetchall()
        except sqlite3.Error as e:
            raise sqlite_error("read the history of state", self.path, e) from None
        return [self._history_entry(dict(zip(columns, row, strict=True))) for row in rows]

    def _history_entry(self, values: dict[str, Any]) -> HistoryEntry:
        try:
            for name in HISTORY_JSON_FIELDS:
                if values.get(name) is not None:
                    values[name] = json.loads(values[name])
            entry = HistoryEntry(**values)
        except (ValueError, TypeError) as e:
            raise StateError(f"state {self.path} is damaged: history entry "
                             f"#{values.get('id')} does not hold valid JSON ({e}); "
                             f"{restore_hint(self.path)}") from None
        entry.status = FORMAT_1_STATUSES.get(entry.status, entry.status)
        entry.boot_id = entry.boot_id or ""
        entry.pid_start = entry.pid_start or 0
        return entry

    def _meta(self, conn: sqlite3.Connection) -> tuple[str, int] | None:
        """(lineage, serial), or None when the file holds no state yet."""
        try:
            rows = conn.execute(
                "SELECT lineage, serial, format_version FROM meta").fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return None
            if "no such column" in str(e):
                raise StateError(f"state {self.path} is damaged or not a kvmnet state "
                                 f"(its meta table: {e}); {restore_hint(self.path)}") from None
            raise
        if not rows:
            return None
        if len(rows) > 1 or type(rows[0][0]) is not str or type(rows[0][1]) is not int \
                or type(rows[0][2]) is not int:
            raise StateError(f"state {self.path} is damaged: its meta table does not hold "
                             f"one lineage, serial and format; {restore_hint(self.path)}")
        lineage, serial, fmt = rows[0]
        if fmt > FORMAT_VERSION:
            raise StateError(f"state {self.path} was written by a newer kvmnet (state format "
                             f"{fmt}; this kvmnet understands up to {FORMAT_VERSION}): "
                             "upgrade kvmnet to use it; the file was not changed")
        return lineage, serial

    def _read_connection(self) -> sqlite3.Connection | None:
        """A read-only connection, or None when there is no state yet (no file, an
        empty file, or an SQLite file with no tables: read-only mode never creates
        or changes the main file). Anything else that is not a kvmnet state is
        refused before SQLite reads it."""
        if self._reader is not None:
            return self._reader
        if inspect_path(self.path) in (MISSING, EMPTY):
            return None
        uri = Path(self.path).absolute().as_uri() + "?mode=ro"
        conn, holds_state = _open(
            self.path, "read state",
            lambda: sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None),
            lambda conn: _identify(conn, self.path))
        if not holds_state:
            conn.close()
            return None
        self._reader = conn
        return self._reader

    # -- writing ---------------------------------------------------------------
    def _writer(self) -> SqliteWriter:
        return SqliteWriter(self)

    def _write_error(self, error: BaseException, committing: bool) -> StateError | None:
        if isinstance(error, sqlite3.Error):
            return sqlite_error("write state", self.path, error)
        return None

    def _write_connection(self) -> sqlite3.Connection:
        """The read-write connection; creates the file (mode 0600) when missing.
        A file that is not a kvmnet state is refused before anything is written."""
        if self._write_conn is not None:
            return self._write_conn
        kind = inspect_path(self.path)

        def create() -> sqlite3.Connection:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    os.fchmod(fd, 0o600)   # side files copy this mode
                finally:
                    os.close(fd)
            except OSError as e:
                raise os_error("write state", self.path, e) from None
            return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT)

        def prepare(conn: sqlite3.Connection) -> None:
            if kind == DATABASE:
                _identify(conn, self.path)
            import sqlite_utils     # only writers pay for importing it
            db = sqlite_utils.Database(conn, recursive_triggers=False,
                                       execute_plugins=False)
            db.enable_wal()
            conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
            _ensure_schema(db)

        conn, _ = _open(self.path, "open for writing state", create, prepare)
        self._write_conn = conn
        self._synchronous = SYNCHRONOUS
        return conn

    def _set_synchronous(self, conn: sqlite3.Connection, durable: bool) -> None:
        """FULL (fsync at commit) or NORMAL for the next transaction; set only when it
        changes (outside a transaction, where SQLite takes it)."""
        want = SYNCHRONOUS if durable else LAZY_SYNCHRONOUS
        if want != self._synchronous:
            conn.execute(f"PRAGMA synchronous={want}")
            self._synchronous = want

    # -- the last good copy -----------------------------------------------------------
    def backup(self) -> str | None:
        """Copy the committed state to ``<path>.backup`` (atomically); its path, or
        None when there is no state to copy."""
        from kvmnet.state.copies import write_copy
        if self._read_connection() is None:
            return None
        target = backup_path(self.path)
        write_copy(self.path, target)
        return target

    def restore(self, lock: Lock, command: str) -> StateSnapshot:
        """Replace the state by ``<path>.backup``; the snapshot restored.

        Needs the exclusive lock. The file it replaces (whatever it is) is kept as
        ``<path>.before-restore``. A history entry in the restored state says so.
        """
        from kvmnet.state.copies import replace_with_copy
        require_exclusive(lock, "restoring the state")
        source = backup_path(self.path)
        if not os.path.lexists(source):
            raise StateError(f"there is no backup {source} to restore (kvmnet writes it "
                             "after every successful apply, destroy, import and state rm)")
        copy = SqliteState(source, check=self._check)
        try:
            snap = copy.read()
            copy.history(1)
            quick = _quick_check(copy)
        except StateError as e:
            raise StateError(f"the backup {source} cannot be restored ({e}); the state "
                             "was left as it is") from None
        finally:
            copy.close()
        if quick != "ok" or not snap.exists:
            raise StateError(f"the backup {source} cannot be restored (it is damaged: "
                             f"{quick if quick != 'ok' else 'it holds no state'}); the "
                             "state was left as it is")
        self.close()
        replace_with_copy(source, self.path)
        with self.transaction() as w:
            w.add_history(restored_entry(command, snap, source))
        return snap

    # -- copies between backends (kvmnet state migrate) ---------------------------------
    def load_copy(self, snap: StateSnapshot, history: list[HistoryEntry],
                  intents: list[Intent]) -> None:
        """Fill this (empty) state with ``snap``, ``history`` and ``intents`` as they
        are: lineage, serial, IDs and times kept."""
        if self.read().exists:
            raise StateError(f"state {self.path} already exists; nothing was copied")
        with self.transaction() as w:
            conn = w._begin()
            conn.execute("UPDATE meta SET lineage = ?, serial = ?", (snap.lineage, snap.serial))
            w._lineage, w._serial = str(snap.lineage), snap.serial
            for r in snap.instances.values():
                conn.execute(
                    "INSERT INTO instances (address, type, name, key, provider, id, attrs, "
                    "private, dependencies, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (*instance_values(r), r.created_at, r.updated_at))
            for e in history:
                values = history_values(e.to_dict())
                conn.execute(f"INSERT INTO history ({', '.join(values)}) VALUES "
                             f"({', '.join('?' for _ in values)})", tuple(values.values()))
            if snap.outputs:
                replace_outputs(conn, dict(snap.outputs), frozenset(snap.sensitive_outputs))
            if intents:
                from kvmnet.state.intents import _CREATE as CREATE_INTENTS
                conn.execute(CREATE_INTENTS)
                for i in intents:
                    conn.execute("INSERT INTO intents (id, address, action, type, provider, "
                                 "identity, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 (i.id, i.address, i.action, i.type, i.provider,
                                  dumps(i.identity, "an intent"), i.created))

    # -- locking -----------------------------------------------------------------
    def lock(self, mode: str, command: str, timeout: float | None = 0) -> FileLock:
        return self._locks.lock(mode, command, timeout)

    def force_unlock(self, lock_id: str) -> LockHolder:
        return self._locks.force_unlock(lock_id)

    def locks(self) -> list[LockHolder]:
        return self._locks.locks()

    def close(self) -> None:
        for conn in (self._reader, self._write_conn):
            if conn is not None:
                conn.close()
        self._reader = self._write_conn = None
        self._upgraded = False
        self._checked.clear()

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


def _address_matches(address: str, rtype: str, name: str) -> bool:
    """``type.name`` or ``type.name[key]``, after any module path."""
    return matches_record(address, rtype, name)


def _open(path: str, doing: str, connect: Callable[[], sqlite3.Connection],
          prepare: Callable[[sqlite3.Connection], T]) -> tuple[sqlite3.Connection, T]:
    """``connect()``, then ``prepare`` the connection, with umask 077 (SQLite may
    create the -shm/-wal side files); on failure the connection is closed, and an
    SQLite error is one line saying it could not ``doing``."""
    old = os.umask(0o077)
    conn = None
    try:
        conn = connect()
        return conn, prepare(conn)
    except (sqlite3.Error, StateError) as e:
        if conn is not None:
            conn.close()
        if isinstance(e, StateError):
            raise
        raise sqlite_error(doing, path, e) from None
    finally:
        os.umask(old)


def _identify(conn: sqlite3.Connection, path: str) -> bool:
    """True: the file is a kvmnet state (with kvmnet's application_id, or an older
    kvmnet's without it); False: an SQLite file with no tables yet. Anything else
    is a foreign file, refused rather than read as empty."""
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if app_id == APPLICATION_ID:
        if not TABLES <= tables:
            raise StateError(f"state {path} is damaged: its tables "
                             f"{', '.join(sorted(TABLES - tables))} are missing; "
                             f"{restore_hint(path)}")
        return True
    if app_id == 0 and not tables:
        return False
    if app_id == 0 and TABLES <= tables:
        return True                       # written by a kvmnet before application_id
    what = (f"application_id {app_id:#x}" if app_id
            else "tables " + ", ".join(sorted(tables)))
    raise StateError(f"state {path} is an SQLite database of another program ({what}), "
                     "not a kvmnet state; it was not read or changed: point --state at "
                     "the kvmnet state file")


def _quick_check(state: SqliteState) -> str:
    conn = state._read_connection()
    if conn is None:
        return "it holds no state"
    try:
        rows = conn.execute("PRAGMA quick_check").fetchall()
    except sqlite3.Error as e:
        return str(e)
    return "; ".join(str(r[0]) for r in rows[:3])


def _upgrade(conn: sqlite3.Connection) -> None:
    """Bring a file written by an older kvmnet up to date, inside the write
    transaction: kvmnet's application_id, history columns added since, format 1's
    status spellings. A file of a newer format is left alone (refused next)."""
    rows = conn.execute("SELECT format_version FROM meta").fetchall()
    if rows and type(rows[0][0]) is int and rows[0][0] > FORMAT_VERSION:
        return
    if conn.execute("PRAGMA application_id").fetchone()[0] != APPLICATION_ID:
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    present = {r[1] for r in conn.execute("PRAGMA table_info(history)")}
    for name, decl in HISTORY_ADDED_COLUMNS:
        if name not in present:
            conn.execute(f"ALTER TABLE history ADD COLUMN {name} {decl}")
    if rows and rows[0][0] == 1:
        for old, new in FORMAT_1_STATUSES.items():
            conn.execute("UPDATE history SET status = ? WHERE status = ?", (new, old))
        conn.execute("UPDATE meta SET format_version = ?", (FORMAT_VERSION,))


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
             "snapshot": str, "host": str, "pid": int, "summary": str,
             "boot_id": str, "pid_start": int},
            pk="id", if_not_exists=True)
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")


class SqliteWriter(StoreWriter):
    """One ``BEGIN IMMEDIATE`` … ``COMMIT`` (see :class:`StoreWriter`)."""

    def __init__(self, state: SqliteState) -> None:
        super().__init__()
        self._state = state

    @property
    def changed(self) -> bool:
        return self._changed

    def _begin(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        if self._committed:
            raise StateError("this state transaction is already finished")
        conn = self._state._write_connection()
        try:
            self._state._set_synchronous(conn, self._durable)
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise sqlite_error("write state", self._state.path, e) from None
        self._conn = conn
        if not self._state._upgraded:
            _upgrade(conn)
            self._state._upgraded = True
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
        row = instance_values(record)
        old = conn.execute("SELECT created_at FROM instances WHERE address = ?",
                           (record.address,)).fetchone()
        now = now_iso()
        created = old[0] if old is not None else (record.created_at or now)
        conn.execute(
            "INSERT OR REPLACE INTO instances (address, type, name, key, provider, id, "
            "attrs, private, dependencies, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*row, created, now))
        self._changed = True
        return stored(record, sorted(record.dependencies), created, now)

    def remove(self, address: str) -> bool:
        conn = self._begin()
        gone = conn.execute("DELETE FROM instances WHERE address = ?",
                            (address,)).rowcount > 0
        self._changed = self._changed or gone
        return gone

    # -- history -----------------------------------------------------------------
    def add_history(self, entry: HistoryEntry) -> int:
        conn = self._begin()
        values = history_values({k: v for k, v in entry.to_dict().items() if k != "id"})
        cols = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        cur = conn.execute(f"INSERT INTO history ({cols}) VALUES ({marks})",
                           tuple(values.values()))
        assert cur.lastrowid is not None      # set by the INSERT
        return int(cur.lastrowid)

    def _set_history(self, entry_id: int, values: dict[str, Any]) -> bool:
        sets = ", ".join(f"{c} = ?" for c in values)
        return self._begin().execute(f"UPDATE history SET {sets} WHERE id = ?",
                                     (*values.values(), entry_id)).rowcount > 0

    # -- outputs (see kvmnet.state.outputs) -----------------------------------------
    def set_outputs(self, values: dict[str, Any], sensitive: frozenset[str] = frozenset()) -> None:
        conn = self._begin()
        try:
            if replace_outputs(conn, values, frozenset(sensitive)):
                self._changed = True
        except ValueError as e:
            raise StateError(f"cannot write the outputs to state {self._state.path}: {e}") from None

    # -- intents (see kvmnet.state.intents) -----------------------------------------
    def close_intent(self, intent_id: int) -> bool:
        return delete_intent(self._begin(), intent_id)

    # -- end -------------------------------------------------------------------------
    def _finish(self, conn: sqlite3.Connection, bump: bool) -> None:
        if bump:
            conn.execute("UPDATE meta SET serial = serial + 1")
        conn.commit()

    def _abort(self, conn: sqlite3.Connection) -> None:
        """SQLite has already rolled back after some errors (e.g. a full disk)."""
        try:
            conn.rollback()
        except sqlite3.Error:
            return
