"""The PostgreSQL state backend: a host's state as one workspace of a shared schema,
one row per resource instance (tables in :mod:`kvmnet.state.pg_schema`), locks as
row leases (:mod:`kvmnet.state.pg_lease`).

Every write is one PostgreSQL transaction that first checks the writer's lease by
its fencing token and locks the workspace's row (serialising writers), and bumps
``serial`` at commit when it put or removed an instance. A read is one
``REPEATABLE READ READ ONLY`` transaction, the instances assembled by the server
into one JSON text. A connection lost before a transaction wrote anything is
re-established (retried for a while: a server restart); lost later, the server has
rolled the transaction back and the run stops with one line.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import uuid
from typing import Any, Callable, TypeVar

from kvmnet.gcpause import gc_paused
from kvmnet.state.backend import Lock, LockHolder, RowCheck, StateError
from kvmnet.state.intents import Intent
from kvmnet.state.pg_conn import connect_retrying, is_connection_lost, pg_error, where
from kvmnet.state.pg_lease import LEASE_SECONDS, PgLease, PgLeaseManager, held_lease
from kvmnet.state.pg_schema import FORMAT_VERSION, TABLES, ddl, identity_problem, schema_name_problem
from kvmnet.state.records import (
    FINAL_STATUSES, HISTORY_FIELDS, HISTORY_JSON_FIELDS, HistoryEntry, InstanceRecord, StateSnapshot,
    now_iso, row_problem,
)
from kvmnet.state.store import (
    Store, StoreWriter, dumps, history_values, instance_values, require_exclusive,
    restored_entry, stored,
)

T = TypeVar("T")

_INSTANCE_ARRAY = ("json_build_array(address, type, name, key, provider, id, attrs, private, "
                   "dependencies, created_at, updated_at)")
_INSTANCE_COLUMNS = ("address, type, name, key, provider, id, attrs, private, dependencies, "
                     "created_at, updated_at")


class PgState(Store):
    """The state of ``workspace`` in schema ``schema`` of the database ``conninfo``
    names. ``check``: see :data:`RowCheck`."""

    def __init__(self, conninfo: str, workspace: str, schema: str = "kvmnet",
                 check: RowCheck | None = None, lease_seconds: float = LEASE_SECONDS) -> None:
        problem = schema_name_problem(schema)
        if problem:
            raise StateError(problem)
        if not workspace:
            raise StateError("the PostgreSQL state needs a workspace name")
        self.conninfo = conninfo
        self.workspace = workspace
        self.schema = schema
        self.path = f"{where(conninfo)} schema {schema} workspace {workspace}"
        self._s = f'"{schema}"'
        self._init_store(check)
        self._conns: dict[str, Any] = {}   # "read" / "write": reads never share a writer's transaction
        self._complete = False          # every table there
        self._ready = False             # schema identified (and created, for writers)
        self._seen = False              # the workspace's row was there: see PgWriter._execute
        self._leases = PgLeaseManager(conninfo, schema, workspace, lease_seconds)
        self._leases.ensure_schema = self._ensure_schema

    def __repr__(self) -> str:
        return f"PgState({self.path!r})"

    # -- connections ---------------------------------------------------------------
    def _connection(self, role: str = "write") -> Any:
        """This backend's connection for ``role``. A run whose lease on this
        workspace is lost gets LeaseLost here, for a read too: it must stop, and
        must not wait for a server that may be gone."""
        lease = held_lease(self._leases.key)
        if lease is not None:
            lease.check_alive()
        conn = self._conns.get(role)
        if conn is None or conn.closed:
            conn = self._conns[role] = connect_retrying(self.conninfo)
            conn.autocommit = True
        return conn

    def _drop_connection(self, role: str | None = None) -> None:
        for r in [role] if role else list(self._conns):
            conn = self._conns.pop(r, None)
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _identity(self, conn: Any) -> bool:
        """True when the schema holds a kvmnet state's tables, False when it holds
        none; a foreign or newer schema is a StateError."""
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (self.schema,)).fetchall()}
        identity: list[tuple[str, int]] = []
        if "kvmnet_schema" in tables:
            identity = [(r[0], int(r[1])) for r in conn.execute(
                f"SELECT app, format_version FROM {self._s}.kvmnet_schema").fetchall()]
        problem = identity_problem(tables, identity, self.schema)
        if problem:
            raise StateError(problem)
        self._complete = set(TABLES) <= tables
        return bool(tables)

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        conn = self._connection()
        try:
            with conn.transaction():
                self._identity(conn)
                if not self._complete:     # the DDL only when something is missing
                    conn.execute("SELECT pg_advisory_xact_lock(hashtext('kvmnet state schema'))")
                    conn.execute(ddl(self.schema))
        except StateError:
            raise
        except Exception as e:
            self._drop_connection("write")
            raise pg_error("create the state's tables", self.conninfo, e) from None
        self._ready = True

    def _read(self, doing: str, fn: Callable[[Any], T], empty: T) -> T:
        """``fn(conn)`` in one read-only snapshot transaction; ``empty`` when there is
        no state schema yet. A lost connection is retried once (reading twice
        changes nothing)."""
        for attempt in (1, 2):
            conn = self._connection("read")
            try:
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    if not self._ready and not self._identity(conn):
                        return empty
                    return fn(conn)
            except StateError:
                raise
            except Exception as e:
                self._drop_connection("read")
                if attempt == 2 or not is_connection_lost(e):
                    raise pg_error(doing, self.conninfo, e) from None
        raise AssertionError("unreachable")

    # -- reading ---------------------------------------------------------------------
    def read(self) -> StateSnapshot:
        def fetch(conn: Any) -> Any:
            meta = conn.execute(f"SELECT lineage, serial FROM {self._s}.workspaces "
                                "WHERE workspace = %s", (self.workspace,)).fetchone()
            if meta is None:
                return None
            text = conn.execute(
                f"SELECT coalesce(json_agg({_INSTANCE_ARRAY})::text, '[]') FROM "
                f"{self._s}.instances WHERE workspace = %s", (self.workspace,)).fetchone()[0]
            outs = conn.execute(f"SELECT name, value, sensitive FROM {self._s}.outputs "
                                "WHERE workspace = %s ORDER BY name", (self.workspace,)).fetchall()
            return meta, text, outs
        got = self._read("read the state", fetch, None)
        if got is None:
            return StateSnapshot()
        meta, text, outs = got
        instances = self._decode(text)
        if self._check is not None:
            self._check_rows(instances)
        return StateSnapshot(lineage=meta[0], serial=int(meta[1]), instances=instances,
                             exists=True, outputs={r[0]: r[1] for r in outs},
                             sensitive_outputs=frozenset(r[0] for r in outs if r[2]))

    def _decode(self, text: str) -> dict[str, InstanceRecord]:
        with gc_paused():
            instances = {}
            for row in json.loads(text):
                problem = row_problem(row)
                if problem:
                    who = row[0] if isinstance(row, list) and row else "?"
                    raise StateError(f"state {self.path} is damaged: in the row of {who!r}, "
                                     f"{problem}; {self._restore_hint()}")
                instances[row[0]] = InstanceRecord(*row)
        return instances

    def _restore_hint(self) -> str:
        return ("run 'kvmnet state restore' to bring back the last good copy (kept in "
                f"{self.schema}.backup_instances)")

    def _history(self, limit: int | None = None, only_open: bool = False) -> list[HistoryEntry]:
        sql = (f"SELECT {', '.join(HISTORY_FIELDS)} FROM {self._s}.history "
               "WHERE workspace = %s")
        params: list[Any] = [self.workspace]
        if only_open:
            sql += " AND (status IS NULL OR NOT status = ANY(%s))"
            params.append(list(FINAL_STATUSES))
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(int(limit))
        rows: list[Any] = self._read("read the state's history",
                          lambda conn: conn.execute(sql, params).fetchall(), [])
        out = []
        for row in rows:
            values = dict(zip(HISTORY_FIELDS, row, strict=True))
            for name in HISTORY_JSON_FIELDS:
                if values[name] is None:
                    values[name] = [] if name == "changes" else {}
            values["boot_id"] = values["boot_id"] or ""
            values["pid_start"] = values["pid_start"] or 0
            out.append(HistoryEntry(**values))
        return out

    def _cannot_finish(self, e: HistoryEntry) -> str:
        """Under this process's exclusive lease, no other process can ever write
        again (its lease is gone, and the fencing token refuses it), so the entry of
        another live process is left unfinished too."""
        gone = super()._cannot_finish(e)
        if gone or (e.host == socket.gethostname() and e.pid == os.getpid()):
            return gone
        return (f"its run (pid {e.pid} on {e.host}) lost the state lock before it ended, "
                "and can no longer write")

    def open_intents(self) -> list[Intent]:
        rows: list[Any] = self._read("read the state's intents", lambda conn: conn.execute(
            f"SELECT id, address, action, type, provider, identity, created FROM "
            f"{self._s}.intents WHERE workspace = %s ORDER BY id",
            (self.workspace,)).fetchall(), [])
        return [Intent(r[1], r[2], r[3], r[4], r[5], int(r[0]), r[6]) for r in rows]

    # -- writing ---------------------------------------------------------------------
    def _writer(self) -> PgWriter:
        return PgWriter(self)

    def _write_error(self, error: BaseException, committing: bool) -> StateError | None:
        if isinstance(error, StateError) or not isinstance(error, Exception):
            return None
        if committing:
            self._drop_connection("write")
            return pg_error("write the state", self.conninfo, error)
        import psycopg
        if isinstance(error, psycopg.Error):
            return pg_error("write the state", self.conninfo, error)
        return None

    def record_intents(self, intents: list[Intent]) -> list[int]:
        if len(intents) == 1 and self._ready and self._seen and not self._in_transaction:
            got = self._record_intent_at_once(intents[0])
            if got is not None:
                return [got]
        with self.transaction() as w:
            now = now_iso()
            rows = [(self.workspace, self.workspace, it.address, it.action, it.type, it.provider,
                     dumps(it.identity, f"the intent of {it.address}"), now) for it in intents]
            return [int(w._execute(
                f"INSERT INTO {self._s}.intents (workspace, id, address, action, type, "
                f"provider, identity, created) VALUES (%s, {w._next_id('intents')}, %s, "
                "%s, %s, %s, %s, %s) RETURNING id", row).fetchone()[0]) for row in rows]

    def _record_intent_at_once(self, it: Intent) -> int | None:
        """One intent in one message, one round trip: ``BEGIN``, the workspace's
        transaction lock, an ``INSERT`` that writes only while the lease fence holds
        and the workspace's row is there in a format this kvmnet writes (checked by
        the server, in the insert itself), ``COMMIT``. Its id, or None when it wrote
        nothing (the fence, a missing row, any error: rolled back): then the plain
        path writes it or says why not."""
        from psycopg import sql
        s, lit = self._s, sql.Literal
        insert = sql.SQL(
            f"INSERT INTO {s}.intents (workspace, id, address, action, type, provider, "
            f"identity, created) SELECT {{ws}}, (SELECT coalesce(max(id), 0) + 1 FROM "
            f"{s}.intents WHERE workspace = {{ws}}), {{address}}, {{action}}, {{type}}, "
            f"{{provider}}, {{identity}}, {{created}} WHERE {{fence}} AND EXISTS (SELECT 1 "
            f"FROM {s}.workspaces WHERE workspace = {{ws}} AND format_version <= "
            f"{FORMAT_VERSION}) RETURNING id").format(
                ws=lit(self.workspace), address=lit(it.address), action=lit(it.action),
                type=lit(it.type), provider=lit(it.provider),
                identity=lit(dumps(it.identity, f"the intent of {it.address}")),
                created=lit(now_iso()), fence=self._leases.fence_holds())
        conn = self._connection()
        try:
            cur = conn.execute(sql.SQL("BEGIN; {}; {}; COMMIT").format(
                self._leases.xact_lock_sql(), insert))
            cur.nextset()
            cur.nextset()
            row = cur.fetchone()
        except Exception:      # noqa: BLE001 - the plain path reports it, or retries a lost connection
            try:
                conn.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - a lost connection rolled back already
                self._drop_connection("write")
            return None
        return None if row is None else int(row[0])

    # -- the last good copy ----------------------------------------------------------
    def backup(self) -> str | None:
        """Keep the committed instances, outputs, lineage and serial as the
        workspace's last good copy (rows of ``backup_meta`` / ``backup_instances``)."""
        exists = self._read("read the state", lambda conn: conn.execute(
            f"SELECT 1 FROM {self._s}.workspaces WHERE workspace = %s",
            (self.workspace,)).fetchone() is not None, False)
        if not exists:
            return None
        with self.transaction() as w:
            self._copy_rows(w._begin(), "instances", "backup")
        return f"{self.schema}.backup_instances (workspace {self.workspace})"

    def _copy_rows(self, conn: Any, source: str, kind: str) -> None:
        """Make the ``kind`` copy from the live rows (source "instances") or the
        live rows from the ``kind`` copy (source "backup_instances")."""
        s, ws = self._s, self.workspace
        if source == "instances":
            conn.execute(f"DELETE FROM {s}.backup_meta WHERE workspace = %s AND kind = %s",
                         (ws, kind))
            conn.execute(
                f"INSERT INTO {s}.backup_meta (workspace, kind, lineage, serial, outputs) "
                f"SELECT w.workspace, %s, w.lineage, w.serial, coalesce((SELECT json_agg("
                f"json_build_array(name, value, sensitive) ORDER BY name) FROM {s}.outputs o "
                f"WHERE o.workspace = w.workspace), '[]') FROM {s}.workspaces w "
                "WHERE w.workspace = %s", (kind, ws))
            conn.execute(
                f"INSERT INTO {s}.backup_instances (workspace, kind, {_INSTANCE_COLUMNS}) "
                f"SELECT workspace, %s, {_INSTANCE_COLUMNS} FROM {s}.instances "
                "WHERE workspace = %s", (kind, ws))
            return
        conn.execute(f"DELETE FROM {s}.instances WHERE workspace = %s", (ws,))
        conn.execute(f"DELETE FROM {s}.outputs WHERE workspace = %s", (ws,))
        conn.execute(
            f"INSERT INTO {s}.instances (workspace, {_INSTANCE_COLUMNS}) SELECT workspace, "
            f"{_INSTANCE_COLUMNS} FROM {s}.backup_instances WHERE workspace = %s AND kind = %s",
            (ws, kind))
        conn.execute(
            f"INSERT INTO {s}.outputs (workspace, name, value, sensitive) SELECT %s, "
            "e->>0, e->1, (e->>2)::boolean FROM " + s + ".backup_meta b, "
            "json_array_elements(b.outputs) e WHERE b.workspace = %s AND b.kind = %s",
            (ws, ws, kind))
        conn.execute(
            f"UPDATE {s}.workspaces w SET lineage = b.lineage, serial = b.serial FROM "
            f"{s}.backup_meta b WHERE w.workspace = %s AND b.workspace = w.workspace "
            "AND b.kind = %s", (ws, kind))

    def _backup_snapshot(self) -> StateSnapshot | None:
        def fetch(conn: Any) -> Any:
            meta = conn.execute(f"SELECT lineage, serial, outputs FROM {self._s}.backup_meta "
                                "WHERE workspace = %s AND kind = 'backup'",
                                (self.workspace,)).fetchone()
            if meta is None:
                return None
            return meta, conn.execute(
                f"SELECT coalesce(json_agg({_INSTANCE_ARRAY})::text, '[]') FROM "
                f"{self._s}.backup_instances WHERE workspace = %s AND kind = 'backup'",
                (self.workspace,)).fetchone()[0]
        got = self._read("read the state's backup", fetch, None)
        if got is None:
            return None
        meta, text = got
        instances = self._decode(text)
        if self._check is not None:
            self._check_rows(instances)
        outs = meta[2] or []
        return StateSnapshot(lineage=meta[0], serial=int(meta[1]), instances=instances,
                             exists=True, outputs={o[0]: o[1] for o in outs},
                             sensitive_outputs=frozenset(o[0] for o in outs if o[2]))

    def restore(self, lock: Lock, command: str) -> StateSnapshot:
        """Replace the workspace's rows by its last good copy; what it replaces is
        kept as the ``before-restore`` copy. A history entry says so."""
        require_exclusive(lock, "restoring the state")
        try:
            snap = self._backup_snapshot()
        except StateError as e:
            raise StateError(f"the backup of workspace {self.workspace} cannot be restored "
                             f"({e}); the state was left as it is") from None
        if snap is None:
            raise StateError(f"there is no backup of workspace {self.workspace} in schema "
                             f"{self.schema} to restore (kvmnet keeps it after every "
                             "successful apply, destroy, import and state rm)")
        with self.transaction() as w:
            conn = w._begin()
            self._copy_rows(conn, "instances", "before-restore")
            self._copy_rows(conn, "backup_instances", "backup")
            w._serial = snap.serial
            w.add_history(restored_entry(command, snap, "the backup rows"))
        self._checked.clear()
        return snap

    # -- copies between backends (kvmnet state migrate) ---------------------------------
    def load_copy(self, snap: StateSnapshot, history: list[HistoryEntry],
                  intents: list[Intent]) -> None:
        """Fill this (empty) workspace with ``snap``, ``history`` and ``intents`` as
        they are: lineage, serial, IDs and times kept."""
        with self.transaction() as w:
            conn = w._begin()
            if w._existed:
                raise StateError(f"workspace {self.workspace} in {self.path} already holds a "
                                 "state; nothing was copied")
            s, ws = self._s, self.workspace
            conn.execute(f"UPDATE {s}.workspaces SET lineage = %s, serial = %s "
                         "WHERE workspace = %s", (snap.lineage, snap.serial, ws))
            w._lineage, w._serial = str(snap.lineage), snap.serial
            with conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {s}.instances (workspace, {_INSTANCE_COLUMNS}) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [(ws, *_instance_row(r)) for r in snap.instances.values()])
                cur.executemany(
                    f"INSERT INTO {s}.outputs (workspace, name, value, sensitive) "
                    "VALUES (%s, %s, %s, %s)",
                    [(ws, n, dumps(v, f"output {n}"), n in snap.sensitive_outputs)
                     for n, v in sorted(snap.outputs.items())])
                cur.executemany(
                    f"INSERT INTO {s}.history (workspace, {', '.join(HISTORY_FIELDS)}) "
                    f"VALUES (%s, {', '.join('%s' for _ in HISTORY_FIELDS)})",
                    [(ws, *_history_row(e)) for e in history])
                cur.executemany(
                    f"INSERT INTO {s}.intents (workspace, id, address, action, type, provider, "
                    "identity, created) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    [(ws, i.id, i.address, i.action, i.type, i.provider,
                      dumps(i.identity, "an intent"), i.created) for i in intents])

    # -- locking -----------------------------------------------------------------------
    def lock(self, mode: str, command: str, timeout: float | None = 0) -> PgLease:
        return self._leases.lock(mode, command, timeout)

    def force_unlock(self, lock_id: str) -> LockHolder:
        return self._leases.force_unlock(lock_id)

    def locks(self) -> list[LockHolder]:
        return self._leases.locks()

    def close(self) -> None:
        self._drop_connection()
        self._ready = False
        self._checked.clear()


