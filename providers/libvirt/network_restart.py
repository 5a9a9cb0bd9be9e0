"""Which network changes are made by redefining and restarting the network, rather
than by a replace (pure).

libvirt keeps a network's name and UUID when it is defined again, and a running
network takes its new definition only when it restarts. So a change to the
addresses a network serves, or to its bridge's STP settings, or to the device it
forwards to, is an in-place update that restarts it (the plan's ``restart``
action): the network keeps its UUID and whatever the model does not cover, while
guests on it lose their link until libvirt puts their taps back (the consumer rule
refuses it while guests run on it). Everything else :func:`networks.not_in_place`
names still replaces.
"""
from __future__ import annotations

import re

# leaf paths (``ip.address``, ``ip[1].prefix``, ``bridge.stp``) a restart can change
RESTARTS = (
    re.compile(r"^ip(\[\d+\])?\.(address|prefix|netmask)$"),
    re.compile(r"^bridge\.(stp|delay)$"),
    re.compile(r"^forward\.dev$"),
)
_NOT_COMPARED = ("autostart", "active", "uuid", "kept")


def changed_leaves(want, have, path: str = "") -> list[str]:
    """Paths of the leaves ``want`` sets that differ from ``have`` (``want`` None =
    not configured, never a change); lists compare by index, a length change is the
    list's own path."""
    if want is None:
        return []
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [path]               # a block added (or of another shape) as a whole
        out = []
        for k, w in want.items():
            out += changed_leaves(w, have.get(k), f"{path}.{k}" if path else k)
        return out
    if isinstance(want, list) and want and isinstance(want[0], dict):
        if not isinstance(have, list) or len(have) != len(want):
            return [path]
        out = []
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            out += changed_leaves(w, h, f"{path}[{i}]")
        return out
    return [] if want == have else [path]


# what virNetworkUpdate changes without a restart (net_update.IN_PLACE); a restart
# redefines the whole network, so these come along with it
_UPDATABLE = re.compile(r"^(ip(\[\d+\])?\.(dhcp_range|dhcp_host|dhcp\.range|dhcp\.host)"
                        r"|dns\.(host|srv|txt)|forward\.interface|portgroup)\b")


def _updatable(path: str) -> bool:
    return bool(_UPDATABLE.match(path))


def restart_paths(current: dict, desired: dict) -> list[str] | None:
    """The changed leaves when every change outside what virNetworkUpdate changes
    (DHCP entries, DNS records, forward interfaces, portgroups) is one a restart
    makes (and at least one is); None when something needs a replace instead, or
    nothing needs a restart."""
    leaves = [p for k, v in desired.items() if k not in _NOT_COMPARED
              for p in changed_leaves(v, current.get(k), k)]
    leaves = [p for p in leaves if not _updatable(p)]
    if not leaves or not all(any(r.match(p) for r in RESTARTS) for p in leaves):
        return None
    return leaves
