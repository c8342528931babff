"""Named string formats (the Kubernetes `format` CEL library) and semantic versions (the `semver` library).

Each format validator returns the list of problems (empty when the string is valid), worded as
k8s.io/apimachinery's validation functions word them. Semantic versions follow semver 2.0.0 as blang/semver
parses them (the library the API server uses), with its optional normalization (a leading "v", missing minor
or patch, leading zeros).
"""

from __future__ import annotations

import base64
import datetime
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from admission.regex import search


def _full(pattern: str, value: str) -> bool:
    return search(pattern, value)

_DNS1123_LABEL = r"^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?)$"
_DNS1123_SUBDOMAIN = r"^(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$"
_DNS1035_LABEL = r"^(?:[a-z]([-a-z0-9]*[a-z0-9])?)$"
_QUALIFIED_NAME = r"^(?:([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
_LABEL_VALUE = r"^(?:(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?)$"


def _max_len(value: str, limit: int) -> list[str]:
    return [f"must be no more than {limit} characters"] if len(value) > limit else []


def dns1123_label(value: str) -> list[str]:
    errs = _max_len(value, 63)
    if not _full(_DNS1123_LABEL, value):
        errs.append("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
                    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
    return errs


def dns1123_subdomain(value: str) -> list[str]:
    errs = _max_len(value, 253)
    if not _full(_DNS1123_SUBDOMAIN, value):
        errs.append("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                    "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    return errs


def dns1035_label(value: str) -> list[str]:
    errs = _max_len(value, 63)
    if not _full(_DNS1035_LABEL, value):
        errs.append("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
                    "regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
    return errs


def _prefix(check: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """The ...Prefix formats (generateName): a trailing '-' is allowed, as the name gets a suffix."""
    return lambda value: check(value[:-1] if value.endswith("-") else value)


def qualified_name(value: str) -> list[str]:
    errs: list[str] = []
    prefix, sep, name = value.rpartition("/")
    if sep:
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += [f"prefix part {e}" for e in dns1123_subdomain(prefix)]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > 63:
        errs.append("name part must be no more than 63 characters")
    if name and not _full(_QUALIFIED_NAME, name):
        errs.append("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
    return errs


def label_value(value: str) -> list[str]:
    errs = _max_len(value, 63)
    if not _full(_LABEL_VALUE, value):
        errs.append("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
    return errs


def uri(value: str) -> list[str]:
    parts = urlsplit(value)
    if (not parts.scheme and not value.startswith("/")) or "#" in value or any(c.isspace() for c in value):
        return ["invalid URI"]
    return []


def uuid_format(value: str) -> list[str]:
    try:
        uuid.UUID(value)
    except ValueError:
        return ["does not match the UUID format"]
    return [] if len(value) in (32, 36) else ["does not match the UUID format"]


def byte_format(value: str) -> list[str]:
    try:
        base64.b64decode(value, validate=True)
    except ValueError:
        return ["invalid base64"]
    return []


def date_format(value: str) -> list[str]:
    try:
        datetime.date.fromisoformat(value)
    except ValueError:
        return ["invalid date"]
    return [] if _full(r"^\d{4}-\d{2}-\d{2}$", value) else ["invalid date"]


def datetime_format(value: str) -> list[str]:
    if not _full(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$", value):
        return ["invalid datetime"]
    try:
        datetime.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        return ["invalid datetime"]
    return []


NAMED: dict[str, Callable[[str], list[str]]] = {
    "dns1123Label": dns1123_label,
    "dns1123Subdomain": dns1123_subdomain,
    "dns1035Label": dns1035_label,
    "qualifiedName": qualified_name,
    "dns1123LabelPrefix": _prefix(dns1123_label),
    "dns1123SubdomainPrefix": _prefix(dns1123_subdomain),
    "dns1035LabelPrefix": _prefix(dns1035_label),
    "labelValue": label_value,
    "uri": uri,
    "uuid": uuid_format,
    "byte": byte_format,
    "date": date_format,
    "datetime": datetime_format,
}


# --- semver --------------------------------------------------------------------------------------------------

_NUMERIC = r"^(?:0|[1-9][0-9]*)$"
_IDENT = r"^(?:[0-9A-Za-z-]+)$"


def parse_semver(text: str, normalize: bool = False) -> tuple[int, int, int, str]:
    """(major, minor, patch, prerelease) of a version string; raises ValueError for an invalid one."""
    if not isinstance(text, str) or not text:
        raise ValueError(f"could not parse {text!r} as a semver: version string empty")
    s = text
    if normalize:
        if s[:1] in ("v", "V"):
            s = s[1:]
        core, sep, rest = _split_core(s)
        parts = core.split(".")
        if len(parts) > 3 or not all(p.isdigit() for p in parts):
            raise ValueError(f"could not parse {text!r} as a semver")
        parts = [str(int(p)) for p in parts] + ["0"] * (3 - len(parts))
        s = ".".join(parts) + sep + rest
    core, sep, rest = _split_core(s)
    nums = core.split(".")
    if len(nums) != 3 or not all(_full(_NUMERIC, n) for n in nums):
        raise ValueError(f"could not parse {text!r} as a semver: No Major.Minor.Patch elements found")
    pre = ""
    if sep:
        pre, _, build = (rest.partition("+") if sep == "-" else ("", "+", rest))
        if sep == "-":
            for ident in pre.split("."):
                if not _full(_IDENT, ident) or (ident.isdigit() and not _full(_NUMERIC, ident)):
                    raise ValueError(f"could not parse {text!r} as a semver: invalid prerelease {ident!r}")
        if (sep == "+" or "+" in rest) and not all(_full(_IDENT, b) for b in build.split(".")):
            raise ValueError(f"could not parse {text!r} as a semver: invalid build metadata")
    return int(nums[0]), int(nums[1]), int(nums[2]), pre


def _split_core(s: str) -> tuple[str, str, str]:
    for i, ch in enumerate(s):
        if ch in "-+":
            return s[:i], ch, s[i + 1:]
    return s, "", ""


def compare_semver(a: str, b: str) -> int:
    """semver 2.0.0 precedence of two canonical versions: -1, 0 or 1 (build metadata ignored)."""
    pa, pb = parse_semver(a), parse_semver(b)
    if pa[:3] != pb[:3]:
        return -1 if pa[:3] < pb[:3] else 1
    return _compare_pre(pa[3], pb[3])


def _compare_pre(a: str, b: str) -> int:
    if a == b:
        return 0
    if not a:
        return 1
    if not b:
        return -1
    xs, ys = a.split("."), b.split(".")
    for x, y in zip(xs, ys, strict=False):
        if x == y:
            continue
        if x.isdigit() and y.isdigit():
            return -1 if int(x) < int(y) else 1
        if x.isdigit():
            return -1
        if y.isdigit():
            return 1
        return -1 if x < y else 1
    return (len(xs) > len(ys)) - (len(xs) < len(ys))
