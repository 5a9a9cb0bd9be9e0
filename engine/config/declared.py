"""A block that declares a name twice: one check, one message shape (the first
declaration's FILE:LINE), for every kind of block that has a name."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from kvmnet.engine.config.hcl import Block
from kvmnet.engine.diagnostics import Diagnostics


class _Placed(Protocol):
    file: str
    line: int


def is_new(declared: Mapping[str, _Placed], key: str, twice: str, b: Block, d: Diagnostics,
           address: str | None = None) -> bool:
    """True when nothing stands under ``key`` yet; otherwise one diagnostic at ``b``:
    ``twice`` ('resource network.x is defined twice') and where the first one is."""
    first = declared.get(key)
    if first is None:
        return True
    d.add(f"{twice} (first in {first.file}:{first.line})", file=b.file, line=b.line, address=address)
    return False
