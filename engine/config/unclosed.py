"""Where an HCL file that ends too early went wrong: the line of the string, block,
bracket or heredoc still open at the end, so a syntax error points where the
unclosed thing starts rather than at the last line of the file."""
from __future__ import annotations

import re

_HEREDOC = re.compile(r"<<-?([A-Za-z_][A-Za-z0-9_-]*)[ \t]*\n")
_CLOSE = {"(": ")", "[": "]", "{": "}", "${": "}", "%{": "}"}


def unclosed(text: str) -> tuple[str, int] | None:
    """(what, line) of the innermost construct still open at the end of ``text``:
    ``what`` is "string", "heredoc", "block or object", "list" or "parenthesis";
    None when everything opened is closed."""
    stack: list[tuple[str, int]] = []      # (opener, line); '"' for a string
    i, line, n = 0, 1, len(text)
    while i < n:
        ch = text[i]
        in_string = bool(stack) and stack[-1][0] == '"'
        if ch == "\n":
            line += 1
            if in_string:            # a quoted string cannot span lines: it is the culprit
                return "string", stack[-1][1]
            i += 1
            continue
        if in_string:
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                stack.pop()
            elif text.startswith(("${", "%{"), i) and not text.startswith(("$${", "%%{"), i - 1):
                stack.append((text[i:i + 2], line))
                i += 2
                continue
            i += 1
            continue
        if ch == "#" or text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                return "comment", line
            line += text.count("\n", i, j)
            i = j + 2
            continue
        m = _HEREDOC.match(text, i)
        if m is not None:
            end = re.compile(r"^[ \t]*" + re.escape(m.group(1)) + r"[ \t]*$", re.M).search(text, m.end())
            if end is None:
                return "heredoc", line
            line += text.count("\n", i, end.end())
            i = end.end()
            continue
        if ch == '"':
            stack.append(('"', line))
        elif ch in "([{":
            stack.append((ch, line))
        elif ch in ")]}" and stack and _CLOSE.get(stack[-1][0]) == ch:
            stack.pop()
        i += 1
    if not stack:
        return None
    opener, at = stack[-1]
    return {'"': "string", "(": "parenthesis", "[": "list", "{": "block or object",
            "${": "interpolation", "%{": "template directive"}[opener], at
