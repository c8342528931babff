"""Evaluation errors in the API server's words.

The API server evaluates CEL with cel-go and the Kubernetes libraries (Go); we evaluate with cel-cpp, which
says the same things in other words (`cannot convert string to int` where cel-go says `type conversion error
from 'string' to 'int'`). A denial quotes the error, so `cel_go` rewrites cel-cpp's wording of the errors both
raise into cel-go's, and the helpers below word the Kubernetes libraries' parse errors as Go does (Go's %q
quoting, netip's and regexp's messages). Each wording was checked against kube-apiserver 1.36
(tests/test_e2e_cel_parity.py).
"""

from __future__ import annotations

import ipaddress
import json
import re

# RE2's error strings (C++) -> Go regexp/syntax's ErrorCode strings
_RE2_TO_GO = {
    "missing )": "missing closing )",
    "missing ]": "missing closing ]",
    "unexpected )": "unexpected )",
    "missing (": "unexpected )",
    "trailing \\": "trailing backslash at end of expression",
    "no argument for repetition operator": "missing argument to repetition operator",
    "bad repetition operator": "invalid nested repetition operator",
    "invalid repetition size": "invalid repeat count",
    "invalid perl operator": "invalid or unsupported Perl syntax",
    "invalid named capture group": "invalid named capture",
    "invalid character class": "invalid character class",
    "invalid character class range": "invalid character class range",
    "invalid escape sequence": "invalid escape sequence",
    "invalid UTF-8": "invalid UTF-8",
}

_REWRITES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^cannot convert (string|int|uint|double|bool|bytes) to (string|int|uint|double|bool|bytes)$"),
     r"type conversion error from '\1' to '\2'"),
    (re.compile(r"^Type conversion error from (.*)$"), r"type conversion error from \1"),
    (re.compile(r"^(double|uint64) out of int64 range$"), "integer overflow"),
    (re.compile(r"^(double|int64) out of uint64 range$"), "unsigned integer overflow"),
    (re.compile(r"^divide by zero$"), "division by zero"),
    (re.compile(r"^String to Duration conversion failed$"),
     "type conversion error from 'string' to 'google.protobuf.Duration'"),
    (re.compile(r"^String to Timestamp conversion failed$"),
     "type conversion error from 'string' to 'google.protobuf.Timestamp'"),
    (re.compile(r"^Index error: index=(-?\d+) size=\d+$"), r"index out of bounds: \1"),
]
_INVALID_REGEX = re.compile(r"^invalid regular expression: (?P<reason>.*?): (?P<fragment>.*)$", re.S)


def cel_go(message: str) -> str:
    """cel-cpp's wording of an evaluation error as cel-go words it (unchanged when there is no rewrite)."""
    found = _INVALID_REGEX.match(message)
    if found:
        return regexp_error(found.group("reason"), found.group("fragment"))
    for pattern, replacement in _REWRITES:
        if pattern.match(message):
            return pattern.sub(replacement, message)
    return message


def regexp_error(re2_reason: str, fragment: str) -> str:
    """A pattern that does not compile, as Go's regexp.Compile says it."""
    return f"error parsing regexp: {_RE2_TO_GO.get(re2_reason, re2_reason)}: `{fragment}`"


def go_quote(text: str) -> str:
    """Go's %q of a string (close enough: JSON's escaping, without escaping non-ASCII)."""
    return json.dumps(text, ensure_ascii=False)


def parse_addr_error(text: str) -> str:
    """netip.ParseAddr's error for a string that is not an IP address."""
    detail = _addr_problem(text) or "unable to parse IP"
    return f"ParseAddr({go_quote(text)}): {detail}"


def _addr_problem(text: str) -> str:
    """netip.ParseAddr's message (with its `(at "...")`), or "" when it parses."""
    for c in text:
        if c == ".":
            return _ipv4_problem(text, text)
        if c == ":":
            return _ipv6_problem(text)
        if c == "%":
            return "missing IPv6 address"
    return "unable to parse IP"


def _at(message: str, rest: str) -> str:
    return f"{message} (at {go_quote(rest)})" if rest else message


def _ipv4_problem(text: str, whole: str) -> str:
    """netip.parseIPv4Fields' checks, in its order."""
    fields, digits, value = 0, 0, 0
    for i, c in enumerate(text):
        if "0" <= c <= "9":
            if digits == 1 and value == 0:
                return "IPv4 field has octet with leading zero"
            value = value * 10 + int(c)
            digits += 1
            if value > 255:
                return "IPv4 field has value >255"
        elif c == ".":
            if i == 0 or i == len(text) - 1 or text[i - 1] == ".":
                return _at("IPv4 field must have at least one digit", text[i:])
            if fields == 3:
                return "IPv4 address too long"
            fields += 1
            digits, value = 0, 0
        else:
            return _at("unexpected character", text[i:])
    if fields < 3:
        return "IPv4 address too short"
    return ""


def _ipv6_problem(text: str) -> str:
    """netip.parseIPv6's checks, in its order."""
    s = text
    if "%" in s:
        s, _, zone = s.partition("%")
        if not zone:
            return "zone must be a non-empty string"
    ellipsis = -1
    if s.startswith("::"):
        ellipsis, s = 0, s[2:]
        if not s:
            return ""
    i = 0
    while i < 16:
        off, acc = 0, 0
        while off < len(s) and s[off] in "0123456789abcdefABCDEF":
            acc = (acc << 4) + int(s[off], 16)
            if off > 3:
                return _at("each group must have 4 or less digits", s)
            if acc > 0xFFFF:
                return _at("IPv6 field has value >=2^16", s)
            off += 1
        if off == 0:
            return _at("each colon-separated field must have at least one digit", s)
        if off < len(s) and s[off] == ".":
            if ellipsis < 0 and i != 12:
                return _at("embedded IPv4 address must replace the final 2 fields of the address", s)
            if i + 4 > 16:
                return _at("too many hex fields to fit an embedded IPv4 at the end of the address", s)
            return _ipv4_problem(s, text)
        i += 2
        s = s[off:]
        if not s:
            break
        if s[0] != ":":
            return _at("unexpected character, want colon", s)
        if len(s) == 1:
            return _at("colon must be followed by more characters", s)
        s = s[1:]
        if s[0] == ":":
            if ellipsis >= 0:
                return _at("multiple :: in address", s)
            ellipsis, s = i, s[1:]
            if not s:
                break
    if s:
        return _at("trailing garbage after address", s)
    if i < 16 and ellipsis < 0:
        return "address string too short"
    if i >= 16 and ellipsis >= 0:
        return "the :: must expand to at least one field of zeros"
    return ""


def parse_prefix_error(text: str) -> str:
    """netip.ParsePrefix's error for a string that is not a CIDR prefix."""
    head = f"netip.ParsePrefix({go_quote(text)})"
    address, slash, bits = text.rpartition("/")
    if not slash:
        return f"{head}: no '/'"
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return f"{head}: {parse_addr_error(address)}"
    if not bits.isdigit() or (len(bits) > 1 and bits[0] == "0"):
        return f"{head}: bad bits after slash: {go_quote(bits)}"
    return f"{head}: prefix length out of range"
