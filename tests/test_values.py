"""Kyverno's scalar semantics. Expected values come from Kyverno's own tests and code:
pkg/engine/pattern/pattern_test.go (TestValidate, ranges, quantities, durations), ext/wildcard
(go-wildcard v1.0.3), k8s.io/apimachinery resource.ParseQuantity, Go's time.ParseDuration, blang/semver."""

from decimal import Decimal

import pytest

from admission.engines.yaml.values import (
    compare_value,
    deep_equal,
    go_format_float,
    go_sprint,
    parse_duration,
    parse_duration_ns,
    parse_quantity,
    parse_semver,
    string_operator,
    wildcard_match,
)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("*", "", True),
        ("*", "anything", True),
        ("", "", True),
        ("", "a", False),
        ("?*", "", False),
        ("?*", "a", True),
        ("?", "ab", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("*:latest", "nginx:latest", True),
        ("*:latest", "nginx:1.2", False),
        ("*:*", "nginx", False),
        ("*.example.com/*", "reg.example.com/app:1", True),
        ("a*b*c", "aXXbYYc", True),
        ("a*b*c", "aXXbYY", False),
        ("[abc]", "a", False),  # brackets are literal, unlike fnmatch
        ("[abc]", "[abc]", True),
        ("**", "x", True),
    ],
)
def test_wildcard_match(pattern, value, expected):
    assert wildcard_match(pattern, value) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1Gi", Decimal(1 << 30)),
        ("1024Mi", Decimal(1 << 30)),
        ("500m", Decimal("0.5")),
        ("0.5", Decimal("0.5")),
        (".5", Decimal("0.5")),
        ("1e3", Decimal(1000)),
        ("1E3", Decimal(1000)),
        ("1e-3", Decimal("0.001")),
        ("1k", Decimal(1000)),
        ("1M", Decimal(10**6)),
        ("1G", Decimal(10**9)),
        ("1T", Decimal(10**12)),
        ("1P", Decimal(10**15)),
        ("1E", Decimal(10**18)),
        ("1Ki", Decimal(1024)),
        ("1Ti", Decimal(1 << 40)),
        ("1Pi", Decimal(1 << 50)),
        ("1Ei", Decimal(1 << 60)),
        ("100n", Decimal("1e-7")),
        ("10u", Decimal("1e-5")),
        ("-1Gi", Decimal(-(1 << 30))),
        ("+2", Decimal(2)),
        ("0", Decimal(0)),
        ("0.1n", Decimal("1e-9")),  # rounded up to the nano unit
        ("1.G", Decimal(10**9)),  # accepted by the Kubernetes scanner
        ("m", Decimal(0)),  # a bare suffix is zero
        ("", None),
        ("1K", None),  # not a suffix
        ("1 Gi", None),
        ("Never", None),
        ("1.2.3", None),
        ("gii", None),
        ("abc", None),
        ("12s", None),
    ],
)
def test_parse_quantity(text, expected):
    assert parse_quantity(text) == expected


def test_parse_quantity_non_string():
    assert parse_quantity(5) is None
    assert parse_quantity(None) is None


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1h30m", 90 * 60 * 10**9),
        ("500ms", 500 * 10**6),
        ("1.5h", 90 * 60 * 10**9),
        (".5s", 5 * 10**8),
        ("-1m", -60 * 10**9),
        ("+3s", 3 * 10**9),
        ("0", 0),
        ("1us", 1000),
        ("1\u00b5s", 1000),
        ("1\u03bcs", 1000),
        ("1ns", 1),
        ("2h45m10s", (2 * 3600 + 45 * 60 + 10) * 10**9),
        ("", None),
        ("1", None),  # missing unit
        ("1.5", None),
        ("1d", None),  # no day unit in Go
        ("h", None),
        (".s", None),
        ("1h 30m", None),
        ("10000000000h", None),  # overflow
    ],
)
def test_parse_duration(text, ns):
    assert parse_duration_ns(text) == ns
    assert parse_duration(text) == (None if ns is None else ns / 1e9)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("1.2.3", True),
        ("0.0.0", True),
        ("1.2.3-alpha.1+build.5", True),
        ("v1.2.3", False),
        ("1.2", False),
        ("01.2.3", False),
        ("1.2.3-01", False),
        ("1.2.3-", False),
    ],
)
def test_parse_semver(text, ok):
    assert (parse_semver(text) is not None) is ok


