"""libvirt provider: ``network`` and ``nic_attachment`` (see docs/libvirt.md).

The package imports nothing heavy: the plugin (``.plugin``) and the type
definitions (``.types``) are read by ``kvmnet validate``; the provider class is
imported on first use.
"""
from __future__ import annotations

__all__ = ["LibvirtProvider"]


def __getattr__(name: str):
    if name == "LibvirtProvider":
        from kvmnet.providers.libvirt.provider import LibvirtProvider
        return LibvirtProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
