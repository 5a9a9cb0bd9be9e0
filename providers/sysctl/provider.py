"""The sysctl provider: ``sysctl_profile`` resources in /proc/sys and sysctl.d.

A profile sets a group of keys. Its live identity is the comma-separated sorted
keys. The value each key had before kvmnet first set it is kept in the state's
provider-private data (``{"original": {key: value}}``) and written back when the key
leaves the profile or the profile is destroyed; ``kvmnet import`` takes the values
live at import time as the originals. Each profile has a file
``<persist_dir>/90-kvmnet-<stem>.conf`` (``persist.file_name``) whose first line
carries the ownership mark and whose ``# original:`` comment lines keep the
originals too; it is written *before* the first value, so a profile adopted after a
crash at any point gets its originals back from there. With ``persist`` the file
also holds the settings (sysctl applies them at boot); without, only the comments.
With the provider's ``netns`` every /proc/sys access happens inside that network
namespace (the persist file is a plain file either way).
"""
from __future__ import annotations

import os
from typing import Iterable

from kvmnet.sdk.values import is_unknown
from kvmnet.providers.formats import sysctl_key_problem
from kvmnet.sdk.ownership import parse_mark
from kvmnet.sdk import probes
from kvmnet.sdk.provider import LiveObject, Provider, ProviderError
from kvmnet.providers import timeouts
from kvmnet.providers.sysctl import persist, procsys
from kvmnet.providers.sysctl.keys import join_id, normalise, split_id
from kvmnet.sdk.killpoints import hit as kill_point, register as register_kill_points

