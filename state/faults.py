"""What can be wrong with a state file, found before SQLite touches it, and how an
OS or SQLite error on it becomes one line saying what is wrong and what to do.

Everything here raises :class:`StateError` with a one-line message; the CLI prints
it as ``Error: …`` and exits 1. Nothing here writes anything.
"""
from __future__ import annotations

import errno
import os
import sqlite3
import stat
import time

from kvmnet.state.backend import StateError

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_SIZE = 100

# what a path may be, as far as the state store is concerned
MISSING = "missing"       # no file: a new state
EMPTY = "empty"           # a 0-byte file: a new state (SQLite's own "empty database")
DATABASE = "database"     # a regular file with a plausible SQLite header

_NOT_A_FILE = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO (named pipe)",
               stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
               stat.S_IFSOCK: "a socket"}


def backup_path(path: str) -> str:
    """Where the last good copy of the state ``path`` is kept."""
    return path + ".backup"


def has_backup(path: str) -> bool:
    return os.path.isfile(backup_path(path))


def restore_hint(path: str) -> str:
    """How to get a good state back: the backup if there is one."""
    if path.endswith(".backup"):
        return "this copy cannot be used"
    if has_backup(path):
        return (f"run 'kvmnet state restore' to bring back the last good copy "
                f"({backup_path(path)})")
    return (f"no backup ({backup_path(path)}) exists to restore: move the file away "
            "and import the objects again (kvmnet import)")


def os_hint(err: OSError, path: str) -> str:
    """What an operator can do about ``err`` on ``path``."""
    code = err.errno
    if code == errno.EROFS:
        return f"the file system holding {path} is mounted read-only: remount it read-write"
    if code in (errno.EPERM, errno.EACCES):
        return (f"permission denied: check that {path} and its directory are writable "
                f"by this user and not immutable (lsattr; chattr -i)")
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk holding {path} is full: free space there and run the command again"
    if code in (errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENXIO):
        return f"something that is not a regular file is in the way: move {path} away"
    return "check the file and its file system, then run the command again"


def os_error(doing: str, path: str, err: OSError) -> StateError:
    return StateError(f"cannot {doing} {path}: {err.strerror or err}; {os_hint(err, path)}")


def inspect_path(path: str) -> str:
    """MISSING, EMPTY or DATABASE; raises StateError for anything else.

    Only ``stat`` and a non-blocking read of the first 100 bytes: a FIFO or a
    device in the state's place is named, never opened in a way that blocks.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return MISSING
    except OSError as e:
        raise os_error("look at state", path, e) from None
    kind = _NOT_A_FILE.get(stat.S_IFMT(st.st_mode))
    if kind is not None:
        then = f"; then {restore_hint(path)}" if has_backup(path) else ""
        raise StateError(f"state {path} is {kind}, not a state file: move it away or "
                         f"point --state at the state file{then}")
    for side in (path + "-wal", path + "-shm", path + "-journal"):
        side_kind = _not_a_file(side)
        if side_kind:
            raise StateError(f"{side}, beside state {path}, is {side_kind}, not a file "
                             "SQLite wrote: move it away")
    if st.st_size == 0:
        return EMPTY
    header = _read_header(path)
    if len(header) < HEADER_SIZE or not header.startswith(SQLITE_MAGIC):
        raise StateError(f"state {path} is not a kvmnet state (not an SQLite database); "
                         + (f"{restore_hint(path)}, or point --state at the right file"
                            if not path.endswith(".backup") else "this copy cannot be used"))
    truncated = _truncated(path, header, st.st_size)
    if truncated:
        truncated = _still_truncated(path)
    if truncated:
        raise StateError(f"state {path} is truncated ({truncated}); {restore_hint(path)}")
    return DATABASE


def _still_truncated(path: str, looks: int = 5, pause: float = 0.02) -> str:
    """:func:`_truncated` once more, a few times: another connection's checkpoint
    writes page 1 (the new size) before the pages that extend the file, and then
    removes the log, so one look that straddles it sees a short file and no log. A
    file that really is short stays short."""
    why = ""
    for _ in range(looks):
        time.sleep(pause)
        header = _read_header(path)
        try:
            size = os.stat(path).st_size
        except OSError as e:
            raise os_error("look at state", path, e) from None
        why = _truncated(path, header, size)
        if not why:
            return ""
    return why


def _not_a_file(path: str) -> str | None:
    """What sits at ``path`` when it is neither missing nor a regular file."""
    try:
        return _NOT_A_FILE.get(stat.S_IFMT(os.lstat(path).st_mode))
    except OSError:
        return None


def _read_header(path: str) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as e:
        raise os_error("read state", path, e) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):   # replaced since the stat
            raise StateError(f"state {path} is not a regular file: move it away")
        return os.pread(fd, HEADER_SIZE, 0)
    except OSError as e:
        raise os_error("read state", path, e) from None
    finally:
        os.close(fd)


def _truncated(path: str, header: bytes, size: int) -> str:
    """Why the file is shorter than its header says, or "" when it is not.

    Only decided when no write-ahead log is pending: a checkpoint cut short may
    leave the main file short until the log is replayed, which SQLite does itself.
    """
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return f"its header names an impossible page size {page_size}"
    wal = path + "-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        return ""
    if size % page_size:
        return f"{size} bytes is not a whole number of {page_size}-byte pages"
    pages = int.from_bytes(header[28:32], "big")
    counter_valid = header[24:28] == header[92:96]
    if counter_valid and pages and size < pages * page_size:
        return f"{size} bytes of {pages * page_size}"
    return ""


def sqlite_error(doing: str, path: str, err: sqlite3.Error) -> StateError:
    """One line for an error SQLite reported while ``doing`` something to ``path``."""
    code = getattr(err, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(err)
    if primary == sqlite3.SQLITE_FULL or "disk is full" in text:
        return StateError(f"cannot {doing} {path}: the disk is full; free space on the file "
                          "system holding it and run the command again (what was written "
                          "before is kept)")
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB) \
            or "malformed" in text or "not a database" in text:
        return StateError(f"state {path} is damaged ({text}); {restore_hint(path)}")
    if primary == sqlite3.SQLITE_READONLY or "readonly" in text:
        return StateError(f"cannot {doing} {path}: it is read-only ({text}); make it "
                          "writable (remount the file system read-write, chattr -i), "
                          "then run the command again")
    if primary == sqlite3.SQLITE_BUSY:
        return StateError(f"cannot {doing} {path}: another process keeps it busy ({text}); "
                          "run the command again when it has finished")
    if primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_IOERR,
                   sqlite3.SQLITE_AUTH):
        return StateError(f"cannot {doing} {path}: {text}; check that the file and its "
                          "directory are readable and writable, the file system is mounted "
                          "read-write and not full")
    return StateError(f"cannot {doing} {path}: {text}")
