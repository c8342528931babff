"""The CEL core: compile once with file:line errors, bind once per request, evaluate to plain values."""

from __future__ import annotations

import time

import pytest

from admission.engines import PolicyError
from admission.engines.cel import (
    Budget,
    EvalError,
    LoadError,
    bind,
    compile_expression,
    kubernetes_activation,
)
from admission.engines.cel.cost import PER_EXPRESSION_LIMIT, input_size, static_shape, widest
from admission.engines.cel.syntax import parse
from admission.review import Request
from tests.conftest import pod


def run(source: str, **values: object) -> object:
    return compile_expression(source, where="p.yaml:1").evaluate(bind(values))


def test_a_syntax_error_is_a_load_error_naming_file_line_and_expression() -> None:
    with pytest.raises(LoadError, match=r"^policy.yaml:7: object\.spec \+: 1:14: Syntax error") as info:
        compile_expression("object.spec +", where="policy.yaml:7")
    assert isinstance(info.value, PolicyError)
    assert info.value.expression == "object.spec +"


def test_an_undeclared_variable_or_a_type_error_is_a_load_error() -> None:
    with pytest.raises(LoadError, match="undeclared reference to 'obj.spec'"):
        compile_expression("obj.spec", where="p.yaml:1")
    with pytest.raises(LoadError, match="no matching overload for '_\\+_'"):
        compile_expression("'a' + 1", where="p.yaml:1")
    with pytest.raises(LoadError, match="an expression is required"):
        compile_expression("  ", where="p.yaml:1")


def test_declared_variables_can_be_narrowed() -> None:
    with pytest.raises(LoadError, match="undeclared reference to 'params.x'"):
        compile_expression("params.x", where="p.yaml:1", variables=("object",))


def test_values_in_and_out_are_plain_python() -> None:
    obj = pod()
    assert run("object.metadata.labels", object=obj) == {"app": "web"}
    assert run("object.spec.containers.map(c, c.name)", object=obj) == ["app"]
    assert run("object.spec.containers.all(c, has(c.resources))", object=obj) is False
    assert run("size(object.spec.containers) + 1", object=obj) == 2
    assert run("oldObject == null", oldObject=None) is True


def test_optional_types_and_string_extensions() -> None:
    obj = pod()
    assert run("object.?metadata.?annotations.orValue({})", object=obj) == {}
    assert run("object.metadata.?labels[?'app'].hasValue()", object=obj) is True
    assert run("'a,b'.split(',').join('-')", object=obj) == "a-b"
    assert run("'%s:%d'.format(['x', 3])") == "x:3"
    assert run("'ABC'.lowerAscii().replace('b', 'x')") == "axc"


def test_heterogeneous_numeric_equality_as_cel_go() -> None:
    assert run("dyn(1) == 1.0") is True
    assert run("dyn(1u) == 1") is True
    assert run("[1, 'a'] == [1, 'a'] && {'a': [1]} == {'a': [1]}") is True


def test_runtime_failures_are_eval_errors_worded_as_cel_go() -> None:
    with pytest.raises(EvalError, match="no such key: missing"):
        run("object.missing", object={})
    with pytest.raises(EvalError, match="overflow"):
        run("9223372036854775807 + 1")
    # cel-go's words, as kube-apiserver 1.36 returns them (cel-cpp says "divide by zero", "cannot convert ...")
    with pytest.raises(EvalError, match="^division by zero$"):
        run("1 / 0")
    for expression, message in [
        ("int(object.v)", "type conversion error from 'string' to 'int'"),
        ("uint(object.v)", "type conversion error from 'string' to 'uint'"),
        ("double(object.v)", "type conversion error from 'string' to 'double'"),
        ("bool(object.v)", "type conversion error from 'string' to 'bool'"),
        ("duration(object.v)", "type conversion error from 'string' to 'google.protobuf.Duration'"),
        ("timestamp(object.v)", "type conversion error from 'string' to 'google.protobuf.Timestamp'"),
        ("int(double(object.big))", "integer overflow"),
        ("uint(int(object.negative))", "unsigned integer overflow"),
        ("[1, 2][int(object.index)]", "index out of bounds: 5"),
        ("'abc'.matches(object.regex)", "error parsing regexp: missing closing ): `((`"),
        ("object.v.find(object.regex)", "error parsing regexp: missing closing ): `((`"),
        ("url(object.v)", 'URL parse error during conversion from string: parse "x": invalid URI for request'),
        ("ip(object.ip)", 'IP Address "1.2.3" parse error during conversion from string: ParseAddr("1.2.3"): '
                          "IPv4 address too short"),
        ("cidr(object.cidr)", "network address parse error during conversion from string: " * 2
                              + 'netip.ParsePrefix("10.0.0.0/33"): prefix length out of range'),
    ]:
        with pytest.raises(EvalError) as raised:
            run(expression, object={"v": "x", "big": "1e100", "negative": "-1", "index": "5", "regex": "((",
                                    "ip": "1.2.3", "cidr": "10.0.0.0/33"})
        assert str(raised.value) == message, expression


