"""``data "TYPE" "NAME" { arguments }`` blocks: read from the config and checked
against the data sources the provider plugins serve (``Plugin.data_types``); the
engine names no data source. They are read at plan time (engine/plan/data.py);
until then (``kvmnet validate``) their values are unknown.
"""
from __future__ import annotations

from kvmnet.engine import expr as X
from kvmnet.engine import registry
from kvmnet.engine.config.declared import is_new
from kvmnet.engine.config.hcl import Block
from kvmnet.engine.config.model import Config, DataDecl
from kvmnet.engine.diagnostics import Diagnostics

UNSUPPORTED_META = {
    "count": "count is not supported on data sources; declare one block per object",
    "for_each": "for_each is not supported on data sources; declare one block per object",
    "depends_on": "depends_on is not supported on data sources: they are read before any change",
}


def load_data(cfg: Config, b: Block, d: Diagnostics) -> None:
    dtype, name = b.labels
    address = f"data.{dtype}.{name}"
    known = registry.data_types()
    if dtype not in known:
        d.add(f'unknown data source "{dtype}"; known: {", ".join(known) or "none"}',
              file=b.file, line=b.line, address=address)
        return
    if not is_new(cfg.data, address, f"{address} is declared twice", b, d, address):
        return
    definition, _servers = known[dtype]
    decl = DataDecl(dtype, name, b.file, b.line)
    ok = True
    for k, a in b.attrs.items():
        if k == "provider":
            decl.provider = a
        elif k in UNSUPPORTED_META:
            d.add(UNSUPPORTED_META[k], file=b.file, line=a.line, address=address, attribute=k)
            ok = False
        elif k not in definition.arguments:
            d.add(f'unknown argument "{k}" for data source "{dtype}"; expected '
                  f'{", ".join(definition.arguments)}', file=b.file, line=a.line, address=address)
            ok = False
        else:
            decl.args[k] = a
    for sub in b.blocks:
        d.add(f'unexpected block "{sub.type}" in {address}', file=b.file, line=sub.line, address=address)
        ok = False
    for k in definition.required:
        if k not in decl.args:
            d.add(f'data source "{dtype}" needs "{k}"', file=b.file, line=b.line, address=address)
            ok = False
    if ok:
        cfg.data[address] = decl


def _attrs_of(block: Block):
    yield from block.attrs.values()
    for sub in block.blocks:
        yield from _attrs_of(sub)


def check_data_references(cfg: Config, d: Diagnostics) -> None:
    """Every ``data.TYPE.NAME`` reference names a declared data source."""
    where = [(a, r.file) for r in cfg.resources.values() for a in _attrs_of(r.body)]
    where += [(loc.value, loc.file) for loc in cfg.locals.values()]
    where += [(o.value, o.file) for o in cfg.outputs.values() if o.value is not None]
    where += [(a, dd.file) for dd in cfg.data.values() for a in dd.args.values()]
    for attr, file in where:
        if "data." not in str(attr.value):
            continue                    # most attributes: no need to compile
        try:
            refs = X.compile_value(attr.value).references()
        except X.ExprError:
            continue                    # reported where the expression is evaluated
        for ref in refs:
            if ref.root != "data":
                continue
            if len(ref.parts) < 3:
                d.add(f'"{ref.text}": a data source reference is data.TYPE.NAME', file=file, line=attr.line)
            elif f"data.{ref.parts[1]}.{ref.parts[2]}" not in cfg.data:
                d.add(f'reference to undeclared data source "data.{ref.parts[1]}.{ref.parts[2]}"',
                      file=file, line=attr.line)
