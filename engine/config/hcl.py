"""HCL files → blocks with source lines, with a parse cache.

kvmnet's grammar (``hcl.lark``, from python-hcl2's) is parsed by lark; this module
reads lark's tree directly into :class:`Block` and :class:`Attr` values that keep
the line of every block and attribute. Attribute values are *raw values*: plain
constants (strings, numbers, bools, null; a bare name such as ``string`` is that
string, as python-hcl2 gives it), lists and dicts of raw values, or, for any other
expression, a :class:`~kvmnet.engine.expr.build.Source`: a ``str`` holding the
source text as ``"${SOURCE}"`` (cut straight out of the file, for messages and
for attributes read as names, such as ``depends_on``) that carries the
expression as plain data read from the same tree
(:mod:`~kvmnet.engine.config.exprtree`). The expression is never parsed again:
``kvmnet.engine.expr.compile_value`` builds nodes from that data. A literal string
that reads like a template (``"$${x}"``) is a Source too, so nothing reads it as one.

The limits of :mod:`~kvmnet.engine.config.limits` (file and string sizes, block
and value nesting, number range) are checked here; breaking one is a FILE:LINE
error like a syntax error, naming the block's address and the attribute when the
value of one broke it (``main.hcl:3: bridge.b: mtu: number out of range``).

Parsing is the slow part of a run, so:

- the garbage collector is paused while a file is parsed (:mod:`kvmnet.gcpause`);
- each successfully parsed file is cached as plain data in the user's cache
  (:mod:`~kvmnet.engine.config.cache`), keyed by the hash of its bytes, the
  kvmnet, lark and Python versions, the grammar and the limits: a file with an
  error is never cached, so an error always reflects the file as it is now;
- files that are not cached are parsed in parallel processes when there are several
  large ones.
"""
from __future__ import annotations

import hashlib
import os
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kvmnet.engine import limits
from kvmnet.engine.config import cache, exprtree
from kvmnet.engine.diagnostics import Diagnostic
from kvmnet.engine.expr.build import Source
from kvmnet.gcpause import gc_paused

CACHE_FORMAT = "7"   # 7: fractions as ("num", text), NFC literals (6: expressions as (source, data))
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


# -- lark's tree → blocks and raw values ------------------------------------------

_KEYWORD_VALUES = {"true": True, "false": False, "null": None}


def _name_of(node) -> str:
    """An identifier's text (attribute name, block type, unquoted label)."""
    name = exprtree.name_of(node)
    if name is None:
        raise exprtree.Problem("expected a name", _line(node))
    return name


def _line(node) -> int | None:
    meta = getattr(node, "meta", None)
    return getattr(meta, "line", None) if meta is not None and not meta.empty else \
        getattr(node, "line", None)


_ADDRESS_PREFIX = {"data": "data.", "module": "module.", "variable": "var.",
                   "output": "output.", "provider": "provider.", "check": "check."}


def block_address(btype: str, labels: list[str]) -> str | None:
    """The address a top-level block is known by in messages (``bridge.b``,
    ``data.T.N``, ``var.V``, ``module.M``); None for blocks that have none."""
    if btype == "resource" and len(labels) == 2:
        return f"{labels[0]}.{labels[1]}"
    if btype == "data" and len(labels) == 2:
        return f"data.{labels[0]}.{labels[1]}"
    if btype in _ADDRESS_PREFIX and len(labels) == 1:
        return _ADDRESS_PREFIX[btype] + labels[0]
    return None


def _locate(p: exprtree.Problem, address: str | None = None, attribute: str | None = None) -> None:
    """Name where ``p`` happened, innermost first: the first place set is kept."""
    if p.address is None:
        p.address = address
    if p.attribute is None:
        p.attribute = attribute


