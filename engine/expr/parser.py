"""Tokenizer and recursive-descent (Pratt) parser for HCL expressions and templates.

The lexer is lazy: one compiled regex matched at the current position, so a
quoted string can switch to template scanning (escapes, ``${...}``, ``%{...}``)
and back. Operator precedence, loosest first: ``? :``, ``||``, ``&&``,
``== !=``, ``< > <= >=``, ``+ -``, ``* / %``, unary ``- !``, then postfix
(``.attr``, ``[index]``, ``[*]``, ``.*``, calls).

Templates follow HCL: ``${ }`` interpolations and ``%{ }`` directives, each of
whose delimiters may carry a strip marker (``${~``, ``~}``) that removes the
whitespace, newlines included, of the literal text next to it. Nesting deeper
than :data:`~kvmnet.engine.limits.MAX_NESTING` and numbers that are not finite
are errors, so no input reaches Python's recursion limit.
"""
from __future__ import annotations

import math
import re
from typing import Any

from kvmnet.engine import limits

from . import nodes as N
from .errors import ExprError
from .ops import normalize_number

_SKIP = re.compile(r"(?:[ \t\r\n]+|#[^\n]*|//[^\n]*|/\*.*?\*/)*", re.S)
# One match per token: leading blanks and comments, then the token itself.
_TOKEN = re.compile(r"""
  (?:[ \t\r\n]+|\#[^\n]*|//[^\n]*|/\*.*?\*/)*
  (?:(?P<ident>[A-Za-z_][\w-]*)
    |(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
    |(?P<heredoc><<-?[A-Za-z_][\w.-]*[ \t]*\r?\n)
    |(?P<op>\.\.\.|==|!=|<=|>=|&&|\|\||=>|[-+*/%<>!?:=.,()\[\]{}"~])
    |(?P<eof>\Z))
""", re.X | re.S)
_DIGITS = re.compile(r"\d+")
_HEREDOC_HEAD = re.compile(r"<<(-?)([A-Za-z_][\w.-]*)")
_HEREDOC_WHOLE = re.compile(r"<<(-?)([A-Za-z_][\w.-]*)[ \t]*\r?\n(.*?)^[ \t]*\2[ \t]*\Z", re.S | re.M)
_TPL_QUOTED = re.compile(r'[\\"$%\n]')
_TPL_RAW = re.compile(r"[$%]")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}

BINARY_PRECEDENCE = {
    "||": 1, "&&": 2, "==": 3, "!=": 3, "<": 4, ">": 4, "<=": 4, ">=": 4,
    "+": 5, "-": 5, "*": 6, "/": 6, "%": 6,
}
_BINARY_NODE = {
    "||": N.Logical, "&&": N.Logical, "==": N.Equality, "!=": N.Equality,
    "<": N.Compare, ">": N.Compare, "<=": N.Compare, ">=": N.Compare,
    "+": N.Arithmetic, "-": N.Arithmetic, "*": N.Arithmetic, "/": N.Arithmetic,
    "%": N.Arithmetic,
}
KEYWORD_LITERALS = {"true": True, "false": False, "null": None}


