"""Kyverno's scalar semantics: wildcards, Kubernetes quantities, Go durations, semver, and the leaf
comparison of validate patterns.

Learned from Kyverno's pkg/engine/pattern/pattern.go, pkg/engine/operator/operator.go,
ext/wildcard (github.com/IGLOU-EU/go-wildcard v1.0.3), k8s.io/apimachinery resource.ParseQuantity,
Go's time.ParseDuration and strconv, and github.com/blang/semver/v4. Values are what YAML/JSON decode
to: dict, list, str, int, float, bool, None. Policy numbers reach Kyverno as float64 (they are decoded
from JSON), so a number in a pattern is compared with float semantics whatever its Python type.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, ROUND_UP, Context, Decimal, localcontext
from functools import lru_cache
from typing import Any

# shared by every dialect; re-exported here for the Kyverno modules
from admission.wildcard import contains_wildcard, wildcard_match  # noqa: F401

# --- Go number parsing ---------------------------------------------------------------------------

# Unambiguous (each digit can be read one way only), so a failing match takes linear time on the
# resource's long strings, not quadratic.
_GO_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_GO_SPECIAL = re.compile(r"[+-]?(?:inf|infinity|nan)", re.IGNORECASE)
_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def go_parse_float(s: str) -> float | None:
    """strconv.ParseFloat(s, 64): decimal notation, inf/nan; None where Go returns an error."""
    if _GO_SPECIAL.fullmatch(s):
        return float(s)
    if not _GO_FLOAT.fullmatch(s):
        return None
    f = float(s)
    if math.isinf(f):
        return None  # out of range is an error in Go
    return f


def go_parse_int(s: str) -> int | None:
    """strconv.ParseInt(s, 10, 64)."""
    if not _GO_INT.fullmatch(s):
        return None
    if len(s.lstrip("+-").lstrip("0")) > 19:
        return None  # beyond int64 (and int() refuses thousands of digits)
    n = int(s)
    return n if _INT64_MIN <= n <= _INT64_MAX else None


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# --- Go formatting -----------------------------------------------------------------------------


def _shortest_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip digits of a finite non-zero |f| and the exponent of the first digit."""
    sign, digits, exp = Decimal(repr(abs(f))).normalize().as_tuple()
    ds = "".join(map(str, digits))
    assert isinstance(exp, int)
    return ds, exp + len(ds) - 1


def go_format_float(f: float, verb: str = "g") -> str:
    """fmt %v of a float64 (verb "g", shortest) or strconv.FormatFloat(f, 'E', -1, 64) (verb "E")."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    neg = "-" if math.copysign(1.0, f) < 0 else ""
    if f == 0:
        return neg + ("0E+00" if verb == "E" else "0")
    ds, exp = _shortest_digits(f)
    if verb == "E" or exp < -4 or exp >= 6:  # strconv 'g' with shortest precision switches at 1e6
        mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
        e = "E" if verb == "E" else "e"
        return f"{neg}{mant}{e}{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if exp < 0:
        return f"{neg}0.{'0' * (-exp - 1)}{ds}"
    if len(ds) <= exp + 1:
        return neg + ds + "0" * (exp + 1 - len(ds))
    return f"{neg}{ds[: exp + 1]}.{ds[exp + 1 :]}"


def go_sprint(v: Any) -> str:
    """fmt.Sprint of a JSON-decoded value."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return go_format_float(v)
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return "map[" + " ".join(f"{k}:{go_sprint(v[k])}" for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_sprint(x) for x in v) + "]"
    return str(v)


# --- Kubernetes quantities -----------------------------------------------------------------------

_DEC_SUFFIX = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BIN_SUFFIX = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_SUFFIX_CHARS = set("eEinumkKMGTP")
_NANO = Decimal("1e-9")


def parse_quantity(s: Any) -> Decimal | None:
    """resource.ParseQuantity: "1Gi", "1024Mi", "500m", "1e3", "1.5"; None where it returns an error.

    Mirrors its scanner, quirks included ("m" alone or "-" alone is zero, "1.G" is accepted).
    """
    if not isinstance(s, str) or s == "":
        return None
    return _parse_quantity(s) if len(s) <= _CACHED_LENGTH else _parse_quantity.__wrapped__(s)


# Strings longer than this (request data can be anything) are not kept by the caches below.
_CACHED_LENGTH = 256


