"""The hints errors give where a plain value and the block it stands for are
mixed up. kvmnet v1 had a network's ``bridge``, ``mtu``, ``domain`` and
``virtualport`` as plain values; they are blocks now (``bridge { name }``). A
reference reads a value in the shape its config wrote it (the v1 shorthand
``bridge = "virbr1"`` as the string, ``bridge { name = ... }`` as the block), so
a block used where a string is wanted needs its inner attribute
(``network.lab.bridge.name``), and a shorthand's value has none to add."""
from __future__ import annotations

# the inner attribute a v1 value became, in the order they are looked for
INNER = ("name", "size", "type")


def inner_key(value) -> str | None:
    """The inner attribute of a block that stands for v1's plain value, if any."""
    if isinstance(value, dict):
        for k in INNER:
            v = value.get(k)
            if isinstance(v, (str, int)) and not isinstance(v, bool):
                return k
    return None


def hint(value, text: str | None = None) -> str:
    """``"; … write X.name"`` for a block ``value`` (``text``: the reference, when
    known), else ``""``."""
    k = inner_key(value)
    if k is None:
        return ""
    if text:
        return f"; {text} is a block (in kvmnet v1 a plain value): write {text}.{k}"
    return f"; this is a block where kvmnet v1 had a plain value: add .{k} to the reference"


def plain_hint(name: str, text: str) -> str:
    """``"; … drop .name"`` when ``.name`` (``size``, ``type``) is read from the
    plain value ``text`` (a shorthand the config wrote), else ``""``."""
    if name not in INNER:
        return ""
    return f"; {text} is the plain value its config writes (a kvmnet v1 shorthand): drop .{name}"
