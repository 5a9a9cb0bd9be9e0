"""Value helpers shared by operators, functions and type conversion.

Values are plain Python: ``str``; numbers (whole numbers are always ``int``, others
a :class:`number.Number`, a ``float`` carrying cty's exact 512-bit value); ``bool``;
``None`` (null); a plain ``list`` is a tuple, :class:`ListValue` a list,
:class:`SetValue` a set; a plain ``dict`` is an object, :class:`MapValue` a map;
and ``UNKNOWN``.
"""
from __future__ import annotations

from kvmnet.engine import limits
from kvmnet.sdk.values import UNKNOWN

from . import number
from .errors import ExprError

NUMBER_TYPES = (int, float)         # number.Number is a float


class SetValue(list):
    """A set (what ``toset`` returns): a sorted, de-duplicated list.

    It is a ``list`` so that JSON encoding, jsonschema ``array`` checks and
    iteration work unchanged; ``isinstance(v, SetValue)`` tells a set from a list
    (``for_each`` accepts a set of strings but not a list). Strings sort
    lexically and numbers numerically, as Terraform orders set elements.
    ``elem_type`` (see :func:`element_type`) keeps an empty set's element type.
    """

    __slots__ = ("elem_type",)

    def __repr__(self) -> str:
        return f"toset({list.__repr__(self)})"


class ListValue(list):
    """A list (``tolist``, a ``list(...)``-typed variable, a conversion to a list
    type), as opposed to a tuple, which is a plain ``list`` (``[1, "a"]``, ``[for
    ...]``). Terraform tells them apart: ``tolist([1]) == [1]`` is false."""

    __slots__ = ("elem_type",)


class MapValue(dict):
    """A map (``tomap``, a ``map(...)``-typed variable), as opposed to an object,
    which is a plain ``dict`` (``{a = 1}``, ``{for ...}``)."""

    __slots__ = ("elem_type",)


class TypeValue(str):
    """What the console-only ``type(...)`` returns: the type's text, which the console
    prints as it is. Terraform's console prints it only as the whole result; a line
    that builds anything else from it (``[type(a)]``, ``type(a) == type(b)``) is
    refused there (see :mod:`kvmnet.engine.console`); functions refuse it as an
    argument of the wrong type. A ``str`` so no operation can trip on it."""

    __slots__ = ()


def element_type(v):
    """The element type an empty list, set or map was converted to (a
    :class:`~kvmnet.engine.expr.types.Type`), or None: an empty ``list(bool)`` has no
    element to tell it from an empty ``list(string)``, and Terraform's conditional
    unifies the two results by type."""
    return getattr(v, "elem_type", None) if not v else None


def make_set(items) -> SetValue:
    out: list = []
    for item in items:
        if not any(equals(item, seen) for seen in out):
            out.append(item)
    out.sort(key=_set_sort_key)
    return SetValue(out)


def _set_sort_key(v):
    if isinstance(v, str):
        return (1, v)
    if isinstance(v, bool):
        return (2, v)
    if isinstance(v, NUMBER_TYPES):
        q = number.exact(v)
        return (0, q if q is not None else v)
    if v is None:
        return (4, "")
    return (3, set_hash_text(v))


def set_hash_text(v) -> str:
    """The text cty hashes a value by; sets of lists, tuples, maps and objects are
    ordered by it (``toset([["b"], ["a"], []])`` is ``[["a"], ["b"], []]``)."""
    if v is None:
        return "~"
    if v is UNKNOWN:
        return "?"
    t = type(v)
    if t is bool:
        return "T" if v else "F"
    if t is str:
        return _go_quote(v)
    if is_number(v):
        from .formatting import go_number_g10
        return go_number_g10(v)
    if t is MapValue:
        return "{" + "".join(f"{_go_quote(k)}:{set_hash_text(x)};" for k, x in sorted(v.items())) + "}"
    if t is ListValue or t is SetValue:
        return "[" + "".join(set_hash_text(x) + ";" for x in v) + "]"
    if isinstance(v, dict):
        return "<" + "".join(set_hash_text(x) + ";" for _, x in sorted(v.items())) + ">"
    return "<" + "".join(set_hash_text(x) + ";" for x in v) + ">"


def _go_quote(s: str) -> str:
    """Go's %q of a string (printable characters kept, the rest escaped)."""
    out = ['"']
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c.isprintable():
            out.append(c)
        elif c in "\n\t\r":
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}[c])
        elif ord(c) < 0x80:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) < 0x10000:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    out.append('"')
    return "".join(out)


is_number = number.is_number


def type_name(v) -> str:
    """The Terraform-ish name of a value's type, for error messages."""
    if v is None:
        return "null"
    if v is UNKNOWN:
        return "unknown value"
    t = type(v)
    if t is bool:
        return "bool"
    if t is int or t is float or t is number.Number:
        return "number"
    if t is str:
        return "string"
    if t is SetValue:
        return "set"
    if t is ListValue:
        return "list"
    if t is MapValue:
        return "map"
    if t is TypeValue:
        return "type"
    if isinstance(v, list):
        return "tuple"
    if isinstance(v, dict):
        return "object"
    return t.__name__


