"""lark's tree of an HCL expression → plain expression data.

This is the one reader of expressions: :mod:`kvmnet.engine.config.hcl` runs it on
every attribute value of a file, and :mod:`kvmnet.engine.expr.parser` on a lone
expression or template (``console``, ``--var``, type constraints), both parsed by
the same grammar (``hcl.lark``, start rules ``start``, ``expr_only`` and
``template``). The result is plain data: nested tuples of strings, numbers, bools
and None, so a parsed file can be cached with marshal, never pickle;
:func:`kvmnet.engine.expr.build.build` turns it into expression nodes.

Each node is ``(TAG, LINE, FIELDS...)``, LINE the source line it starts on:

- ``("lit", L, value)``; ``("num", L, text)`` a number that is not whole (its text,
  which the builder reads at cty's 512-bit precision); ``("tpl", L, parts)``, parts
  literal strings (text stripped to nothing stays ``""``) and nodes;
  ``("tif", L, cond, then_parts, else_parts)``; ``("tfor", L, key_var, value_var,
  collection, body_parts)``;
- ``("tuple", L, items)``; ``("obj", L, ((key, value), ...))``;
- ``("trav", L, root, source, steps, texts, root_text)``: ``root`` a name, or None
  with ``source`` the node traversed; steps ``(kind, value)`` with the kinds of
  :mod:`kvmnet.engine.expr.nodes` (ATTR 0, INDEX 1, INDEX_EXPR 2, SPLAT 3; the value
  of the legacy ``.*`` splat is ``"legacy"``, of ``[*]`` None);
  ``texts`` the source of each prefix, for messages;
- ``("call", L, name, args, expand)``; ``("un", L, op, operand)``;
  ``("bin", L, op, left, right)``; ``("cond", L, cond, then, else)``;
- ``("for", L, key_var, value_var, collection, key, value, cond, group, is_object)``.

Templates (quoted strings, heredoc bodies) are assembled here: escapes decoded,
strip markers (``${~``, ``~}``, ``%{~``) applied to the literal text beside them,
``%{ if }``/``%{ for }`` matched with their ends. Nesting deeper than
:data:`~kvmnet.engine.limits.MAX_NESTING`, numbers out of range and strings over
the size limit are :class:`Problem` at their line.
"""
from __future__ import annotations

import re

from kvmnet.engine import limits
from kvmnet.engine.expr import number

ATTR, INDEX, INDEX_EXPR, SPLAT = 0, 1, 2, 3   # as in kvmnet.engine.expr.nodes

_KEYWORDS = {"true": True, "false": False, "null": None}
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_TRAVERSALS = frozenset({"index_expr_term", "get_attr_expr_term", "attr_splat_expr_term",
                         "full_splat_expr_term"})
# by token type: the post-lexer may have merged a line break or comment into the token
_OPERATORS = {
    "DOUBLE_EQ": "==", "NEQ": "!=", "LT": "<", "GT": ">", "LEQ": "<=", "GEQ": ">=",
    "MINUS": "-", "ASTERISK": "*", "SLASH": "/", "PERCENT": "%", "DOUBLE_AMP": "&&",
    "DOUBLE_PIPE": "||", "PLUS": "+",
}
_HEREDOC_HEAD = re.compile(r"<<(-?)([A-Za-z][A-Za-z0-9._-]*)\r?\n")


class Problem(Exception):
    """An expression that cannot be read, at ``line`` of its source; the file reader
    adds the block's ``address`` and the ``attribute`` path where it knows them."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.address: str | None = None
        self.attribute: str | None = None


def unescape(text: str, line: int | None) -> str:
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
                raise Problem(f'invalid escape sequence "\\{c}{digits}": not a Unicode character', line)
            out.append(chr(code))
            i = j + 2 + n
            continue
        raise Problem(f'invalid escape sequence "\\{c}"', line)


def _data(node) -> str | None:
    return getattr(node, "data", None)


def trees(node) -> list:
    """A node's sub-trees, without tokens and comments."""
    return [c for c in node.children
            if getattr(c, "data", None) is not None and c.data != "new_line_or_comment"]


def name_of(node) -> str | None:
    """The text of an identifier, keyword or true/false/null; None for anything else."""
    if _data(node) in ("identifier", "keyword", "literal_value") and len(node.children) == 1:
        return str(node.children[0])
    return None