class Parser:
    """Parses one source string; ``base`` is added to offsets in errors."""

    def __init__(self, src: str, base: int = 0, type_mode: bool = False):
        self.src = src
        self.base = base
        self.type_mode = type_mode   # type constraints: any call name is allowed
        self.kind = "eof"
        self.val = ""
        self.start = 0
        self.end = 0
        self.depth = 0              # nesting of expressions and directives being parsed
        self.strip_next = False     # a "~}" strips the start of the next literal text

    # ---- lexer -------------------------------------------------------------

    def advance(self) -> None:
        m = _TOKEN.match(self.src, self.end)
        if m is None:
            skipped = _SKIP.match(self.src, self.end)
            assert skipped is not None    # _SKIP matches the empty string too
            pos = skipped.end()
            raise self.error(f'unexpected character "{self.src[pos]}"', pos)
        kind = m.lastgroup
        assert kind is not None           # every alternative of _TOKEN is a named group
        val = m.group(kind)
        self.kind = val if kind == "op" else kind
        self.val = val
        self.start = m.start(kind)
        self.end = m.end()

    def peek_kind(self) -> str:
        saved = (self.kind, self.val, self.start, self.end)
        self.advance()
        kind = self.kind
        self.kind, self.val, self.start, self.end = saved
        return kind

    def error(self, message: str, pos: int | None = None) -> ExprError:
        return ExprError(message, self.base + (self.start if pos is None else pos))

    def describe(self) -> str:
        return "end of expression" if self.kind == "eof" else f'"{self.val}"'

    def expect(self, kind: str, what: str | None = None) -> None:
        if self.kind != kind:
            raise self.error(f'expected {what or repr(kind).replace(chr(39), chr(34))} '
                             f"but found {self.describe()}")

    # ---- expressions ---------------------------------------------------------

    def nest(self) -> None:
        self.depth += 1
        if self.depth > limits.MAX_NESTING:
            raise self.error(f"expression nested more than {limits.MAX_NESTING} levels deep")

    def parse_expr(self) -> N.Expr:
        self.nest()
        try:
            return self._parse_expr()
        finally:
            self.depth -= 1

    def _parse_expr(self) -> N.Expr:
        start = self.start
        cond = self.parse_binary(0)
        if self.kind != "?":
            return cond
        self.advance()
        then = self.parse_expr()
        self.expect(":", '":" in conditional expression')
        self.advance()
        otherwise = self.parse_expr()
        if isinstance(cond, N.Literal) and type(cond.value) is bool:
            return then if cond.value else otherwise
        return N.Conditional(cond, then, otherwise, self.base + start)

    def parse_binary(self, min_prec: int) -> N.Expr:
        start = self.start
        left = self.parse_unary()
        while True:
            op = self.kind
            prec = BINARY_PRECEDENCE.get(op)
            if prec is None or prec <= min_prec:
                return left
            self.advance()
            right = self.parse_binary(prec)
            node = _BINARY_NODE[op](op, left, right, self.base + start)
            left = fold(node) if type(left) is N.Literal and type(right) is N.Literal else node

    def parse_unary(self) -> N.Expr:
        kind = self.kind
        if kind == "-" or kind == "!":
            start = self.start
            self.advance()
            self.nest()
            try:
                operand = self.parse_unary()
            finally:
                self.depth -= 1
            if kind == "-" and isinstance(operand, N.Literal) and type(operand.value) in (int, float):
                return N.Literal(-operand.value, self.base + start)
            node = N.Unary(kind, operand, self.base + start)
            return fold(node) if type(operand) is N.Literal else node
        return self.parse_postfix()

    def parse_primary(self) -> N.Expr:
        kind = self.kind
        start = self.start
        offset = self.base + start
        if kind == "num":
            value = self.number(self.val)
            self.advance()
            return N.Literal(value, offset)
        if kind == "ident":
            name = self.val
            if name in KEYWORD_LITERALS:
                self.advance()
                return N.Literal(KEYWORD_LITERALS[name], offset)
            self.advance()
            if self.kind == "(":
                return self.parse_call(name, start)
            return N.Traversal(name, None, (), (), name, offset)
        if kind == '"':
            parts, pos, term = self.scan_template(self.end, quoted=True)
            self.end = pos
            self.advance()
            return make_template(parts, offset)
        if kind == "heredoc":
            return self.parse_heredoc()
        if kind == "(":
            self.advance()
            inner = self.parse_expr()
            self.expect(")")
            self.advance()
            return inner
        if kind == "[":
            self.advance()
            if self.kind == "ident" and self.val == "for" and self.peek_kind() == "ident":
                return self.parse_for("]", offset)
            return self.parse_tuple(offset)
        if kind == "{":
            self.advance()
            if self.kind == "ident" and self.val == "for" and self.peek_kind() == "ident":
                return self.parse_for("}", offset)
            return self.parse_object(offset)
        if kind == "eof":
            raise self.error("unexpected end of expression")
        raise self.error(f"expected an expression but found {self.describe()}")

    def number(self, text: str):
        if len(text) > limits.MAX_NUMBER_DIGITS:
            raise self.error(f"number out of range: more than {limits.MAX_NUMBER_DIGITS} digits")
        if text.isdigit():
            return int(text)
        value = float(text)
        if not math.isfinite(value):
            raise self.error(f"number out of range: {text}")
        return normalize_number(value)

    def parse_postfix(self) -> N.Expr:
        start = self.start
        primary = self.parse_primary()
        if self.kind != "." and self.kind != "[":
            return primary
        primary_end = self.start
        src = self.src
        steps: list[tuple[int, Any]] = []
        texts: list[str] = []
        while True:
            kind = self.kind
            if kind == ".":
                nxt = src[self.end:self.end + 1]
                if nxt.isdigit():                       # legacy index: list.0
                    m = _DIGITS.match(src, self.end)
                    assert m is not None          # nxt is a digit
                    steps.append((N.INDEX, int(m.group())))
                    self.end = m.end()
                elif nxt == "*":                        # attribute splat: list.*.name
                    steps.append((N.SPLAT, None))
                    self.end += 1
                else:
                    self.advance()
                    if self.kind != "ident":
                        raise self.error(f'expected an attribute name after "." but found '
                                         f"{self.describe()}")
                    steps.append((N.ATTR, self.val))
                texts.append(src[start:self.end])
                self.advance()
            elif kind == "[":
                self.advance()
                if self.kind == "*" and self.peek_kind() == "]":
                    self.advance()
                    steps.append((N.SPLAT, None))
                else:
                    key = self.parse_expr()
                    self.expect("]")
                    if isinstance(key, N.Literal) and (type(key.value) is str or type(key.value) is int):
                        steps.append((N.INDEX, key.value))
                    else:
                        steps.append((N.INDEX_EXPR, key))
                texts.append(src[start:self.end])
                self.advance()
            else:
                break
        offset = self.base + start
        if isinstance(primary, N.Traversal) and primary.source is None and not primary.steps:
            return N.Traversal(primary.root, None, steps, texts, primary.root, offset)
        return N.Traversal(None, primary, steps, texts, src[start:primary_end], offset)

    def parse_call(self, name: str, start: int) -> N.Expr:
        offset = self.base + start
        function = None
        if not self.type_mode:
            from .functions import FUNCTIONS
            function = FUNCTIONS.get(name)
            if function is None:
                raise ExprError(f'unknown function "{name}"', offset)
        self.advance()   # past "("
        args, expand = [], False
        while self.kind != ")":
            args.append(self.parse_expr())
            if self.kind == "...":
                expand = True
                self.advance()
                self.expect(")", f'")" after "..." in the call to "{name}"')
                break
            if self.kind == ",":
                self.advance()
            elif self.kind != ")":
                raise self.error(f'expected "," or ")" in the call to "{name}" but found '
                                 f"{self.describe()}")
        self.advance()
        node = N.FunctionCall(name, function, args, expand, offset)
        if function is not None and all(type(a) is N.Literal for a in args):
            return fold(node)
        return node

    def parse_tuple(self, offset: int) -> N.Expr:
        items = []
        while self.kind != "]":
            items.append(self.parse_expr())
            if self.kind == ",":
                self.advance()
            elif self.kind != "]":
                raise self.error(f'expected "," or "]" but found {self.describe()}')
        self.advance()
        return N.TupleCons(items, offset)

    def parse_object(self, offset: int) -> N.Expr:
        items = []
        while self.kind != "}":
            key_offset = self.base + self.start
            key: N.Expr
            if self.kind == "ident" and self.peek_kind() in ("=", ":"):
                key = N.Literal(self.val, key_offset)
                self.advance()
            else:
                key = self.parse_expr()
            if self.kind != "=" and self.kind != ":":
                raise self.error(f'expected "=" after an object key but found {self.describe()}')
            self.advance()
            items.append((key, self.parse_expr()))
            if self.kind == ",":
                self.advance()
            elif self.kind == "eof":
                raise self.error('expected "}" but found end of expression')
        self.advance()
        return N.ObjectCons(items, offset)

    def parse_for_header(self, where: str) -> tuple[list[str], N.Expr]:
        """``NAME[, NAME] in COLLECTION`` of a for expression or a ``%{ for }``."""
        names = []
        while True:
            self.expect("ident", "a variable name")
            names.append(self.val)
            self.advance()
            if self.kind != "," or len(names) == 2:
                break
            self.advance()
        if not (self.kind == "ident" and self.val == "in"):
            raise self.error(f'expected "in" in {where} but found {self.describe()}')
        self.advance()
        return names, self.parse_expr()

    def parse_for(self, closing: str, offset: int) -> N.Expr:
        self.advance()   # past "for"
        names, collection = self.parse_for_header("for expression")
        self.expect(":", '":" in for expression')
        self.advance()
        key_expr = None
        group = False
        if closing == "}":
            key_expr = self.parse_expr()
            self.expect("=>", '"=>" in object for expression')
            self.advance()
        value_expr = self.parse_expr()
        if closing == "}" and self.kind == "...":
            group = True
            self.advance()
        cond = None
        if self.kind == "ident" and self.val == "if":
            self.advance()
            cond = self.parse_expr()
        self.expect(closing)
        self.advance()
        key_var, value_var = (None, names[0]) if len(names) == 1 else names
        return N.ForExpr(key_var, value_var, collection, key_expr, value_expr, cond, group,
                         closing == "}", offset)

    def parse_heredoc(self) -> N.Expr:
        offset = self.base + self.start
        head = _HEREDOC_HEAD.match(self.val)
        assert head is not None           # the lexer's heredoc token starts with it
        strip, marker = head.groups()
        body_start = self.end
        closing = re.compile(r"^[ \t]*" + re.escape(marker) + r"(?=[ \t]*\r?$)", re.M)
        m = closing.search(self.src, body_start)
        if m is None:
            raise self.error(f'unterminated heredoc: no closing "{marker}"')
        body = self.src[body_start:m.start()]
        self.end = m.end()
        self.advance()
        return heredoc_template(body, bool(strip), self.base + body_start, offset)

    # ---- templates -----------------------------------------------------------

    def scan_template(self, pos: int, quoted: bool):
        """Scan template text from ``pos``; returns (parts, end pos, terminator).

        ``quoted``: inside ``"..."`` in an expression (escapes are decoded, ends at
        the closing quote). Otherwise the text is already unescaped (what
        the HCL reader gives, or a heredoc body) and runs to the end. The
        terminator is None, or "else"/"endif"/"endfor" for a nested directive body.
        """
        src = self.src
        special = _TPL_QUOTED if quoted else _TPL_RAW
        parts: list = []
        buf: list[str] = []
        while True:
            m = special.search(src, pos)
            if m is None:
                if quoted:
                    raise self.error("unterminated string", len(src))
                buf.append(src[pos:])
                pos = len(src)
                term = None
                break
            i = m.start()
            c = src[i]
            buf.append(src[pos:i])
            if len(buf) > 64:
                buf[:] = ["".join(buf)]
            if c == '"':
                pos, term = i + 1, None
                break
            if c == "\n":
                raise self.error("unterminated string: a quoted string cannot span lines "
                                 "(use a heredoc)", i)
            if c == "\\":
                text, pos = self.decode_escape(i)
                buf.append(text)
            elif c == "$":
                if src.startswith("$${", i):
                    buf.append("${")
                    pos = i + 3
                elif src.startswith("${", i):
                    self.flush(buf, parts, strip_end=src.startswith("~", i + 2))
                    self.end = i + 3 if src.startswith("~", i + 2) else i + 2
                    self.advance()
                    parts.append(self.parse_expr())
                    strip = self.strip_marker()
                    if self.kind != "}":
                        raise self.error(f'expected "}}" to close "${{" but found {self.describe()}')
                    pos = self.end
                    self.strip_next = strip
                else:
                    buf.append("$")
                    pos = i + 1
            else:  # "%"
                if src.startswith("%%{", i):
                    buf.append("%{")
                    pos = i + 3
                elif src.startswith("%{", i):
                    self.flush(buf, parts, strip_end=src.startswith("~", i + 2))
                    node, pos, term = self.parse_directive(i, quoted)
                    if term is not None:
                        break
                    parts.append(node)
                else:
                    buf.append("%")
                    pos = i + 1
        if term is None:   # else the text before the closing directive is flushed already
            self.flush(buf, parts)
        return parts, pos, term

    def flush(self, buf: list, parts: list, strip_end: bool = False) -> None:
        """Move the literal text in ``buf`` to ``parts``, applying strip markers:
        a pending ``~}`` strips its start; ``strip_end`` (a ``${~``/``%{~`` follows)
        strips the end of the literal text before it."""
        text = "".join(buf)
        buf.clear()
        if self.strip_next:
            text = text.lstrip()
            self.strip_next = False
        if text:
            if parts and type(parts[-1]) is str:
                parts[-1] += text
            else:
                parts.append(text)
        if strip_end and parts and type(parts[-1]) is str:
            parts[-1] = parts[-1].rstrip()
            if not parts[-1]:
                parts.pop()

    def strip_marker(self) -> bool:
        """Past a ``~`` right before the closing ``}`` of an interpolation or directive."""
        if self.kind != "~":
            return False
        if not self.src.startswith("}", self.end):
            raise self.error('a strip marker "~" must be followed directly by "}"')
        self.advance()
        return True

    def decode_escape(self, i: int):
        src = self.src
        c = src[i + 1:i + 2]
        if c in _ESCAPES:
            return _ESCAPES[c], i + 2
        if c in ("u", "U"):
            n = 4 if c == "u" else 8
            digits = src[i + 2:i + 2 + n]
            if len(digits) == n and all(d in "0123456789abcdefABCDEF" for d in digits):
                code = int(digits, 16)
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise self.error(f'invalid escape sequence "\\{c}{digits}": '
                                     "not a Unicode character", i)
                return chr(code), i + 2 + n
        raise self.error(f'invalid escape sequence "\\{c}"', i)

    def parse_directive(self, i: int, quoted: bool):
        """``%{ if }``/``%{ for }`` with their bodies, or a closing keyword."""
        offset = self.base + i
        self.end = i + 3 if self.src.startswith("~", i + 2) else i + 2
        self.advance()
        self.nest()
        try:
            return self._parse_directive(offset, quoted)
        finally:
            self.depth -= 1

    def close_directive(self, what: str) -> int:
        """Past the ``}`` (or ``~}``) that ends a directive; returns where the text goes on."""
        strip = self.strip_marker()
        self.expect("}", what)
        self.strip_next = strip
        return self.end

    def _parse_directive(self, offset: int, quoted: bool):
        if self.kind != "ident" or self.val not in ("if", "for", "else", "endif", "endfor"):
            raise self.error(f"expected if, for, else, endif or endfor in a template directive "
                             f"but found {self.describe()}")
        keyword = self.val
        self.advance()
        if keyword in ("else", "endif", "endfor"):
            return None, self.close_directive(f'"}}" after "{keyword}"'), keyword
        if keyword == "if":
            cond = self.parse_expr()
            then, pos, term = self.scan_template(self.close_directive('"}" after the if condition'),
                                                 quoted)
            otherwise: list = []
            if term == "else":
                otherwise, pos, term = self.scan_template(pos, quoted)
            if term != "endif":
                raise ExprError("%{ if } without a matching %{ endif }", offset)
            return N.TemplateIf(cond, N.Template(then, offset), N.Template(otherwise, offset),
                                offset), pos, None
        names, collection = self.parse_for_header("a for directive")
        body, pos, term = self.scan_template(self.close_directive('"}" after the for directive'),
                                             quoted)
        if term != "endfor":
            raise ExprError("%{ for } without a matching %{ endfor }", offset)
        key_var, value_var = (None, names[0]) if len(names) == 1 else names
        return N.TemplateFor(key_var, value_var, collection, N.Template(body, offset), offset), pos, None


