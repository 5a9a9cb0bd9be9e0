"""Output values: what the last apply's ``output`` blocks evaluated to, kept with the
state as Terraform keeps them (``kvmnet output``, ``show -json``, the ``before`` of
a plan's output changes).

The SQLite side is a self-contained block like the intents': the ``outputs`` table
is created on first write, so a state file without it simply has no outputs.
"""
from __future__ import annotations

import json
import sqlite3
from typing import Any

_CREATE = ("CREATE TABLE IF NOT EXISTS outputs (name TEXT PRIMARY KEY, value TEXT NOT NULL, "
           "sensitive INTEGER NOT NULL)")


def _has_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outputs'"
                        ).fetchone() is not None


def select_outputs(conn: sqlite3.Connection) -> tuple[dict[str, Any], frozenset[str]]:
    """(values by name, names of the sensitive ones); raises ValueError for a row
    that is not an output."""
    if not _has_table(conn):
        return {}, frozenset()
    values: dict[str, Any] = {}
    sensitive = set()
    for name, text, secret in conn.execute("SELECT name, value, sensitive FROM outputs ORDER BY name"):
        if type(name) is not str or type(text) is not str or type(secret) is not int:
            raise ValueError(f"its outputs table holds a row that is not an output: {name!r}")
        values[name] = json.loads(text)
        if secret:
            sensitive.add(name)
    return values, frozenset(sensitive)


def replace_outputs(conn: sqlite3.Connection, values: dict[str, Any], sensitive: frozenset[str]) -> bool:
    """Make the outputs ``values`` inside the caller's open transaction; True when
    they changed."""
    if (values, sensitive) == select_outputs(conn):
        return False
    conn.execute(_CREATE)
    conn.execute("DELETE FROM outputs")
    conn.executemany("INSERT INTO outputs (name, value, sensitive) VALUES (?, ?, ?)",
                     [(n, json.dumps(v, separators=(",", ":"), allow_nan=False), int(n in sensitive))
                      for n, v in sorted(values.items())])
    return True
