"""Foreach mutations patch one working copy; patchesJson6902 texts are parsed once per template."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from admission import policyset
from admission.engines import Context
from admission.engines.yaml import KyvernoEvaluator
from admission.engines.yaml.mutate import _substitute_operations, parse_operations
from admission.engines.yaml.variables import Variables
from admission.manifests import load_text
from admission.patch import apply
from admission.results import Status
from admission.review import Request


def pod(n: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "apps"},
            "spec": {"containers": [{"name": f"c{i}", "image": "registry.example.com/app:1",
                                     "env": [{"name": "A", "value": str(i)}]} for i in range(n)]}}


def evaluator(mutate: dict[str, Any]) -> KyvernoEvaluator:
    doc = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "m"},
           "spec": {"rules": [{"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                               "mutate": mutate}]}}
    return KyvernoEvaluator.from_documents(load_text(yaml.safe_dump(doc), "m.yaml"))


def test_builtin_defaults_give_one_add_per_container_and_leave_the_request_alone() -> None:
    engine = policyset.load([policyset.builtin_policies()])
    request = Request.for_object(pod(50))
    before = copy.deepcopy(request.object)
    outcome = engine.mutate(request, Context())
    assert request.object == before
    assert [op["path"] for op in outcome.patch] == [f"/spec/containers/{i}/resources" for i in range(50)]
    assert apply(before, outcome.patch) == outcome.mutated


def test_foreach_with_nested_foreach_changes_only_its_copy() -> None:
    ev = evaluator({"foreach": [{"list": "request.object.spec.containers", "foreach": [{
        "list": "element.env",
        "patchesJson6902": "- op: replace\n  path: /spec/containers/{{elementIndex0}}/env/{{elementIndex1}}/value\n"
                           "  value: x\n"}]}]})
    obj = pod(3)
    before = copy.deepcopy(obj)
    out, [result] = ev.mutate(Request.for_object(obj), obj, Context())
    assert result.status == Status.PASS
    assert obj == before
    assert [c["env"][0]["value"] for c in out["spec"]["containers"]] == ["x", "x", "x"]


def test_foreach_that_changes_nothing_in_the_end_is_a_skip() -> None:
    ev = evaluator({"foreach": [{"list": "request.object.spec.containers", "patchesJson6902":
                                 "- op: add\n  path: /spec/containers/{{elementIndex}}/tty\n  value: true\n"
                                 "- op: remove\n  path: /spec/containers/{{elementIndex}}/tty\n"}]})
    obj = pod(2)
    out, results = ev.mutate(Request.for_object(obj), obj, Context(report_skips=True))
    assert [r.status for r in results] == [Status.SKIP]
    assert out == pod(2)


def test_a_failing_element_leaves_the_object_as_it_was() -> None:
    ev = evaluator({"foreach": [{"list": "request.object.spec.containers", "patchesJson6902":
                                 "- op: add\n  path: /spec/containers/{{elementIndex}}/tty\n  value: true\n"
                                 "- op: replace\n  path: /spec/containers/{{elementIndex}}/nothing\n  value: 1\n"}]})
    obj = pod(2)
    out, [result] = ev.mutate(Request.for_object(obj), obj, Context())
    assert result.status == Status.ERROR
    assert out == pod(2) and obj == pod(2)


@pytest.mark.parametrize("text", [
    "- op: add\n  path: /spec/containers/{{elementIndex}}/resources\n  value: {cpu: 1}\n",
    "- op: add\n  path: '/spec/containers/{{elementIndex}}/x'\n  value: \"{{ element.name }}\"\n",
    "- op: add\n  path: /metadata/labels/{{ element.name }}\n  value: a\n",  # a name with a space: text path
    "- op: add\n  path: /spec/x\n  value: 1  # {{ element.name }}\n",  # a variable in a comment
    "[{op: add, path: /spec/{{elementIndex}}, value: 2}]",
    "- op: add\n  path: /a/{{ element.n }}\n  value: 1\n",
])
@pytest.mark.parametrize("element", [{"name": "app", "n": 1}, {"name": "a b", "n": 2}, {"name": "x: y", "n": 3}])
def test_substituting_parsed_operations_equals_kyvernos_text_order(text: str, element: dict[str, Any]) -> None:
    variables = Variables({"element": element, "elementIndex": 7})
    try:
        expected: Any = parse_operations(variables.substitute(text))
    except Exception as exc:
        expected = type(exc)
    try:
        got: Any = _substitute_operations(text, variables)
        got = parse_operations(got) if isinstance(got, str) else got
    except Exception as exc:
        got = type(exc)
    assert got == expected
