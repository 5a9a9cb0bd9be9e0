"""Fixtures for tests against real components (root only; they skip otherwise).

- ``libvirt_sandbox`` (session): a real libvirtd in its own network namespace
  (:class:`kvmnet.sandbox.libvirtd.LibvirtSandbox`), started on first use and torn
  down at the end of the session.
- ``guest_image`` (session): the cached TCG guest (cloud kernel + busybox initramfs).
- ``libvirt`` (function): the sandbox, with every network and domain a test made
  destroyed and undefined afterwards (``sandbox.keep_domains`` / ``keep_networks``
  name the ones a module-scoped fixture shares between tests).
"""
from __future__ import annotations

import os
import shutil

import pytest


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root (a real libvirtd in a network namespace)")


@pytest.fixture(scope="session")
def libvirt_sandbox():
    _need_root()
    if not shutil.which("libvirtd"):
        pytest.skip("libvirtd is not installed (apt-get install libvirt-daemon)")
    from kvmnet.sandbox.libvirtd import LibvirtSandbox
    sb = LibvirtSandbox()
    sb.keep_domains = set()
    sb.keep_networks = set()
    sb.start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture(scope="session")
def guest_image():
    _need_root()
    for tool in ("qemu-system-x86_64", "busybox", "apt-get", "dpkg-deb"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (needed for the TCG guest)")
    from kvmnet.sandbox.guest import guest_image as build
    return build()


@pytest.fixture
def libvirt(libvirt_sandbox):
    """The session's sandbox, cleaned of what the test defined when it ends."""
    yield libvirt_sandbox
    libvirt_sandbox.clean(keep_domains=libvirt_sandbox.keep_domains,
                          keep_networks=libvirt_sandbox.keep_networks)
