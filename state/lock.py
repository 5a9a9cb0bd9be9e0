"""The state lock for file-based state: ``flock`` on a side file plus holder records.

Two things next to the state file ``S``:

* ``S.lock`` — an empty file (mode 0600) that is only ever ``flock``-ed: shared for
  plan, exclusive for apply. The kernel releases a process's flock when it dies, so
  a crashed run never leaves the state locked. The file is never deleted (deleting
  a lock file races with processes that have it open).
* ``S.lock.d/`` — one JSON record per holder (``<lock ID>.json``: mode, host, pid,
  start time, command line), written after the flock is taken and removed before
  it is released. Records are what error messages and ``force-unlock`` speak of;
  the flock is what actually excludes. A record whose process is gone is *stale*:
  the next lock taker reports and removes it.

Nothing here touches the state file, so a plan (shared lock) never changes it.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
import uuid

from kvmnet.state.backend import (
    EXCLUSIVE, SHARED, Lock, LockError, LockHolder, check_mode,
)
from kvmnet.state.faults import os_hint
from kvmnet.state.liveness import boot_id as _boot_id
from kvmnet.state.liveness import process_alive
from kvmnet.state.liveness import process_start as _process_start
from kvmnet.state.records import now_iso

POLL_INTERVAL = 0.05      # seconds between tries while waiting for a lock
RECORD_SUFFIX = ".json"


def holder_alive(holder: LockHolder, host: str | None = None,
                 boot_id: str | None = None) -> bool | None:
    """True: a live process on this host; False: gone; None: another host."""
    return process_alive(holder.host, holder.pid, holder.boot_id, holder.pid_start,
                         this_host=host, this_boot=boot_id)


class FileLock(Lock):
    """A flock held on ``S.lock`` together with its holder record."""

    def __init__(self, manager: FileLockManager, fd: int, holder: LockHolder,
                 stale: list[LockHolder]) -> None:
        self._manager = manager
        self._fd: int | None = fd
        self.holder = holder
        self.stale = stale

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            self._manager._remove_record(self.holder.id)
        finally:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def adopt(self) -> None:
        """Rewrite the holder record for the calling process.

        For a run that hands its lock to a forked child (the confirm-or-revert
        waiter, which outlives the terminal): the child inherits the flock with the
        file descriptor and calls this so the record names it, not its parent. The
        parent then calls :meth:`detach`, never :meth:`release`.
        """
        self.holder.pid = os.getpid()
        self.holder.pid_start = _process_start(self.holder.pid) or 0
        self._manager._write_record(self.holder)

    def detach(self) -> None:
        """Forget the lock in this process without releasing it (see :meth:`adopt`)."""
        if self._fd is not None:
            os.close(self._fd)    # the flock stays while another descriptor holds it
            self._fd = None


class FileLockManager:
    """Takes, lists and clears locks of the state file ``state_path``."""

    def __init__(self, state_path: str | os.PathLike) -> None:
        self.state_path = os.fspath(state_path)
        self.lock_path = self.state_path + ".lock"
        self.records_dir = self.state_path + ".lock.d"

    # -- taking a lock ----------------------------------------------------------
    def lock(self, mode: str, command: str, timeout: float | None = 0) -> FileLock:
        check_mode(mode)
        fd = self._open_lock_file()
        op = (fcntl.LOCK_SH if mode == SHARED else fcntl.LOCK_EX) | fcntl.LOCK_NB
        started_waiting = time.monotonic()
        deadline = None if timeout is None else started_waiting + max(0.0, timeout)
        while True:
            try:
                fcntl.flock(fd, op)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                    os.close(fd)
                    raise
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                os.close(fd)
                raise LockError(self._conflict_message(mode, now - started_waiting))
            wait = POLL_INTERVAL if deadline is None else min(POLL_INTERVAL, deadline - now)
            time.sleep(max(wait, 0.001))
        try:
            stale = self._sweep(exclusive=(mode == EXCLUSIVE))
            holder = LockHolder(
                id=str(uuid.uuid4()), mode=mode, host=socket.gethostname(),
                pid=os.getpid(), started=now_iso(), command=command,
                boot_id=_boot_id(), pid_start=_process_start(os.getpid()) or 0,
            )
            self._write_record(holder)
        except BaseException:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise
        return FileLock(self, fd, holder, stale)

    # -- looking and clearing ----------------------------------------------------
    def locks(self) -> list[LockHolder]:
        host, boot = socket.gethostname(), _boot_id()
        holders = self._read_records()
        for h in holders:
            h.alive = holder_alive(h, host, boot)
        return holders

    def force_unlock(self, lock_id: str) -> LockHolder:
        holders = self.locks()
        for h in holders:
            if h.id == lock_id:
                break
        else:
            known = ", ".join(h.id for h in holders)
            raise LockError(f"no lock with ID {lock_id}; "
                            + (f"current lock IDs: {known}" if known else "no lock is held"))
        if h.alive:
            raise LockError(
                f"lock {lock_id} is held by {h.describe()}, a live process on this "
                "host; a live holder is never overridden: wait for it to finish or "
                "stop that process")
        self._remove_record(lock_id)
        return h

    # -- internals -----------------------------------------------------------------
    def _open_lock_file(self) -> int:
        old = os.umask(0o077)
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
                         | os.O_NONBLOCK | os.O_NOCTTY, 0o600)
        except FileNotFoundError:
            raise LockError(f"cannot lock {self.state_path}: directory "
                            f"{os.path.dirname(self.lock_path) or '.'} does not exist") from None
        except OSError as e:
            raise self._os_error(f"open the lock file {self.lock_path}", e) from None
        finally:
            os.umask(old)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise LockError(f"cannot lock {self.state_path}: {self.lock_path} is not a "
                            "regular file: move it away (kvmnet creates it again)")
        return fd

    def _os_error(self, doing: str, err: OSError, path: str | None = None) -> LockError:
        return LockError(f"cannot lock {self.state_path}: cannot {doing}: "
                         f"{err.strerror or err}; {os_hint(err, path or self.state_path)}")

    def _sweep(self, exclusive: bool) -> list[LockHolder]:
        """Clear records of holders that no longer hold the lock; return them.

        Under the exclusive flock nobody else can hold it, so every record left is
        stale (its process died, or lost its descriptor). Under a shared flock only
        records of processes known dead are.
        """
        host, boot = socket.gethostname(), _boot_id()
        stale = []
        for h in self._read_records():
            h.alive = holder_alive(h, host, boot)
            if h.alive is False or exclusive:
                stale.append(h)
                self._remove_record(h.id)
        if exclusive:
            for leftover in self._dir_entries():
                if leftover.startswith("."):     # temp file of a write cut short
                    _unlink(os.path.join(self.records_dir, leftover))
        return stale

    def _conflict_message(self, mode: str, waited: float) -> str:
        host, boot = socket.gethostname(), _boot_id()
        holders = self._read_records()
        for h in holders:
            h.alive = holder_alive(h, host, boot)
        # Only holders that can block us are named: for a shared request, the
        # exclusive ones (and any when none is recorded as exclusive).
        blocking = [h for h in holders if h.alive is not False]
        if mode == SHARED and any(h.mode == EXCLUSIVE for h in blocking):
            blocking = [h for h in blocking if h.mode == EXCLUSIVE]
        wait = (f"gave up after {waited:.1f} s" if waited >= 0.05 else "did not wait")
        if not blocking:
            return (f"state is locked by a process that left no holder record "
                    f"(a run that is just starting, or a child of a run that died); "
                    f"{wait}; retry with --lock-timeout SECONDS")
        lines = ["state is locked by " + "; ".join(h.describe() for h in blocking)
                 + f" ({wait})"]
        remote = [h for h in blocking if h.alive is None]
        if remote:
            lines.append("if that run is gone, clear its lock with: "
                         + "; ".join(f"kvmnet force-unlock {h.id}" for h in remote))
        if len(remote) < len(blocking):
            lines.append("wait for it to finish, or retry with --lock-timeout SECONDS")
        return "\n".join(lines)

    def _dir_entries(self) -> list[str]:
        try:
            return os.listdir(self.records_dir)
        except FileNotFoundError:
            return []
        except OSError as e:
            raise self._os_error(f"read the lock holder records in {self.records_dir}",
                                 e, self.records_dir) from None

    def _read_records(self) -> list[LockHolder]:
        holders = []
        for name in sorted(self._dir_entries()):
            if name.startswith(".") or not name.endswith(RECORD_SUFFIX):
                continue
            try:
                holders.append(LockHolder.from_dict(json.loads(
                    _read_small(os.path.join(self.records_dir, name)))))
            except (OSError, ValueError, KeyError, TypeError):
                continue           # removed meanwhile, or not ours
        holders.sort(key=lambda h: h.started)
        return holders

    def _write_record(self, holder: LockHolder) -> None:
        old = os.umask(0o077)
        tmp = os.path.join(self.records_dir, f".{holder.id}.{os.getpid()}.tmp")
        try:
            os.makedirs(self.records_dir, mode=0o700, exist_ok=True)
            final = os.path.join(self.records_dir, holder.id + RECORD_SUFFIX)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(holder.to_dict(), f)
            os.replace(tmp, final)
        except OSError as e:
            _unlink_quietly(tmp)
            raise self._os_error(f"write the lock holder record in {self.records_dir}",
                                 e, self.records_dir) from None
        finally:
            os.umask(old)

    def _remove_record(self, lock_id: str) -> None:
        try:
            _unlink(os.path.join(self.records_dir, lock_id + RECORD_SUFFIX))
        except OSError as e:
            raise self._os_error(f"remove a lock holder record in {self.records_dir}",
                                 e, self.records_dir) from None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _unlink_quietly(path: str) -> None:
    """Remove a temp file after a failed write; the write's error is the one reported."""
    try:
        os.unlink(path)
    except OSError:
        return


def _read_small(path: str, limit: int = 65536) -> bytes:
    """A holder record's bytes; never blocks on a FIFO, never reads a huge file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        return os.read(fd, limit)
    finally:
        os.close(fd)