register_kill_points("sysctl", "sysctl.originals-recorded", "sysctl.values-written",
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
            "timeout": timeouts.SCHEMA,
        },
        "additionalProperties": False,
    }

    def __init__(self, config: dict | None = None, instance: str | None = None):
        super().__init__(config, instance)
        self.netns: str | None = self.config.get("netns") or None
        self.persist_dir: str = self.config.get("persist_dir") or DEFAULT_PERSIST_DIR
        self.timeout = timeouts.timeout_of(self.config)
        self._file_owner: dict[str, str] = {}     # persist file → address checked first

    # -- read -------------------------------------------------------------------
    def read(self, rtype: str, ids: Iterable[str]) -> dict[str, LiveObject]:
        """The requested profiles (a missing key is an error), plus every marked
        persist file's profile whose keys all exist (for adoption after a crash)."""
        wanted = {i: split_id(i) for i in ids}
        files = self._files_by_id()
        wanted_ids = {join_id(keys) for keys in wanted.values()}
        extra = {i: split_id(i) for i, f in files.items()
                 if f.mark and i not in wanted_ids and not any(map(sysctl_key_problem, split_id(i)))}
        keys = {k for ks in (*wanted.values(), *extra.values()) for k in ks}
        values, problems = procsys.read(self.netns, sorted(keys), self.timeout)
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
        """Persist files by the ID of their keys (a ``persist = false`` record file
        has only originals, which name the same keys)."""
        out: dict[str, persist.PersistFile] = {}
        for pf in persist.scan(self.persist_dir):
            keys = pf.settings or pf.original
            if keys:
                out.setdefault(join_id(keys), pf)
        return out

    # -- plan-time checks -------------------------------------------------------------
    def check(self, rtype: str, address: str, attrs: dict) -> list[tuple[str | None, str]]:
        return self._file_problems(address) + self._key_problems(attrs)

    def _file_problems(self, address: str) -> list[tuple[str | None, str]]:
        """The profile's persist file is its own: no other instance of this run maps
        to it, and no file there carries another address's mark (an older kvmnet's
        name for another profile)."""
        path = self._path(address)
        other = self._file_owner.setdefault(path, address)
        if other != address:
            return [(None, f"persist file {path} would also be the file of {other}")]
        found = persist.read(path)
        mark = found.mark if found else None
        if mark is not None and mark.address != address:
            return [(None, f"persist file {path} already holds the profile of {mark.address} "
                           "(named by an older kvmnet); apply a change to that profile first "
                           "(it moves to its own file), or remove the file")]
        return []

    def _key_problems(self, attrs: dict) -> list[tuple[str | None, str]]:
        settings = attrs.get("settings")
        if not isinstance(settings, dict) or is_unknown(settings):
            return []
        keys = [k for k in settings if isinstance(k, str) and not sysctl_key_problem(k)]
        try:
            unknown = procsys.missing(self.netns, keys, self.timeout)
            read_only = procsys.read_only(self.netns, keys, self.timeout)
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
        """Originals read, recorded in the persist file, and only then values written."""
        desired = normalise(after["settings"])
        original = self._read(desired)
        previous = self._record(address, after, desired, mark, original)
        kill_point("sysctl.originals-recorded")
        self._write_or_undo(desired, undo=original, path=self._path(address), text=previous)
        kill_point("sysctl.values-written")
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
        # the new keys' originals are recorded (the leaving keys' kept) before any write
        previous = self._record(address, after, desired, mark, original)
        kill_point("sysctl.originals-recorded")
        restore = {k: original.pop(k) for k in leaving if k in original}
        self._restore(restore)
        changed = {k: v for k, v in desired.items() if live[k] != v}
        self._write_or_undo(changed, undo={k: live[k] for k in changed},
                            path=self._path(address), text=previous)
        kill_point("sysctl.values-written")
        if restore:
            self._record(address, after, desired, mark, original)
            kill_point("sysctl.persist-written")
        return self._attrs_now(desired, after), {"original": original}

    def delete(self, rtype: str, address: str, before: dict, private: dict) -> None:
        self._restore(dict((private or {}).get("original") or {}))
        kill_point("sysctl.restored")
        persist.remove(self._path(address))
        self._remove_legacy(address)

    # -- history ------------------------------------------------------------------------
    def snapshot(self, rtype: str, ids: Iterable[str]) -> dict:
        """Current values of the profiles' keys and their persist files' contents."""
        wanted = {join_id(split_id(i)) for i in ids}
        keys = sorted({k for i in wanted for k in split_id(i)})
        values, problems = procsys.read(self.netns, keys, self.timeout)
        files = {f.path: f.text for i, f in self._files_by_id().items() if i in wanted}
        return {"netns": self.netns, "values": values, "unreadable": problems, "files": files}

    # -- helpers ------------------------------------------------------------------------
    def _path(self, address: str) -> str:
        return os.path.join(self.persist_dir, persist.file_name(address))

    def _read(self, keys) -> dict[str, str]:
        values, problems = procsys.read(self.netns, sorted(keys), self.timeout)
        if problems:
            raise ProviderError("; ".join(problems[k] for k in sorted(problems)))
        return values

    def _restore(self, original: dict[str, str]) -> None:
        """Write original values back; a key that no longer exists (its interface is
        gone) has nothing to restore."""
        gone = set(procsys.missing(self.netns, original, self.timeout)) if original else set()
        procsys.write(self.netns, {k: v for k, v in original.items() if k not in gone}, self.timeout)

    def _write_or_undo(self, values: dict[str, str], undo: dict[str, str],
                       path: str, text: str | None) -> None:
        """Write ``values``; on failure put ``undo`` back (best effort), the persist
        file at ``path`` back to ``text`` (None: no file), and re-raise."""
        try:
            procsys.write(self.netns, values, self.timeout)
        except ProviderError:
            for k, v in undo.items():
                try:
                    procsys.write(self.netns, {k: v}, self.timeout)
                except ProviderError:
                    pass        # the error raised below names the first failure
            if text is None:
                persist.remove(path)
            else:
                persist.write(path, text)
            raise

    def _record(self, address: str, after: dict, settings: dict, mark: str,
                original: dict) -> str | None:
        """Write the persist file (with the settings when ``persist``, else only the
        mark and the originals), replacing a file of an older kvmnet's name; the
        text it had before (None: there was none)."""
        path = self._path(address)
        found = persist.read(path)
        persist.write(path, persist.render(mark, settings, original,
                                           persist=bool(after.get("persist", True))))
        self._remove_legacy(address)
        self._remove_moved(path, mark, settings)
        return found.text if found else None

    def _remove_moved(self, path: str, mark: str, settings: dict) -> None:
        """Remove this profile's file under the address it was moved from (a moved
        block or ``state mv``): same state, same keys, another address's mark."""
        new = parse_mark(mark)
        if new is None:
            return
        for pf in persist.scan(self.persist_dir):
            old = pf.mark
            if pf.path != path and old is not None and old.lineage == new.lineage \
                    and old.address != new.address and set(pf.settings or pf.original) == set(settings):
                persist.remove(pf.path)

    def _remove_legacy(self, address: str) -> None:
        """Remove the file an older kvmnet named for ``address``, if it is that
        profile's (its mark says so) and not the current name."""
        legacy = os.path.join(self.persist_dir, persist.legacy_file_name(address))
        if legacy == self._path(address):
            return
        found = persist.read(legacy)
        if found is not None and found.mark is not None and found.mark.address == address:
            persist.remove(legacy)

    def _attrs_now(self, desired: dict, after: dict) -> dict:
        """The attributes as they are live after a change (the kernel may reformat)."""
        live = self._read(desired)
        return {"settings": live, "persist": bool(after.get("persist", True)) and live == desired}

    def probes(self, managed: dict) -> list[probes.Probe]:
        """The default gateway of this provider's namespace answers."""
        return [probes.gateway(self.config.get("netns") or None)]
