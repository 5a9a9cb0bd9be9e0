"""The iptables provider: ``port_forward`` through ``iptables-restore --noflush`` (SPEC §1, §3).

kvmnet's rules live in its own chains (``KVMNET_PREROUTING``/``KVMNET_OUTPUT`` in
nat, ``KVMNET_FORWARD`` in filter), reached by one jump each from the built-in
chains; the FORWARD jump sits first, ahead of libvirt's. One ``iptables-restore``
call per apply and address family (``ip6tables-restore`` for IPv6; all checked
first with ``--test``) rewrites kvmnet's chains whole, so re-running it duplicates
nothing. The flow is shared with the nftables provider in
:class:`kvmnet.providers.forwarding.ForwardingProvider`.
"""
from __future__ import annotations

from typing import Iterable

from kvmnet.providers import netns as ns
from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.forwarding import FAMILIES, Forward, ForwardingProvider
from kvmnet.providers.iptables.rules import RESTORE, SAVE, FamilyViews, parse_save, restore_text
from kvmnet.sdk.killpoints import register as register_kill_points

register_kill_points("iptables", "iptables.rules-write", "iptables.rules-written")


class IptablesProvider(ForwardingProvider):
    name = "iptables"
    forward_chain_commands = {4: "iptables -S FORWARD", 6: "ip6tables -S FORWARD"}

    def _load(self) -> FamilyViews:
        return FamilyViews({f: parse_save(ns.run(self.netns, [SAVE[f]], timeout=self.timeout).stdout, f)
                            for f in FAMILIES})

    def _write(self, forwards: list[Forward], view: FamilyViews) -> None:
        """Each address family whose forwards are wanted or whose kvmnet rules exist
        gets one restore; all are checked with ``--test`` before the first commits,
        so a malformed rule set changes nothing (the two commits are not one
        transaction: ``iptables`` and ``ip6tables`` have none in common)."""
        texts = {f: restore_text([fw for fw in forwards if fw.family == f], view.by_family[f])
                 for f in FAMILIES
                 if view.by_family[f].touched or any(fw.family == f for fw in forwards)}
        for family, text in texts.items():
            cp = ns.run(self.netns, [RESTORE[family], "--noflush", "--test"], input=text, check=False,
                        timeout=self.timeout)
            if cp.returncode != 0:
                raise ProviderError(f"{RESTORE[family]} rejected kvmnet's rules (nothing was changed): "
                                    f"{(cp.stderr or cp.stdout).strip()}")
        for family, text in texts.items():
            cp = ns.run(self.netns, [RESTORE[family], "--noflush"], input=text, check=False, timeout=self.timeout)
            if cp.returncode != 0:
                raise ProviderError(f"{RESTORE[family]} failed: {(cp.stderr or cp.stdout).strip()}")

    def snapshot(self, rtype: str, ids: Iterable[str]) -> dict:
        return {"iptables": self._load().own_lines}
