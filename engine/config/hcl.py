"""HCL files → blocks with source lines (python-hcl2), with a parse cache.

python-hcl2 returns every expression as text (``"${...}"``); the engine's own
evaluator (``kvmnet.engine.expr``) compiles and evaluates it. This module only turns
a file into :class:`Block` values that keep the line of every block and attribute.

Parsing is the slow part of kvmnet (python-hcl2 is super-linear, mostly from the
garbage collector walking lark's trees), so:

- the garbage collector is off while a file is parsed;
- each file's parsed form is cached under ``$XDG_CACHE_HOME/kvmnet`` (default
  ``~/.cache/kvmnet``), keyed by the hash of its bytes, so a drift-check cron on
  unchanged files re-parses nothing (an unwritable cache is skipped silently; the
  cache is never written inside the config directory);
- files that are not cached are parsed in parallel processes when there are several
  large ones.
"""
from __future__ import annotations

import gc
import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvmnet.engine.diagnostics import Diagnostic

CACHE_VERSION = "2"
PARALLEL_MIN_CHARS = 100_000   # uncached text, all files together


@dataclass
class Attr:
    name: str
    value: Any          # raw python-hcl2 value: literals, lists, dicts, "${...}" strings
    line: int


@dataclass
class Block:
    type: str
    labels: tuple[str, ...]
    line: int
    file: str
    attrs: dict[str, Attr] = field(default_factory=dict)
    blocks: list["Block"] = field(default_factory=list)


@dataclass
class ParsedFile:
    path: str
    blocks: list[Block]
    errors: list[Diagnostic]
    attrs: dict[str, Attr] = field(default_factory=dict)   # top-level NAME = VALUE (variable files)


def _serialize_options():
    import hcl2
    return hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)


def _convert_body(body, file: str, opts, errors: list[Diagnostic]) -> tuple[dict, list]:
    from hcl2.rules.base import AttributeRule, BlockRule

    attrs: dict[str, Attr] = {}
    blocks: list[Block] = []
    for child in body._children:
        if isinstance(child, AttributeRule):
            name = child.identifier.serialize(opts)
            line = child._meta.line if child._meta else 0
            if name in attrs:
                errors.append(Diagnostic(
                    f'attribute "{name}" is defined twice (first on line {attrs[name].line})',
                    file=file, line=line, attribute=name))
                continue
            try:
                value = child.expression.serialize(opts)
            except Exception as e:  # pragma: no cover - python-hcl2 internal failure
                errors.append(Diagnostic(f"cannot read attribute {name!r}: {e}", file=file, line=line))
                continue
            attrs[name] = Attr(name, value, line)
        elif isinstance(child, BlockRule):
            labels = [lab.serialize(opts) for lab in child.labels]
            line = child._meta.line if child._meta else 0
            sub_attrs, sub_blocks = _convert_body(child.body, file, opts, errors)
            blocks.append(Block(labels[0], tuple(labels[1:]), line, file, sub_attrs, sub_blocks))
    return attrs, blocks


def parse_text(text: str, file: str) -> ParsedFile:
    """Parse one file's text; syntax errors become diagnostics with FILE:LINE."""
    import hcl2
    from lark.exceptions import UnexpectedInput

    errors: list[Diagnostic] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            tree = hcl2.parses(text)
        except UnexpectedInput as e:
            token = getattr(e, "token", None)
            shown = str(token).strip().splitlines()[0][:30] if token is not None and str(token).strip() else ""
            what = f"unexpected {shown!r}" if shown else "unexpected input"
            if getattr(e, "char", None):
                what = f"unexpected character {e.char!r}"
            if token is not None and getattr(token, "type", "") == "$END":
                what = "unexpected end of file (unclosed block or string?)"
            return ParsedFile(file, [], [Diagnostic(f"syntax error: {what}", file=file,
                                                    line=getattr(e, "line", None) or None)])
        except Exception as e:
            return ParsedFile(file, [], [Diagnostic(f"syntax error: {e}", file=file)])
        opts = _serialize_options()
        attrs, blocks = _convert_body(tree.body, file, opts, errors)
        del tree
        return ParsedFile(file, blocks, errors, attrs)
    finally:
        # python-hcl2's trees are cyclic garbage, all still in the youngest generation:
        # free them now, cheaply, before a later full collection (or the engine's
        # gc.freeze(), which would keep them forever) has to deal with them
        gc.collect(0)
        if enabled:
            gc.enable()


