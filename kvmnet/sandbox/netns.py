"""Throw-away network namespaces and veth pairs for tests (iproute2 argument lists)."""
from __future__ import annotations

import os
import subprocess
import uuid
from contextlib import contextmanager


def sh(*argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    """Run a command (argument list, no shell)."""
    cp = subprocess.run(list(argv), capture_output=True, text=True, input=input)
    if check and cp.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {cp.stderr.strip() or cp.stdout.strip()}")
    return cp


def in_ns(ns: str, *argv: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", ns, *argv, check=check, input=input)


def unique_name(prefix: str = "kvt") -> str:
    """A short unique namespace name (tests run in parallel sessions too)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_netns(name: str) -> str:
    sh("ip", "netns", "add", name)
    sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
    return name


def delete_netns(name: str) -> None:
    # kill anything still running in it, then delete it
    cp = sh("ip", "netns", "pids", name, check=False)
    for pid in cp.stdout.split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
    sh("ip", "netns", "del", name, check=False)


@contextmanager
def netns(prefix: str = "kvt"):
    """A fresh network namespace (lo up), deleted afterwards whatever happens."""
    name = create_netns(unique_name(prefix))
    try:
        yield name
    finally:
        delete_netns(name)


def add_veth(ns: str, a: str, b: str, *, peer_ns: str | None = None, up: bool = True) -> None:
    """A veth pair ``a``/``b`` inside ``ns`` (``b`` moved to ``peer_ns`` if given)."""
    in_ns(ns, "ip", "link", "add", a, "type", "veth", "peer", "name", b)
    if peer_ns:
        in_ns(ns, "ip", "link", "set", b, "netns", peer_ns)
    if up:
        in_ns(ns, "ip", "link", "set", a, "up")
        if peer_ns:
            in_ns(peer_ns, "ip", "link", "set", b, "up")
        else:
            in_ns(ns, "ip", "link", "set", b, "up")


def kernel_has_8021q() -> bool:
    """Whether this kernel can create 802.1Q vlan links (tried in a scratch namespace)."""
    with netns("kvq") as ns:
        in_ns(ns, "ip", "link", "add", "d0", "type", "dummy", check=False)
        cp = in_ns(ns, "ip", "link", "add", "link", "d0", "name", "d0.5", "type", "vlan", "id", "5", check=False)
        return cp.returncode == 0
