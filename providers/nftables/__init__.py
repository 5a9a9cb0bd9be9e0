"""The nftables provider: ``port_forward`` as one ``nft -j`` transaction (SPEC §1, §3).

kvmnet's forwards live in ``table ip kvmnet`` (IPv6 ones in ``table ip6 kvmnet``),
which kvmnet owns and rewrites whole on every apply; the only rule outside them is
one marked rule first in libvirt's ``filter FORWARD`` chain of each family (see
``rules.py`` and ``docs/port-forwards.md``). Every
apply is checked with ``nft -c`` and then committed atomically, so a failure
changes nothing. The flow (read, apply, read-back) is shared with the iptables
provider in :class:`kvmnet.providers.forwarding.ForwardingProvider`.
"""
from __future__ import annotations

import json
from typing import Iterable

from kvmnet.providers import netns as ns
from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.forwarding import Forward, ForwardingProvider
from kvmnet.providers.nftables.rules import RulesetView, transaction
from kvmnet.sdk.killpoints import register as register_kill_points

register_kill_points("nftables", "nftables.rules-write", "nftables.rules-written")


class NftablesProvider(ForwardingProvider):
    name = "nftables"
    forward_chain_commands = {4: "nft list chain ip filter FORWARD", 6: "nft list chain ip6 filter FORWARD"}

    def _load(self) -> RulesetView:
        cp = ns.run(self.netns, ["nft", "-j", "list", "ruleset"], timeout=self.timeout)
        try:
            return RulesetView(json.loads(cp.stdout or '{"nftables": []}'))
        except json.JSONDecodeError as e:
            raise ProviderError(f"nft -j list ruleset: unreadable output ({e})") from e

    def _write(self, forwards: list[Forward], view: RulesetView) -> None:
        doc = transaction(forwards, view)
        if not doc["nftables"]:
            return          # nothing of kvmnet's live and nothing wanted
        text = json.dumps(doc)
        for argv, what in ((["nft", "-c", "-j", "-f", "-"], "nft rejected kvmnet's rule set"),
                           (["nft", "-j", "-f", "-"], "nft transaction failed")):
            cp = ns.run(self.netns, argv, input=text, check=False, timeout=self.timeout)
            if cp.returncode != 0:
                raise ProviderError(f"{what} (nothing was changed): {(cp.stderr or cp.stdout).strip()}")

    def snapshot(self, rtype: str, ids: Iterable[str]) -> dict:
        return {"nftables": self._load().own_items}
