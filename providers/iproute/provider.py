"""``provider "iproute"``: ``bridge`` and ``vlan`` in the kernel (SPEC §3).

Live only: nothing survives a reboot (that is the ``netplan`` provider's job). The
mechanics are in :mod:`kvmnet.providers.links`, shared with the netplan provider;
this class only maps the provider interface onto them.
"""
from __future__ import annotations

from typing import Iterable

from kvmnet.sdk import probes
from kvmnet.sdk.provider import Consumer, LiveObject, Provider, ProviderError
from kvmnet.providers import timeouts
from kvmnet.providers.links import (
    LINK_TYPES, LinkManager, live_objects, register_link_kill_points, temp_name,
)

register_link_kill_points("iproute")

NETPLAN_ONLY = ("dhcp4", "nameservers")


class IprouteProvider(Provider):
    name = "iproute"
    resource_types = LINK_TYPES
    config_schema = {
        "type": "object",
        "properties": {"netns": {"type": "string"}, "timeout": timeouts.SCHEMA},
        "additionalProperties": False,
    }

    def __init__(self, config: dict | None = None, instance: str | None = None):
        super().__init__(config, instance)
        self.links = LinkManager(self.config.get("netns"), timeouts.timeout_of(self.config), owner="iproute")

    def prepare_apply(self) -> None:
        self.links.prepare()

    def read(self, rtype: str, ids: Iterable[str]) -> dict[str, LiveObject]:
        return self.links.read(rtype, ids)

    def import_object(self, rtype: str, id: str) -> LiveObject | None:
        table = self.links.table(id)
        link = table.links.get(id)
        if link is None:
            return None
        if link.kind != rtype:
            raise ProviderError(f"interface {id} is a {link.kind or 'link of another kind'}, not a {rtype}")
        return live_objects(rtype, table, [id]).get(id)

    def check(self, rtype: str, address: str, attrs: dict) -> list[tuple[str | None, str]]:
        return [(k, f"{k} needs provider = \"netplan\": the kernel alone runs no DHCP client "
                    "and keeps no resolver settings")
                for k in NETPLAN_ONLY if attrs.get(k) is not None]

    def identify(self, change) -> dict:
        return {"parts": {"temp": temp_name(change.mark)}}

    def discard(self, rtype: str, identity: dict) -> None:
        self.links.discard(identity)

    def create(self, rtype, address, after, mark):
        return self.links.create(rtype, after, mark), {}

    def update(self, rtype, address, before, after, private, mark):
        return self.links.update(rtype, before, after, mark), {}

    def delete(self, rtype, address, before, private):
        self.links.delete(rtype, before)

    def consumers(self, rtype: str, attrs: dict) -> list[Consumer]:
        if rtype not in LINK_TYPES:
            return []
        return self.links.consumers(rtype, attrs)

    def snapshot(self, rtype: str, ids: Iterable[str]) -> dict:
        return self.links.snapshot(rtype, ids)

    def probes(self, managed: dict) -> list[probes.Probe]:
        """The default gateway of this provider's namespace answers."""
        return [probes.gateway(self.config.get("netns") or None)]

    def close(self) -> None:
        self.links.close()