@pytest.mark.parametrize(
    ("a", "b", "cmp"),
    [
        ("1.2.3", "1.2.3", 0),
        ("1.2.3", "1.2.4", -1),
        ("1.10.0", "1.9.9", 1),
        ("1.0.0-alpha", "1.0.0", -1),
        ("1.0.0-alpha", "1.0.0-alpha.1", -1),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta", -1),
        ("1.0.0-beta.2", "1.0.0-beta.11", -1),
        ("1.0.0-rc.1", "1.0.0-beta.11", 1),
        ("1.0.0+a", "1.0.0+b", 0),
    ],
)
def test_semver_order(a, b, cmp):
    va, vb = parse_semver(a), parse_semver(b)
    assert va is not None and vb is not None
    assert va.compare(vb) == cmp


@pytest.mark.parametrize(
    ("f", "g", "e"),
    [
        (1.0, "1", "1E+00"),
        (1.5, "1.5", "1.5E+00"),
        (100.0, "100", "1E+02"),
        (123456.0, "123456", "1.23456E+05"),
        (1e6, "1e+06", "1E+06"),
        (0.0001, "0.0001", "1E-04"),
        (0.00001, "1e-05", "1E-05"),
        (-2.25, "-2.25", "-2.25E+00"),
    ],
)
def test_go_float_formatting(f, g, e):
    assert go_format_float(f) == g
    assert go_format_float(f, "E") == e


def test_go_sprint():
    assert go_sprint(True) == "true"
    assert go_sprint(3) == "3"
    assert go_sprint(3.0) == "3"
    assert go_sprint(None) == "<nil>"
    assert go_sprint("x") == "x"


@pytest.mark.parametrize(
    ("pattern", "op"),
    [
        ("", ""),
        ("f", ""),
        (">", ""),
        (">=1", ">="),
        ("<=1", "<="),
        (">1", ">"),
        ("<1", "<"),
        ("!x", "!"),
        ("1-2", "-"),
        ("1!-2", "!-"),
        ("-10--8", "-"),
        ("-10!--8", "!-"),
        ("128Mi-512Mi", "-"),
        ("a-b", ""),
        ("nginx-1", ""),
    ],
)
def test_string_operator(pattern, op):
    assert string_operator(pattern) == op


