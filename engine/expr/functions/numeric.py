"""Numeric functions: abs ceil floor log max min parseint pow signum."""
from __future__ import annotations

import math

from .. import number, ops
from ..errors import ExprError
from . import _args as A


def _finite(x: float):
    if math.isnan(x) or math.isinf(x):
        raise ExprError("the result is not a finite number")
    return ops.normalize_number(x)


def _exact(n, param: str):
    v = A.number(n, param)
    q = number.exact(v)
    if q is None:
        raise ExprError(f'invalid value for "{param}" parameter: the number is not finite')
    return q


def _abs(n):
    return number.make(abs(_exact(n, "num")))


def _ceil(n):
    return math.ceil(_exact(n, "num"))


def _floor(n):
    return math.floor(_exact(n, "num"))


def _log(n, base):
    x, b = A.number(n, "num"), A.number(base, "base")
    try:
        return _finite(math.log(x) / math.log(b))
    except (ValueError, ZeroDivisionError):
        raise ExprError(f"the logarithm of {ops.number_to_string(x)} in base "
                        f"{ops.number_to_string(b)} is not a finite number") from None


def _extreme(sign: int, nums):
    if not nums:
        raise ExprError("must pass at least one number")
    best = None
    for n in nums:
        v = A.number(n, "numbers")
        if best is None or number.compare(v, best) == sign:
            best = v
    return best


def _max(*nums):
    return _extreme(1, nums)


def _min(*nums):
    return _extreme(-1, nums)


_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _parseint(text, base):
    """Go's big.Int SetString with an explicit base: an optional sign, then digits
    of the base (letters case-insensitive up to base 36; a-z then A-Z above)."""
    b = A.whole(base, "base")
    if not 2 <= b <= 62:
        raise A.bad("base", "base must be a whole number between 2 and 62 inclusive")
    if not isinstance(text, str):
        raise A.bad("number", f"string required, got {ops.type_name(text)}")
    s = text
    sign = 1
    if s[:1] in "+-" and s:
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if not s:
        raise A.bad("number", f'cannot parse "{text}" as a base {b} integer')
    value = 0
    for ch in s:
        d = _DIGITS.find(ch.lower() if b <= 36 else ch)
        if d < 0 or d >= b:
            raise A.bad("number", f'cannot parse "{text}" as a base {b} integer')
        value = value * b + d
    return sign * value


def _pow(n, p):
    x, y = A.number(n, "num"), A.number(p, "power")
    try:
        return _finite(math.pow(x, y))
    except (ValueError, OverflowError):
        raise ExprError(f"{ops.number_to_string(x)} to the power of {ops.number_to_string(y)} "
                        "is not a finite number") from None


def _signum(n):
    v = A.number(n, "num")
    if type(v) is not int or not -2**63 <= v < 2**63:
        raise ExprError("value must be a whole number, between -9223372036854775808 "
                        "and 9223372036854775807")
    return (v > 0) - (v < 0)


FUNCTIONS: list[tuple] = [
    ("abs", _abs, 1, 1, {}),
    ("ceil", _ceil, 1, 1, {}),
    ("floor", _floor, 1, 1, {}),
    ("log", _log, 2, 2, {}),
    ("max", _max, 1, None, {}),
    ("min", _min, 1, None, {}),
    ("parseint", _parseint, 2, 2, {}),
    ("pow", _pow, 2, 2, {}),
    ("signum", _signum, 1, 1, {}),
]
