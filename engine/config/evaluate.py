"""Evaluating a loaded :class:`Config`: variables, locals, resource instances.

The engine's own evaluator (``kvmnet.engine.expr``) does the expressions; this
module decides *what* is evaluated *with which scope*:

- input variables: default, then ``KVMNET_VAR_name``, ``kvmnet.vars.hcl``, each
  ``--var-file``, each ``--var`` (later wins), converted to the declared type,
  then checked (``nullable``, ``validation``; engine/config/variables.py);
- locals: on demand, memoised, a cycle between locals is an error;
- resources: ``count`` / ``for_each`` expansion and the body of each instance,
  with resource references resolved through a callback the caller supplies (the
  planner answers with planned values, the apply walk with applied ones).

Every error is a Diagnostic with FILE:LINE of the expression it comes from.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kvmnet.engine import expr as X
from kvmnet.engine import limits
from kvmnet.engine.expr.nodes import Literal as _Literal
from kvmnet.engine.config import dynamic
from kvmnet.engine.config.checks import failed
from kvmnet.engine.config.lifecycle import trigger_texts
from kvmnet.engine.config.sensitivity import Sensitivity
from kvmnet.engine.expr.ops import type_name
from kvmnet.engine.config.hcl import Attr, Block, parse_files
from kvmnet.engine.config.loader import VARS_FILE, display_name
from kvmnet.engine.config.model import Config, ModuleCallDecl, ResourceDecl
from kvmnet.engine.config.variables import ENV_PREFIX, apply_nullable, env_values, validate_values
from kvmnet.engine.diagnostics import Diagnostic, Diagnostics
from kvmnet.engine.model import Lifecycle, ResourceInstance, SourcePos, format_address
from kvmnet.engine.resources import TYPES
from kvmnet.sdk.values import UNKNOWN, contains_unknown

# resolve(type, name) -> value of a resource for references: dict (single instance),
# list (count) or dict of dicts (for_each); UNKNOWN where not known yet
ResourceResolver = Callable[[str, str], Any]


class EvalFailure(Exception):
    def __init__(self, diag: Diagnostic):
        self.diag = diag
        super().__init__(str(diag))


_compiled: dict[int, Any] = {}


def compiled(attr: Attr):
    """The compiled form of an attribute value (compiled once per Attr object)."""
    c = _compiled.get(id(attr))
    if c is None or c[0] is not attr:
        c = (attr, X.compile_value(attr.value))
        _compiled[id(attr)] = c
    return c[1]


def is_constant_raw(raw) -> bool:
    """A raw value that compiles to itself as a literal (a string without ``${``,
    ``%{`` or heredoc, a whole number, a bool, null): nothing to compile or walk."""
    t = type(raw)
    if t is str:
        return "${" not in raw and "%{" not in raw and not raw.startswith("<<")
    return t is int or t is bool or raw is None


def error_line(e: "X.ExprError", attr: Attr) -> int:
    """The line of the sub-expression an error is about: a node's offset is the
    line it starts on in the file (never before its attribute's line)."""
    return max(e.offset, attr.line) if type(e.offset) is int else attr.line


def attr_references(attr: Attr) -> list:
    if is_constant_raw(attr.value):   # most attributes (≈0.1 s at 10,000 networks)
        return []
    c = compiled(attr)
    if type(c.node) is _Literal:   # most attributes: nothing to walk (≈0.13 s at 10,000 networks)
        return []
    return c.references()


def body_references(block: Block):
    """(Attr, Reference) for every reference in a block body, nested blocks included."""
    for a in block.attrs.values():
        for ref in attr_references(a):
            yield a, ref
    for b in block.blocks:
        yield from body_references(b)


@dataclass
class VariableInputs:
    """Values given on the command line: ``--var NAME=VALUE`` and ``--var-file F``."""

    var_files: list[str] = field(default_factory=list)
    vars: list[str] = field(default_factory=list)      # "NAME=VALUE"

    def to_json(self) -> dict:
        return {"var_files": self.var_files, "vars": self.vars}


class Evaluator:
    """Evaluates one configuration. Build it with :meth:`prepare`."""

    def __init__(self, config: Config, variables: Mapping[str, Any]):
        self.config = config
        self.variables = variables
        self._locals: dict[str, Any] = {}
        self._locals_busy: list[str] = []
        self.resolve_resource: ResourceResolver = lambda t, n: UNKNOWN
        # modules (engine/config/modules.py): this evaluator's module path ("" for
        # the root), its calls' instances, and (root only) every module instance
        self.module_path = ""
        self.root: Evaluator = self
        self.module_calls: dict[str, tuple[Any, list[tuple[Any, Any]]]] = {}   # name -> (call, [(key, ev)])
        self.module_evaluators: dict[str, Evaluator] = {}
        # data.TYPE.NAME values: unknown until the plan reads them (engine/plan/data.py)
        self.sensitivity = Sensitivity(config, ())      # resources: set by prepare (needs the order)
        self.data_values: dict[str, dict[str, Any]] = {}
        for dd in config.data.values():
            self.data_values.setdefault(dd.type, {})[dd.name] = UNKNOWN
        # file(), templatefile()... read relative to the module's directory; what they
        # read joins the root config's digest, so a saved plan goes stale when it changes
        self._on_file_read = file_digest_hook(config)
        self._files: dict[str, X.FileAccess] = {}
        self._files_by_dir: dict[str, X.FileAccess] = {}    # as named: no path resolution per scope

    # -- variables --------------------------------------------------------------
    @classmethod
    def prepare(cls, config: Config, inputs: VariableInputs, diags: Diagnostics) -> "Evaluator":
        return cls(config, resolve_variables(config, inputs, diags))

    # -- scopes ------------------------------------------------------------------
    def scope(self, count_index=None, each=None) -> "X.Scope":
        return X.Scope(
            variables=self.variables,
            locals=_LazyLocals(self),
            count={"index": count_index} if count_index is not None else None,
            each=each,
            resolve_resource=self._resolve_name,
            resource_types=_names(),
            loop={"data": self.data_values} if self.data_values else None,
            files=self.files,
        )

    @property
    def files(self) -> "X.FileAccess":
        """The FileAccess of this module's directory (the root's hook records it)."""
        return self.root.files_for(self.config.dir or ".")

    def files_for(self, module_dir: str) -> "X.FileAccess":
        """The FileAccess of the module in ``module_dir`` (one per directory); its
        reads extend this (root) config's digest."""
        found = self._files_by_dir.get(module_dir)
        if found is None:
            key = str(Path(module_dir).resolve())
            if key not in self._files:
                self._files[key] = X.FileAccess(module_dir, on_read=self._on_file_read,
                                                root_dir=self.config.dir or ".")
            found = self._files_by_dir[module_dir] = self._files[key]
        return found

    def _resolve_name(self, root: str, name: str):
        """``TYPE.NAME`` inside this module, ``module.NAME``, ``path.X``."""
        if root == "module" or root == "path":
            from kvmnet.engine.config.modules import resolve_special
            return resolve_special(self, root, name)
        if self.module_path:
            return self.root.resolve_resource(f"{self.module_path}.{root}", name)
        return self.resolve_resource(root, name)

    def has_provider(self, name: str) -> bool:
        """A provider instance (``libvirt.kvm02``) this module can name."""
        return name in self.config.providers

    def map_provider(self, name: str) -> str:
        """The run's provider instance behind this module's provider name."""
        return name

    def evaluate(self, attr: Attr, scope, address: str | None = None, path: str | None = None):
        try:
            return X.check_storable(compiled(attr).evaluate(scope))
        except X.ExprError as e:
            raise EvalFailure(Diagnostic(str(e), file=self._file_of(attr), line=error_line(e, attr),
                                         address=address, attribute=path or attr.name)) from None

    def _file_of(self, attr: Attr) -> str | None:
        return getattr(attr, "file", None) or self._attr_files.get(id(attr))

    @property
    def _attr_files(self) -> dict[int, str]:
        m = getattr(self, "_attr_files_cache", None)
        if m is None:
            m = {}
            for r in self.config.resources.values():
                _index_files(r.body, r.file, m)
                for a in (r.count, r.for_each, r.depends_on, r.provider, r.prevent_destroy, r.ignore_changes):
                    if a is not None:
                        m[id(a)] = r.file
            for loc in self.config.locals.values():
                m[id(loc.value)] = loc.file
            for o in self.config.outputs.values():
                if o.value is not None:
                    m[id(o.value)] = o.file
            for p in self.config.providers.values():
                for a in p.attrs.values():
                    m[id(a)] = p.file
            self._attr_files_cache = m
        return m

    def local_value(self, name: str):
        if name in self._locals:
            return self._locals[name]
        decl = self.config.locals.get(name)
        if decl is None:
            raise KeyError(name)
        if name in self._locals_busy:
            cycle = " -> ".join(self._locals_busy[self._locals_busy.index(name):] + [name])
            raise X.ExprError(f"local values refer to each other in a cycle: {cycle}")
        self._locals_busy.append(name)
        try:
            value = compiled(decl.value).evaluate(self.scope())
        except X.ExprError as e:
            raise X.ExprError(f"in local.{name} ({decl.file}:{decl.value.line}): {e}") from None
        finally:
            self._locals_busy.pop()
        self._locals[name] = value
        return value

    def reset_locals(self) -> None:
        """Forget memoised locals (resource values they read may have become known),
        and the modules' inputs and outputs."""
        self._locals.clear()
        for ev in self.module_evaluators.values():
            ev.reset_locals()

    # -- providers ---------------------------------------------------------------
    def provider_config(self, name: str, diags: Diagnostics) -> dict:
        decl = self.config.providers.get(name)
        if decl is None:
            return {}
        out = {}
        for k, a in decl.attrs.items():
            try:
                v = self.evaluate(a, self.scope(), address=f"provider.{name}", path=k)
            except EvalFailure as f:
                diags.items.append(f.diag)
                continue
            if v is not None:          # null means "not set": the provider's default
                out[k] = v
        return out

    # -- resources ---------------------------------------------------------------
    def expand(self, r: ResourceDecl, diags: Diagnostics) -> list[ResourceInstance]:
        """Every instance of one resource block, its body evaluated."""
        if r.module != self.module_path:
            ev = self.root.module_evaluators.get(r.module)
            return ev.expand(r, diags) if ev is not None else []
        keys = self._instance_keys(r, diags)
        if keys is None:
            return []
        provider = self._provider_name(r, diags)
        depends = self._depends_on(r, diags)
        lifecycle = self._lifecycle(r, diags)
        out = []
        for key, each in keys:
            address = format_address(r.type, r.name, key, r.module)
            scope = self.scope(count_index=key if r.count is not None else None, each=each)
            attrs: dict = {}
            lines: dict[str, int] = {}
            ok = self._eval_block(r.body, scope, address, "", attrs, lines, diags)
            if not ok:
                continue
            problems = [p for p in (failed(rule, scope, "precondition failed", address)
                                    for rule in r.preconditions) if p is not None]
            if problems:
                diags.extend(problems)
                continue
            out.append(ResourceInstance(
                address=address, type=r.type, name=r.name, key=key, provider=provider,
                attrs=attrs, pos=SourcePos(r.file, r.line), attr_lines=lines,
                depends_on=set(depends), lifecycle=lifecycle, module=r.module,
                postconditions=[(rule, scope) for rule in r.postconditions],
                sensitive=self.root.sensitivity.of_resource(r.address)))
        return out

    def _eval_block(self, block: Block, scope, address, prefix, out, lines, diags) -> bool:
        ok = True
        for name, a in block.attrs.items():
            path = f"{prefix}{name}"
            lines[path] = a.line
            if is_constant_raw(a.value):   # most attributes: nothing to evaluate
                out[name] = a.value
                continue
            try:
                out[name] = self.evaluate(a, scope, address, path)
            except EvalFailure as f:
                diags.items.append(f.diag)
                ok = False
        counters: dict[str, int] = {}
        for sub, sub_scope in self._sub_blocks(block, scope, address, prefix, diags):
            if sub_scope is None:
                ok = False
                continue
            if sub.labels:
                diags.add(f'block "{sub.type}" takes no labels', file=block.file, line=sub.line,
                          address=address, attribute=f"{prefix}{sub.type}")
                ok = False
                continue
            if sub.type in block.attrs:
                diags.add(f'"{sub.type}" is set both as an attribute and as a block',
                          file=block.file, line=sub.line, address=address, attribute=f"{prefix}{sub.type}")
                ok = False
                continue
            i = counters.get(sub.type, 0)
            counters[sub.type] = i + 1
            path = f"{prefix}{sub.type}[{i}]"
            lines.setdefault(f"{prefix}{sub.type}", sub.line)
            lines[path] = sub.line
            child: dict = {}
            ok = self._eval_block(sub, sub_scope, address, path + ".", child, lines, diags) and ok
            out.setdefault(sub.type, []).append(child)
        return ok

    def _sub_blocks(self, block: Block, scope, address, prefix, diags):
        """(block, scope) for each nested block, ``dynamic`` ones expanded; scope None
        for a dynamic block that failed (its errors are in ``diags``)."""
        for sub in block.blocks:
            if sub.type != "dynamic":
                yield sub, scope
                continue
            path = f"{prefix}dynamic"
            try:
                made = dynamic.expand(sub, scope, lambda a, sc, p: self.evaluate(a, sc, address, p),
                                      diags, address, path)
            except EvalFailure as f:
                diags.items.append(f.diag)
                made = None
            if made is None:
                yield sub, None
                continue
            yield from made

    def _instance_keys(self, r: ResourceDecl | ModuleCallDecl, diags: Diagnostics):
        """[(key, each)] for the resource's instances; None on error."""
        meta = r.count if r.count is not None else r.for_each
        if meta is None:
            return [(None, None)]
        name = "count" if r.count is not None else "for_each"
        try:
            ceiling = limits.max_instances()
        except limits.LimitError as e:
            diags.add(e.message, file=r.file, line=meta.line, address=r.address, attribute=name)
            return None
        keys = self._keys_within(r, ceiling, diags)
        if keys is not None and len(keys) > ceiling:
            diags.add(f"{name} makes {len(keys)} instances; at most {ceiling} are allowed per "
                      f"resource (raise {limits.INSTANCES_ENV} to allow more)",
                      file=r.file, line=meta.line, address=r.address, attribute=name)
            return None
        return keys

    def _keys_within(self, r: ResourceDecl | ModuleCallDecl, ceiling: int, diags: Diagnostics):
        """[(key, each)] for count/for_each; a count above ``ceiling`` is not expanded."""
        addr = r.address
        if r.count is not None:
            try:
                n = self.evaluate(r.count, self.scope(), addr, "count")
            except EvalFailure as f:
                diags.items.append(f.diag)
                return None
            if n is UNKNOWN or contains_unknown(n):
                diags.add(_unknown_meta("count", r), file=r.file, line=r.count.line, address=addr,
                          attribute="count")
                return None
            if isinstance(n, bool) or not isinstance(n, (int, float)) or n != n \
                    or n in (float("inf"), float("-inf")) or int(n) != n or n < 0:
                diags.add(f"count must be a whole number ≥ 0, not {n!r}", file=r.file,
                          line=r.count.line, address=addr, attribute="count")
                return None
            if n > ceiling:
                diags.add(f"count is {int(n)}; at most {ceiling} instances are allowed per "
                          f"resource (raise {limits.INSTANCES_ENV} to allow more)",
                          file=r.file, line=r.count.line, address=addr, attribute="count")
                return None
            return [(i, None) for i in range(int(n))]
        if r.for_each is not None:
            try:
                v = self.evaluate(r.for_each, self.scope(), addr, "for_each")
            except EvalFailure as f:
                diags.items.append(f.diag)
                return None
            if v is UNKNOWN or contains_unknown(v) and not isinstance(v, dict):
                diags.add(_unknown_meta("for_each", r), file=r.file, line=r.for_each.line,
                          address=addr, attribute="for_each")
                return None
            if isinstance(v, dict):
                return [(str(k), {"key": str(k), "value": v[k]}) for k in sorted(v, key=str)]
            if isinstance(v, X.SetValue):
                items = list(v)
                if not all(isinstance(x, str) for x in items):
                    diags.add("for_each over a set needs a set of strings (use toset([...]) of strings)",
                              file=r.file, line=r.for_each.line, address=addr, attribute="for_each")
                    return None
                return [(k, {"key": k, "value": k}) for k in items]
            diags.add("for_each must be a map, or a set of strings made with toset(); "
                      f"got {type_name(v)}", file=r.file, line=r.for_each.line,
                      address=addr, attribute="for_each")
            return None
        return [(None, None)]

    def _provider_name(self, r: ResourceDecl, diags: Diagnostics) -> str:
        t = TYPES[r.type]
        if r.provider is None:
            return self.map_provider(t.default_provider)
        v = r.provider.value
        if isinstance(v, str) and v.startswith("${") and v.endswith("}"):
            v = v[2:-1].strip()
        # provider = libvirt.kvm02 (or the string "libvirt.kvm02"): an aliased instance
        plugin, _, alias = v.partition(".") if isinstance(v, str) else (v, "", "")
        if not isinstance(v, str) or plugin not in t.providers:
            diags.add(f'provider {v!r} cannot manage a {r.type}; use one of: {", ".join(t.providers)}',
                      file=r.file, line=r.provider.line, address=r.address, attribute="provider")
            return self.map_provider(t.default_provider)
        if alias and not self.has_provider(v):
            diags.add(f'provider "{v}" is not configured; add provider "{plugin}" {{ alias = "{alias}" }}'
                      + (" in the root module and pass it with providers = { ... }" if self.module_path else ""),
                      file=r.file, line=r.provider.line, address=r.address, attribute="provider")
            return self.map_provider(t.default_provider)
        return self.map_provider(v)

    def _depends_on(self, r: ResourceDecl, diags: Diagnostics) -> list[str]:
        """Resource addresses named in depends_on (existence checked by the graph)."""
        if r.depends_on is None:
            return []
        raw = r.depends_on.value
        if not isinstance(raw, list):
            diags.add("depends_on must be a list of resource addresses", file=r.file,
                      line=r.depends_on.line, address=r.address, attribute="depends_on")
            return []
        out = []
        for item in raw:
            text = item[2:-1].strip() if isinstance(item, str) and item.startswith("${") else item
            parts = str(text).split(".")
            if len(parts) >= 2 and parts[0] == "module":
                continue           # every resource of a module call: the graph's edges
            if len(parts) < 2 or parts[0] not in TYPES:
                diags.add(f"depends_on entry {text!r} is not a resource address (TYPE.NAME)",
                          file=r.file, line=r.depends_on.line, address=r.address, attribute="depends_on")
                continue
            out.append(f"{parts[0]}.{parts[1].split('[')[0]}")
        return out

    def _lifecycle(self, r: ResourceDecl, diags: Diagnostics) -> Lifecycle:
        lc = Lifecycle(replace_triggered_by=trigger_texts(r, Diagnostics()))   # checked by the loader
        if r.prevent_destroy is not None:
            v = r.prevent_destroy.value
            if not isinstance(v, bool):
                diags.add("lifecycle.prevent_destroy must be true or false (a literal)",
                          file=r.file, line=r.prevent_destroy.line, address=r.address,
                          attribute="lifecycle.prevent_destroy")
            else:
                lc.prevent_destroy = v
        if r.ignore_changes is not None:
            v = r.ignore_changes.value
            names = []
            if isinstance(v, str) and v.strip("${} ") == "all":
                names = ["*"]
            elif isinstance(v, list):
                for item in v:
                    s = str(item)
                    if s.startswith("${") and s.endswith("}"):
                        s = s[2:-1].strip()
                    names.append(s)
            else:
                diags.add("lifecycle.ignore_changes must be a list of attribute names",
                          file=r.file, line=r.ignore_changes.line, address=r.address,
                          attribute="lifecycle.ignore_changes")
            lc.ignore_changes = tuple(names)
        return lc

    def output_values(self, diags: Diagnostics) -> dict[str, Any]:
        out = {}
        for name, o in self.config.outputs.items():
            if o.value is None:
                continue
            if not o.sensitive and self.sensitivity.reads_sensitive(o.value):
                diags.add(f'output "{name}" refers to sensitive values; set sensitive = true in '
                          "it to show that this is intended (it is then masked)", file=o.file,
                          line=o.value.line, address=f"output.{name}")
                continue
            try:
                out[name] = self.evaluate(o.value, self.scope(), f"output.{name}", "value")
            except EvalFailure as f:
                diags.items.append(f.diag)
        return out


class _Names:
    """The root names handed to ``_resolve_name``: resource types, module, path."""

    def __contains__(self, name: object) -> bool:
        return name == "module" or name == "path" or name in TYPES


def _names() -> _Names:
    return _NAMES


_NAMES = _Names()


class _LazyLocals(Mapping[str, Any]):
    """``local.NAME`` evaluated on first use (a mapping, as Scope expects)."""

    def __init__(self, ev: Evaluator):
        self.ev = ev

    def __getitem__(self, name: str):
        return self.ev.local_value(name)

    def __contains__(self, name: object) -> bool:
        return name in self.ev.config.locals

    def get(self, name, default=None):
        return self[name] if name in self else default

    def __iter__(self) -> Iterator[str]:
        return iter(self.ev.config.locals)

    def __len__(self) -> int:
        return len(self.ev.config.locals)


def _index_files(block: Block, file: str, m: dict[int, str]) -> None:
    for a in block.attrs.values():
        m[id(a)] = file
    for b in block.blocks:
        _index_files(b, file, m)


# -- variables -----------------------------------------------------------------------

def _var_type(decl, diags: Diagnostics):
    if decl.type is None:
        return None
    text = decl.type.value
    try:
        return X.parse_type(text if isinstance(text, str) else str(text))
    except X.ExprError as e:
        diags.add(f"invalid type for variable \"{decl.name}\": {e}", file=decl.file,
                  line=decl.type.line, attribute="type")
        return None


def file_digest_hook(config: Config) -> Callable[["X.FileAccess"], None]:
    """An ``on_read`` for :class:`FileAccess`: keeps ``config.digest`` (the hash of
    the config files) extended with the digest of every file the functions read.
    One hook per run, the root evaluator's, shared by every module's FileAccess
    (:meth:`Evaluator.files_for`)."""
    import hashlib
    accesses: dict[int, Any] = {}          # one per reads table (templatefile shares its module's)
    state = {"base": config.digest, "written": config.digest}

    def on_read(files) -> None:
        if config.digest != state["written"]:   # the digest moved on (module directories)
            state["base"] = config.digest
        accesses[id(files.reads)] = files
        h = hashlib.sha256(state["base"].encode())
        for d in sorted(a.digest() for a in accesses.values()):
            h.update(d.encode())
        config.digest = state["written"] = h.hexdigest()
    return on_read


def resolve_variables(config: Config, inputs: VariableInputs, diags: Diagnostics) -> dict[str, Any]:
    empty_scope = X.Scope(variables={}, locals={}, resolve_resource=None, resource_types=None)
    types = {name: _var_type(d, diags) for name, d in config.variables.items()}
    given: dict[str, tuple[Any, str, int | None, bool]] = {}   # name -> (value, where, line, is_raw_text)

    def from_file(path: Path, required: bool):
        if not path.exists():
            if required:
                diags.add(f"variable file {path} does not exist")
            return
        pf = parse_files([(path, display_name(path))])[0]
        diags.extend(pf.errors)
        for b in pf.blocks:
            diags.add(f'unexpected block "{b.type}" in a variables file; only NAME = VALUE',
                      file=pf.path, line=b.line)
        for name, a in pf.attrs.items():
            try:
                val = X.compile_value(a.value).evaluate(empty_scope)
            except X.ExprError as e:
                diags.add(str(e), file=pf.path, line=error_line(e, a), attribute=name)
                continue
            if name not in config.variables:
                diags.warn(f'value for undeclared variable "{name}"', file=pf.path, line=a.line)
                continue
            given[name] = (val, pf.path, a.line, False)

    for name, text in env_values(config.variables):
        given[name] = (text, "env", None, True)
    from_file(Path(config.dir) / VARS_FILE, required=False)
    for f in inputs.var_files:
        from_file(Path(f), required=True)
    for item in inputs.vars:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            diags.add(f"--var {item!r}: expected NAME=VALUE")
            continue
        if name not in config.variables:
            diags.add(f'--var {name}: no variable "{name}" is declared in the configuration')
            continue
        given[name] = (text, "--var", None, True)

    values: dict[str, Any] = {}
    for name, decl in config.variables.items():
        t = types.get(name)
        try:
            default = None
            if decl.default is not None:
                default = X.compile_value(decl.default.value).evaluate(empty_scope)
                default = X.convert(default, t) if t is not None else default
            if name in given:
                val, where, line, raw = given[name]
                src = {"--var": f" (from --var {name}=...)",
                       "env": f" (from {ENV_PREFIX}{name})"}.get(where, "")
                try:
                    val = X.parse_cli_value(val, t) if raw else val
                    val = X.convert(val, t) if t is not None else val
                except X.ExprError as e:
                    diags.add(f'invalid value for variable "{name}"{src}: {e}',
                              file=decl.file if raw else where,
                              line=decl.line if raw else line)
                    continue
                values[name] = apply_nullable(decl, val, default, decl.default is not None, diags, src)
                continue
            if decl.default is None:
                diags.add(f'variable "{name}" has no default and no value was given '
                          f'(use --var {name}=VALUE or {VARS_FILE})', file=decl.file, line=decl.line)
                continue
            values[name] = default
        except X.ExprError as e:
            diags.add(f'variable "{name}": {e}', file=decl.file, line=decl.line)
    validate_values(config.variables, values, diags)
    return values


def _unknown_meta(name: str, r) -> str:
    """Why an unknown ``count``/``for_each`` is refused, as Terraform refuses it (it
    cannot tell how many instances there will be), and for a module call what it may
    read: modules are expanded before any resource or data source is planned."""
    text = (f"{name} depends on a value known only after apply, so kvmnet cannot predict "
            "how many instances will be created")
    if isinstance(r, ModuleCallDecl):
        return (text + f"; a module's {name} is worked out before any resource or data source "
                "is planned, so it may read variables, locals and constants only")
    return text + "; use values known at plan time"
