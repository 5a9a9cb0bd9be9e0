"""Canonical layout of HCL source text (``kvmnet fmt``), line by line.

:func:`format_hcl` re-indents with two spaces per open bracket, aligns the ``=`` of
consecutive attribute lines of one body (a blank line, a comment line, a nested block
or the continuation lines of a multi-line value end the alignment group, as
``terraform fmt`` does), puts one blank line between top-level blocks, collapses runs
of blank lines and strips trailing spaces. It changes only whitespace outside
strings: string contents, heredoc bodies and the inside of ``/* */`` comments are
kept byte for byte, and every comment stays where it is. Pure: text in, text out.

The caller checks that the result parses to the same values (:func:`same_meaning`)
before writing anything.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

INDENT = "  "
_OPEN = {"{": "}", "[": "]", "(": ")"}
_CLOSE = set(_OPEN.values())
_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][A-Za-z0-9_-]*)[ \t]*$")
# an attribute line: NAME = ... or "quoted key" = ... (not ==, not =>)
_ATTRIBUTE = re.compile(r'^(?P<key>[A-Za-z_][A-Za-z0-9_-]*|"(?:[^"\\$%]|\\.)*")[ \t]*=(?![=>])[ \t]*(?P<rest>.*)$')

# scanner modes kept on a stack
_STRING, _TEMPLATE = '"', "${"


@dataclass
class _Line:
    text: str            # the line as given (without the newline)
    verbatim: bool       # keep exactly as is (heredoc body, inside a block comment, inside a string)
    depth: int = 0       # open brackets at the start of the line
    closers: int = 0     # how many of them this line's leading characters close
    enclosing: str = ""  # the innermost open bracket at the start of the line
    end_depth: int = 0   # open brackets at the end of the line


class _Scanner:
    """Follows brackets, strings, templates, comments and heredocs across lines."""

    def __init__(self) -> None:
        self.stack: list[str] = []      # "{", "[", "(", _STRING, _TEMPLATE
        self.block_comment = False
        self.heredoc: str | None = None  # the closing marker while inside a heredoc body

    @property
    def brackets(self) -> list[str]:
        return [m for m in self.stack if m in _OPEN]

    def classify(self, text: str) -> _Line:
        if self.heredoc is not None:
            if text.strip() == self.heredoc:
                self.heredoc = None
            return _Line(text, verbatim=True)
        in_string = bool(self.stack) and self.stack[-1] == _STRING
        line = _Line(text, verbatim=self.block_comment or in_string,
                     depth=len(self.brackets), enclosing=(self.brackets or [""])[-1])
        if not line.verbatim:
            for ch in text.strip():
                if ch in _CLOSE:
                    line.closers += 1
                elif ch not in " \t":
                    break
            line.closers = min(line.closers, line.depth)
        self.scan(text)
        line.end_depth = len(self.brackets)
        return line

    def scan(self, text: str) -> None:
        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            two = text[i:i + 2]
            if self.block_comment:
                if two == "*/":
                    self.block_comment = False
                    i += 2
                    continue
                i += 1
                continue
            top = self.stack[-1] if self.stack else None
            if top == _STRING:
                if ch == "\\":
                    i += 2
                    continue
                if text[i:i + 3] in ("$${", "%%{"):      # escaped: a literal ${ or %{
                    i += 3
                    continue
                if two in ("${", "%{"):
                    self.stack.append(_TEMPLATE)
                    i += 2
                    continue
                if ch == '"':
                    self.stack.pop()
                i += 1
                continue
            # code: top level, inside brackets or inside a template interpolation
            if ch == "#" or two == "//":
                return
            if two == "/*":
                self.block_comment = True
                i += 2
                continue
            if ch == '"':
                self.stack.append(_STRING)
            elif ch in _OPEN:
                self.stack.append(ch)
            elif ch in _CLOSE:
                if self.stack and self.stack[-1] == _TEMPLATE and ch == "}":
                    self.stack.pop()
                elif self.stack and self.stack[-1] in _OPEN:
                    self.stack.pop()
            elif two == "<<":
                m = _HEREDOC.match(text, i)
                if m:
                    self.heredoc = m.group(2)
                    return
            i += 1


def _is_attribute(line: _Line) -> re.Match | None:
    if line.verbatim or line.closers or line.enclosing not in ("", "{"):
        return None
    return _ATTRIBUTE.match(line.text.strip())


def _is_comment(body: str) -> bool:
    return body.startswith(("#", "//", "/*"))


def format_hcl(text: str) -> str:
    """``text`` in canonical layout (see the module docstring)."""
    scanner = _Scanner()
    lines = [scanner.classify(t) for t in text.split("\n")]
    if text.endswith("\n"):
        lines.pop()   # the empty piece after the final newline

    out: list[str] = []
    group: list[tuple[int, re.Match, str, int]] = []   # (index in out, match, indent, depth)

    def flush_group() -> None:
        width = max((len(m.group("key")) for _i, m, _ind, _d in group), default=0)
        for idx, m, indent, _d in group:
            rest = m.group("rest")
            out[idx] = f"{indent}{m.group('key').ljust(width)} ={' ' + rest if rest else ''}"
        group.clear()

    top_is_block = False        # the top-level construct being read is a block
    block_ended = False         # the last non-blank line closed a top-level block
    for line in lines:
        if line.verbatim:
            flush_group()
            out.append(line.text)
            continue
        body = line.text.strip()
        if not body:
            flush_group()
            if out and out[-1] != "":
                out.append("")
            continue
        if line.depth == 0 and block_ended and out and out[-1] != "":
            flush_group()
            out.append("")
        m = _is_attribute(line)
        if line.depth == 0 and not _is_comment(body):
            top_is_block = m is None
        block_ended = top_is_block and line.end_depth == 0 and not _is_comment(body) and body.endswith("}")
        indent = INDENT * (line.depth - line.closers)
        if m is None:
            flush_group()
            out.append(indent + body)
            continue
        if group and group[-1][3] != line.depth:
            flush_group()
        out.append(indent + body)
        group.append((len(out) - 1, m, indent, line.depth))
    flush_group()
    while out and out[-1] == "":
        out.pop()
    while out and out[0] == "":
        out.pop(0)
    return "\n".join(out) + "\n" if out else ""


# -- meaning check ----------------------------------------------------------------

def meaning(parsed) -> tuple:
    """What a parsed file means, without line numbers: blocks (type, labels,
    attribute values, nested blocks) and top-level attributes, in order."""
    def block(b) -> tuple:
        return (b.type, tuple(b.labels), tuple((k, _freeze(a.value)) for k, a in b.attrs.items()),
                tuple(block(x) for x in b.blocks))
    return (tuple(block(b) for b in parsed.blocks),
            tuple((k, _freeze(a.value)) for k, a in parsed.attrs.items()))


def _freeze(value):
    """An attribute's raw value as its expression structure: expressions are kept
    as source text, whose layout is what fmt changes."""
    from kvmnet.engine.expr.compiled import structure
    return structure(value)


def same_meaning(before, after) -> bool:
    """True when two parsed files (``hcl.ParsedFile``) mean the same thing."""
    return meaning(before) == meaning(after)
