"""The sysctl provider: ``sysctl_profile`` resources in /proc/sys and sysctl.d.

A profile sets a group of keys. Its live identity is the comma-separated sorted
keys. The value each key had before kvmnet first set it is kept in the state's
provider-private data (``{"original": {key: value}}``) and written back when the key
leaves the profile or the profile is destroyed; ``kvmnet import`` takes the values
live at import time as the originals. With ``persist`` the settings also go to
``<persist_dir>/90-kvmnet-<name>.conf``, whose first line carries the ownership mark
and whose ``# original:`` comment lines keep the originals too (a profile adopted
after a crash gets them back from there). With the provider's ``netns`` every /proc/sys access happens inside that
network namespace (the persist file is a plain file either way).
"""
from __future__ import annotations

import os
from typing import Iterable

from kvmnet.sdk.values import is_unknown
from kvmnet.providers.formats import sysctl_key_problem
from kvmnet.sdk.provider import LiveObject, Provider, ProviderError
from kvmnet.providers.sysctl import persist, procsys
from kvmnet.providers.sysctl.keys import join_id, normalise, split_id
from kvmnet.sdk.killpoints import hit as kill_point, register as register_kill_points

register_kill_points("sysctl", "sysctl.values-write", "sysctl.values-written",
                     "sysctl.persist-written", "sysctl.restored")

DEFAULT_PERSIST_DIR = "/etc/sysctl.d"


