"""``yamldecode`` and ``yamlencode`` as Terraform's go-cty-yaml does them.

Decoding: PyYAML composes the node tree (anchors, aliases, flow and block
styles); the scalars are then resolved by go-yaml's YAML 1.1 table, not
PyYAML's (``y``/``on`` are true, ``1e3`` and ``010`` are numbers, dates become
RFC 3339 strings, ``!!binary`` stays its base64 text).

Encoding: the layout go-yaml's emitter produces: keys sorted and double-quoted,
strings double-quoted (with a line break at a space past column 80) or, when they
hold line breaks, literal blocks (``|``, ``|-``, ``|+``); sequences inside a
mapping are not indented; plain scalars at top level end with ``...``.
"""
from __future__ import annotations

import re

import yaml

from kvmnet.engine import limits

from .. import ops
from ..errors import ExprError

_TAG = "tag:yaml.org,2002:"
_NULLS = {"", "~", "null", "Null", "NULL"}
_TRUE = {"y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"}
_FALSE = {"n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"}
_INT = re.compile(r"[-+]?[0-9][0-9_]*")
_HEX = re.compile(r"([-+]?)0x([0-9a-fA-F_]+)")
_OCT = re.compile(r"([-+]?)0o([0-7_]+)")
_KNOWN_TAGS = {_TAG + k for k in ("str", "int", "float", "bool", "null", "timestamp", "binary",
                                  "map", "seq")}
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?")
_SPECIAL_FLOAT = re.compile(r"[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)")
# go-yaml's timestamp layouts: date only; date [Tt] time with Z or ±hh:mm; date,
# one space, time without a zone (UTC)
_DATE = re.compile(r"(\d{4})-(\d\d?)-(\d\d?)"
                   r"(?:[Tt](\d\d?):(\d\d?):(\d\d?)(\.\d+)?(Z|[-+]\d\d:\d\d)"
                   r"|[ ](\d\d?):(\d\d?):(\d\d?)(\.\d+)?)?")


class _Loader(yaml.SafeLoader):
    """SafeLoader's composer only: an untagged plain scalar gets the tag
    ``_PLAIN`` and is resolved by :func:`_plain`, not by PyYAML."""

    def resolve(self, kind, value, implicit):
        if kind is yaml.ScalarNode:
            return _PLAIN if implicit[0] else _TAG + "str"
        return super().resolve(kind, value, implicit)


_PLAIN = "?plain"


def yaml_decode(text: str):
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.composer.ComposerError as e:
        raise ExprError(f"{_where(e)}unexpected extra content after value") from None
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e)
        raise ExprError(f"{_where(e)}{problem}") from None
    except RecursionError:
        raise ExprError(f"the YAML is nested more than {limits.MAX_NESTING} levels deep") from None
    if node is None:
        raise ExprError("on line 1, column 1: missing start of document")
    return _value(node, 0)


def _where(e) -> str:
    mark = getattr(e, "problem_mark", None)
    if mark is None:
        return ""
    return f"on line {mark.line + 1}, column {mark.column + 1}: "


def _value(node, depth: int):
    if depth > limits.MAX_NESTING:
        raise ExprError(f"the YAML is nested more than {limits.MAX_NESTING} levels deep")
    if node.tag not in _KNOWN_TAGS and node.tag != _PLAIN:
        raise ExprError(f'on line {node.start_mark.line + 1}: unsupported tag "{node.tag}"')
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        merged: dict = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.tag == _PLAIN and k.value == "<<":
                merged.update(_merge_source(v, depth))
                continue
            key = _value(k, depth + 1)
            if isinstance(key, (list, dict)) or key is None:
                raise ExprError(f"on line {k.start_mark.line + 1}: a mapping key must be a string")
            out[ops.to_string(key)] = _value(v, depth + 1)
        return {**merged, **out} if merged else out
    if isinstance(node, yaml.SequenceNode):
        return [_value(v, depth + 1) for v in node.value]
    return _scalar(node)


def _merge_source(node, depth: int) -> dict:
    """The entries a ``<<`` merge key brings: a mapping, or a sequence of them
    (earlier ones win); explicit keys of the mapping win over all of them."""
    value = _value(node, depth + 1)
    sources = value if isinstance(value, list) else [value]
    out: dict = {}
    for src in reversed(sources):
        if not isinstance(src, dict):
            raise ExprError(f"on line {node.start_mark.line + 1}: a merge key needs a mapping "
                            "or a sequence of mappings")
        out.update(src)
    return out


def _scalar(node):
    text, tag = node.value, node.tag
    if tag == _PLAIN:
        return _plain(text)
    if node.style is not None:            # quoted or block scalars are strings, whatever the tag
        return text
    kind = tag[len(_TAG):] if tag.startswith(_TAG) else ""
    if kind not in ("int", "float", "bool", "null", "timestamp"):
        return text                     # strings, !!binary (kept as its text), local tags
    value = _plain(text)
    ok = {"int": ops.is_number(value) and float(value).is_integer(), "float": ops.is_number(value),
          "bool": type(value) is bool, "null": value is None,
          "timestamp": bool(_DATE.fullmatch(text))}[kind]
    if not ok:
        raise ExprError(f'on line {node.start_mark.line + 1}: cannot decode "{text}" as a !!{kind}')
    return value


def _plain(text: str):
    if text in _NULLS:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if _SPECIAL_FLOAT.fullmatch(text):
        raise ExprError(f'"{text}" is not a finite number')
    for rx, base in ((_HEX, 16), (_OCT, 8)):
        m = rx.fullmatch(text)
        if m:
            n = int(m.group(2).replace("_", ""), base)
            return -n if m.group(1) == "-" else n
    if _INT.fullmatch(text) or _FLOAT.fullmatch(text):
        n = ops.parse_number(text.replace("_", ""))
        if n is not None:
            return n
    m = _DATE.fullmatch(text)
    if m:
        return _timestamp(m)
    return text


