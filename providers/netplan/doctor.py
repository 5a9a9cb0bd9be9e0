"""``kvmnet doctor`` for netplan-managed links: with ``apply = true`` the links are
live, checked as the iproute provider's are (:mod:`kvmnet.providers.linkcheck`);
with ``apply = false`` only a file is managed and nothing live is expected."""
from __future__ import annotations

from kvmnet.providers.linkcheck import link_checks


def diagnose(provider, managed: dict, host_netns: str | None) -> list:
    if not provider.live:
        return []
    return link_checks(managed, provider.links.netns)
