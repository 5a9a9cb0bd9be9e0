"""``kvmnet doctor`` for host links: the bridge checks of
:mod:`kvmnet.providers.linkcheck`, in the provider's namespace."""
from __future__ import annotations

from kvmnet.sdk.doctor import Check
from kvmnet.providers.linkcheck import link_checks


def diagnose(provider, managed: dict, host_netns: str | None) -> list[Check]:
    return link_checks(managed, provider.links.netns)