class _Reader(exprtree.Reader):
    """Reads one file's tree into blocks and raw values."""

    def expression(self, node, data: tuple | None = None) -> Source:
        """A non-constant value: its source text, and its expression data read from the tree."""
        return Source("${" + self.source(node) + "}", self.expr(node) if data is None else data)

    # -- structure ----------------------------------------------------------
    def body(self, body, file: str, errors: list[Diagnostic], depth: int,
             path: str = "") -> tuple[dict, list]:
        """A body's attributes and blocks; ``path`` is the attribute path of the
        nested block it belongs to (``ip[0].``), "" for a top-level block's body."""
        attrs: dict[str, Attr] = {}
        blocks: list[Block] = []
        counts: dict[str, int] = {}
        for child in exprtree.trees(body):
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
                try:
                    attrs[name] = Attr(name, self.value(expr, 0), line)
                except exprtree.Problem as p:
                    _locate(p, attribute=path + name)
                    raise
            elif kind == "block":
                if depth >= limits.MAX_NESTING:
                    raise exprtree.Problem(f"blocks are nested more than {limits.MAX_NESTING} deep",
                                           child.meta.line)
                parts = exprtree.trees(child)
                btype = _name_of(parts[0])
                labels = []
                for part in parts[1:-1]:
                    if part.data == "string":
                        label = self.term(part)
                        source = self.source(part)
                        if label[0] != "lit" or "${" in source or "%{" in source:
                            raise exprtree.Problem("a block label must be a literal string "
                                                   "(no interpolation or directive)", _line(part))
                        labels.append(label[2])
                    else:
                        labels.append(_name_of(part))
                index = counts[btype] = counts.get(btype, -1) + 1
                try:
                    sub_attrs, sub_blocks = self.body(parts[-1], file, errors, depth + 1,
                                                      f"{path}{btype}[{index}]." if depth else "")
                except exprtree.Problem as p:
                    if depth == 0:
                        _locate(p, address=block_address(btype, labels))
                    raise
                blocks.append(Block(btype, tuple(labels), child.meta.line, file, sub_attrs, sub_blocks))
            else:
                raise exprtree.Problem(f"unexpected {kind}", _line(child))
        return attrs, blocks

    # -- values ---------------------------------------------------------------
    def value(self, node, depth: int):
        """The raw value of an expression: a constant, a list or dict of raw
        values, or a :class:`Source`."""
        if depth >= limits.MAX_NESTING:
            raise exprtree.Problem(f"values are nested more than {limits.MAX_NESTING} deep",
                                   _line(node))
        kind = node.data
        if kind == "unary_op":
            op, operand = node.children
            if str(op).strip() == "-" and (exprtree.is_lone(operand, "int_lit") is not None
                                           or exprtree.is_lone(operand, "float_lit") is not None):
                # a whole number is a constant; -0 and fractions are expressions (cty's
                # 512-bit value, signed zero), read by the expression builder
                value = self.number(operand.children[0])
                return -value if type(value) is int and value else self.expression(node)
            return self.expression(node)
        if kind != "expr_term" or len(node.children) != 1:
            return self.expression(node)
        term = node.children[0]
        kind = term.data
        if kind in ("int_lit", "float_lit"):
            value = self.number(term)
            return value if type(value) is int else self.expression(node)
        if kind == "literal_value":
            return _KEYWORD_VALUES[str(term.children[0])]
        if kind == "identifier":   # a bare name is that string (type = string, ignore_changes = [name])
            return _name_of(term)
        if kind == "string":
            return self.string(node, term)
        if kind == "tuple":
            return [self.value(e, depth + 1) for e in exprtree.trees(term)]
        if kind == "object":
            out: dict = {}
            for elem in exprtree.trees(term):
                key_node, _sep, value_node = elem.children
                out[self.key(key_node)] = self.value(value_node, depth + 1)
            return out
        return self.expression(node)

    def key(self, key_node) -> str:
        """An object key: a name or literal string as itself, anything else a Source."""
        inner = key_node.children[0]
        if exprtree.name_of(inner) is not None:
            return _name_of(inner)
        term = inner.children[0] if exprtree.is_lone(inner, "identifier") is not None \
            or exprtree.is_lone(inner, "string") is not None else None
        if term is not None and term.data == "identifier":
            return _name_of(term)
        if term is not None:
            return self.string(inner, term)
        return self.expression(inner)

    def string(self, node, term):
        """A literal string's value; a template (or a literal that reads like one) as a Source."""
        data = self.term(term)
        value = data[2] if data[0] == "lit" else None
        if type(value) is not str or "${" in value or "%{" in value or value.startswith("<<"):
            return self.expression(node, data)
        # HCL reads literal text in Unicode normal form C ("e\u0301" is "é")
        return value if value.isascii() else unicodedata.normalize("NFC", value)


# -- one file ------------------------------------------------------------------------

