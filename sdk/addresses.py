"""Resource addresses as Terraform writes them, module path included.

``network.lab``, ``network.t[0]``, ``module.kvm01.network.lab``,
``module.host["kvm01"].module.bridges[1].bridge.br0["a"]``: zero or more module
steps (``module.NAME`` with an optional instance key), then ``TYPE.NAME`` with an
optional instance key. A key is a whole number or a JSON-quoted string, so a key
may hold dots and brackets; these functions split on the grammar, never on
characters. The engine, the state and the CLI read addresses only through here.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INT = re.compile(r"[0-9]+")

Key = int | str | None


@dataclass(frozen=True)
class Address:
    """A parsed address; ``type`` is None for a module address (``module.a[0]``)."""

    module: tuple[tuple[str, Key], ...]     # ((call name, instance key), ...)
    type: str | None
    name: str | None
    key: Key = None

    @property
    def module_path(self) -> str:
        return "".join(f"module.{n}{format_key(k)}." for n, k in self.module)[:-1]

    @property
    def resource(self) -> str:
        """The address without the final instance key."""
        return module_prefix(self.module_path) + f"{self.type}.{self.name}"


def format_key(key: Key) -> str:
    if key is None:
        return ""
    if isinstance(key, int):
        return f"[{key}]"
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'["{escaped}"]'


def module_prefix(module_path: str) -> str:
    """``module.a.`` for ``module.a``; empty for the root module."""
    return f"{module_path}." if module_path else ""


def _key(text: str, i: int) -> tuple[Key, int]:
    """The key at ``text[i] == "["``; (key, index after the closing bracket)."""
    j = i + 1
    m = _INT.match(text, j)
    if m and text[m.end():m.end() + 1] == "]":
        return int(m.group()), m.end() + 1
    if text[j:j + 1] == '"':
        try:
            value, end = json.JSONDecoder(strict=False).raw_decode(text, j)
        except ValueError:
            raise ValueError(f"bad instance key in address {text!r}") from None
        if isinstance(value, str) and text[end:end + 1] == "]":
            return value, end + 1
    raise ValueError(f"bad instance key in address {text!r}")


def _name(text: str, i: int) -> tuple[str, int]:
    m = _NAME.match(text, i)
    if not m:
        raise ValueError(f"{text!r} is not an address (expected a name at position {i + 1})")
    return m.group(), m.end()


def parse_address(text: str, *, module_only: bool = False) -> Address:
    """``text`` as an :class:`Address`; a bare module address (``module.a``) is
    allowed (``type`` None). ValueError with the reason when it is not one."""
    i, n = 0, len(text)
    mods: list[tuple[str, Key]] = []
    while True:
        first, i = _name(text, i)
        if first == "module":
            if text[i:i + 1] != ".":
                raise ValueError(f'{text!r} is not an address ("module" must be followed by .NAME)')
            call, i = _name(text, i + 1)
            key: Key = None
            if text[i:i + 1] == "[":
                key, i = _key(text, i)
            mods.append((call, key))
            if i == n:
                return Address(tuple(mods), None, None)
            if text[i:i + 1] != ".":
                raise ValueError(f"{text!r} is not an address (unexpected {text[i:]!r})")
            i += 1
            continue
        if module_only:
            raise ValueError(f"{text!r} is not a module address")
        if text[i:i + 1] != ".":
            raise ValueError(f"{text!r} is not an address (expected TYPE.NAME)")
        name, i = _name(text, i + 1)
        key = None
        if text[i:i + 1] == "[":
            key, i = _key(text, i)
        if i != n:
            raise ValueError(f"{text!r} is not an address (unexpected {text[i:]!r})")
        return Address(tuple(mods), first, name, key)


def resource_of(address: str) -> str:
    """``module.a.network.lab`` for ``module.a.network.lab[0]`` (the address itself
    when it has no instance key, or does not parse)."""
    if "[" not in address:
        return address
    if not address.startswith("module."):    # TYPE.NAME[KEY]: the first "[" opens the key
        return address[:address.index("[")]
    try:
        a = parse_address(address)
    except ValueError:
        return address
    return a.resource if a.type is not None else address


def module_of(address: str) -> str:
    """``module.a["x"]`` for ``module.a["x"].network.lab[0]``; "" in the root module."""
    if not address.startswith("module."):
        return ""
    try:
        return parse_address(address).module_path
    except ValueError:
        return ""


def matches_record(address: str, rtype: str, name: str) -> bool:
    """True when ``address`` is an instance address of resource ``rtype.name``."""
    if address.startswith(rtype):      # the root module's: no parse needed
        n = len(rtype) + len(name) + 1
        if address[len(rtype):n] == "." + name and (len(address) == n or address[n] == "["):
            return True
    try:
        a = parse_address(address)
    except ValueError:
        return False
    return a.type == rtype and a.name == name


def within(address: str, target: str) -> bool:
    """True when ``address`` is what ``target`` names: the same instance, an
    instance of the target resource, or anything inside the target module."""
    if address == target:
        return True
    try:
        a = parse_address(address)
        t = parse_address(target)
    except ValueError:
        return False
    if t.type is None:       # a module: every instance of every call along the path
        return len(a.module) >= len(t.module) and all(
            an == tn and (tk is None or ak == tk)
            for (an, ak), (tn, tk) in zip(a.module, t.module, strict=False))
    return a.module == t.module and a.type == t.type and a.name == t.name \
        and (t.key is None or a.key == t.key)
