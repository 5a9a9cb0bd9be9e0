"""Rules about which provider serves an instance (SPEC §1, §3)."""
from __future__ import annotations

from typing import Iterator

from kvmnet.engine.resources import TYPES

from .subject import Finding, Subject, show

_NETPLAN_ONLY = ("dhcp4", "nameservers")


def check_provider_serves_type(s: Subject) -> Iterator[Finding]:
    """The instance's provider is one that serves its type."""
    rtype = TYPES.get(s.inst.type)
    if rtype is None or not s.inst.provider:
        return
    if s.provider_type not in rtype.providers:
        yield Finding("provider", f"provider {show(s.inst.provider)} does not serve {s.inst.type} resources; "
                                  f"use one of: {', '.join(rtype.providers)}")


def check_netplan_only(s: Subject) -> Iterator[Finding]:
    """dhcp4 and nameservers need the netplan provider (the kernel runs no DHCP client)."""
    if s.provider_type == "netplan":
        return
    for key in _NETPLAN_ONLY:
        if s.get(key) is not None:
            yield Finding(key, f"{key} needs provider = \"netplan\" (this {s.inst.type} uses {show(s.inst.provider)}): "
                               "the kernel alone runs no DHCP client and keeps no resolver settings")


RULES = (check_provider_serves_type,)
LINK_RULES = (check_provider_serves_type, check_netplan_only)
