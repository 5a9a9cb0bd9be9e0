"""Provider plugins: the engine's only source of resource types and providers.

Each entry point of the ``kvmnet.providers`` group names a
:class:`kvmnet.sdk.Plugin`: a light object listing the resource types a provider
serves and where its class is. Discovery loads only these plugin objects (so
``validate`` imports no libvirt or netlink); a provider class is imported when a
command first needs one of its instances.

``KVMNET_PROVIDERS`` (comma-separated entry point names) limits discovery to
those plugins, e.g. to run with a third-party provider alone.
"""
from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Iterable

from kvmnet.engine.diagnostics import DiagnosticError, Diagnostics

if TYPE_CHECKING:
    from kvmnet.sdk.provider import Provider
    from kvmnet.sdk.types import DataType, Plugin, ResourceType

GROUP = "kvmnet.providers"
ONLY_ENV = "KVMNET_PROVIDERS"

_plugins: dict[str, Plugin] | None = None
_types: dict[str, ResourceType] | None = None
_classes: dict[str, type] = {}


def _fail(message: str) -> DiagnosticError:
    d = Diagnostics()
    d.add(message)
    return DiagnosticError(d)


def _wanted() -> set[str] | None:
    only = os.environ.get(ONLY_ENV, "")
    names = {n.strip() for n in only.split(",") if n.strip()}
    return names or None


def entry_points(group: str):
    """The installed entry points of ``group``. importlib.metadata (like the SDK's
    types) is imported when plugins are first looked for: a run that needs no
    resource type (``kvmnet validate`` of an empty directory) does not pay for it."""
    from importlib.metadata import entry_points as installed
    return installed(group=group)


def plugins() -> dict[str, Plugin]:
    """The installed plugins (those ``KVMNET_PROVIDERS`` names, when set), by name."""
    global _plugins
    if _plugins is None:
        from kvmnet.sdk.types import Plugin
        wanted = _wanted()
        found: dict[str, Plugin] = {}
        for ep in entry_points(group=GROUP):
            if wanted is not None and ep.name not in wanted or ep.name in found:
                continue
            try:
                plugin = ep.load()
            except Exception as e:          # noqa: BLE001 - any import failure of a plugin
                raise _fail(f'provider plugin "{ep.name}" ({ep.value}) cannot be loaded: '
                            f"{type(e).__name__}: {e}") from None
            if not isinstance(plugin, Plugin):
                raise _fail(f'provider plugin "{ep.name}" ({ep.value}) is not a kvmnet.sdk.Plugin')
            if plugin.name != ep.name:
                raise _fail(f'provider plugin "{ep.name}" ({ep.value}) calls itself "{plugin.name}"; '
                            "the entry point name and Plugin.name must be the same")
            found[ep.name] = plugin
        if wanted is not None and wanted - set(found):
            raise _fail(f"{ONLY_ENV} names provider plugins that are not installed: "
                        f"{', '.join(sorted(wanted - set(found)))} (entry point group {GROUP})")
        _plugins = found
    return _plugins


def resource_types() -> dict[str, ResourceType]:
    """Every resource type the plugins serve, each with ``providers`` filled in
    (its default provider first, then the others by name)."""
    global _types
    if _types is None:
        _types = merge_types(plugins().values())
    return _types


def merge_types(found: Iterable[Plugin]) -> dict[str, ResourceType]:
    """One definition per type name: plugins serving the same type must register
    the same definition (a shared types module)."""
    defs: dict[str, ResourceType] = {}
    servers: dict[str, list[str]] = {}
    for plugin in found:
        for t in plugin.types:
            first = defs.setdefault(t.name, t)
            if first is not t:
                raise _fail(f'resource type "{t.name}" is defined twice, by provider plugins '
                            f'{", ".join(servers[t.name])} and "{plugin.name}"; providers serving one '
                            "type must share its definition")
            servers.setdefault(t.name, []).append(plugin.name)
    out = {}
    for name in sorted(defs):
        t = defs[name]
        names = sorted(servers[name], key=lambda p: (p != t.default_provider, p))
        out[name] = dataclasses.replace(t, providers=tuple(names))
    return out


