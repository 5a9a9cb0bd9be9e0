"""Reading and writing /proc/sys, in the host's or a named network namespace.

/proc/sys/net shows the network namespace of the calling *thread*, so everything
here runs through :func:`kvmnet.providers.netns.call_in`, one thread per batch.
"""
from __future__ import annotations

import errno
import os

from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.netns import call_in
from kvmnet.providers.timeouts import DEFAULT
from kvmnet.providers.sysctl.keys import key_path


def missing(netns: str | None, keys, timeout: float = DEFAULT) -> list[str]:
    """The keys of ``keys`` that do not exist (in ``netns``)."""
    paths = {k: key_path(k) for k in keys}
    return call_in(netns, lambda: [k for k, p in paths.items() if not os.path.isfile(p)],
                   timeout=timeout, what="looking up sysctl keys")


def read_only(netns: str | None, keys, timeout: float = DEFAULT) -> list[str]:
    """The existing keys of ``keys`` that cannot be written (in ``netns``)."""
    paths = {k: key_path(k) for k in keys}
    return call_in(netns, lambda: [k for k, p in paths.items()
                                   if os.path.isfile(p) and not os.access(p, os.W_OK)],
                   timeout=timeout, what="looking up sysctl keys")


def read(netns: str | None, keys, timeout: float = DEFAULT) -> tuple[dict[str, str], dict[str, str]]:
    """Live values (whitespace normalised) and, for keys that could not be read, why
    (``unknown sysctl key "k"``, ``cannot read sysctl key "k": ...``)."""
    paths = {k: key_path(k) for k in keys}

    def read_all():
        values, problems = {}, {}
        for k, p in paths.items():
            try:
                with open(p, encoding="utf-8") as f:
                    values[k] = " ".join(f.read().split())
            except FileNotFoundError:
                problems[k] = f'unknown sysctl key "{k}"{_where(netns)}'
            except OSError as e:
                problems[k] = f'cannot read sysctl key "{k}"{_where(netns)}: {e.strerror}'
        return values, problems

    return call_in(netns, read_all, timeout=timeout, what="reading sysctls")


def write(netns: str | None, values: dict[str, str], timeout: float = DEFAULT) -> None:
    """Write each value (in order). The first failure raises ProviderError naming
    the key, the value and the reason; values written before it stay written."""
    paths = {k: key_path(k) for k in values}

    def write_all():
        for k, v in values.items():
            try:
                fd = os.open(paths[k], os.O_WRONLY)
                try:
                    os.write(fd, f"{v}\n".encode())
                finally:
                    os.close(fd)
            except OSError as e:
                raise ProviderError(f'cannot set sysctl "{k}" to "{v}": {_reason(e, netns)}') from None

    call_in(netns, write_all, timeout=timeout, what="writing sysctls")


def _where(netns: str | None) -> str:
    return f" in network namespace {netns}" if netns else ""


def _reason(e: OSError, netns: str | None) -> str:
    if e.errno == errno.ENOENT:
        return f"unknown sysctl key{_where(netns)}"
    if netns and e.errno in (errno.EACCES, errno.EPERM):
        return f"not writable inside network namespace {netns} (a host-wide key?): {e.strerror}"
    if e.errno == errno.EINVAL:
        hint = f", or not writable inside network namespace {netns}" if netns else ""
        return f"the kernel rejected the value{hint}: {e.strerror}"
    return e.strerror or str(e)
