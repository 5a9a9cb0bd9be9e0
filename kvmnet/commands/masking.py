"""The command line as recorded (history, lock holder) without sensitive values."""
from __future__ import annotations

from collections.abc import Iterable

MASK = "(sensitive value)"


def mask_vars(argv: list[str], sensitive: Iterable[str]) -> list[str]:
    """``argv`` with the value of each ``--var NAME=VALUE`` / ``-var=NAME=VALUE`` of a
    sensitive variable replaced by a mask."""
    names = set(sensitive)
    if not names:
        return list(argv)
    out: list[str] = []
    expect_value = False
    for word in argv:
        if expect_value:
            out.append(_mask_item(word, names))
            expect_value = False
            continue
        flag, eq, rest = word.partition("=")
        if flag in ("--var", "-var"):
            if eq:
                out.append(f"{flag}={_mask_item(rest, names)}")
            else:
                out.append(word)
                expect_value = True
            continue
        out.append(word)
    return out


def _mask_item(item: str, names: set[str]) -> str:
    name, sep, _value = item.partition("=")
    return f"{name}={MASK}" if sep and name.strip() in names else item
