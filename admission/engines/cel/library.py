"""The Kubernetes CEL libraries (k8s.io/apiserver/pkg/cel/library), with the API server's semantics.

- lists: `isSorted`, `sum`, `min`, `max`, `indexOf`, `lastIndexOf` on lists;
- regex: `find`, `findAll` on strings (RE2: linear time, Go's syntax);
- quantity: `quantity()`, `isQuantity()`, `isInteger`, `asInteger`, `asApproximateFloat`, `sign`, `add`, `sub`,
  `isGreaterThan`, `isLessThan`, `compareTo`;
- url: `url()`, `isURL()`, `getScheme`, `getHost`, `getHostname`, `getPort`, `getEscapedPath`, `getQuery`;
- ip/cidr: `ip()`, `isIP()`, `ip.isCanonical()`, `family`, `isUnspecified`, `isLoopback`,
  `isLinkLocalMulticast`, `isLinkLocalUnicast`, `isGlobalUnicast`; `cidr()`, `isCIDR()`, `containsIP`,
  `containsCIDR`, `ip`, `masked`, `prefixLength`; `string()` of an IP;
- semver: `semver()`, `isSemver()`, `major`, `minor`, `patch`, `isGreaterThan`, `isLessThan`, `compareTo`;
- format: `format.named()`, `format.dns1123Label()` and the other named formats, `validate`;
- sets: `sets.contains`, `sets.equivalent`, `sets.intersects`;
- jsonpatch: `jsonpatch.escapeKey` (MutatingAdmissionPolicy);
- authorizer: admission.engines.cel.authz (RBAC from cluster state).

Values without a JSON form are messages of admission.engines.cel.messages. A function that fails raises: cel-cpp
turns the exception into an evaluation error, a rule error.

Differences from cel-go, from what cel-cpp's Python API can express:
- a Python function cannot return an optional: `format.named(name)` returns the format or fails for an unknown
  name (cel-go: an optional), and `<format>.validate(s)` returns a value with `hasValue()` and `value()`
  (what policies call on it; cel-cpp's optional library keeps `orValue` to itself);
- cel-cpp tells overloads apart at run time by argument kinds only, and every library type is one kind
  (a message), and the built-in `string` conversion cannot be given a dispatcher: `string(ip)` works,
  `string(cidr)` is a type error (write `cidr.ip()` and `cidr.prefixLength()`).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from cel_expr_python import cel

from admission.engines.cel import formats
from admission.engines.cel import quantity as q
from admission.engines.cel.authz import AUTHZ
from admission.engines.cel.expr import Library, Overload
from admission.engines.cel.goerrors import go_quote, parse_addr_error, parse_prefix_error, regexp_error
from admission.engines.cel.messages import message_class, type_name
from admission.regex import RegexError, compile_regex, find_all

T = cel.Type
QUANTITY = T(type_name("Quantity"))
URL = T(type_name("URL"))
IP = T(type_name("IP"))
CIDR = T(type_name("CIDR"))
SEMVER = T(type_name("Semver"))
FORMAT = T(type_name("Format"))
FORMAT_RESULT = T(type_name("FormatResult"))
LIST = T.List(T.DYN)
STRINGS = T.List(T.STRING)


def _fn(name: str, *overloads: tuple[str, Any, Sequence[Any], bool, Callable[..., Any]]) -> tuple[Overload, ...]:
    return tuple(Overload(name, oid, ret, tuple(params), member, impl) for oid, ret, params, member, impl in overloads)


def _lib(name: str, functions: tuple[tuple[Overload, ...], ...]) -> Library:
    return Library(name, tuple(o for f in functions for o in f))


# --- lists ---------------------------------------------------------------------------------------------------

def _comparable(items: list[Any]) -> list[Any]:
    kinds = {_kind(x) for x in items}
    if len(kinds) > 1:
        raise ValueError("no such overload: list elements must be of one comparable type")
    return items


def _kind(x: Any) -> str:
    if isinstance(x, bool):
        return "bool"
    if isinstance(x, (int, float)):
        return "number"
    return type(x).__name__


def _sum(items: list[Any]) -> Any:
    if not items:
        return 0
    _comparable(items)
    total = items[0]
    for x in items[1:]:
        total = total + x
    if isinstance(total, int) and not isinstance(total, bool) and not -(2**63) <= total < 2**64:
        raise OverflowError("integer overflow")
    return total


def _min(items: list[Any]) -> Any:
    if not items:
        raise ValueError("min called on empty list")
    return min(_comparable(items))


def _max(items: list[Any]) -> Any:
    if not items:
        raise ValueError("max called on empty list")
    return max(_comparable(items))


def _is_sorted(items: list[Any]) -> bool:
    _comparable(items)
    return all(a <= b for a, b in zip(items, items[1:], strict=False))


def _index_of(items: list[Any], value: Any) -> int:
    for i, x in enumerate(items):
        if _equal(x, value):
            return i
    return -1


def _last_index_of(items: list[Any], value: Any) -> int:
    for i in range(len(items) - 1, -1, -1):
        if _equal(items[i], value):
            return i
    return -1


def _equal(a: Any, b: Any) -> bool:
    """CEL's heterogeneous equality on plain values: numbers by value, bool never equal to a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return bool(a == b)


