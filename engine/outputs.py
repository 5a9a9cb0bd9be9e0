"""Output values after an apply: the configuration's ``output`` blocks evaluated with
every resource reference answered from the state's records (the attributes as
applied), kept in the state (``StateWriter.set_outputs``) for ``kvmnet output``,
``show -json`` and the ``before`` side of the next plan's ``output_changes``."""
from __future__ import annotations

from typing import Any

from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.prepare import Prepared, resource_value
from kvmnet.engine.resources import state_attrs
from kvmnet.sdk.addresses import resource_of
from kvmnet.sdk.values import UNKNOWN, contains_unknown


def recorded_values(snapshot) -> dict[str, dict]:
    """values[resource address (module path included)][instance key] = recorded
    attributes (for references)."""
    values: dict[str, dict] = {}
    for r in snapshot.instances.values():
        values.setdefault(resource_of(r.address), {})[r.key] = state_attrs(r)
    return values


def evaluate_outputs(prepared: Prepared, snapshot, diags: Diagnostics | None = None) -> dict[str, Any]:
    """The outputs whose value the state's records determine (an output reading a
    resource the state does not hold is left out). Errors go to ``diags`` when given."""
    ev = prepared.evaluator
    values = recorded_values(snapshot)
    saved = ev.resolve_resource
    ev.resolve_resource = lambda t, n: resource_value(prepared.config, values, t, n)
    ev.reset_locals()
    try:
        got = ev.output_values(diags if diags is not None else Diagnostics())
    finally:
        ev.resolve_resource = saved
        ev.reset_locals()
    return {k: v for k, v in got.items() if v is not UNKNOWN and not contains_unknown(v)}


def sensitive_outputs(prepared: Prepared) -> frozenset[str]:
    """Names of the outputs declared ``sensitive``."""
    return frozenset(n for n, o in prepared.config.outputs.items() if getattr(o, "sensitive", False))


def save_outputs(backend, prepared: Prepared, *, destroy: bool = False) -> None:
    """Keep the outputs the state now gives (none after a destroy) in the state."""
    values = {} if destroy else evaluate_outputs(prepared, backend.read())
    with backend.transaction() as w:
        w.set_outputs(values, sensitive_outputs(prepared))


def state_document(snapshot, attrs: dict[str, dict | None] | None = None,
                   sensitive: dict[str, list[str]] | None = None) -> dict:
    """The state in Terraform's JSON state representation (``show -json``, a plan's
    ``prior_state``). ``attrs``: each instance's attributes when the caller has them
    already (a plan's refreshed ones: an instance mapped to None is gone), else the
    state's records, upgraded; ``sensitive``: each address's sensitive attributes,
    never shown in clear."""
    from kvmnet.engine.plan.tfjson import kvmnet_version, state_resource, state_values
    resources = []
    for a, r in sorted(snapshot.instances.items()):
        values = attrs.get(a) if attrs is not None else state_attrs(r)
        if values is not None:
            resources.append(state_resource(a, r.type, r.name, r.key, r.provider, values, r.dependencies,
                                            (sensitive or {}).get(a, ())))
    return {"format_version": "1.0", "kvmnet_version": kvmnet_version(),
            "values": state_values(resources, snapshot.outputs, snapshot.sensitive_outputs)}
