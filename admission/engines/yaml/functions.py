"""Kyverno's custom JMESPath functions, registered on the `jmespath` library.

The standard functions (length, contains, keys, values, join, max, min, merge, abs, to_number, ...)
come from the library unchanged (map, sort_by, min_by and max_by, which take an expression reference,
are evaluated by variables.py). This module adds, through the library's documented mechanism (a
`jmespath.functions.Functions` subclass with `@signature` methods), the ones Kyverno defines
(pkg/engine/jmespath) with its argument rules and results: string helpers, regular expressions (on RE2,
see admission.regex), arithmetic over numbers, Kubernetes quantities and Go durations, the time_* family,
semver, x509, image references.

One extension of ours, not Kyverno's: `selector_match(selector, labels)`, a full LabelSelector
(matchLabels and matchExpressions) match, used by the built-in require-network-policy policy.

Functions raise `jmespath.exceptions.JMESPathError` subclasses (type errors from the library's
signature checks, `FunctionError` from ours); the variables module turns them into VariableError.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import json
import math
import re
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import yaml
from jmespath import exceptions
from jmespath.functions import Functions, signature

from admission import regex
from admission.manifests import SafeLoader
from admission.selectors import selector_matches
from admission.wildcard import wildcard_match


class FunctionError(exceptions.JMESPathError):
    """A Kyverno function was called with arguments it cannot use."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"JMESPath function '{name}': {message}")


# ---------------------------------------------------------------------------------------------- numbers

def number(value: float | int | Decimal | Fraction) -> int | float:
    """A JSON number the way Go's float64 prints: integral values become ints (2.0 -> 2)."""
    f = float(value)
    if math.isfinite(f) and f == int(f) and abs(f) < 2**63:
        return int(f)
    return f


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it: compact, map keys sorted, floats without a needless `.0`."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        if all(type(k) is str and type(v) is str for k, v in value.items()):
            # labels, annotations: one call to the encoder writes what the general case writes
            return json.dumps(dict(sorted(value.items())), ensure_ascii=False, separators=(",", ":"))
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{go_json(v)}"
                              for k, v in sorted(value.items())) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    return json.dumps(str(value))


def go_float(f: float) -> str:
    """Go's json float64 format: shortest digits, plain decimal between 1e-6 and 1e21, exponent outside."""
    if not math.isfinite(f):
        raise ValueError(f"unsupported value: {f}")
    a = abs(f)
    if a == 0 or 1e-6 <= a < 1e21:
        if f == int(f):
            return str(int(f))
        return format(Decimal(repr(f)), "f")
    mant, _, exp = repr(f).partition("e")
    e = int(exp)
    return f"{mant}e-{-e}" if -10 < e < 0 else f"{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"