def _syntax_error(e, file: str, text: str | None = None) -> Diagnostic:
    token = getattr(e, "token", None)
    shown = str(token).strip().splitlines()[0][:30] if token is not None and str(token).strip() else ""
    what = f"unexpected {shown!r}" if shown else "unexpected input"
    char = getattr(e, "char", None)
    if char:
        what = f"unexpected character {char!r}"
    line = getattr(e, "line", None) or None
    if token is not None and getattr(token, "type", "") == "$END":
        what = "unexpected end of file (unclosed block or string?)"
        if text is not None:
            from kvmnet.engine.config.unclosed import unclosed
            found = unclosed(text)
            if found is not None:
                what = f"unexpected end of file: the {found[0]} opened here is never closed"
                line = found[1]
    return Diagnostic(f"syntax error: {what}", file=file, line=line)


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
            tree = parser().parse(text + "\n", start="start")
        except UnexpectedInput as e:
            return ParsedFile(file, [], [_syntax_error(e, file, text)])
        try:
            attrs, blocks = _Reader(text + "\n").body(tree.children[0], file, errors, 0)
        except exprtree.Problem as p:
            return ParsedFile(file, [], [Diagnostic(p.message, file=file, line=p.line,
                                                    address=p.address, attribute=p.attribute)])
        finally:
            del tree
    return ParsedFile(file, blocks, errors, attrs)


# -- cache: plain data, never an error -------------------------------------------

def _block_data(b: Block):
    return (b.type, b.labels, b.line, _attrs_data(b.attrs), [_block_data(s) for s in b.blocks])


def _attrs_data(attrs: dict[str, Attr]):
    out = []
    for a in attrs.values():
        plain = _is_plain(a.value)
        out.append((a.name, a.value if plain else _encode(a.value), a.line, plain))
    return out


def _is_plain(value) -> bool:
    """True when a raw value holds no Source (most attributes: nothing to convert)."""
    t = type(value)
    if t is Source:
        return False
    if t is list:
        return all(_is_plain(x) for x in value)
    if t is dict:
        return all(type(k) is not Source and _is_plain(v) for k, v in value.items())
    return True


def _encode(value):
    """A raw value as marshal's plain data: a Source becomes the tuple (text, data)
    (tuples are no raw value otherwise)."""
    t = type(value)
    if t is Source:
        return (str(value), value.data)
    if t is list:
        return [_encode(x) for x in value]
    if t is dict:
        return {_encode(k): _encode(v) for k, v in value.items()}
    return value


def _decode(value):
    t = type(value)
    if t is tuple:
        text, data = value
        if type(text) is not str or type(data) is not tuple:
            raise ValueError("not an expression")
        return Source(text, data)
    if t is list:
        return [_decode(x) for x in value]
    if t is dict:
        return {_decode(k): _decode(v) for k, v in value.items()}
    return value


def _block_from(data, file: str) -> Block:
    btype, labels, line, attrs, blocks = data
    return Block(btype, tuple(labels), line, file, _attrs_from(attrs),
                 [_block_from(s, file) for s in blocks])


def _attrs_from(data) -> dict[str, Attr]:
    return {name: Attr(name, value if plain else _decode(value), line)
            for name, value, line, plain in data}


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


def _code_digest() -> str:
    """The front end's own code (this module, the grammar's post-lexer, the tree
    reader): a changed reader never reads an entry an older one wrote, whatever the
    version number says."""
    from kvmnet.engine.config import exprtree, grammar
    h = hashlib.sha256()
    for mod in (__file__, grammar.__file__, exprtree.__file__):
        h.update(Path(mod).read_bytes())
    return h.hexdigest()


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
                 _code_digest(),
                 repr((limits.MAX_FILE_BYTES, limits.MAX_STRING_CHARS, limits.MAX_NESTING,
                       limits.MAX_NUMBER_DIGITS, limits.MAX_NUMBER_EXPONENT))]
        _fingerprint = hashlib.sha256("\0".join(parts).encode()).hexdigest()
    h = hashlib.sha256(_fingerprint.encode())
    h.update(data)
    return h.hexdigest()


def _parse_for_pool(args):
    """A worker's parse, as plain data: (blocks, attrs, errors as (message, line, address, attribute))."""
    text, display = args
    pf = parse_text(text, display)
    return _file_data(pf), [(e.message, e.line, e.address, e.attribute) for e in pf.errors]


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
                pf.errors = [Diagnostic(m, file=display, line=line, address=address, attribute=attr)
                             for m, line, address, attr in errors]
                results[i] = pf
                if use_cache and not pf.errors:
                    cache.store("parse", key, data)
    else:
        for i, text, display, key in todo:
            pf = results[i] = parse_text(text, display)
            if use_cache and not pf.errors:
                cache.store("parse", key, _file_data(pf))
    return [results[i] for i in range(len(paths))]
