"""Who, in libvirt's world, still uses a network or a bridge (SPEC §5) — pure functions
over the views that :mod:`networks` and :mod:`nics` read.

- a ``network``: every domain, running or shut off, whose live or saved definition
  has an interface on it (``type='network'`` with that source network, or
  ``type='bridge'`` on the network's bridge);
- a ``bridge``: every domain with an interface on it (``type='bridge'`` with that
  source, or a running ``type='network'`` interface whose live source reports that
  bridge), and every bridge-mode network on it;
- anything else: nobody.

One :class:`Consumer` per interface, so that the engine can drop those whose
``nic_attachment`` the same plan removes first.
"""
from __future__ import annotations

from typing import Iterable

from kvmnet.sdk.provider import Consumer
from kvmnet.providers.libvirt.network_canon import bridge_name, forward_mode
from kvmnet.providers.libvirt.networks import NetworkView
from kvmnet.providers.libvirt.nics import DomainView


def _domain_consumers(domains: Iterable[DomainView], uses) -> list[Consumer]:
    out: list[Consumer] = []
    for d in sorted(domains, key=lambda d: d.name):
        for mac in d.macs():
            ifaces = [i for i in (d.live_ifaces.get(mac), d.saved_ifaces.get(mac)) if i is not None]
            if any(uses(i) for i in ifaces):
                c = Consumer(kind="domain", name=d.name, detail=d.detail,
                             via=("nic_attachment", f"{d.name}/{mac}"), running=d.active)
                if c not in out:
                    out.append(c)
    return out


def network_consumers(name: str, bridge: str | None, domains: Iterable[DomainView]) -> list[Consumer]:
    def uses(i):
        return ((i.type == "network" and i.network == name)
                or (bool(bridge) and i.type == "bridge" and i.bridge == bridge))
    return _domain_consumers(domains, uses)


def bridge_consumers(bridge: str, domains: Iterable[DomainView],
                     networks: Iterable[NetworkView]) -> list[Consumer]:
    def uses(i):
        return i.bridge == bridge and i.type in ("bridge", "network")
    out = _domain_consumers(domains, uses)
    for n in sorted(networks, key=lambda n: n.name):
        attrs, _ = n.attrs()
        if forward_mode(attrs) == "bridge" and bridge_name(attrs) == bridge:
            out.append(Consumer(kind="network", name=n.name,
                                detail="active" if n.active else "inactive",
                                via=("network", n.name), running=n.active))
    return out