def iface_to_string(name: str, index: int, value: Any) -> str:
    """Kyverno's ifaceToString: strings as is, numbers (float32 precision) and booleans printed."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _format_float32(value)
    raise FunctionError(name, f"argument #{index} is not of type String or Real")


def _format_float32(f: float) -> str:
    # strconv.FormatFloat(f, 'f', -1, 32): the shortest decimal that reads back as the same float32.
    import struct

    f32 = struct.unpack("f", struct.pack("f", f))[0]
    for digits in range(1, 18):
        text = f"{f32:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == f32:
            return f"{Decimal(text):f}"
    return f"{Decimal(f32):f}"


# ---------------------------------------------------------------------------------------------- quantities

_BINARY = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_DECIMAL_SUFFIX = {v: k for k, v in _DECIMAL.items()}
_QUANTITY = re.compile(r"^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))((?:[eE][+-]?[0-9]+)|[a-zA-Z]*)$")


class Quantity:
    """A Kubernetes resource.Quantity: an exact decimal value and the format it was written in."""

    __slots__ = ("value", "fmt")

    def __init__(self, value: Decimal, fmt: str) -> None:
        self.value = value
        self.fmt = fmt  # "BinarySI" | "DecimalSI" | "DecimalExponent"

    @classmethod
    def parse(cls, text: str) -> Quantity | None:
        m = _QUANTITY.match(text.strip()) if isinstance(text, str) else None
        if not m:
            return None
        num, suffix = m.group(1), m.group(2)
        try:
            base = Decimal(num)
        except InvalidOperation:
            return None
        if suffix in _BINARY:
            return cls(base * (Decimal(1024) ** _BINARY[suffix]), "BinarySI")
        if suffix in _DECIMAL:
            return cls(base.scaleb(_DECIMAL[suffix]), "DecimalSI")
        if suffix[:1] in ("e", "E"):
            return cls(base.scaleb(int(suffix[1:])), "DecimalExponent")
        return None

    @property
    def scale(self) -> int:
        """Digits after the decimal point of the exact value (inf.Dec's scale)."""
        exp = self.value.as_tuple().exponent
        return max(0, -exp) if isinstance(exp, int) else 0

    def __str__(self) -> str:
        return format_quantity(self.value, self.fmt)


def format_quantity(value: Decimal, fmt: str) -> str:
    """Quantity.String(): the canonical form Kubernetes prints."""
    if value == 0:
        return "0"
    if fmt == "BinarySI" and abs(value) >= 1024 and value == value.to_integral_value():
        n = int(value)
        k = 0
        while k < 6 and n % 1024 == 0 and n != 0:
            n //= 1024
            k += 1
        return f"{n}{['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'][k]}"
    # decimal: integer mantissa with an exponent that is a multiple of 3, values under 1n rounded up
    nano = (value.scaleb(9)).to_integral_value(rounding=ROUND_CEILING)
    mantissa, exp = int(nano), -9
    while mantissa != 0 and mantissa % 1000 == 0 and exp < 18:
        mantissa //= 1000
        exp += 3
    if fmt == "DecimalExponent":
        return f"{mantissa}e{exp}" if exp else str(mantissa)
    return f"{mantissa}{_DECIMAL_SUFFIX[exp]}"


# ---------------------------------------------------------------------------------------------- durations

_DURATION_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "μs": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
                   "h": 3600 * 10**9}
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int | None:
    """Go's time.ParseDuration, in nanoseconds; None when the text is not a duration."""
    if not isinstance(text, str) or not text:
        return None
    s = text
    sign = 1
    if s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        return None
    total = Fraction(0)
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m or m.group(1) in ("", "."):
            return None
        total += Fraction(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * int(total)


def format_duration(ns: int) -> str:
    """Go's time.Duration.String()."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < 10**9:
        for unit, div in (("ns", 1), ("µs", 1000), ("ms", 10**6)):
            if u < div * 1000:
                return sign + _fraction(u, div) + unit
    secs, frac = divmod(u, 10**9)
    hours, rem = divmod(secs, 3600)
    minutes, seconds = divmod(rem, 60)
    sec = str(seconds) + ("." + f"{frac:09d}".rstrip("0") if frac else "")
    if hours:
        return f"{sign}{hours}h{minutes}m{sec}s"
    if minutes:
        return f"{sign}{minutes}m{sec}s"
    return f"{sign}{sec}s"


def _fraction(u: int, div: int) -> str:
    whole, frac = divmod(u, div)
    if not frac:
        return str(whole)
    digits = len(str(div)) - 1
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


def _seconds(ns: int) -> float:
    sec, nsec = divmod(abs(ns), 10**9)
    f = float(sec) + float(nsec) / 1e9
    return -f if ns < 0 else f


# ---------------------------------------------------------------------------------------------- arithmetic

def _operand(name: str, value: Any) -> tuple[str, Any]:
    """Kyverno's parseArithemticOperand: a number, else a quantity, else a duration."""
    if is_number(value):
        return "scalar", value
    if isinstance(value, str):
        q = Quantity.parse(value)
        if q is not None:
            return "quantity", q
        d = parse_duration(value)
        if d is not None:
            return "duration", d
    raise FunctionError(name, "invalid operand")


def _mismatch(name: str) -> FunctionError:
    return FunctionError(name, "Types mismatch")


def _scalar_quantity(v: int | float) -> Decimal:
    return Decimal(repr(float(v))) if isinstance(v, float) else Decimal(v)


def arith_add(name: str, a: Any, b: Any, sub: bool = False) -> Any:
    (ka, va), (kb, vb) = _operand(name, a), _operand(name, b)
    if ka != kb:
        raise _mismatch(name)
    if ka == "scalar":
        return number(va - vb if sub else va + vb)
    if ka == "quantity":
        return str(Quantity(va.value - vb.value if sub else va.value + vb.value, va.fmt))
    return format_duration(va - vb if sub else va + vb)


def arith_multiply(a: Any, b: Any) -> Any:
    (ka, va), (kb, vb) = _operand("multiply", a), _operand("multiply", b)
    if ka == "scalar" and kb != "scalar":
        (ka, va), (kb, vb) = (kb, vb), (ka, va)
    if kb != "scalar":
        raise _mismatch("multiply")
    if ka == "scalar":
        return number(va * vb)
    if ka == "quantity":
        return str(Quantity(va.value * _scalar_quantity(vb), va.fmt))
    return format_duration(int(_seconds(va) * vb * 1e9))


def arith_divide(a: Any, b: Any) -> Any:
    (ka, va), (kb, vb) = _operand("divide", a), _operand("divide", b)
    if kb == "scalar" and vb == 0:
        raise FunctionError("divide", "Zero divisor passed")
    if ka == "scalar":
        if kb != "scalar":
            raise _mismatch("divide")
        return number(va / vb)
    if ka == "quantity":
        if kb == "quantity":
            if vb.value == 0:
                raise FunctionError("divide", "Zero divisor passed")
            return number(float(va.value) / float(vb.value))
        if kb == "scalar":
            divisor = Quantity(_scalar_quantity(vb), "DecimalSI")
            scale = max(va.scale, divisor.scale)
            quotient = (va.value / divisor.value).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_DOWN)
            return str(Quantity(quotient, va.fmt))
        raise _mismatch("divide")
    if kb == "duration":
        if vb == 0:
            raise FunctionError("divide", "Zero divisor passed")
        return number(_seconds(va) / _seconds(vb))
    if kb == "scalar":
        return format_duration(int(_seconds(va) / vb * 1e9))
    raise _mismatch("divide")


