"""The PostgreSQL state's lock: row leases, not session advisory locks.

A holder is one row of ``locks`` (workspace, holder, mode, fencing token from the
``lock_tokens`` sequence, expiry). Taking a lease is one transaction that, under a
transaction-scoped advisory lock on the workspace, deletes expired rows (and rows
of holders on this host whose process is gone), checks that no remaining row
conflicts, and inserts its own row. Nothing lives in the session, so it works
behind a connection pooler and survives a reconnect.

The holder renews its lease from a background thread every third of its length;
each try gets only the time the lease has left, and a holder that cannot renew
marks its lease lost before the lease ends. Once lost, every state access of this
process for the workspace raises :class:`LeaseLost` without contacting the server.
Every state write checks, in its own transaction, that its lease's row with its
token is still there and unexpired (``fence``, ``check_fence``), so a holder that was paused
past its lease and lost it to another run can never write again.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import Any, Callable

from kvmnet.state.backend import EXCLUSIVE, SHARED, Lock, LockError, LockHolder, check_mode
from kvmnet.state.liveness import boot_id, process_alive, process_start
from kvmnet.state.pg_conn import connect, first_line, where
from kvmnet.state.records import now_iso

LEASE_SECONDS = 30.0
POLL_INTERVAL = 0.2
MARGIN = 0.1            # of the lease: kept free for the run to stop once it is lost
_COLUMNS = "id, mode, host, pid, started, command, boot_id, pid_start"

# The exclusive leases this process holds, by (conninfo, schema, workspace): every
# PgState of that workspace in this process writes under it (a confirm waiter opens
# its own backend after adopting its parent's lease).
_HELD: dict[tuple[str, str, str], PgLease] = {}


def held_lease(key: tuple[str, str, str]) -> PgLease | None:
    lease = _HELD.get(key)
    return lease if lease is not None and lease.pid == os.getpid() else None


def _holder(row: tuple[Any, ...]) -> LockHolder:
    return LockHolder(id=row[0], mode=row[1], host=row[2], pid=int(row[3]), started=row[4],
                      command=row[5], boot_id=row[6], pid_start=int(row[7]))


class LeaseLost(LockError):
    """This process's lease is gone (not renewed in time, expired, taken over or
    force-unlocked): the run must stop; nothing more of it may be written."""


class PgLease(Lock):
    """One held lease; renewed in the background until released or lost."""

    def __init__(self, manager: PgLeaseManager, holder: LockHolder, token: int,
                 stale: list[LockHolder], taken_at: float) -> None:
        """``taken_at``: the monotonic time before the lease's row was written, so
        the lease never ends later here than on the server."""
        self._manager = manager
        self.holder = holder
        self.token = token
        self.stale = stale
        self.pid = os.getpid()
        self.lost = ""                     # why the lease was lost, or ""
        # called (from the renewing thread) once the lease is lost, before it ends:
        # the CLI stops its run there (SIGTERM to itself: steps in progress finish)
        self.on_lost: Callable[[str], None] | None = None
        self._held = True
        self._losing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._expires_at = taken_at + manager.lease_seconds
        if holder.mode == EXCLUSIVE:
            _HELD[manager.key] = self
        self._start_renewing()

    @property
    def held(self) -> bool:
        return self._held and not self.lost

    def _start_renewing(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, name="kvmnet-lease",
                                        daemon=True)
        self._thread.start()

    def _stop_renewing(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._thread = None

    def _renew_loop(self) -> None:
        """Renew every third of the lease. A try gets the time left until ``end``
        (the lease's end less a margin for the run to stop); when a try fails and
        the next one would come after ``end``, the lease is lost now."""
        lease = self._manager.lease_seconds
        every, margin = lease / 3, lease * MARGIN
        while not self._stop.wait(every):
            started = time.monotonic()
            end = self._expires_at - margin
            if started >= end:                         # paused (SIGSTOP) past it
                self._lose("its lease ran out before it could be renewed")
                return
            try:
                renewed = self._try_renew(end - started)
            except Exception as e:      # noqa: BLE001 - any failure to renew counts the same
                if time.monotonic() + every >= end:    # no later try would be in time
                    self._lose(f"could not renew the lease ({first_line(e)})")
                    return
                continue
            if renewed is None:
                self._lose("the server did not answer the renewal before the lease would end")
                return
            if not renewed:
                self._lose("its lease expired or was force-unlocked")
                return
            self._expires_at = started + lease

    def _try_renew(self, budget: float) -> bool | None:
        """One renewal, given at most ``budget`` seconds (a server that does not
        answer must not hold the holder past its lease): None when it took longer."""
        out: list[Any] = []
        deadline = time.monotonic() + budget

        def attempt() -> None:
            try:
                out.append(self._manager._renew(self, deadline))
            except Exception as e:      # noqa: BLE001 - handed to the renewing thread
                out.append(e)
        t = threading.Thread(target=attempt, name="kvmnet-lease-try", daemon=True)
        t.start()
        t.join(max(0.0, budget))
        if not out:
            return None
        if isinstance(out[0], Exception):
            raise out[0]
        return bool(out[0])

    def _lose(self, why: str) -> None:
        """Mark the lease lost (the first reason found is kept) and tell ``on_lost``
        once."""
        with self._losing:
            if self.lost:
                return
            self.lost = why
        if self.on_lost is not None and self._held:
            self.on_lost(why)

    def check_alive(self) -> None:
        """Raise LeaseLost when this process can no longer count on the lease."""
        if not self.lost and time.monotonic() >= self._expires_at:
            self._lose("its lease ran out before it could be renewed")
        if self.lost:
            raise LeaseLost(f"the state lock {self.holder.id} was lost: {self.lost}; "
                            "nothing more was written: run the command again")

    def release(self) -> None:
        """Delete the lease's row; a lost lease's row is left to expire (it is gone
        already, or the server cannot be reached)."""
        if not self._held:
            return
        self._held = False
        self._stop_renewing()
        if _HELD.get(self._manager.key) is self:
            del _HELD[self._manager.key]
        if not self.lost:
            self._manager._delete(self.holder.id, self.token)

    def adopt(self) -> None:
        """In a forked child that takes the lease over (the confirm waiter): the row
        names this process, and this process renews it."""
        self.pid = os.getpid()
        self.holder.pid = self.pid
        self.holder.pid_start = process_start(self.pid) or 0
        self._manager._rename(self)
        if self.holder.mode == EXCLUSIVE:
            _HELD[self._manager.key] = self
        self._start_renewing()

    def detach(self) -> None:
        """Forget the lease in this process without releasing it (see :meth:`adopt`)."""
        self._held = False
        self._stop_renewing()
        if _HELD.get(self._manager.key) is self:
            del _HELD[self._manager.key]


class PgLeaseManager:
    """Takes, lists and clears the leases of one workspace."""

    def __init__(self, conninfo: str, schema: str, workspace: str,
                 lease_seconds: float = LEASE_SECONDS) -> None:
        self.conninfo = conninfo
        self.schema = schema
        self.workspace = workspace
        self.lease_seconds = float(lease_seconds)
        self.key = (conninfo, schema, workspace)
        self.ensure_schema: Any = None      # set by PgState: creates the tables once
        self._t = f'"{schema}".locks'

    def _xact_lock(self, conn: Any) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))",
                     (f"kvmnet state {self.schema} {self.workspace}",))

    def lock(self, mode: str, command: str, timeout: float | None = 0) -> PgLease:
        check_mode(mode)
        if self.ensure_schema is not None:
            self.ensure_schema()
        start = time.monotonic()
        deadline = None if timeout is None else start + max(0.0, timeout)
        holder = LockHolder(id=str(uuid.uuid4()), mode=mode, host=socket.gethostname(),
                            pid=os.getpid(), started=now_iso(), command=command,
                            boot_id=boot_id(), pid_start=process_start(os.getpid()) or 0)
        while True:
            taken_at = time.monotonic()
            got = self._try(holder)
            if isinstance(got, tuple):
                token, stale = got
                return PgLease(self, holder, token, stale, taken_at)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise LockError(_conflict_message(got, now - start))
            time.sleep(POLL_INTERVAL if deadline is None else
                       max(0.001, min(POLL_INTERVAL, deadline - now)))

    def _try(self, holder: LockHolder) -> tuple[int, list[LockHolder]] | list[LockHolder]:
        """(token, stale holders cleared) when taken, else the blocking holders."""
        with _session(self.conninfo, "take the state lock") as conn, conn.transaction():
            self._xact_lock(conn)
            expired = [_holder(r) for r in conn.execute(
                f"DELETE FROM {self._t} WHERE workspace = %s AND expires <= clock_timestamp() "
                f"RETURNING {_COLUMNS}", (self.workspace,)).fetchall()]
            rows = [_holder(r) for r in conn.execute(
                f"SELECT {_COLUMNS} FROM {self._t} WHERE workspace = %s ORDER BY started",
                (self.workspace,)).fetchall()]
            dead = [h for h in rows
                    if process_alive(h.host, h.pid, h.boot_id, h.pid_start) is False]
            if dead:
                conn.execute(f"DELETE FROM {self._t} WHERE id = ANY(%s)", ([h.id for h in dead],))
            live = [h for h in rows if h not in dead]
            blocking = [h for h in live if holder.mode == EXCLUSIVE or h.mode == EXCLUSIVE]
            if blocking:
                return blocking
            token = conn.execute(
                f"INSERT INTO {self._t} (id, workspace, mode, host, pid, started, command, "
                "boot_id, pid_start, token, expires) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, "
                f"nextval('\"{self.schema}\".lock_tokens'), clock_timestamp() + "
                "make_interval(secs => %s)) RETURNING token",
                (holder.id, self.workspace, holder.mode, holder.host, holder.pid,
                 holder.started, holder.command, holder.boot_id, holder.pid_start,
                 self.lease_seconds)).fetchone()[0]
            return int(token), expired + dead

    def _renew(self, lease: PgLease, deadline: float) -> bool:
        """Extend ``lease`` unless it expired; the server gives up on the update
        before ``deadline`` (monotonic), so a renewal the holder stopped waiting for
        never lands later."""
        with _session(self.conninfo, "renew the state lock") as conn, conn.transaction():
            left_ms = int((deadline - time.monotonic()) * 800)
            if left_ms < 1:
                raise LockError("no time left to renew the lease")
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (f"{left_ms}ms",))
            cur = conn.execute(
                f"UPDATE {self._t} SET expires = clock_timestamp() + make_interval(secs => %s) "
                "WHERE id = %s AND token = %s AND expires > clock_timestamp()",
                (self.lease_seconds, lease.holder.id, lease.token))
            return cur.rowcount == 1

    def _rename(self, lease: PgLease) -> None:
        with _session(self.conninfo, "hand over the state lock") as conn:
            conn.execute(f"UPDATE {self._t} SET pid = %s, pid_start = %s, command = %s "
                         "WHERE id = %s AND token = %s",
                         (lease.holder.pid, lease.holder.pid_start, lease.holder.command,
                          lease.holder.id, lease.token))

    def _delete(self, lock_id: str, token: int) -> None:
        try:
            with _session(self.conninfo, "release the state lock") as conn:
                conn.execute(f"DELETE FROM {self._t} WHERE id = %s AND token = %s",
                             (lock_id, token))
        except LockError:
            return      # unreachable server: the lease simply expires

    def xact_lock_sql(self) -> Any:
        """:meth:`_xact_lock` as a statement with its key inlined (a
        ``psycopg.sql.Literal``), for a message of several statements."""
        from psycopg import sql
        return sql.SQL("SELECT pg_advisory_xact_lock(hashtext({}))").format(
            sql.Literal(f"kvmnet state {self.schema} {self.workspace}"))

    def fence(self) -> Any:
        """A state write transaction's fence: after the transaction lock (which keeps
        every lease where it is until the transaction ends, so a later statement
        sees them as they stay), a scalar subquery selecting the unexpired exclusive
        holders as one JSON array, for :meth:`check_fence` before anything of the
        transaction is committed. The writer folds it into the statement that locks
        the workspace's row, so it costs no round trip of its own."""
        from psycopg import sql
        return sql.SQL(
            f"(SELECT coalesce(json_agg(json_build_array({_COLUMNS}, token)), '[]') "
            f"FROM {self._t} WHERE workspace = {{}} AND mode = {{}} AND expires > "
            "clock_timestamp())").format(sql.Literal(self.workspace), sql.Literal(EXCLUSIVE))

    def fence_holds(self) -> Any:
        """The fence as a condition for the server to check itself, in a statement
        that must write nothing when it does not hold (its caller counts the rows
        written, and finds out why by the plain path). LeaseLost at once when this
        process knows its lease is gone."""
        from psycopg import sql
        live = (f"SELECT 1 FROM {self._t} WHERE workspace = {{ws}} AND mode = {{mode}} "
                "AND expires > clock_timestamp()")
        mine = held_lease(self.key)
        values = {"ws": sql.Literal(self.workspace), "mode": sql.Literal(EXCLUSIVE)}
        if mine is None:
            return sql.SQL(f"NOT EXISTS ({live})").format(**values)
        mine.check_alive()
        return sql.SQL(f"EXISTS ({live} AND id = {{id}} AND token = {{token}})").format(
            id=sql.Literal(mine.holder.id), token=sql.Literal(mine.token), **values)

    def check_fence(self, rows: list[tuple[Any, ...]]) -> None:
        """Refuse the write (``rows``: what :meth:`fence` selected) unless this
        process holds the workspace's unexpired exclusive lease, checked by token,
        or nobody does."""
        mine = held_lease(self.key)
        if mine is not None:
            mine.check_alive()
            if not any(r[0] == mine.holder.id and int(r[8]) == mine.token for r in rows):
                mine._lose("its lease expired or was force-unlocked, and another run may "
                           "hold the state now; this write was refused")
                mine.check_alive()
            return
        if rows:
            raise LockError("state is locked by " + "; ".join(
                _holder(r).describe() for r in rows) + "; this write was refused")

    def locks(self) -> list[LockHolder]:
        if self.ensure_schema is not None:
            self.ensure_schema()
        with _session(self.conninfo, "list the state locks") as conn:
            rows = conn.execute(f"SELECT {_COLUMNS}, expires > clock_timestamp() FROM {self._t} "
                                "WHERE workspace = %s ORDER BY started",
                                (self.workspace,)).fetchall()
        out = []
        for r in rows:
            h = _holder(r)
            h.alive = False if not r[8] else process_alive(h.host, h.pid, h.boot_id, h.pid_start)
            out.append(h)
        return out

    def force_unlock(self, lock_id: str) -> LockHolder:
        for h in self.locks():
            if h.id != lock_id:
                continue
            if h.alive is True:
                raise LockError(f"lock {lock_id} is held by {h.describe()}, a live process on "
                                "this host; it was not unlocked")
            with _session(self.conninfo, "force-unlock the state lock") as conn:
                conn.execute(f"DELETE FROM {self._t} WHERE id = %s", (lock_id,))
                return h
        known = ", ".join(h.id for h in self.locks())
        raise LockError(f"no lock {lock_id} on this state; "
                        + (f"current lock IDs: {known}" if known else "no lock is held"))


class _session:
    """A short-lived connection for one lease operation; errors are LockError lines."""

    def __init__(self, conninfo: str, doing: str) -> None:
        self.conninfo, self.doing = conninfo, doing
        self.conn: Any = None

    def __enter__(self) -> Any:
        from kvmnet.state.backend import StateError
        try:
            self.conn = connect(self.conninfo, autocommit=True)
        except StateError as e:
            raise LockError(f"cannot {self.doing}: {e}") from None
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        import psycopg
        try:
            self.conn.close()
        finally:
            if isinstance(exc, psycopg.Error):
                raise LockError(f"cannot {self.doing} in {where(self.conninfo)}: "
                                f"{first_line(exc)}") from None


def _conflict_message(blocking: list[LockHolder], waited: float) -> str:
    who = "; ".join(h.describe() for h in blocking)
    hint = ("wait for it to finish, or retry with --lock-timeout SECONDS; a holder that "
            "died frees the lock when its lease expires (or: kvmnet force-unlock ID)")
    return f"state is locked by {who} (gave up after {waited:.1f} s)\n{hint}"


__all__ = ["LeaseLost", "PgLease", "PgLeaseManager", "LEASE_SECONDS", "SHARED", "EXCLUSIVE", "held_lease"]
