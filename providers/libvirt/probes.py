"""The probe of a libvirt ``network`` kvmnet keeps active: it is active, with its
dnsmasq running when it has an ``ip`` block."""
from __future__ import annotations

import os

from kvmnet.sdk import probes
from kvmnet.sdk.doctor import Managed
from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.libvirt.lv import libvirt, open_connection


def network_probe(rec: Managed, uri: str) -> probes.Probe | None:
    """The probe of ``rec``, or None when kvmnet keeps the network inactive."""
    if rec.attrs.get("active", True) is False:
        return None
    name = rec.attrs.get("name") or rec.id or rec.address
    with_ip = bool(rec.attrs.get("ip"))

    def check(timeout: float) -> str | None:
        return network_down(uri, name, with_ip, timeout)
    return probes.Probe(f"network {rec.address}", check, rec.address)


def network_down(uri: str, name: str, with_ip: bool, timeout: float) -> str | None:
    """Why libvirt network ``name`` is not up (None when it is), on a connection of
    its own (the probes run in threads)."""
    lv = libvirt()
    try:
        conn = open_connection(uri, timeout)
    except ProviderError as e:         # it names the URI
        return str(e)
    try:
        try:
            if not conn.networkLookupByName(name).isActive():
                return f"libvirt network {name!r} is not active"
        except lv.libvirtError as e:
            return f"libvirt network {name!r}: {e.get_error_message()}"
    finally:
        conn.close()
    if with_ip and not dnsmasq_running(name):
        return f"no dnsmasq runs for libvirt network {name!r}"
    return None


def dnsmasq_running(network: str) -> bool:
    """A dnsmasq process runs with the network's configuration file
    (``--conf-file=…/NETWORK.conf``, as libvirt starts it)."""
    suffix = f"/{network}.conf"
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if args and os.path.basename(args[0]) == "dnsmasq" and \
                any(a.startswith("--conf-file=") and a.endswith(suffix) for a in args):
            return True
    return False
