"""Version constraints as Terraform writes ``required_version``: ``">= 2.0"``,
``"~> 1.4"``, ``">= 1.2, < 3"``. Pure: parse, check, no I/O."""
from __future__ import annotations

import re

_PART = re.compile(r"^\s*(>=|<=|!=|~>|=|>|<)?\s*v?(\d+(?:\.\d+){0,2})\s*$")


class BadConstraint(ValueError):
    """A constraint string that does not parse."""


def parse_version(text: str) -> tuple[int, ...]:
    """``"2.0.1"`` → ``(2, 0, 1)``; a pre-release or build suffix is dropped."""
    m = re.match(r"^\s*v?(\d+(?:\.\d+)*)", text)
    if not m:
        raise BadConstraint(f'"{text}" is not a version')
    return tuple(int(p) for p in m.group(1).split("."))


def _pad(v: tuple[int, ...]) -> tuple[int, ...]:
    return (v + (0, 0, 0))[:3]


def parse_constraint(text: str) -> list[tuple[str, tuple[int, ...]]]:
    """The (operator, version) pairs of a comma-separated constraint."""
    out = []
    for part in text.split(","):
        m = _PART.match(part)
        if not m:
            raise BadConstraint(f'"{text}" is not a version constraint (e.g. ">= 2.0", "~> 1.4")')
        out.append((m.group(1) or "=", tuple(int(p) for p in m.group(2).split("."))))
    return out


def _holds(op: str, want: tuple[int, ...], have: tuple[int, ...]) -> bool:
    h, w = _pad(have), _pad(want)
    if op == "~>":      # the last given part may grow: ~> 1.4 is >= 1.4, < 2.0
        upper = list(want[:-1]) if len(want) > 1 else [want[0]]
        upper[-1] += 1
        return h >= w and h < _pad(tuple(upper))
    return {"=": h == w, "!=": h != w, ">": h > w, ">=": h >= w, "<": h < w, "<=": h <= w}[op]


def satisfies(version: str, constraint: str) -> bool:
    """Whether ``version`` meets every part of ``constraint``."""
    have = parse_version(version)
    return all(_holds(op, want, have) for op, want in parse_constraint(constraint))
