"""Which values are sensitive: a ``variable`` with ``sensitive = true``, and every
local, resource attribute and output whose expression reads one, directly, through
locals, or through another resource's sensitive attribute.

Terraform marks values as they are computed; kvmnet follows references instead,
which marks at least what Terraform marks (an expression that reads a sensitive
value is sensitive whatever it does with it). Resource attributes are marked by
their top-level name (``ip`` when any DHCP host inside it reads one).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kvmnet.engine import expr as X
from kvmnet.engine.config.hcl import Attr, Block
from kvmnet.engine.config.model import Config
from kvmnet.sdk.addresses import module_prefix

MASK = "(sensitive value)"


class Sensitivity:
    """The sensitive variables, locals and resource attributes of one config and
    the module instances below it (``modules``: path -> module evaluator)."""

    def __init__(self, config: Config, order: Iterable[str], modules: Mapping[str, Any] | None = None):
        self.config = config
        self.modules = dict(modules or {})
        self.variables = {n for n, v in config.variables.items() if v.sensitive}   # the root's
        # anything sensitive at all: a variable so declared, or a sensitive(...) call
        self._maybe = bool(self.variables) or any(
            v.sensitive for ev in self.modules.values() for v in ev.config.variables.values()
        ) or _mentions_sensitive_calls(config, self.modules)
        self._vars: dict[str, set[str]] = {"": self.variables}
        self._locals: dict[str, set[str]] = {}
        self._outputs: dict[tuple[str, str], bool] = {}
        self.resources: dict[str, frozenset[str]] = {}
        self._locals[""] = self._sensitive_locals(config, "")
        for path in sorted(self.modules, key=lambda p: p.count("module.")):   # parents first
            ev = self.modules[path]
            parent = ev.parent.module_path
            self._vars[path] = {n for n, v in ev.config.variables.items()
                                if v.sensitive or (n in ev.call.inputs
                                                   and self.reads(ev.call.inputs[n], parent))}
            self._locals[path] = self._sensitive_locals(ev.config, path)
        if not self._maybe:
            return
        for address in order:                # dependencies first: their marks are known
            r = config.resources[address]
            ctx = getattr(r, "module", "")
            marked = {name for name, attr in r.body.attrs.items() if self.reads(attr, ctx)}
            marked |= {b.type for b in r.body.blocks if _block_reads(self, b, ctx)}
            for b in r.body.blocks:
                if b.type == "dynamic" and b.labels and _block_reads(self, b, ctx):
                    marked.add(b.labels[0])
            if marked:
                self.resources[address] = frozenset(marked)

    def _sensitive_locals(self, config: Config, ctx: str) -> set[str]:
        out: set[str] = set()
        self._locals[ctx] = out
        changed = True
        while changed:                       # locals reading sensitive locals, to a fixpoint
            changed = False
            for name, loc in config.locals.items():
                if name not in out and self.reads(loc.value, ctx):
                    out.add(name)
                    changed = True
        return out

    def reads_sensitive(self, attr: Attr | None) -> bool:
        """Whether a root-module expression reads a sensitive value."""
        return self.reads(attr, "")

    def reads(self, attr: Attr | None, ctx: str) -> bool:
        """Whether an expression of module instance ``ctx`` ("" the root) reads one
        (or makes one with ``sensitive(...)``)."""
        if attr is None or not self._maybe:
            return False
        if _calls_sensitive(attr):
            return True
        try:
            refs = X.compile_value(attr.value).references()
        except X.ExprError:
            return False
        return any(self._ref_reads(ref.parts, ctx) for ref in refs)

    def _ref_reads(self, p: tuple, ctx: str) -> bool:
        if len(p) < 2:
            return False
        if p[0] == "var":
            return p[1] in self._vars.get(ctx, set())
        if p[0] == "local":
            return p[1] in self._locals.get(ctx, set())
        if p[0] == "module":
            out = next((x for x in p[2:4] if isinstance(x, str)), None)
            return self._module_output(ctx, str(p[1]), out)
        marked = self.resources.get(module_prefix(ctx) + f"{p[0]}.{p[1]}")
        if not marked:
            return False
        return len(p) < 3 or any(str(x) in marked for x in p[2:4])

    def _module_output(self, ctx: str, call: str, output: str | None) -> bool:
        """Whether an output of call ``call`` in ``ctx`` (any of them: None) reads one."""
        for path, ev in self.modules.items():
            if ev.parent.module_path != ctx or ev.call.name != call:
                continue
            for name, o in ev.config.outputs.items():
                if output is not None and name != output:
                    continue
                key = (path, name)
                if key not in self._outputs:
                    self._outputs[key] = False           # a cycle reads nothing more
                    self._outputs[key] = o.sensitive or self.reads(o.value, path)
                if self._outputs[key]:
                    return True
        return False

    def of_resource(self, address: str) -> frozenset[str]:
        return self.resources.get(address, frozenset())


def _block_reads(s: Sensitivity, b: Block, ctx: str) -> bool:
    return any(s.reads(a, ctx) for a in b.attrs.values()) or any(_block_reads(s, x, ctx) for x in b.blocks)


def masked(value, names: Iterable[str]):
    """A copy of an attribute dict with the sensitive top-level names masked."""
    if not isinstance(value, dict):
        return value
    names = set(names)
    return {k: (MASK if k in names and v is not None else v) for k, v in value.items()}


def _calls_sensitive(attr: Attr) -> bool:
    """``sensitive(...)`` in the expression, outside ``nonsensitive(...)``."""
    if "sensitive(" not in str(attr.value):
        return False
    try:
        return X.uses_sensitive(X.compile_value(attr.value).node)
    except X.ExprError:
        return False


def _mentions_sensitive_calls(config: Config, modules: Mapping[str, Any]) -> bool:
    """Whether any file of the config or its modules has the text ``sensitive(``
    (a cheap test before looking at every expression)."""
    from pathlib import Path
    configs = [config] + [ev.config for ev in modules.values()]
    for cfg in configs:
        for f in cfg.files:
            try:
                if b"sensitive(" in Path(f).read_bytes():
                    return True
            except OSError:
                continue
    return False