def data_types() -> dict[str, tuple[DataType, tuple[str, ...]]]:
    """Every data source the plugins serve: its definition and the plugins serving
    it (the first is its default provider)."""
    out: dict[str, tuple[DataType, tuple[str, ...]]] = {}
    for plugin in plugins().values():
        for d in plugin.data_types:
            first, servers = out.get(d.name, (d, ()))
            out[d.name] = (first, (*servers, plugin.name))
    return dict(sorted(out.items()))


def plugin_of(provider: str) -> Plugin | None:
    """The plugin of a provider instance name ("netplan" for "netplan.kvm02")."""
    return plugins().get(provider.split(".", 1)[0])


def provider_class(name: str):
    if name not in _classes:
        plugin = plugin_of(name)
        if plugin is None:
            raise KeyError(f'no provider plugin "{name}" is installed (entry point group {GROUP})')
        _classes[name] = plugin.load()
    return _classes[name]


def register(name: str, cls: type) -> None:
    """Register a provider class directly (tests use a fake provider this way)."""
    _classes[name] = cls


def check_provider_config(cls, name: str, config: dict, diags: Diagnostics, where=None,
                          lines: dict[str, int] | None = None) -> None:
    """The provider block's values against the provider's ``config_schema``; an
    unknown attribute is named with the closest known one. ``where`` is the block's
    (file, line), ``lines`` each attribute's line."""
    from jsonschema import Draft202012Validator
    from kvmnet.engine.suggest import did_you_mean
    schema = getattr(cls, "config_schema", None) or {"type": "object"}
    file, line = where or (None, None)
    known = list((schema.get("properties") or {}).keys())
    for err in Draft202012Validator(schema).iter_errors(config):
        path = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "additionalProperties" and not err.absolute_path:
            for key in sorted(k for k in config if k not in known):
                hint = did_you_mean(key, known) or (f" (known: {', '.join(known)})" if known else "")
                diags.add(f'unknown attribute "{key}" in provider "{name}"{hint}', file=file,
                          line=(lines or {}).get(key, line), address=f"provider.{name}", attribute=key)
            continue
        top = str(err.absolute_path[0]) if err.absolute_path else None
        diags.add(err.message, file=file, line=(lines or {}).get(top or "", line),
                  address=f"provider.{name}", attribute=path or None)


def check_provider_blocks(config, evaluator, diags: Diagnostics) -> None:
    """Every ``provider`` block of the config checked as a run would check it before
    starting the provider (what ``validate`` adds: no provider is started)."""
    for name, decl in config.providers.items():
        values = evaluator.provider_config(name, diags)
        try:
            cls = provider_class(name)
        except KeyError:
            continue            # the loader already reported an unknown provider
        check_provider_config(cls, name, values, diags, (decl.file, decl.line),
                              {k: a.line for k, a in decl.attrs.items()})


class ProviderSet:
    """The provider instances of one run, created on first use and closed at the end."""

    def __init__(self, configs: dict[str, dict], where: dict[str, tuple] | None = None):
        self.configs = configs
        self.where = where or {}
        self.lines: dict[str, dict[str, int]] = {}     # provider -> attribute -> line
        self.instances: dict[str, Provider] = {}

    def get(self, name: str):
        if name not in self.instances:
            cls = provider_class(name)
            diags = Diagnostics()
            cfg = self.configs.get(name, {})
            check_provider_config(cls, name, cfg, diags, self.where.get(name), self.lines.get(name))
            if diags:
                raise DiagnosticError(diags)
            self.instances[name] = cls(cfg, instance=name)
        return self.instances[name]

    def active(self):
        return list(self.instances.items())

    def close(self) -> None:
        """Close every instance; a provider's own errors on close are its to handle,
        so anything escaping one is a bug: raised once all are closed."""
        first: BaseException | None = None
        for p in self.instances.values():
            try:
                p.close()
            except Exception as e:   # re-raised below, after the others are closed
                first = first or e
        if first is not None:
            raise first
