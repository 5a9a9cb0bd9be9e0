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

from .errors import ExprError

PREC = 512                      # mantissa bits, as cty's big.Float
_MAX_EXPONENT = 100_000         # decimal exponent beyond which a literal is refused
_TEXT = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")


class Number(float):
    """A non-integral cty number: the nearest float64, plus the exact 512-bit value."""

    __slots__ = ("exact",)
    exact: Fraction

    def __repr__(self) -> str:
        return to_text(self)


def is_number(v) -> bool:
    t = type(v)
    return t is int or t is float or t is Number


def _round(q: Fraction) -> Fraction:
    """``q`` rounded to a 512-bit mantissa, ties to even."""
    n, d = q.numerator, q.denominator
    if n == 0:
        return q
    sign = -1 if n < 0 else 1
    n = abs(n)
    # e such that 2**(PREC-1) <= n / d / 2**e < 2**PREC
    e = n.bit_length() - d.bit_length() - PREC
    if e >= 0:
        m, r = divmod(n, d << e)
        rd = d << e
    else:
        m, r = divmod(n << -e, d)
        rd = d
    if m >= 1 << PREC:        # the estimate was one too low
        e += 1
        if e >= 0:
            m, r = divmod(n, d << e)
            rd = d << e
        else:
            m, r = divmod(n << -e, d)
            rd = d
    elif m < 1 << (PREC - 1):
        e -= 1
        if e >= 0:
            m, r = divmod(n, d << e)
            rd = d << e
        else:
            m, r = divmod(n << -e, d)
            rd = d
    if 2 * r > rd or (2 * r == rd and m & 1):
        m += 1
    return sign * (Fraction(m << e) if e >= 0 else Fraction(m, 1 << -e))


def make(q) -> int | float:
    """The cty number for an exact value (``int``, ``Fraction``), rounded to 512 bits."""
    if type(q) is int:
        if q.bit_length() <= PREC:
            return q
        q = Fraction(q)
    elif not isinstance(q, Fraction):
        q = exact(q)
        if q is None:
            raise ExprError("number is not finite")
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
    if float(v).is_integer():
        return Fraction(int(v))
    return Fraction(repr(float(v)))


def parse(text: str):
    """A number from its decimal text as cty reads it (``"1."``, ``".5"``, ``"+5"``,
    ``"1e3"``; no spaces, no hex), or None."""
    if not _TEXT.fullmatch(text):
        return None
    mantissa, _, exponent = text.lower().partition("e")
    if exponent and abs(int(exponent)) > _MAX_EXPONENT:
        return None
    if mantissa.endswith("."):
        text = mantissa[:-1] + ("e" + exponent if exponent else "")
    return make(Fraction(text))


def to_text(v) -> str:
    """cty's text of a number: the shortest decimal that reads back to the same
    512-bit value, never in exponent form."""
    q = exact(v)
    if q is None:
        raise ExprError("number is not finite")
    if q.denominator == 1 and abs(q.numerator).bit_length() <= PREC:
        return str(q.numerator)
    digits, point = _shortest(q)
    sign = "-" if q < 0 else ""
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _shortest(q: Fraction) -> tuple[str, int]:
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
    lower = a - (half_ulp / 2 if mantissa == 1 << (PREC - 1) else half_ulp)
    upper = a + half_ulp
    inclusive = mantissa.numerator % 2 == 0
    exp10 = len(str(int(a))) if a >= 1 else -_leading_zeros(a)
    for nd in range(1, 200):
        scale = Fraction(10) ** (nd - exp10)
        m = round(a * scale)
        cand = Fraction(m) / scale
        if (lower < cand < upper) or (inclusive and (cand == lower or cand == upper)):
            text = str(m)
            point = exp10 + len(text) - nd
            return text.rstrip("0") or "0", point
    raise AssertionError("no shortest decimal")


def _leading_zeros(a: Fraction) -> int:
    """For 0 < a < 1: how many zeros follow the decimal point before the first digit."""
    z = 0
    while a * 10 < 1:
        a *= 10
        z += 1
    return z