def is_lone(node, kind: str):
    """The ``kind`` sub-tree an expression consists of (``expr_term`` with one child), or None."""
    if _data(node) == "expr_term" and len(node.children) == 1 and _data(node.children[0]) == kind:
        return node.children[0]
    return None


class Reader:
    """Reads expressions out of one parsed text. ``text`` is the source the tree's
    positions refer to; ``line_base`` is added to its lines (a heredoc's body is
    parsed on its own)."""

    def __init__(self, text: str, line_base: int = 0):
        self.text = text
        self.line_base = line_base
        self.depth = 0

    def line(self, node) -> int | None:
        meta = getattr(node, "meta", None)
        if meta is not None and not meta.empty:
            return meta.line + self.line_base
        line = getattr(node, "line", None)
        if line is not None:
            return line + self.line_base
        for child in getattr(node, "children", ()):
            found = self.line(child)
            if found is not None:
                return found
        return None

    def source(self, node) -> str:
        """The node's source text, without the line breaks and comments the grammar
        lets an operator chain end with."""
        end = node.meta.end_pos
        n = node
        while getattr(n, "children", None):
            last = n.children[-1]
            if _data(last) == "new_line_or_comment":
                end = last.meta.start_pos
                if len(n.children) < 2:
                    break
                n = n.children[-2]
            elif _data(last) is not None:
                n = last
            else:
                break
        return self.text[node.meta.start_pos:end].rstrip(" \t\r")

    def nest(self, node, levels: int = 1) -> None:
        if self.depth + levels > limits.MAX_NESTING:
            raise Problem(f"expression nested more than {limits.MAX_NESTING} levels deep",
                          self.line(node))

    # -- expressions ------------------------------------------------------------
    def expr(self, node) -> tuple:
        """The data of one expression sub-tree."""
        self.nest(node)
        self.depth += 1
        try:
            return self._expr(node)
        finally:
            self.depth -= 1

    def _expr(self, node) -> tuple:
        kind = node.data
        if kind == "expr_term":
            parts = trees(node)
            if len(parts) == 1 and node.children[0] is not parts[0]:   # ( expression )
                return self.expr(parts[0])
            return self.term(parts[0])
        if kind == "binary_op":
            return self.binary(node)
        if kind == "unary_op":
            return self.unary(node)
        if kind == "conditional":
            cond, then, otherwise = trees(node)
            return ("cond", self.line(node), self.expr(cond), self.expr(then), self.expr(otherwise))
        return self.term(node)

    def binary(self, node) -> tuple:
        """A chain of left-associative operators, walked without recursion."""
        chain = []
        while _data(node) == "binary_op":
            left, term = node.children[0], node.children[1]
            operator, right = trees(term)
            chain.append((_OPERATORS[operator.children[0].type], right, self.line(node)))
            node = left
        self.nest(node, len(chain))
        self.depth += len(chain)
        try:
            acc = self.expr(node)
            for op, right, line in reversed(chain):
                acc = ("bin", line, op, acc, self.expr(right))
            return acc
        finally:
            self.depth -= len(chain)

    def unary(self, node) -> tuple:
        """``-x``, ``!x`` and repeated ones (``- -2``, ``!!x``)."""
        ops = []
        while _data(node) == "unary_op":
            ops.append(("-" if node.children[0].type == "MINUS" else "!", self.line(node)))
            node = node.children[1]
        self.nest(node, len(ops))
        self.depth += len(ops)
        try:
            acc = self.expr(node)
            for op, line in reversed(ops):
                acc = ("un", line, op, acc)
            return acc
        finally:
            self.depth -= len(ops)

    def term(self, t) -> tuple:
        kind = t.data
        line = self.line(t)
        if kind in ("int_lit", "float_lit"):
            value = self.number(t)
            return ("lit", line, value) if type(value) is int else ("num", line, value)
        if kind == "literal_value":
            return ("lit", line, _KEYWORDS[str(t.children[0])])
        if kind == "identifier":
            name = str(t.children[0])
            return ("trav", line, name, None, (), (), name)
        if kind == "string":
            self.check_size(t)
            return self.template(t.children[1:-1], quoted=True, line=line)
        if kind == "template_string":   # \"...\" inside a directive of a quoted string
            text = str(t.children[0])
            return ("lit", line, unescape(text[2:-2], line))
        if kind == "tuple":
            return ("tuple", line, tuple(self.expr(e) for e in trees(t)))
        if kind == "object":
            return ("obj", line, tuple(self.object_elem(e) for e in trees(t)))
        if kind == "function_call":
            return self.call(t, line)
        if kind in ("heredoc_template", "heredoc_template_trim"):
            self.check_size(t)
            return self.heredoc(str(t.children[0]), line)
        if kind in _TRAVERSALS:
            return self.traversal(t, line)
        if kind in ("for_tuple_expr", "for_object_expr"):
            return self.for_expr(t, kind == "for_object_expr", line)
        raise Problem(f"unexpected {kind}", line)

    def number(self, t):
        text = str(t.children[0])
        line = self.line(t)
        if len(text) > limits.MAX_NUMBER_DIGITS:
            raise Problem(f"number out of range: {text[:20]}... has more than "
                          f"{limits.MAX_NUMBER_DIGITS} characters", line)
        value = number.parse(text)
        if value is None:
            raise Problem(f"number out of range: {text}", line)
        # a whole number is an int; any other stays its text (plain data for the parse
        # cache), which the builder reads at cty's 512-bit precision
        return value if type(value) is int else text

    def check_size(self, node) -> None:
        if node.meta.end_pos - node.meta.start_pos > limits.MAX_STRING_CHARS:
            raise Problem(f"string longer than {limits.MAX_STRING_CHARS} characters", self.line(node))

    def object_elem(self, elem) -> tuple:
        key_node, _sep, value = elem.children
        inner = key_node.children[0]
        name = name_of(inner)
        if name is None:
            term = inner.children[0] if _data(inner) == "expr_term" and len(inner.children) == 1 else None
            name = name_of(term)
        key = ("lit", self.line(key_node), name) if name is not None else self.expr(inner)
        return (key, self.expr(value))

    def call(self, t, line) -> tuple:
        names = [str(c.children[0]) for c in t.children if _data(c) == "identifier"]
        args: list = []
        expand = False
        for c in t.children:
            if _data(c) == "arguments":
                args = [self.expr(a) for a in trees(c)]
                expand = any(getattr(tok, "type", None) == "ELLIPSIS" for tok in c.children)
        return ("call", line, "::".join(names), tuple(args), expand)

    def traversal(self, t, line) -> tuple:
        """``primary.attr[index][*].x...``: one flat node, walked without recursion."""
        suffixes = []
        node = t
        while True:
            inner, suffix = node.children
            suffixes.append(suffix)
            if len(inner.children) == 1 and _data(inner.children[0]) in _TRAVERSALS:
                node = inner.children[0]
            else:
                primary = inner
                break
        suffixes.reverse()
        start = primary.meta.start_pos
        steps: list[tuple] = []
        texts: list[str] = []
        for suffix in suffixes:
            if suffix.data in ("attr_splat", "full_splat"):
                # the legacy ".*" applies only its own attribute steps to each element
                steps.append((SPLAT, "legacy" if suffix.data == "attr_splat" else None))
                texts.append(self.text[start:suffix.children[0].end_pos])
                for sub in suffix.children[1:]:
                    steps.append(self.step(sub))
                    texts.append(self.text[start:sub.meta.end_pos])
            else:
                steps.append(self.step(suffix))
                texts.append(self.text[start:suffix.meta.end_pos])
        root = is_lone(primary, "identifier")
        if root is not None:
            name = str(root.children[0])
            return ("trav", line, name, None, tuple(steps), tuple(texts), name)
        return ("trav", line, None, self.expr(primary), tuple(steps), tuple(texts),
                self.source(primary))

    def step(self, suffix) -> tuple:
        kind = suffix.data
        if kind == "get_attr":
            name = name_of(trees(suffix)[0])
            return (ATTR, name)
        if kind == "short_index":
            return (INDEX, int(str(suffix.children[1])))
        if kind == "braces_index":
            return (INDEX_EXPR, self.expr(trees(suffix)[0]))
        raise Problem(f"unexpected {kind}", self.line(suffix))

    def for_expr(self, t, is_object: bool, line) -> tuple:
        parts = trees(t)
        intro, rest = parts[0], parts[1:]
        cond = None
        if rest and rest[-1].data == "for_cond":
            cond = self.expr(trees(rest[-1])[0])
            rest = rest[:-1]
        intro_parts = trees(intro)
        names = [str(p.children[0]) for p in intro_parts[:-1]]
        collection = self.expr(intro_parts[-1])
        key_var, value_var = (None, names[0]) if len(names) == 1 else names
        group = any(getattr(c, "type", None) == "ELLIPSIS" for c in t.children)
        key = self.expr(rest[0]) if is_object else None
        value = self.expr(rest[-1])
        return ("for", line, key_var, value_var, collection, key, value, cond, group, is_object)

    # -- templates ----------------------------------------------------------------
    def heredoc(self, token: str, line) -> tuple:
        """A heredoc: its body (indentation removed for ``<<-``) read as a template."""
        head = _HEREDOC_HEAD.match(token)
        if head is None:
            raise Problem("malformed heredoc", line)
        rest = token[head.end():].rstrip("\n").rstrip("\r")
        cut = rest.rfind("\n")
        body = rest[:cut + 1] if cut >= 0 else ""
        if head.group(1):
            body = dedent(body)
        return raw_template(body, (line or 1) + 1, self.depth, node_line=line)

    def template(self, parts, quoted: bool, line) -> tuple:
        """A template from the parts of a quoted string (``string_part``) or of a
        raw template (``template_part``)."""
        items: list = []   # str, or (kind, strip_left, strip_right, node, data...)
        for part in parts:
            inner = part.children[0] if len(part.children) == 1 else part
            kind = getattr(inner, "type", None)
            if kind is not None:
                text = str(inner)
                if kind == "ESCAPED_INTERPOLATION" or kind == "ESCAPED_DIRECTIVE":
                    rest = text[3:]
                    text = text[1:3] + (unescape(rest, self.line(part)) if quoted else rest)
                elif quoted:
                    if "\n" in text:
                        raise Problem("a quoted string cannot span lines (use a heredoc)",
                                      self.line(part))
                    text = unescape(text, self.line(part))
                if items and type(items[-1]) is str:
                    items[-1] += text
                else:
                    items.append(text)
                continue
            items.append(self.directive(inner))
        return assemble(items, line)

    def directive(self, node) -> tuple:
        """``("interp"|"if"|"else"|"endif"|"for"|"endfor", strip_left, strip_right, line, data...)``."""
        kind = node.data.removeprefix("raw_")
        toks = node.children
        strip_left = getattr(toks[1], "type", None) == "STRIP_MARKER"
        strip_right = getattr(toks[-2], "type", None) == "STRIP_MARKER"
        line = self.line(node)
        if strip_left and toks[1].start_pos != toks[0].end_pos:
            raise Problem(f'a strip marker "~" must follow "{toks[0]}" directly', line)
        if strip_right and toks[-2].end_pos != toks[-1].start_pos:
            raise Problem('a strip marker "~" must be followed directly by "}"', line)
        inner = trees(node)
        if kind == "interpolation":
            return ("interp", strip_left, strip_right, line, self.expr(inner[0]))
        if kind == "template_if_start":
            return ("if", strip_left, strip_right, line, self.expr(inner[0]))
        if kind == "template_for_start":
            names = [str(p.children[0]) for p in inner[:-1]]
            key_var, value_var = (None, names[0]) if len(names) == 1 else names
            return ("for", strip_left, strip_right, line, key_var, value_var, self.expr(inner[-1]))
        return (kind.removeprefix("template_"), strip_left, strip_right, line)


