"""The nftables provider: ``port_forward`` as one ``nft -j`` transaction (SPEC §1, §3).

kvmnet's forwards live in ``table ip kvmnet``, which kvmnet owns and rewrites whole
on every apply; the only rule outside it is one marked rule first in libvirt's
``filter FORWARD`` chain (see ``rules.py`` and ``docs/port-forwards.md``). Every
apply is checked with ``nft -c`` and then committed atomically, so a failure
changes nothing.
"""
from __future__ import annotations

import json
from typing import Iterable, Iterator

from kvmnet.providers import netns as ns
from kvmnet.providers.base import Change, LiveObject, Provider, ProviderError, Result
from kvmnet.providers.forwarding import forwards_after, intact_forwards, result_attrs
from kvmnet.providers.nftables.rules import RulesetView, transaction


class NftablesProvider(Provider):
    name = "nftables"
    resource_types = ("port_forward",)
    transactional = True
    config_schema = {
        "type": "object",
        "properties": {"netns": {"type": "string"}},
        "additionalProperties": False,
    }

    @property
    def netns(self) -> str | None:
        return self.config.get("netns")

    # -- nft at the edge ------------------------------------------------------------
    def _ruleset(self) -> RulesetView:
        cp = ns.run(self.netns, ["nft", "-j", "list", "ruleset"])
        try:
            return RulesetView(json.loads(cp.stdout or '{"nftables": []}'))
        except json.JSONDecodeError as e:
            raise ProviderError(f"nft -j list ruleset: unreadable output ({e})") from e

    def _commit(self, doc: dict) -> None:
        text = json.dumps(doc)
        cp = ns.run(self.netns, ["nft", "-c", "-j", "-f", "-"], input=text, check=False)
        if cp.returncode != 0:
            raise ProviderError(f"nft rejected kvmnet's rule set (nothing was changed): "
                                f"{(cp.stderr or cp.stdout).strip()}")
        cp = ns.run(self.netns, ["nft", "-j", "-f", "-"], input=text, check=False)
        if cp.returncode != 0:
            raise ProviderError(f"nft transaction failed (nothing was changed): "
                                f"{(cp.stderr or cp.stdout).strip()}")

    # -- the provider interface -------------------------------------------------------
    def read(self, rtype: str, ids: Iterable[str]) -> dict[str, LiveObject]:
        if rtype != "port_forward":
            raise ProviderError(f"the nftables provider serves port_forward, not {rtype}")
        view = self._ruleset()
        return {fid: LiveObject(fid, f.attrs(), f.mark)
                for fid, f in intact_forwards(view.rules, view.shared_rule_effective).items()}

    def apply(self, changes: list[Change]) -> Iterator[Result]:
        if not changes:
            return
        view = self._ruleset()
        live = intact_forwards(view.rules, view.shared_rule_effective)
        wanted, outcome = forwards_after(live, changes)
        self._commit(transaction(wanted.values(), view))
        # read back: a change nft accepted but that is not live is an error
        after = self._ruleset()
        now = intact_forwards(after.rules, after.shared_rule_effective)
        missing = sorted(set(wanted) - set(now))
        if missing:
            raise ProviderError(f"nft accepted the transaction but these forwards are not live "
                                f"as written: {', '.join(missing)}")
        for change, forward in outcome:
            yield Result(change, result_attrs(change, forward))

    def snapshot(self, rtype: str, ids: Iterable[str]) -> dict:
        return {"nftables": self._ruleset().own_items}
