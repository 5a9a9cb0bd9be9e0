"""Reading the ``data`` blocks at plan time through their providers
(``Provider.read_data``), before any resource is evaluated with their values."""
from __future__ import annotations

from kvmnet.engine import expr as X
from kvmnet.engine import registry
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.sdk.addresses import module_prefix
from kvmnet.sdk.provider import ProviderError
from kvmnet.sdk.values import contains_unknown


def provider_of(decl, diags: Diagnostics) -> str | None:
    """The provider instance a data block reads through (its default, or ``provider``)."""
    _definition, servers = registry.data_types()[decl.type]
    if decl.provider is None:
        return servers[0]
    name = decl.provider.value
    if isinstance(name, str) and name.startswith("${") and name.endswith("}"):
        name = name[2:-1].strip()
    if not isinstance(name, str) or name.split(".", 1)[0] not in servers:
        diags.add(f"provider {name!r} has no data source {decl.type!r}; use one of: {', '.join(servers)}",
                  file=decl.file, line=decl.provider.line, address=decl.address, attribute="provider")
        return None
    return name


def evaluators(prepared) -> list:
    """The root evaluator and every module instance's: each reads its own data blocks."""
    return [prepared.evaluator, *prepared.evaluator.module_evaluators.values()]


def has_data(prepared) -> bool:
    return any(ev.config.data for ev in evaluators(prepared))


def read_data_sources(prepared, providers, diags: Diagnostics) -> None:
    """Read every data block (each module instance's too), in declaration order, into
    its evaluator's values."""
    for ev in evaluators(prepared):
        for decl in ev.config.data.values():
            _read(ev, decl, providers, diags)
        ev.reset_locals()


def _read(ev, decl, providers, diags: Diagnostics) -> None:
    address = module_prefix(ev.module_path) + decl.address
    name = provider_of(decl, diags)
    if name is None:
        return
    args = {}
    for k, a in decl.args.items():
        try:
            v = X.compile_value(a.value).evaluate(ev.scope())
        except X.ExprError as e:
            diags.add(str(e), file=decl.file, line=a.line, address=address, attribute=k)
            return
        if contains_unknown(v):
            diags.add("a data source's arguments must be known at plan time (not from a "
                      "resource that is still to be made)", file=decl.file, line=a.line,
                      address=address, attribute=k)
            return
        args[k] = v
    try:
        ev.data_values[decl.type][decl.name] = providers.get(ev.map_provider(name)).read_data(decl.type, args)
    except ProviderError as e:
        diags.add(str(e), file=decl.file, line=decl.line, address=address)