LISTS = _lib("kubernetes.lists", (
    _fn("isSorted", ("list_isSorted", T.BOOL, [LIST], True, _is_sorted)),
    _fn("sum", ("list_sum", T.DYN, [LIST], True, _sum)),
    _fn("min", ("list_min", T.DYN, [LIST], True, _min)),
    _fn("max", ("list_max", T.DYN, [LIST], True, _max)),
    _fn("indexOf", ("list_indexOf", T.INT, [LIST, T.DYN], True, _index_of)),
    _fn("lastIndexOf", ("list_lastIndexOf", T.INT, [LIST, T.DYN], True, _last_index_of)),
))


# --- regex ---------------------------------------------------------------------------------------------------

def _regex(pattern: str) -> Any:
    try:
        return compile_regex(pattern)
    except RegexError as e:  # as Go's regexp.Compile says it: RE2's reason, then the fragment at fault
        reason, _, fragment = e.reason.partition(": ")
        raise ValueError(regexp_error(reason, fragment or pattern)) from None


def _find(text: str, pattern: str) -> str:
    m = _regex(pattern).search(text)
    return "" if m is None else str(m.group(0))


def _find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    return find_all(_regex(pattern), text, limit)


REGEX = _lib("kubernetes.regex", (
    _fn("find", ("string_find_string", T.STRING, [T.STRING, T.STRING], True, _find)),
    _fn("findAll",
        ("string_findAll_string", STRINGS, [T.STRING, T.STRING], True, _find_all),
        ("string_findAll_string_int", STRINGS, [T.STRING, T.STRING, T.INT], True, _find_all)),
))


# --- quantity ------------------------------------------------------------------------------------------------

def _quantity_msg(value: Decimal) -> Any:
    return message_class("Quantity")(value=q.canonical(value))


def _qv(msg: Any) -> Decimal:
    return q.from_canonical(msg.value)


def _quantity(text: str) -> Any:
    return _quantity_msg(q.parse(text))


def _is_quantity(text: str) -> bool:
    try:
        q.parse(text)
    except q.QuantityError:
        return False
    return True


def _compare(a: Decimal, b: Decimal) -> int:
    return (a > b) - (a < b)


def _q_add(a: Any, b: Any) -> Any:
    return _quantity_msg(q.add(_qv(a), _qv(b) if not isinstance(b, int) else Decimal(b)))


def _q_sub(a: Any, b: Any) -> Any:
    return _quantity_msg(q.sub(_qv(a), _qv(b) if not isinstance(b, int) else Decimal(b)))


def _q_float(a: Any) -> float:
    v = _qv(a)
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


