"""The ``netplan`` plugin (entry point): host bridges and vlans."""
from kvmnet.providers import links_types
from kvmnet.sdk.types import Plugin

PLUGIN = Plugin(
    name="netplan", provider="kvmnet.providers.netplan.provider:NetplanProvider",
    types=links_types.TYPES, layers=links_types.LAYERS, host_netns=20,
)
