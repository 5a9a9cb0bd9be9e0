"""``lifecycle { replace_triggered_by = [...] }``: which planned change of another
resource forces this instance's replacement (as Terraform's: a reference to a
resource triggers on its planned update or replace, a reference to one of its
attributes on a change of that attribute's value)."""
from __future__ import annotations

from collections.abc import Mapping

from kvmnet.engine.config.lifecycle import resolve_trigger
from kvmnet.engine.model import ResourceInstance
from kvmnet.engine.plan.model import REPLACE, UPDATE, ResourceChange
from kvmnet.sdk.addresses import module_prefix


def _at(value, path: tuple):
    for p in path:
        if isinstance(value, dict) and isinstance(p, str):
            value = value.get(p)
        elif isinstance(value, list) and isinstance(p, int) and 0 <= p < len(value):
            value = value[p]
        else:
            return None
    return value


def trigger_of(inst: ResourceInstance, changes: Mapping[str, ResourceChange]) -> str | None:
    """The first ``replace_triggered_by`` reference of ``inst`` that fires, or None."""
    for text in inst.lifecycle.replace_triggered_by:
        address, path = resolve_trigger(text, inst.key)
        address = module_prefix(inst.module) + address      # a reference inside its module
        whole = "[" not in address
        for a, c in changes.items():
            if a != address and not (whole and a.startswith(address + "[")):
                continue
            if c.actions not in (UPDATE, REPLACE):
                continue
            if not path or _at(c.before, path) != _at(c.after, path):
                return text
    return None
