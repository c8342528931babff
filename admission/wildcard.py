"""Wildcard patterns as Kyverno and Pod Security exclusions use them: `*` matches any run of characters
(also none), `?` exactly one, everything else is literal.

No regular expression is involved: wildcard_match walks pattern and value once, going back only to the
last `*` seen, so it takes at most len(pattern) * len(value) steps whatever either holds."""

from __future__ import annotations


def contains_wildcard(s: str) -> bool:
    return "*" in s or "?" in s


def wildcard_match(pattern: str, value: str) -> bool:
    """`*` matches any run of characters (also none), `?` exactly one; everything else is literal."""
    if pattern == "":
        return value == ""
    if pattern == "*":
        return True
    if "*" not in pattern and "?" not in pattern:
        return pattern == value
    p = v = 0
    star_p = -1
    star_v = 0
    while v < len(value):
        if p < len(pattern) and (pattern[p] == "?" or pattern[p] == value[v]):
            p += 1
            v += 1
        elif p < len(pattern) and pattern[p] == "*":
            star_p = p
            star_v = v
            p += 1
        elif star_p >= 0:
            p = star_p + 1
            star_v += 1
            v = star_v
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)
