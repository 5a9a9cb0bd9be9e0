"""Sensitive values in plans: which attributes of a change are sensitive, and a
saved plan file that never holds them in clear.

A saved plan replaces each sensitive attribute value (and each sensitive output,
and the value of each ``--var`` of a sensitive variable) with a marker. ``apply
PLANFILE`` puts them back: the values before from the state, the values after
evaluated again from the configuration (the plan is stale when the configuration
or the state changed), the ``--var`` values from the apply's own command line,
checked against a salted SHA-256 digest the plan keeps.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import os

from kvmnet.engine.config.sensitivity import MASK
from kvmnet.engine.model import ResourceInstance
from kvmnet.engine.resources import canonical, with_defaults
from kvmnet.sdk.values import UNKNOWN

MARKER = {"__kvmnet_sensitive__": True}
DIGESTS = "sensitive_digests"


class Masked:
    """What the plan renderers show in place of a sensitive value."""

    def __str__(self) -> str:
        return MASK

    __repr__ = __str__


MASKED = Masked()


def sensitive_keys(inst: ResourceInstance) -> list[str]:
    """The canonical top-level keys an instance's sensitive attributes become (a v1
    shorthand such as ``mode`` lands in ``forward``): every key whose canonical value
    changes when the sensitive attributes are left out, plus their own names."""
    if not inst.sensitive:
        return []
    full = canonical(inst.type, with_defaults(inst.type, inst.name, inst.attrs))
    try:
        rest = {k: v for k, v in inst.attrs.items() if k not in inst.sensitive}
        without = canonical(inst.type, with_defaults(inst.type, inst.name, rest))
    except Exception:           # noqa: BLE001 - a type's canonical form may need them: mask all
        return sorted(full)
    keys = {k for k in full if full.get(k) != without.get(k)} | (set(inst.sensitive) & set(full))
    return sorted(keys)


# The state keeps, with each instance, which of its attributes were sensitive when
# it was last applied, under this key of the record's ``private`` data (the engine's
# own key, removed before a provider sees the data): a resource gone from the
# configuration (deleted, forgotten, or still in the state for ``state show``) has
# no configuration left to say so, and its values must stay masked.
RECORDED = "kvmnet.sensitive"


def recorded_sensitive(private: dict | None) -> list[str]:
    """The sensitive attribute keys a state record's ``private`` data remembers."""
    keys = (private or {}).get(RECORDED)
    return [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []


def provider_private(private: dict | None) -> dict:
    """``private`` as its provider wrote it: without the engine's own key."""
    return {k: v for k, v in (private or {}).items() if k != RECORDED}


def with_recorded(private: dict | None, sensitive) -> dict:
    """A record's ``private`` data remembering ``sensitive`` (left out when empty)."""
    out = provider_private(private)
    if sensitive:
        out[RECORDED] = sorted(set(sensitive))
    return out


def shown(value, key: str, sensitive) -> object:
    """``value`` as a renderer may show it."""
    if key in sensitive and value is not None and value is not UNKNOWN:
        return MASKED
    return value


def _digest(value: str, salt: str) -> str:
    return hmac.new(salt.encode(), value.encode(), hashlib.sha256).hexdigest()


def redact(d: dict, sensitive_outputs, sensitive_variables) -> dict:
    """A saved plan's JSON (``Plan.to_json()``) with no sensitive value in clear."""
    d = copy.deepcopy(d)
    for group in ("resource_changes", "resource_drift"):
        for rc in d.get(group) or []:
            ch = rc.get("change") or {}
            keys = set(ch.get("after_sensitive") or {}) | set(ch.get("before_sensitive") or {})
            for holder in (ch, rc):
                for side in ("before", "after"):
                    v = holder.get(side)
                    if isinstance(v, dict):
                        holder[side] = {k: (dict(MARKER) if k in keys and x is not None else x)
                                        for k, x in v.items()}
    outputs = d.get("outputs") or {}
    for name in sensitive_outputs:
        if name in outputs:
            outputs[name] = dict(MARKER)
    variables = d.get("inputs") or {}      # the --var / --var-file a saved plan is applied with
    salt = os.urandom(16).hex()
    digests = {}
    kept = []
    for item in variables.get("vars") or []:
        name, sep, value = item.partition("=")
        if sep and name.strip() in sensitive_variables:
            digests[name.strip()] = f"{salt}${_digest(value, salt)}"
            kept.append(name.strip())
        else:
            kept.append(item)
    if digests:
        variables["vars"] = kept
        variables[DIGESTS] = digests
    return d


def saved_inputs(variables: dict, given: list[str]) -> tuple[dict, str | None]:
    """The saved plan's variable inputs with each sensitive ``--var`` taken from
    ``given`` (this apply's own ``--var NAME=VALUE``): (inputs, None) or ({}, why not)."""
    variables = dict(variables)
    digests = variables.pop(DIGESTS, {}) or {}
    now = {}
    for item in given:
        name, sep, value = item.partition("=")
        if sep:
            now[name.strip()] = value
    out = []
    for item in variables.get("vars") or []:
        name = item.strip()
        if "=" in item or name not in digests:
            out.append(item)
            continue
        if name not in now:
            return {}, (f"the plan was made with a sensitive --var {name}, which a saved plan does "
                        f"not keep: give it again (kvmnet apply --var {name}=... PLANFILE)")
        salt, _, want = str(digests[name]).partition("$")
        if not hmac.compare_digest(_digest(now[name], salt), want):
            return {}, f"--var {name} is not the value the plan was made with"
        out.append(f"{name}={now[name]}")
    variables["vars"] = out
    return variables, None


def _is_marker(v) -> bool:
    return isinstance(v, dict) and v == MARKER


def restore(plan, snapshot, prepared) -> None:
    """Put a loaded saved plan's sensitive values back: before from the state, after
    evaluated again from the configuration (unknown where it was unknown)."""
    from kvmnet.engine.plan.diff import merge_planned
    from kvmnet.engine.resources import state_attrs
    for c in plan.resource_changes:
        rec = snapshot.instances.get(c.moved_from or c.address)
        recorded = state_attrs(rec) if rec is not None else {}
        if isinstance(c.before, dict):
            c.before = {k: (recorded.get(k) if _is_marker(v) else v) for k, v in c.before.items()}
        if isinstance(c.after, dict) and any(_is_marker(v) for v in c.after.values()):
            inst = prepared.instances.get(c.address)
            planned: dict = {}
            if inst is not None:
                desired = canonical(c.type, with_defaults(c.type, inst.name, inst.attrs))
                planned = merge_planned(c.type, desired, c.before, c.is_replace or c.before is None)
            c.after = {k: (planned.get(k, UNKNOWN) if _is_marker(v) else v) for k, v in c.after.items()}
    from kvmnet.engine.diagnostics import Diagnostics
    outputs = prepared.evaluator.output_values(Diagnostics())   # the plan reported its problems
    plan.outputs = {k: (outputs.get(k, UNKNOWN) if _is_marker(v) else v)
                    for k, v in (plan.outputs or {}).items()}
