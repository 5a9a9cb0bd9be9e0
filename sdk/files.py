"""Replacing a file atomically: readers see the old contents or the new, never a part.

The one copy of the temp-file-and-rename dance that providers' files (sysctl.d, netplan),
``kvmnet fmt``, the metrics textfile and the confirm files all need.
"""
from __future__ import annotations

import os
import tempfile


def atomic_write(path: str | os.PathLike, data: str | bytes, mode: int = 0o644) -> None:
    """Replace (or create) ``path`` with ``data`` (``str`` is written as UTF-8).

    The data goes to a temp file in the same directory (``.<name>.XXXXXX.tmp``: never
    matched by ``*.conf``, ``*.yaml`` or ``*.prom`` globs), is fsynced and given
    ``mode`` (exactly, whatever the umask), then renamed over ``path``; the directory
    is fsynced last so the rename itself is durable. On any error the temp file is
    removed and ``path`` is left as it was. The directory must exist.
    """
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(directory)


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
