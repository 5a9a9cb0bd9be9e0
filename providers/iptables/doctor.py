"""``kvmnet doctor`` for iptables forwards (the shared logic is the nftables one's)."""
from __future__ import annotations

from kvmnet.providers.nftables.doctor import forwarding_diagnosis


def diagnose(provider, managed: dict, host_netns: str | None) -> list:
    return forwarding_diagnosis(provider, managed, "iptables -S FORWARD")
