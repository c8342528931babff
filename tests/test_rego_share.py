"""Template rules that no constraint changes are compiled once and evaluated once per request."""

from __future__ import annotations

from typing import Any

import pytest

from admission.engines import Context
from admission.engines.rego import RegoEvaluator
from admission.engines.rego import translate as tr
from admission.engines.rego.share import split
from admission.review import Request
from tests.test_gatekeeper_engine import constraint, template

TEMPLATE = """package k8sprivileged

import data.lib.exempt.is_exempt

violation[{"msg": msg}] {
  c := input_containers[_]
  not exempt(c)
  c.securityContext.privileged
  msg := sprintf("%v <%v> is privileged (%v)", [kind_name, c.name, label])
}

kind_name := lower(input.review.object.kind)

label := object.get(input.review.object.metadata.labels, "team", "none")

input_containers[c] {
  c := input.review.object.spec.containers[_]
}

input_containers[c] {
  c := input.review.object.spec.initContainers[_]
}

exempt(c) {
  startswith(c.image, input.parameters.exemptImages[_])
}

default strict := false

strict {
  input.parameters.strict
}

uses_strict := strict

through_function := upper_name(input.review.object.metadata.name)

upper_name(n) := upper(n)

whole_input := count(input)

some_data := data.other.thing
"""


def test_rules_that_read_no_parameters_are_shared() -> None:
    found = split(tr.translate(TEMPLATE), "gklib.sabc")
    assert found is not None
    assert found.names == ("input_containers", "kind_name", "label", "through_function")
    # read the parameters (directly or through strict), the whole input, other data, or are the output
    for name in ("violation", "exempt", "strict", "uses_strict", "whole_input", "some_data"):
        assert f"{name} := data.{found.root}" not in found.kept
    assert f"input_containers := data.{found.root}.input_containers" in found.kept
    assert "upper_name(n)" in found.shared  # the function a shared rule calls goes with it
    assert "upper_name(n)" in found.kept  # and stays for the constraint's own rules
    assert "exempt(c)" not in found.shared


def test_libs_copied_per_constraint_keep_the_rules_that_use_them() -> None:
    src = 'package p\n\nimport data.lib.x\n\na := x.f(input.review.object)\n\nb := 1\n\nviolation[{"msg": "m"}] { a == b }\n'
    shared_libs = split(tr.translate(src), "gklib.s1")
    assert shared_libs is not None and shared_libs.names == ("a", "b")
    own_libs = split(tr.translate(src), None)
    assert own_libs is not None and own_libs.names == ("b",)


def test_nothing_to_share_leaves_the_template_alone() -> None:
    assert split(tr.translate('package p\n\nviolation[{"msg": m}] { m := input.parameters.m }\n'), None) is None


PARAMETERIZED = """package k8slabelcount

violation[{"msg": msg}] {
  count(provided) < input.parameters.min
  msg := sprintf("%v has %v labels, fewer than %v", [name, count(provided), input.parameters.min])
}

provided := {k | input.review.object.metadata.labels[k]}

name := input.review.object.metadata.name
"""


def evaluator(n: int) -> RegoEvaluator:
    docs = [template("K8sLabelCount", PARAMETERIZED)]
    docs += [constraint(f"at-least-{i}", "K8sLabelCount", parameters={"min": i}) for i in range(n)]
    return RegoEvaluator.from_sources(docs, [], isolate=False)


def messages(ev: RegoEvaluator, obj: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((r.policy, r.message) for r in ev.validate(Request.for_object(obj), Context()))


def test_constraints_of_one_template_share_one_module_and_keep_their_own_results() -> None:
    ev = evaluator(4)
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}, "spec": {}}
    assert messages(ev, obj) == [("at-least-3", "p has 2 labels, fewer than 3")]
    del obj["metadata"]["labels"]
    assert messages(ev, obj) == [
        ("at-least-1", "p has 0 labels, fewer than 1"),
        ("at-least-2", "p has 0 labels, fewer than 2"),
        ("at-least-3", "p has 0 labels, fewer than 3"),
    ]


def test_compiled_program_holds_one_shared_module_per_template() -> None:
    from admission.engines.rego.gatekeeper import _modules_for

    ev = evaluator(3)
    modules: dict[str, str] = {}
    for c in ev.constraints.constraints:
        modules.update(_modules_for(c))
    shared = [name for name in modules if name.endswith(".shared.rego")]
    assert len(shared) == 1
    assert "provided := {k |" in modules[shared[0]]
    for c in ev.constraints.constraints:
        own = modules[f"{c.template.name}.{c.key}.rego"]
        assert "provided := data.gkshared." in own and "labels[k]" not in own


def hoisted(body: str) -> str:
    from admission.engines.rego.share import hoist_invariants

    return hoist_invariants(tr.translate(f"package p\n\n{body}"), libs_shared=True)


