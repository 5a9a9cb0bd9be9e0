"""Encoding functions: base64decode base64encode csvdecode jsondecode jsonencode
urlencode yamldecode yamlencode.

``jsonencode`` writes what Go's encoding/json writes for Terraform: object keys
sorted, ``<`` ``>`` ``&`` U+2028 U+2029 escaped as ``\\u003c``..., control
characters other than ``\\n \\r \\t`` as ``\\u00XX``, other characters as they
are, numbers as Terraform prints them.
"""
from __future__ import annotations

import base64
import binascii
import json
import urllib.parse

from kvmnet.engine import limits

from .. import ops
from ..errors import ExprError
from . import _args as A
from .yamlcodec import yaml_decode, yaml_encode


def _base64encode(s):
    return A.checked_string(base64.b64encode(A.string(s, "str").encode()).decode("ascii"))


def _base64decode(s):
    text = A.string(s, "str")
    try:
        raw = base64.b64decode(text.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise ExprError(f'failed to decode base64 data "{text}"') from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ExprError("the result of decoding the provided string is not valid UTF-8") from None


def _csvdecode(s):
    rows = _csv_records(A.string(s, "str"))
    if not rows:
        raise ExprError("missing header line")
    _, header = rows[0]
    out = []
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise ExprError(f"CSV parse error on line {line}: wrong number of fields")
        out.append(dict(zip(header, row, strict=True)))
    A.checked_items(len(out))
    return A.as_list(out)


def _csv_records(text: str) -> list[tuple[int, list[str]]]:
    """Go's encoding/csv reader (Terraform's): comma-separated, ``"`` quoting
    with ``""`` inside quotes, ``\r\n`` read as ``\n``, empty lines skipped,
    a bare ``"`` in an unquoted field refused. Returns (line, fields) pairs."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    records: list[tuple[int, list[str]]] = []
    i = 0
    while i < len(lines):
        start = i + 1
        line = lines[i]
        i += 1
        if line == "":
            continue
        fields: list[str] = []
        pos = 0
        while True:
            if line.startswith('"', pos):
                buf, pos = [], pos + 1
                while True:
                    q = line.find('"', pos)
                    if q < 0:
                        buf.append(line[pos:])
                        if i >= len(lines):
                            raise ExprError(f'CSV parse error on line {i}: extraneous or missing " '
                                            "in quoted-field")
                        buf.append("\n")
                        line, pos = lines[i], 0
                        i += 1
                        continue
                    buf.append(line[pos:q])
                    nxt = line[q + 1:q + 2]
                    if nxt == '"':
                        buf.append('"')
                        pos = q + 2
                    elif nxt in (",", ""):
                        pos = q + 1
                        break
                    else:
                        raise ExprError(f'CSV parse error on line {i}: extraneous or missing " '
                                        "in quoted-field")
                fields.append("".join(buf))
            else:
                end = line.find(",", pos)
                field = line[pos:] if end < 0 else line[pos:end]
                if '"' in field:
                    raise ExprError(f'CSV parse error on line {i}: bare " in non-quoted-field')
                fields.append(field)
                pos = len(line) if end < 0 else end
            if pos >= len(line):
                break
            pos += 1                      # past the comma
            if pos == len(line):
                fields.append("")
                break
        records.append((start, fields))
    return records


def _jsondecode(s):
    text = A.string(s, "str")
    try:
        value, end = _DECODER.raw_decode(text, _skip_space(text, 0))
    except json.JSONDecodeError as e:
        if e.pos >= len(text.rstrip()):
            raise ExprError("EOF") from None
        raise ExprError(f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except ValueError as e:
        raise ExprError(str(e)) from None
    except RecursionError:
        raise ExprError(f"the JSON is nested more than {limits.MAX_NESTING} levels deep") from None
    if _skip_space(text, end) != len(text):
        raise ExprError("extraneous data after JSON object")
    return A.checked_depth(value, "JSON")


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\r\n":
        i += 1
    return i


def _json_number(text: str):
    n = ops.parse_number(text)
    if n is None:
        raise ValueError(f"number {text} is out of range")
    return n


def _last_wins(pairs):
    return dict(pairs)


_DECODER = json.JSONDecoder(parse_float=_json_number, parse_int=_json_number,
                            object_pairs_hook=_last_wins,
                            parse_constant=lambda c: _json_number(c))


_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
               "\u2029": "\\u2029", '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r",
               "\t": "\\t"}


def json_string(s: str) -> str:
    out = ['"']
    for c in s:
        e = _GO_ESCAPES.get(c)
        if e is not None:
            out.append(e)
        elif c < " ":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def json_encode(v, depth: int = 0) -> str:
    if depth > 64:
        raise ExprError("the value is nested more than 64 levels deep")
    if v is None:
        return "null"
    if type(v) is bool:
        return "true" if v else "false"
    if ops.is_number(v):
        return ops.number_to_string(v)
    if isinstance(v, str):
        return json_string(v)
    if isinstance(v, list):
        return "[" + ",".join(json_encode(x, depth + 1) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(json_string(k) + ":" + json_encode(x, depth + 1)
                              for k, x in ops.sorted_items(v)) + "}"
    raise ExprError(f"cannot encode a {ops.type_name(v)} as JSON")


def _jsonencode(v):
    return A.checked_string(json_encode(v))


def _urlencode(s):
    return urllib.parse.quote_plus(A.string(s, "str"), safe="-_.~")


def _yamldecode(s):
    return yaml_decode(A.string(s, "src"))


def _yamlencode(v):
    return A.checked_string(yaml_encode(v))


FUNCTIONS: list[tuple] = [
    ("base64decode", _base64decode, 1, 1, {}),
    ("base64encode", _base64encode, 1, 1, {}),
    ("csvdecode", _csvdecode, 1, 1, {}),
    ("jsondecode", _jsondecode, 1, 1, {}),
    ("jsonencode", _jsonencode, 1, 1, {"null_from": 0}),
    ("urlencode", _urlencode, 1, 1, {}),
    ("yamldecode", _yamldecode, 1, 1, {}),
    ("yamlencode", _yamlencode, 1, 1, {"null_from": 0}),
]
