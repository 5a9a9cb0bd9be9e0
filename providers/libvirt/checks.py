"""Rules that need libvirt knowledge, on desired attributes (pure; values may be UNKNOWN).

Returned as ``(attribute, message)`` pairs, the shape of ``Provider.check``. The
engine's validation may call these directly too: nothing here imports libvirt.
"""
from __future__ import annotations

from kvmnet.providers.libvirt.network_canon import bridge_name, forward_mode
from kvmnet.providers.libvirt.types import NETWORK
from kvmnet.sdk.values import contains_unknown, is_unknown

VLAN_ON_LINUX_BRIDGE = (
    "vlan (v1: vlan_tag) needs virtualport = \"openvswitch\": libvirt rejects a VLAN tag on a "
    "network over a plain Linux bridge. The working pattern is a vlan interface "
    "(resource \"vlan\"), a bridge that enslaves it (resource \"bridge\"), and a "
    "network with mode = \"bridge\" on that bridge"
)


def _set(v) -> bool:
    return v is not None and not is_unknown(v)


def network_problems(attrs: dict) -> list[tuple[str | None, str]]:
    out: list[tuple[str | None, str]] = []
    a = NETWORK.canon(attrs)
    mode, bridge = forward_mode(a), bridge_name(a)
    vlan, virtualport = a.get("vlan"), a.get("virtualport")
    vp_type = virtualport.get("type") if isinstance(virtualport, dict) else virtualport
    if _set(vlan) and not contains_unknown(vlan) and vp_type != "openvswitch" and mode != "hostdev":
        out.append(("vlan_tag" if attrs.get("vlan_tag") is not None else "vlan", VLAN_ON_LINUX_BRIDGE))
    if mode == "bridge":
        if a.get("ip"):
            out.append(("ip", "a network in bridge mode has no ip block: addresses and DHCP "
                              "belong to the host bridge's own network"))
        fwd_dev = (a.get("forward") or {}).get("dev") or (a.get("forward") or {}).get("interface")
        if bridge is None and not fwd_dev:
            out.append(("bridge", "a network in bridge mode needs bridge = the existing host bridge"))
    fwd: dict = a["forward"] if isinstance(a.get("forward"), dict) else {}
    if _set(fwd.get("nat")) and mode not in (None, "nat") and not is_unknown(mode):
        out.append(("nat_port_range" if attrs.get("nat_port_range") is not None else "forward",
                    "forward { nat } (v1: nat_port_range) is only allowed with mode = \"nat\""))
    if _set(virtualport) and mode != "bridge" and not is_unknown(mode):
        out.append(("virtualport", "virtualport is only allowed with mode = \"bridge\""))
    return out


# forward modes whose network libvirt refuses without an address ("nat forwarding
# requested, but no IP address provided for network", libvirt 9.0)
NEEDS_IP = ("nat", "route", "open")


def ip_needed(attrs: dict, live_has_ip: bool) -> list[tuple[str | None, str]]:
    """A nat/route/open network needs an ``ip`` block: in the config, or (left out of
    it) on the live network it keeps as found."""
    a = NETWORK.canon(attrs)
    mode, ips = forward_mode(a), a.get("ip")
    if mode not in NEEDS_IP or is_unknown(ips) or (ips is None and live_has_ip) or ips:
        return []
    return [("forward.mode", f'forward mode "{mode}" needs an ip block (e.g. ip {{ address = "10.0.0.1" '
                             f'prefix = 24 }}): libvirt refuses a {mode} network without an address')]


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
