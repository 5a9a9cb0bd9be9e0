"""The ``sysctl`` provider (``sysctl_profile``); see docs/sysctl.md.

The package imports nothing heavy: the plugin (``.plugin``) and the type
definitions (``.types``) are read by ``kvmnet validate``; the provider class is
imported on first use.
"""
from __future__ import annotations

__all__ = ["SysctlProvider"]


def __getattr__(name: str):
    if name == "SysctlProvider":
        from kvmnet.providers.sysctl.provider import SysctlProvider
        return SysctlProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