_IMMUTABLE = (str, int, float, bool, type(None))


def fold(node: N.Expr) -> N.Expr:
    """Constant folding: a node whose operands are all literals becomes a literal
    when it evaluates to a scalar; on an error it is kept, to fail at evaluation."""
    from .scope import Scope
    try:
        value = node.evaluate(Scope())
    except ExprError:
        return node
    if type(value) in _IMMUTABLE:
        return N.Literal(value, node.offset)
    return node


def make_template(parts: list, offset: int) -> N.Expr:
    """A template node; a lone ``${expr}`` is the expression itself (HCL unwrapping)."""
    if not parts:
        return N.Literal("", offset)
    if len(parts) == 1:
        p = parts[0]
        if type(p) is str:
            return N.Literal(p, offset)
        if not isinstance(p, (N.TemplateIf, N.TemplateFor)):
            return p
    node = N.Template(parts, offset)
    if all(type(p) is str or type(p) is N.Literal for p in parts):
        return fold(node)
    return node


def heredoc_template(body: str, strip: bool, base: int, offset: int) -> N.Expr:
    if strip:
        lines = body.split("\n")
        indents = [len(ln) - len(ln.lstrip(" \t")) for ln in lines if ln.strip()]
        cut = min(indents) if indents else 0
        body = "\n".join(ln[cut:] for ln in lines)
    p = Parser(body, base)
    parts, _, term = p.scan_template(0, quoted=False)
    if term is not None:
        raise ExprError(f"%{{ {term} }} without a matching opening directive", offset)
    return make_template(parts, offset)


