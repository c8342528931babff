"""The Kubernetes CEL libraries, with the examples and semantics of the Kubernetes documentation (Kubernetes CEL
libraries: lists, regex, URL, quantity; the IP/CIDR, semver and format libraries of k8s.io/apiserver/pkg/cel/library)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from admission.engines.cel import EvalError, LoadError, bind, compile_expression
from admission.engines.cel import quantity as q
from admission.engines.yaml.values import parse_quantity


def ev(source: str, **values: object) -> object:
    return compile_expression(source, where="t:1").evaluate(bind(values))


@pytest.mark.parametrize(("source", "want"), [
    ("['a', 'b', 'c'].isSorted()", True),
    ("[1, 3, 2].isSorted()", False),
    ("[0.25, 0.75].sum() == 1.0", True),
    ("[1, 2, 3].sum()", 6),
    ("[].sum()", 0),
    ("[3, 1, 2].max() < [5, 4].min()", True),
    ("['b', 'a'].min()", "a"),
    ("['a', 'b', 'a'].indexOf('a')", 0),
    ("['a', 'b', 'a'].lastIndexOf('a')", 2),
    ("[1, 2].indexOf(3)", -1),
    ("'abc'.indexOf('c')", 2),  # the strings extension's indexOf still works beside the list one
])
def test_lists(source: str, want: object) -> None:
    assert ev(source) == want


def test_min_of_an_empty_list_is_an_error() -> None:
    with pytest.raises(EvalError, match="min called on empty list"):
        ev("[].min()")


@pytest.mark.parametrize(("source", "want"), [
    ("'abc 123'.find('[0-9]+')", "123"),
    ("'abc 123'.find('[0-9]*')", ""),  # Go's FindString: the empty match at 0
    ("'abc'.find('x')", ""),
    ("'1, 2, 3, 4'.findAll('[0-9]+')", ["1", "2", "3", "4"]),
    ("'1, 2, 3, 4'.findAll('[0-9]+', 2)", ["1", "2"]),
    ("'1, 2'.findAll('[0-9]*')", ["1", "", "2"]),  # Go skips an empty match right after a match
    ("'1, 2, 3, 4'.findAll('[0-9]+').map(x, int(x)).sum() < 100", True),
])
def test_regex(source: str, want: object) -> None:
    assert ev(source) == want


def test_regex_is_re2_a_backreference_is_an_error() -> None:
    with pytest.raises(EvalError, match="error parsing regexp"):
        ev("'aa'.find('(a)\\\\1')")


@pytest.mark.parametrize(("source", "want"), [
    ("url('https://example.com:80/').getHost()", "example.com:80"),
    ("url('https://example.com:80/').getHostname()", "example.com"),
    ("url('https://example.com:80/').getPort()", "80"),
    ("url('https://example.com/').getPort()", ""),
    ("url('https://[::1]:8080/x').getHostname()", "::1"),
    ("url('https://example.com/path with spaces/').getEscapedPath()", "/path%20with%20spaces/"),
    ("url('https://example.com/a%2Fb').getEscapedPath()", "/a%2Fb"),
    ("url('https://example.com/p?a=1&a=2&b').getQuery()", {"a": ["1", "2"], "b": [""]}),
    ("url('/absolute/path').getScheme()", ""),
    ("isURL('https://example.com') && !isURL('example.com') && !isURL('https://x/#frag')", True),
])
def test_urls(source: str, want: object) -> None:
    assert ev(source) == want


@pytest.mark.parametrize(("source", "want"), [
    ("quantity('500000G').isInteger()", True),
    ("quantity('50k').asInteger()", 50000),
    ("quantity('1.5').isInteger()", False),
    ("quantity('50k').add(20).sub(quantity('100k')).sub(-50000) == quantity('20')", True),
    ("quantity('200M').compareTo(quantity('0.2G'))", 0),
    ("quantity('150Mi').isGreaterThan(quantity('100Mi'))", True),
    ("quantity('50M').isLessThan(quantity('100M'))", True),
    ("quantity('1Gi') == quantity('1073741824')", True),
    ("quantity('-1m').sign()", -1),
    ("quantity('0').sign()", 0),
    ("quantity('1.5Gi').asApproximateFloat()", 1.5 * 2**30),
    ("isQuantity('1Gi') && !isQuantity('1GiB') && !isQuantity('')", True),
])
def test_quantities(source: str, want: object) -> None:
    assert ev(source) == want


def test_quantity_errors_and_large_values() -> None:
    assert ev("quantity('9999999999999999999999999999999999999G').asApproximateFloat()") == pytest.approx(1e46)
    assert ev("quantity('9999999999999999999999999999999999999G').isInteger()") is False
    with pytest.raises(EvalError, match="cannot convert value to integer"):
        ev("quantity('1.5').asInteger()")
    with pytest.raises(EvalError, match="quantities must match"):
        ev("quantity('abc')")
    assert math.isinf(float(ev("quantity('1e400').asApproximateFloat()")))  # type: ignore[arg-type]


@given(st.one_of(
    st.from_regex(r"\A[+-]?[0-9]{0,6}(\.[0-9]{0,12})?(|[numkMGTPE]|[KMGTPE]i|[eE][+-]?[0-9]{1,2})\Z"),
    st.text(alphabet="0123456789.+-eEimkMGTP ", max_size=8),
))
@example("EE")  # an exponent suffix without digits once crashed with a ValueError instead of a QuantityError
@example("1Ee")
def test_quantity_parsing_agrees_with_the_kyverno_dialect(text: str) -> None:
    """Our CEL quantities and the YAML dialect's (admission.engines.yaml.values) parse the same strings to the
    same values: both follow resource.ParseQuantity."""
    theirs = parse_quantity(text)
    try:
        ours: Decimal | None = q.parse(text)
    except q.QuantityError:
        ours = None
    assert (ours is None) == (theirs is None), text
    if ours is not None and theirs is not None:
        assert ours == theirs, text


@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=-(10**12), max_value=10**12))
def test_quantity_arithmetic_is_exact(a: int, b: int) -> None:
    assert ev(f"quantity('{a}m').add(quantity('{b}m')) == quantity('{a + b}m')") is True
    assert ev(f"quantity('{a}').sub({b}).asInteger()") == a - b
    assert ev(f"quantity('{a}').compareTo(quantity('{b}'))") == (a > b) - (a < b)


@pytest.mark.parametrize(("source", "want"), [
    ("ip('127.0.0.1').isLoopback() && ip('::1').isLoopback()", True),
    ("ip('::1').family()", 6),
    ("ip('10.0.0.1').family()", 4),
    ("ip('0.0.0.0').isUnspecified()", True),
    ("ip('fe80::1').isLinkLocalUnicast() && ip('169.254.1.1').isLinkLocalUnicast()", True),
    ("ip('ff02::1').isLinkLocalMulticast() && ip('224.0.0.1').isLinkLocalMulticast()", True),
    ("ip('192.168.0.1').isGlobalUnicast() && !ip('255.255.255.255').isGlobalUnicast()", True),
    ("ip.isCanonical('2001:db8::abcd') && !ip.isCanonical('2001:DB8::ABCD')", True),
    ("isIP('1.2.3.4') && !isIP('1.2.3') && !isIP('::ffff:1.2.3.4') && !isIP('fe80::1%eth0')", True),
    ("string(ip('2001:DB8::1'))", "2001:db8::1"),
    ("cidr('192.168.0.0/24').containsIP(ip('192.168.0.1'))", True),
    ("cidr('192.168.0.0/24').containsIP('192.168.1.1')", False),
    ("cidr('192.168.0.0/16').containsCIDR('192.168.1.0/24')", True),
    ("cidr('192.168.0.1/24').masked() == cidr('192.168.0.0/24')", True),
    ("cidr('192.168.0.1/24') == cidr('192.168.0.0/24')", False),
    ("cidr('192.168.0.1/24').ip() == ip('192.168.0.1')", True),
    ("cidr('::1/128').prefixLength()", 128),
    ("isCIDR('10.0.0.0/8') && !isCIDR('10.0.0.0') && !isCIDR('10.0.0.0/33')", True),
])
def test_ips_and_cidrs(source: str, want: object) -> None:
    assert ev(source) == want


def test_string_of_a_cidr_is_a_documented_type_error() -> None:
    with pytest.raises(LoadError, match="no matching overload for 'string'"):
        compile_expression("string(cidr('10.0.0.0/8'))", where="t:1")


@pytest.mark.parametrize(("source", "want"), [
    ("semver('1.2.3').major() == 1 && semver('1.2.3').minor() == 2 && semver('1.2.3').patch() == 3", True),
    ("semver('1.2.3').isLessThan(semver('1.10.0'))", True),
    ("semver('1.0.0-alpha').isLessThan(semver('1.0.0'))", True),
    ("semver('1.0.0-alpha.1').isLessThan(semver('1.0.0-alpha.beta'))", True),
    ("semver('1.0.0-2').isLessThan(semver('1.0.0-10'))", True),
    ("semver('1.0.0+build').compareTo(semver('1.0.0'))", 0),
    ("semver('2.0.0').isGreaterThan(semver('1.99.99'))", True),
    ("isSemver('1.2.3') && !isSemver('v1.2.3') && !isSemver('1.2') && !isSemver('01.2.3')", True),
    ("isSemver('v1.2', true) && semver('v01.2', true).minor() == 2", True),
])
def test_semver(source: str, want: object) -> None:
    assert ev(source) == want


@pytest.mark.parametrize(("source", "want"), [
    ("format.dns1123Label().validate('my-label-name').hasValue()", False),
    ("format.dns1123Label().validate('My_Label').hasValue()", True),
    ("format.named('dns1123Subdomain').validate('a.b-c.d').hasValue()", False),
    ("format.dns1035Label().validate('1abc').hasValue()", True),
    ("format.qualifiedName().validate('example.com/my-name').hasValue()", False),
    ("format.labelValue().validate('').hasValue()", False),
    ("format.dns1123LabelPrefix().validate('web-').hasValue()", False),
    ("format.uuid().validate('123e4567-e89b-12d3-a456-426614174000').hasValue()", False),
    ("format.date().validate('2024-02-30').hasValue()", True),
    ("format.datetime().validate('2024-02-01T10:00:00Z').hasValue()", False),
    ("format.labelValue().validate('a b').value().size() > 0", True),
])
def test_formats(source: str, want: object) -> None:
    assert ev(source) == want


def test_unknown_named_format_is_an_error() -> None:
    with pytest.raises(EvalError, match="unknown format 'nope'"):
        ev("format.named('nope').validate('x').hasValue()")


@pytest.mark.parametrize(("source", "want"), [
    ("object.?spec.?replicas.orValue(1)", 1),
    ("object.?metadata.?labels[?'app'].orValue('none')", "web"),
    ("object.metadata.?annotations.hasValue()", False),
    ("optional.of(2).value() + optional.none().orValue(3)", 5),
    ("optional.ofNonZeroValue('').hasValue()", False),
    ("[1, ?optional.none(), ?optional.of(2)]", [1, 2]),
    ("{'a': 1, ?'b': optional.none()}", {"a": 1}),
])
def test_optional_types(source: str, want: object) -> None:
    assert ev(source, object={"metadata": {"labels": {"app": "web"}}}) == want


@pytest.mark.parametrize(("source", "want"), [
    ("sets.contains([1, 2, 3], [3, 1])", True),
    ("sets.equivalent([1, 2], [2, 1, 1])", True),
    ("sets.intersects([1], [2])", False),
    ("jsonpatch.escapeKey('example.com/a~b')", "example.com~1a~0b"),
    ("'a,b'.split(',')", ["a", "b"]),
    ("' x '.trim() + 'ABC'.lowerAscii() + 'abc'.substring(1, 2)", "xabcb"),
    ("'%s is %d years'.format(['Bob', 30])", "Bob is 30 years"),
    ("'hello'.replace('l', 'L', 1)", "heLlo"),
])
def test_sets_jsonpatch_and_strings(source: str, want: object) -> None:
    assert ev(source) == want


RBAC = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "deployer", "namespace": "team"},
     "rules": [{"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale"], "verbs": ["get", "update"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
     "metadata": {"name": "alice-deploys", "namespace": "team"},
     "subjects": [{"kind": "User", "name": "alice"}, {"kind": "ServiceAccount", "name": "ci"}],
     "roleRef": {"kind": "Role", "name": "deployer"}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "health"},
     "rules": [{"nonResourceURLs": ["/healthz", "/readyz/*"], "verbs": ["get"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "health"},
     "subjects": [{"kind": "Group", "name": "system:authenticated"}], "roleRef": {"kind": "ClusterRole", "name": "health"}},
]


def authorize(source: str, state: object, user: dict[str, object]) -> object:
    from admission.engines.cel import kubernetes_activation
    from admission.engines.cel.authz import current_state
    from admission.review import Request
    from tests.conftest import pod

    token = current_state.set(state)  # type: ignore[arg-type]
    try:
        activation = kubernetes_activation(Request.for_object(pod(), user_info=user))
        return compile_expression(source, where="t:1").evaluate(activation)
    finally:
        current_state.reset(token)


@pytest.mark.parametrize(("source", "user", "want"), [
    ("authorizer.group('apps').resource('deployments').namespace('team').check('update').allowed()",
     {"username": "alice"}, True),
    ("authorizer.group('apps').resource('deployments').namespace('other').check('update').allowed()",
     {"username": "alice"}, False),
    ("authorizer.group('apps').resource('deployments').subresource('scale').namespace('team').check('get').allowed()",
     {"username": "alice"}, True),
    ("authorizer.group('apps').resource('deployments').namespace('team').check('delete').allowed()",
     {"username": "alice"}, False),
    ("authorizer.serviceAccount('team', 'ci').group('apps').resource('deployments').namespace('team')"
     ".check('get').allowed()", {"username": "bob"}, True),
    ("authorizer.path('/readyz/etcd').check('get').allowed()", {"username": "bob", "groups": ["system:authenticated"]},
     True),
    ("authorizer.path('/metrics').check('get').allowed()", {"username": "bob", "groups": ["system:authenticated"]},
     False),
    ("authorizer.group('').resource('secrets').check('delete').allowed()",
     {"username": "root", "groups": ["system:masters"]}, True),
])
def test_authorizer_answers_from_rbac_in_state(source: str, user: dict[str, object], want: bool) -> None:
    from admission.state import ClusterState

    assert authorize(source, ClusterState(RBAC), user) is want


def test_authorizer_without_rbac_data_is_a_documented_denial() -> None:
    from admission.state import ClusterState, unavailable

    check = "authorizer.group('').resource('pods').check('create')"
    assert authorize(f"{check}.allowed()", ClusterState(), {"username": "a"}) is False
    assert "no RBAC objects" in str(authorize(f"{check}.reason()", ClusterState(), {"username": "a"}))
    assert authorize(f"{check}.errored()", unavailable("no cluster"), {"username": "a"}) is True
    assert "no cluster" in str(authorize(f"{check}.error()", unavailable("no cluster"), {"username": "a"}))