def test_one_binding_serves_every_expression() -> None:
    activation = kubernetes_activation(Request.for_object(pod(), user_info={"username": "alice"}))
    names = compile_expression("object.metadata.name", where="p.yaml:1")
    user = compile_expression("request.userInfo.username + '/' + request.operation", where="p.yaml:2")
    assert names.evaluate(activation) == "web"
    assert user.evaluate(activation) == "alice/CREATE"
    assert compile_expression("oldObject == null && params == null", where="p:3").evaluate(activation) is True
    assert "object" not in activation.values["request"]


def test_a_passed_deadline_is_an_eval_error() -> None:
    program = compile_expression("true", where="p.yaml:1")
    with pytest.raises(EvalError, match="deadline exceeded"):
        program.evaluate(bind({}), deadline=time.monotonic() - 1)


def test_cost_shape_counts_nested_comprehensions_outside_strings() -> None:
    assert static_shape(parse("object.a.all(x, x.b.exists(y, y > 1))")) == (2, 3)
    assert static_shape(parse("'x.all(y, true)' == object.a")) == (0, 1)
    assert static_shape(parse("object.a.map(x, x).sum()")) == (1, 3)


def test_a_quadratic_expression_over_a_long_list_is_refused_a_linear_one_is_not() -> None:
    items = list(range(2000))
    activation = bind({"object": {"items": items}})
    linear = compile_expression("object.items.all(x, x >= 0)", where="p.yaml:1")
    assert linear.evaluate(activation) is True
    quadratic = compile_expression("object.items.all(x, object.items.exists(y, y == x))", where="p.yaml:2")
    assert widest(activation.values) == 2000 and input_size(activation.values) >= 2000
    with pytest.raises(EvalError, match=f"per-expression limit {PER_EXPRESSION_LIMIT}"):
        quadratic.evaluate(activation)


def test_the_per_policy_budget_is_charged_across_expressions() -> None:
    activation = bind({"object": {"items": list(range(1000))}})
    program = compile_expression("object.items.all(x, x >= 0)", where="p.yaml:1")
    budget = Budget(limit=5000)
    program.evaluate(activation, budget=budget)
    program.evaluate(activation, budget=budget)
    with pytest.raises(EvalError, match="cost budget"):
        program.evaluate(activation, budget=budget)


def test_authorizer_arguments_are_checked_as_the_kubernetes_library_checks_them() -> None:
    for expression, message in [
        ("authorizer.serviceAccount('team', 'https://x').group('').resource('pods').check('get').allowed()",
         "Invalid service account name"),
        ("authorizer.serviceAccount('Team', 'builder').group('').resource('pods').check('get').allowed()",
         "Invalid service account namespace"),
        ("authorizer.path(' ').check('get').allowed()", "path must not be empty"),
        ("authorizer.group('').resource('').check('get').allowed()", "resource must not be empty"),
    ]:
        with pytest.raises(EvalError) as raised:
            compile_expression(expression, where="p.yaml:1").evaluate(kubernetes_activation(Request.for_object(pod())))
        assert str(raised.value) == message, expression


@pytest.mark.parametrize(("expression", "value", "message"), [
    ("ip(object.v)", "https://example.com", 'ParseAddr("https://example.com"): each colon-separated field must have at '
                                     'least one digit (at "https://example.com")'),
    ("ip(object.v)", "fd00::1::2", 'ParseAddr("fd00::1::2"): multiple :: in address (at ":2")'),
    ("ip(object.v)", "01.2.3.4", 'ParseAddr("01.2.3.4"): IPv4 field has octet with leading zero'),
    ("ip(object.v)", "1:2:3", 'ParseAddr("1:2:3"): address string too short'),
    ("ip(object.v)", "fe80::1%eth0", 'IP address "fe80::1%eth0" with zone value is not allowed'),
    ("ip(object.v)", "::ffff:1.2.3.4", 'IPv4-mapped IPv6 address "::ffff:1.2.3.4" is not allowed'),
    ("cidr(object.v)", "10.0.0/8", 'netip.ParsePrefix("10.0.0/8"): ParseAddr("10.0.0"): IPv4 address too short'),
    ("cidr(object.v)", "1.2.3.4/x", 'netip.ParsePrefix("1.2.3.4/x"): bad bits after slash: "x"'),
    ("url(object.v)", "http://a b", 'parse "http://a b": invalid character " " in host name'),
    ("url(object.v)", "http://a:b/", 'parse "http://a:b/": invalid port ":b" after host'),
])
def test_address_parse_errors_are_worded_as_go_words_them(expression: str, value: str, message: str) -> None:
    """As kube-apiserver 1.36 answered each (tests/test_e2e_cel_parity.py's runtime-errors case)."""
    with pytest.raises(EvalError) as raised:
        run(expression, object={"v": value})
    assert str(raised.value).endswith(message)
