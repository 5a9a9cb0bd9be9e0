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


def configuration(config: Config) -> dict:
    """The whole ``configuration`` object of a plan."""
    resources = []
    for decl in config.resources.values():
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
    providers = {name: {"name": name, "expressions": {k: expression(a) for k, a in p.attrs.items()}}
                 for name, p in config.providers.items()}
    root = {k: v for k, v in (("outputs", outputs), ("resources", resources), ("variables", variables)) if v}
    return {"provider_config": providers, "root_module": root} if providers else {"root_module": root}
