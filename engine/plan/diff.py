"""Pure functions: desired × actual attributes → attribute-level differences.

Conventions (see ``kvmnet.engine.resources``): both sides are canonical; a desired
value of ``None`` means "not configured: whatever it is live" and never differs;
an empty list (``srv = []``: none) equals an absent value read back;
``UNKNOWN`` (known after apply) always differs unless the other side is equal by
identity; ``ignore_changes`` names top-level attributes (or ``*`` for all) to skip.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kvmnet.engine.resources import TYPES
from kvmnet.sdk.values import UNKNOWN, contains_unknown


@dataclass(frozen=True)
class AttrChange:
    path: str
    before: Any
    after: Any


def _equal(a, b) -> bool:
    ta, tb = type(a), type(b)
    if ta is tb and (ta is str or ta is int):   # the common leaves, decided at once
        return a == b
    if ta is dict and tb is dict:
        if len(a) == len(b):
            for k, x in a.items():
                if k not in b or not _equal(x, b[k]):
                    break
            else:
                return True
        # a key present on one side only still equals an explicit None on the other
        return all(_equal(a.get(k), b.get(k)) for k in a.keys() | b.keys())
    if ta is list and tb is list:
        if len(a) != len(b):
            return False
        for x, y in zip(a, b, strict=True):
            if not _equal(x, y):
                return False
        return True
    if a is UNKNOWN or b is UNKNOWN:
        return False
    if (a is None and b == []) or (b is None and a == []):
        return True         # no blocks written (``srv = []``) and none read back are one
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        keys = set(a) | set(b)
        return all(_equal(a.get(k), b.get(k)) for k in keys)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def diff_attrs(desired: dict, actual: dict, ignore: tuple[str, ...] = (),
               skip: frozenset[str] = frozenset()) -> list[AttrChange]:
    """Differences where the desired value is set and differs from the actual one.

    Nested dicts (``network.ip``) are compared key by key, giving paths like
    ``ip.dhcp_host``; lists are compared whole.
    """
    if "*" in ignore:
        return []
    out: list[AttrChange] = []
    for k, want in desired.items():
        if want is None or k in ignore or k in skip:
            continue
        have = actual.get(k) if actual else None
        if isinstance(want, dict) and isinstance(have, dict):
            for sub in diff_attrs(want, have):
                out.append(AttrChange(f"{k}.{sub.path}", sub.before, sub.after))
        elif not _equal(want, have):
            out.append(AttrChange(k, have, want))
    return out


def forces_replace(rtype: str, changes: list[AttrChange]) -> list[str]:
    """The changed paths that force replacement, per the type's ``replace_on``."""
    rule = TYPES[rtype].replace_on
    if "*" in rule:
        return [c.path for c in changes]
    out = []
    for c in changes:
        parts = c.path.split(".")
        prefixes = {".".join(parts[: i + 1]) for i in range(len(parts))}
        # a whole nested block added or removed (``ip``) replaces if any of its
        # attributes would (``ip.address``)
        if prefixes & rule or any(r.startswith(c.path + ".") for r in rule):
            out.append(c.path)
    return out


def keep_as_found(desired: dict, prior: dict, skip: frozenset[str] = frozenset(),
                  path: str = "", kept: list[str] | None = None) -> dict:
    """``desired`` with what it leaves out (None) taken from ``prior``, recursively
    into blocks both have (lists are the config's, whole); the paths taken are
    appended to ``kept``."""
    out = dict(desired)
    for k, have in prior.items():
        if k in skip or have is None:
            continue
        want = desired.get(k)
        if want is None:
            out[k] = have
            if kept is not None:
                kept.append(path + k)
        elif isinstance(want, dict) and isinstance(have, dict):
            out[k] = keep_as_found(want, have, frozenset(), f"{path}{k}.", kept)
    return out


def merge_planned(rtype: str, desired: dict, prior: dict | None, replacing: bool,
                  kept: list[str] | None = None) -> dict:
    """The planned "after" value: desired attributes, with what is not configured
    (None) or computed taken from the prior object unless it is being replaced,
    in which case those are known only after apply — or, for a type that keeps
    what is unconfigured (``keep_unconfigured``), taken from the prior object too
    (their paths appended to ``kept``)."""
    t = TYPES[rtype]
    if replacing and prior is not None and t.keep_unconfigured:
        found: list[str] = []
        out = keep_as_found(desired, prior, t.computed - t.kept_on_replace, "", found)
        for k in sorted(t.computed - t.kept_on_replace):
            out[k] = UNKNOWN
        if kept is not None:      # a computed attribute carried over is not "configuration"
            kept += [p for p in found if p not in t.kept_on_replace]
        return out
    out = dict(desired)
    for k in sorted(t.computed):
        carried = not replacing or k in t.kept_on_replace
        out[k] = prior.get(k) if (prior is not None and carried) else UNKNOWN
    # an attribute left out of the config is absent from ``desired`` or None
    for k in set(desired) | t.computed_if_omitted:
        if desired.get(k) is None:
            if prior is not None and not replacing and prior.get(k) is not None:
                out[k] = prior[k]
            elif k in t.computed_if_omitted:
                out[k] = UNKNOWN
    return out


def is_fully_known(v) -> bool:
    return not contains_unknown(v)
