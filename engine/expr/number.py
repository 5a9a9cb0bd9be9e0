"""Terraform's number type: cty's 512-bit binary floating point, in Python.

cty keeps every number as a Go ``big.Float`` with a 512-bit mantissa, rounded to
nearest-even after each operation, and prints it as the shortest decimal that reads
back to the same 512-bit value (``Text('f', -1)``). So ``0.1 + 0.2 == 0.3`` holds,
``1/3`` prints with 155 digits and integers are exact up to 512 bits.

Representation (what every value-handling function sees):

- a whole number is a Python ``int`` (rounded to 512 significant bits when larger);
- any other finite number is a :class:`Number`: a ``float`` subclass (so JSON
  encoding, ``isinstance(v, float)`` and float arithmetic keep working) whose
  ``exact`` slot holds the 512-bit value as a ``Fraction``;
- an infinity (``1/0``) is the plain float ``inf``; it may be compared, but
  a value holding one cannot be stored (kvmnet refuses it, as OpenTofu does).

Function code: take numbers with :func:`exact` (a ``Fraction``, or ``None`` for an
infinity) and return :func:`make` of the result; a plain Python ``float`` is read as
its shortest decimal (``0.1`` is one tenth), so returning one is fine where
float64 precision is enough. Print with :func:`to_text`.
"""
from __future__ import annotations

import math
import re
from fractions import Fraction

from kvmnet.engine import limits

from .errors import ExprError

PREC = 512                      # mantissa bits, as cty's big.Float
_TEXT = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


class Number(float):
    """A non-integral cty number: the nearest float64, plus the exact 512-bit value."""

    __slots__ = ("exact",)
    exact: Fraction

    def __repr__(self) -> str:
        return to_text(self)


NEG_ZERO = Number(-0.0)
NEG_ZERO.exact = Fraction(0)      # cty keeps the sign of a zero: tostring(0 * -1) is "-0"


def _signed_zero(negative: bool):
    return NEG_ZERO if negative else 0


def _negative(v) -> bool:
    """The sign of a number, a zero's included."""
    return math.copysign(1.0, float(v)) < 0 if type(v) is Number else v < 0


def is_number(v) -> bool:
    t = type(v)
    return t is int or t is float or t is Number


def _scaled_divmod(n: int, d: int, e: int) -> tuple[int, int, int]:
    """Quotient, remainder and divisor of ``n / (d * 2**e)`` in whole numbers: the
    power of two shifts the divisor up or, for a negative ``e``, the dividend up."""
    if e >= 0:
        rd = d << e
        m, r = divmod(n, rd)
        return m, r, rd
    m, r = divmod(n << -e, d)
    return m, r, d


def _round(q: Fraction) -> Fraction:
    """``q`` rounded to a 512-bit mantissa, ties to even."""
    n, d = q.numerator, q.denominator
    if n == 0:
        return q
    sign = -1 if n < 0 else 1
    n = abs(n)
    # e such that 2**(PREC-1) <= n / d / 2**e < 2**PREC
    e = n.bit_length() - d.bit_length() - PREC
    m, r, rd = _scaled_divmod(n, d, e)
    if m >= 1 << PREC:        # the estimate was one too low
        e += 1
        m, r, rd = _scaled_divmod(n, d, e)
    elif m < 1 << (PREC - 1):
        e -= 1
        m, r, rd = _scaled_divmod(n, d, e)
    if 2 * r > rd or (2 * r == rd and m & 1):
        m += 1
    return sign * (Fraction(m << e) if e >= 0 else Fraction(m, 1 << -e))


_MAX_BITS = int(limits.MAX_NUMBER_EXPONENT * math.log2(10)) + 1


