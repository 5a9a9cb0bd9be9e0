"""The one place that imports libvirt-python (lazily: ``kvmnet validate`` never does)."""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache

from kvmnet.providers.base import ProviderError


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


def open_connection(uri: str):
    lv = libvirt()
    try:
        return lv.open(uri)
    except lv.libvirtError as e:
        raise ProviderError(f"cannot connect to libvirt at {uri}: {e.get_error_message()}") from e
