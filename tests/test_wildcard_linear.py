"""Wildcard patterns (`*`, `?`) are matched without a regex engine, in at most len(pattern) * len(value)
steps; what they match is what the equivalent anchored regular expression matches."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from admission import regex
from admission.engines.yaml.values import go_parse_float, go_parse_int
from admission.wildcard import wildcard_match


def _as_regex(pattern: str) -> str:
    return "^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$"


@given(st.text(alphabet="ab*?.", max_size=10), st.text(alphabet="ab.", max_size=12))
def test_wildcards_match_as_the_equivalent_regex(pattern: str, value: str) -> None:
    assert wildcard_match(pattern, value) == regex.search("(?s)" + _as_regex(pattern), value)


def test_many_stars_against_a_long_value_answer() -> None:
    assert wildcard_match("*a" * 50 + "b", "a" * 5000) is False
    assert wildcard_match("*a" * 50 + "*", "a" * 5000) is True


def test_long_numbers_in_resources_parse_in_linear_time() -> None:
    assert go_parse_float("1" * 100_000 + "x") is None
    assert go_parse_float("1" * 300 + ".5") == float("1" * 300 + ".5")
    assert go_parse_int("1" * 10_000) is None  # beyond int64, and no int() of thousands of digits
    assert go_parse_int("-" + "0" * 30 + "7") == -7
