"""Ownership marks: how kvmnet recognises the live objects it manages.

A mark carries the state's lineage and the resource address. Providers store it
wherever their backend allows (libvirt ``<metadata>``, a link's ``ifalias``, a
comment on an nft rule, a header line in a file) but always in this one format,
through these two functions, so that adoption after a crash works the same for all.
"""
from __future__ import annotations

from dataclasses import dataclass

PREFIX = "kvmnet:"


@dataclass(frozen=True)
class Mark:
    lineage: str
    address: str

    def __str__(self) -> str:
        return format_mark(self.lineage, self.address)


def format_mark(lineage: str, address: str) -> str:
    """``kvmnet:<lineage>:<address>`` (the lineage is a UUID, so it has no colon)."""
    return f"{PREFIX}{lineage}:{address}"


def parse_mark(text: str | None) -> Mark | None:
    """The mark in ``text``, or None when it is not a kvmnet mark."""
    if not text:
        return None
    text = text.strip()
    if not text.startswith(PREFIX):
        return None
    rest = text[len(PREFIX):]
    lineage, sep, address = rest.partition(":")
    if not sep or not lineage or not address:
        return None
    return Mark(lineage, address)
