"""Terraform's ``format`` function: Go-style verbs as cty implements them.

Verbs: ``%v %#v %t %b %d %o %x %X %e %E %f %g %G %s %q %%``; flags ``- + space 0 #``;
width, ``.precision`` and an explicit argument index ``%[n]d``.
"""
from __future__ import annotations

import json
import re
from fractions import Fraction

from kvmnet.engine import limits
from kvmnet.sdk.values import UNKNOWN, contains_unknown

from . import number, ops
from .errors import ExprError

_VERB = re.compile(r"%([-+ #0]*)(?:\[(\d+)\])?(\d+)?(?:\.(\d*))?([a-zA-Z%])?")


def format_string(spec: str, args: list):
    if any(a is None for a in args):
        return None          # cty: a null argument makes the whole result null
    out = []
    pos = 0
    next_arg = 0
    used = 0
    explicit_used = False
    for m in _VERB.finditer(spec):
        out.append(spec[pos:m.start()])
        pos = m.end()
        flags, explicit, width, precision, verb = m.groups()
        if verb is None:
            raise ExprError(f"unterminated format verb at offset {m.start()}")
        for what, digits, most in (("width", width, limits.MAX_STRING_CHARS),
                                   ("precision", precision, 1000),
                                   ("argument index", explicit, 1000)):
            if digits and (len(digits) > 8 or int(digits) > most):
                raise ExprError(f'{what} of "{m.group()}" at offset {m.start()} is larger than {most}')
        if verb == "%" and m.group() == "%%":
            out.append("%")
            continue
        if explicit is not None:
            explicit_used = True
            next_arg = int(explicit) - 1
        if next_arg >= len(args) or next_arg < 0:
            raise ExprError(f'not enough arguments for "{m.group()}" at offset {m.start()}: '
                            f"need argument {next_arg + 1} but have {len(args)}")
        arg = args[next_arg]
        next_arg += 1
        used = max(used, next_arg)
        if arg is UNKNOWN or contains_unknown(arg):
            return UNKNOWN
        try:
            text = _format_one(verb, flags, arg, precision)
        except ExprError as e:
            raise ExprError(f'unsupported value for "{m.group()}" at offset {m.start()}: '
                            f"{e.message}") from None
        if width is not None:
            w = int(width)
            if "-" in flags:
                text = text.ljust(w)
            elif "0" in flags and verb in "bdoxXeEfgG" and text[:1] in "+- ":
                text = text[0] + text[1:].rjust(w - 1, "0")
            elif "0" in flags and verb in "bdoxXeEfgG":
                text = text.rjust(w, "0")
            else:
                text = text.rjust(w)
        out.append(text)
    out.append(spec[pos:])
    if used < len(args) and not explicit_used:
        raise ExprError(f"too many arguments; only {used} used by format string")
    return "".join(out)


def _sign(flags: str, text: str) -> str:
    if not text.startswith("-"):
        if "+" in flags:
            return "+" + text
        if " " in flags:
            return " " + text
    return text


def _format_one(verb: str, flags: str, arg, precision) -> str:
    if verb == "v":
        if "#" in flags:
            return go_json(arg)
        if arg is None:
            return "null"
        if isinstance(arg, (list, dict)):
            return go_json(arg)
        if ops.is_number(arg):
            return _sign(flags, _go_float(arg, "g", None))
        return ops.to_string(arg)
    if arg is None:
        raise ExprError("null value cannot be formatted")
    if verb == "s":
        text = ops.to_string(arg)
        return text[: int(precision or 0)] if precision is not None else text
    if verb == "q":
        return json.dumps(ops.to_string(arg), ensure_ascii=False)
    if verb == "t":
        return "true" if ops.to_bool(arg) else "false"
    if verb in "bdoxX":
        n = ops.to_int(arg)
        body = format(abs(n), {"b": "b", "d": "d", "o": "o", "x": "x", "X": "X"}[verb])
        if "#" in flags and verb in "xX":
            body = ("0x" if verb == "x" else "0X") + body
        elif "#" in flags and verb == "o":
            body = "0" + body
        elif "#" in flags and verb == "b":
            body = "0b" + body
        return _sign(flags, ("-" if n < 0 else "") + body)
    if verb in "eEfgG":
        n = ops.to_number(arg)
        text = _go_float(n, verb.lower(), None if precision is None else int(precision or 0))
        return _sign(flags, text.upper() if verb in "EG" else text)
    raise ExprError(f'unrecognized format verb "{verb}"')


