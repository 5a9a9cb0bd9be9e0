"""A per-user cache directory for data derived from files (parsed HCL, grammar tables).

The cache lives in ``$XDG_CACHE_HOME/kvmnet`` (default ``~/.cache/kvmnet``). It
holds plain data written with :mod:`marshal`, never pickle, and is trusted only
when nobody else can write it: every directory on the way from ``kvmnet`` down is
created ``0700``, and a directory or entry owned by another user, group- or
world-writable, or a symlink is ignored (the cache is then simply not used).
Every failure to read or write is a cache miss: the cache can make a run faster,
never make it fail.
"""
from __future__ import annotations

import marshal
import os
import stat
from pathlib import Path


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kvmnet"


def _trusted(st: os.stat_result, kind: int, owners: tuple[int, ...] = ()) -> bool:
    """Owned by us (or one of ``owners``), of the expected kind, and writable by
    nobody else."""
    return (stat.S_IFMT(st.st_mode) == kind and st.st_uid in (os.geteuid(), *owners)
            and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def _private_dir(path: Path) -> bool:
    """``path`` exists (created 0700 if missing) and is a trusted directory."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        return _trusted(os.lstat(path), stat.S_IFDIR)
    except OSError:
        return False


def cache_dir(section: str) -> Path | None:
    """``<root>/<section>``, or None when it cannot be made or is not trusted."""
    root = cache_root()
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not _private_dir(root):
        return None
    d = root / section
    return d if _private_dir(d) else None


def load(section: str, key: str):
    """The value stored under ``key``, or None (missing, untrusted, unreadable)."""
    d = cache_dir(section)
    return None if d is None else load_file(d / key)


def load_file(path: Path, owners: tuple[int, ...] = ()):
    """The value in the file ``path`` if it and its directory are trusted (owned by
    us or one of ``owners``, writable by nobody else); else None."""
    try:
        if not _trusted(os.lstat(path.parent), stat.S_IFDIR, owners):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not _trusted(os.fstat(fd), stat.S_IFREG, owners):
            return None
        with os.fdopen(fd, "rb") as f:
            fd = -1
            return marshal.loads(f.read())   # marshal.load(f) reads in small pieces: 8× slower
    except (OSError, EOFError, ValueError, TypeError):
        return None
    finally:
        if fd >= 0:
            os.close(fd)


def store(section: str, key: str, value) -> None:
    """Store plain data (what :mod:`marshal` can write) under ``key``; best effort."""
    d = cache_dir(section)
    if d is not None:
        store_file(d / key, value)


def store_file(path: Path, value) -> bool:
    """Write plain data to ``path`` (atomically, mode 0600); False when it cannot."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(marshal.dumps(value))
        os.replace(tmp, path)
        return True
    except (OSError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return False
