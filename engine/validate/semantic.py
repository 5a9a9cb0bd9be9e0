"""Which semantic rules apply to which resource type (run after the schema pass)."""
from __future__ import annotations

from typing import Callable, Iterator

from . import forward_rules, link_rules, network_rules, nic_rules, provider_rules, sysctl_rules
from .subject import Finding, Subject

Rule = Callable[[Subject], Iterator[Finding]]

RULES_BY_TYPE: dict[str, tuple[Rule, ...]] = {
    "network": provider_rules.RULES + network_rules.RULES,
    "bridge": provider_rules.LINK_RULES + link_rules.BRIDGE_RULES,
    "vlan": provider_rules.LINK_RULES + link_rules.VLAN_RULES,
    "nic_attachment": provider_rules.RULES + nic_rules.RULES,
    "port_forward": provider_rules.RULES + forward_rules.RULES,
    "sysctl_profile": provider_rules.RULES + sysctl_rules.RULES,
}


def semantic_findings(s: Subject) -> Iterator[Finding]:
    for rule in RULES_BY_TYPE.get(s.inst.type, ()):
        yield from rule(s)