QUANTITIES = _lib("kubernetes.quantity", (
    _fn("quantity", ("string_to_quantity", QUANTITY, [T.STRING], False, _quantity)),
    _fn("isQuantity", ("is_quantity_string", T.BOOL, [T.STRING], False, _is_quantity)),
    _fn("sign", ("quantity_sign", T.INT, [QUANTITY], True, lambda a: _compare(_qv(a), Decimal(0)))),
    _fn("isInteger", ("quantity_is_integer", T.BOOL, [QUANTITY], True, lambda a: q.is_integer(_qv(a)))),
    _fn("asInteger", ("quantity_get_integer", T.INT, [QUANTITY], True, lambda a: q.as_integer(_qv(a)))),
    _fn("asApproximateFloat", ("quantity_get_float", T.DOUBLE, [QUANTITY], True, _q_float)),
    _fn("add",
        ("quantity_add", QUANTITY, [QUANTITY, QUANTITY], True, _q_add),
        ("quantity_add_int", QUANTITY, [QUANTITY, T.INT], True, _q_add)),
    _fn("sub",
        ("quantity_sub", QUANTITY, [QUANTITY, QUANTITY], True, _q_sub),
        ("quantity_sub_int", QUANTITY, [QUANTITY, T.INT], True, _q_sub)),
    _fn("isGreaterThan", ("quantity_is_greater_than", T.BOOL, [QUANTITY, QUANTITY], True,
                          lambda a, b: _qv(a) > _qv(b))),
    _fn("isLessThan", ("quantity_is_less_than", T.BOOL, [QUANTITY, QUANTITY], True,
                       lambda a, b: _qv(a) < _qv(b))),
    _fn("compareTo", ("quantity_compare_to", T.INT, [QUANTITY, QUANTITY], True,
                      lambda a, b: _compare(_qv(a), _qv(b)))),
))


# --- url -----------------------------------------------------------------------------------------------------

def _parse_url(text: str) -> Any:
    """Go's url.ParseRequestURI: an absolute URI or an absolute path; no fragment, no control characters."""
    head = f"URL parse error during conversion from string: parse {go_quote(text)}"  # url.Error's words
    if not text:
        raise ValueError(f"{head}: empty url")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise ValueError(f"{head}: net/url: invalid control character in URL")
    if "#" in text:
        raise ValueError(f"{head}: invalid URI for request")
    parts = urlsplit(text)
    if not parts.scheme and not text.startswith("/"):
        raise ValueError(f"{head}: invalid URI for request")
    try:
        parts.port  # noqa: B018 - raises for an invalid port
    except ValueError:
        port = ":" + parts.netloc.rpartition(":")[2]
        raise ValueError(f"{head}: invalid port {go_quote(port)} after host") from None
    for c in parts.netloc.rpartition("@")[2]:  # url.parseHost: what a host name may hold
        if ord(c) < 0x80 and not c.isalnum() and c not in "-_.~!$&'()*+,;=:[]<>\"%":
            raise ValueError(f"{head}: invalid character {go_quote(c)} in host name")
    return message_class("URL")(url=text)


def _is_url(text: str) -> bool:
    try:
        _parse_url(text)
    except ValueError:
        return False
    return True


def _host(u: Any) -> str:
    return urlsplit(u.url).netloc.rpartition("@")[2]


def _hostname(u: Any) -> str:
    host = _host(u)
    if host.startswith("["):
        return host[1:host.index("]")] if "]" in host else host[1:]
    return host.rsplit(":", 1)[0] if ":" in host else host


def _port(u: Any) -> str:
    host = _host(u)
    if host.startswith("["):
        rest = host[host.index("]") + 1:] if "]" in host else ""
        return rest[1:] if rest.startswith(":") else ""
    return host.rsplit(":", 1)[1] if ":" in host else ""


# what Go's url.EscapedPath keeps of a path as written (validEncoded), and leaves unescaped (shouldEscape)
_PATH_AS_WRITTEN = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~!$&'()*+,;=:@[]/%")


