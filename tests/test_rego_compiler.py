"""The Rego compiler on the module styles issue 9 found mishandled, and its contract: what it does not
cover is refused at compile time (Unsupported), never at evaluation."""

from __future__ import annotations

from typing import Any

import pytest

from admission.engines.rego.compiler import Unsupported, compile_modules, result_json, try_compile
from admission.engines.rego.fastpath import COMPILED, REGOPY, Declined, compile_template, route_of
from admission.engines.rego.parser import parse_module
from admission.engines.rego.values import UNDEFINED, EvalError, Set, to_json
from tests.concurrency import wrong_answers


def query(sources: list[str], ref: str, input: Any = UNDEFINED, data: Any = None) -> Any:
    compiled = compile_modules([parse_module(s, file=f"m{i}.rego") for i, s in enumerate(sources)])
    return result_json(compiled.query(ref, input, data))


def test_some_pair_with_a_trailing_comment_denies() -> None:
    src = """package p
import rego.v1
deny contains k if {
    some k, v in input.x  # a comment
    v == "bad"
}
"""
    assert query([src], "data.p.deny", {"x": {"a": "ok", "b": "bad"}}) == ["b"]


def test_every_with_a_multi_line_header_allows_a_valid_pod() -> None:
    src = """package p
import rego.v1
allow if {
    every c in
        input.containers {
        startswith(c.image, "ok/")
    }
}
"""
    assert query([src], "data.p.allow", {"containers": [{"image": "ok/a"}, {"image": "ok/b"}]}) is True
    assert query([src], "data.p.allow", {"containers": [{"image": "ok/a"}, {"image": "bad"}]}) is None


def test_a_package_over_two_files_and_a_self_qualified_call() -> None:
    a = 'package lib\nimport rego.v1\nf(x) := concat("-", ["f", x])\n'
    b = 'package lib\nimport rego.v1\ng := data.lib.f("y")\n'
    assert query([a, b], "data.lib.g") == "f-y"


def test_a_comprehension_is_evaluated_where_it_stands() -> None:
    src = """package p
import rego.v1
deny contains name if {
    some c in input.containers
    name := c.name
    bad := [p | some p in c.ports; p > 1000]
    count(bad) > 0
}
"""
    inp = {"containers": [{"name": "a", "ports": [80]}, {"name": "b", "ports": [80, 8080]}]}
    assert query([src], "data.p.deny", inp) == ["b"]


def test_a_computed_key_into_data() -> None:
    src = 'package p\nimport rego.v1\nallowed if data.x[input.k] == true\n'
    assert query([src], "data.p.allowed", {"k": "a"}, {"x": {"a": True}}) is True
    assert query([src], "data.p.allowed", {"k": "b"}, {"x": {"a": True}}) is None


def test_with_input_and_data() -> None:
    src = """package p
import rego.v1
q := input.a + data.b
r := x if {
    x := q with input as {"a": 1} with data.b as 2
}
"""
    assert query([src], "data.p.r", {"a": 10}, {"b": 20}) == 3


def test_a_quote_from_the_input_reaches_the_message_intact() -> None:
    src = 'package p\nimport rego.v1\ndeny contains msg if msg := sprintf("bad name %v", [input.name])\n'
    assert query([src], "data.p.deny", {"name": 'a"b\\c'}) == ['bad name a"b\\c']


def test_sprintf_prints_composites_as_opa() -> None:
    src = 'package p\nimport rego.v1\nm := sprintf("%v %s %d %v", [{"a": [1, "x"]}, "s", 3, {"b", "a"}])\n'
    assert query([src], "data.p.m") == '{"a": [1, "x"]} s 3 {"a", "b"}'


def test_v0_gatekeeper_style() -> None:
    src = """package k
violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  not startswith(c.image, input.parameters.prefix)
  msg := sprintf("container <%v> image <%v>", [c.name, c.image])
}
"""
    inp = {"review": {"object": {"spec": {"containers": [{"name": "a", "image": "x/1"}, {"name": "b", "image": "y/1"}]}}},
           "parameters": {"prefix": "x/"}}
    assert query([src], "data.k.violation", inp) == [{"msg": "container <b> image <y/1>"}]


def test_conflicting_complete_rule_is_an_error() -> None:
    src = 'package p\nimport rego.v1\nx := v if some v in input.vs\n'
    compiled = compile_modules([parse_module(src)])
    with pytest.raises(EvalError, match="conflict"):
        compiled.query("data.p.x", {"vs": [1, 2]})
    assert compiled.query("data.p.x", {"vs": [1, 1]}) == 1


