"""The ``libvirt`` plugin (entry point): networks and hot-plugged NICs."""
from kvmnet.providers.libvirt import data, types
from kvmnet.sdk.types import Plugin

PLUGIN = Plugin(
    name="libvirt", provider="kvmnet.providers.libvirt.provider:LibvirtProvider",
    types=types.TYPES, layers=types.LAYERS, failure_layer="libvirt", diagnose_alone=True,
    data_types=data.DATA_TYPES,
)