def _escaped_path(u: Any) -> str:
    """Go's URL.EscapedPath: the path as written when it is validly escaped, else the path escaped."""
    raw = urlsplit(u.url).path
    if all(c in _PATH_AS_WRITTEN for c in raw) and _valid_escapes(raw):
        return raw
    return quote(unquote(raw), safe="$&+,/:;=@-_.~")


def _valid_escapes(text: str) -> bool:
    i = text.find("%")
    while i >= 0:
        if not all(c in "0123456789abcdefABCDEF" for c in text[i + 1:i + 3]) or len(text) < i + 3:
            return False
        i = text.find("%", i + 3)
    return True


def _query(u: Any) -> dict[str, list[str]]:
    return {k: list(v) for k, v in parse_qs(urlsplit(u.url).query, keep_blank_values=True).items()}


URLS = _lib("kubernetes.url", (
    _fn("url", ("string_to_url", URL, [T.STRING], False, _parse_url)),
    _fn("isURL", ("is_url_string", T.BOOL, [T.STRING], False, _is_url)),
    _fn("getScheme", ("url_get_scheme", T.STRING, [URL], True, lambda u: urlsplit(u.url).scheme)),
    _fn("getHost", ("url_get_host", T.STRING, [URL], True, _host)),
    _fn("getHostname", ("url_get_hostname", T.STRING, [URL], True, _hostname)),
    _fn("getPort", ("url_get_port", T.STRING, [URL], True, _port)),
    _fn("getEscapedPath", ("url_get_escaped_path", T.STRING, [URL], True, _escaped_path)),
    _fn("getQuery", ("url_get_query", T.Map(T.STRING, STRINGS), [URL], True, _query)),
))


# --- ip / cidr -----------------------------------------------------------------------------------------------

def _ip_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """netip.ParseAddr as the Kubernetes library uses it: no zones, no IPv4-mapped IPv6."""
    head = f"IP Address {go_quote(text)} parse error during conversion from string: "
    if "%" in text:  # netip parses a zone; the Kubernetes library refuses it
        if text.startswith("%") or text.endswith("%") or "." in text.partition("%")[0] and ":" not in text:
            raise ValueError(head + parse_addr_error(text))
        raise ValueError(f"IP address {go_quote(text)} with zone value is not allowed")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(head + parse_addr_error(text)) from None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise ValueError(f"IPv4-mapped IPv6 address {go_quote(text)} is not allowed")
    return addr


def _ip(text: str) -> Any:
    return message_class("IP")(address=str(_ip_address(text)))


def _is_ip(text: str) -> bool:
    try:
        _ip_address(text)
    except ValueError:
        return False
    return True


def _ip_is_canonical(text: str) -> bool:
    return str(_ip_address(text)) == text