def test_a_builtin_error_is_undefined_unless_strict() -> None:
    src = 'package p\nimport rego.v1\nx := to_number(input.s)\n'
    compiled = compile_modules([parse_module(src)])
    assert compiled.query("data.p.x", {"s": "nope"}) is UNDEFINED
    with pytest.raises(EvalError):
        compiled.query("data.p.x", {"s": "nope"}, strict=True)


def test_unsupported_is_raised_at_compile_time() -> None:
    src = 'package p\nimport rego.v1\nx := http.send({"url": input.u})\n'
    result = try_compile([parse_module(src, file="m.rego")])
    assert isinstance(result, Unsupported)
    assert "http.send" in str(result) and "m.rego:3:" in str(result)


def test_function_mocking_with_with_is_refused_at_compile_time() -> None:
    src = 'package p\nimport rego.v1\nf(x) := x\ny := z if {\n    z := f(1) with f as 2\n}\n'
    assert isinstance(try_compile([parse_module(src)]), Unsupported)


def test_sets_and_equality() -> None:
    src = 'package p\nimport rego.v1\ns := {1, 1.0, "a", [1]}\nt := s - {1}\neq if 1 == 1.0\nne if true != 1\n'
    compiled = compile_modules([parse_module(src)])
    s = compiled.query("data.p.s")
    assert type(s) is Set and len(s) == 3
    assert to_json(compiled.query("data.p.t")) == ["a", [1]]
    assert compiled.query("data.p.eq") is True
    assert compiled.query("data.p.ne") is True


def test_fastpath_route_and_violations() -> None:
    src = 'package k\nviolation[{"msg": "m", "details": {"n": input.parameters.n}}] { input.review.object.kind == "Pod" }\n'
    template = compile_template([parse_module(src)])
    assert not isinstance(template, Unsupported)
    assert route_of(template).engine == COMPILED
    found = template.violations({"object": {"kind": "Pod"}}, {"n": 2})
    assert [(v.msg, v.details) for v in found] == [("m", {"n": 2})]
    refused = compile_template([parse_module('package k\nviolation[{"msg": m}] { m := http.send({}) }\n')])
    assert route_of(refused).engine == REGOPY and "http.send" in route_of(refused).reason


def test_fastpath_declines_a_value_it_cannot_hold() -> None:
    src = 'package k\nviolation[{"msg": "m"}] { x := {input.review.k: 1}; x }\n'
    template = compile_template([parse_module(src)])
    assert not isinstance(template, Unsupported)
    with pytest.raises(Declined):
        template.violations({"k": [1, 2]}, {})


CONCURRENT = """package c
import rego.v1

names contains n if { some c in input.cs; n := c.name }
by_name[n] := c.image if { some c in input.cs; n := c.name }
first := n if { n := input.cs[0].name }
shout(s) := u if { u := upper(s) }
shouted := [shout(n) | some n in names]
count_of := count({n | some n in names})
"""


def test_concurrent_evaluations_keep_their_own_values() -> None:
    """One compiled set evaluated from several threads at once (the server's thread pool): every rule kind
    that collects values (complete, function, partial set and object, comprehensions) gives each
    evaluation its own result. Values collected in a list shared by the compiled rule were taken by other
    evaluations (a violation could vanish: an allow by mistake)."""
    compiled = compile_modules([parse_module(CONCURRENT)])
    queries = ["data.c.names", "data.c.by_name", "data.c.first", "data.c.shouted", "data.c.count_of"]

    def answers(i: int) -> list[Any]:
        given = {"cs": [{"name": f"t{i}-{j}", "image": f"img{i}"} for j in range(3)]}
        return [to_json(compiled.query(q, given)) for q in queries]

    assert wrong_answers(answers) == []


def test_a_range_past_the_limit_is_an_error_never_undefined() -> None:
    """numbers.range with bounds from the request: past RANGE_LIMIT numbers it is an error of the rule (which
    follows the failure policy), not undefined, so `not` cannot turn it into an allow."""
    src = ("package r\nimport rego.v1\n"
           "allow if not too_many\n"
           "too_many if count(numbers.range(1, input.n)) > 100\n")
    assert query([src], "data.r.allow", {"n": 10}) is True
    assert query([src], "data.r.allow", {"n": 1000}) is None
    with pytest.raises(EvalError) as info:
        query([src], "data.r.allow", {"n": 10**12})
    assert info.value.code == "eval_limit_error" and "numbers.range" in str(info.value)
