"""References: the names an expression reads, for the dependency graph."""
from __future__ import annotations

from dataclasses import dataclass, field

# Root names that are not resource types.
NON_RESOURCE_ROOTS = frozenset({"var", "local", "count", "each"})


@dataclass(frozen=True)
class Reference:
    """One traversal an expression reads, e.g. ``network.lab[0].name``.

    ``parts`` starts with the root name and holds attribute names (str) and
    constant index keys (int, or str for ``["key"]``); ``indexes`` lists the
    positions in ``parts`` that came from ``[...]`` so ``a.b`` and ``a["b"]`` can
    be told apart. The traversal stops at the first non-constant index or splat:
    ``network.lab[count.index].name`` gives ``("network", "lab")`` (and, separately,
    ``("count", "index")``); ``network.lab[*].name`` gives ``("network", "lab")``.
    ``text`` is the canonical rendering of ``parts``; ``offset`` is where the
    traversal starts in the expression text. Equality ignores text and offset.
    """

    parts: tuple
    indexes: tuple = ()
    text: str = field(default="", compare=False)
    offset: int = field(default=0, compare=False)

    @property
    def root(self) -> str:
        return self.parts[0]

    @property
    def is_resource(self) -> bool:
        """True for ``TYPE.NAME...`` (anything that is not var/local/count/each)."""
        return self.parts[0] not in NON_RESOURCE_ROOTS and len(self.parts) >= 2

    @property
    def resource_address(self) -> str | None:
        """``network.lab`` for any reference into that resource, else None."""
        if not self.is_resource or isinstance(self.parts[1], int):
            return None
        return f"{self.parts[0]}.{self.parts[1]}"

    @property
    def instance_key(self):
        """The constant instance key (``network.lab[0]`` → 0), else None."""
        if self.is_resource and len(self.parts) > 2 and 2 in self.indexes:
            return self.parts[2]
        return None

    @property
    def instance_address(self) -> str | None:
        """``network.lab[0]`` / ``network.v["a"]`` when a key is given, else ``network.lab``."""
        base = self.resource_address
        if base is None:
            return None
        key = self.instance_key
        if key is None:
            return base
        return base + render_parts((key,), (0,))

    def __str__(self) -> str:
        return self.text or render_parts(self.parts, self.indexes)


def render_parts(parts: tuple, indexes: tuple = ()) -> str:
    import json
    out = ""
    for i, p in enumerate(parts):
        if i in indexes:
            out += f"[{p}]" if isinstance(p, int) else f"[{json.dumps(p)}]"
        elif i == 0:
            out = str(p)
        else:
            out += f".{p}"
    return out