def _addr(msg: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(msg.address)


def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    # the Kubernetes library says its prefix twice
    head = "network address parse error during conversion from string: " * 2
    if "%" in text or "/" not in text:
        raise ValueError(head + parse_prefix_error(text))
    address, _, prefix = text.partition("/")
    try:
        _ip_address(address)
    except ValueError:
        raise ValueError(head + parse_prefix_error(text)) from None
    if not prefix.isdigit() or (len(prefix) > 1 and prefix[0] == "0"):
        raise ValueError(head + parse_prefix_error(text))
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(head + parse_prefix_error(text)) from None


def _cidr(text: str) -> Any:
    _network(text)
    address, _, prefix = text.partition("/")
    return message_class("CIDR")(prefix=f"{ipaddress.ip_address(address)}/{int(prefix)}")


def _is_cidr(text: str) -> bool:
    try:
        _network(text)
    except ValueError:
        return False
    return True


def _net(msg: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(msg.prefix, strict=False)


def _contains_ip(c: Any, ip: Any) -> bool:
    addr = _addr(ip) if not isinstance(ip, str) else _ip_address(ip)
    net = _net(c)
    return addr.version == net.version and addr in net


def _contains_cidr(c: Any, other: Any) -> bool:
    inner = _net(other) if not isinstance(other, str) else _network(other)
    outer = _net(c)
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _link_local_multicast(msg: Any) -> bool:
    a = _addr(msg)
    if a.version == 4:
        return a in ipaddress.ip_network("224.0.0.0/24")
    return (int(a) >> 112) & 0xFF0F == 0xFF02  # Go's netip: ff02::/16 with any flags


def _global_unicast(msg: Any) -> bool:
    """Go's netip.Addr.IsGlobalUnicast: not unspecified, loopback, multicast, link-local or the broadcast address."""
    a = _addr(msg)
    if a.is_unspecified or a.is_loopback or a.is_multicast or a.is_link_local:
        return False
    return not (a.version == 4 and str(a) == "255.255.255.255")


IPS = _lib("kubernetes.ip", (
    _fn("ip", ("string_to_ip", IP, [T.STRING], False, _ip),
        ("cidr_ip", IP, [CIDR], True, lambda c: message_class("IP")(address=c.prefix.partition("/")[0]))),
    _fn("isIP", ("is_ip", T.BOOL, [T.STRING], False, _is_ip)),
    _fn("ip.isCanonical", ("ip_is_canonical", T.BOOL, [T.STRING], False, _ip_is_canonical)),
    _fn("family", ("ip_family", T.INT, [IP], True, lambda a: _addr(a).version)),
    _fn("isUnspecified", ("ip_is_unspecified", T.BOOL, [IP], True, lambda a: _addr(a).is_unspecified)),
    _fn("isLoopback", ("ip_is_loopback", T.BOOL, [IP], True, lambda a: _addr(a).is_loopback)),
    _fn("isLinkLocalMulticast", ("ip_is_link_local_multicast", T.BOOL, [IP], True, _link_local_multicast)),
    _fn("isLinkLocalUnicast", ("ip_is_link_local_unicast", T.BOOL, [IP], True,
                               lambda a: _addr(a).is_link_local)),
    _fn("isGlobalUnicast", ("ip_is_global_unicast", T.BOOL, [IP], True, _global_unicast)),
    _fn("cidr", ("string_to_cidr", CIDR, [T.STRING], False, _cidr)),
    _fn("isCIDR", ("is_cidr", T.BOOL, [T.STRING], False, _is_cidr)),
    _fn("containsIP",
        ("cidr_contains_ip_string", T.BOOL, [CIDR, T.STRING], True, _contains_ip),
        ("cidr_contains_ip_ip", T.BOOL, [CIDR, IP], True, _contains_ip)),
    _fn("containsCIDR",
        ("cidr_contains_cidr_string", T.BOOL, [CIDR, T.STRING], True, _contains_cidr),
        ("cidr_contains_cidr", T.BOOL, [CIDR, CIDR], True, _contains_cidr)),
    _fn("masked", ("cidr_masked", CIDR, [CIDR], True, lambda c: message_class("CIDR")(prefix=str(_net(c))))),
    _fn("prefixLength", ("cidr_prefix_length", T.INT, [CIDR], True, lambda c: _net(c).prefixlen)),
    _fn("string", ("ip_to_string", T.STRING, [IP], False, lambda a: a.address)),
))


# --- semver --------------------------------------------------------------------------------------------------

def _semver_parts(text: str, normalize: bool = False) -> tuple[int, int, int, str]:
    from admission.engines.cel.formats import parse_semver

    return parse_semver(text, normalize)


def _semver(text: str, normalize: bool = False) -> Any:
    major, minor, patch, pre = _semver_parts(text, normalize)
    canonical = f"{major}.{minor}.{patch}" + (f"-{pre}" if pre else "")
    return message_class("Semver")(version=canonical)


def _is_semver(text: str, normalize: bool = False) -> bool:
    try:
        _semver_parts(text, normalize)
    except ValueError:
        return False
    return True


def _semver_compare(a: Any, b: Any) -> int:
    from admission.engines.cel.formats import compare_semver

    return compare_semver(a.version, b.version)


SEMVERS = _lib("kubernetes.semver", (
    _fn("semver",
        ("string_to_semver", SEMVER, [T.STRING], False, _semver),
        ("string_bool_to_semver", SEMVER, [T.STRING, T.BOOL], False, _semver)),
    _fn("isSemver",
        ("is_semver", T.BOOL, [T.STRING], False, _is_semver),
        ("is_semver_normalize", T.BOOL, [T.STRING, T.BOOL], False, _is_semver)),
    _fn("major", ("semver_major", T.INT, [SEMVER], True, lambda s: _semver_parts(s.version)[0])),
    _fn("minor", ("semver_minor", T.INT, [SEMVER], True, lambda s: _semver_parts(s.version)[1])),
    _fn("patch", ("semver_patch", T.INT, [SEMVER], True, lambda s: _semver_parts(s.version)[2])),
    _fn("isGreaterThan", ("semver_is_greater_than", T.BOOL, [SEMVER, SEMVER], True,
                          lambda a, b: _semver_compare(a, b) > 0)),
    _fn("isLessThan", ("semver_is_less_than", T.BOOL, [SEMVER, SEMVER], True,
                       lambda a, b: _semver_compare(a, b) < 0)),
    _fn("compareTo", ("semver_compare_to", T.INT, [SEMVER, SEMVER], True, _semver_compare)),
))


# --- format --------------------------------------------------------------------------------------------------

def _format(name: str) -> Any:
    if name not in formats.NAMED:
        raise ValueError(f"unknown format {name!r}; known: {', '.join(sorted(formats.NAMED))}")
    return message_class("Format")(name=name)


def _validate(fmt: Any, text: str) -> Any:
    errors = formats.NAMED[fmt.name](text)
    return message_class("FormatResult")(errors=errors, present=bool(errors))


def _result_value(r: Any) -> list[str]:
    if not r.present:
        raise ValueError("optional.none() dereference")
    return list(r.errors)


FORMATS = _lib("kubernetes.format", (
    _fn("format.named", ("format_named", FORMAT, [T.STRING], False, _format)),
    *(_fn(f"format.{name}", (f"format_{name}", FORMAT, [], False, lambda n=name: _format(n)))
      for name in formats.NAMED),
    _fn("validate", ("format_validate", FORMAT_RESULT, [FORMAT, T.STRING], True, _validate)),
    _fn("hasValue", ("format_result_has_value", T.BOOL, [FORMAT_RESULT], True, lambda r: bool(r.present))),
    _fn("value", ("format_result_value", STRINGS, [FORMAT_RESULT], True, _result_value)),
))


# --- sets, jsonpatch -----------------------------------------------------------------------------------------

def _contains_all(a: list[Any], b: list[Any]) -> bool:
    return all(any(_equal(x, y) for x in a) for y in b)


SETS = _lib("kubernetes.sets", (
    _fn("sets.contains", ("list_sets_contains_list", T.BOOL, [LIST, LIST], False, _contains_all)),
    _fn("sets.equivalent", ("list_sets_equivalent_list", T.BOOL, [LIST, LIST], False,
                            lambda a, b: _contains_all(a, b) and _contains_all(b, a))),
    _fn("sets.intersects", ("list_sets_intersects_list", T.BOOL, [LIST, LIST], False,
                            lambda a, b: any(any(_equal(x, y) for x in a) for y in b))),
))

JSONPATCH = _lib("kubernetes.jsonpatch", (
    _fn("jsonpatch.escapeKey", ("string_jsonpatch_escapeKey_string", T.STRING, [T.STRING], False,
                                lambda s: s.replace("~", "~0").replace("/", "~1"))),
))


KUBERNETES_LIBRARIES: tuple[Library, ...] = (LISTS, REGEX, QUANTITIES, URLS, IPS, SEMVERS, FORMATS, SETS,
                                             JSONPATCH, AUTHZ)
