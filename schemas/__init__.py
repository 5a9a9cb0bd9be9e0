"""JSON Schemas (Draft 2020-12) of the six resource types, one file per type.

Each schema describes exactly the *configured* attributes of a type (SPEC §3), as
the engine hands them to validation: without defaults, without meta-arguments and
without computed attributes; nested blocks are arrays of objects. The files are
package data next to this module.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent

RESOURCE_TYPES = ("network", "bridge", "vlan", "nic_attachment", "port_forward", "sysctl_profile")


@lru_cache(maxsize=None)
def _load(rtype: str) -> dict:
    if rtype not in RESOURCE_TYPES:
        raise KeyError(f"no schema for resource type {rtype!r}")
    with open(SCHEMA_DIR / f"{rtype}.json", encoding="utf-8") as f:
        return json.load(f)


def load_schema(rtype: str) -> dict:
    """The JSON Schema of a resource type, as a fresh dict (callers may mutate it)."""
    return json.loads(json.dumps(_load(rtype)))
