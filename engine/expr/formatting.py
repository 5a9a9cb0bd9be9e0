"""Terraform's ``format`` function: Go-style verbs as cty implements them.

Verbs: ``%v %#v %t %b %d %o %x %X %e %E %f %g %G %s %q %%``; flags ``- + space 0 #``;
width, ``.precision`` and an explicit argument index ``%[n]d``.
"""
from __future__ import annotations

import json
import re

from kvmnet.engine import limits
from kvmnet.sdk.values import UNKNOWN, contains_unknown

from . import ops
from .errors import ExprError

_VERB = re.compile(r"%([-+ #0]*)(?:\[(\d+)\])?(\d+)?(?:\.(\d*))?([a-zA-Z%])?")


def format_string(spec: str, args: list):
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
            return json.dumps(arg, separators=(",", ":"), ensure_ascii=False)
        if arg is None:
            return "null"
        if isinstance(arg, (list, dict)):
            return json.dumps(arg, separators=(",", ":"), ensure_ascii=False)
        if ops.is_number(arg):
            return _sign(flags, ops.to_string(arg))
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
        p = "" if precision is None else "." + (precision or "0")
        if verb in "eE" and precision is None:
            p = ".6"
        if verb in "f" and precision is None:
            p = ".6"
        if verb in "gG" and precision is None:
            return _sign(flags, ops.number_to_string(n) if verb == "g" else ops.number_to_string(n).upper())
        return _sign(flags, format(float(n), p + verb))
    raise ExprError(f'unrecognized format verb "{verb}"')