def assemble(items: list, line) -> tuple:
    """Template data from a flat list of literal text and directives: strip markers
    applied, ``if``/``for`` matched with their ends."""
    n = len(items)
    for i, item in enumerate(items):
        if type(item) is not str:
            continue
        if i > 0 and items[i - 1][2]:             # "~}" before this text
            item = item.lstrip()
        if i + 1 < n and items[i + 1][1]:          # "${~" / "%{~" after it
            item = item.rstrip()
        items[i] = item
    root: list = []
    stack: list[tuple[tuple, list, list | None]] = []   # (opening item, then, else)
    current = root
    for item in items:
        if type(item) is str:
            # text stripped to nothing stays as "": "  ${~ 1 ~}  " is the string "1",
            # not the number (only a bare "${1}" is unwrapped)
            if current and type(current[-1]) is str:
                current[-1] += item
            else:
                current.append(item)
            continue
        kind, _l, _r, at = item[:4]
        if kind == "interp":
            current.append(item[4])
        elif kind in ("if", "for"):
            if len(stack) >= limits.MAX_NESTING:
                raise Problem(f"expression nested more than {limits.MAX_NESTING} levels deep", at)
            stack.append((item, [], None))
            current = stack[-1][1]
        elif kind == "else":
            if not stack or stack[-1][0][0] != "if" or stack[-1][2] is not None:
                raise Problem("%{ else } without a matching %{ if }", at)
            opening, then, _ = stack.pop()
            current = []
            stack.append((opening, then, current))
        else:   # endif, endfor
            want = "if" if kind == "endif" else "for"
            if not stack or stack[-1][0][0] != want:
                raise Problem(f"%{{ {kind} }} without a matching %{{ {want} }}", at)
            opening, then, otherwise = stack.pop()
            current = stack[-1][2] if stack and stack[-1][2] is not None else \
                stack[-1][1] if stack else root
            if want == "if":
                current.append(("tif", opening[3], opening[4], tuple(then), tuple(otherwise or ())))
            else:
                current.append(("tfor", opening[3], opening[4], opening[5], opening[6], tuple(then)))
    if stack:
        opening = stack[-1][0]
        end = "endif" if opening[0] == "if" else "endfor"
        raise Problem(f"%{{ {opening[0]} }} without a matching %{{ {end} }}", opening[3])
    if not root:
        return ("lit", line, "")
    if len(root) == 1:
        only = root[0]
        if type(only) is str:
            return ("lit", line, only)
        if only[0] not in ("tif", "tfor"):
            return only
    return ("tpl", line, tuple(root))