def arith_modulo(a: Any, b: Any) -> Any:
    (ka, va), (kb, vb) = _operand("modulo", a), _operand("modulo", b)
    if ka != kb:
        raise _mismatch("modulo")
    if ka == "duration":
        if vb == 0:
            raise FunctionError("modulo", "Zero divisor passed")
        return format_duration(int(math.fmod(va, vb)))
    x, y = (va.value, vb.value) if ka == "quantity" else (va, vb)
    if x != int(x) or y != int(y):
        raise FunctionError("modulo", "Non-integer argument(s) passed for modulo")
    if int(y) == 0:
        raise FunctionError("modulo", "Zero divisor passed")
    r = int(math.fmod(int(x), int(y)))  # Go's % truncates toward zero
    return str(Quantity(Decimal(r), va.fmt)) if ka == "quantity" else r


# ---------------------------------------------------------------------------------------------- time

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def parse_rfc3339(name: str, text: Any) -> datetime:
    if not isinstance(text, str) or not _RFC3339.match(text):
        raise FunctionError(name, f"parsing time {json.dumps(text)} as RFC3339 failed")
    t = text.upper()
    frac = re.search(r"\.(\d+)", t)
    if frac:  # Python keeps at most microseconds
        t = t.replace(frac.group(0), "." + (frac.group(1) + "000000")[:6])
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


