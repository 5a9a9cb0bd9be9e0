"""Kill points: named places around every side-effecting step where a test can
SIGKILL kvmnet, to prove that the next run converges whatever was interrupted.

Each module registers its points once, at import, under the provider (or engine
part) that owns them, and calls :func:`hit` at each one. Two environment
variables drive them (both unset in normal runs, where :func:`hit` is a dict
lookup and two ``os.environ.get``):

* ``KVMNET_KILL_LOG=FILE``: counting mode, every hit appends its name to FILE;
* ``KVMNET_KILL_AT=N`` (the N-th hit of any point) or ``NAME:N`` (the N-th hit of
  that point): SIGKILL this process there.
"""
from __future__ import annotations

import os
import signal

LOG_ENV = "KVMNET_KILL_LOG"
AT_ENV = "KVMNET_KILL_AT"

_REGISTRY: dict[str, str] = {}         # point name -> owner (provider name, "walk")
_hits: dict[str, int] = {}
_total = 0


def register(owner: str, *names: str) -> None:
    """Declare kill points ``names`` of ``owner``; a name belongs to one owner."""
    for name in names:
        if _REGISTRY.setdefault(name, owner) != owner:
            raise ValueError(f"kill point {name!r} is already registered by {_REGISTRY[name]!r}")


def points(owner: str | None = None) -> list[str]:
    """The registered kill points (of ``owner``), sorted."""
    return sorted(n for n, o in _REGISTRY.items() if owner is None or o == owner)


def owner_of(name: str) -> str:
    return _REGISTRY[name]


def parse_at(text: str) -> tuple[str | None, int]:
    """``"N"`` -> (None, N); ``"NAME:N"`` -> (NAME, N)."""
    name, sep, nth = text.rpartition(":")
    return (name if sep else None), int(nth)


def hit(name: str) -> None:
    """Pass kill point ``name``: log it, and SIGKILL here when told to."""
    global _total
    if name not in _REGISTRY:
        raise ValueError(f"unregistered kill point {name!r}")
    log, at = os.environ.get(LOG_ENV), os.environ.get(AT_ENV)
    if not log and not at:
        return
    _total += 1
    _hits[name] = _hits.get(name, 0) + 1
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, f"{name}\n".encode())
        finally:
            os.close(fd)
    if at:
        which, nth = parse_at(at)
        count = _total if which is None else _hits.get(which, 0) if which == name else -1
        if count == nth:
            os.kill(os.getpid(), signal.SIGKILL)