def normalize_number(n):
    """A cty number (see :mod:`.number`): whole numbers become ints (``4/2`` is 2),
    others a 512-bit :class:`number.Number`; an infinity stays."""
    t = type(n)
    if t is int or t is number.Number:
        return n
    if n != n or n in (float("inf"), float("-inf")):
        return n
    return number.make(n)


def parse_number(text: str):
    """A decimal number from text as Terraform converts a string (no spaces, no
    hex), or None when the text is not one (or has too many digits)."""
    if len(text) > limits.MAX_NUMBER_DIGITS:
        return None
    return number.parse(text)


number_to_string = number.to_text


def to_string(v, what: str = "") -> str:
    """Terraform's conversion to string (numbers and bools convert)."""
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "true" if v else "false"
    if t is int or t is float or t is number.Number:
        return number_to_string(v)
    if v is None:
        raise ExprError(f"{what}a string is required, got null")
    raise ExprError(f"{what}a string is required, got {type_name(v)}")


def to_number(v, what: str = ""):
    t = type(v)
    if t is int or t is float or t is number.Number:
        return v
    if t is str:
        n = parse_number(v)
        if n is not None:
            return n
        raise ExprError(f'{what}a number is required, got "{v}"')
    if v is None:
        raise ExprError(f"{what}a number is required, got null")
    raise ExprError(f"{what}a number is required, got {type_name(v)}")


def to_int(v, what: str = "") -> int:
    n = to_number(v, what)
    if n is number.NEG_ZERO:
        return 0
    if type(n) is not int:
        raise ExprError(f"{what}a whole number is required, got {number_to_string(n)}")
    return n


def to_bool(v, what: str = "") -> bool:
    t = type(v)
    if t is bool:
        return v
    if t is str:
        if v == "true" or v == "1":
            return True
        if v == "false" or v == "0":
            return False
        raise ExprError(f'{what}a bool is required, got "{v}"')
    if v is None:
        raise ExprError(f"{what}a bool is required, got null")
    raise ExprError(f"{what}a bool is required, got {type_name(v)}")


def equals(a, b) -> bool:
    """HCL ``==`` on known values: no conversion between types, 1 == 1.0."""
    if a is None or b is None:
        return a is b
    ta, tb = type(a), type(b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if is_number(a) and is_number(b):
        if ta is int and tb is int:
            return a == b
        qa, qb = number.exact(a), number.exact(b)
        return qa == qb if qa is not None and qb is not None else a == b
    if ta is str or tb is str:
        return ta is tb and a == b
    if isinstance(a, list) and isinstance(b, list):
        # a list, a tuple and a set are never equal, even with the same elements
        if _kind(ta) is not _kind(tb) or len(a) != len(b):
            return False
        return all(equals(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        if (ta is MapValue) != (tb is MapValue) or a.keys() != b.keys():
            return False
        return all(equals(a[k], b[k]) for k in a)
    return False


def _kind(t: type) -> type:
    return t if t is SetValue or t is ListValue else list


def unify_primitives(values: list) -> list:
    """Give list elements one type as Terraform's tolist/toset/tomap do.

    Mixed strings, numbers and bools all become strings; otherwise unchanged.
    """
    kinds = set()
    for v in values:
        if v is None or v is UNKNOWN:
            continue
        t = type(v)
        if t is bool:
            kinds.add("bool")
        elif t is int or t is float or t is number.Number:
            kinds.add("number")
        elif t is str:
            kinds.add("string")
        else:
            kinds.add("complex")
    if len(kinds) > 1:
        if "complex" in kinds:
            raise ExprError("all elements must have the same type")
        return [v if v is None or v is UNKNOWN else to_string(v) for v in values]
    return list(values)


def sorted_items(m: dict):
    """Map entries in Terraform's order: keys sorted lexically."""
    return sorted(m.items(), key=lambda kv: kv[0])


# -- strings as Terraform counts and cases them -------------------------------------
_GRAPHEME = None


def graphemes(s: str) -> list[str]:
    """The user-perceived characters (Unicode grapheme clusters) of ``s``: what
    Terraform's ``length``, ``substr`` and ``strrev`` count and keep together."""
    global _GRAPHEME
    if s.isascii() and "\r\n" not in s:
        return list(s)
    if _GRAPHEME is None:
        import regex
        _GRAPHEME = regex.compile(r"\X")
    return _GRAPHEME.findall(s)


def string_length(s: str) -> int:
    return len(s) if s.isascii() and "\r\n" not in s else len(graphemes(s))


def _simple_case(c: str, mapped: str, lower: bool) -> str:
    if len(mapped) == 1:
        return mapped
    # Go maps one character to one character (Unicode's simple case mapping): a
    # character whose full mapping is longer keeps itself (ß, ﬁ), except İ → i and
    # the Greek letters with ypogegrammeni, whose simple upper case is their title
    # case (ᾳ → ᾼ)
    if lower:
        return "i" if c == "\u0130" else c
    title = c.title()
    return title if len(title) == 1 else c


def upper(s: str) -> str:
    """Go's strings.ToUpper, as Terraform's ``upper``: character by character."""
    if s.isascii():
        return s.upper()
    return "".join(_simple_case(c, c.upper(), False) for c in s)


def lower(s: str) -> str:
    """Go's strings.ToLower, as Terraform's ``lower``: character by character (no
    final sigma)."""
    if s.isascii():
        return s.lower()
    return "".join(_simple_case(c, c.lower(), True) for c in s)
