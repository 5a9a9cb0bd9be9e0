"""Running things inside a named network namespace (``ip netns`` names).

Shared by every host-level provider: a subprocess argument list prefixed with
``nsenter --net=/run/netns/NAME`` (never a shell), and a thread that has entered the
namespace for code that must run there (reading and writing /proc/sys). Both
give up after a timeout (``providers/timeouts.py``): kvmnet holds the state lock
while it waits.
"""
from __future__ import annotations

import ctypes
import os
import subprocess
import threading
from typing import Callable, TypeVar

from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.timeouts import DEFAULT, describe

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


def timed_out(argv: list[str], timeout: float) -> ProviderError:
    """The error for a command that did not finish within ``timeout``."""
    return ProviderError(f"{' '.join(argv[:3])}: no answer within {describe(timeout)} "
                         "(timeout; the command was killed)")


def run(netns: str | None, argv: list[str], *, input: str | None = None,
        check: bool = True, timeout: float = DEFAULT) -> subprocess.CompletedProcess:
    """Run a command (argument list, no shell) inside ``netns``; text in and out.
    A command still running after ``timeout`` seconds is killed."""
    try:
        cp = subprocess.run(command(netns, argv), input=input, capture_output=True, text=True,
                            timeout=timeout)
    except FileNotFoundError as e:
        raise ProviderError(f"{argv[0]}: command not found") from e
    except subprocess.TimeoutExpired:
        raise timed_out(argv, timeout) from None
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


def call_in(netns: str | None, fn: Callable[[], T], *, timeout: float = DEFAULT,
            what: str = "a call") -> T:
    """Call ``fn`` in a thread that has entered ``netns`` (setns is per thread);
    give up after ``timeout`` seconds (the thread is abandoned, not waited for)."""
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
    return in_thread(runner, timeout, f"{what} in network namespace {netns}")


def in_thread(fn: Callable[[], T], timeout: float, what: str) -> T:
    """``fn()`` in a daemon thread, its result or exception; a ProviderError naming
    ``what`` when it has not returned within ``timeout`` seconds."""
    box: dict = {}
    done = threading.Event()

    def target():
        try:
            box["value"] = fn()
        except BaseException as e:   # handed to the caller, re-raised there
            box["error"] = e
        finally:
            done.set()

    threading.Thread(target=target, name="kvmnet-timed", daemon=True).start()
    if not done.wait(timeout):
        raise ProviderError(f"{what}: no answer within {describe(timeout)} (timeout)")
    if "error" in box:
        raise box["error"]
    return box["value"]
