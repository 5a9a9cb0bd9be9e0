"""HCL files → blocks with source lines, with a parse cache.

kvmnet's grammar (``hcl.lark``, from python-hcl2's) is parsed by lark; this module
reads lark's tree directly into :class:`Block` and :class:`Attr` values that keep
the line of every block and attribute. Attribute values are *raw values*: plain
constants (strings, numbers, bools, null; a bare name such as ``string`` is that
string, as python-hcl2 gives it), lists and dicts of raw values, or, for any other
expression, its source text as ``"${SOURCE}"`` — cut straight out of the
file, never rendered back from a tree — which the engine's own expression parser
(``kvmnet.engine.expr``) compiles and evaluates. A string with interpolations or
directives is kept as ``"${"QUOTED SOURCE"}"``, so its escapes and strip markers
are read once, by that parser.

The limits of :mod:`~kvmnet.engine.config.limits` (file and string sizes, block
and value nesting, number range) are checked here; breaking one is a FILE:LINE
error like a syntax error.

Parsing is the slow part of a run, so:

- the garbage collector is paused while a file is parsed (:mod:`kvmnet.engine.gcpause`);
- each successfully parsed file is cached as plain data in the user's cache
  (:mod:`~kvmnet.engine.config.cache`), keyed by the hash of its bytes, the
  kvmnet, lark and Python versions, the grammar and the limits: a file with an
  error is never cached, so an error always reflects the file as it is now;
- files that are not cached are parsed in parallel processes when there are several
  large ones.
"""
from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvmnet.engine import limits
from kvmnet.engine.config import cache
from kvmnet.engine.diagnostics import Diagnostic
from kvmnet.engine.gcpause import gc_paused

CACHE_FORMAT = "5"   # 5: kvmnet's own grammar and tree reader, marshal entries
PARALLEL_MIN_CHARS = 100_000   # uncached text, all files together


@dataclass
class Attr:
    name: str
    value: Any          # raw value: constants, lists, dicts, "${...}" source text
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


class _Problem(Exception):
    """An error at a line of the file being read (ends the file's conversion)."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.message = message
        self.line = line


# -- lark's tree → blocks and raw values ------------------------------------------

_KEYWORD_VALUES = {"true": True, "false": False, "null": None}
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _data(node) -> str | None:
    return getattr(node, "data", None)


def _trees(node) -> list:
    """A node's sub-trees, without tokens and comments."""
    return [c for c in node.children
            if _data(c) is not None and c.data != "new_line_or_comment"]


def _name_of(node) -> str:
    """An identifier's text (attribute name, block type, unquoted label)."""
    if _data(node) in ("identifier", "keyword", "literal_value") and len(node.children) == 1:
        return str(node.children[0])
    raise _Problem("expected a name", _line(node))


def _line(node) -> int | None:
    meta = getattr(node, "meta", None)
    return getattr(meta, "line", None) if meta is not None and not meta.empty else \
        getattr(node, "line", None)


def _unescape(text: str, line: int | None) -> str:
    """The value of literal string characters (HCL's escapes)."""
    if "\\" not in text:
        return text
    out = []
    i = 0
    while True:
        j = text.find("\\", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:j])
        c = text[j + 1:j + 2]
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
            i = j + 2
            continue
        n = 4 if c == "u" else 8 if c == "U" else 0
        digits = text[j + 2:j + 2 + n]
        if n and len(digits) == n and all(d in "0123456789abcdefABCDEF" for d in digits):
            code = int(digits, 16)
            if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise _Problem(f'invalid escape sequence "\\{c}{digits}": not a Unicode character', line)
            out.append(chr(code))
            i = j + 2 + n
            continue
        raise _Problem(f'invalid escape sequence "\\{c}"', line)


def _literal_string(node) -> str | None:
    """The value of a quoted string without interpolations or directives; None if it has any."""
    out = []
    for part in node.children[1:-1]:
        tok = part.children[0] if _data(part) == "string_part" and len(part.children) == 1 else None
        kind = getattr(tok, "type", None)   # a token's type; None for a sub-tree
        text = str(tok) if kind is not None else ""
        if kind == "STRING_CHARS":
            if "\n" in text:
                raise _Problem("a quoted string cannot span lines (use a heredoc)", _line(part))
            out.append(_unescape(text, _line(part)))
        elif kind in ("ESCAPED_INTERPOLATION", "ESCAPED_DIRECTIVE"):
            out.append(text[1:3] + _unescape(text[3:], _line(part)))   # "$${" → "${"
        else:
            return None
    return "".join(out)