# -- cache -----------------------------------------------------------------------

def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "kvmnet" / "parse"


_parser_fingerprint: bytes | None = None


def _parser_id() -> bytes:
    """Which python-hcl2 a cached parse comes from: the text of its ``version.py``,
    read rather than imported (importing it imports all of hcl2 and lark: ≈30 ms that
    a run finding every file in the cache never needs otherwise)."""
    global _parser_fingerprint
    if _parser_fingerprint is None:
        try:
            import importlib.util
            spec = importlib.util.find_spec("hcl2")
            where = Path(list(spec.submodule_search_locations)[0])
            _parser_fingerprint = (where / "version.py").read_bytes()
        except Exception:
            import hcl2.version as hv
            _parser_fingerprint = str(getattr(hv, "version", "")).encode()
    return _parser_fingerprint


def _cache_key(data: bytes) -> str:
    h = hashlib.sha256()
    h.update(f"{CACHE_VERSION}:".encode())
    h.update(hashlib.sha256(_parser_id()).digest())
    h.update(data)
    return h.hexdigest()


def _cache_load(key: str):
    try:
        with open(cache_dir() / f"{key}.pickle", "rb") as f:
            enabled = gc.isenabled()
            gc.disable()
            try:
                return pickle.load(f)
            finally:
                if enabled:
                    gc.enable()
    except Exception:
        return None


def _cache_store(key: str, value) -> None:
    try:
        d = cache_dir()
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{key}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            pickle.dump(value, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, d / f"{key}.pickle")
    except Exception:
        pass  # an unwritable cache is skipped silently


def _parse_for_pool(args):
    text, display = args
    return parse_text(text, display)


def parse_files(paths: list[tuple[Path, str]], use_cache: bool = True) -> list[ParsedFile]:
    """Parse ``(path, display_name)`` pairs, from the cache where possible."""
    results: dict[int, ParsedFile] = {}
    todo: list[tuple[int, str, str, str]] = []
    for i, (path, display) in enumerate(paths):
        data = path.read_bytes()
        key = _cache_key(data) if use_cache else ""
        cached = _cache_load(key) if use_cache else None
        if cached is not None:
            blocks, errors, attrs = cached
            _relabel(blocks, display)
            results[i] = ParsedFile(display, blocks, [
                Diagnostic(e.message, file=display, line=e.line, address=e.address, attribute=e.attribute)
                for e in errors], attrs)
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            results[i] = ParsedFile(display, [], [Diagnostic(f"not UTF-8 text: {e}", file=display)])
            continue
        todo.append((i, text, display, key))

    # parse in parallel processes when there is enough to parse to pay for them
    # (≈1.6 ms of parsing per 300-byte resource; a pool starts in ≈50 ms)
    if len(todo) >= 2 and sum(len(t[1]) for t in todo) > PARALLEL_MIN_CHARS \
            and (os.cpu_count() or 1) > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 2)) as ex:
            parsed = list(ex.map(_parse_for_pool, [(t[1], t[2]) for t in todo]))
    else:
        parsed = [parse_text(t[1], t[2]) for t in todo]
    for (i, _text, _display, key), pf in zip(todo, parsed):
        results[i] = pf
        if use_cache:
            _cache_store(key, (pf.blocks, pf.errors, pf.attrs))
    return [results[i] for i in range(len(paths))]


def _relabel(blocks: list[Block], display: str) -> None:
    for b in blocks:
        b.file = display
        _relabel(b.blocks, display)
