"""Rego v0 -> v1 translation and the rewrites around regopy 1.5.2 defects.

Each defect rewrite is checked twice: the text it produces, and that the translated module evaluates to what
OPA gives. Sources that crash the unrewritten engine are only ever run in a child process (isolate.check).
"""

from __future__ import annotations

from typing import Any

import pytest

from admission.engines.rego import translate as tr
from admission.engines.rego.backend import Program
from admission.engines.rego.isolate import Unit, check


def evaluate(src: str, query: str, input_doc: Any = None) -> Any:
    program = Program({"m.rego": tr.translate(src)}, {}, query)
    return program.evaluate(input_doc if input_doc is not None else {})


def test_partial_set_rule_becomes_contains() -> None:
    out = tr.to_v1('package p\nviolation[{"msg": msg}] {\n  msg := "x"\n}\n')
    assert 'violation contains {"msg": msg} if {' in out
    assert evaluate('package p\nviolation[{"msg": msg}] {\n  msg := "x"\n}\n', "data.p.violation") == [{"msg": "x"}]


def test_partial_object_rule_keeps_its_key() -> None:
    src = 'package p\nm[k] = v {\n  some k, v in {"a": 1}\n}\n'
    assert "m[k] = v if {" in tr.to_v1(src)
    assert evaluate(src, "data.p.m") == {"a": 1}


def test_functions_else_default_and_bodiless_rules() -> None:
    src = (
        "package p\n"
        "default allow = false\n"
        "limit := 3\n"
        "f(x) = y {\n  x > 1\n  y := \"big\"\n} else = y {\n  y := \"small\"\n}\n"
        "allow {\n  f(2) == \"big\"\n}\n"
        "obj := {\"a\": 1}\n"
    )
    out = tr.to_v1(src)
    assert "f(x) = y if {" in out and "} else = y if {" in out and "allow if {" in out
    assert evaluate(src, "data.p") == {"allow": True, "limit": 3, "obj": {"a": 1}}


def test_several_bodies_become_several_rules() -> None:
    src = 'package p\nkind_of(o) = k {\n  o.a\n  k := "a"\n} {\n  o.b\n  k := "b"\n}\nr := [kind_of({"a": 1}), kind_of({"b": 1})]\n'
    assert tr.to_v1(src).count("kind_of(o) = k if {") == 2
    assert evaluate(src, "data.p.r") == ["a", "b"]


def test_v1_modules_pass_through() -> None:
    src = "package p\nimport rego.v1\ndeny contains msg if {\n  msg := \"x\"\n}\n"
    assert tr.to_v1(src) == src


def test_strings_and_comments_are_not_touched() -> None:
    src = 'package p\n# deny[x] { not really }\nmsg := "violation[{\\"msg\\": m}] {"\n'
    assert tr.to_v1(src) == src


def test_call_argument_iteration_is_hoisted() -> None:
    """`f(xs[_])` does not compile on regopy ("Invalid bracket argument")."""
    src = 'package p\nok contains i if {\n  some i in [1, 2]\n  startswith("abc", input.prefixes[_])\n}\n'
    out = tr.hoist_call_args(tr.to_v1(src))
    assert "__hoist1 := input.prefixes[_]; startswith(\"abc\", __hoist1)" in out
    assert evaluate(src, "data.p.ok", {"prefixes": ["x", "ab"]}) == [1, 2]
    assert evaluate(src, "data.p.ok", {"prefixes": ["x"]}) == []


def test_variable_index_in_call_argument_is_hoisted() -> None:
    """`some i; f(a[i])` silently yields nothing on regopy."""
    src = 'package p\nhit contains i if {\n  a := ["A", "B"]\n  some i\n  startswith(a[i], "A")\n}\n'
    assert evaluate(src, "data.p.hit") == [0]


def test_negated_calls_are_not_hoisted_over_iteration() -> None:
    out = tr.hoist_call_args(tr.to_v1('package p\nr if {\n  not startswith("a", input.xs[_])\n}\n'))
    assert "__hoist" not in out


def test_negated_call_with_undefined_path_argument_fails_as_in_opa() -> None:
    """OPA evaluates a path argument before the negation: undefined -> the statement fails."""
    src = (
        "package p\n"
        'accept("any", _, _)\n'
        "bad contains x if {\n  x := input.v\n  not accept(input.rule, x, input.params.ranges)\n}\n"
    )
    assert evaluate(src, "data.p.bad", {"v": 1, "rule": "any", "params": {}}) == []
    assert evaluate(src, "data.p.bad", {"v": 1, "rule": "other", "params": {"ranges": []}}) == [1]
    # the call keeps its arguments; a guard before the statement fails when a path is undefined
    out = tr.translate(src)
    assert "_ = input.rule; _ = input.params.ranges; not accept(input.rule, x, input.params.ranges)" in out


