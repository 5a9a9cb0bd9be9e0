"""Provider plugins: found through the ``kvmnet.providers`` entry point group,
imported only when a command really needs one (``validate`` imports none)."""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING

from kvmnet.engine.diagnostics import Diagnostics

if TYPE_CHECKING:
    from kvmnet.providers.base import Provider

_classes: dict[str, type] = {}


def provider_class(name: str):
    if name not in _classes:
        eps = {ep.name: ep for ep in entry_points(group="kvmnet.providers")}
        if name not in eps:
            raise KeyError(f'no provider plugin "{name}" is installed (entry point group kvmnet.providers)')
        _classes[name] = eps[name].load()
    return _classes[name]


def register(name: str, cls: type) -> None:
    """Register a provider class directly (tests use a fake provider this way)."""
    _classes[name] = cls


def check_provider_config(cls, name: str, config: dict, diags: Diagnostics, where=None) -> None:
    from jsonschema import Draft202012Validator
    schema = getattr(cls, "config_schema", None) or {"type": "object"}
    for err in Draft202012Validator(schema).iter_errors(config):
        path = ".".join(str(p) for p in err.absolute_path)
        file, line = where or (None, None)
        msg = err.message
        if err.validator == "additionalProperties":
            msg = f"unknown attribute in provider \"{name}\": {err.message}"
        diags.add(msg, file=file, line=line, address=f"provider.{name}", attribute=path or None)


class ProviderSet:
    """The provider instances of one run, created on first use and closed at the end."""

    def __init__(self, configs: dict[str, dict], where: dict[str, tuple] | None = None):
        self.configs = configs
        self.where = where or {}
        self.instances: dict[str, Provider] = {}

    def get(self, name: str):
        if name not in self.instances:
            cls = provider_class(name)
            diags = Diagnostics()
            cfg = self.configs.get(name, {})
            check_provider_config(cls, name, cfg, diags, self.where.get(name))
            if diags:
                from kvmnet.engine.diagnostics import DiagnosticError
                raise DiagnosticError(diags)
            self.instances[name] = cls(cfg, instance=name)
        return self.instances[name]

    def active(self):
        return list(self.instances.items())

    def close(self) -> None:
        for p in self.instances.values():
            try:
                p.close()
            except Exception:
                pass