# ---- public entry points with a parse cache ---------------------------------

_EXPR_CACHE: dict[str, N.Expr] = {}
_TEMPLATE_CACHE: dict[str, N.Expr] = {}
_CACHE_LIMIT = 500_000


def parse_expression(text: str) -> N.Expr:
    """Parse HCL expression source text (e.g. ``var.n > 2 ? "big" : "small"``)."""
    node = _EXPR_CACHE.get(text)
    if node is None and _SIMPLE_WHOLE.fullmatch(text):
        node = simple_traversal(text)
    if node is None:
        p = Parser(text)
        p.advance()
        node = p.parse_expr()
        if p.kind != "eof":
            raise p.error(f"unexpected {p.describe()} after the expression")
        if len(_EXPR_CACHE) > _CACHE_LIMIT:
            _EXPR_CACHE.clear()
        _EXPR_CACHE[text] = node
    return node


def parse_template(s: str) -> N.Expr:
    """Parse a raw string value: literal text (already
    unescaped) with ``${...}`` interpolations, ``%{...}`` directives, ``$${`` and
    ``%%{`` escapes, or a whole heredoc ``<<EOT ... EOT``. A string that is exactly
    one interpolation yields the expression itself, so its value keeps its type.
    """
    if "${" not in s and "%{" not in s and not s.startswith("<<"):
        return N.Literal(s)
    node = _TEMPLATE_CACHE.get(s)
    if node is None:
        node = _parse_template_uncached(s)
        if len(_TEMPLATE_CACHE) > _CACHE_LIMIT:
            _TEMPLATE_CACHE.clear()
        _TEMPLATE_CACHE[s] = node
    return node