class _Reader:
    """Reads one file's tree; ``text`` is the source the tree's positions refer to."""

    def __init__(self, text: str):
        self.text = text

    def source(self, node) -> str:
        return self.text[node.meta.start_pos:node.meta.end_pos]

    def expression(self, node) -> str:
        return "${" + self.source(node) + "}"

    # -- structure ----------------------------------------------------------
    def body(self, body, file: str, errors: list[Diagnostic], depth: int) -> tuple[dict, list]:
        attrs: dict[str, Attr] = {}
        blocks: list[Block] = []
        for child in _trees(body):
            kind = child.data
            if kind == "attribute":
                name_node, _eq, expr = child.children
                name = _name_of(name_node)
                line = child.meta.line
                if name in attrs:
                    first = attrs[name]
                    errors.append(Diagnostic(
                        f'attribute "{name}" is defined twice (first on line {first.line})',
                        file=file, line=line, attribute=name))
                    continue
                attrs[name] = Attr(name, self.value(expr, 0), line)
            elif kind == "block":
                if depth >= limits.MAX_NESTING:
                    raise _Problem(f"blocks are nested more than {limits.MAX_NESTING} deep",
                                   child.meta.line)
                parts = _trees(child)
                btype = _name_of(parts[0])
                labels = []
                for part in parts[1:-1]:
                    if part.data == "string":
                        label = _literal_string(part)
                        if label is None or "${" in self.source(part) or "%{" in self.source(part):
                            raise _Problem("a block label must be a literal string "
                                           "(no interpolation or directive)", _line(part))
                        labels.append(label)
                    else:
                        labels.append(_name_of(part))
                sub_attrs, sub_blocks = self.body(parts[-1], file, errors, depth + 1)
                blocks.append(Block(btype, tuple(labels), child.meta.line, file, sub_attrs, sub_blocks))
            else:
                raise _Problem(f"unexpected {kind}", _line(child))
        return attrs, blocks

    # -- values ---------------------------------------------------------------
    def value(self, node, depth: int):
        """The raw value of an expression."""
        if depth >= limits.MAX_NESTING:
            raise _Problem(f"values are nested more than {limits.MAX_NESTING} deep", _line(node))
        kind = node.data
        if kind == "unary_op":
            op, operand = node.children
            if str(op).strip() == "-" and _data(operand) == "expr_term" and len(operand.children) == 1 \
                    and _data(operand.children[0]) in ("int_lit", "float_lit"):
                number = self.number(operand.children[0])
                return -number if number != 0 else number
            return self.expression(node)
        if kind != "expr_term" or len(node.children) != 1:
            return self.expression(node)
        term = node.children[0]
        kind = _data(term)
        if kind in ("int_lit", "float_lit"):
            return self.number(term)
        if kind == "literal_value":
            return _KEYWORD_VALUES[str(term.children[0])]
        if kind == "identifier":   # a bare name is that string (type = string, ignore_changes = [name])
            return _name_of(term)
        if kind == "string":
            return self.string(term)
        if kind == "tuple":
            return [self.value(e, depth + 1) for e in _trees(term)]
        if kind == "object":
            out: dict = {}
            for elem in _trees(term):
                key_node, _sep, value_node = elem.children
                out[self.key(key_node)] = self.value(value_node, depth + 1)
            return out
        if kind in ("heredoc_template", "heredoc_template_trim"):
            self.check_size(term)
        return self.expression(node)

    def key(self, key_node) -> str:
        """An object key: a name or literal string as itself, anything else as ``${...}``."""
        inner = key_node.children[0]
        if _data(inner) == "keyword":
            return _name_of(inner)
        term = inner.children[0] if _data(inner) == "expr_term" and len(inner.children) == 1 else None
        if _data(term) == "identifier":
            return _name_of(term)
        if _data(term) == "string":
            value = self.string(term)
            if isinstance(value, str) and not value.startswith("${"):
                return value
        return self.expression(inner)

    def number(self, term):
        text = str(term.children[0])
        line = _line(term)
        if len(text) > limits.MAX_NUMBER_DIGITS:
            raise _Problem(f"number out of range: {text[:20]}... has more than "
                           f"{limits.MAX_NUMBER_DIGITS} characters", line)
        if term.data == "int_lit":
            return int(text)
        value = float(text)
        if not math.isfinite(value):
            raise _Problem(f"number out of range: {text}", line)
        return int(value) if value.is_integer() and abs(value) < 2 ** 63 else value

    def check_size(self, node) -> None:
        if node.meta.end_pos - node.meta.start_pos > limits.MAX_STRING_CHARS:
            raise _Problem(f"string longer than {limits.MAX_STRING_CHARS} characters", _line(node))

    def string(self, term):
        """A literal string's value; a template's quoted source as ``${"..."}``."""
        self.check_size(term)
        value = _literal_string(term)
        if value is None or "${" in value or "%{" in value or value.startswith("<<"):
            return self.expression(term)
        return value


# -- one file ------------------------------------------------------------------------

def _syntax_error(e, file: str) -> Diagnostic:
    token = getattr(e, "token", None)
    shown = str(token).strip().splitlines()[0][:30] if token is not None and str(token).strip() else ""
    what = f"unexpected {shown!r}" if shown else "unexpected input"
    char = getattr(e, "char", None)
    if char:
        what = f"unexpected character {char!r}"
    if token is not None and getattr(token, "type", "") == "$END":
        what = "unexpected end of file (unclosed block or string?)"
    return Diagnostic(f"syntax error: {what}", file=file, line=getattr(e, "line", None) or None)


