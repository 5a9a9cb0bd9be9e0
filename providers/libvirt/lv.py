"""The one place that imports libvirt-python (lazily: ``kvmnet validate`` never does)."""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache

from kvmnet.sdk.provider import ProviderError


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
