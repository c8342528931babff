"""Kyverno's JMESPath functions (admission.engines.yaml.functions), through the same search the engine uses."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from admission.engines.yaml.functions import (
    KyvernoFunctions,
    Quantity,
    format_duration,
    go_json,
    parse_duration,
)
from admission.engines.yaml.variables import VariableError, search


def jp(expr: str, data: object = None) -> object:
    return search(expr, data if data is not None else {})


# ---------------------------------------------------------------------------------------------- arithmetic

@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("multiply('250m', `2`)", "500m"),
        ("multiply(`2`, '250m')", "500m"),
        ("multiply('1Gi', `2`)", "2Gi"),
        ("multiply('1h', `2`)", "2h0m0s"),
        ("multiply(`3`, `4`)", 12),
        ("add('1Gi', '512Mi')", "1536Mi"),
        ("add('500m', '500m')", "1"),
        ("add('1', '2')", "3"),
        ("add(`1`, `2`)", 3),
        ("add(`1.5`, `2`)", 3.5),
        ("add('1h', '1s')", "1h0m1s"),
        ("subtract('10s', '1s')", "9s"),
        ("subtract('1Gi', '512Mi')", "512Mi"),
        ("subtract(`5`, `7`)", -2),
        ("divide('1Gi', '512Mi')", 2),
        ("divide('500m', `2`)", "250m"),
        ("divide('1', `2`)", "0"),
        ("divide(`10`, `4`)", 2.5),
        ("divide('1h', '30s')", 120),
        ("divide('1h', `4`)", "15m0s"),
        ("modulo(`7`, `3`)", 1),
        ("modulo(`-7`, `3`)", -1),
        ("modulo('7', '3')", "1"),
        ("modulo('1h', '25m0s')", "10m0s"),
        ("sum([`1`, `2`, `3`])", 6),
        ("sum(['1Gi', '512Mi'])", "1536Mi"),
        ("sum(['100m', '200m', '1'])", "1300m"),
        ("sum(['1s', '1m1s'])", "1m2s"),
        ("round(`3.14159`, `2`)", 3.14),
        ("round(`2.5`, `0`)", 3),
        ("abs(`-3`)", 3),
    ],
)
def test_arithmetic(expr: str, expected: object) -> None:
    assert jp(expr) == expected


def test_quantity_is_tried_before_duration() -> None:
    # '30m' is thirty milli-units for Kyverno (a quantity), so it does not add to a duration.
    with pytest.raises(VariableError, match="Types mismatch"):
        jp("add('1h', '30m')")


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("divide(`1`, `0`)", "Zero divisor"),
        ("divide('1Gi', '0')", "Zero divisor"),
        ("modulo(`1.5`, `1`)", "Non-integer"),
        ("add('abc', `1`)", "invalid operand"),
        ("multiply('1Gi', '1Gi')", "Types mismatch"),
        ("divide(`1`, '1Gi')", "Types mismatch"),
        ("sum(`[]`)", "at least one element"),
        ("round(`1.5`, `0.5`)", "Non-integer"),
    ],
)
def test_arithmetic_errors(expr: str, message: str) -> None:
    with pytest.raises(VariableError, match=message):
        jp(expr)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("1024Mi", "1Gi"), ("1536Mi", "1536Mi"), ("1000m", "1"), ("1500m", "1500m"), ("0.5", "500m"),
     ("1000", "1k"), ("1500", "1500"), ("2e3", "2e3"), ("100Ki", "100Ki"), ("512", "512"), ("0", "0"),
     ("1.5Gi", "1536Mi")],
)
def test_quantity_canonical_form(text: str, canonical: str) -> None:
    q = Quantity.parse(text)
    assert q is not None and str(q) == canonical


def test_quantity_rejects_non_quantities() -> None:
    assert Quantity.parse("1h") is None
    assert Quantity.parse("abc") is None
    assert Quantity.parse("1Gb") is None


@pytest.mark.parametrize(
    ("text", "ns", "printed"),
    [("1h", 3600 * 10**9, "1h0m0s"), ("1m30s", 90 * 10**9, "1m30s"), ("1.5s", 1_500_000_000, "1.5s"),
     ("500ms", 500_000_000, "500ms"), ("1500ns", 1500, "1.5µs"), ("-2m", -120 * 10**9, "-2m0s"), ("0", 0, "0s"),
     ("2h45m", 9900 * 10**9, "2h45m0s")],
)
def test_go_durations(text: str, ns: int, printed: str) -> None:
    assert parse_duration(text) == ns
    assert format_duration(ns) == printed


def test_parse_duration_rejects_garbage() -> None:
    assert parse_duration("1x") is None
    assert parse_duration("") is None
    assert parse_duration("10") is None


# ---------------------------------------------------------------------------------------------- strings

@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("to_upper('abc')", "ABC"),
        ("to_lower('ABC')", "abc"),
        ("trim('  x  ', ' ')", "x"),
        ("trim('--x-', '-')", "x"),
        ("trim_prefix('nginx:1.2', 'nginx:')", "1.2"),
        ("trim_prefix('abc', 'x')", "abc"),
        ("split('a,b,c', ',')", ["a", "b", "c"]),
        ("join('-', split('a,b', ','))", "a-b"),
        ("replace('aaa', 'a', 'b', `2`)", "bba"),
        ("replace('aaa', 'a', 'b', `-1`)", "bbb"),
        ("replace_all('a.b.c', '.', '/')", "a/b/c"),
        ("truncate('kubernetes', `4`)", "kube"),
        ("truncate('kube', `10`)", "kube"),
        ("compare('a', 'b')", -1),
        ("compare('b', 'a')", 1),
        ("compare('a', 'a')", 0),
        ("equal_fold('Go', 'GO')", True),
        ("to_boolean('TrUe')", True),
        ("to_boolean('false')", False),
        ("base64_encode('hello')", "aGVsbG8="),
        ("base64_decode('aGVsbG8=')", "hello"),
        ("path_canonicalize('/a//b/../c/')", "/a/c"),
        ("path_canonicalize('a/./b')", "a/b"),
        ("sha256('abc')", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("md5('abc')", "900150983cd24fb0d6963f7d28e17f72"),
        ("contains('nginx:latest', ':latest')", True),
        ("contains(['a', 'b'], 'b')", True),
        ("length('abc')", 3),
        ("to_string(`{\"b\": 1, \"a\": [true, null]}`)", '{"a":[true,null],"b":1}'),
        ("to_string(`2.0`)", "2"),
        ("to_string('x')", "x"),
        ("to_number('42')", 42),
    ],
)
def test_string_functions(expr: str, expected: object) -> None:
    assert jp(expr) == expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("regex_match('^nginx', 'nginx:1.0')", True),
        ("regex_match('^[0-9]+$', `123`)", True),
        ("regex_match('^a$', 'b')", False),
        ("regex_replace_all('([a-z]+)@example.com', 'joe@example.com', '${1}')", "joe"),
        ("regex_replace_all('(?P<user>[a-z]+)@', 'joe@x', '$user at ')", "joe at x"),
        ("regex_replace_all('a(x*)b', '-ab-axxb-', '$1W')", "---"),
        ("regex_replace_all('a(x*)b', '-ab-axxb-', '${1}W')", "-W-xxW-"),
        ("regex_replace_all_literal('a+', 'caaat', '$1')", "c$1t"),
        ("pattern_match('nginx*', 'nginx-1')", True),
        ("pattern_match('ng?nx', 'nginx')", True),
        ("pattern_match('nginx', 'nginx-1')", False),
        ("pattern_match('*', `12`)", True),
    ],
)
def test_regex_and_pattern_functions(expr: str, expected: object) -> None:
    assert jp(expr) == expected


def test_bad_regex_is_an_error() -> None:
    with pytest.raises(VariableError, match="regex_match"):
        jp("regex_match('(', 'x')")


def test_to_boolean_rejects_other_strings() -> None:
    with pytest.raises(VariableError, match="must be 'true' or 'false'"):
        jp("to_boolean('yes')")


def test_wrong_argument_type_is_a_variable_error() -> None:
    with pytest.raises(VariableError, match="to_upper"):
        jp("to_upper(`1`)")
    with pytest.raises(VariableError):
        jp("split(`1`, ',')")


def test_unknown_function_is_a_variable_error() -> None:
    with pytest.raises(VariableError, match="nope"):
        jp("nope('x')")


# ---------------------------------------------------------------------------------------------- objects

@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("label_match(`{\"app\": \"a\"}`, `{\"app\": \"a\", \"tier\": \"b\"}`)", True),
        ("label_match(`{\"app\": \"a\"}`, `{\"app\": \"b\"}`)", False),
        ("lookup(`{\"a\": 1}`, 'a')", 1),
        ("lookup(`[10, 20]`, `1`)", 20),
        ("lookup(`[10, 20]`, `5`)", None),
        ("items(`{\"b\": 2, \"a\": 1}`, 'key', 'value')", [{"key": "a", "value": 1}, {"key": "b", "value": 2}]),
        ("items(`[\"x\"]`, 'i', 'v')", [{"i": 0, "v": "x"}]),
        ("object_from_lists(`[\"a\", \"b\"]`, `[1]`)", {"a": 1, "b": None}),
        ("keys(`{\"a\": 1}`)", ["a"]),
        ("values(`{\"a\": 1}`)", [1]),
        ("merge(`{\"a\": 1}`, `{\"b\": 2}`)", {"a": 1, "b": 2}),
        ("max(`[1, 3, 2]`)", 3),
        ("min(`[1, 3, 2]`)", 1),
        ("parse_json('{\"a\": [1, 2]}')", {"a": [1, 2]}),
        ("parse_yaml('a: 1\nb: [x, y]')", {"a": 1, "b": ["x", "y"]}),
        ("semver_compare('1.2.3', '>1.0.0')", True),
        ("semver_compare('1.2.3', '<1.0.0')", False),
        ("semver_compare('1.2.3', '>=1.0.0 <2.0.0')", True),
        ("semver_compare('2.1.0', '<1.0.0 || >=2.0.0')", True),
        ("semver_compare('1.2.3', '1.x')", True),
        ("semver_compare('2.0.0', '1.x')", False),
        ("semver_compare('1.0.0-alpha', '<1.0.0')", True),
        ("image_normalize('nginx')", "docker.io/nginx:latest"),
        ("image_normalize('ghcr.io/org/app:v1')", "ghcr.io/org/app:v1"),
        ("is_external_url('http://127.0.0.1:8080/x')", False),
        ("is_external_url('https://10.1.2.3')", False),
        ("is_external_url('https://8.8.8.8')", True),
    ],
)
def test_object_and_misc_functions(expr: str, expected: object) -> None:
    assert jp(expr) == expected


def test_selector_match_extension() -> None:
    labels = {"app": "web", "tier": "front"}
    assert jp("selector_match(s, l)", {"s": {}, "l": labels}) is True
    assert jp("selector_match(s, l)", {"s": {"matchLabels": {"app": "web"}}, "l": labels}) is True
    assert jp("selector_match(s, l)", {"s": {"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["back"]}]}, "l": labels}) is False
    assert jp("selector_match(s, l)", {"s": {"matchExpressions": [
        {"key": "env", "operator": "DoesNotExist"}]}, "l": labels}) is True
    assert jp("selector_match(s, l)", {"s": None, "l": labels}) is False
    with pytest.raises(VariableError, match="operator"):
        jp("selector_match(s, l)", {"s": {"matchExpressions": [{"key": "a", "operator": "Bad"}]}, "l": {}})


def test_all_functions_the_issue_names_are_registered() -> None:
    names = (
        "length contains keys values regex_match regex_replace_all regex_replace_all_literal replace "
        "replace_all to_string to_number to_upper to_lower trim trim_prefix split join parse_yaml parse_json "
        "base64_encode base64_decode path_canonicalize truncate semver_compare time_now time_now_utc "
        "time_parse time_since time_add time_diff time_before time_after time_between time_to_cron "
        "time_truncate time_utc sum max min merge add subtract multiply divide modulo round abs x509_decode "
        "label_match pattern_match lookup items object_from_lists compare equal_fold is_external_url "
        "image_normalize to_boolean selector_match"
    ).split()
    missing = [n for n in names if n not in KyvernoFunctions.FUNCTION_TABLE]
    assert missing == []


# ---------------------------------------------------------------------------------------------- time

@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("time_add('2023-01-01T00:00:00Z', '1h30m')", "2023-01-01T01:30:00Z"),
        ("time_add('2023-01-01T00:00:00+02:00', '-1h')", "2022-12-31T23:00:00+02:00"),
        ("time_diff('2023-01-01T00:00:00Z', '2023-01-02T01:00:00Z')", "25h0m0s"),
        ("time_diff('2023-01-01T01:00:00Z', '2023-01-01T00:00:00Z')", "-1h0m0s"),
        ("time_before('2023-01-01T00:00:00Z', '2023-01-02T00:00:00Z')", True),
        ("time_after('2023-01-01T00:00:00Z', '2023-01-02T00:00:00Z')", False),
        ("time_between('2023-01-02T00:00:00Z', '2023-01-01T00:00:00Z', '2023-01-03T00:00:00Z')", True),
        ("time_between('2023-01-01T00:00:00Z', '2023-01-01T00:00:00Z', '2023-01-03T00:00:00Z')", False),
        ("time_to_cron('2023-02-02T15:04:05Z')", "4 15 2 2 4"),
        ("time_truncate('2023-01-01T10:35:59Z', '1h')", "2023-01-01T10:00:00Z"),
        ("time_truncate('2023-01-01T10:35:59Z', '15m')", "2023-01-01T10:30:00Z"),
        ("time_utc('2023-01-01T05:00:00+05:00')", "2023-01-01T00:00:00Z"),
        ("time_parse('2006-01-02', '2023-05-06')", "2023-05-06T00:00:00Z"),
        ("time_parse('Mon Jan 2 15:04:05 2006', 'Sat May 6 10:20:30 2023')", "2023-05-06T10:20:30Z"),
        ("time_parse('2006-01-02T15:04:05Z07:00', '2023-05-06T10:20:30+01:00')", "2023-05-06T10:20:30+01:00"),
        ("time_parse('1136214245', '1700000000')", "2023-11-14T22:13:20Z"),
        ("time_since('', '2023-01-01T00:00:00Z', '2023-01-01T01:30:00Z')", "1h30m0s"),
        ("time_since('2006-01-02', '2023-01-01', '2023-01-03')", "48h0m0s"),
        ("time_add('2023-01-01T00:00:00.5Z', '1s')", "2023-01-01T00:00:01Z"),
    ],
)
def test_time_functions(expr: str, expected: object) -> None:
    assert jp(expr) == expected


def test_time_now_is_rfc3339_and_current() -> None:
    now = jp("time_now_utc()")
    assert isinstance(now, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", now)
    parsed = datetime.fromisoformat(now.replace("Z", "+00:00"))
    assert abs(parsed - datetime.now(UTC)) < timedelta(seconds=5)
    local = jp("time_now()")
    assert isinstance(local, str) and re.fullmatch(r".*T\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)", local)
    since = jp("time_since('', '2020-01-01T00:00:00Z', '')")
    assert isinstance(since, str) and since.endswith("s") and "h" in since


def test_bad_time_is_an_error() -> None:
    with pytest.raises(VariableError, match="RFC3339"):
        jp("time_add('yesterday', '1h')")
    with pytest.raises(VariableError, match="duration"):
        jp("time_add('2023-01-01T00:00:00Z', 'soon')")


# ---------------------------------------------------------------------------------------------- x509

def _certificate_pem(common_name: str, hash_name: str = "SHA256", usages: tuple[str, ...] = ()) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(12345)
        .not_valid_before(datetime(2023, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime(2024, 1, 1, tzinfo=UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("example.com")]), critical=False)
    )
    if usages:
        cert = cert.add_extension(
            x509.ExtendedKeyUsage([getattr(ExtendedKeyUsageOID, u) for u in usages]), critical=False)
    cert = cert.sign(key, getattr(hashes, hash_name)())
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_x509_decode() -> None:
    pem = _certificate_pem("my-ca")
    cert = jp("x509_decode(pem)", {"pem": pem})
    assert isinstance(cert, dict)
    assert cert["Subject"]["CommonName"] == "my-ca"
    assert cert["Subject"]["Organization"] == ["Example"]
    assert cert["Issuer"]["CommonName"] == "my-ca"
    assert cert["NotBefore"] == "2023-01-01T00:00:00Z"
    assert cert["NotAfter"] == "2024-01-01T00:00:00Z"
    assert cert["SerialNumber"] == 12345
    assert cert["PublicKey"]["E"] == 65537
    assert cert["IsCA"] is True and cert["MaxPathLen"] == -1
    assert cert["DNSNames"] == ["example.com"]
    assert cert["SignatureAlgorithm"] == 4  # Go's SHA256WithRSA
    # the usual pairing with base64_decode works
    import base64

    encoded = base64.b64encode(pem.encode()).decode()
    assert jp("x509_decode(base64_decode(b)).Subject.CommonName", {"b": encoded}) == "my-ca"


@pytest.mark.parametrize(("hash_name", "go_value"), [("SHA256", 4), ("SHA384", 5), ("SHA512", 6)])
def test_x509_decode_signature_algorithm_as_go_numbers_it(hash_name: str, go_value: int) -> None:
    cert = jp("x509_decode(pem)", {"pem": _certificate_pem("x", hash_name)})
    assert cert["SignatureAlgorithm"] == go_value


def test_x509_decode_extended_key_usage_as_go_numbers_it() -> None:
    pem = _certificate_pem("x", usages=("SERVER_AUTH", "CLIENT_AUTH", "CODE_SIGNING", "OCSP_SIGNING",
                                        "IPSEC_IKE"))
    # Go's ExtKeyUsageServerAuth=1, ClientAuth=2, CodeSigning=3, OCSPSigning=9; IKE has no Go value here
    assert jp("x509_decode(pem).ExtKeyUsage", {"pem": pem}) == [1, 2, 3, 9]
    assert jp("x509_decode(pem).ExtKeyUsage", {"pem": _certificate_pem("x")}) is None


def test_x509_decode_rejects_non_pem() -> None:
    with pytest.raises(VariableError, match="PEM"):
        jp("x509_decode('not a certificate')")


# ---------------------------------------------------------------------------------------------- JSON text

@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (2.5, "2.5"), (1e21, "1e+21"), (1e-7, "1e-7"), (0.000001, "0.000001"), (True, "true"),
     (None, "null"), ({"b": 1, "a": "x"}, '{"a":"x","b":1}'), ([1, "é"], '[1,"é"]')],
)
def test_go_json(value: object, text: str) -> None:
    assert go_json(value) == text