class SysctlProvider(Provider):
    name = "sysctl"
    resource_types = ("sysctl_profile",)
    config_schema = {
        "type": "object",
        "properties": {
            "netns": {"type": "string", "minLength": 1,
                      "description": "ip netns name whose per-namespace keys are managed"},
            "persist_dir": {"type": "string", "minLength": 1,
                            "description": "where 90-kvmnet-<name>.conf files go (default /etc/sysctl.d)"},
        },
        "additionalProperties": False,
    }

    def __init__(self, config: dict | None = None, instance: str | None = None):
        super().__init__(config, instance)
        self.netns: str | None = self.config.get("netns") or None
        self.persist_dir: str = self.config.get("persist_dir") or DEFAULT_PERSIST_DIR

    # -- read -------------------------------------------------------------------
    def read(self, rtype: str, ids: Iterable[str]) -> dict[str, LiveObject]:
        """The requested profiles (a missing key is an error), plus every marked
        persist file's profile whose keys all exist (for adoption after a crash)."""
        wanted = {i: split_id(i) for i in ids}
        files = self._files_by_id()
        wanted_ids = {join_id(keys) for keys in wanted.values()}
        extra = {i: split_id(i) for i, f in files.items()
                 if f.mark and i not in wanted_ids and not any(map(sysctl_key_problem, f.settings))}
        keys = {k for ks in (*wanted.values(), *extra.values()) for k in ks}
        values, problems = procsys.read(self.netns, sorted(keys))
        out: dict[str, LiveObject] = {}
        for i, ks in wanted.items():
            for k in ks:
                if k in problems:
                    raise ProviderError(problems[k])
            out[i] = self._live(i, ks, values, files.get(join_id(ks)))
        for i, ks in extra.items():
            if not any(k in problems for k in ks):
                out[i] = self._live(i, ks, values, files[i])
        return out

    @staticmethod
    def _live(instance_id: str, keys: list[str], values: dict, pf) -> LiveObject:
        settings = {k: values[k] for k in keys}
        original = {k: v for k, v in pf.original.items() if k in settings} if pf else {}
        return LiveObject(
            instance_id,
            attrs={"settings": settings, "persist": pf is not None and pf.settings == settings},
            mark=pf.mark if pf else None,
            private={"original": original} if original else {},
        )

    def import_object(self, rtype: str, id: str) -> LiveObject | None:
        """The profile of ``id``'s keys; the values live now are its originals (those
        in a persist file of kvmnet's, from before kvmnet set them, win)."""
        obj = self.read(rtype, [id]).get(id)
        if obj is not None:
            original = {**obj.attrs["settings"], **obj.private.get("original", {})}
            obj.private = {"original": original}
        return obj

    def _files_by_id(self) -> dict[str, persist.PersistFile]:
        out: dict[str, persist.PersistFile] = {}
        for pf in persist.scan(self.persist_dir):
            if pf.settings:
                out.setdefault(join_id(pf.settings), pf)
        return out

    # -- plan-time checks -------------------------------------------------------------
    def check(self, rtype: str, address: str, attrs: dict) -> list[tuple[str | None, str]]:
        settings = attrs.get("settings")
        if not isinstance(settings, dict) or is_unknown(settings):
            return []
        keys = [k for k in settings if isinstance(k, str) and not sysctl_key_problem(k)]
        try:
            unknown = procsys.missing(self.netns, keys)
            read_only = procsys.read_only(self.netns, keys)
        except ProviderError as e:
            return [(None, str(e))]
        where = f" in network namespace {self.netns}" if self.netns else ""
        problems: list[tuple[str | None, str]] = [
            ("settings", f'unknown sysctl key "{k}"{where}') for k in unknown]
        for k in read_only:
            why = (f"not writable inside network namespace {self.netns} (a host-wide key)"
                   if self.netns else "read-only")
            problems.append(("settings", f'sysctl key "{k}" is {why}'))
        return problems

    # -- changes ------------------------------------------------------------------------
    def identify(self, change) -> dict:
        """The keys' values before the create: an interrupted create is rolled back
        to them (:meth:`discard`), whether or not its persist file was written."""
        return {"parts": {"original": self._read(normalise(change.after["settings"]))}}

    def discard(self, rtype: str, identity: dict) -> None:
        original = (identity.get("parts") or {}).get("original")
        if isinstance(original, dict):
            self._restore({str(k): str(v) for k, v in original.items()})

    def create(self, rtype: str, address: str, after: dict, mark: str) -> tuple[dict, dict]:
        desired = normalise(after["settings"])
        original = self._read(desired)
        kill_point("sysctl.values-write")
        self._write_or_undo(desired, undo=original)
        kill_point("sysctl.values-written")
        self._persist(address, after, desired, mark, original)
        kill_point("sysctl.persist-written")
        return self._attrs_now(desired, after), {"original": original}

    def update(self, rtype: str, address: str, before: dict, after: dict,
               private: dict, mark: str) -> tuple[dict, dict]:
        desired = normalise(after["settings"])
        original = dict((private or {}).get("original") or {})
        before_keys = set(((before or {}).get("settings") or {}))
        live = self._read(desired)
        for k in desired:
            if k not in before_keys and k not in original:
                original[k] = live[k]
        leaving = sorted((before_keys | set(original)) - set(desired))
        restore = {k: original.pop(k) for k in leaving if k in original}
        self._restore(restore)
        changed = {k: v for k, v in desired.items() if live[k] != v}
        kill_point("sysctl.values-write")
        self._write_or_undo(changed, undo={k: live[k] for k in changed})
        kill_point("sysctl.values-written")
        self._persist(address, after, desired, mark, original)
        kill_point("sysctl.persist-written")
        return self._attrs_now(desired, after), {"original": original}

    def delete(self, rtype: str, address: str, before: dict, private: dict) -> None:
        self._restore(dict((private or {}).get("original") or {}))
        kill_point("sysctl.restored")
        persist.remove(self._path(address))

    # -- history ------------------------------------------------------------------------
    def snapshot(self, rtype: str, ids: Iterable[str]) -> dict:
        """Current values of the profiles' keys and their persist files' contents."""
        wanted = {join_id(split_id(i)) for i in ids}
        keys = sorted({k for i in wanted for k in split_id(i)})
        values, problems = procsys.read(self.netns, keys)
        files = {f.path: f.text for i, f in self._files_by_id().items() if i in wanted}
        return {"netns": self.netns, "values": values, "unreadable": problems, "files": files}

    # -- helpers ------------------------------------------------------------------------
    def _path(self, address: str) -> str:
        return os.path.join(self.persist_dir, persist.file_name(address))

    def _read(self, keys) -> dict[str, str]:
        values, problems = procsys.read(self.netns, sorted(keys))
        if problems:
            raise ProviderError("; ".join(problems[k] for k in sorted(problems)))
        return values

    def _restore(self, original: dict[str, str]) -> None:
        """Write original values back; a key that no longer exists (its interface is
        gone) has nothing to restore."""
        gone = set(procsys.missing(self.netns, original)) if original else set()
        procsys.write(self.netns, {k: v for k, v in original.items() if k not in gone})

    def _write_or_undo(self, values: dict[str, str], undo: dict[str, str]) -> None:
        """Write ``values``; on failure put ``undo`` back (best effort) and re-raise."""
        try:
            procsys.write(self.netns, values)
        except ProviderError:
            for k, v in undo.items():
                try:
                    procsys.write(self.netns, {k: v})
                except ProviderError:
                    pass
            raise

    def _persist(self, address: str, after: dict, settings: dict, mark: str,
                 original: dict) -> None:
        path = self._path(address)
        if after.get("persist", True):
            persist.write(path, persist.render(mark, settings, original))
        else:
            persist.remove(path)

    def _attrs_now(self, desired: dict, after: dict) -> dict:
        """The attributes as they are live after a change (the kernel may reformat)."""
        live = self._read(desired)
        return {"settings": live, "persist": bool(after.get("persist", True)) and live == desired}
