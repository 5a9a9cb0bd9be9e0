"""Semantic rules of ``sysctl_profile`` (SPEC §3)."""
from __future__ import annotations

from typing import Iterator

from kvmnet.providers.formats import sysctl_key_problem
from kvmnet.sdk.rules import Finding, Subject, known, path_str, show


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
