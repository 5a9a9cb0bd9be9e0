"""The ``sysctl`` plugin (entry point): kernel settings."""
from kvmnet.providers.sysctl import types
from kvmnet.sdk.types import Plugin

PLUGIN = Plugin(
    name="sysctl", provider="kvmnet.providers.sysctl.provider:SysctlProvider",
    types=types.TYPES, layers=types.LAYERS, host_netns=50,
)