def _go_float(n, verb: str, precision: int | None) -> str:
    """Go's fmt of a big.Float (what cty formats): ``%e``/``%f`` with precision 6 by
    default, ``%g`` shortest (exponent form below 1e-4 and from 1e+06 on), all rounded
    half to even on the exact value."""
    q = number.exact(n)
    if q is None:
        return "+Inf" if n > 0 else "-Inf"
    sign = "-" if q < 0 else ""
    q = abs(q)
    if verb == "g" and precision is None:
        if q == 0:
            return sign + "0"
        digits, point = number.shortest_digits(q)
        eprec = 6
    elif verb == "g":
        assert precision is not None
        digits, point = _round_digits(q, max(precision, 1))
        digits = digits.rstrip("0") or "0"        # Go's decimal keeps no trailing zeros
        eprec = max(precision, 1)
        if eprec > len(digits) and len(digits) >= point:
            eprec = len(digits)
    elif verb == "e":
        digits, point = _round_digits(q, (6 if precision is None else precision) + 1)
        return sign + _e_form(digits, point, 6 if precision is None else precision)
    else:                                   # f
        places = 6 if precision is None else precision
        scaled = round(q * 10 ** places)
        text = str(scaled).rjust(places + 1, "0")
        return sign + (text[:-places] + "." + text[-places:] if places else text)
    exp = point - 1
    if exp < -4 or exp >= eprec:
        return sign + _e_form(digits, point, len(digits) - 1)
    if point <= 0:
        return sign + "0." + "0" * -point + digits
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return sign + digits[:point] + "." + digits[point:]


def go_number_g10(n) -> str:
    """big.Float's String(): ``%.10g``."""
    return _go_float(n, "g", 10)


def _round_digits(q, n: int) -> tuple[str, int]:
    """``q`` (> 0, or 0) rounded half to even to ``n`` significant digits: (digits, point)."""
    if q == 0:
        return "0" * n, 1
    point = number.decimal_point(q)
    scaled = round(q * Fraction(10) ** (n - point))
    if len(str(scaled)) > n:               # 9.99 → 10.0
        point += 1
        scaled = round(q * Fraction(10) ** (n - point))
    return str(scaled), point


def _e_form(digits: str, point: int, places: int) -> str:
    digits = digits.ljust(places + 1, "0")
    exp = point - 1 if digits.strip("0") else 0
    mant = digits[0] + ("." + digits[1:places + 1] if places else "")
    return f"{mant}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def go_json(v) -> str:
    """JSON as Go's encoding/json writes cty values (``%#v``, ``%v`` of collections):
    compact, object keys sorted, numbers in cty's text, ``<``, ``>``, ``&``, U+2028 and
    U+2029 escaped."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if ops.is_number(v):
        return number.to_text(v)
    if type(v) is str:
        return _go_json_string(v)
    if isinstance(v, dict):
        return "{" + ",".join(f"{_go_json_string(k)}:{go_json(x)}" for k, x in sorted(v.items())) + "}"
    if isinstance(v, list):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    raise ExprError(f"cannot encode {ops.type_name(v)} as JSON")


def _go_json_string(s: str) -> str:
    out = ['"']
    for c in s:
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif c in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[c])
        elif c < " " or c in "<>&\u2028\u2029":
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
