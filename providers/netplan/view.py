"""How the netplan file and the kernel combine (pure).

- :func:`fold`: the file's entries after a list of changes.
- :func:`merged_attrs`: what ``read`` reports for an object that is live, given its
  file entry: the kernel's values, the file's ``dhcp4``/``nameservers`` (which the
  kernel does not hold), and, when the entry was edited by hand, the file's value
  for every attribute where the file and the kernel disagree. An object live but
  missing from the file reports its file-backed attributes as None, so the plan
  shows the update that writes it back.
"""
from __future__ import annotations

from typing import Iterable

from kvmnet.sdk.provider import Change
from kvmnet.providers.links import result_attrs
from kvmnet.providers.netplan.render import FILE_ATTRS, NETPLAN_ONLY, Entry


def fold(entries: dict[tuple[str, str], Entry], changes: Iterable[Change]) -> dict[tuple[str, str], Entry]:
    out = dict(entries)
    for c in changes:
        old = out.get((c.type, c.before["name"])) if c.before else None
        if c.before is not None and (c.action == "delete" or (c.after or {}).get("name") != c.before.get("name")):
            out.pop((c.type, c.before["name"]), None)
        if c.action in ("create", "update") and c.after is not None:
            name = c.after["name"]
            mark = c.mark or (old.mark if old else "") or (out[(c.type, name)].mark if (c.type, name) in out else "")
            out[(c.type, name)] = Entry(c.type, name, result_attrs(c.type, c.after), mark)
    return out


def merged_attrs(rtype: str, live: dict, entry: Entry | None) -> dict:
    out = dict(live)
    persisted = [k for k in FILE_ATTRS[rtype] if k != "name"]
    if entry is None:
        for k in persisted:
            out[k] = None
        return out
    for k in NETPLAN_ONLY:
        out[k] = entry.attrs.get(k)
    if entry.edited:
        for k in persisted:
            if k not in NETPLAN_ONLY and entry.attrs.get(k) != live.get(k):
                out[k] = entry.attrs.get(k)
    return out


def file_attrs(rtype: str, entry: Entry) -> dict:
    """What ``read`` reports with ``apply = false``: the file alone."""
    out = dict(entry.attrs)
    if rtype == "bridge":
        out["multicast_snooping"] = None   # no netplan key: not managed in file-only mode
    return out