def test_negated_call_guard_on_iterated_element_path() -> None:
    """`not f(c.image)` for each element: an element without the field is skipped, not reported."""
    src = (
        "package p\n"
        'allowed(image) { startswith(image, "ok/") }\n'
        "bad[c.name] {\n  c := input.cs[_]\n  not allowed(c.image)\n}\n"
    )
    out = tr.translate(src)
    assert "_ = c.image; not allowed(c.image)" in out
    cs = [{"name": "a", "image": "ok/x"}, {"name": "b", "image": "bad/x"}, {"name": "c"}]
    assert evaluate(src, "data.p.bad", {"cs": cs}) == ["b"]


def test_comprehension_iteration_is_hoisted_inside_the_comprehension() -> None:
    src = 'package p\ns := {c | c := lower(input.xs[_])}\n'
    out = tr.translate(src)
    assert "{c | some __hoist1 in input.xs; c := lower(__hoist1)}" in out or "__hoist1 := input.xs[_]" in out
    assert evaluate(src, "data.p.s", {"xs": ["A", "b"]}) == ["a", "b"]


def test_iteration_variable_used_as_index_is_rewritten_with_some() -> None:
    src = 'package p\nc contains x if {\n  field := ["containers", "initContainers"][_]\n  x := input.spec[field][_]\n}\n'
    out = tr.translate(src)
    assert 'some field in ["containers", "initContainers"]' in out
    assert evaluate(src, "data.p.c", {"spec": {"containers": ["a"], "initContainers": ["b"]}}) == ["a", "b"]


def test_paren_line_after_a_term_is_guarded() -> None:
    src = "package p\nr if {\n  x := 1\n  y := x\n  (y + 1) > 1\n}\n"
    out = tr.translate(src)
    assert "true; (y + 1) > 1" in out
    unit = Unit("paren", {"m.rego": out}, "data.p.r", "{}")
    assert check([unit]) == {"paren": None}
    assert evaluate(src, "data.p.r") is True


def test_sprintf_prints_strings_without_quotes() -> None:
    src = 'package p\nf(x) := sprintf("%v is %v", [x, input.n])\nr := f("name")\n'
    assert evaluate(src, "data.p.r", {"n": 3}) == "name is 3"


def test_sprintf_formats_collections_like_opa() -> None:
    src = 'package p\nr := sprintf("%v %v", [["a", 1], {"k": "v"}])\n'
    assert evaluate(src, "data.p.r") == '["a", 1] {"k": "v"}'


def test_sort_of_a_set_is_an_array() -> None:
    src = 'package p\nr := sort({"b", "a"})\nis_arr := is_array(sort({"b"}))\n'
    assert evaluate(src, "data.p") == {"r": ["a", "b"], "is_arr": True}


def test_rename_refs_longest_prefix_first() -> None:
    src = 'package p\na := input.parameters.x\nb := object.get(input, "parameters", {})\nc := input["parameters"]\nd := input.review\n'
    out = tr.rename_refs(src, {"input.parameters": "data.params", "input.review": "input.review", "input": "data.view"})
    assert "a := data.params.x" in out
    assert 'object.get(data.view, "parameters", {})' in out
    assert "c := data.params" in out
    assert "d := input.review" in out


def test_package_helpers() -> None:
    src = "package lib.exempt_container\n\nx := 1\n"
    assert tr.package_of(src) == "lib.exempt_container"
    assert tr.set_package(src, "gk.lib.a").startswith("package gk.lib.a\n")


def test_unreadable_source_names_the_line() -> None:
    with pytest.raises(tr.TranslateError) as err:
        tr.to_v1("package p\n\nr if {\n  x := 1\n")
    assert err.value.line == 3


def test_percent_q_quotes_like_go_for_plain_strings() -> None:
    """regopy prints `%q` literally and consumes no argument, shifting every later one."""
    src = 'package p\nr := sprintf("name %q is %d%% done", [input.n, 5])\n'
    assert evaluate(src, "data.p.r", {"n": "web"}) == 'name "web" is 5% done'


def test_v1_object_term_after_contains() -> None:
    src = 'package p\nimport rego.v1\nviolation contains {"msg": msg} if {\n  msg := "x"\n}\n'
    assert tr.to_v1(src) == src
    assert evaluate(src, "data.p.violation") == [{"msg": "x"}]


def test_functions_get_module_unique_names() -> None:
    src = 'package p\nget_message(p, d) := d if {\n  not p.message\n}\nv := get_message({}, "x")\nw := data.other.get_message(1)\n'
    out = tr.rename_functions(src, "c3")
    assert "get_message__c3(p, d) := d if {" in out
    assert 'v := get_message__c3({}, "x")' in out
    assert "data.other.get_message(1)" in out


SAME_NAME_A = 'package a\nget_message(parameters, _default) := _default if {\n  not parameters.message\n}\nget_message(parameters, _) := parameters.message\nv := get_message({}, "d")\n'
SAME_NAME_B = 'package b\nget_message(kind, apiVersion, k8sVersion, targetAPI) = msg if {\n  msg := "x"\n}\nv := get_message(1, 2, 3, 4)\n'


