"""Modules: ``module "NAME" { source = "./DIR" ... }`` blocks, as Terraform has them.

A module call is loaded with :func:`load_module_call` (the loader's hook) and
expanded by :func:`expand_modules` once the root's variables are known:

- each call's ``count`` / ``for_each`` (known at plan time) gives its instances,
  ``module.NAME``, ``module.NAME[0]``, ``module.NAME["key"]``;
- each instance gets a :class:`ModuleEvaluator` over the module directory's own
  :class:`Config` (loaded once per directory): its ``var.X`` is the call's
  argument ``X`` evaluated in the caller's scope (with the instance's
  ``count.index`` / ``each``), else the variable's default; its resources
  resolve ``TYPE.NAME`` inside the module; its provider names map through the
  call's ``providers = { libvirt = libvirt.kvm02 }`` (default providers are
  inherited, as in Terraform);
- every resource of every instance joins the root config's ``resources`` under
  its full address (``module.kvm01.network.lab``), so the graph, the planner, the
  walk and the state see one flat set of resources.

``module.NAME.OUTPUT`` reads the instance's ``output`` blocks; ``path.module``,
``path.root`` and ``path.cwd`` are the module's directory, the root's and the
working directory. Module directories are hashed into the config digest that
saved plans check. Provider blocks belong in the root module only.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from kvmnet.engine import expr as X
from kvmnet.engine.config.variables import check_input
from kvmnet.engine.config.evaluate import EvalFailure, Evaluator, _var_type, is_constant_raw
from kvmnet.engine.config.loader import config_files, load_config
from kvmnet.engine.config.module_blocks import provider_reference
from kvmnet.engine.config.model import Config, ModuleCallDecl
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.sdk.addresses import format_key, module_prefix
from kvmnet.sdk.values import UNKNOWN, contains_unknown

MAX_DEPTH = 32


def _digest(directory: Path) -> str:
    h = hashlib.sha256()
    for p in config_files(directory):
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


# -- expansion -------------------------------------------------------------------------

class _Loaded:
    """Module configs by directory, each loaded once per run."""

    def __init__(self, use_cache: bool):
        self.use_cache = use_cache
        self.configs: dict[Path, Config] = {}

    def get(self, directory: Path, diags: Diagnostics) -> Config | None:
        key = directory.resolve()
        if key not in self.configs:
            cfg = load_config(directory, use_cache=self.use_cache)
            for p in cfg.providers.values():
                cfg.diagnostics.add(f'provider "{p.name}" is configured inside a module; provider '
                                    'blocks belong in the root module (pass them to the module '
                                    'with providers = { NAME = NAME.ALIAS })', file=p.file, line=p.line)
            self.configs[key] = cfg
            diags.extend(cfg.diagnostics)
        cfg = self.configs[key]
        return None if cfg.diagnostics.errors else cfg


def expand_modules(root: Evaluator, diags: Diagnostics, use_cache: bool = True) -> None:
    """Instantiate every module call below ``root`` (recursively) and add their
    resources to the root config under their full addresses."""
    loaded = _Loaded(use_cache)
    _expand(root, root, loaded, diags, [Path(root.config.dir).resolve()])
    if loaded.configs:
        h = hashlib.sha256(root.config.digest.encode())
        base = Path(root.config.dir).resolve()
        for d in sorted(loaded.configs):
            h.update(os.path.relpath(d, base).encode() + b"\0" + _digest(d).encode() + b"\0")
        root.config.digest = h.hexdigest()


def _expand(root: Evaluator, parent: Evaluator, loaded: _Loaded, diags: Diagnostics,
            chain: list[Path]) -> None:
    for name, call in parent.config.modules.items():
        where = dict(file=call.file, line=call.line)
        directory = Path(os.path.normpath(Path(parent.config.dir) / call.source))
        if not directory.is_dir():
            diags.add(f'module "{name}": source directory {call.source!r} does not exist', **where)
            continue
        if directory.resolve() in chain or len(chain) > MAX_DEPTH:
            diags.add(f'module "{name}": source {call.source!r} calls itself (a module cycle)', **where)
            continue
        cfg = loaded.get(directory, diags)
        if cfg is None:
            continue
        providers = _provider_map(parent, call, diags)
        _check_inputs(call, cfg, diags)
        keys = parent._instance_keys(call, diags)
        parent.module_calls[name] = (call, [])
        for key, each in keys or []:
            path = module_prefix(parent.module_path) + f"module.{name}{format_key(key)}"
            child = ModuleEvaluator(cfg, root, parent, call, path, key, each, providers)
            parent.module_calls[name][1].append((key, child))
            root.module_evaluators[path] = child
            _check_values(child, diags)
            for decl in cfg.resources.values():
                flat = dataclasses.replace(decl, module=path)
                root.config.resources[flat.address] = flat
            _expand(root, child, loaded, diags, chain + [directory.resolve()])


def _check_values(child: ModuleEvaluator, diags: Diagnostics) -> None:
    """Each argument converts to its variable's type (what is known before any
    resource is): the error is the call's, at the argument's line."""
    call = child.call
    for name, a in call.inputs.items():
        if name not in child.config.variables:
            continue
        try:
            child.input_value(name)
        except X.ExprError as e:
            diags.add(str(e), file=call.file, line=a.line, address=child.module_path, attribute=name)
    child.reset_locals()


def _check_inputs(call: ModuleCallDecl, cfg: Config, diags: Diagnostics) -> None:
    for k, a in call.inputs.items():
        if k not in cfg.variables:
            known = ", ".join(sorted(cfg.variables)) or "none"
            diags.add(f'module "{call.name}" has no variable "{k}" (its variables: {known})',
                      file=call.file, line=a.line, attribute=k)
    for v in cfg.variables.values():
        if v.name not in call.inputs and v.default is None:
            diags.add(f'module "{call.name}" needs a value for its variable "{v.name}" '
                      f"(declared at {v.file}:{v.line}, no default)", file=call.file, line=call.line)


def _provider_map(parent: Evaluator, call: ModuleCallDecl, diags: Diagnostics) -> dict[str, str]:
    """The module's provider names → the caller's provider instances."""
    out: dict[str, str] = {}
    if call.providers is None:
        return out
    raw = call.providers.value
    where = dict(file=call.file, line=call.providers.line, address=f"module.{call.name}",
                 attribute="providers")
    if not isinstance(raw, dict):
        diags.add("providers must be a map, as in providers = { NAME = NAME.ALIAS }", **where)
        return out
    for k, v in raw.items():
        inner, outer = provider_reference(k), provider_reference(v)
        if inner is None or outer is None:
            diags.add(f"providers: {k} = {v}: expected NAME or NAME.ALIAS on both sides", **where)
            continue
        if inner.split(".")[0] != outer.split(".")[0]:
            diags.add(f"providers: {inner} cannot be given {outer} (another provider)", **where)
            continue
        if "." in outer and not parent.has_provider(outer):
            diags.add(f'providers: no provider "{outer}" is configured (add provider '
                      f'"{outer.split(".")[0]}" {{ alias = "{outer.split(".")[1]}" }})', **where)
            continue
        out[inner] = parent.map_provider(outer)
    return out


def _path_value(ev: Evaluator, name: str):
    if name == "module":
        return _shown(ev.config.dir)
    if name == "root":
        return _shown(ev.root.config.dir)
    if name == "cwd":
        return os.getcwd()
    raise X.ExprError(f'"path.{name}": the "path" object has only the attributes "module", "root" and "cwd"')


def _shown(directory: str) -> str:
    """A directory as Terraform shows ``path.module``: relative to the working
    directory (``modules/bridge``, ``../modules/bridge``)."""
    try:
        return os.path.relpath(directory)
    except ValueError:
        return os.path.normpath(directory)


def module_value(ev: Evaluator, name: str):
    """``module.NAME``: an object of the instance's outputs; a list of them with
    ``count``, a map with ``for_each``."""
    got = ev.module_calls.get(name)
    if got is None:
        if name in ev.config.modules:      # not expanded: its call had an error
            return UNKNOWN
        raise X.ExprError(f'reference to undeclared module "module.{name}"')
    call, instances = got
    if call.count is not None:
        return [child.outputs() for _k, child in instances]
    if call.for_each is not None:
        return {k: child.outputs() for k, child in instances}
    return instances[0][1].outputs() if instances else UNKNOWN


def resolve_special(ev: Evaluator, root: str, name: str):
    if root == "path":
        return _path_value(ev, name)
    return module_value(ev, name)


class ModuleEvaluator(Evaluator):
    """Evaluates one module instance (built by :func:`expand_modules`)."""

    def __init__(self, config: Config, root, parent, call: ModuleCallDecl, path: str,
                 key, each, providers: dict[str, str]):
        super().__init__(config, _Inputs(self))
        self.root = root
        self.parent = parent
        self.call = call
        self.module_path = path
        self.key = key
        self.each = each
        self.providers = providers
        # Nothing that can read a resource is memoised: during a plan the resources'
        # values fill in one by one (in dependency order), so a value worked out
        # early could miss one. Constant arguments and defaults are kept.
        self._constant: dict[str, Any] = {}
        self._busy: set[str] = set()
        types_diags = Diagnostics()
        self._types = {n: _var_type(d, types_diags) for n, d in config.variables.items()}

    def input_value(self, name: str):
        """``var.NAME``: the call's argument in the caller's scope, else the default,
        converted to the variable's type."""
        if name in self._constant:
            return self._constant[name]
        decl = self.config.variables[name]
        a = self.call.inputs.get(name)
        if a is not None:
            if name in self._busy:
                raise X.ExprError(f'{self.module_path}: variable "{name}" refers back to itself '
                                  "through the module's outputs (a cycle)")
            p = self.parent
            scope = p.scope(count_index=self.key if self.call.count is not None else None,
                            each=self.each)
            self._busy.add(name)
            try:
                v = p.evaluate(a, scope, address=f"module.{self.call.name}", path=name)
            except EvalFailure as f:
                raise X.ExprError(f"in module \"{self.call.name}\" argument {name} "
                                  f"({f.diag.file}:{f.diag.line}): {f.diag.message}") from None
            finally:
                self._busy.discard(name)
            where, constant = f"{self.call.file}:{a.line}", is_constant_raw(a.value)
        elif decl.default is not None:
            v = X.compile_value(decl.default.value).evaluate(X.Scope())
            where, constant = f"{decl.file}:{decl.default.line}", True
        else:
            raise X.ExprError(f'module "{self.call.name}" needs a value for variable "{name}"')
        if v is None and not decl.nullable and decl.default is not None:
            v = X.compile_value(decl.default.value).evaluate(X.Scope())
        t = self._types.get(name)
        if t is not None and not contains_unknown(v):
            try:
                v = X.convert(v, t)
            except X.ExprError as e:
                raise X.ExprError(f'invalid value for variable "{name}" of module '
                                  f'"{self.call.name}" ({where}): {e}') from None
        check_input(decl, v, f'module "{self.call.name}"')   # nullable, validation blocks
        if constant:
            self._constant[name] = v
        return v

    def local_value(self, name: str):
        """``local.NAME``, not kept (it may read the module's inputs or resources)."""
        try:
            return super().local_value(name)
        finally:
            self._locals.pop(name, None)

    def outputs(self) -> dict[str, Any]:
        """The instance's outputs as an object (``module.NAME``)."""
        if "\0outputs" in self._busy:
            raise X.ExprError(f"{self.module_path}: its outputs refer back to themselves (a cycle)")
        self._busy.add("\0outputs")
        try:
            out = {}
            for name, o in self.config.outputs.items():
                if o.value is None:
                    continue
                try:
                    out[name] = self.evaluate(o.value, self.scope(), f"{self.module_path}.output.{name}")
                except EvalFailure as f:
                    raise X.ExprError(f"in output {name} of {self.module_path} "
                                      f"({f.diag.file}:{f.diag.line}): {f.diag.message}") from None
        finally:
            self._busy.discard("\0outputs")
        return out

    def has_provider(self, name: str) -> bool:
        return name in self.providers

    def map_provider(self, name: str) -> str:
        return self.providers.get(name, self.parent.map_provider(name) if "." not in name else name)


class _Inputs(Mapping[str, Any]):
    """``var.NAME`` of a module instance, evaluated on first use."""

    def __init__(self, ev):
        self.ev = ev

    def __getitem__(self, name: str):
        if name not in self.ev.config.variables:
            raise KeyError(name)
        return self.ev.input_value(name)

    def __contains__(self, name: object) -> bool:
        return name in self.ev.config.variables

    def __iter__(self) -> Iterator[str]:
        return iter(self.ev.config.variables)

    def __len__(self) -> int:
        return len(self.ev.config.variables)