@lru_cache(maxsize=4096)
def _parse_quantity(s: str) -> Decimal | None:
    # the same few quantities come back request after request (a Decimal is immutable)
    if s == "0":
        return Decimal(0)
    parsed = _scan_quantity(s)
    if parsed is None:
        return None
    negative, num, denom, suffix = parsed
    if suffix in _DEC_SUFFIX:
        base, exponent, binary = 10, _DEC_SUFFIX[suffix], False
    elif suffix in _BIN_SUFFIX:
        base, exponent, binary = 2, _BIN_SUFFIX[suffix], True
    elif len(suffix) > 1 and suffix[0] in "eE" and go_parse_int(suffix[1:]) is not None:
        # Go keeps the exponent as an int32
        base, exponent, binary = 10, (int(suffix[1:]) + (1 << 31)) % (1 << 32) - (1 << 31), False
    else:
        return None
    exact = Context(prec=len(num) + len(denom) + 40, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[])
    with localcontext(exact):
        amount = Decimal(f"{num}.{denom or '0'}")
        amount = amount.scaleb(exponent) if base == 10 else amount * (Decimal(2) ** exponent)
        if amount != 0 and amount.as_tuple().exponent < -9:  # type: ignore[operator]
            amount = amount.quantize(_NANO, rounding=ROUND_UP)  # Kubernetes rounds up to the nano unit
        if binary and amount > _INT64_MAX:
            amount = Decimal(_INT64_MAX)
        return -amount if negative else amount


def _scan_quantity(s: str) -> tuple[bool, str, str, str] | None:
    pos, end = 0, len(s)
    negative = False
    if s[0] in "+-":
        negative = s[0] == "-"
        pos = 1
    while pos < end and s[pos] == "0":
        pos += 1
    if pos >= end:
        return negative, "0", "", ""
    start = pos
    while pos < end and "0" <= s[pos] <= "9":
        pos += 1
    num = s[start:pos] or "0"
    denom = ""
    if pos < end and s[pos] == ".":
        pos += 1
        start = pos
        while pos < end and "0" <= s[pos] <= "9":
            pos += 1
        denom = s[start:pos]
    suffix_start = pos
    while pos < end and s[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos >= end:
        return negative, num, denom, s[suffix_start:]
    if s[pos] in "+-":
        pos += 1
    while pos < end and "0" <= s[pos] <= "9":
        pos += 1
    if pos < end:
        return None
    return negative, num, denom, s[suffix_start:]


# --- Go durations --------------------------------------------------------------------------------

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def parse_duration_ns(s: Any) -> int | None:
    """time.ParseDuration in nanoseconds ("1h30m", "500ms", "-1.5h", "0"); None on error."""
    if not isinstance(s, str):
        return None
    return _parse_duration_ns(s) if len(s) <= _CACHED_LENGTH else _parse_duration_ns.__wrapped__(s)


@lru_cache(maxsize=4096)
def _parse_duration_ns(s: str) -> int | None:
    neg = False
    if s and s[0] in "+-":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if s == "":
        return None
    total = 0
    while s:
        if not (s[0] == "." or "0" <= s[0] <= "9"):
            return None
        i = 0
        while i < len(s) and "0" <= s[i] <= "9":
            i += 1
        pre = i > 0
        v = int(s[:i]) if pre else 0
        if v > 1 << 63:
            return None
        s = s[i:]
        frac, scale, post = 0, 1.0, False
        if s and s[0] == ".":
            s = s[1:]
            i = 0
            overflow = False
            while i < len(s) and "0" <= s[i] <= "9":
                if not overflow:
                    nxt = frac * 10 + int(s[i])
                    if nxt >= 1 << 63:
                        overflow = True
                    else:
                        frac, scale = nxt, scale * 10
                i += 1
            post = i > 0
            s = s[i:]
        if not pre and not post:
            return None
        i = 0
        while i < len(s) and not (s[i] == "." or "0" <= s[i] <= "9"):
            i += 1
        unit = _UNITS.get(s[:i])
        if unit is None:
            return None
        s = s[i:]
        if v > (1 << 63) // unit:
            return None
        v *= unit
        if frac > 0:
            v += int(float(frac) * (float(unit) / scale))
        total += v
        if total > 1 << 63:
            return None
    if neg:
        return -total
    return total if total <= _INT64_MAX else None


def parse_duration(s: Any) -> float | None:
    """time.ParseDuration in seconds; None on error."""
    ns = parse_duration_ns(s)
    return None if ns is None else ns / 1e9


# --- semver --------------------------------------------------------------------------------------

_SEMVER_IDENT = re.compile(r"[0-9A-Za-z-]+")


@dataclass(frozen=True)
class SemVer:
    major: int
    minor: int
    patch: int
    pre: tuple[int | str, ...] = ()
    build: tuple[str, ...] = ()

    def compare(self, other: SemVer) -> int:
        a, b = (self.major, self.minor, self.patch), (other.major, other.minor, other.patch)
        if a != b:
            return -1 if a < b else 1
        if not self.pre or not other.pre:
            return (not self.pre) - (not other.pre)
        for x, y in zip(self.pre, other.pre, strict=False):
            if x == y:
                continue
            if isinstance(x, int) and isinstance(y, int):
                return -1 if x < y else 1
            if isinstance(x, int):
                return -1
            if isinstance(y, int):
                return 1
            return -1 if str(x) < str(y) else 1
        return (len(self.pre) > len(other.pre)) - (len(self.pre) < len(other.pre))


def _semver_number(s: str) -> int | None:
    if not s or not s.isascii() or not s.isdigit() or (len(s) > 1 and s[0] == "0"):
        return None
    n = int(s)
    return n if n < 1 << 64 else None


def parse_semver(s: Any) -> SemVer | None:
    """blang/semver Parse: strict MAJOR.MINOR.PATCH[-pre][+build], no "v" prefix, no leading zeros."""
    if not isinstance(s, str) or not s:
        return None
    parts = s.split(".", 2)
    if len(parts) != 3:
        return None
    major, minor = _semver_number(parts[0]), _semver_number(parts[1])
    rest = parts[2]
    build: tuple[str, ...] = ()
    if "+" in rest:
        rest, meta = rest.split("+", 1)
        build = tuple(meta.split("."))
        if any(not _SEMVER_IDENT.fullmatch(b) for b in build):
            return None
    pre: tuple[int | str, ...] = ()
    if "-" in rest:
        rest, pre_s = rest.split("-", 1)
        items: list[int | str] = []
        for ident in pre_s.split("."):
            if not _SEMVER_IDENT.fullmatch(ident):
                return None
            if ident.isdigit():
                n = _semver_number(ident)
                if n is None:
                    return None
                items.append(n)
            else:
                items.append(ident)
        pre = tuple(items)
    patch = _semver_number(rest)
    if major is None or minor is None or patch is None:
        return None
    return SemVer(major, minor, patch, pre, build)


# --- deep equality (reflect.DeepEqual on JSON-decoded values, numbers as float64) ----------------


def deep_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) or is_number(b):
        return is_number(a) and is_number(b) and float(a) == float(b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(deep_equal, a, b))
    return type(a) is type(b) and a == b


