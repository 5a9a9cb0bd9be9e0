"""Which values are sensitive: a ``variable`` with ``sensitive = true``, and every
local, resource attribute and output whose expression reads one, directly, through
locals, or through another resource's sensitive attribute.

Terraform marks values as they are computed; kvmnet follows references instead,
which marks at least what Terraform marks (an expression that reads a sensitive
value is sensitive whatever it does with it). Resource attributes are marked by
their top-level name (``ip`` when any DHCP host inside it reads one).
"""
from __future__ import annotations

from collections.abc import Iterable

from kvmnet.engine import expr as X
from kvmnet.engine.config.hcl import Attr, Block
from kvmnet.engine.config.model import Config

MASK = "(sensitive value)"


class Sensitivity:
    """The sensitive variables, locals and resource attributes of one config."""

    def __init__(self, config: Config, order: Iterable[str]):
        self.variables = {n for n, v in config.variables.items() if v.sensitive}
        self.locals: set[str] = set()
        self.resources: dict[str, frozenset[str]] = {}
        if not self.variables:
            return
        changed = True
        while changed:                       # locals reading sensitive locals, to a fixpoint
            changed = False
            for name, loc in config.locals.items():
                if name not in self.locals and self.reads_sensitive(loc.value):
                    self.locals.add(name)
                    changed = True
        for address in order:                # dependencies first: their marks are known
            r = config.resources[address]
            marked = {name for name, attr in r.body.attrs.items() if self.reads_sensitive(attr)}
            marked |= {b.type for b in r.body.blocks if _block_reads(self, b)}
            for b in r.body.blocks:
                if b.type == "dynamic" and b.labels and _block_reads(self, b):
                    marked.add(b.labels[0])
            if marked:
                self.resources[address] = frozenset(marked)

    def reads_sensitive(self, attr: Attr | None) -> bool:
        if attr is None or not self.variables:
            return False
        try:
            refs = X.compile_value(attr.value).references()
        except X.ExprError:
            return False
        for ref in refs:
            p = ref.parts
            if len(p) < 2:
                continue
            if p[0] == "var" and p[1] in self.variables or p[0] == "local" and p[1] in self.locals:
                return True
            marked = self.resources.get(f"{p[0]}.{p[1]}")
            if marked and (len(p) < 3 or any(str(x) in marked for x in p[2:4])):
                return True
        return False

    def of_resource(self, address: str) -> frozenset[str]:
        return self.resources.get(address, frozenset())


def _block_reads(s: Sensitivity, b: Block) -> bool:
    return any(s.reads_sensitive(a) for a in b.attrs.values()) or any(_block_reads(s, x) for x in b.blocks)


def masked(value, names: Iterable[str]):
    """A copy of an attribute dict with the sensitive top-level names masked."""
    if not isinstance(value, dict):
        return value
    names = set(names)
    return {k: (MASK if k in names and v is not None else v) for k, v in value.items()}
