"""``provider "netplan"``: ``bridge`` and ``vlan`` made live (as the iproute
provider does, through :mod:`kvmnet.providers.links`) and persistent, in one netplan
file kvmnet owns (``<root_dir>/etc/netplan/90-kvmnet.yaml``).

The provider is transactional: a batch of changes is checked first (the file it
would write is validated with ``netplan generate`` in a scratch root: an error
changes nothing), then made live one change at a time, then the file is replaced
once and the results are yielded. If a live change fails, the file is written for
the changes that succeeded. kvmnet never runs ``netplan apply``.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from kvmnet.sdk.ownership import parse_mark
from kvmnet.sdk import probes
from kvmnet.sdk.provider import Change, Consumer, LiveObject, Provider, ProviderError, Result
from kvmnet.providers import timeouts
from kvmnet.providers.links import (
    LINK_TYPES, LinkManager, register_link_kill_points, result_attrs, temp_name,
)
from kvmnet.providers.netplan import files
from kvmnet.providers.netplan.render import Entry, RenderError, parse_file, render_file
from kvmnet.providers.netplan.view import file_attrs, fold, merged_attrs
from kvmnet.sdk.killpoints import hit as kill_point, register as register_kill_points

register_link_kill_points("netplan")
register_kill_points("netplan", "netplan.file-write", "netplan.file-written")


class NetplanProvider(Provider):
    name = "netplan"
    resource_types = LINK_TYPES
    transactional = True
    config_schema = {
        "type": "object",
        "properties": {
            "netns": {"type": "string"},
            "root_dir": {"type": "string"},
            "apply": {"type": "boolean"},
            "timeout": timeouts.SCHEMA,
        },
        "additionalProperties": False,
    }

    def __init__(self, config: dict | None = None, instance: str | None = None):
        super().__init__(config, instance)
        self.root_dir = self.config.get("root_dir") or "/"
        self.live = bool(self.config.get("apply", True))
        self.path = files.file_path(self.root_dir)
        self.timeout = timeouts.timeout_of(self.config)
        self.links = LinkManager(self.config.get("netns"), self.timeout, owner="netplan")

    # -- the file -------------------------------------------------------------
    def entries(self) -> dict[tuple[str, str], Entry]:
        text = files.read_text(self.path)
        if text is None:
            return {}
        try:
            return parse_file(text)
        except RenderError as e:
            raise ProviderError(f"{self.path}: {e}") from e

    def render(self, entries: dict[tuple[str, str], Entry]) -> str | None:
        if not entries:
            return None
        return render_file(list(entries.values()), files.ids_defined_elsewhere(self.root_dir))

    def write(self, text: str | None) -> None:
        """Validate (unless removing the file) and replace the file."""
        if text is not None:
            files.validate(self.root_dir, text, self.timeout)
        files.replace(self.path, text)

    # -- reading ----------------------------------------------------------------
    def read(self, rtype: str, ids: Iterable[str]) -> dict[str, LiveObject]:
        entries = {name: e for (t, name), e in self.entries().items() if t == rtype}
        if not self.live:
            return {name: LiveObject(name, file_attrs(rtype, e), parse_mark(e.mark))
                    for name, e in entries.items()}
        names = set(ids) | set(entries)
        live = self.links.read(rtype, names)
        out = {}
        for name in sorted(names & set(live)):
            obj, entry = live[name], entries.get(name)
            if live_kind_matches(obj, rtype):
                obj.attrs = merged_attrs(rtype, obj.attrs, entry)
            if entry is not None and entry.mark:
                obj.mark = parse_mark(entry.mark)   # the file is the ownership record
            out[name] = obj
        return out

    def import_object(self, rtype: str, id: str) -> LiveObject | None:
        return self.read(rtype, [id]).get(id)

    def check(self, rtype: str, address: str, attrs: dict) -> list[tuple[str | None, str]]:
        if not self.live and attrs.get("multicast_snooping") is not None:
            return [("multicast_snooping", "multicast_snooping has no netplan key: with apply = false "
                                           "the netplan provider cannot manage it (leave it out, or "
                                           "set apply = true to make it live)")]
        return []

    # -- changing -------------------------------------------------------------------
    def apply(self, changes: list[Change]) -> Iterator[Result]:
        before = self.entries()
        text = self.render(fold(before, changes))
        if text is not None:
            files.validate(self.root_dir, text, self.timeout)
        done: list[Result] = []
        try:
            for c in changes:
                done.append(self._live_change(c))
        except ProviderError:
            if done:
                try:
                    self.write(self.render(fold(before, [r.change for r in done])))
                except ProviderError:
                    pass   # keep the old file rather than write an invalid one
                yield from done
            raise
        kill_point("netplan.file-write")
        files.replace(self.path, text)
        kill_point("netplan.file-written")
        yield from done

    def prepare_apply(self) -> None:
        if self.live:
            self.links.prepare()

    def identify(self, change: Change) -> dict:
        return {"parts": {"temp": temp_name(change.mark)}} if self.live else {}

    def discard(self, rtype: str, identity: dict) -> None:
        if self.live:
            self.links.discard(identity)

    def _live_change(self, c: Change) -> Result:
        if not self.live:
            return Result(c, result_attrs(c.type, c.after) if c.after is not None else None, {})
        return self.apply_one(c)

    def create(self, rtype, address, after, mark):
        return self.links.create(rtype, after, mark), {}

    def update(self, rtype, address, before, after, private, mark):
        return self.links.update(rtype, before, after, mark), {}

    def delete(self, rtype, address, before, private):
        self.links.delete(rtype, before)

    # -- consumers, snapshot --------------------------------------------------------
    def consumers(self, rtype: str, attrs: dict) -> list[Consumer]:
        if rtype not in LINK_TYPES or not self.live:
            return []
        return self.links.consumers(rtype, attrs)

    def snapshot(self, rtype: str, ids: Iterable[str]) -> dict:
        live = self.links.snapshot(rtype, ids) if self.live else {}
        return {"live": live, "file": files.read_text(self.path)}

    def probes(self, managed: dict) -> list[probes.Probe]:
        """The default gateway of this provider's namespace answers."""
        return [probes.gateway(self.config.get("netns") or None)]

    def close(self) -> None:
        self.links.close()


def live_kind_matches(obj: LiveObject, rtype: str) -> bool:
    """Whether ``read`` gave a link of this type (not another kind with that name)."""
    keys = {"bridge": "interfaces", "vlan": "id"}
    return keys[rtype] in obj.attrs
