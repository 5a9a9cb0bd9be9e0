"""The ``iproute`` provider: host bridges and vlans, live, through netlink."""
from kvmnet.providers.iproute.provider import IprouteProvider

__all__ = ["IprouteProvider"]