def parse_text(text: str, file: str) -> ParsedFile:
    """Parse one file's text; syntax errors and broken limits become diagnostics
    with FILE:LINE."""
    from lark.exceptions import UnexpectedInput
    from kvmnet.engine.config.grammar import parser

    if len(text) > limits.MAX_FILE_BYTES:
        return ParsedFile(file, [], [Diagnostic(
            f"file larger than {limits.MAX_FILE_BYTES} bytes", file=file)])
    errors: list[Diagnostic] = []
    with gc_paused():
        try:
            tree = parser().parse(text + "\n")
        except UnexpectedInput as e:
            return ParsedFile(file, [], [_syntax_error(e, file)])
        try:
            attrs, blocks = _Reader(text + "\n").body(tree.children[0], file, errors, 0)
        except _Problem as p:
            return ParsedFile(file, [], [Diagnostic(p.message, file=file, line=p.line)])
        finally:
            del tree
    return ParsedFile(file, blocks, errors, attrs)


# -- cache: plain data, never an error -------------------------------------------

def _block_data(b: Block):
    return (b.type, b.labels, b.line, _attrs_data(b.attrs), [_block_data(s) for s in b.blocks])


def _attrs_data(attrs: dict[str, Attr]):
    return [(a.name, a.value, a.line) for a in attrs.values()]


def _block_from(data, file: str) -> Block:
    btype, labels, line, attrs, blocks = data
    return Block(btype, tuple(labels), line, file, _attrs_from(attrs),
                 [_block_from(s, file) for s in blocks])


def _attrs_from(data) -> dict[str, Attr]:
    return {name: Attr(name, value, line) for name, value, line in data}


def _file_data(pf: ParsedFile):
    return ([_block_data(b) for b in pf.blocks], _attrs_data(pf.attrs))


def _file_from(data, display: str) -> ParsedFile | None:
    """A ParsedFile from cached data; None when the data has another shape."""
    try:
        blocks, attrs = data
        return ParsedFile(display, [_block_from(b, display) for b in blocks], [], _attrs_from(attrs))
    except (TypeError, ValueError):
        return None


_fingerprint: str | None = None


def _cache_key(data: bytes) -> str:
    """Content hash + everything that changes what a parse yields."""
    global _fingerprint
    if _fingerprint is None:
        import sys
        from importlib.metadata import version
        import kvmnet
        from kvmnet.engine.config.grammar import GRAMMAR
        parts = [CACHE_FORMAT, kvmnet.__version__, version("lark"), sys.version,
                 hashlib.sha256(GRAMMAR.read_bytes()).hexdigest(),
                 repr((limits.MAX_FILE_BYTES, limits.MAX_STRING_CHARS, limits.MAX_NESTING,
                       limits.MAX_NUMBER_DIGITS))]
        _fingerprint = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    h = hashlib.sha256(_fingerprint.encode())
    h.update(data)
    return h.hexdigest()


def _parse_for_pool(args):
    """A worker's parse, as plain data: (blocks, attrs, errors as (message, line))."""
    text, display = args
    pf = parse_text(text, display)
    return _file_data(pf), [(e.message, e.line, e.attribute) for e in pf.errors]


def parse_files(paths: list[tuple[Path, str]], use_cache: bool = True) -> list[ParsedFile]:
    """Parse ``(path, display_name)`` pairs, from the cache where possible."""
    results: dict[int, ParsedFile] = {}
    todo: list[tuple[int, str, str, str]] = []
    for i, (path, display) in enumerate(paths):
        try:
            if path.stat().st_size > limits.MAX_FILE_BYTES:
                results[i] = ParsedFile(display, [], [Diagnostic(
                    f"file larger than {limits.MAX_FILE_BYTES} bytes", file=display)])
                continue
            data = path.read_bytes()
        except OSError as e:
            results[i] = ParsedFile(display, [], [Diagnostic(
                f"cannot read the file: {e.strerror or e}", file=display)])
            continue
        key = _cache_key(data) if use_cache else ""
        if use_cache:
            with gc_paused():
                cached = cache.load("parse", key)
                pf = _file_from(cached, display) if cached is not None else None
            if pf is not None:
                results[i] = pf
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
            for (i, _text, display, key), (data, errors) in zip(
                    todo, ex.map(_parse_for_pool, [(t[1], t[2]) for t in todo]), strict=True):
                with gc_paused():
                    pf = _file_from(data, display)
                assert pf is not None
                pf.errors = [Diagnostic(m, file=display, line=line, attribute=attr)
                             for m, line, attr in errors]
                results[i] = pf
                if use_cache and not pf.errors:
                    cache.store("parse", key, data)
    else:
        for i, text, display, key in todo:
            pf = results[i] = parse_text(text, display)
            if use_cache and not pf.errors:
                cache.store("parse", key, _file_data(pf))
    return [results[i] for i in range(len(paths))]
