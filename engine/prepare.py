"""The front half of every command: config → variables → instances → validation → graph.

Nothing here touches the live system or the state; ``kvmnet validate`` is exactly
this function.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from dataclasses import dataclass, field
from pathlib import Path

from kvmnet.engine.config.evaluate import Evaluator, VariableInputs
from kvmnet.engine.config.loader import load_config
from kvmnet.engine.config.model import Config
from kvmnet.engine.diagnostics import DiagnosticError, Diagnostics
from kvmnet.gcpause import gc_paused
from kvmnet.engine.model import ResourceInstance
from kvmnet.engine.plan.diff import merge_planned
from kvmnet.engine.resources import TYPES, canonical, with_defaults
from kvmnet.engine.timings import NULL, Timings
from kvmnet.sdk.values import UNKNOWN

if TYPE_CHECKING:
    from kvmnet.engine.graph import DependencyGraph


@dataclass
class Prepared:
    config: Config
    evaluator: Evaluator
    graph: DependencyGraph              # of resource addresses
    order: list[str]                    # resource addresses, dependencies first
    instances: dict[str, ResourceInstance] = field(default_factory=dict)
    diagnostics: Diagnostics = field(default_factory=Diagnostics)


def resource_value(config: Config, values: Mapping[str, dict] | _PlannedValues, rtype: str, name: str):
    """A resource's value for references: one instance's attributes, a list (count) or
    a map (for_each) of them, each as its type lets references see it (a shorthand
    the config wrote reads back as written: ``ResourceType.reference_view``)."""
    from kvmnet.sdk.values import UNKNOWN

    decl = config.resources.get(f"{rtype}.{name}")
    if decl is None:
        raise KeyError(f"{rtype}.{name}")
    prefix = f"{rtype}.{name}"
    t = TYPES.get(decl.type)
    view = t.view if t is not None and t.reference_view is not None else None
    written = decl.body.attrs.keys()
    if decl.count is not None:
        items = sorted(((k, v) for k, v in values.get(prefix, {}).items()), key=lambda kv: kv[0])
        return [view(written, v) if view else v for _k, v in items]
    if decl.for_each is not None:
        got = values.get(prefix, {})
        return {k: view(written, v) for k, v in got.items()} if view else dict(got)
    one = values.get(prefix, {}).get(None, UNKNOWN)
    return view(written, one) if view else one


def instance_view(config: Config, inst: ResourceInstance, value):
    """One instance's value as ``self`` sees it in its postconditions (as
    :func:`resource_value` shows it to references)."""
    decl = config.resources.get(inst.resource_address)
    t = TYPES.get(inst.type)
    return t.view(decl.body.attrs.keys(), value) if decl is not None and t is not None else value


class _PlannedValues:
    """values[resource address][key] = an instance's planned attributes (UNKNOWN for
    an invalid one), for references; worked out only for the resources something
    refers to (most are referred to by nothing)."""

    def __init__(self) -> None:
        self._instances: dict[str, dict] = {}   # address -> {key: instance or UNKNOWN}
        self._planned: dict[str, dict] = {}     # address -> {key: planned attributes}

    def add(self, addr: str, key, inst) -> None:
        self._instances.setdefault(addr, {})[key] = inst
        self._planned.pop(addr, None)

    def get(self, addr: str, default=None):
        got = self._planned.get(addr)
        if got is None:
            insts = self._instances.get(addr)
            if insts is None:
                return default
            got = self._planned[addr] = {k: _planned_attrs(i) for k, i in insts.items()}
        return got


def _planned_attrs(inst):
    if inst is UNKNOWN:
        return UNKNOWN
    desired = canonical(inst.type, with_defaults(inst.type, inst.name, inst.attrs))
    return merge_planned(inst.type, desired, None, True)


def _provider_scopes(evaluator: Evaluator, diags: Diagnostics) -> dict[str, str]:
    """Where each provider's objects live (netns or libvirt URI), so that objects in
    different namespaces never clash in the cross-instance rules."""
    out = {}
    for name in evaluator.config.providers:
        cfg = evaluator.provider_config(name, diags)
        where = cfg.get("netns") or cfg.get("uri")
        if isinstance(where, str):
            out[name] = where
    return out


def prepare(config_dir: str, inputs: VariableInputs | None = None,
            timings: Timings = NULL, validate: bool = True, use_cache: bool = True) -> Prepared:
    """Load, evaluate and validate a config directory; raise DiagnosticError on errors."""
    # What prepare builds (the parsed config, the graph, the instances) lives as long
    # as the process and makes almost no cyclic garbage (≈400 objects at 10,000
    # resources): the collector stays off throughout, and everything is then moved
    # out of the collector's generations, so later collections do not walk it again
    # and again (≈0.6 s of CPU at 10,000 resources for the parse, ≈0.3 s more for
    # the rest; PERF-FACTS.md).
    with gc_paused(freeze=True):
        return _prepare(config_dir, inputs, timings, validate, use_cache)


def _prepare(config_dir: str, inputs: VariableInputs | None, timings: Timings,
             validate: bool, use_cache: bool) -> Prepared:
    from kvmnet.engine.graph import build_graph, topological_order

    diags = Diagnostics()
    with timings.phase("parse"):
        config = load_config(config_dir, use_cache=use_cache)
    diags.extend(config.diagnostics)
    if diags:
        raise DiagnosticError(diags)
    with timings.phase("graph"):
        evaluator = Evaluator.prepare(config, inputs or VariableInputs(), diags)
        if config.modules:
            from kvmnet.engine.config.modules import expand_modules
            expand_modules(evaluator, diags, use_cache=use_cache)
            if diags:
                raise DiagnosticError(diags)
        graph = build_graph(config, diags, evaluator)
    # the provider blocks are checked up front, so that one run reports their
    # errors together with the resources' (as ``terraform validate`` does)
    provider_diags = _provider_block_diagnostics(evaluator) if validate else Diagnostics()
    if diags:
        diags.extend(provider_diags)
        raise DiagnosticError(diags)
    order = topological_order(graph)
    from kvmnet.engine.config.sensitivity import Sensitivity
    evaluator.sensitivity = Sensitivity(config, order, evaluator.module_evaluators)
    prepared = Prepared(config, evaluator, graph, order, diagnostics=diags)
    with timings.phase("validate"):
        # values[resource address][key] = planned attributes, for references
        values = _PlannedValues()
        evaluator.resolve_resource = lambda t, n: resource_value(config, values, t, n)
        from kvmnet.engine.validate import Validation
        validation = Validation()
        for addr in order:
            decl = config.resources[addr]
            for inst in evaluator.expand(decl, diags):
                prepared.instances[inst.address] = inst
                found = validation.instance(inst) if validate else None
                if found:
                    diags.extend(found)
                    values.add(addr, inst.key, UNKNOWN)
                    continue
                values.add(addr, inst.key, inst)
        evaluator.reset_locals()
        diags.extend(provider_diags)
        if validate and not diags:
            scopes = _provider_scopes(evaluator, diags)
            ordered = sorted(prepared.instances.values(), key=lambda i: (i.pos.file, i.pos.line))
            diags.extend(validation.across(ordered, scopes))
    if diags:
        raise DiagnosticError(diags)
    # Outputs are evaluated later (plan, apply), but the files they read must join the
    # config digest now, so a saved plan and its apply compare the same digest.
    if config.outputs and _mentions_file_functions(evaluator):
        evaluator.output_values(Diagnostics())
    return prepared


def _provider_block_diagnostics(evaluator) -> Diagnostics:
    """Each root ``provider`` block's values against its provider's schema (unknown
    attributes named with the closest known one), as a run checks them before
    starting the provider."""
    from kvmnet.engine.registry import check_provider_blocks
    found = Diagnostics()
    check_provider_blocks(evaluator.config, evaluator, found)
    return found


def _mentions_file_functions(evaluator) -> bool:
    """Whether a file of the config or of its modules names a function that reads
    files (a cheap test: most configs read none)."""
    configs = [evaluator.config] + [ev.config for ev in evaluator.module_evaluators.values()]
    for path in {f for cfg in configs for f in cfg.files}:
        try:
            text = Path(path).read_bytes()
        except OSError:
            continue
        if any(name in text for name in (b"file(", b"fileset(", b"fileexists(")):
            return True
    return False
