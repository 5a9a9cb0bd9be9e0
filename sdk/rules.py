"""What a validation rule looks at and what it reports.

A rule is a small pure function: it receives a :class:`Subject` and yields
:class:`Finding` values. The engine turns findings into diagnostics with the file,
line and address of the instance.

Inside ``Subject.attrs`` a value is ``None`` when it was not configured and
``UNKNOWN`` when it is known only after apply *or* already failed the schema pass,
so each rule only has to skip what :func:`known` rejects.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, TypeGuard

from .values import UNKNOWN


@dataclass(frozen=True)
class Finding:
    path: str          # attribute path, e.g. "ip[0].dhcp_host[1].mac"
    message: str


@dataclass
class Subject:
    inst: Any               # the instance: .type, .name, .address, .provider
    attrs: dict[str, Any]   # configured values; UNKNOWN where unknown or invalid
    order: int = 0          # position in the configuration (later ones get cross reports)
    _memo: dict = field(default_factory=dict, repr=False)

    @property
    def address(self) -> str:
        return self.inst.address

    @property
    def provider_type(self) -> str:
        """The provider's type name ("netplan" for an aliased "netplan.kvm02")."""
        return (self.inst.provider or "").split(".", 1)[0]

    def get(self, key: str):
        return self.attrs.get(key)

    def memo(self, key: str, compute: Callable[[dict], Any]):
        """``compute(self.attrs)``, computed once per subject (e.g. a network's subnet)."""
        if key not in self._memo:
            self._memo[key] = compute(self.attrs)
        return self._memo[key]


def known(v: object) -> TypeGuard[Any]:
    """True for a configured, known value that passed the schema (its type is then
    the schema's: a type guard, so rules can use it without re-checking)."""
    return v is not None and v is not UNKNOWN


def block(attrs: dict, key: str) -> dict | None:
    """The single nested block ``key`` (``ip``) as a dict, or None when absent/invalid."""
    v = attrs.get(key)
    if isinstance(v, list) and v and isinstance(v[0], dict):
        return v[0]
    return None


def blocks(parent: dict | None, key: str) -> list[tuple[int, dict]]:
    """The repeated blocks ``key`` of a parent block as (index, dict) pairs."""
    if parent is None:
        return []
    v = parent.get(key)
    if not isinstance(v, list):
        return []
    return [(i, b) for i, b in enumerate(v) if isinstance(b, dict)]


def show(value) -> str:
    """A value as the user would write it in HCL (strings quoted)."""
    if value is UNKNOWN:
        return "(known after apply)"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def path_str(parts) -> str:
    """("ip", 0, "dhcp_host", 1, "mac") -> "ip[0].dhcp_host[1].mac".

    Map keys that are not identifiers are bracketed:
    ("settings", "net.ipv4.ip_forward") -> 'settings["net.ipv4.ip_forward"]'.
    """
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif not _IDENT.match(p):
            out += f"[{json.dumps(p, ensure_ascii=False)}]"
        else:
            out += f".{p}" if out else p
    return out
