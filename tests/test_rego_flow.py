"""Input paths followed through variables and rules (flow.py), and pruning with `*`: what is kept is
what the Rego can read, and never less."""

from __future__ import annotations

from typing import Any

import pytest

from admission.engines import Context
from admission.engines.rego import RegoEvaluator
from admission.engines.rego import translate as tr
from admission.engines.rego.paths import Paths, input_paths, prune
from admission.review import Request
from tests.test_gatekeeper_engine import constraint, template

ROOT = ("review",)


def paths(*sources: str) -> Paths | None:
    return input_paths([tr.translate(s) for s in sources], ROOT)


def test_a_variable_reads_the_fields_it_uses() -> None:
    src = (
        "package p\n"
        'violation[{"msg": msg}] {\n'
        "  c := input.review.object.spec.containers[_]\n"
        "  not startswith(c.image, \"registry.example/\")\n"
        '  msg := sprintf("%v", [c.name])\n'
        "}\n"
    )
    assert paths(src) == {"object": {"spec": {"containers": {"*": {"image": None, "name": None}}}}}


def test_rules_holding_input_values_are_followed_through_imports() -> None:
    lib = (
        "package lib.pods\n"
        'pod_spec = input.review.object.spec { input.review.object.kind == "Pod" }\n'
        'pod_spec = input.review.object.spec.template.spec { input.review.object.kind != "Pod" }\n'
    )
    src = (
        "package p\nimport data.lib.pods\n"
        "input_containers[c] { c := pods.pod_spec[field][_]; field := [\"containers\", \"initContainers\"][_] }\n"
        'violation[{"msg": c.name}] { c := input_containers[_]; c.securityContext.privileged }\n'
    )
    kept = {"*": {"name": None, "securityContext": {"privileged": None}}}
    spec = {"containers": kept, "initContainers": kept}
    assert paths(lib, src) == {"object": {"kind": None, "spec": {**spec, "template": {"spec": spec}}}}


@pytest.mark.parametrize(
    "body",
    [
        "  c := input.review.object.spec\n  count(c) > 1\n",  # a bare use
        "  c := input.review.object.spec\n  f(c)\n",  # passed to a function that reads it whole
        "  c := input.review.object.spec\n  c == {}\n",  # compared
        "  c := input.review.object.spec\n  c.x\n  c := 1\n",  # bound twice, once to something else
        "  x := {}\n  x = input.review.object.spec\n",  # `=` may compare: not followed
        "  [a, b] := [input.review.object.spec, 1]\n  a.x\n",  # a pattern: not followed
    ],
)
def test_uses_that_are_not_followed_keep_the_whole_value(body: str) -> None:
    src = f"package p\nf(x) := count(x)\ndeny contains 1 if {{\n{body}}}\n"
    assert paths(src) == {"object": {"spec": None}}


def test_a_rule_referenced_through_its_package_as_a_whole_is_not_followed() -> None:
    lib = "package lib.x\nspec := input.review.object.spec\n"
    src = "package p\nimport data.lib.x\ndeny contains 1 if { some k; x[k].a }\n"
    assert paths(lib, src) == {"object": {"spec": None}}
    followed = "package p\nimport data.lib.x\ndeny contains 1 if { x.spec.a }\n"
    assert paths(lib, followed) == {"object": {"spec": {"a": None}}}


def test_queried_rules_are_read_whole() -> None:
    assert paths("package p\nviolation := input.review.object.spec\n") == {"object": {"spec": None}}
    assert paths("package p\nhelper := input.review.object.spec\n") == {"object": {"spec": {}}}  # never read


def test_constant_keys_from_a_literal_list_and_only_in_its_scope() -> None:
    src = (
        "package p\n"
        'fields := ["containers", "initContainers"]\n'
        "deny contains 1 if {\n"
        "  some f in fields\n"
        "  input.review.object.spec[f][_].image\n"
        "}\n"
        "deny contains 1 if {\n"
        "  input.review.object.metadata[f]\n"  # another rule: f there is any key
        "}\n"
    )
    image = {"*": {"image": None}}
    assert paths(src) == {
        "object": {"spec": {"containers": image, "initContainers": image}, "metadata": {"*": None}}
    }


def test_prune_with_every_key_and_element() -> None:
    value = {
        "spec": {
            "containers": [{"name": "a", "image": "x", "env": [1]}, {"name": "b", "env": [2]}],
            "volumes": [{"name": "v"}],
        },
        "metadata": {"labels": {"a": "1"}, "annotations": {"b": {"c": 1, "d": 2}}},
    }
    kept: Paths = {
        "spec": {"containers": {"*": {"name": None, "image": None}}, "volumes": {}},
        "metadata": {"*": {"b": {"c": None}}, "labels": None},
    }
    assert prune(value, kept) == {
        "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}], "volumes": [{"name": "v"}]},
        "metadata": {"labels": {"a": "1"}, "annotations": {"b": {"c": 1}}},
    }


