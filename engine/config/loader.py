"""A config directory → :class:`Config` (SPEC §2 "Files and language").

Every ``*.hcl`` file of the directory (not recursive) except ``*.vars.hcl``. Block
structure errors (unknown block types, missing labels, duplicates, unknown resource
types) are collected as diagnostics with FILE:LINE; expressions are not looked at
here.
"""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from kvmnet.engine.config.declared import is_new
from kvmnet.engine.config.hcl import Block, parse_files
from kvmnet.engine.config.module_blocks import load_module_call, provider_alias
from kvmnet.engine.config.checks import literal_bool
from kvmnet.engine.config.data import check_data_references, load_data
from kvmnet.engine.config.lifecycle import read_lifecycle_blocks
from kvmnet.engine.config.settings import load_settings
from kvmnet.engine.config.refactoring import REFACTORING_BLOCKS, check_refactoring, load_refactoring
from kvmnet.engine.config.variables import read_variable_extras
from kvmnet.engine.config.model import (
    Config, LocalDecl, OutputDecl, ProviderDecl, ResourceDecl, VariableDecl,
)
from kvmnet.engine.diagnostics import Diagnostics
from kvmnet.engine.suggest import did_you_mean
from kvmnet.engine import registry
from kvmnet.engine.resources import TYPES

VARS_FILE = "kvmnet.vars.hcl"


def config_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.hcl")
                  if p.is_file() and not p.name.endswith(".vars.hcl"))


_NOT_A_FILE = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
               stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


def not_config_files(directory: Path) -> list[tuple[Path, str]]:
    """``*.hcl`` entries that are neither a regular file nor a directory, with what
    they are: skipped quietly, their resources would plan as removed."""
    out = []
    for p in sorted(directory.glob("*.hcl")):
        try:
            kind = stat.S_IFMT(p.stat().st_mode)
        except FileNotFoundError:
            out.append((p, "a symbolic link to a file that does not exist"))
            continue
        except OSError as e:
            out.append((p, f"unreadable ({e.strerror or e})"))
            continue
        if kind not in (stat.S_IFREG, stat.S_IFDIR):
            out.append((p, _NOT_A_FILE.get(kind, "not a regular file")))
    return out


def display_name(path: Path) -> str:
    """A path as errors show it: relative to the working directory when inside it."""
    try:
        rel = os.path.relpath(path)
        return rel if not rel.startswith("..") else str(path)
    except ValueError:
        return str(path)


def load_config(directory: str | Path, use_cache: bool = True) -> Config:
    directory = Path(directory)
    cfg = Config(dir=str(directory))
    d = cfg.diagnostics
    if not directory.is_dir():
        d.add(f"config directory {directory} does not exist")
        return cfg
    for p, what in not_config_files(directory):
        d.add(f"{what}, not a configuration file: move it away (kvmnet reads every *.hcl file; "
              "skipping it would plan its resources as removed)", file=display_name(p))
    if d:
        return cfg
    paths = config_files(directory)
    digest = hashlib.sha256()
    for p in paths:
        digest.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    cfg.digest = digest.hexdigest()
    parsed = parse_files([(p, display_name(p)) for p in paths], use_cache=use_cache)
    for pf in parsed:
        cfg.files.append(pf.path)
        d.extend(pf.errors)
        for a in pf.attrs.values():
            d.add(f'unexpected attribute "{a.name}" at top level; only blocks are allowed here '
                  f"(variable values go in {VARS_FILE})", file=pf.path, line=a.line)
        for block in pf.blocks:
            _load_block(cfg, block, d)
    check_refactoring(cfg, d)
    check_data_references(cfg, d)
    return cfg


def _want_labels(block: Block, n: int, what: str, d: Diagnostics) -> bool:
    if len(block.labels) != n:
        d.add(f'a "{block.type}" block needs {n} label(s): {what}', file=block.file, line=block.line)
        return False
    return True