# --- the leaf comparison of validate patterns (pattern.Validate) ---------------------------------

_IN_RANGE = re.compile(r"([-|+]?[0-9]+(?:\.[0-9]+)?[A-Za-z]*)-([-|+]?[0-9]+(?:\.[0-9]+)?[A-Za-z]*)")
_NOT_IN_RANGE = re.compile(r"([-|+]?[0-9]+(?:\.[0-9]+)?[A-Za-z]*)!-([-|+]?[0-9]+(?:\.[0-9]+)?[A-Za-z]*)")

EQUAL, NOT_EQUAL, MORE, LESS, MORE_EQUAL, LESS_EQUAL = "", "!", ">", "<", ">=", "<="
IN_RANGE, NOT_IN_RANGE = "-", "!-"


def string_operator(pattern: str) -> str:
    """The operator a string pattern starts with (GetOperatorFromStringPattern)."""
    return _string_operator(pattern) if len(pattern) <= _CACHED_LENGTH else _string_operator.__wrapped__(pattern)


@lru_cache(maxsize=4096)
def _string_operator(pattern: str) -> str:
    if len(pattern) < 2:
        return EQUAL
    for op in (MORE_EQUAL, LESS_EQUAL, MORE, LESS, NOT_EQUAL):
        if pattern.startswith(op):
            return op
    if _NOT_IN_RANGE.fullmatch(pattern):
        return NOT_IN_RANGE
    if _IN_RANGE.fullmatch(pattern):
        return IN_RANGE
    return EQUAL


_SCALARS = (str, int, float, bool, type(None))