def _timestamp(m) -> str:
    """RFC 3339 without fractional seconds, as Terraform formats a YAML timestamp."""
    y, mo, d, h, mi, s, _, tz, h2, mi2, s2, _ = m.groups()
    if h is None:
        h, mi, s = h2, mi2, s2
    out = f"{int(y):04d}-{int(mo):02d}-{int(d):02d}T{int(h or 0):02d}:{int(mi or 0):02d}:{int(s or 0):02d}"
    if tz in (None, "Z", "+00:00", "-00:00"):
        return out + "Z"
    return out + tz


# ---- encoding ---------------------------------------------------------------

_WIDTH = 80
_ESCAPES = {"\0": "0", "\a": "a", "\b": "b", "\t": "t", "\n": "n", "\v": "v", "\f": "f",
            "\r": "r", "\x1b": "e", '"': '"', "\\": "\\", "\x85": "N", "\xa0": "_",
            "\u2028": "L", "\u2029": "P"}


def _printable(c: str) -> bool:
    o = ord(c)
    return (o == 0x0A or 0x20 <= o <= 0x7E or o == 0x85 or 0xA0 <= o <= 0xD7FF
            or (0xE000 <= o <= 0xFFFD and o != 0xFEFF) or 0x10000 <= o <= 0x10FFFF)


def _escape(c: str) -> str:
    if c in _ESCAPES and (c in '"\\' or not _printable(c) or c in "\n\r\x85\u2028\u2029"):
        return "\\" + _ESCAPES[c]
    o = ord(c)
    if o <= 0xFF:
        return f"\\x{o:02X}"
    if o <= 0xFFFF:
        return f"\\u{o:04X}"
    return f"\\U{o:08X}"


def _double_quoted(s: str, column: int, indent: int) -> str:
    out = ['"']
    column += 1
    spaces = False
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if (not _printable(c) or c == "\ufeff" or c in "\n\r\x85\u2028\u2029" or c in '"\\'):
            e = _escape(c)
            out.append(e)
            column += len(e)
            spaces = False
        elif c == " ":
            if not spaces and column > _WIDTH and 0 < i < n - 1:
                out.append("\n" + " " * indent)
                column = indent
                if s[i + 1] == " ":
                    out.append("\\")
                    column += 1
            else:
                out.append(c)
                column += 1
            spaces = True
        else:
            out.append(c)
            column += 1
            spaces = False
        i += 1
    out.append('"')
    return "".join(out)


def _literal_allowed(s: str) -> bool:
    if "\n" not in s:
        return False
    if s.endswith((" ", "\t")):
        return False
    for i, c in enumerate(s):
        if not _printable(c) or c == "\ufeff":
            return False
        if c == " " and i + 1 < len(s) and s[i + 1] in "\n\r\x85\u2028\u2029":
            return False
    return True


def _literal(s: str, indent: int) -> str:
    head = "|"
    if s[:1] in (" ", "\n"):
        head += "2"
    if not s.endswith("\n"):
        head += "-"
    elif s.endswith("\n\n") or s == "\n":
        head += "+"
    lines = s[:-1].split("\n") if s.endswith("\n") else s.split("\n")
    body = "".join("\n" + (" " * indent + ln if ln else "") for ln in lines)
    return head + body


def _string(s: str, column: int, indent: int, key: bool = False) -> str:
    if not key and _literal_allowed(s):
        return _literal(s, indent)
    return _double_quoted(s, column, indent)


def _scalar_text(v, column: int, indent: int) -> str:
    if v is None:
        return "null"
    if type(v) is bool:
        return "true" if v else "false"
    if ops.is_number(v):
        return ops.number_to_string(v)
    return _string(v, column, indent)


def _is_block(v) -> bool:
    return isinstance(v, (list, dict)) and len(v) > 0


def _emit(v, indent: int, column: int, out: list) -> None:
    """Write ``v`` whose first line starts at ``column``; its block entries (when
    it is a mapping or sequence) at ``indent``."""
    if isinstance(v, dict) and v:
        first = True
        for key, item in ops.sorted_items(v):
            if not first:
                out.append("\n" + " " * indent)
                column = indent
            first = False
            if _literal_allowed(key):     # a key with line breaks: "? |-" ... ":"
                out.append("? " + _literal(key, indent + 2) + "\n" + " " * indent + ":")
                column = indent + 1
            else:
                k = _double_quoted(key, column, indent + 2) + ":"
                out.append(k)
                column += len(k)
            if isinstance(item, dict) and item:
                out.append("\n" + " " * (indent + 2))
                _emit(item, indent + 2, indent + 2, out)
            elif isinstance(item, list) and item:
                out.append("\n" + " " * indent)
                _emit(item, indent, indent, out)
            else:
                out.append(" ")
                _emit(item, indent, column + 1, out)
        return
    if isinstance(v, list) and v:
        first = True
        for item in v:
            if not first:
                out.append("\n" + " " * indent)
            first = False
            out.append("- ")
            _emit(item, indent + 2 if _is_block(item) else indent, indent + 2, out)
        return
    if isinstance(v, dict):
        out.append("{}")
    elif isinstance(v, list):
        out.append("[]")
    else:
        out.append(_scalar_text(v, column, indent + 2))


def yaml_encode(v) -> str:
    out: list[str] = []
    _emit(v, 0, 0, out)
    text = "".join(out) + "\n"
    if not _is_block(v) and not isinstance(v, (str, list, dict)):
        text += "...\n"
    return text
