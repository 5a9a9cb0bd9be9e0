"""Ownership marks: how kvmnet recognises the live objects it manages.

A mark carries the state's lineage and the resource address. Providers store it
wherever their backend allows (libvirt ``<metadata>``, a link's ``ifalias``, a
comment on an nft rule, a header line in a file) but always in this one format,
through these two functions, so that adoption after a crash works the same for all.

A mark is at most :data:`MAX_BYTES` bytes, the most an nft rule comment holds
(128 with its terminating NUL): a longer address (deep in modules) keeps its
start and ends in ``~`` and 16 hex digits of its SHA-256, so the same address
always gives the same mark (:func:`mark_address`), and adoption compares marks
through it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

PREFIX = "kvmnet:"
MAX_BYTES = 127
_HASH_CHARS = 16


@dataclass(frozen=True)
class Mark:
    lineage: str
    address: str

    def __str__(self) -> str:
        return format_mark(self.lineage, self.address)


def format_mark(lineage: str, address: str) -> str:
    """``kvmnet:<lineage>:<address>`` (the lineage is a UUID, so it has no colon),
    the address shortened by :func:`mark_address` to fit :data:`MAX_BYTES`."""
    room = MAX_BYTES - len(f"{PREFIX}{lineage}:".encode())
    return f"{PREFIX}{lineage}:{mark_address(address, room)}"


def mark_address(address: str, room: int = MAX_BYTES - len(PREFIX) - 37) -> str:
    """The address as a mark holds it: itself when it fits in ``room`` bytes (a
    UUID lineage leaves 83), else its first characters, ``~`` and 16 hex digits of
    its SHA-256 (deterministic, so a mark read back names one address)."""
    if len(address.encode()) <= room:
        return address
    digest = hashlib.sha256(address.encode()).hexdigest()[:_HASH_CHARS]
    head = address.encode()[:max(0, room - _HASH_CHARS - 1)].decode(errors="ignore")
    return f"{head}~{digest}"


def mark_names(mark: "Mark", address: str) -> bool:
    """True when ``mark`` was written for ``address`` (shortened or not)."""
    return mark.address == address or mark.address == mark_address(address)


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