def test_comprehensions_of_the_review_alone_become_rules() -> None:
    out = hoisted(
        'violation[{"msg": m}] {\n'
        "  provided := {l | input.review.object.metadata.labels[l]}\n"
        "  required := {l | l := input.parameters.labels[_]}\n"
        "  missing := required - provided\n"
        "  count(missing) > 0\n"
        '  m := sprintf("%v", [missing])\n'
        "}\n"
    )
    assert "provided := __hoisted_1\n" in out
    assert "__hoisted_1 := {l | input.review.object.metadata.labels[l]}" in out
    assert "required := {l | some l in input.parameters.labels}" in out  # reads the parameters: stays


@pytest.mark.parametrize(
    "body",
    [
        # uses the rule's own variable c
        'violation[{"msg": "m"}] {\n  c := input.review.object.spec.containers[_]\n  ports := {p | p := c.ports[_]}\n  count(ports) > 9\n}\n',
        # a function argument
        "f(x) := n if {\n  n := {k | input.review.object.metadata.labels[k]; k != x}\n}\n",
        # more expression after the comprehension
        'violation[{"msg": "m"}] {\n  s := {k | input.review.object.metadata.labels[k]} | {"a"}\n  count(s) > 9\n}\n',
        # a rule name shadowed by a local of the same name
        'labels := {"a": 1}\nviolation[{"msg": "m"}] {\n  labels := input.review.object.metadata.labels\n  s := {k | labels[k]}\n  count(s) > 9\n}\n',
        # the whole input
        'violation[{"msg": "m"}] {\n  s := {k | input[k]}\n  count(s) > 9\n}\n',
    ],
)
def test_comprehensions_that_need_the_rule_stay(body: str) -> None:
    assert "__hoisted_" not in hoisted(body)


def test_hoisted_and_shared_rules_give_the_same_results_as_before() -> None:
    """The sharing changes no result: every constraint of a template, each with other parameters."""
    rego = TEMPLATE.replace("import data.lib.exempt.is_exempt\n", "")
    docs = [template("K8sPrivileged", rego)]
    docs += [
        constraint(f"c{i}", "K8sPrivileged", parameters={"exemptImages": [f"exempt{i}/"], "strict": i % 2 == 0})
        for i in range(3)
    ]
    ev = RegoEvaluator.from_sources(docs, [], isolate=False)
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"team": "core"}},
        "spec": {
            "containers": [
                {"name": "a", "image": "exempt0/a", "securityContext": {"privileged": True}},
                {"name": "b", "image": "exempt1/b", "securityContext": {"privileged": True}},
            ],
            "initContainers": [{"name": "i", "image": "other/i", "securityContext": {"privileged": False}}],
        },
    }
    assert messages(ev, obj) == [
        ("c0", "pod <b> is privileged (core)"),
        ("c1", "pod <a> is privileged (core)"),
        ("c2", "pod <a> is privileged (core)"),
        ("c2", "pod <b> is privileged (core)"),
    ]


LIMIT = (
    "violation[{\"msg\": \"m\"}] {\n"
    "  c := input.review.object.spec.containers[_]\n"
    "  mem := parse(c.resources.limits.memory)\n"
    "  max_orig := input.parameters.memory\n"
    "  max := parse(max_orig)\n"
    "  mem > max\n"
    "}\n"
    "parse(x) := to_number(trim_suffix(x, \"Mi\"))\n"
)


def test_calls_the_iteration_does_not_change_are_evaluated_once() -> None:
    out = hoisted(LIMIT)
    assert "  max := __hoisted_1\n" in out
    assert "__hoisted_1 := parse(input.parameters.memory)" in out  # max_orig stands for its reference
    assert "  mem := parse(c.resources.limits.memory)\n" in out  # reads the iteration's c: stays


@pytest.mark.parametrize(
    "body",
    [
        # no iteration: nothing to save within one constraint, and it reads the parameters
        'violation[{"msg": "m"}] {\n  max := to_number(input.parameters.max)\n  max > 1\n}\n',
        # the call iterates itself: as a rule it would have several values
        'violation[{"msg": "m"}] {\n  some c in input.review.object.spec.containers\n  n := count(input.review.object.spec.volumes[i])\n  n > 1\n}\n',
        # not the same value each time
        'violation[{"msg": "m"}] {\n  some c in input.review.object.spec.containers\n  t := time.now_ns()\n  t > 1\n}\n',
    ],
)
def test_calls_that_must_stay(body: str) -> None:
    assert "__hoisted_" not in hoisted(body)


def test_hoisting_alone_changes_the_template_and_keeps_its_answers() -> None:
    """Nothing to share, but the hoisted call still runs once per constraint: the same violations."""
    rego = "package k8slimit\n\n" + LIMIT.replace("input.parameters.memory", "input.parameters.max")
    found = split(tr.translate(rego), None)
    assert found is not None and found.root == "" and "__hoisted_1 := parse(input.parameters.max)" in found.kept
    docs = [template("K8sLimit", rego)] + [
        constraint(f"max-{n}", "K8sLimit", parameters={"max": f"{n}Mi"}) for n in (100, 300)
    ]
    ev = RegoEvaluator.from_sources(docs, [], isolate=False)
    obj = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "resources": {"limits": {"memory": "200Mi"}}}]},
    }
    assert [r.policy for r in ev.validate(Request.for_object(obj), Context())] == ["max-100"]