def dedent(body: str) -> str:
    """A ``<<-`` heredoc's body: the indentation its non-blank lines share removed."""
    lines = body.split("\n")
    indents = [len(ln) - len(ln.lstrip(" \t")) for ln in lines if ln.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(ln[cut:] for ln in lines)


def raw_template(text: str, line: int = 1, depth: int = 0, node_line: int | None = None) -> tuple:
    """A raw template (literal text not escaped; ``${}``, ``%{}``, ``$${``, ``%%{``)
    whose text starts at ``line``: a heredoc's body, or a string given to
    :func:`kvmnet.engine.expr.parse_template`. ``node_line``: the line of the
    template itself (a heredoc's ``<<``), ``line`` by default."""
    at = line if node_line is None else node_line
    if "${" not in text and "%{" not in text:
        return ("lit", at, text)
    from lark.exceptions import UnexpectedInput

    from kvmnet.engine.config.grammar import parser
    try:
        tree = parser().parse(text, start="template")
    except UnexpectedInput as e:
        raise Problem(syntax_message(e), (getattr(e, "line", None) or 1) + line - 1) from None
    reader = Reader(text, line - 1)
    reader.depth = depth
    return reader.template(tree.children, quoted=False, line=at)


def syntax_message(e, end: str = "end of expression") -> str:
    """What a lark syntax error in a lone expression or template says, in kvmnet's
    words, with what was expected when that is a short list of punctuation."""
    token = getattr(e, "token", None)
    kind = getattr(token, "type", "")
    text = str(token) if token is not None else ""
    if kind == "$END":
        what = f"unexpected {end}"
    elif kind in ("STRING_CHARS", "TEMPLATE_CHARS") or getattr(e, "char", None):
        char = (text or e.char)[:1]
        what = "unexpected end of line" if char == "\n" else f'unexpected character "{char}"'
    elif text.strip():
        what = f'unexpected "{text.strip().splitlines()[0][:30]}"'
    else:
        what = "unexpected input"
    expected = _expected(getattr(e, "expected", None) or ())
    return f"syntax error: {what}" + (f"; expected {expected}" if expected else "")


def _expected(names) -> str:
    from kvmnet.engine.config.grammar import parser
    shown = []
    for name in sorted(names):
        if name in ("NL_OR_COMMENT", "STRIP_MARKER"):
            continue
        try:
            pattern = parser().get_terminal(name).pattern
        except KeyError:
            return ""
        if pattern.type != "str":
            return ""
        shown.append(f'"{pattern.value}"')
    return " or ".join(shown) if 0 < len(shown) <= 3 else ""
