"""Plain values that flow between the engine's stages."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SourcePos:
    file: str          # path as the user gave it (relative to the config dir's parent when possible)
    line: int


@dataclass
class Lifecycle:
    prevent_destroy: bool = False
    ignore_changes: tuple[str, ...] = ()
    replace_triggered_by: tuple[str, ...] = ()    # reference texts (engine/plan/triggers.py)


@dataclass
class ResourceInstance:
    """One expanded, evaluated resource instance of the desired configuration.

    ``attrs`` holds the configured attributes as evaluated (nested blocks as lists of
    dicts, values possibly ``UNKNOWN``), without defaults and without the
    meta-arguments (count, for_each, depends_on, lifecycle, provider).
    """

    address: str                     # network.lab, network.t[0], module.kvm01.network.v["a"]
    type: str
    name: str                        # the block label
    key: int | str | None            # count index / for_each key
    provider: str                    # provider instance name ("libvirt", "netplan", ...)
    attrs: dict[str, Any]
    pos: SourcePos                   # the resource block
    # line of every attribute and nested block, keyed by path: "mode", "ip[0]",
    # "ip[0].dhcp_host[1]", "ip[0].dhcp_host[1].mac"
    attr_lines: dict[str, int] = field(default_factory=dict)
    depends_on: set[str] = field(default_factory=set)         # instance addresses it depends on
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    module: str = ""                 # module instance path ("module.kvm01"); "" in the root
    # (CheckRule, Scope) of each lifecycle postcondition, checked with ``self`` once
    # the object is applied (engine/config/checks.py)
    postconditions: list = field(default_factory=list)
    # top-level attribute names whose values are sensitive (engine/config/sensitivity.py)
    sensitive: frozenset[str] = frozenset()

    @property
    def resource_address(self) -> str:
        if self.module:
            return f"{self.module}.{self.type}.{self.name}"
        return f"{self.type}.{self.name}"

    def line_of(self, attribute: str | None) -> int:
        """Best line for an attribute path like ``ip[0].dhcp_host[1].mac``."""
        path = attribute or ""
        while path:
            if path in self.attr_lines:
                return self.attr_lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.pos.line


def format_address(rtype: str, name: str, key: int | str | None = None, module: str = "") -> str:
    """``network.lab``, ``network.t[0]``, ``module.kvm01.network.v["a"]``."""
    base = f"{module}.{rtype}.{name}" if module else f"{rtype}.{name}"
    if key is None:
        return base
    if isinstance(key, int):
        return f"{base}[{key}]"
    escaped = str(key).replace("\\", "\\\\").replace('"', '\\"')
    return f'{base}["{escaped}"]'