def format_rfc3339(t: datetime) -> str:
    off = t.utcoffset()
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if off is None or off == timedelta(0):
        return base + "Z"
    total = int(off.total_seconds())
    sign = "+" if total >= 0 else "-"
    h, m = divmod(abs(total) // 60, 60)
    return f"{base}{sign}{h:02d}:{m:02d}"


def _time_diff_ns(t1: datetime, t2: datetime) -> int:
    d = t2 - t1
    return (d.days * 86400 + d.seconds) * 10**9 + d.microseconds * 1000


# Go reference-time layout elements, longest first, and the strptime directive each becomes.
_GO_LAYOUT = [
    ("January", "%B"), ("Monday", "%A"), ("Z07:00", "%z"), ("-07:00", "%z"), ("-0700", "%z"), ("Z0700", "%z"),
    ("2006", "%Y"), ("Jan", "%b"), ("Mon", "%a"), ("MST", "%Z"), ("002", "%j"), ("_2", "%d"), ("01", "%m"),
    ("02", "%d"), ("03", "%I"), ("04", "%M"), ("05", "%S"), ("06", "%y"), ("15", "%H"), ("PM", "%p"),
    ("pm", "%p"), ("-07", "%z"), ("1", "%m"), ("2", "%d"), ("3", "%I"), ("4", "%M"), ("5", "%S"),
]


def parse_go_time(name: str, layout: str, value: str) -> datetime:
    """time.Parse with a Go layout (2006-01-02T15:04:05Z07:00 style)."""
    if layout in ("", "2006-01-02T15:04:05Z07:00"):
        return parse_rfc3339(name, value)
    fmt: list[str] = []
    i = 0
    frac = False
    while i < len(layout):
        m = re.match(r"([.,])(0+|9+)(?![0-9])", layout[i:])
        if m:
            fmt.append(m.group(1) + "%f")
            frac = True
            i += len(m.group(0))
            continue
        for token, directive in _GO_LAYOUT:
            if layout.startswith(token, i):
                fmt.append(directive)
                i += len(token)
                break
        else:
            fmt.append(layout[i].replace("%", "%%"))
            i += 1
    pattern = "".join(fmt)
    text = value
    if "%z" in pattern:
        text = re.sub(r"Z$", "+0000", text)
    if frac:
        text = re.sub(r"([.,])(\d{1,6})\d*", r"\1\2", text)
    try:
        t = datetime.strptime(text, pattern)
    except ValueError as exc:
        raise FunctionError(name, f"parsing time {json.dumps(value)} as {json.dumps(layout)}: {exc}") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


_YEAR_ONE = datetime(1, 1, 1, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------- semver

_SEMVER = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")


def _semver_key(text: str) -> tuple[Any, ...] | None:
    m = _SEMVER.match(text.strip())
    if not m:
        return None
    pre = m.group(4)
    pre_key: tuple[Any, ...] = (1,) if pre is None else (0, tuple(
        (0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), pre_key)


def _semver_range(expr: str) -> list[list[tuple[str, tuple[Any, ...]]]]:
    ors = []
    for part in expr.split("||"):
        ands: list[tuple[str, tuple[Any, ...]]] = []
        for tok in part.split():
            m = re.match(r"^(>=|<=|!=|==|=|>|<)?(.+)$", tok)
            if not m:
                raise ValueError(f"invalid range {expr!r}")
            op, ver = m.group(1) or "=", m.group(2)
            ands.extend(_wildcard(op, ver, expr))
        if not ands:
            raise ValueError(f"invalid range {expr!r}")
        ors.append(ands)
    return ors


def _wildcard(op: str, ver: str, expr: str) -> list[tuple[str, tuple[Any, ...]]]:
    parts = ver.lstrip("v").split(".")
    if len(parts) == 3 and all(p not in ("x", "X", "*") for p in parts):
        key = _semver_key(ver)
        if key is None:
            raise ValueError(f"invalid version {ver!r} in range {expr!r}")
        return [(op, key)]
    nums = []
    for p in parts:
        if p in ("x", "X", "*"):
            break
        if not p.isdigit():
            raise ValueError(f"invalid version {ver!r} in range {expr!r}")
        nums.append(int(p))
    if not nums or len(nums) > 2:
        raise ValueError(f"invalid version {ver!r} in range {expr!r}")
    low = (nums + [0, 0])[:3]
    high = [nums[0] + 1, 0, 0] if len(nums) == 1 else [nums[0], nums[1] + 1, 0]
    lo, hi = (low[0], low[1], low[2], (1,)), (high[0], high[1], high[2], (1,))
    table: dict[str, list[tuple[str, tuple[Any, ...]]]] = {"=": [(">=", lo), ("<", hi)], "==": [(">=", lo), ("<", hi)], ">": [(">=", hi)],
             ">=": [(">=", lo)], "<": [("<", lo)], "<=": [("<", hi)], "!=": [("!<>", lo + hi)]}
    return table[op]


def _semver_check(op: str, v: tuple[Any, ...], ref: tuple[Any, ...]) -> bool:
    if op == "!<>":
        return v < ref[:4] or v >= ref[4:]
    return {"=": v == ref, "==": v == ref, "!=": v != ref, ">": v > ref, ">=": v >= ref, "<": v < ref,
            "<=": v <= ref}[op]


# ---------------------------------------------------------------------------------------------- misc

def go_path_clean(path: str) -> str:
    """path/filepath.Join(p) on Linux: Clean, or "" for an empty path."""
    if path == "":
        return ""
    rooted = path.startswith("/")
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(part)
    cleaned = "/".join(out)
    return ("/" + cleaned) if rooted else (cleaned or ".")


def _replace_all(name: str, pattern: str, text: str, replacement: Callable[[regex.Match], str]) -> str:
    try:
        return regex.replace_all(pattern, text, replacement)
    except regex.RegexError as exc:
        raise FunctionError(name, str(exc)) from None


def go_expand(template: str, m: regex.Match) -> str:
    """Go's Regexp.Expand: $1, ${1}, $name, ${name}, $$ ; unknown groups expand to nothing."""
    out = []
    i = 0
    while i < len(template):
        c = template[i]
        if c != "$" or i + 1 >= len(template):
            out.append(c)
            i += 1
            continue
        if template[i + 1] == "$":
            out.append("$")
            i += 2
            continue
        if template[i + 1] == "{":
            end = template.find("}", i + 2)
            name = template[i + 2:end] if end != -1 else ""
            if end == -1 or not re.fullmatch(r"\w+", name):
                out.append(c)
                i += 1
                continue
            i = end + 1
        else:
            mm = re.match(r"\w+", template[i + 1:])
            if not mm:
                out.append(c)
                i += 1
                continue
            name = mm.group(0)
            i += 1 + len(name)
        try:
            group = m.group(int(name)) if name.isdigit() else m.group(name)
        except IndexError:
            group = None
        out.append(group or "")
    return "".join(out)


def _is_public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (ip.is_loopback or ip.is_private)


# ---------------------------------------------------------------------------------------------- x509

# Go's crypto/x509 enum values, as its JSON encoding of a Certificate shows them, by dotted OID.
_GO_SIG_ALGS = {
    "1.2.840.113549.1.1.4": 2,  # md5WithRSAEncryption
    "1.2.840.113549.1.1.5": 3,  # sha1WithRSAEncryption
    "1.2.840.113549.1.1.11": 4,  # sha256WithRSAEncryption
    "1.2.840.113549.1.1.12": 5,  # sha384WithRSAEncryption
    "1.2.840.113549.1.1.13": 6,  # sha512WithRSAEncryption
    "1.2.840.10045.4.1": 9,  # ecdsa-with-SHA1
    "1.2.840.10045.4.3.2": 10,  # ecdsa-with-SHA256
    "1.2.840.10045.4.3.3": 11,  # ecdsa-with-SHA384
    "1.2.840.10045.4.3.4": 12,  # ecdsa-with-SHA512
    "1.3.101.112": 16,  # ed25519
}
_GO_EXT_KEY_USAGE = {
    "2.5.29.37.0": 0,  # anyExtendedKeyUsage
    "1.3.6.1.5.5.7.3.1": 1,  # serverAuth
    "1.3.6.1.5.5.7.3.2": 2,  # clientAuth
    "1.3.6.1.5.5.7.3.3": 3,  # codeSigning
    "1.3.6.1.5.5.7.3.4": 4,  # emailProtection
    "1.3.6.1.5.5.7.3.8": 8,  # timeStamping
    "1.3.6.1.5.5.7.3.9": 9,  # OCSPSigning
}
_NAME_FIELDS = [("2.5.4.6", "Country"), ("2.5.4.10", "Organization"), ("2.5.4.11", "OrganizationalUnit"),
                ("2.5.4.7", "Locality"), ("2.5.4.8", "Province"), ("2.5.4.9", "StreetAddress"),
                ("2.5.4.17", "PostalCode")]


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode() if data is not None else None


def _go_time(t: datetime) -> str:
    return format_rfc3339(t if t.tzinfo else t.replace(tzinfo=UTC))


def _x509_name(name: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for oid, field in _NAME_FIELDS:
        values = [a.value for a in name if a.oid.dotted_string == oid]
        out[field] = values or None
    serial = [a.value for a in name if a.oid.dotted_string == "2.5.4.5"]
    common = [a.value for a in name if a.oid.dotted_string == "2.5.4.3"]
    out["SerialNumber"] = serial[-1] if serial else ""
    out["CommonName"] = common[-1] if common else ""
    out["Names"] = [{"Type": [int(x) for x in a.oid.dotted_string.split(".")], "Value": a.value} for a in name]
    out["ExtraNames"] = None
    return out


def _rsa_public_key(key: Any) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("certificate should use rsa algorithm")
    numbers = key.public_numbers()
    return {"N": str(numbers.n), "E": numbers.e}


def decode_pem(pem: str) -> dict[str, Any]:
    """x509_decode: the first PEM block, a CERTIFICATE or CERTIFICATE REQUEST with an RSA key, as Go's
    x509 structs encode to JSON (the fields policies read: Subject, Issuer, NotBefore, NotAfter, ...)."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    m = re.search(r"-----BEGIN ([A-Z0-9 ]+)-----", pem)
    if not m:
        raise ValueError("failed to decode PEM block")
    block = pem[m.start():]
    try:
        if m.group(1) == "CERTIFICATE":
            cert = x509.load_pem_x509_certificate(block.encode())
        elif m.group(1) == "CERTIFICATE REQUEST":
            csr = x509.load_pem_x509_csr(block.encode())
            return {
                "Raw": _b64(csr.public_bytes(Encoding.DER)),
                "Version": 0,
                "Signature": _b64(csr.signature),
                "SignatureAlgorithm": _GO_SIG_ALGS.get(csr.signature_algorithm_oid.dotted_string, 0),
                "PublicKeyAlgorithm": 1,
                "PublicKey": _rsa_public_key(csr.public_key()),
                "Subject": _x509_name(csr.subject),
                "DNSNames": _sans(csr.extensions, "dns"),
                "EmailAddresses": _sans(csr.extensions, "email"),
                "IPAddresses": _sans(csr.extensions, "ip"),
                "URIs": _sans(csr.extensions, "uri"),
            }
        else:
            raise ValueError("PEM block neither contains a CERTIFICATE or CERTIFICATE REQUEST")
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc)) from None
    public_key = _rsa_public_key(cert.public_key())
    out: dict[str, Any] = {
        "Raw": _b64(cert.public_bytes(Encoding.DER)),
        "RawTBSCertificate": _b64(cert.tbs_certificate_bytes),
        "RawSubjectPublicKeyInfo": _b64(cert.public_key().public_bytes(Encoding.DER,
                                                                       PublicFormat.SubjectPublicKeyInfo)),
        "Signature": _b64(cert.signature),
        "SignatureAlgorithm": _GO_SIG_ALGS.get(cert.signature_algorithm_oid.dotted_string, 0),
        "PublicKeyAlgorithm": 1,
        "PublicKey": public_key,
        "Version": cert.version.value + 1,
        "SerialNumber": cert.serial_number,
        "Issuer": _x509_name(cert.issuer),
        "Subject": _x509_name(cert.subject),
        "NotBefore": _go_time(cert.not_valid_before_utc),
        "NotAfter": _go_time(cert.not_valid_after_utc),
        "KeyUsage": 0,
        "ExtKeyUsage": None,
        "BasicConstraintsValid": False,
        "IsCA": False,
        "MaxPathLen": 0,
        "MaxPathLenZero": False,
        "SubjectKeyId": None,
        "AuthorityKeyId": None,
        "DNSNames": _sans(cert.extensions, "dns"),
        "EmailAddresses": _sans(cert.extensions, "email"),
        "IPAddresses": _sans(cert.extensions, "ip"),
        "URIs": _sans(cert.extensions, "uri"),
    }
    for ext in cert.extensions:
        v = ext.value
        if isinstance(v, x509.KeyUsage):
            bits = [v.digital_signature, v.content_commitment, v.key_encipherment, v.data_encipherment,
                    v.key_agreement, v.key_cert_sign, v.crl_sign,
                    v.key_agreement and v.encipher_only, v.key_agreement and v.decipher_only]
            out["KeyUsage"] = sum(1 << i for i, bit in enumerate(bits) if bit)
        elif isinstance(v, x509.ExtendedKeyUsage):
            out["ExtKeyUsage"] = [_GO_EXT_KEY_USAGE[u.dotted_string] for u in v
                                  if u.dotted_string in _GO_EXT_KEY_USAGE]
        elif isinstance(v, x509.BasicConstraints):
            out["BasicConstraintsValid"] = True
            out["IsCA"] = v.ca
            out["MaxPathLen"] = v.path_length if v.path_length is not None else -1
            out["MaxPathLenZero"] = v.path_length == 0
        elif isinstance(v, x509.SubjectKeyIdentifier):
            out["SubjectKeyId"] = _b64(v.digest)
        elif isinstance(v, x509.AuthorityKeyIdentifier):
            out["AuthorityKeyId"] = _b64(v.key_identifier)
    return out


def _sans(extensions: Any, kind: str) -> list[str] | None:
    from cryptography import x509

    try:
        san = extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    cls = {"dns": x509.DNSName, "email": x509.RFC822Name, "ip": x509.IPAddress,
           "uri": x509.UniformResourceIdentifier}[kind]
    values = [str(v) for v in san.get_values_for_type(cls)]
    return values or None


# ---------------------------------------------------------------------------------------------- functions

def _s(*types: str) -> dict[str, Any]:
    return {"types": list(types)}


ANY: dict[str, Any] = {"types": []}


class KyvernoFunctions(Functions):
    """The standard JMESPath functions plus Kyverno's."""

    # strings
    @signature(_s("string"), _s("string"))
    def _func_compare(self, a: str, b: str) -> int:
        return (a > b) - (a < b)

    @signature(_s("string"), _s("string"))
    def _func_equal_fold(self, a: str, b: str) -> bool:
        return a.casefold() == b.casefold()

    @signature(_s("string"), _s("string"), _s("string"), _s("number"))
    def _func_replace(self, s: str, old: str, new: str, n: float) -> str:
        count = int(n)
        if count < 0:
            return s.replace(old, new)
        return s.replace(old, new, count)

    @signature(_s("string"), _s("string"), _s("string"))
    def _func_replace_all(self, s: str, old: str, new: str) -> str:
        return s.replace(old, new)

    @signature(_s("string"))
    def _func_to_upper(self, s: str) -> str:
        return s.upper()

    @signature(_s("string"))
    def _func_to_lower(self, s: str) -> str:
        return s.lower()

    @signature(_s("string"), _s("string"))
    def _func_trim(self, s: str, cutset: str) -> str:
        return s.strip(cutset) if cutset else s

    @signature(_s("string"), _s("string"))
    def _func_trim_prefix(self, s: str, prefix: str) -> str:
        return s[len(prefix):] if prefix and s.startswith(prefix) else s

    @signature(_s("string"), _s("string"))
    def _func_split(self, s: str, sep: str) -> list[str]:
        if sep == "":
            return list(s)
        return s.split(sep)

    @signature(_s("string"), _s("number"))
    def _func_truncate(self, s: str, length: float) -> str:
        return s[: max(0, int(length))]

    @signature(ANY)
    def _func_to_string(self, arg: Any) -> str:
        return arg if isinstance(arg, str) else go_json(arg)

    @signature(_s("string"))
    def _func_to_boolean(self, s: str) -> bool:
        low = s.lower()
        if low in ("true", "false"):
            return low == "true"
        raise FunctionError("to_boolean", f"lowercase argument must be 'true' or 'false' (provided: '{s}')")

    @signature(_s("string"))
    def _func_base64_encode(self, s: str) -> str:
        return base64.b64encode(s.encode()).decode()

    @signature(_s("string"))
    def _func_base64_decode(self, s: str) -> str:
        try:
            return base64.b64decode(s.encode(), validate=True).decode("utf-8", errors="replace")
        except (binascii.Error, ValueError) as exc:
            raise FunctionError("base64_decode", f"illegal base64 data: {exc}") from None

    @signature(_s("string"))
    def _func_path_canonicalize(self, s: str) -> str:
        return go_path_clean(s)

    @signature(_s("string"))
    def _func_sha256(self, s: str) -> str:
        return hashlib.sha256(s.encode()).hexdigest()

    @signature(_s("string"))
    def _func_sha1(self, s: str) -> str:
        return hashlib.sha1(s.encode()).hexdigest()  # noqa: S324 - Kyverno's function

    @signature(_s("string"))
    def _func_md5(self, s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()  # noqa: S324 - Kyverno's function

    # regular expressions (RE2, linear time: admission.regex) and patterns
    @signature(_s("string"), _s("string", "number"), _s("string", "number"))
    def _func_regex_replace_all(self, pattern: str, src: Any, repl: Any) -> str:
        text = iface_to_string("regex_replace_all", 2, src)
        template = iface_to_string("regex_replace_all", 3, repl)
        return _replace_all("regex_replace_all", pattern, text, lambda m: go_expand(template, m))

    @signature(_s("string"), _s("string", "number"), _s("string", "number"))
    def _func_regex_replace_all_literal(self, pattern: str, src: Any, repl: Any) -> str:
        text = iface_to_string("regex_replace_all_literal", 2, src)
        literal = iface_to_string("regex_replace_all_literal", 3, repl)
        return _replace_all("regex_replace_all_literal", pattern, text, lambda _m: literal)

    @signature(_s("string"), _s("string", "number"))
    def _func_regex_match(self, pattern: str, src: Any) -> bool:
        text = iface_to_string("regex_match", 2, src)
        try:
            return regex.search(pattern, text)
        except regex.RegexError as exc:
            raise FunctionError("regex_match", str(exc)) from None

    @signature(_s("string"), _s("string", "number"))
    def _func_pattern_match(self, pattern: str, src: Any) -> bool:
        return wildcard_match(pattern, iface_to_string("pattern_match", 2, src))

    @signature(_s("object"), _s("object"))
    def _func_label_match(self, selector: dict[str, Any], labels: dict[str, Any]) -> bool:
        return all(k in labels and labels[k] == v for k, v in selector.items())

    @signature(_s("object", "null"), _s("object", "null"))
    def _func_selector_match(self, selector: dict[str, Any] | None, labels: dict[str, Any] | None) -> bool:
        """Our extension: a full Kubernetes LabelSelector against a label map."""
        try:
            return selector_matches(selector, labels)
        except ValueError as exc:
            raise FunctionError("selector_match", str(exc)) from None

    # arithmetic
    @signature(ANY, ANY)
    def _func_add(self, a: Any, b: Any) -> Any:
        return arith_add("add", a, b)

    @signature(ANY, ANY)
    def _func_subtract(self, a: Any, b: Any) -> Any:
        return arith_add("subtract", a, b, sub=True)

    @signature(ANY, ANY)
    def _func_multiply(self, a: Any, b: Any) -> Any:
        return arith_multiply(a, b)

    @signature(ANY, ANY)
    def _func_divide(self, a: Any, b: Any) -> Any:
        return arith_divide(a, b)

    @signature(ANY, ANY)
    def _func_modulo(self, a: Any, b: Any) -> Any:
        return arith_modulo(a, b)

    @signature(_s("array"))
    def _func_sum(self, items: list[Any]) -> Any:
        if not items:
            raise FunctionError("sum", "at least one element in the array is required")
        result = items[0]
        for item in items[1:]:
            result = arith_add("sum", result, item)
        return result

    @signature(_s("number"), _s("number"))
    def _func_round(self, value: float, digits: float) -> Any:
        if digits != int(digits):
            raise FunctionError("round", "Non-integer argument(s) passed for round off")
        if digits < 0:
            raise FunctionError("round", f"{int(digits)} argument is out of bounds")
        shift = 10 ** int(digits)
        x = value * shift
        rounded = math.floor(abs(x) + 0.5) * (1 if x >= 0 else -1)  # Go rounds half away from zero
        return number(rounded / shift)

    # semver
    @signature(_s("string"), _s("string"))
    def _func_semver_compare(self, version: str, rng: str) -> bool:
        key = _semver_key(version) or (0, 0, 0, (1,))
        try:
            ors = _semver_range(rng)
        except ValueError as exc:
            raise FunctionError("semver_compare", str(exc)) from None
        return any(all(_semver_check(op, key, ref) for op, ref in ands) for ands in ors)

    # parsing
    @signature(_s("string"))
    def _func_parse_json(self, s: str) -> Any:
        try:
            return json.loads(s)
        except ValueError as exc:
            raise FunctionError("parse_json", str(exc)) from None

    @signature(_s("string"))
    def _func_parse_yaml(self, s: str) -> Any:
        try:
            value = yaml.load(s, Loader=SafeLoader)  # timestamps stay strings, as in Kubernetes
            return json.loads(json.dumps(value, default=str))
        except (yaml.YAMLError, ValueError) as exc:
            raise FunctionError("parse_yaml", str(exc)) from None

    # objects and arrays
    @signature(_s("object", "array"), _s("string", "number"))
    def _func_lookup(self, collection: Any, key: Any) -> Any:
        if isinstance(collection, dict):
            if not isinstance(key, str):
                raise FunctionError("lookup", "argument #2 is not of type String")
            return collection.get(key)
        if not is_number(key):
            raise FunctionError("lookup", "argument #2 is not of type Number")
        if key != int(key):
            raise FunctionError("lookup", f"argument #2: expected an integer number but got: {key}")
        index = int(key)
        return collection[index] if 0 <= index < len(collection) else None

    @signature(_s("object", "array"), _s("string"), _s("string"))
    def _func_items(self, collection: Any, key_name: str, value_name: str) -> list[dict[str, Any]]:
        if isinstance(collection, dict):
            return [{key_name: k, value_name: collection[k]} for k in sorted(collection)]
        return [{key_name: i, value_name: v} for i, v in enumerate(collection)]

    @signature(_s("array"), _s("array"))
    def _func_object_from_lists(self, keys: list[Any], values: list[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, k in enumerate(keys):
            try:
                name = iface_to_string("object_from_lists", 1, k)
            except FunctionError:
                raise FunctionError("object_from_lists", "argument #1 is not of type StringArray") from None
            out[name] = values[i] if i < len(values) else None
        return out

    # time
    @signature(_s("string"), _s("string"), _s("string"))
    def _func_time_since(self, layout: str, ts1: str, ts2: str) -> str:
        t1 = parse_go_time("time_since", layout, ts1)
        t2 = parse_go_time("time_since", layout, ts2) if ts2 else datetime.now(UTC)
        return format_duration(_time_diff_ns(t1, t2))

    @signature()
    def _func_time_now(self) -> str:
        return format_rfc3339(datetime.now().astimezone())

    @signature()
    def _func_time_now_utc(self) -> str:
        return format_rfc3339(datetime.now(UTC))

    @signature(_s("string"))
    def _func_time_to_cron(self, ts: str) -> str:
        t = parse_rfc3339("time_to_cron", ts)
        return f"{t.minute} {t.hour} {t.day} {t.month} {(t.weekday() + 1) % 7}"

    @signature(_s("string"), _s("string"))
    def _func_time_add(self, ts: str, duration: str) -> str:
        t = parse_rfc3339("time_add", ts)
        ns = parse_duration(duration)
        if ns is None:
            raise FunctionError("time_add", f"time: invalid duration {json.dumps(duration)}")
        return format_rfc3339(t + timedelta(microseconds=ns // 1000))

    @signature(_s("string"), _s("string"))
    def _func_time_parse(self, layout: str, ts: str) -> str:
        if re.fullmatch(r"[+-]?\d+", layout):  # an epoch layout
            if not re.fullmatch(r"[+-]?\d+", ts):
                raise FunctionError("time_parse", f"parsing {json.dumps(ts)}: invalid syntax")
            return format_rfc3339(datetime.fromtimestamp(int(ts), UTC))
        return format_rfc3339(parse_go_time("time_parse", layout, ts))

    @signature(_s("string"))
    def _func_time_utc(self, ts: str) -> str:
        return format_rfc3339(parse_rfc3339("time_utc", ts).astimezone(UTC))

    @signature(_s("string"), _s("string"))
    def _func_time_diff(self, ts1: str, ts2: str) -> str:
        return format_duration(_time_diff_ns(parse_rfc3339("time_diff", ts1), parse_rfc3339("time_diff", ts2)))

    @signature(_s("string"), _s("string"))
    def _func_time_before(self, ts1: str, ts2: str) -> bool:
        return parse_rfc3339("time_before", ts1) < parse_rfc3339("time_before", ts2)

    @signature(_s("string"), _s("string"))
    def _func_time_after(self, ts1: str, ts2: str) -> bool:
        return parse_rfc3339("time_after", ts1) > parse_rfc3339("time_after", ts2)

    @signature(_s("string"), _s("string"), _s("string"))
    def _func_time_between(self, ts: str, start: str, end: str) -> bool:
        t = parse_rfc3339("time_between", ts)
        return parse_rfc3339("time_between", start) < t < parse_rfc3339("time_between", end)

    @signature(_s("string"), _s("string"))
    def _func_time_truncate(self, ts: str, duration: str) -> str:
        t = parse_rfc3339("time_truncate", ts)
        ns = parse_duration(duration)
        if ns is None:
            raise FunctionError("time_truncate", f"time: invalid duration {json.dumps(duration)}")
        if ns <= 0:
            return format_rfc3339(t)
        since = _time_diff_ns(_YEAR_ONE, t)
        return format_rfc3339(t - timedelta(microseconds=(since % ns) // 1000))

    # images, urls, certificates
    @signature(_s("string"))
    def _func_image_normalize(self, ref: str) -> str:
        from admission.engines.yaml.images import ImageError, parse_image

        try:
            return parse_image(ref).normalized
        except ImageError as exc:
            raise FunctionError("image_normalize", str(exc)) from None

    @signature(_s("string"))
    def _func_is_external_url(self, url: str) -> bool:
        from urllib.parse import urlsplit

        try:
            host = urlsplit(url).hostname or ""
        except ValueError as exc:
            raise FunctionError("is_external_url", str(exc)) from None
        try:
            return _is_public_ip(ipaddress.ip_address(host))
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(host, None)
        except (OSError, UnicodeError) as exc:
            raise FunctionError("is_external_url", f"lookup {host}: {exc}") from None
        return all(_is_public_ip(ipaddress.ip_address(info[4][0])) for info in infos)

    @signature(_s("string"))
    def _func_x509_decode(self, pem: str) -> dict[str, Any]:
        try:
            return decode_pem(pem)
        except ValueError as exc:
            raise FunctionError("x509_decode", str(exc)) from None


FUNCTIONS = KyvernoFunctions()

# Kyverno's function names (beyond the standard library's), for checks and documentation.
KYVERNO_FUNCTIONS = sorted(
    name for name in KyvernoFunctions.FUNCTION_TABLE if name not in Functions.FUNCTION_TABLE
) + ["sum", "to_string"]
