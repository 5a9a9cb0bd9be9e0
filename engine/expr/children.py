"""The sub-expressions a node holds, for walks over an expression tree that look
for one kind of node (``type()`` in the console, ``sensitive()`` in a config)."""
from __future__ import annotations

from collections.abc import Iterator


def child_nodes(n) -> Iterator:
    """Each node or list of nodes in ``n``'s slots (nodes are objects with
    ``evaluate``; lists are walked by the caller)."""
    for cls in type(n).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            v = getattr(n, slot, None)
            if isinstance(v, (list, tuple)) or hasattr(v, "evaluate"):
                yield v
