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


def remove_leftovers(path: str | os.PathLike) -> None:
    """Remove temp files that an :func:`atomic_write` of ``path`` killed mid-write
    left behind. Only for a caller that alone writes ``path`` (a provider under the
    state's exclusive lock), so no temp file can belong to a write in progress."""
    path = os.fspath(path)
    directory = os.path.dirname(path) or "."
    prefix = f".{os.path.basename(path)}."
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith(prefix) and name.endswith(".tmp"):
            try:
                os.unlink(os.path.join(directory, name))
            except FileNotFoundError:
                pass


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
