"""Kubernetes resource quantities for CEL: parsing as resource.ParseQuantity does, exact arithmetic.

A quantity is `<sign><digits>[.<digits>]<suffix>` with a binary-SI suffix (Ki, Mi, Gi, Ti, Pi, Ei), a
decimal-SI one (n, u, m, "", k, M, G, T, P, E) or a decimal exponent (e3, E-2). Kubernetes keeps the value
exactly, rounded up to the nano unit (1e-9) where it has more digits. Values are Decimals here, with a
context wide enough to be exact.
"""

from __future__ import annotations

import re
from decimal import ROUND_UP, Context, Decimal, localcontext

_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_SYNTAX = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?([a-zA-Z]*|[eE][+-]?[0-9]+)")
_NANO = Decimal("1e-9")
_EXACT = Context(prec=200, Emax=10**6, Emin=-(10**6), traps=[])
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


class QuantityError(ValueError):
    pass


# resource.ParseQuantity's errors, word for word (the API server's CEL errors quote them without the input)
FORMAT_WRONG = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
SUFFIX = "unable to parse quantity's suffix"


def parse(text: str) -> Decimal:
    """The exact value of a quantity string. Raises QuantityError where resource.ParseQuantity fails."""
    m = _SYNTAX.fullmatch(text) if isinstance(text, str) and len(text) <= 1024 else None
    if m is None or text == "":
        raise QuantityError(FORMAT_WRONG)
    sign, whole, frac, suffix = m.groups()
    if not set(suffix) <= set("eEinumkKMGTP+-0123456789"):
        raise QuantityError(FORMAT_WRONG)
    if suffix in _DECIMAL:
        base, exponent = 10, _DECIMAL[suffix]
    elif suffix in _BINARY:
        base, exponent = 2, _BINARY[suffix]
    elif suffix[:1] in ("e", "E") and re.fullmatch(r"[-+]?[0-9]+", suffix[1:]):
        base, exponent = 10, int(suffix[1:])
        if not -(2**31) <= exponent < 2**31:
            raise QuantityError(SUFFIX)
    else:
        raise QuantityError(SUFFIX)
    if not whole and not frac:
        return Decimal(0)  # Go's scanner reads a missing number ("m", "-", ".", "E0") as zero
    with localcontext(_EXACT):
        amount = Decimal(f"{whole or '0'}.{frac or '0'}")
        amount = amount.scaleb(exponent) if base == 10 else amount * (Decimal(2) ** exponent)
        if amount != 0 and int(amount.as_tuple().exponent) < -9:
            amount = amount.quantize(_NANO, rounding=ROUND_UP)
        if base == 2 and amount > INT64_MAX:
            amount = Decimal(INT64_MAX)
        amount = -amount if sign == "-" else amount
    return normalize(amount)


def normalize(value: Decimal) -> Decimal:
    """One representation per value (so equal quantities have equal canonical strings)."""
    if value == 0:
        return Decimal(0)
    with localcontext(_EXACT):
        v = value.normalize()
    return v


def canonical(value: Decimal) -> str:
    """The exact value as a plain decimal string: "-12.5", "3000", "0.001"."""
    text = format(normalize(value), "f")
    return text


def from_canonical(text: str) -> Decimal:
    return Decimal(text)


def add(a: Decimal, b: Decimal) -> Decimal:
    with localcontext(_EXACT):
        return normalize(a + b)


def sub(a: Decimal, b: Decimal) -> Decimal:
    with localcontext(_EXACT):
        return normalize(a - b)


def is_integer(value: Decimal) -> bool:
    """Kubernetes' IsInteger: a whole number that fits in an int64."""
    return value == value.to_integral_value() and INT64_MIN <= value <= INT64_MAX


def as_integer(value: Decimal) -> int:
    if not is_integer(value):
        raise QuantityError("cannot convert value to integer")
    return int(value)
