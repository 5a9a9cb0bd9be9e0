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

CACHE_VERSION = "4"   # 3: the direct conversion; 4: keyword attribute names (for_each) take it too
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
                errors.append(_defined_twice(attrs[name], file, line))
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


# -- direct conversion of lark's tree ----------------------------------------------
#
# python-hcl2 turns lark's parse tree into its own typed rule tree (≈30 % of the
# parse time) before anything can be serialized. Most of a configuration is
# structure (bodies, blocks, attributes) and constants (plain strings, whole
# numbers, true/false/null): those are read straight off lark's tree. Only the
# other expressions go through python-hcl2's transformer and serializer, one
# expression at a time (an expression serializes the same alone as inside its
# attribute). A file with any other shape is converted by python-hcl2 whole.

class _Unusual(Exception):
    """A tree shape the direct conversion leaves to python-hcl2."""


class _TransformFailed(Exception):
    """python-hcl2's transformer failed on an expression (``args[0]``: its error)."""


_KEYWORD_VALUES = {"true": True, "false": False, "null": None}


def _lark_body(tree):
    if tree.data != "start" or len(tree.children) != 1 or tree.children[0].data != "body":
        raise _Unusual()
    return tree.children[0]


def _defined_twice(first: Attr, file: str, line: int) -> Diagnostic:
    return Diagnostic(f'attribute "{first.name}" is defined twice (first on line {first.line})',
                      file=file, line=line, attribute=first.name)


def _name_of(node) -> str:
    """An identifier's text (an attribute name, a block type or label)."""
    from lark import Token
    # keywords (for_each, in, if, ...) are valid attribute names too
    if getattr(node, "data", None) in ("identifier", "keyword") and len(node.children) == 1 \
            and isinstance(node.children[0], Token):
        return node.children[0].value
    raise _Unusual()


def _plain_string(node):
    """The value of a quoted string made of literal text only; None otherwise."""
    from lark import Token
    from hcl2.utils import process_escape_sequences
    parts = node.children
    if len(parts) < 2 or not isinstance(parts[0], Token) or not isinstance(parts[-1], Token):
        return None
    out = []
    for part in parts[1:-1]:
        if getattr(part, "data", None) != "string_part" or len(part.children) != 1:
            return None
        tok = part.children[0]
        if not isinstance(tok, Token) or tok.type != "STRING_CHARS":
            return None
        out.append(process_escape_sequences(tok.value))
    return "".join(out)


_NOT_CONSTANT = object()


def _constant(expr):
    """The value of a constant expression term, or _NOT_CONSTANT."""
    from lark import Token
    if getattr(expr, "data", None) != "expr_term" or len(expr.children) != 1:
        return _NOT_CONSTANT
    term = expr.children[0]
    kind = getattr(term, "data", None)
    if kind == "string":
        value = _plain_string(term)
        return _NOT_CONSTANT if value is None else value
    if kind in ("int_lit", "literal_value") and len(term.children) == 1 \
            and isinstance(term.children[0], Token):
        text = term.children[0].value
        if kind == "int_lit" and text.isascii() and text.isdigit():
            return int(text)
        if kind == "literal_value" and text in _KEYWORD_VALUES:
            return _KEYWORD_VALUES[text]
    return _NOT_CONSTANT


_transformer = None


def _expression_value(expr, opts):
    value = _constant(expr)
    if value is not _NOT_CONSTANT:
        return value
    global _transformer
    if _transformer is None:
        from hcl2.transformer import RuleTransformer
        _transformer = RuleTransformer()
    try:
        rule = _transformer.transform(expr)
    except Exception as e:   # as python-hcl2's whole-file transform would have failed
        raise _TransformFailed(e) from e
    return rule.serialize(opts)


