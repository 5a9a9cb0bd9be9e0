"""The probe of a ``port_forward`` (nftables, iptables): each TCP forward accepts a
connection made through it from the host, i.e. through the output-hook DNAT to a
local address of the host, in the provider's ``netns``."""
from __future__ import annotations

import ipaddress

from kvmnet.sdk import probes
from kvmnet.sdk.doctor import Managed


def forward_target(attrs: dict) -> tuple[str, int] | None:
    """(family, first host port) of a forward a local connection goes through: TCP,
    not limited to an input interface (a local connection arrives on none) nor to a
    source network."""
    if attrs.get("protocol") != "tcp" or attrs.get("in_interface") or attrs.get("source"):
        return None
    try:
        family = "inet6" if ipaddress.ip_address(str(attrs["to_address"])).version == 6 else "inet"
        port = int(str(attrs["host_port"]).split("-")[0])
    except (KeyError, ValueError):
        return None
    return family, port


def local_address(netns: str | None, family: str) -> str | None:
    """A global address of the namespace in ``family`` (the forward's DNAT matches
    connections to the host's own addresses)."""
    flag = "-6" if family == "inet6" else "-4"
    for link in probes.ip_json(netns, [flag, "addr", "show", "scope", "global"]):
        for a in link.get("addr_info", []):
            if a.get("family") == family and a.get("local") and not a.get("tentative"):
                return a["local"]
    return None


def forward_probe(rec: Managed, netns: str | None) -> probes.Probe | None:
    """The probe of ``rec``, or None when a local connection cannot go through it."""
    target = forward_target(rec.attrs)
    if target is None:
        return None
    family, port = target

    def check(timeout: float) -> str | None:
        try:
            address = local_address(netns, family)
        except (RuntimeError, ValueError) as e:
            return str(e)
        if address is None:
            return "the host has no global address to connect through"
        return probes.reach(netns, ["tcp", address, str(port), str(timeout)], timeout)
    return probes.Probe(f"forward {rec.address}", check, rec.address)


def forwarding_probes(managed: dict[str, list[Managed]], netns: str | None) -> list[probes.Probe]:
    """The gateway of ``netns``, then each forward's probe."""
    found = [forward_probe(rec, netns) for rec in managed.get("port_forward", [])]
    return [probes.gateway(netns), *(p for p in found if p is not None)]
