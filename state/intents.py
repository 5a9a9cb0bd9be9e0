"""Intents: what the engine is about to do to a live object, recorded (and
committed) before the provider is called, and closed in the same transaction as
the state write of its result. An intent still open at the start of a run marks a
change that was interrupted; :mod:`kvmnet.engine.reconcile` settles it.

The SQLite side is a self-contained block: the ``intents`` table is created on
first use (``CREATE TABLE IF NOT EXISTS``), so a state file without it simply has
no open intents.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from kvmnet.state.records import now_iso


@dataclass(frozen=True)
class Intent:
    """One change about to be made live.

    ``identity`` names exactly one object, fixed before the provider is called:
    ``id`` (the live ID), ``mark`` (the ownership mark the object gets), ``attrs``
    (attributes kvmnet chose that only that object has: a UUID, a MAC), ``parts``
    (provider data to undo a half-made object: a temporary link name, originals).
    """

    address: str
    action: str                 # "create" | "update" | "delete"
    type: str
    provider: str
    identity: dict[str, Any] = field(default_factory=dict)
    id: int = 0                 # assigned when recorded
    created: str = ""


_CREATE = ("CREATE TABLE IF NOT EXISTS intents (id INTEGER PRIMARY KEY, address TEXT NOT NULL, "
           "action TEXT NOT NULL, type TEXT NOT NULL, provider TEXT NOT NULL, "
           "identity TEXT NOT NULL, created TEXT NOT NULL)")
_COLUMNS = "id, address, action, type, provider, identity, created"


def _has_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'intents'"
                        ).fetchone() is not None


def insert_intents(conn: sqlite3.Connection, intents: list[Intent]) -> list[int]:
    """Insert ``intents`` inside the caller's open transaction; their new IDs."""
    conn.execute(_CREATE)
    now = now_iso()
    ids = []
    for it in intents:
        text = json.dumps(it.identity, separators=(",", ":"), sort_keys=True, allow_nan=False)
        cur = conn.execute("INSERT INTO intents (address, action, type, provider, identity, created) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           (it.address, it.action, it.type, it.provider, text, now))
        assert cur.lastrowid is not None      # an INSERT into a rowid table
        ids.append(cur.lastrowid)
    return ids


def delete_intent(conn: sqlite3.Connection, intent_id: int) -> bool:
    """Close intent ``intent_id`` inside the caller's open transaction."""
    if not _has_table(conn):
        return False
    return conn.execute("DELETE FROM intents WHERE id = ?", (intent_id,)).rowcount > 0


def select_intents(conn: sqlite3.Connection) -> list[Intent]:
    """Every open intent, oldest first ([] when the table does not exist)."""
    if not _has_table(conn):
        return []
    out = []
    for row in conn.execute(f"SELECT {_COLUMNS} FROM intents ORDER BY id").fetchall():
        iid, address, action, rtype, provider, identity, created = row
        try:
            ident = json.loads(identity)
        except ValueError:
            ident = None
        if not isinstance(ident, dict):
            raise ValueError(f"intent {iid} ({address}) has a damaged identity")
        out.append(Intent(address, action, rtype, provider, ident, iid, created))
    return out
