"""``kvmnet doctor`` for port forwards: present, and effective ahead of libvirt's rules.

:func:`forwarding_diagnosis` works on any
:class:`kvmnet.providers.forwarding.ForwardingProvider` (the iptables provider's
doctor module uses it too); it reads the rules once, as ``read`` does.
"""
from __future__ import annotations

from kvmnet.engine.doctor import forward_checks
from kvmnet.providers.forwarding import intact_forwards


def forwarding_diagnosis(provider, managed: dict, list_command: str) -> list:
    records = managed.get("port_forward", [])
    if not records:
        return []
    view = provider._load()              # the one ruleset read that ``read`` makes
    return forward_checks(records, set(intact_forwards(view.rules, True)),
                          set(provider._live(view)), list_command, provider.netns)


def diagnose(provider, managed: dict, host_netns: str | None) -> list:
    return forwarding_diagnosis(provider, managed, "nft list chain ip filter FORWARD")
