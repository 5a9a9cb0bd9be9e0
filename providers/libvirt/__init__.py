"""libvirt provider: ``network`` and ``nic_attachment`` (see docs/libvirt.md)."""
from kvmnet.providers.libvirt.provider import LibvirtProvider

__all__ = ["LibvirtProvider"]
