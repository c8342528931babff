"""Regular expressions that policies supply, on RE2 (the `google-re2` package).

RE2 matches in time linear in the text, whatever the pattern: `^(a+)+$` against a long run of `a`s
followed by `!` answers as fast as any other pattern, where a backtracking engine (Python's `re`) takes
exponential time. RE2's syntax is Go's `regexp` syntax, which Kyverno uses, so a pattern means here what
it means in Kyverno; what RE2 cannot express (backreferences, lookaround) is an error, as in Kyverno.

Every regular expression a policy or a request can choose goes through `compile_regex`; Python's `re`
remains only for this project's own fixed patterns.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, Protocol

import re2

# Patterns longer than this are compiled each time (not cached); RE2 bounds its own memory for them.
_CACHED_LENGTH = 4096


class RegexError(ValueError):
    """A pattern RE2 cannot compile (a syntax error, or a construct such as a backreference or a
    lookaround that has no linear-time match)."""

    def __init__(self, pattern: str, reason: str) -> None:
        super().__init__(f"error parsing regexp {pattern!r}: {reason}")
        self.pattern = pattern
        self.reason = reason


class Match(Protocol):
    """What a match of a compiled pattern offers (RE2's match objects have Python's re.Match API)."""

    def group(self, *groups: int | str) -> Any: ...
    def span(self, group: int = 0) -> tuple[int, int]: ...


class Regex(Protocol):
    """A compiled pattern (RE2's have Python's re.Pattern API)."""

    def search(self, text: str, pos: int = 0, endpos: int = ...) -> Match | None: ...


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # the error is raised as RegexError, not written to stderr
    return options


_OPTIONS = _options()


def _compile(pattern: str) -> Regex:
    try:
        compiled: Regex = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", errors="replace")
        raise RegexError(pattern, str(reason)) from None
    except (TypeError, ValueError) as exc:  # e.g. a NUL or a surrogate that cannot be encoded
        raise RegexError(pattern, str(exc)) from None
    return compiled


_compile_cached = lru_cache(maxsize=1024)(_compile)


def compile_regex(pattern: str) -> Regex:
    """The pattern compiled with RE2 (cached). Raises RegexError for one RE2 cannot express."""
    if len(pattern) > _CACHED_LENGTH:
        return _compile(pattern)
    return _compile_cached(pattern)


def check_regex(pattern: str) -> None:
    """Raise RegexError if RE2 cannot compile the pattern."""
    compile_regex(pattern)


def is_re2(regex: Regex) -> bool:
    """Whether a compiled pattern is RE2's (for tests: nothing falls back to a backtracking engine)."""
    return type(regex).__module__.split(".")[0] == "re2"


def search(pattern: str, text: str) -> bool:
    """Whether the pattern matches anywhere in the text (Go's MatchString)."""
    return compile_regex(pattern).search(text) is not None


def replace_all(pattern: str, text: str, replacement: Callable[[Match], str]) -> str:
    """Go's Regexp.ReplaceAllStringFunc: every leftmost non-overlapping match replaced, an empty match
    right after a previous match ignored (so `a*` on "baac" gives "-b-c-", as in Go)."""
    regex = compile_regex(pattern)
    out: list[str] = []
    last_end = 0
    pos = 0
    end = len(text)
    while pos <= end:
        m = regex.search(text, pos)
        if m is None:
            break
        start, stop = m.span()
        out.append(text[last_end:start])
        if stop > last_end or start == 0:
            out.append(replacement(m))
        last_end = stop
        pos = pos + 1 if pos + 1 > stop else stop
    out.append(text[last_end:])
    return "".join(out)


def find_all(regex: Regex, text: str, limit: int = -1) -> list[str]:
    """Go's Regexp.FindAllString(text, limit): the leftmost non-overlapping matches, at most `limit` (all when
    negative), an empty match right after a previous match skipped (`a*` on "baac" gives "", "aa", "")."""
    out: list[str] = []
    pos = 0
    last_end = -1
    while pos <= len(text) and (limit < 0 or len(out) < limit):
        m = regex.search(text, pos)
        if m is None:
            break
        start, stop = m.span()
        if not (start == stop and start == last_end):
            out.append(text[start:stop])
            last_end = stop
        pos = stop if stop > start else stop + 1
    return out
