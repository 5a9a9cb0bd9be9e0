"""The iptables provider: ``port_forward`` through ``iptables-restore --noflush`` (SPEC §1, §3).

kvmnet's rules live in its own chains (``KVMNET_PREROUTING``/``KVMNET_OUTPUT`` in
nat, ``KVMNET_FORWARD`` in filter), reached by one jump each from the built-in
chains; the FORWARD jump sits first, ahead of libvirt's. One ``iptables-restore``
call per apply (checked first with ``--test``) rewrites kvmnet's chains whole, so
re-running it duplicates nothing. The flow is shared with the nftables provider in
:class:`kvmnet.providers.forwarding.ForwardingProvider`.
"""
from __future__ import annotations

from typing import Iterable

from kvmnet.providers import netns as ns
from kvmnet.sdk.provider import ProviderError
from kvmnet.providers.forwarding import Forward, ForwardingProvider
from kvmnet.providers.iptables.rules import SaveView, parse_save, restore_text
from kvmnet.sdk.killpoints import register as register_kill_points

register_kill_points("iptables", "iptables.rules-write", "iptables.rules-written")


class IptablesProvider(ForwardingProvider):
    name = "iptables"
    forward_chain_command = "iptables -S FORWARD"

    def _load(self) -> SaveView:
        return parse_save(ns.run(self.netns, ["iptables-save"]).stdout)

    def _write(self, forwards: list[Forward], view: SaveView) -> None:
        text = restore_text(forwards, view)
        for argv, what in ((["iptables-restore", "--noflush", "--test"], "iptables-restore rejected "
                            "kvmnet's rules (nothing was changed)"),
                           (["iptables-restore", "--noflush"], "iptables-restore failed")):
            cp = ns.run(self.netns, argv, input=text, check=False)
            if cp.returncode != 0:
                raise ProviderError(f"{what}: {(cp.stderr or cp.stdout).strip()}")

    def snapshot(self, rtype: str, ids: Iterable[str]) -> dict:
        return {"iptables": self._load().own_lines}
