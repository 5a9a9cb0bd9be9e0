"""The one place that imports libvirt-python (lazily: ``kvmnet validate`` never does).

Connections never wait forever on a daemon that stopped answering: the open runs in
a worker thread with a deadline, and every connection gets libvirt keepalive (which
needs a running event loop: :func:`event_loop`), so a call to a stuck daemon fails
with ``connection closed due to keepalive timeout`` after about the same time.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from functools import lru_cache

from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.netns import in_thread
from kvmnet.providers.timeouts import DEFAULT, describe


@lru_cache(maxsize=None)
def libvirt():
    """The ``libvirt`` module, with its default error printer silenced."""
    try:
        import libvirt as lv
    except ImportError as e:  # pragma: no cover - depends on the host
        raise ProviderError("libvirt-python is not installed (pip install libvirt-python)") from e
    lv.registerErrorHandler(lambda _ctx, _err: None, None)
    return lv


@contextmanager
def libvirt_error(what: str):
    """Turn a libvirtError into a ProviderError that says what was being done."""
    lv = libvirt()
    try:
        yield
    except lv.libvirtError as e:
        raise ProviderError(f"{what} failed: {e.get_error_message()}") from e


_loop_pid: int | None = None
_loop_lock = threading.Lock()


def lookup_network(conn, name: str):
    """The libvirt network ``name``, or None when there is none (other errors: ProviderError)."""
    lv = libvirt()
    try:
        return conn.networkLookupByName(name)
    except lv.libvirtError as e:
        if e.get_error_code() == lv.VIR_ERR_NO_NETWORK:
            return None
        raise ProviderError(f'network "{name}": {e.get_error_message()}') from e


def event_loop() -> None:
    """Register libvirt's default event loop and run it in a daemon thread, once per
    process (a forked child starts its own thread): keepalive depends on it."""
    global _loop_pid
    lv = libvirt()
    with _loop_lock:
        if _loop_pid == os.getpid():
            return
        if _loop_pid is None:
            lv.virEventRegisterDefaultImpl()

        def run():
            while True:
                lv.virEventRunDefaultImpl()

        threading.Thread(target=run, name="kvmnet-libvirt-events", daemon=True).start()
        _loop_pid = os.getpid()


def keepalive(timeout: float) -> tuple[int, int]:
    """(interval, count) for ``setKeepAlive``: libvirt gives up on a silent daemon
    after about interval × (count + 1) seconds, here ``timeout`` (at least 2 s)."""
    interval = max(1, min(5, round(timeout / 2)))
    count = max(1, round(timeout / interval) - 1)
    return interval, count


def open_connection(uri: str, timeout: float = DEFAULT):
    """A connection to ``uri`` with keepalive; a ProviderError when the daemon does
    not answer within ``timeout`` seconds (the stuck open is left to its thread,
    which closes the connection should it still come)."""
    lv = libvirt()
    event_loop()
    abandoned = threading.Event()

    def connect():
        conn = lv.open(uri)
        if abandoned.is_set():
            conn.close()
        return conn

    try:
        conn = in_thread(connect, timeout, f"libvirt at {uri}")
    except lv.libvirtError as e:
        raise ProviderError(f"cannot connect to libvirt at {uri}: {e.get_error_message()}") from e
    except ProviderError:
        abandoned.set()
        raise ProviderError(f"cannot connect to libvirt at {uri}: no answer within "
                            f"{describe(timeout)} (connect timeout)") from None
    try:
        conn.setKeepAlive(*keepalive(timeout))
    except lv.libvirtError as e:
        if e.get_error_code() != lv.VIR_ERR_NO_SUPPORT:   # a local driver (test:///) has none
            conn.close()
            raise ProviderError(f"libvirt at {uri}: cannot set keepalive: {e.get_error_message()}") from e
    return conn


def is_dead(conn) -> bool:
    """Whether ``conn`` was closed under us (keepalive timeout, daemon gone)."""
    lv = libvirt()
    try:
        return not conn.isAlive()
    except lv.libvirtError:
        return True


def names_listed(list_all, flag) -> set[str]:
    """Names of the objects a ``listAll*`` call returns with ``flag``."""
    return {o.name() for o in list_all(flag)}


def views_of(objects, make_view, gone_code: int) -> dict:
    """``{name: make_view(obj, name)}`` for every listed object, skipping one that
    disappeared between the listing and the read (libvirt error ``gone_code``)."""
    lv = libvirt()
    out = {}
    for obj in objects:
        name = obj.name()
        try:
            out[name] = make_view(obj, name)
        except lv.libvirtError as e:
            if e.get_error_code() == gone_code:
                continue
            raise
    return out