def _parse_template_uncached(s: str) -> N.Expr:
    if s.startswith("<<"):
        m = _HEREDOC_WHOLE.match(s)
        if m is not None:
            return heredoc_template(m.group(3), bool(m.group(1)), m.start(3), 0)
    fast = _simple_template(s)
    if fast is not None:
        return fast
    p = Parser(s)
    parts, _, term = p.scan_template(0, quoted=False)
    if term is not None:
        raise ExprError(f"%{{ {term} }} without a matching opening directive", 0)
    return make_template(parts, 0)


# Fast path: templates whose interpolations are all plain traversals
# ("virbr${count.index}", "${network.lab.name}") skip the general parser.
_SIMPLE_TRAVERSAL = r'[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*|\[\d+\]|\["[^"\\$%]*"\])*'
_SIMPLE_INTERP = re.compile(r"\$\{[ \t]*(" + _SIMPLE_TRAVERSAL + r")[ \t]*\}")
_SIMPLE_STEP = re.compile(r'\.([A-Za-z_][\w-]*)|\[(\d+)\]|\["([^"\\$%]*)"\]')
_SIMPLE_WHOLE = re.compile(_SIMPLE_TRAVERSAL)
_ROOT = re.compile(r"[A-Za-z_][\w-]*")


def _simple_template(s: str):
    if "$${" in s or "%{" in s:
        return None
    pieces = _SIMPLE_INTERP.split(s)
    if len(pieces) == 1:
        return None
    parts: list = []
    pos = 0
    for i, piece in enumerate(pieces):
        if i % 2 == 0:
            if "${" in piece:
                return None
            if piece:
                parts.append(piece)
            pos += len(piece)
        else:
            start = s.index(piece, pos)
            node = simple_traversal(piece, start)
            if node is None:
                return None
            parts.append(node)
            pos = s.index("}", start + len(piece)) + 1
    return make_template(parts, 0)


def simple_traversal(text: str, offset: int = 0):
    """A Traversal for ``root(.attr|[0]|["key"])*`` text, or None."""
    root_match = _ROOT.match(text)
    assert root_match is not None         # callers pass text that _SIMPLE_TRAVERSAL matched
    root = root_match.group()
    if root in KEYWORD_LITERALS or root == "for":
        return None
    steps: list[tuple[int, Any]] = []
    texts: list[str] = []
    pos = root_match.end()
    while pos < len(text):
        m = _SIMPLE_STEP.match(text, pos)
        assert m is not None
        attr, index, key = m.groups()
        if attr is not None:
            steps.append((N.ATTR, attr))
        elif index is not None:
            steps.append((N.INDEX, int(index)))
        else:
            steps.append((N.INDEX, key))
        pos = m.end()
        texts.append(text[:pos])
    return N.Traversal(root, None, steps, texts, root, offset)
