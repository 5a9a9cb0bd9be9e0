"""The ``iproute`` provider: host bridges and vlans, live, through netlink.

The package imports nothing heavy: the plugin (``.plugin``) and the type
definitions (``.types``) are read by ``kvmnet validate``; the provider class is
imported on first use.
"""
from __future__ import annotations

__all__ = ["IprouteProvider"]


def __getattr__(name: str):
    if name == "IprouteProvider":
        from kvmnet.providers.iproute.provider import IprouteProvider
        return IprouteProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