def make(q) -> int | float:
    """The cty number for an exact value (``int``, ``Fraction``), rounded to 512 bits.
    kvmnet's limit: beyond 10**limits.MAX_NUMBER_EXPONENT a result is out of range."""
    if type(q) is int:
        if q.bit_length() <= PREC:
            return q
        if q.bit_length() > _MAX_BITS:
            raise ExprError("arithmetic result is out of range")
        q = Fraction(q)
    elif not isinstance(q, Fraction):
        q = exact(q)
        if q is None:
            raise ExprError("number is not finite")
    if q.numerator.bit_length() - q.denominator.bit_length() > _MAX_BITS:
        raise ExprError("arithmetic result is out of range")
    r = _round(q)
    if r.denominator == 1:
        return int(r)
    out = Number(float(r))
    out.exact = r
    return out


def exact(v) -> Fraction | None:
    """The exact value of a number; ``None`` for an infinity."""
    t = type(v)
    if t is int:
        return Fraction(v)
    if t is Number:
        return v.exact
    if t is bool:
        raise TypeError("a bool is not a number")
    if math.isinf(v) or math.isnan(v):
        return None
    return Fraction(repr(float(v)))     # 1e+300 is ten to the 300th, not the nearest float


def parse(text: str):
    """A number from its decimal text as cty reads it (``"1."``, ``".5"``, ``"+5"``,
    ``"1e3"``; no spaces, no hex), or None. kvmnet's limit: a value of more than
    ``limits.MAX_NUMBER_EXPONENT`` decimal places either side of the point is out of range."""
    if not _TEXT.fullmatch(text):
        return None
    mantissa, _, exponent = text.lower().partition("e")
    whole, _, frac = mantissa.lstrip("+-").partition(".")
    whole = whole.lstrip("0")
    if whole or frac.strip("0"):
        magnitude = len(whole) if whole else -(len(frac) - len(frac.lstrip("0")))
        if abs(magnitude + int(exponent or 0)) > limits.MAX_NUMBER_EXPONENT:
            return None
    if mantissa.endswith("."):
        text = mantissa[:-1] + ("e" + exponent if exponent else "")
    q = Fraction(text)
    return NEG_ZERO if q == 0 and text.startswith("-") else make(q)


def to_text(v) -> str:
    """cty's text of a number: the shortest decimal that reads back to the same
    512-bit value, never in exponent form."""
    q = exact(v)
    if q is None:
        return "+Inf" if v > 0 else "-Inf"        # as Go prints big.Float's infinities
    if q == 0:
        return "-0" if v is NEG_ZERO else "0"
    if q.denominator == 1 and abs(q.numerator).bit_length() <= PREC:
        return str(q.numerator)
    digits, point = shortest_digits(q)
    sign = "-" if q < 0 else ""
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def shortest_digits(q: Fraction) -> tuple[str, int]:
    """Digits and decimal point position of the shortest decimal inside the 512-bit
    rounding interval of ``q`` (q already 512-bit; value 0.DIGITS × 10**point)."""
    a = abs(q)
    n, d = a.numerator, a.denominator
    e = n.bit_length() - d.bit_length() - PREC
    while Fraction(n, d) >= Fraction(2) ** (e + PREC):
        e += 1
    while Fraction(n, d) < Fraction(2) ** (e + PREC - 1):
        e -= 1
    half_ulp = Fraction(2) ** e / 2
    mantissa = a / Fraction(2) ** e
    lower = a - half_ulp         # Go's big.Float: the same half ulp below a power of two
    upper = a + half_ulp
    inclusive = mantissa.numerator % 2 == 0
    exp10 = decimal_point(a)
    for nd in range(1, 200):
        scale = Fraction(10) ** (nd - exp10)
        m = round(a * scale)
        cand = Fraction(m) / scale
        if (lower < cand < upper) or (inclusive and (cand == lower or cand == upper)):
            text = str(m)
            point = exp10 + len(text) - nd
            return text.rstrip("0") or "0", point
    raise AssertionError("no shortest decimal")