def compare_value(pattern_value: Any, value: Any) -> bool:
    """Does a resource value satisfy a scalar pattern (or, for a map pattern, is it a map)?"""
    if type(pattern_value) is str and type(value) in _SCALARS and len(pattern_value) <= _CACHED_LENGTH \
            and (type(value) is not str or len(value) <= _CACHED_LENGTH):
        # a pure function of two scalars, and the same few pairs come back request after request
        return _compare_scalars(pattern_value, value, type(value).__name__)
    return _compare_value(pattern_value, value)


@lru_cache(maxsize=8192)
def _compare_scalars(pattern_value: str, value: Any, kind: str) -> bool:
    # `kind` keeps 1, 1.0 and True (equal as keys) apart
    return _compare_value(pattern_value, value)


def _compare_value(pattern_value: Any, value: Any) -> bool:
    if isinstance(pattern_value, bool):
        return isinstance(value, bool) and value == pattern_value
    if is_number(pattern_value):
        return _match_number(float(pattern_value), value)
    if pattern_value is None:
        return _match_nil(value)
    if isinstance(pattern_value, dict):
        return isinstance(value, dict)
    if isinstance(pattern_value, str):
        return _match_string_patterns(pattern_value, value)
    return False  # lists (and anything else) are not leaf patterns


def _match_number(pattern: float, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return pattern == math.trunc(pattern) and int(pattern) == value
    if isinstance(value, float):
        return value == pattern
    if isinstance(value, str):
        f = go_parse_float(value)
        return f is not None and f == pattern
    return False


def _match_nil(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return not value
    if is_number(value):
        return value == 0
    if isinstance(value, str):
        return value == ""
    return False


def _match_string_patterns(pattern: str, value: Any) -> bool:
    if isinstance(value, str) and value == pattern:
        return True
    alternatives = _alternatives(pattern) if len(pattern) <= _CACHED_LENGTH else _alternatives.__wrapped__(pattern)
    for conditions in alternatives:
        if all(_match_string_pattern(c, value) for c in conditions):
            return True
    return False


@lru_cache(maxsize=4096)
def _alternatives(pattern: str) -> tuple[tuple[str, ...], ...]:
    """`a | b & c` as ((a,), (b, c)): alternatives of conditions that must all hold."""
    return tuple(
        tuple(c.strip(" ") for c in alternative.strip(" ").split("&")) for alternative in pattern.split("|")
    )


def _match_string_pattern(pattern: str, value: Any) -> bool:
    op = string_operator(pattern)
    if op == IN_RANGE:
        m = _IN_RANGE.fullmatch(pattern)
        assert m is not None
        return _match_string_pattern(f">= {m[1]}", value) and _match_string_pattern(f"<= {m[2]}", value)
    if op == NOT_IN_RANGE:
        m = _NOT_IN_RANGE.fullmatch(pattern)
        assert m is not None
        return _match_string_pattern(f"< {m[1]}", value) or _match_string_pattern(f"> {m[2]}", value)
    return _match_with_operator(pattern[len(op) :].strip(), value, op)


def _number_as_string(value: Any) -> str | None:
    """convertNumberToString: what a value looks like when Kyverno tries it as a duration/quantity."""
    if value is None:
        return "0"
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:f}"
    if isinstance(value, int):
        return str(value)
    return None


def _ordered(cmp: int, op: str) -> bool | None:
    return {
        EQUAL: cmp == 0,
        NOT_EQUAL: cmp != 0,
        MORE: cmp > 0,
        LESS: cmp < 0,
        MORE_EQUAL: cmp >= 0,
        LESS_EQUAL: cmp <= 0,
    }.get(op)


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _match_with_operator(pattern: str, value: Any, op: str) -> bool:
    as_string = _number_as_string(value)
    pattern_duration = parse_duration_ns(pattern)
    if pattern_duration is not None and as_string is not None:
        value_duration = parse_duration_ns(as_string)
        if value_duration is not None:
            result = _ordered(_cmp(value_duration, pattern_duration), op)
            if result is not None:
                return result
    pattern_quantity = parse_quantity(pattern)
    if pattern_quantity is not None and as_string is not None:
        value_quantity = parse_quantity(as_string)
        if value_quantity is not None:
            result = _ordered(_cmp(value_quantity, pattern_quantity), op)
            if result is not None:
                return result
    if op not in (EQUAL, NOT_EQUAL):
        return False  # >, >=, <, <= do not apply to strings
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = go_format_float(value, "E")
    elif isinstance(value, int | str):
        text = str(value)
    else:
        return False  # nil, maps and lists match neither "x" nor "!x"
    matched = wildcard_match(pattern, text)
    return not matched if op == NOT_EQUAL else matched