def _inline(text: str, params: tuple[Any, ...]) -> Any:
    """``text`` with its ``%s`` placeholders replaced by ``params`` as quoted
    ``sql.Literal``s (the server's own quoting rules, applied by libpq), for a
    message of several statements, which cannot carry parameters."""
    from psycopg import sql
    return sql.SQL(text.replace("%s", "{}")).format(*(sql.Literal(p) for p in params))


def _instance_row(r: InstanceRecord) -> tuple[Any, ...]:
    return (*instance_values(r), r.created_at or None, r.updated_at or None)


def _history_row(e: HistoryEntry) -> tuple[Any, ...]:
    values = history_values(e.to_dict())
    return tuple(values[f] for f in HISTORY_FIELDS)


class PgWriter(StoreWriter):
    """One PostgreSQL transaction (see :class:`StoreWriter`)."""

    def __init__(self, state: PgState) -> None:
        super().__init__()
        self._state = state
        self._existed = False

    def _begin(self) -> Any:
        if self._conn is not None:
            return self._conn
        self._start(None)
        return self._conn

    def _execute(self, text: str, params: tuple[Any, ...]) -> Any:
        """Run one statement of the transaction. The first one travels in the message
        that begins the transaction (one round trip less) once this backend has seen
        the workspace's row; when that message fails for another reason than a lost
        connection (the row was deleted since: the statement's foreign key fails),
        the plain path begins again and runs it alone."""
        if self._conn is None and self._state._ready and self._state._seen:
            cur = self._start(_inline(text, params))
            if cur is not None:
                return cur
        return self._begin().execute(text, params)

    def _start(self, first: Any) -> Any:
        """Begin the transaction (see :meth:`_open`), with ``first`` (a composed
        statement, or None) in the same message; ``first``'s cursor, or None when
        it was not run."""
        if self._committed:
            raise StateError("this state transaction is already finished")
        st = self._state
        lost = 0
        while True:
            try:
                st._ensure_schema()
                conn = st._connection()
                try:
                    row, cur = self._open(conn, first)
                except BaseException:
                    with contextlib.suppress(Exception):
                        conn.execute("ROLLBACK")
                    raise
                break
            except StateError:
                raise
            except Exception as e:
                if first is not None and not is_connection_lost(e):
                    first = None        # the plain path: the workspace's row first, or the error alone
                    continue
                st._drop_connection("write")
                st._ready = False
                lost += 1
                if lost == 2 or not is_connection_lost(e):
                    raise pg_error("write the state", st.conninfo, e) from None
        self._conn = conn
        st._seen = True         # there, or made by this transaction
        if row is None:
            self._lineage, self._serial = str(uuid.uuid4()), 0
            conn.execute(f"INSERT INTO {st._s}.workspaces (workspace, lineage, serial, "
                         "format_version) VALUES (%s, %s, 0, %s)",
                         (st.workspace, self._lineage, FORMAT_VERSION))
        else:
            if int(row[2]) > FORMAT_VERSION:
                raise StateError(f"state {st.path} was written by a newer kvmnet (format "
                                 f"{row[2]}): upgrade kvmnet to use it; nothing was changed")
            self._lineage, self._serial, self._existed = row[0], int(row[1]), True
        return cur

    def _open(self, conn: Any, first: Any = None) -> tuple[tuple[Any, ...] | None, Any]:
        """Begin the transaction on ``conn`` in one message (one round trip, one wait
        for the server): ``BEGIN``, the workspace's transaction lock, then one
        statement that locks the workspace's row and reads the lease fence (and,
        for a commit that need not be durable, turns ``synchronous_commit`` off for
        this transaction only), then ``first`` when given. The values are inlined as
        ``sql.Literal``s: a message of several statements takes no parameters.
        Nothing is committed before the fence is checked: the write is refused
        (and rolled back by the caller) unless it holds. The workspace's row
        (lineage, serial, format) or None, and ``first``'s cursor or None."""
        from psycopg import sql
        st = self._state
        leases = st._leases
        sync_off = "" if self._durable else ", set_config('synchronous_commit', 'off', true)"
        cur = conn.execute(sql.SQL(
            f"BEGIN; {{lock}}; SELECT lineage, serial, format_version, {{fence}}{sync_off} FROM "
            f"{st._s}.workspaces WHERE workspace = {{ws}} FOR UPDATE{{first}}").format(
                lock=leases.xact_lock_sql(), fence=leases.fence(), ws=sql.Literal(st.workspace),
                first=sql.SQL("; {}").format(first) if first is not None else sql.SQL("")))
        cur.nextset()
        cur.nextset()
        row = cur.fetchone()
        if row is None:       # a new workspace: no row to fold them into
            holders = conn.execute(sql.SQL("SELECT {}").format(leases.fence())).fetchone()[0]
            if sync_off:
                conn.execute("SET LOCAL synchronous_commit TO OFF")
        else:
            holders = row[3]
        leases.check_fence(holders)
        if first is not None:
            cur.nextset()
            return row, cur
        return row, None

    def _next_id(self, table: str) -> str:
        """The SQL of the workspace's next id in ``table`` (the workspace's row is
        locked, so no other writer takes it), computed by the insert itself."""
        return (f"(SELECT coalesce(max(id), 0) + 1 FROM {self._state._s}.{table} "
                "WHERE workspace = %s)")

    def put(self, record: InstanceRecord) -> InstanceRecord:
        return self._put(record, [])

    def settle(self, address: str, record: InstanceRecord | None, intent_ids: list[int]) -> None:
        """One statement: the intents are deleted by a data-modifying ``WITH``."""
        if record is None:
            st = self._state
            closing, params = self._closing(intent_ids)
            gone = self._execute(
                f"{closing}DELETE FROM {st._s}.instances WHERE workspace = %s AND address = %s",
                (*params, st.workspace, address)).rowcount > 0
            self._changed = self._changed or gone
        else:
            self._put(record, intent_ids)

    def _closing(self, intent_ids: list[int]) -> tuple[str, tuple[Any, ...]]:
        """The ``WITH`` that closes the intents of a :meth:`settle`, and its
        parameters (nothing when there are none)."""
        if not intent_ids:
            return "", ()
        return (f"WITH closed AS (DELETE FROM {self._state._s}.intents WHERE workspace = %s "
                "AND id = ANY(%s)) ", (self._state.workspace, [int(i) for i in intent_ids]))

    def _put(self, record: InstanceRecord, intent_ids: list[int]) -> InstanceRecord:
        st = self._state
        row = _instance_row(record)
        now = now_iso()
        closing, closing_params = self._closing(intent_ids)
        created = self._execute(
            f"{closing}INSERT INTO {st._s}.instances (workspace, {_INSTANCE_COLUMNS}) VALUES "
            "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (workspace, address) "
            "DO UPDATE SET type = EXCLUDED.type, name = EXCLUDED.name, key = EXCLUDED.key, "
            "provider = EXCLUDED.provider, id = EXCLUDED.id, attrs = EXCLUDED.attrs, "
            "private = EXCLUDED.private, dependencies = EXCLUDED.dependencies, "
            "updated_at = EXCLUDED.updated_at RETURNING created_at",
            (*closing_params, st.workspace, *row[:9], record.created_at or now, now)).fetchone()[0]
        self._changed = True
        return stored(record, sorted(record.dependencies), created, now)

    def remove(self, address: str) -> bool:
        st = self._state
        gone = self._begin().execute(
            f"DELETE FROM {st._s}.instances WHERE workspace = %s AND address = %s",
            (st.workspace, address)).rowcount > 0
        self._changed = self._changed or gone
        return gone

    def add_history(self, entry: HistoryEntry) -> int:
        st = self._state
        values = _history_row(entry)
        fields = [f for f in HISTORY_FIELDS if f != "id"]
        return int(self._begin().execute(
            f"INSERT INTO {st._s}.history (workspace, id, {', '.join(fields)}) VALUES "
            f"(%s, {self._next_id('history')}, {', '.join('%s' for _ in fields)}) RETURNING id",
            (st.workspace, st.workspace, *(v for f, v in zip(HISTORY_FIELDS, values, strict=True)
                                           if f != "id"))).fetchone()[0])

    def _set_history(self, entry_id: int, values: dict[str, Any]) -> bool:
        st = self._state
        sets = ", ".join(f"{c} = %s" for c in values)
        return self._begin().execute(
            f"UPDATE {st._s}.history SET {sets} WHERE workspace = %s AND id = %s",
            (*values.values(), st.workspace, entry_id)).rowcount > 0

    def set_outputs(self, values: dict[str, Any], sensitive: frozenset[str] = frozenset()) -> None:
        conn = self._begin()
        st = self._state
        rows = conn.execute(f"SELECT name, value, sensitive FROM {st._s}.outputs WHERE "
                            "workspace = %s", (st.workspace,)).fetchall()
        current = ({r[0]: r[1] for r in rows}, frozenset(r[0] for r in rows if r[2]))
        if current == (values, frozenset(sensitive)):
            return
        encoded = [(st.workspace, n, dumps(v, f"output {n}"), n in sensitive)
                   for n, v in sorted(values.items())]
        conn.execute(f"DELETE FROM {st._s}.outputs WHERE workspace = %s", (st.workspace,))
        with conn.cursor() as cur:
            cur.executemany(f"INSERT INTO {st._s}.outputs (workspace, name, value, sensitive) "
                            "VALUES (%s, %s, %s, %s)", encoded)
        self._changed = True

    def close_intent(self, intent_id: int) -> bool:
        st = self._state
        return self._begin().execute(
            f"DELETE FROM {st._s}.intents WHERE workspace = %s AND id = %s",
            (st.workspace, intent_id)).rowcount > 0

    def _finish(self, conn: Any, bump: bool) -> None:
        # not durable: synchronous_commit is off for this transaction (see _open), so
        # the commit returns before its WAL is flushed; a later durable commit flushes
        # it too (PostgreSQL's WAL is one sequence)
        if not bump:
            conn.execute("COMMIT")
            return
        from psycopg import sql
        st = self._state
        conn.execute(sql.SQL(f"UPDATE {st._s}.workspaces SET serial = serial + 1 WHERE "   # one message
                             "workspace = {}; COMMIT").format(sql.Literal(st.workspace)))

    def _abort(self, conn: Any) -> None:
        try:
            conn.execute("ROLLBACK")
        except Exception:      # noqa: BLE001 - a dead connection rolled back already
            self._state._drop_connection("write")
