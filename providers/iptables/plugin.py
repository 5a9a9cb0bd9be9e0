"""The ``iptables`` plugin (entry point): port forwards."""
from kvmnet.providers import forwarding_types
from kvmnet.sdk.types import Plugin

PLUGIN = Plugin(
    name="iptables", provider="kvmnet.providers.iptables:IptablesProvider",
    types=forwarding_types.TYPES, layers=forwarding_types.LAYERS, host_netns=40,
)