def _load_block(cfg: Config, b: Block, d: Diagnostics) -> None:
    if b.type == "resource":
        if _want_labels(b, 2, 'resource "TYPE" "NAME"', d):
            _load_resource(cfg, b, d)
    elif b.type == "variable":
        if _want_labels(b, 1, 'variable "NAME"', d):
            _load_variable(cfg, b, d)
    elif b.type == "locals":
        if _want_labels(b, 0, "locals {}", d):
            for name, a in b.attrs.items():
                if name in cfg.locals:
                    prev = cfg.locals[name]
                    d.add(f'local value "{name}" is defined twice (first in {prev.file}:{prev.value.line})',
                          file=b.file, line=a.line)
                    continue
                cfg.locals[name] = LocalDecl(name, a, b.file)
            for sub in b.blocks:
                d.add(f'unexpected block "{sub.type}" in locals', file=b.file, line=sub.line)
    elif b.type == "module":
        load_module_call(cfg, b, d)
    elif b.type == "provider":
        if _want_labels(b, 1, 'provider "NAME"', d):
            b = Block(b.type, b.labels, b.line, b.file, dict(b.attrs), b.blocks)
            alias = provider_alias(b, d)
            name = b.labels[0] + (f".{alias}" if alias else "")
            if b.labels[0] not in registry.plugins():
                d.add(f'unknown provider "{b.labels[0]}"{did_you_mean(b.labels[0], registry.plugins())}; '
                      f'known providers: {", ".join(registry.plugins())}',
                      file=b.file, line=b.line)
            elif name in cfg.providers:
                first = cfg.providers[name]
                d.add(f'provider "{name}" is configured twice (first in {first.file}:{first.line})',
                      file=b.file, line=b.line)
            else:
                cfg.providers[name] = ProviderDecl(name, b.file, b.line, dict(b.attrs))
                for sub in b.blocks:
                    d.add(f'unexpected block "{sub.type}" in provider "{name}"', file=b.file, line=sub.line)
    elif b.type == "output":
        if _want_labels(b, 1, 'output "NAME"', d):
            name = b.labels[0]
            if name in cfg.outputs:
                d.add(f'output "{name}" is defined twice', file=b.file, line=b.line)
            out = OutputDecl(name, b.file, b.line, b.attrs.get("value"))
            out.sensitive = literal_bool(b.attrs.get("sensitive"), f'output "{name}": sensitive', b.file, d, False)
            if out.value is None:
                d.add(f'output "{name}" needs a "value" attribute', file=b.file, line=b.line)
            for k, a in b.attrs.items():
                if k not in ("value", "description", "sensitive"):
                    d.add(f'unknown attribute "{k}" in output "{name}"', file=b.file, line=a.line)
            cfg.outputs[name] = out
    elif b.type == "data":
        if _want_labels(b, 2, 'data "TYPE" "NAME"', d):
            load_data(cfg, b, d)
    elif b.type in REFACTORING_BLOCKS:
        if _want_labels(b, 0, f"{b.type} {{}}", d):
            load_refactoring(cfg, b, d)
    elif b.type == "kvmnet":           # where the state is: read before the config by the CLI
        if _want_labels(b, 0, "kvmnet {}", d):
            from kvmnet.engine.backend_block import read_kvmnet_block
            read_kvmnet_block(b, cfg.dir, d)
            load_settings(cfg, b, d)   # its attributes: required_version
    else:
        d.add(f'unknown block type "{b.type}"; expected resource, variable, locals, provider, '
              "module, output, data, moved, removed, import or kvmnet", file=b.file, line=b.line)


def _load_variable(cfg: Config, b: Block, d: Diagnostics) -> None:
    name = b.labels[0]
    if not is_new(cfg.variables, name, f'variable "{name}" is declared twice', b, d):
        return
    v = VariableDecl(name, b.file, b.line, default=b.attrs.get("default"), type=b.attrs.get("type"))
    desc = b.attrs.get("description")
    v.description = desc.value if desc and isinstance(desc.value, str) else None
    for k, a in b.attrs.items():
        if k not in ("default", "type", "description", "sensitive", "nullable"):
            d.add(f'unknown attribute "{k}" in variable "{name}"', file=b.file, line=a.line)
    for sub in b.blocks:
        if sub.type != "validation":
            d.add(f'unexpected block "{sub.type}" in variable "{name}"', file=b.file, line=sub.line)
    read_variable_extras(v, b, d)
    cfg.variables[name] = v


def _load_resource(cfg: Config, b: Block, d: Diagnostics) -> None:
    rtype, name = b.labels
    address = f"{rtype}.{name}"
    if rtype not in TYPES:
        d.add(f'unknown resource type "{rtype}"{did_you_mean(rtype, TYPES)}; known types: {", ".join(TYPES)}',
              file=b.file, line=b.line, address=address)
        return
    if not is_new(cfg.resources, address, f"resource {address} is defined twice", b, d, address):
        return
    body = Block(b.type, b.labels, b.line, b.file, dict(b.attrs), [])
    r = ResourceDecl(rtype, name, b.file, b.line, body)
    for meta in ("count", "for_each", "depends_on", "provider"):
        if meta in body.attrs:
            setattr(r, meta, body.attrs.pop(meta))
    if r.count and r.for_each:
        d.add('"count" and "for_each" cannot both be set', file=b.file, line=r.for_each.line,
              address=address)
    for sub in b.blocks:
        if sub.type == "lifecycle":
            for k, a in sub.attrs.items():
                if k == "prevent_destroy":
                    r.prevent_destroy = a
                elif k == "ignore_changes":
                    r.ignore_changes = a
                elif k == "replace_triggered_by":
                    r.replace_triggered_by = a
                elif k == "create_before_destroy":
                    d.add("create_before_destroy is not supported: kvmnet replaces by delete "
                          "then create (names are unique on a host)", file=b.file, line=a.line,
                          address=address, attribute="lifecycle.create_before_destroy")
                else:
                    d.add(f'unknown lifecycle attribute "{k}"', file=b.file, line=a.line, address=address)
            read_lifecycle_blocks(r, sub, d)
        else:
            body.blocks.append(sub)
    cfg.resources[address] = r
