"""Semantic rules of ``sysctl_profile`` (SPEC §3)."""
from __future__ import annotations

from typing import Iterator

from kvmnet.providers.formats import sysctl_key_problem
from kvmnet.sdk.rules import Finding, Subject, known, path_str, show
from kvmnet.sdk.types import Claim


def check_settings(s: Subject) -> Iterator[Finding]:
    """Keys are dotted sysctl names, never paths; values fit on one line."""
    settings = s.get("settings")
    if not known(settings):
        return
    for key, value in settings.items():
        path = path_str(("settings", key))
        problem = sysctl_key_problem(key)
        if problem:
            yield Finding(path, f"sysctl key {show(key)} is not a dotted name: {problem}")
        if isinstance(value, str) and known(value):
            if "\n" in value or "\r" in value:
                yield Finding(path, f"{path} = {show(value)} must fit on one line")
            elif not value.strip():
                yield Finding(path, f"{path} must not be empty")


RULES = (check_settings,)


def _key_taken(claim: Claim, _earlier: Claim, other: str) -> str:
    return (f"sysctl {show(claim.key)} is also set by {other}; two profiles cannot set one "
            "key (each apply would undo the other, and destroying one would restore the "
            "other's value as the original)")


def settings_claims(s: Subject) -> Iterator[Claim]:
    """Each key a profile sets, taken by that profile alone within its namespace."""
    settings = s.get("settings")
    if not known(settings):
        return
    for key in settings:
        if known(key):
            yield Claim("sysctl key", key, path_str(("settings", key)), _key_taken)
