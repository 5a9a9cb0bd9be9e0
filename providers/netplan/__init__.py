"""The ``netplan`` provider: host bridges and vlans, live and in a netplan file."""
from kvmnet.providers.netplan.provider import NetplanProvider

__all__ = ["NetplanProvider"]
