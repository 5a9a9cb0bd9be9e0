"""The ``iproute`` plugin (entry point): host bridges and vlans."""
from kvmnet.providers import links_types
from kvmnet.sdk.types import Plugin

PLUGIN = Plugin(
    name="iproute", provider="kvmnet.providers.iproute.provider:IprouteProvider",
    types=links_types.TYPES, layers=links_types.LAYERS, host_netns=10,
)
