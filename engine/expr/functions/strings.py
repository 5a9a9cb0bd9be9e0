"""String functions: chomp endswith format formatlist indent join lower regex
regexall replace split startswith strcontains strrev substr title trim
trimprefix trimsuffix trimspace upper.

Lengths and offsets count user-perceived characters (extended grapheme
clusters), as Terraform does; case mapping is Go's, one character at a time
(``upper("ß")`` is ``"ß"``, not ``"SS"``). Regular expressions are RE2's
(:mod:`.regexes`).
"""
from __future__ import annotations

from .. import ops

from ..errors import ExprError
from ..formatting import format_string
from . import _args as A
from .regexes import regex_all, regex_one, regex_replace

graphemes = ops.graphemes


def _upper(s):
    return ops.upper(A.string(s, "str"))


def _lower(s):
    return ops.lower(A.string(s, "str"))


def _title_separator(c: str) -> bool:
    if c <= "\x7f":
        return not (c.isascii() and (c.isalnum() or c == "_"))
    if c.isalpha() or c.isdigit():
        return False
    return c.isspace()


def _title(s):
    s = A.string(s, "str")
    out, prev_sep = [], True
    for c in s:
        if prev_sep:
            t = c.title()
            out.append(t if len(t) == 1 else c)
        else:
            out.append(c)
        prev_sep = _title_separator(c)
    return "".join(out)


def _chomp(s):
    s = A.string(s, "str")
    while s.endswith(("\n", "\r")):
        s = s[:-2] if s.endswith("\r\n") else s[:-1]
    return s


def _endswith(s, suffix):
    return A.string(s, "str").endswith(A.string(suffix, "suffix"))


def _startswith(s, prefix):
    return A.string(s, "str").startswith(A.string(prefix, "prefix"))


def _strcontains(s, sub):
    return A.string(sub, "substr") in A.string(s, "str")


def _format(spec, *args):
    return A.checked_string(format_string(A.string(spec, "format"), list(args)))


def _formatlist(spec, *args):
    spec = A.string(spec, "format")
    n = None
    for i, a in enumerate(args):
        if isinstance(a, list):
            if n is not None and len(a) != n:
                raise A.bad("args", f"argument {i + 1} has length {len(a)}, which is "
                                    f"inconsistent with previous argument lengths ({n})")
            n = len(a)
    if n is None:
        n = 1
    A.checked_items(n)
    out = []
    for k in range(n):
        row = [a[k] if isinstance(a, list) else a for a in args]
        try:
            out.append(A.checked_string(format_string(spec, row)))
        except ExprError as e:
            raise ExprError(f"error on format iteration {k}: {e.message}") from None
    return A.as_list(out)


def _indent(n, s):
    spaces = A.whole(n, "spaces")
    if spaces < 0:
        raise A.bad("spaces", "must not be negative")
    pad = " " * spaces
    return A.checked_string(A.string(s, "str").replace("\n", "\n" + pad))


def _join(sep, *lists):
    sep = A.string(sep, "separator")
    if not lists:
        raise A.bad("lists", "at least one list is required")
    items = []
    for lst in lists:
        for i, v in enumerate(A.sequence(lst, "lists")):
            if v is None:
                raise A.bad("lists", f"element {i} is null; cannot concatenate null values")
            items.append(A.string(v, "lists"))
    return A.checked_string(sep.join(items))


def _split(sep, s):
    sep, s = A.string(sep, "separator"), A.string(s, "str")
    if sep == "":
        return A.as_list(s)
    return A.as_list(s.split(sep))


def _strrev(s):
    return "".join(reversed(graphemes(A.string(s, "str"))))


def _substr(s, offset, length):
    chars = graphemes(A.string(s, "str"))
    off, ln = A.whole(offset, "offset"), A.whole(length, "length")
    n = len(chars)
    if off < 0:
        off = max(n + off, 0)
    if off > n:
        return ""
    end = n if ln < 0 else min(off + ln, n)
    return "".join(chars[off:end])


def _trim(s, cutset):
    return A.string(s, "str").strip(A.string(cutset, "cutset"))


def _trimprefix(s, prefix):
    return A.string(s, "str").removeprefix(A.string(prefix, "prefix"))


def _trimsuffix(s, suffix):
    return A.string(s, "str").removesuffix(A.string(suffix, "suffix"))


_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007" \
            "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _trimspace(s):
    return A.string(s, "str").strip(_GO_SPACE)


def _regex(pattern, s):
    return regex_one(A.string(pattern, "pattern"), A.string(s, "string"))


def _regexall(pattern, s):
    return regex_all(A.string(pattern, "pattern"), A.string(s, "string"))


def _replace(s, substr, replacement):
    s, sub, rep = A.string(s, "str"), A.string(substr, "substr"), A.string(replacement, "replace")
    if len(sub) > 1 and sub.startswith("/") and sub.endswith("/"):
        return A.checked_string(regex_replace(sub[1:-1], s, rep))
    if sub == "":
        return A.checked_string(rep + rep.join(s) + rep if s else rep)
    return A.checked_string(s.replace(sub, rep))


FUNCTIONS: list[tuple] = [
    ("chomp", _chomp, 1, 1, {}),
    ("endswith", _endswith, 2, 2, {}),
    ("format", _format, 1, None, {"null_from": 1}),
    ("formatlist", _formatlist, 1, None, {"null_from": 1}),
    ("indent", _indent, 2, 2, {}),
    ("join", _join, 1, None, {}),
    ("lower", _lower, 1, 1, {}),
    ("regex", _regex, 2, 2, {}),
    ("regexall", _regexall, 2, 2, {}),
    ("replace", _replace, 3, 3, {}),
    ("split", _split, 2, 2, {}),
    ("startswith", _startswith, 2, 2, {}),
    ("strcontains", _strcontains, 2, 2, {}),
    ("strrev", _strrev, 1, 1, {}),
    ("substr", _substr, 3, 3, {}),
    ("title", _title, 1, 1, {}),
    ("trim", _trim, 2, 2, {}),
    ("trimprefix", _trimprefix, 2, 2, {}),
    ("trimspace", _trimspace, 1, 1, {}),
    ("trimsuffix", _trimsuffix, 2, 2, {}),
    ("upper", _upper, 1, 1, {}),
]