PRIVILEGED = """package k8sprivileged

input_containers[c] {
  c := input.review.object.spec.containers[_]
}

input_containers[c] {
  c := input.review.object.spec.initContainers[_]
}

violation[{"msg": msg}] {
  c := input_containers[_]
  c.securityContext.privileged
  msg := sprintf("container <%v> is privileged", [c.name])
}
"""


def test_a_template_sees_the_same_answers_on_its_pruned_input() -> None:
    ev = RegoEvaluator.from_sources([template("K8sPrivileged", PRIVILEGED), constraint("priv", "K8sPrivileged")], [], isolate=False)
    assert ev.constraints.review_paths is not None
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [
                {"name": "a", "image": "x", "env": [{"name": "E", "value": "v"}], "securityContext": {"privileged": True}},
                {"name": "b", "image": "y"},
            ],
            "initContainers": [{"name": "i", "securityContext": {"privileged": False, "runAsUser": 0}}],
        },
    }
    assert [r.message for r in ev.validate(Request.for_object(obj), Context())] == ["container <a> is privileged"]


LIBRARY = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "conformance" / "gatekeeper-library"


def test_library_templates_answer_the_same_on_pruned_and_whole_input() -> None:
    """Every Gatekeeper library test's constraints against every case object of every suite (not only its
    own), evaluated with the input pruned to the followed paths and with the whole input: the same
    violations. Pruning must never change an answer."""
    if not LIBRARY.is_dir():
        pytest.skip(f"the conformance suites are not checked out beside the repository ({LIBRARY} is missing)")
    import yaml

    from admission.manifests import load_file
    from admission.testing.gatekeeper import _compile, request_for

    sets = []
    requests = []
    for suite in sorted(LIBRARY.rglob("suite.yaml")):
        doc = yaml.safe_load(suite.read_text())
        for test in doc.get("tests") or []:
            sets.append((f"{suite.parent.name}/{test.get('name')}", _compile(suite.parent, test)))
            for case in test.get("cases") or []:
                obj = load_file(suite.parent / str(case["object"]))[0].obj
                requests.append(request_for(obj))
    compared = 0
    for name, cset in sets:
        kept = cset.review_paths
        if kept is None:
            continue
        for request in requests:
            got = sorted(v.message for v in cset.evaluate(request, [], lambda ns: None)[0])
            cset.review_paths = None
            whole = sorted(v.message for v in cset.evaluate(request, [], lambda ns: None)[0])
            cset.review_paths = kept
            assert got == whole, f"{name} on {request.kind.kind} {request.name}"
            compared += 1
    print(f"{compared} evaluations compared on pruned and whole input")
    assert compared > 5000


def test_function_arguments_read_what_the_function_reads() -> None:
    lib = (
        "package lib.exempt\n"
        "is_exempt(c) {\n"
        '  exempt := object.get(object.get(input, "parameters", {}), "exemptImages", [])\n'
        "  img := c.image\n"
        "  matches(img, exempt[_])\n"
        "}\n"
        "matches(img, e) { img == e }\n"
    )
    src = (
        "package p\nimport data.lib.exempt.is_exempt\n"
        "suffix(\"E\") = 1 { true }\n"  # a constant parameter compares the whole argument
        'violation[{"msg": c.name}] {\n'
        "  c := input.review.object.spec.containers[_]\n"
        "  not is_exempt(c)\n"
        "  suffix(c.resources.limits.memory)\n"
        "}\n"
    )
    assert paths(lib, src) == {
        "object": {
            "spec": {"containers": {"*": {"image": None, "name": None, "resources": {"limits": {"memory": None}}}}}
        }
    }


def test_a_function_passing_its_argument_on_reads_what_the_callee_reads() -> None:
    src = (
        "package p\n"
        "outer(x) := inner(x)\n"
        "inner(y) := y.securityContext.privileged\n"
        'violation[{"msg": "m"}] { c := input.review.object.spec.containers[_]; outer(c) }\n'
    )
    assert paths(src) == {"object": {"spec": {"containers": {"*": {"securityContext": {"privileged": None}}}}}}


def test_keys_with_escapes_are_read_as_their_values() -> None:
    src = 'package p\ndeny contains 1 if { input.review.object.metadata.annotations["a\\"b\\\\c"] }\n'
    kept = paths(src)
    assert kept == {"object": {"metadata": {"annotations": {'a"b\\c': None}}}}
    value = {"object": {"metadata": {"annotations": {'a"b\\c': "x", "other": "y"}}}}
    assert prune(value, kept) == {"object": {"metadata": {"annotations": {'a"b\\c': "x"}}}}


def test_a_module_whose_statements_cannot_be_told_apart_reads_everything() -> None:
    assert paths("package p\ndefault := 1\ndeny contains 1 if { input.review.object.x }\n") is None
