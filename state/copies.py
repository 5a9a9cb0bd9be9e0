"""Whole-file copies of a SQLite state: the last good copy (``<state>.backup``)
and putting it back (``kvmnet state restore``).

Both go through SQLite's online backup API (a consistent copy of the committed
state, whatever sits in the write-ahead log) into a temporary file beside the
target, which is fsynced and renamed into place, and the directory fsynced: a
crash leaves either the old file or the new one, never a partial copy.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Iterator

from kvmnet.state.backend import StateError
from kvmnet.state.faults import os_error, sqlite_error

BEFORE_RESTORE = ".before-restore"     # where restore keeps the file it replaced
SIDE_FILES = ("-wal", "-shm", "-journal")


def write_copy(source: str, target: str) -> None:
    """Copy the SQLite state ``source`` to ``target`` atomically (a one-file copy in
    rollback-journal mode, mode 0600)."""
    with _temp_beside(target) as tmp:
        src = dst = None
        try:
            src = sqlite3.connect(Path(source).absolute().as_uri() + "?mode=ro", uri=True)
            dst = sqlite3.connect(tmp)
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")   # one self-contained file
        except sqlite3.Error as e:
            raise sqlite_error("copy state to", target, e) from None
        finally:
            for conn in (dst, src):
                if conn is not None:
                    conn.close()
        _fsync_file(tmp)
        try:
            os.replace(tmp, target)
        except OSError as e:
            raise os_error("write", target, e) from None
    _fsync_dir(target)


def replace_with_copy(source: str, target: str) -> None:
    """Put a copy of ``source`` in place of the state ``target``. Whatever was at
    ``target`` (a damaged file, a directory, …) is moved to ``target.before-restore``
    together with its SQLite side files, so nothing is lost."""
    with _temp_beside(target) as tmp:
        write_copy(source, tmp)
        kept = target + BEFORE_RESTORE
        _move_aside(target, kept)
        try:
            os.replace(tmp, target)
        except OSError as e:
            raise os_error("restore state", target, e) from None
    _fsync_dir(target)


def _move_aside(target: str, kept: str) -> None:
    if not os.path.lexists(target):
        return
    try:
        for suffix in ("", *SIDE_FILES):           # an older kept copy goes first
            if os.path.lexists(kept + suffix) and not os.path.isdir(kept + suffix):
                os.unlink(kept + suffix)
        os.rename(target, kept)
        for suffix in SIDE_FILES:                  # they belong to the file moved
            if os.path.lexists(target + suffix):
                os.rename(target + suffix, kept + suffix)
    except OSError as e:
        raise os_error("move aside the state", target, e) from None


@contextlib.contextmanager
def _temp_beside(target: str) -> Iterator[str]:
    """A fresh temporary path next to ``target`` (mode 0600), removed unless used."""
    tmp = f"{target}.tmp-{os.getpid()}"
    old = os.umask(0o077)
    try:
        _remove(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.close(fd)
    except OSError as e:
        raise os_error("write", tmp, e) from None
    finally:
        os.umask(old)
    try:
        yield tmp
    finally:
        _remove(tmp)


def _remove(path: str) -> None:
    for suffix in ("", *SIDE_FILES):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise os_error("remove", path + suffix, e) from None


def _fsync_file(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise os_error("write", path, e) from None


def _fsync_dir(path: str) -> None:
    try:
        fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        raise os_error("write", os.path.dirname(path), e) from None


__all__ = ["write_copy", "replace_with_copy", "BEFORE_RESTORE", "StateError"]
