"""The pieces of Terraform's machine-readable JSON format (``terraform show -json``)
that kvmnet's plan and state documents carry, so the tools reviewers run on
Terraform plans (OPA/conftest policies, jq scripts) read kvmnet's too.

Pure functions of plain values: ``after_unknown`` / ``*_sensitive`` mirrors, the
``values`` representation of a state (``prior_state``, ``show -json``), the
``planned_values`` of a plan, ``output_changes`` and the ``configuration`` of a
config. Terraform's format: https://developer.hashicorp.com/terraform/internals/json-format
"""
from __future__ import annotations

from typing import Any

from kvmnet.sdk.values import UNKNOWN, contains_unknown

FORMAT_VERSION = "1.2"       # Terraform's plan format version this document follows (OpenTofu 1.6)

MANAGED = "managed"


def kvmnet_version() -> str:
    """The running kvmnet's version (the documents' ``kvmnet_version``)."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("kvmnet")
    except PackageNotFoundError:
        return "0+unknown"


def unknown_mirror(v: Any) -> Any:
    """Terraform's ``after_unknown``: ``true`` where ``v`` is unknown; an object or
    list of the same shape around unknown parts (known attributes left out of
    objects); ``false`` for a known value."""
    if v is UNKNOWN:
        return True
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            m = unknown_mirror(x)
            if m is not False and m != {} and m != []:
                out[str(k)] = m
        return out
    if isinstance(v, (list, tuple)):
        items = [unknown_mirror(x) for x in v]
        return items if any(m is not False and m != {} and m != [] for m in items) else []
    return False


def sensitive_mirror(v: Any, sensitive: bool = False) -> Any:
    """Terraform's ``before_sensitive`` / ``after_sensitive``: ``true`` for a
    sensitive value, else ``{}`` for an object, ``[]`` for a list, ``false``."""
    if sensitive:
        return True
    if isinstance(v, dict):
        return {}
    if isinstance(v, (list, tuple)):
        return []
    return False


def known_only(v: Any) -> Any:
    """``v`` without its unknown parts (Terraform leaves them out of planned values)."""
    if isinstance(v, dict):
        return {str(k): known_only(x) for k, x in v.items() if x is not UNKNOWN}
    if isinstance(v, (list, tuple)):
        return [known_only(x) for x in v if x is not UNKNOWN]
    return None if v is UNKNOWN else v


SENSITIVE_MARKER = {"__kvmnet_sensitive__": True}    # a sensitive value's place (engine/plan/redact.py)


def state_resource(address: str, rtype: str, name: str, key: Any, provider: str,
                   values: dict, dependencies: list[str] | None = None,
                   sensitive: list[str] | tuple[str, ...] = ()) -> dict:
    """One resource instance as a state module lists it; the top-level attributes
    named in ``sensitive`` are marked in ``sensitive_values`` and never in clear."""
    d: dict[str, Any] = {"address": address, "mode": MANAGED, "type": rtype, "name": name}
    if key is not None:
        d["index"] = key
    shown = {k: (dict(SENSITIVE_MARKER) if k in sensitive and v is not None else v)
             for k, v in known_only(values).items()}
    d.update({"provider_name": provider, "schema_version": 0, "values": shown,
              "sensitive_values": {k: True for k in sensitive if k in values}})
    if dependencies:
        d["depends_on"] = list(dependencies)
    return d


def outputs_values(outputs: dict[str, Any], sensitive: frozenset[str] = frozenset()) -> dict:
    """``{name: {sensitive, type, value}}`` (a sensitive output's value left out, as
    in a saved plan it must never be in clear; an unknown one left out)."""
    out = {}
    for name, v in outputs.items():
        if contains_unknown(v):
            continue
        entry: dict[str, Any] = {"sensitive": name in sensitive, "type": type_of(v)}
        if name not in sensitive:
            entry["value"] = v
        out[name] = entry
    return out


def state_values(resources: list[dict], outputs: dict[str, Any],
                 sensitive: frozenset[str] = frozenset()) -> dict:
    """A state's ``values``: its outputs and its modules' resources — the root
    module's in ``root_module.resources``, a module instance's in a
    ``child_modules[]`` entry (``{address, resources, child_modules}``) nested under
    its parent module's, as Terraform does (a module with only child modules is still
    listed); empty lists left out."""
    from kvmnet.sdk.addresses import format_key, module_of, parse_address
    by_module: dict[str, list[dict]] = {}
    for r in resources:
        by_module.setdefault(module_of(r["address"]), []).append(r)
    children: dict[str, set[str]] = {}
    for m in list(by_module):
        steps = parse_address(m, module_only=True).module if m else ()
        for depth in range(len(steps)):
            path = ".".join(f"module.{n}{format_key(k)}" for n, k in steps[:depth + 1])
            parent = ".".join(f"module.{n}{format_key(k)}" for n, k in steps[:depth])
            children.setdefault(parent, set()).add(path)

    def module(address: str) -> dict[str, Any]:
        out: dict[str, Any] = {"address": address} if address else {}
        if by_module.get(address):
            out["resources"] = by_module[address]
        if children.get(address):
            out["child_modules"] = [module(c) for c in sorted(children[address])]
        return out

    return {"outputs": outputs_values(outputs, sensitive), "root_module": module("")}


def output_change(before: Any, after: Any, absent_before: bool, absent_after: bool,
                  sensitive: bool = False) -> dict:
    """One entry of ``output_changes``."""
    if absent_before:
        actions = ["create"]
    elif absent_after:
        actions = ["delete"]
    else:
        actions = ["no-op"] if before == after else ["update"]
    unknown = unknown_mirror(after)
    return {
        "actions": actions,
        "before": None if sensitive else before,
        "after": None if sensitive or after is UNKNOWN else known_only(after),
        "after_unknown": unknown if contains_unknown(after) else False,
        "before_sensitive": sensitive,       # an output is sensitive as a whole
        "after_sensitive": sensitive,
    }


def output_changes(before: dict[str, Any], after: dict[str, Any],
                   sensitive: frozenset[str] = frozenset()) -> dict[str, dict]:
    """``output_changes``: every output of the state or the plan, with its action."""
    names = list(after) + [n for n in before if n not in after]
    return {n: output_change(before.get(n), after.get(n), n not in before, n not in after,
                             n in sensitive)
            for n in names}


def changed_outputs(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, action) of each output whose value changes: what a human plan shows."""
    return [(n, ch["actions"][0]) for n, ch in output_changes(before, after).items()
            if ch["actions"] != ["no-op"]]


def type_of(v: Any) -> Any:
    """A value's type in Terraform's JSON type notation (``"string"``,
    ``["tuple", [...]]``, ``["object", {...}]``), as ``output -json`` prints it."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, dict):
        return ["object", {str(k): type_of(x) for k, x in v.items()}]
    if isinstance(v, (list, tuple)):
        return ["tuple", [type_of(x) for x in v]]
    return "dynamic"