def _convert_lark_body(body, file: str, opts, errors: list[Diagnostic]) -> tuple[dict, list]:
    """What :func:`_convert_body` makes of python-hcl2's rule tree, from lark's tree."""
    from lark import Tree
    attrs: dict[str, Attr] = {}
    blocks: list[Block] = []
    for child in body.children:
        kind = child.data if isinstance(child, Tree) else None
        if kind == "new_line_or_comment":
            continue
        if kind == "attribute":
            if len(child.children) != 3:
                raise _Unusual()
            name = _name_of(child.children[0])
            line = child.meta.line
            if name in attrs:
                errors.append(_defined_twice(attrs[name], file, line))
                continue
            try:
                value = _expression_value(child.children[2], opts)
            except _TransformFailed:
                raise
            except Exception as e:  # pragma: no cover - python-hcl2 internal failure
                errors.append(Diagnostic(f"cannot read attribute {name!r}: {e}", file=file, line=line))
                continue
            attrs[name] = Attr(name, value, line)
        elif kind == "block":
            parts = child.children
            btype = _name_of(parts[0])
            labels = []
            inner = None
            for part in parts[1:]:
                pkind = part.data if isinstance(part, Tree) else None
                if pkind == "string":
                    label = _plain_string(part)
                    if label is None:
                        raise _Unusual()
                    labels.append(label)
                elif pkind == "identifier":
                    labels.append(_name_of(part))
                elif pkind == "body":
                    inner = part
                elif pkind is not None:
                    raise _Unusual()
            sub_attrs, sub_blocks = (_convert_lark_body(inner, file, opts, errors)
                                     if inner is not None else ({}, []))
            blocks.append(Block(btype, tuple(labels), child.meta.line, file, sub_attrs, sub_blocks))
        else:
            raise _Unusual()
    return attrs, blocks


def parse_text(text: str, file: str) -> ParsedFile:
    """Parse one file's text; syntax errors become diagnostics with FILE:LINE."""
    from hcl2.api import parses_to_tree, transform
    from lark.exceptions import UnexpectedInput

    errors: list[Diagnostic] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        try:
            lark_tree = parses_to_tree(text)
        except UnexpectedInput as e:
            token = getattr(e, "token", None)
            shown = str(token).strip().splitlines()[0][:30] if token is not None and str(token).strip() else ""
            what = f"unexpected {shown!r}" if shown else "unexpected input"
            char = getattr(e, "char", None)
            if char:
                what = f"unexpected character {char!r}"
            if token is not None and getattr(token, "type", "") == "$END":
                what = "unexpected end of file (unclosed block or string?)"
            return ParsedFile(file, [], [Diagnostic(f"syntax error: {what}", file=file,
                                                    line=getattr(e, "line", None) or None)])
        except Exception as e:
            return ParsedFile(file, [], [Diagnostic(f"syntax error: {e}", file=file)])
        opts = _serialize_options()
        try:
            attrs, blocks = _convert_lark_body(_lark_body(lark_tree), file, opts, errors)
        except _TransformFailed as e:
            return ParsedFile(file, [], [Diagnostic(f"syntax error: {e.args[0]}", file=file)])
        except _Unusual:
            # a shape the direct conversion does not know: python-hcl2's own
            # transformer, as for every file before (same results)
            errors = []
            try:
                tree = transform(lark_tree)
            except Exception as e:
                return ParsedFile(file, [], [Diagnostic(f"syntax error: {e}", file=file)])
            attrs, blocks = _convert_body(tree.body, file, opts, errors)
            del tree
        del lark_tree
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
            if spec is None or not spec.submodule_search_locations:
                raise ImportError("hcl2 is not a package on the path")
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
    _cache_store_bytes(key, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def _cache_store_bytes(key: str, data: bytes) -> None:
    try:
        d = cache_dir()
        d.mkdir(parents=True, exist_ok=True)
        tmp = d / f".{key}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, d / f"{key}.pickle")
    except Exception:
        pass  # an unwritable cache is skipped silently


def _parse_for_pool(args) -> bytes:
    """A worker's parse, returned in the cache's pickled form: the worker pays for
    pickling (in parallel), the parent only writes the bytes to the cache and
    unpickles them, as it does for a cache hit."""
    text, display = args
    pf = parse_text(text, display)
    return pickle.dumps((pf.blocks, pf.errors, pf.attrs), protocol=pickle.HIGHEST_PROTOCOL)


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
            # results arrive in order while the workers go on parsing the rest
            for (i, _text, display, key), data in zip(
                    todo, ex.map(_parse_for_pool, [(t[1], t[2]) for t in todo]), strict=True):
                if use_cache:
                    _cache_store_bytes(key, data)
                blocks, errors, attrs = pickle.loads(data)
                results[i] = ParsedFile(display, blocks, errors, attrs)
    else:
        for i, text, display, key in todo:
            pf = results[i] = parse_text(text, display)
            if use_cache:
                _cache_store(key, (pf.blocks, pf.errors, pf.attrs))
    return [results[i] for i in range(len(paths))]


def _relabel(blocks: list[Block], display: str) -> None:
    for b in blocks:
        b.file = display
        _relabel(b.blocks, display)
