"""The hint an error gives when a block is used where a string or a number is
wanted. kvmnet v1 had a network's ``bridge``, ``mtu``, ``domain`` and
``virtualport`` as plain values; they are blocks now (``bridge { name }``), so a
v1 reference like ``network.lab.bridge`` yields the block, and the fix is its
inner attribute: ``network.lab.bridge.name``."""
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
