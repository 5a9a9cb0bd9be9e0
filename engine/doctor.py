"""``kvmnet doctor``: the checklist model, its order, and its two renderings (pure).

A provider answers with :class:`Check` values from what it reads live about the
objects the state says kvmnet manages (:class:`Managed`); this module only orders
them bottom up (by the layers the plugins declare), decides the exit status and renders them for people (a ✓/✗ list
with a hint under each failure) or machines (a JSON list). It reads nothing live.
"""
from __future__ import annotations

import json
from typing import Iterable

from kvmnet.engine import registry
from kvmnet.sdk.doctor import Check, Managed, failed

__all__ = ["Check", "Managed", "all_ok", "asked", "by_type", "host_netns", "layer_ranks",
           "ordered", "provider_failure", "render_human", "render_json"]

OK_MARK, FAIL_MARK = "\u2713", "\u2717"


def layer_ranks() -> dict[str, int]:
    """Each layer the plugins declare, with its rank bottom up (the lowest rank
    any plugin gives it)."""
    ranks: dict[str, int] = {}
    for plugin in registry.plugins().values():
        for layer, rank in plugin.layers.items():
            ranks[layer] = min(rank, ranks.get(layer, rank))
    return ranks


def by_type(managed: Iterable[Managed]) -> dict[str, list[Managed]]:
    out: dict[str, list[Managed]] = {}
    for m in managed:
        out.setdefault(m.type, []).append(m)
    return out


def ordered(checks: Iterable[Check]) -> list[Check]:
    """Bottom up by layer rank; within a layer, in the order the providers gave
    them; layers no plugin declares last."""
    rank = layer_ranks()
    last = max(rank.values(), default=0) + 1
    return sorted(checks, key=lambda c: rank.get(c.layer, last))


def all_ok(checks: Iterable[Check]) -> bool:
    return all(c.ok for c in checks)


def render_json(checks: Iterable[Check]) -> str:
    """A JSON list of ``{layer, check, address, ok, detail, hint}``."""
    return json.dumps([c.to_json() for c in ordered(checks)], indent=2)


def render_human(checks: Iterable[Check]) -> str:
    """The checklist as plain text: a heading per layer, ✓/✗ per check, and a
    ``hint:`` line under each failure; a summary line last."""
    checks = ordered(checks)
    if not checks:
        return "Nothing to check: the state records no managed resources.\n"
    lines: list[str] = []
    layer = None
    for c in checks:
        if c.layer != layer:
            layer = c.layer
            lines.append(f"{layer}")
        subject = f"{c.address}: {c.check}" if c.address else c.check
        detail = f" ({c.detail})" if c.detail and c.ok else (f": {c.detail}" if c.detail else "")
        lines.append(f"  {OK_MARK if c.ok else FAIL_MARK} {subject}{detail}")
        if not c.ok and c.hint:
            lines.append(f"      hint: {c.hint}")
    bad = sum(1 for c in checks if not c.ok)
    lines.append("")
    lines.append(f"{len(checks)} checks, {bad} failed." if bad else f"{len(checks)} checks, all passed.")
    return "\n".join(lines) + "\n"


def host_netns(provider_configs: dict[str, dict]) -> str | None:
    """The namespace of the host's kernel objects: the ``netns`` set on the
    host-level provider block ranked first (see :attr:`kvmnet.sdk.Plugin.host_netns`),
    else None (the host's)."""
    ranked = sorted((p.host_netns, name) for name, p in registry.plugins().items()
                    if p.host_netns is not None)
    for _rank, name in ranked:
        ns = (provider_configs.get(name) or {}).get("netns")
        if isinstance(ns, str) and ns:
            return ns
    return None


def asked(provider: str, managed: dict) -> bool:
    """Whether doctor asks a provider: when it manages something, or when its
    plugin says its block alone is worth checking."""
    plugin = registry.plugin_of(provider)
    return bool(managed) or (plugin is not None and plugin.diagnose_alone)


def provider_failure(provider: str, types: Iterable[str], error: str) -> Check:
    """A provider that could not be asked at all (it would not start, its read failed)."""
    plugin = registry.plugin_of(provider)
    known = registry.resource_types()
    layer = plugin.failure_layer if plugin is not None else None
    for t in types:
        layer = layer or (known[t].doctor_layer if t in known else None)
    layer = layer or provider
    return failed(f"provider {provider} answers", layer, None, error,
                  f"check the provider \"{provider}\" block and what it points at")
