"""Running things inside a named network namespace (``ip netns`` names).

Shared by every host-level provider: a subprocess argument list prefixed with
``nsenter --net=/run/netns/NAME`` (never a shell), and a thread that has entered the
namespace for code that must run there (reading and writing /proc/sys).
"""
from __future__ import annotations

import ctypes
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from kvmnet.sdk.provider import ProviderError

NETNS_DIR = "/run/netns"
T = TypeVar("T")


def netns_path(name: str) -> str:
    if not name or "/" in name or name in (".", ".."):
        raise ProviderError(f"invalid network namespace name {name!r}")
    path = os.path.join(NETNS_DIR, name)
    if not os.path.exists(path):
        raise ProviderError(f"network namespace {name!r} does not exist ({path})")
    return path


def command(netns: str | None, argv: list[str]) -> list[str]:
    """``argv`` to run inside ``netns`` (or as is when None)."""
    if not netns:
        return list(argv)
    return ["nsenter", f"--net={netns_path(netns)}", "--", *argv]


def run(netns: str | None, argv: list[str], *, input: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    """Run a command (argument list, no shell) inside ``netns``; text in and out."""
    try:
        cp = subprocess.run(command(netns, argv), input=input, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise ProviderError(f"{argv[0]}: command not found") from e
    if check and cp.returncode != 0:
        msg = (cp.stderr or cp.stdout).strip()
        raise ProviderError(f"{' '.join(argv[:3])} failed (exit {cp.returncode}): {msg}")
    return cp


_CLONE_NEWNET = getattr(os, "CLONE_NEWNET", 0x40000000)


def _setns(fd: int, nstype: int) -> None:
    """setns(2) for the calling thread (``os.setns`` exists only from Python 3.12)."""
    if hasattr(os, "setns"):
        os.setns(fd, nstype)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def call_in(netns: str | None, fn: Callable[[], T]) -> T:
    """Call ``fn`` in a thread that has entered ``netns`` (setns is per thread)."""
    if not netns:
        return fn()
    path = netns_path(netns)

    def runner():
        fd = os.open(path, os.O_RDONLY)
        try:
            _setns(fd, _CLONE_NEWNET)
        finally:
            os.close(fd)
        return fn()

    # a fresh thread each time: a thread that entered a namespace never goes back
    with ThreadPoolExecutor(max_workers=1) as ex:
        return ex.submit(runner).result()
