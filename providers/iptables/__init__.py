"""The iptables provider: ``port_forward`` through ``iptables-restore --noflush`` (SPEC §1, §3).

kvmnet's rules live in its own chains (``KVMNET_PREROUTING``/``KVMNET_OUTPUT`` in
nat, ``KVMNET_FORWARD`` in filter), reached by one jump each from the built-in
chains; the FORWARD jump sits first, ahead of libvirt's. One ``iptables-restore``
call per apply rewrites kvmnet's chains whole, so re-running it duplicates nothing.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from kvmnet.providers import netns as ns
from kvmnet.providers.base import Change, LiveObject, Provider, ProviderError, Result
from kvmnet.providers.forwarding import forwards_after, intact_forwards, result_attrs
from kvmnet.providers.iptables.rules import SaveView, parse_save, restore_text


class IptablesProvider(Provider):
    name = "iptables"
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

    def _save(self) -> SaveView:
        return parse_save(ns.run(self.netns, ["iptables-save"]).stdout)

    def _restore(self, text: str) -> None:
        cp = ns.run(self.netns, ["iptables-restore", "--noflush", "--test"], input=text, check=False)
        if cp.returncode != 0:
            raise ProviderError(f"iptables-restore rejected kvmnet's rules (nothing was changed): "
                                f"{(cp.stderr or cp.stdout).strip()}")
        cp = ns.run(self.netns, ["iptables-restore", "--noflush"], input=text, check=False)
        if cp.returncode != 0:
            raise ProviderError(f"iptables-restore failed: {(cp.stderr or cp.stdout).strip()}")

    def read(self, rtype: str, ids: Iterable[str]) -> dict[str, LiveObject]:
        if rtype != "port_forward":
            raise ProviderError(f"the iptables provider serves port_forward, not {rtype}")
        view = self._save()
        return {fid: LiveObject(fid, f.attrs(), f.mark)
                for fid, f in intact_forwards(view.rules, view.jumps_effective).items()}

    def apply(self, changes: list[Change]) -> Iterator[Result]:
        if not changes:
            return
        view = self._save()
        live = intact_forwards(view.rules, view.jumps_effective)
        wanted, outcome = forwards_after(live, changes)
        self._restore(restore_text(wanted.values(), view))
        after = self._save()
        now = intact_forwards(after.rules, after.jumps_effective)
        missing = sorted(set(wanted) - set(now))
        if missing:
            raise ProviderError(f"iptables-restore succeeded but these forwards are not live "
                                f"as written: {', '.join(missing)}")
        for change, forward in outcome:
            yield Result(change, result_attrs(change, forward))

    def snapshot(self, rtype: str, ids: Iterable[str]) -> dict:
        return {"iptables": self._save().own_lines}
