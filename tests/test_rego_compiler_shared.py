"""Sharing between evaluations that differ only in one input path (Gatekeeper: the constraints of one
template on one review differ only in `input.parameters`): what does not read that path is evaluated once per
`Shared`, and each evaluation must still give exactly what it gives alone.

- the analysis: which rules read the varying path (directly, through an import alias, the whole input, a
  computed key, `with`, or another rule or function);
- the Gatekeeper library: every template, every review of its suite evaluated under every parameter set of
  that template, sharing one `Shared` per review, equals each evaluation alone;
- hypothesis-generated modules (tests/rego_strategies.py) with one input field as the varying path;
- the error a body's own order meets is the one raised, although shared expressions are moved ahead.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admission.engines.rego.compiler import Compiler, compile_modules
from admission.engines.rego.parser import parse_module
from admission.engines.rego.values import UNDEFINED, EvalError, to_json
from tests.concurrency import wrong_answers
from tests.rego_gatekeeper_cases import LIBRARY, library_cases

VARYING = ("parameters",)


def _answer(compiled: Any, ref: str, input: Any, data: Any, shared: Any = None) -> Any:
    ctx = compiled.context(input, data, shared=shared)
    try:
        v = compiled.document(ref)(ctx)
    except EvalError as exc:
        return f"error: {exc.code}"
    return None if v is UNDEFINED else _canon(to_json(v))


def _canon(v: Any) -> Any:
    if isinstance(v, list):
        items = [_canon(x) for x in v]
        try:
            return sorted(items, key=repr)
        except TypeError:
            return items
    if isinstance(v, dict):
        return {k: _canon(x) for k, x in v.items()}
    return v


def _varies(src: str) -> dict[str, bool]:
    c = Compiler([parse_module(src, file="m.rego")], VARYING)
    c.compile()
    return {g.path[-1]: g.varies for g in c.groups}


def test_the_analysis_finds_what_reads_the_parameters() -> None:
    src = """package t
import rego.v1
import input.parameters as params
direct if input.parameters.x == 1
aliased if params.x == 1
whole if object.get(input, "parameters", {}) != {}
computed if input[k] == 1
review_only if input.review.object.kind == "Pod"
with_input if review_only with input as {}
through_rule if direct
f(x) := y if y := x + input.parameters.n
g(x) := x + 1
through_function if f(1) == 2
pure_function if g(1) == 2
base_data if data.inventory.cluster
"""
    assert _varies(src) == {
        "direct": True, "aliased": True, "whole": True, "computed": True, "review_only": False,
        "with_input": True, "through_rule": True, "f": True, "g": False, "through_function": True,
        "pure_function": False, "base_data": False,
    }


def test_nothing_is_shared_without_a_varying_path() -> None:
    c = Compiler([parse_module("package t\nimport rego.v1\nr if input.review.x\n")])
    c.compile()
    assert all(g.varies for g in c.groups)


def test_the_error_of_the_body_own_order_is_raised() -> None:
    # f(c) conflicts for c > 0; it reads no parameter, so it is computed ahead of `c != skip`, which it
    # follows: the body must still fail without an error when `c != skip` fails first
    src = """package t
import rego.v1
f(x) := 1 if x > 0
f(x) := 2 if x > 0
violation contains msg if {
    some c in input.review.cs
    c != input.parameters.skip
    f(c) == 1
    msg := sprintf("%v", [c])
}
"""
    module = parse_module(src, file="m.rego")
    shared_c = compile_modules([module], VARYING)
    alone = compile_modules([module])
    review = {"cs": [1]}
    for order in ([1, 2], [2, 1]):
        sh = shared_c.shared()
        for skip in order:
            inp = {"review": review, "parameters": {"skip": skip}}
            want = _answer(alone, "data.t.violation", inp, {})
            assert _answer(shared_c, "data.t.violation", inp, {}, sh) == want
    assert _answer(alone, "data.t.violation", {"review": review, "parameters": {"skip": 1}}, {}) == []
    assert _answer(alone, "data.t.violation", {"review": review, "parameters": {"skip": 2}}, {}) == "error: eval_conflict_error"


def test_shared_solutions_are_reused_by_every_constraint() -> None:
    src = """package t
import rego.v1
violation contains msg if {
    some c in input.review.cs
    c.size > 10
    c.size > input.parameters.max
    msg := sprintf("%v > %v", [c.name, input.parameters.max])
}
"""
    compiled = compile_modules([parse_module(src)], VARYING)
    sh = compiled.shared()
    review = {"cs": [{"name": "a", "size": 20}, {"name": "b", "size": 5}, {"name": "c", "size": 40}]}
    got = [_answer(compiled, "data.t.violation", {"review": review, "parameters": {"max": m}}, {}, sh) for m in (15, 30, 50)]
    assert got == [["a > 15", "c > 15"], ["c > 30"], []]


def test_gatekeeper_library_shared_equals_alone() -> None:
    if not LIBRARY.is_dir():
        pytest.skip(f"the conformance suites are not checked out beside the repository ({LIBRARY} is missing)")
    by_template: dict[str, list[Any]] = defaultdict(list)
    for case in library_cases():
        by_template[case.template.file].append(case)
    checked = 0
    for cases in by_template.values():
        t = cases[0].template
        shared_c = compile_modules(t.modules, VARYING)
        alone = compile_modules(t.modules)
        query = f"data.{t.package}.violation"
        params = []
        for c in cases:
            if c.input["parameters"] not in params:
                params.append(c.input["parameters"])
        for case in cases:
            for ps in (params, list(reversed(params))):
                sh = shared_c.shared()
                for p in ps:
                    inp = {"review": case.input["review"], "parameters": p}
                    want = _answer(alone, query, inp, case.data)
                    assert _answer(shared_c, query, inp, case.data, sh) == want, (t.name, case.name, p)
                    checked += 1
    assert checked > 400


FIELDS = ("n", "m", "s", "xs", "names", "labels")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_generated_modules_shared_equal_alone(data: Any) -> None:
    from tests.rego_strategies import inputs, modules

    module = data.draw(modules())
    field = data.draw(st.sampled_from(FIELDS))
    first = data.draw(inputs())
    others = [{**first, field: data.draw(inputs())[field]} for _ in range(2)]
    shared_c = compile_modules([module], (field,))
    alone = compile_modules([module])
    sh = shared_c.shared()
    for rule in sorted({r.head.ref.head.name for r in module.rules if r.head.args is None}):  # type: ignore[union-attr]
        ref = f"data.gen.{rule}"
        for inp in (first, *others):
            assert _answer(shared_c, ref, inp, {}, sh) == _answer(alone, ref, inp, {}), (rule, field, inp)


def test_concurrent_shared_evaluations_keep_their_own_solutions() -> None:
    """Threads evaluating one compiled set, each with its own `Shared` and review: a body's shared solutions
    are collected in the evaluation's own memo, never in a list the compiled code holds for all threads (a
    review's containers could land in another review's solutions: a violation lost or invented)."""
    src = """package t
import rego.v1
violation contains msg if {
    some c in input.review.cs
    c.size > 10
    c.size > input.parameters.max
    msg := sprintf("%v > %v", [c.name, input.parameters.max])
}
"""
    compiled = compile_modules([parse_module(src)], VARYING)

    def answers(i: int) -> list[Any]:
        review = {"cs": [{"name": f"r{i}-{j}", "size": 11 + 10 * j} for j in range(4)]}
        sh = compiled.shared()
        return [_answer(compiled, "data.t.violation", {"review": review, "parameters": {"max": m}}, {}, sh) for m in (15, 30)]

    assert wrong_answers(answers) == []