def decimal_point(a: Fraction) -> int:
    """For a > 0: p such that 10**(p-1) <= a < 10**p (a = 0.DIGITS × 10**p)."""
    if a >= 1:
        return len(str(int(a)))
    # estimate from the bit lengths, then correct
    p = int((a.numerator.bit_length() - a.denominator.bit_length()) * 0.30103)
    while a < Fraction(10) ** (p - 1):
        p -= 1
    while a >= Fraction(10) ** p:
        p += 1
    return p


# -- arithmetic, as cty's operators do it -------------------------------------------
def _inf_result(r: float):
    if r != r:
        raise ExprError("can't subtract infinity from itself or multiply infinity by zero")
    return r


def add(a, b):
    if type(a) is int and type(b) is int:
        return make(a + b)
    qa, qb = exact(a), exact(b)
    if qa is None or qb is None:
        return _inf_result(float(a) + float(b))
    r = qa + qb
    return _signed_zero(a is NEG_ZERO and b is NEG_ZERO) if r == 0 else make(r)


def sub(a, b):
    if type(a) is int and type(b) is int:
        return make(a - b)
    qa, qb = exact(a), exact(b)
    if qa is None or qb is None:
        return _inf_result(float(a) - float(b))
    r = qa - qb
    return _signed_zero(a is NEG_ZERO and qb == 0 and b is not NEG_ZERO) if r == 0 else make(r)


def mul(a, b):
    if type(a) is int and type(b) is int:
        r = a * b
        return _signed_zero(a < 0 or b < 0) if r == 0 else make(r)
    qa, qb = exact(a), exact(b)
    if qa is None or qb is None:
        return _inf_result(float(a) * float(b))
    r = qa * qb
    return _signed_zero(_negative(a) != _negative(b)) if r == 0 else make(r)


def div(a, b):
    """``a / b``; dividing by zero gives an infinity (0/0 is an error), as in cty."""
    qa, qb = exact(a), exact(b)
    if qb == 0:
        if qa == 0 or qa is None:
            raise ExprError("can't divide zero by zero or infinity by infinity")
        return math.inf if qa > 0 else -math.inf
    if qa is None or qb is None:
        if qa is None and qb is None:
            raise ExprError("can't divide zero by zero or infinity by infinity")
        return float(a) / float(b) if qa is None else _signed_zero(_negative(a) != _negative(b))
    if qa == 0:
        return _signed_zero(_negative(a) != _negative(b))
    return make(qa / qb)


def mod(a, b):
    """``a % b`` with the sign of ``a`` (truncated division); ``a % 0`` is ``a``, as in cty."""
    qa, qb = exact(a), exact(b)
    if qa is None or qb is None:
        if qa is None:
            raise ExprError("can't use modulo with an infinite dividend")
        return a
    if qb == 0:
        return a
    # as cty computes it: a - b * trunc(a / b), each step rounded to 512 bits
    t = _round(qa / qb)
    whole = math.floor(t) if t >= 0 else math.ceil(t)
    r = qa - _round(qb * whole)
    return _signed_zero(a is NEG_ZERO) if r == 0 else make(r)


def neg(a):
    if type(a) is int:
        return -a if a else NEG_ZERO
    if a is NEG_ZERO:
        return 0
    q = exact(a)
    return -a if q is None else make(-q)


def compare(a, b) -> int:
    """-1, 0 or 1 as ``a`` is below, equal to or above ``b``."""
    if type(a) is int and type(b) is int:
        return (a > b) - (a < b)
    qa, qb = exact(a), exact(b)
    if qa is None or qb is None:
        fa, fb = float(a), float(b)
        return (fa > fb) - (fa < fb)
    return (qa > qb) - (qa < qb)


def check_storable(v):
    """``v`` unchanged, or an error when it holds an infinity: no JSON can carry one
    (OpenTofu refuses to save it too)."""
    t = type(v)
    if t is float and (v != v or v in (math.inf, -math.inf)):
        raise ExprError("the value is an infinite number, which cannot be stored")
    if t is list or t is dict or isinstance(v, (list, dict)):
        for x in (v.values() if isinstance(v, dict) else v):
            check_storable(x)
    return v
