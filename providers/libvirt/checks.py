"""Rules that need libvirt knowledge, on desired attributes (pure; values may be UNKNOWN).

Returned as ``(attribute, message)`` pairs, the shape of ``Provider.check``. The
engine's validation may call these directly too: nothing here imports libvirt.
"""
from __future__ import annotations

from kvmnet.sdk.values import is_unknown

VLAN_ON_LINUX_BRIDGE = (
    "vlan_tag needs virtualport = \"openvswitch\": libvirt rejects a VLAN tag on a "
    "network over a plain Linux bridge. The working pattern is a vlan interface "
    "(resource \"vlan\"), a bridge that enslaves it (resource \"bridge\"), and a "
    "network with mode = \"bridge\" on that bridge"
)


def _set(v) -> bool:
    return v is not None and not is_unknown(v)


def network_problems(attrs: dict) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    mode = attrs.get("mode")
    if _set(attrs.get("vlan_tag")) and attrs.get("virtualport") != "openvswitch":
        out.append(("vlan_tag", VLAN_ON_LINUX_BRIDGE))
    if mode == "bridge":
        if attrs.get("ip"):
            out.append(("ip", "a network in bridge mode has no ip block: addresses and DHCP "
                              "belong to the host bridge's own network"))
        if attrs.get("bridge") is None:
            out.append(("bridge", "a network in bridge mode needs bridge = the existing host bridge"))
    if _set(attrs.get("nat_port_range")) and mode not in (None, "nat") and not is_unknown(mode):
        out.append(("nat_port_range", "nat_port_range is only allowed with mode = \"nat\""))
    if _set(attrs.get("virtualport")) and mode != "bridge" and not is_unknown(mode):
        out.append(("virtualport", "virtualport is only allowed with mode = \"bridge\""))
    return out


def nic_problems(attrs: dict) -> list[tuple[str | None, str]]:
    has_net, has_br = attrs.get("network") is not None, attrs.get("bridge") is not None
    direct = attrs.get("type") == "direct"
    out: list[tuple[str | None, str]] = []
    if direct and (has_net or has_br or attrs.get("source") is None):
        out.append((None, 'a nic_attachment of type = "direct" takes source { dev, mode } and '
                          "no network or bridge"))
    elif not direct and has_net == has_br:
        out.append((None, "a nic_attachment needs exactly one of network or bridge"))
    driver = attrs.get("driver")
    if isinstance(driver, list):
        driver = driver[0] if driver else None
    queues = attrs.get("queues")
    if queues is None and isinstance(driver, dict):
        queues = driver.get("queues")
    if _set(queues) and attrs.get("model") not in (None, "virtio"):
        out.append(("queues", "queues (vhost multiqueue) needs model = \"virtio\""))
    return out
