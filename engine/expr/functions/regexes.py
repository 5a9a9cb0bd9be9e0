"""RE2 regular expressions for ``regex``, ``regexall`` and ``replace``, as Go's
``regexp`` package (Terraform's) runs them: the google-re2 bindings compile the
pattern, so lookarounds and backreferences are refused as in Terraform, and the
match loop and ``$1``/``${name}`` replacement templates follow Go.
"""
from __future__ import annotations

from functools import lru_cache

import re2

from ..errors import ExprError
from ._args import as_list

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


def _refuse(message: str) -> ExprError:
    return ExprError(f'invalid value for "pattern" parameter: invalid regexp pattern: {message}')


def group_names(pattern: str) -> list[str | None]:
    """The name of each capturing group in order (None: unnamed); Go allows a name
    twice, which RE2's name table does not show."""
    names: list[str | None] = []
    i, n, in_class = 0, len(pattern), False
    while i < n:
        c = pattern[i]
        if c == "\\":
            if pattern[i + 1:i + 2] == "Q":
                end = pattern.find("\\E", i + 2)
                i = n if end < 0 else end + 2
                continue
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            i += 1
            continue
        if c == "[":
            in_class = True
            i += 1
            if pattern[i:i + 1] == "^":
                i += 1
            if pattern[i:i + 1] == "]":
                i += 1
            continue
        if c == "(":
            if pattern.startswith("(?P<", i):
                end = pattern.find(">", i)
                names.append(pattern[i + 4:end])
            elif not pattern.startswith("(?", i):
                names.append(None)
        i += 1
    return names


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str):
    # Go's regexp (Terraform's) has no (?<name>...) groups and no \C; RE2 accepts them.
    i = pattern.find("(?<")
    if i >= 0 and pattern[i + 3:i + 4] not in ("=", "!"):
        raise _refuse("invalid or unsupported Perl syntax: `(?<`")
    if _has_escape(pattern, "C"):
        raise _refuse("invalid escape sequence: `\\C`")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as e:
        text = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        raise ExprError(f'invalid value for "pattern" parameter: invalid regexp pattern: '
                        f"{text}") from None


def _has_escape(pattern: str, letter: str) -> bool:
    i = pattern.find("\\")
    while i >= 0:
        if pattern[i + 1:i + 2] == letter:
            return True
        i = pattern.find("\\", i + 2)
    return False


def _shape(rx, pattern: str):
    """How a match is returned: None (the whole match), "list", or the group
    names for an object (Terraform refuses mixing named and unnamed groups)."""
    if rx.groups == 0:
        return None
    names = group_names(pattern)
    if len(names) != rx.groups:           # the scan missed a construct: RE2's table
        names = [None] * rx.groups
        for name, idx in rx.groupindex.items():
            names[idx - 1] = name
    if all(n is None for n in names):
        return "list"
    if any(n is None for n in names):
        raise _refuse("cannot mix both named and unnamed capture groups")
    return names


def _result(shape, m):
    if shape is None:
        return m.group(0)
    if shape == "list":
        return list(m.groups())
    out = {}
    for idx, name in enumerate(shape, 1):
        out[name] = m.group(idx)          # a repeated name: the last group wins, as in Go
    return dict(sorted(out.items()))


def _matches(rx, s: str):
    """Go's FindAll: successive non-overlapping matches; an empty match right
    after the previous match is skipped."""
    pos, prev_end = 0, -1
    while pos <= len(s):
        m = rx.search(s, pos)
        if m is None:
            return
        start, end = m.span()
        if start == end and start == prev_end:
            pos = start + 1
            continue
        yield m
        prev_end = end
        pos = end if end > start else end + 1


def regex_one(pattern: str, s: str):
    rx = compile_pattern(pattern)
    shape = _shape(rx, pattern)
    m = rx.search(s)
    if m is None:
        raise ExprError("pattern did not match any part of the given string")
    return _result(shape, m)


def regex_all(pattern: str, s: str) -> list:
    rx = compile_pattern(pattern)
    shape = _shape(rx, pattern)
    return as_list(_result(shape, m) for m in _matches(rx, s))


def _expand(template: str, rx, m) -> str:
    """Go's Regexp.Expand: ``$name`` / ``${name}`` / ``$1`` / ``$$``; a missing
    group is empty; a ``$`` not followed by a name is kept."""
    out, i, n = [], 0, len(template)
    while i < n:
        c = template[i]
        if c != "$" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            close = template.find("}", i + 2)
            name = template[i + 2:close] if close > 0 else ""
            if close < 0 or not name or not _is_name(name):
                out.append("$")
                i += 1
                continue
            i = close + 1
        else:
            j = i + 1
            while j < n and (template[j].isascii() and (template[j].isalnum() or template[j] == "_")):
                j += 1
            name = template[i + 1:j]
            if not name:
                out.append("$")
                i += 1
                continue
            i = j
        out.append(_group(rx, m, name))
    return "".join(out)


def _is_name(name: str) -> bool:
    return all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name)


def _group(rx, m, name: str) -> str:
    if name.isdigit():
        idx = int(name)
    else:
        idx = rx.groupindex.get(name, -1)
    if idx < 0 or idx > rx.groups:
        return ""
    return m.group(idx) or ""


def regex_replace(pattern: str, s: str, template: str) -> str:
    rx = compile_pattern(pattern)
    out, last = [], 0
    for m in _matches(rx, s):
        start, end = m.span()
        out.append(s[last:start])
        out.append(_expand(template, rx, m))
        last = end
    out.append(s[last:])
    return "".join(out)