def test_same_function_name_with_other_arity_in_two_packages() -> None:
    """regopy crashes compiling these two modules together; renamed, they compile and evaluate."""
    plain = Unit("plain", {"a.rego": SAME_NAME_A, "b.rego": SAME_NAME_B}, "[data.a.v, data.b.v]", "{}")
    renamed = Unit(
        "renamed",
        {"a.rego": tr.rename_functions(SAME_NAME_A, "a"), "b.rego": tr.rename_functions(SAME_NAME_B, "b")},
        "[data.a.v, data.b.v]",
        "{}",
    )
    got = check([plain, renamed])
    assert got["plain"] is not None and "crashed" in got["plain"]
    assert got["renamed"] is None


PARTIAL_SETS = (
    "package p\n"
    'violation[{"msg": msg}] {\n  c := input.cs[_]\n  not c.ok  # a comment\n  msg := sprintf("%v is not ok", [c.name])\n}\n'
    'violation[{"msg": "x is one"}] { input.x == 1 }\n'
    "single[n] { n := input.cs[_].name }\n"
    "none[n] { n := input.cs[_].name; n == \"zz\" }\n"
)


def test_partial_set_rules_become_set_comprehensions_with_the_same_value() -> None:
    src = tr.translate(PARTIAL_SETS)
    out = tr.partial_sets_as_comprehensions(src)
    assert "single := {n |" in out and "none := {n |" in out
    assert '__set_violation_1 := {{"msg": msg} |' in out
    assert "violation := __set_violation_1 | __set_violation_2" in out
    doc = {"cs": [{"name": "a", "ok": True}, {"name": "b"}, {"name": "b"}], "x": 1}
    query = "{r: data.p[r] | some r in [\"violation\", \"single\", \"none\"]}"
    before = Program({"m.rego": src}, {}, query).evaluate(doc)
    after = Program({"m.rego": out}, {}, query).evaluate(doc)
    assert before == after == {
        "violation": [{"msg": "b is not ok"}, {"msg": "x is one"}],
        "single": ["a", "b"],
        "none": [],
    }
    empty = Program({"m.rego": out}, {}, "data.p.violation").evaluate({"cs": []})
    assert empty == []


def test_partial_sets_left_alone_when_not_only_bodied_contains_rules() -> None:
    src = (
        "package p\n"
        "s contains 1\n"
        "s contains 2 if { true }\n"
        "u contains x if { some y in [1]; x := {y} | {2} }\n"
        "plain contains 1 if { input.x == 1 }\n"
        "w contains {1} | {2} if { true }\n"
    )
    out = tr.partial_sets_as_comprehensions(src)
    assert "s contains 1\ns contains 2 if { true }" in out  # a bodiless definition: s stays partial
    assert "u := {x | some y in [1]; x := {y} | {2} }" in out
    assert "plain contains 1 if" in out  # no iteration: faster as a partial rule
    assert "w contains {1} | {2} if" in out  # `|` in the head would read as the comprehension's bar
    assert Program({"m.rego": out}, {}, "data.p").evaluate({"x": 1}) == {
        "s": [1, 2], "u": [[1, 2]], "w": [[1, 2]], "plain": [1]
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('out := {k | some k, v in input.o; v != ""}', ["cpu"]),
        ("out := [x | some _, x in input.a]", ["x", "y"]),
        ("out := {k | some k, _ in input.o}", ["cpu", "memory"]),
        ('out := {[i, x] | some i, x in object.get(input, "a", [])}', [[0, "x"], [1, "y"]]),
        ('out := {[k, v] | some k, v in {"p", "q"}}', [["p", "p"], ["q", "q"]]),
        ('out contains k if {\n  some k, v in input.o\n  v == "1"\n}', ["cpu"]),
    ],
)
def test_key_value_iteration_in_comprehensions(body: str, expected: Any) -> None:
    """regopy refuses `some k, v in xs` in a comprehension ("Invalid collection"); the translation's
    lookups bind the same keys and values."""
    src = tr.translate(f"package p\n\n{body}\n")
    assert "some k, v in" not in src
    assert evaluate(src, "data.p.out", {"o": {"cpu": "1", "memory": ""}, "a": ["x", "y"]}) == expected


def test_violation_iterating_keys_and_values_compiles_and_runs() -> None:
    """A template whose violation rule iterates `some k, v in` failed to compile once partial set rules
    became comprehensions."""
    from admission.engines import Context
    from admission.engines.rego import RegoEvaluator
    from admission.review import Request
    from tests.test_gatekeeper_engine import constraint, template

    rego = (
        "package k8sbadlabels\n\nimport future.keywords.in\n\n"
        'violation[{"msg": msg}] {\n  some k, v in input.review.object.metadata.labels\n  v == "bad"\n'
        '  msg := sprintf("label %v is bad", [k])\n}\n'
    )
    ev = RegoEvaluator.from_sources([template("K8sBadLabels", rego), constraint("bad", "K8sBadLabels")], [], isolate=False)
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "bad", "b": "ok"}}}
    assert [r.message for r in ev.validate(Request.for_object(obj), Context())] == ["label a is bad"]
