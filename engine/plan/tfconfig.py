"""A loaded config in Terraform's JSON ``configuration`` representation: provider
blocks, variables, outputs and resources, each attribute as an expression object
(``{"constant_value": V}`` for a literal, ``{"references": [...]}`` for an
expression reading other objects, ``{}`` for any other expression), nested blocks
as lists of such objects."""
from __future__ import annotations

from typing import Any

from kvmnet.engine.config.evaluate import attr_references, is_constant_raw
from kvmnet.engine.config.hcl import Attr, Block
from kvmnet.engine.config.model import Config
from kvmnet.engine.expr.reference import render_parts
from kvmnet.engine.plan.tfjson import MANAGED


def _constant(raw: Any) -> bool:
    if isinstance(raw, list):
        return all(_constant(x) for x in raw)
    if isinstance(raw, dict):
        return all(_constant(x) for x in raw.values())
    return is_constant_raw(raw) or isinstance(raw, float)


def expression(attr: Attr) -> dict:
    """Terraform's expression object for one attribute."""
    if _constant(attr.value):
        return {"constant_value": attr.value}
    refs: list[str] = []
    for r in attr_references(attr):
        for name in traversals(r):
            if name not in refs:
                refs.append(name)
    return {"references": refs} if refs else {}


def traversals(ref) -> list[str]:
    """A reference and each shorter traversal down to the object it names, as
    Terraform lists them: ``network.n[0].name``, ``network.n[0]``, ``network.n``."""
    if ref.root in ("count", "each", "path", "self", "terraform"):
        return [render_parts(ref.parts, ref.indexes)]
    return [render_parts(ref.parts[:k], tuple(i for i in ref.indexes if i < k))
            for k in range(len(ref.parts), 1, -1)]


def block_expressions(block: Block) -> dict:
    """A block body: attributes as expressions, nested blocks as lists of bodies."""
    out: dict[str, Any] = {name: expression(a) for name, a in block.attrs.items()}
    for b in block.blocks:
        out.setdefault(b.type, []).append(block_expressions(b))
    return out


def configuration(config: Config, module_calls: dict | None = None) -> dict:
    """The whole ``configuration`` object of a plan. ``module_calls`` is the root
    evaluator's (``{name: (call, [(key, module evaluator)])}``): each call is listed
    once under ``module_calls`` with the called module's own configuration nested in
    it, as Terraform lists them."""
    providers = {name: {"name": name, "expressions": {k: expression(a) for k, a in p.attrs.items()}}
                 for name, p in config.providers.items()}
    root = _module(config, module_calls or {})
    return {"provider_config": providers, "root_module": root} if providers else {"root_module": root}


def _module(config: Config, module_calls: dict) -> dict:
    """One module's ``{outputs, resources, variables, module_calls}``, empty ones left out."""
    resources = []
    for decl in config.resources.values():
        if decl.module:        # a module's resource, listed in its module's own entry
            continue
        r: dict[str, Any] = {"address": decl.address, "mode": MANAGED, "type": decl.type,
                             "name": decl.name, "expressions": block_expressions(decl.body),
                             "schema_version": 0}
        if decl.provider is not None:
            r["provider_config_key"] = str(decl.provider.value)
        if decl.count is not None:
            r["count_expression"] = expression(decl.count)
        if decl.for_each is not None:
            r["for_each_expression"] = expression(decl.for_each)
        if decl.depends_on is not None and isinstance(decl.depends_on.value, list):
            r["depends_on"] = [str(x).removeprefix("${").removesuffix("}")
                               for x in decl.depends_on.value]
        resources.append(r)
    outputs = {}
    for name, o in config.outputs.items():
        secret = bool(getattr(o, "sensitive", False))
        expr = expression(o.value) if o.value is not None else {}
        if secret:            # a sensitive output's literal is never shown in clear
            expr.pop("constant_value", None)
        outputs[name] = {"expression": expr, **({"sensitive": True} if secret else {})}
    variables: dict[str, dict] = {}
    for name, v in config.variables.items():
        entry: dict[str, Any] = {}
        secret = bool(getattr(v, "sensitive", False))
        if v.default is not None and _constant(v.default.value) and not secret:
            entry["default"] = v.default.value
        if v.description:
            entry["description"] = v.description
        if secret:
            entry["sensitive"] = True
        variables[name] = entry
    calls = {name: _module_call(call, instances) for name, (call, instances) in module_calls.items()}
    return {k: v for k, v in (("outputs", outputs), ("resources", resources), ("variables", variables),
                              ("module_calls", calls)) if v}


def _module_call(call, instances: list) -> dict:
    """One ``module_calls`` entry: source, arguments, count/for_each and the module
    (read from its first instance; every instance shares the one loaded config)."""
    out: dict[str, Any] = {"source": call.source,
                           "expressions": {k: expression(a) for k, a in call.inputs.items()}}
    if call.count is not None:
        out["count_expression"] = expression(call.count)
    if call.for_each is not None:
        out["for_each_expression"] = expression(call.for_each)
    if call.depends_on is not None and isinstance(call.depends_on.value, list):
        out["depends_on"] = [str(x).removeprefix("${").removesuffix("}") for x in call.depends_on.value]
    if instances:
        child = instances[0][1]
        out["module"] = _module(child.config, child.module_calls)
    else:
        out["module"] = {}
    return out
