"""The ``netplan`` provider: host bridges and vlans, live and in a netplan file.

The package imports nothing heavy: the plugin (``.plugin``) and the type
definitions (``.types``) are read by ``kvmnet validate``; the provider class is
imported on first use.
"""
from __future__ import annotations

__all__ = ["NetplanProvider"]


def __getattr__(name: str):
    if name == "NetplanProvider":
        from kvmnet.providers.netplan.provider import NetplanProvider
        return NetplanProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
