"""The one checked-in list of live checks this machine's kernel cannot run.

Each entry names a feature whose definition, read-back, plan and drift check do run
against the real daemon; only the part that needs the missing kernel feature or
device is skipped, with the reason below. Tests skip with ``pytest.skip(reason(KEY))``.
"""
from __future__ import annotations

HARDWARE_SKIPS: dict[str, str] = {
    "nic_bandwidth_live": (
        "a NIC's <bandwidth> on a running guest: libvirt shapes it with tc SFQ qdiscs and "
        "police actions, which this kernel lacks (tc: 'Failed to load TC action module'); "
        "defined, read back, updated in place, planned and drift-checked on a shut-off "
        "domain's saved definition instead"),
    "nic_vhost_net_live": (
        "driver { name = \"vhost\" } on a running guest: there is no /dev/vhost-net here, so "
        "libvirt 9.0 attaches the NIC with QEMU's userspace virtio-net backend (no vhost=on); "
        "the attach, read-back and QEMU's device are checked, vhost acceleration itself is not"),
    "nic_openvswitch_live": (
        "virtualport { type = \"openvswitch\" } and a NIC's vlan tags: no Open vSwitch here; "
        "defined, read back, planned (in place / replace) and drift-checked on a shut-off "
        "domain's saved definition, never started"),
}


def reason(key: str) -> str:
    """The recorded reason for skipping the live part ``key``."""
    return HARDWARE_SKIPS[key]