# pkg/engine/pattern/pattern_test.go TestValidate and friends: (value, pattern, expected)
VALIDATE_CASES = [
    (True, True, True),
    (True, False, False),
    (False, True, False),
    (False, False, True),
    ("value", None, False),
    ("", None, True),
    (0.0, None, True),
    (0, None, True),
    (False, None, True),
    (None, None, True),
    ({}, None, False),
    ([], None, False),
    ("10.100.11.54", "192.168.88.1 | 10.100.11.*", True),
    ("10", ">1 & <20", True),
    ("10", ">1 & <20 | >31 & <33", True),
    ("32", ">1 & <20 | >31 & <33", True),
    ("21", ">1 & <20 | >31 & <33", False),
    (7.0, 7.000, True),
    (10, 10, True),
    (8, 10, False),
    (None, [], False),
    ({"a": 1}, {"b": 2}, True),  # a map pattern only checks that the value is a map
    ("x", {"b": 2}, False),
    (None, False, False),
    (8.0, 8, True),
    (8.1, 8, False),
    ("8", 8, True),
    ("8.1", 8, False),
    (False, 8, False),
    (8, 8.0, True),
    (8, 8.1, False),
    ("8", 8.0, True),
    ("8.1", 8.1, True),
    ("abc", 8.1, False),
    (False, 8.0, False),
    # ranges (TestValidateValueWithStringPattern_Ranges)
    (0, "0-2", True),
    (1, "0-2", True),
    (2, "0-2", True),
    (3, "0-2", False),
    (0, "10!-20", True),
    (15, "10!-20", False),
    (25, "10!-20", True),
    (0, "0.00001-2.00001", False),
    (1, "0.00001-2.00001", True),
    (2.0001, "0.00001-2.00001", False),
    (2.0001, "0.00001!-2.00001", True),
    (2, "2-2", True),
    (2, "2!-2", False),
    (2.99999, "2.99998-3", True),
    (3.00001, "2.99998!-3", True),
    ("256Mi", "128Mi-512Mi", True),
    ("1024Mi", "128Mi-512Mi", False),
    ("64Mi", "128Mi-512Mi", False),
    ("256Mi", "128Mi!-512Mi", False),
    ("1024Mi", "128Mi!-512Mi", True),
    (-9, "-10-8", True),
    (9, "-10--8", False),
    (9, "-10!--8", True),
    ("9Mi", "-10Mi!--8Mi", True),
    (-9, "-10!--8", False),
    ("-9Mi", "-10Mi-8Mi", True),
    (0, "-10-+8", True),
    ("7Mi", "-10Mi-+8Mi", True),
    (10, "-10!-+8", True),
    (0, "+0-+1", True),
    ("1025Mi", "+0Mi!-+1024Mi", True),
    # spaces after operators, numbers against string patterns
    (4, ">= 3", True),
    (7.00001, ">7.000001", True),
    (7.00001, "!7", True),
    (7.0, "7", True),
    (6.000000001, "<6", False),
    # quantities (TestValidateQuantity_*)
    ("1024Gi", "1024Gi", True),
    ("1024Mi", "1Gi", True),
    ("0.2", "200m", True),
    ("2048", "1024", False),
    (1024, "1024", True),
    ("1024Gi", "", False),
    ("gii", "1024Gi", False),
    ("1Gi", ">1000Mi", True),
    ("1G", "<1Gi", True),
    ("500m", ">=0.5", True),
    ("1", ">=500m", True),
    ("0.5", "<=.5", True),
    ("0.2", "!.5", True),
    ("500m", ">=0.6", False),
    ("2Gi", "<=1Gi", False),
    # durations (TestValidateDuration)
    ("12s", "12s", True),
    ("12s", "!15s", True),
    ("12s", "<15s", True),
    ("15s", "<12s", False),
    ("15s", ">12s", True),
    ("12s", ">=12s", True),
    ("1h", ">59m", True),
    ("90m", "1h30m", True),
    # strings: wildcards, negation, and Kyverno's string comparison of scalars
    ("nginx:latest", "*:latest", True),
    ("nginx:1.0", "!*:latest", True),
    ("nginx:latest", "!*:latest", False),
    (True, "true", True),  # "true" matches true
    (False, "true", False),
    (True, "!false", True),
    ("true", True, False),  # but a bool pattern wants a bool
    (1, "1", True),  # 1 matches "1"
    ("1", 1, True),  # and "1" matches 1
    ("Always", "Always", True),
    ("always", "Always", False),
    ("IfNotPresent", "Always | IfNotPresent", True),
    ("Never", "Always | IfNotPresent", False),
    ("abc", ">1", False),  # ordering operators never apply to strings
    ("RuntimeDefault", "RuntimeDefault | Localhost", True),
    # null and empty semantics
    (None, "", False),
    ("", "", True),
    (None, "?*", False),
    ("", "?*", False),
    ("x", "?*", True),
    (0, "?*", True),
    (None, "!foo", False),  # a missing value matches neither "foo" nor "!foo"
    (None, "*", False),
    (None, "<10s", True),  # a missing value is taken as 0 against durations and quantities
    (None, ">0", False),
    (None, "0", True),
    (None, ">=0", True),
    ({"a": 1}, "?*", False),
    ([1], "?*", False),
    ([], "", False),
]


@pytest.mark.parametrize(("value", "pattern", "expected"), VALIDATE_CASES)
def test_compare_value(value, pattern, expected):
    assert compare_value(pattern, value) is expected


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (1, 1.0, True),
        (True, 1, False),
        ({"a": [1, "x"]}, {"a": [1.0, "x"]}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ([1, 2], [2, 1], False),
        (None, None, True),
        ("1", 1, False),
    ],
)
def test_deep_equal(a, b, expected):
    assert deep_equal(a, b) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1e99999999", Decimal("1e99999999")),
        ("1e-99999999", Decimal("1e-9")),  # rounded up to the nano unit, never to zero
        ("-0.0000000001", Decimal("-1e-9")),
        ("123456789012345678901234567890.1234567891", Decimal("123456789012345678901234567890.123456790")),
    ],
)
def test_parse_quantity_extremes(text, expected):
    assert parse_quantity(text) == expected


def test_scalar_functions_never_raise_on_odd_input():
    import random

    rng = random.Random(7)
    alphabet = "0123456789.eEimkKMGTPnu\u00b5sh-+!<>=|&*? ab:"
    values = [None, True, 0, 1.5, "", "1Gi", [1, "a"], {"a": 1}, "1h", "1.2.3"]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        assert compare_value(text, rng.choice([*values, text])) in (True, False)
        assert parse_quantity(text) is None or isinstance(parse_quantity(text), Decimal)
        assert parse_duration_ns(text) is None or isinstance(parse_duration_ns(text), int)
        parse_semver(text)
