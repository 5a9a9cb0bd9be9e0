"""The ``nftables`` plugin (entry point): port forwards."""
from kvmnet.providers import forwarding_types
from kvmnet.sdk.types import Plugin

PLUGIN = Plugin(
    name="nftables", provider="kvmnet.providers.nftables:NftablesProvider",
    types=forwarding_types.TYPES, layers=forwarding_types.LAYERS, host_netns=30,
)
