"""Leaving out of the Rego input what no policy can read: collected paths, pruning, and Gatekeeper
constraints that see the same answers on the pruned input."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from admission.engines import Context
from admission.engines.rego import RegoEvaluator, gatekeeper, modules
from admission.engines.rego.parser import parse_module
from admission.engines.rego.paths import Paths, prune
from admission.engines.rego.paths import input_paths as ast_input_paths
from admission.results import Status
from admission.review import Request
from tests.conftest import pod
from tests.test_gatekeeper_engine import constraint, template

ROOT = ("review",)


def input_paths(sources: list[str], root: tuple[str, ...]) -> Paths | None:
    return ast_input_paths([parse_module(src) for src in sources], root)


@pytest.fixture(autouse=True)
def on_regopy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pruning shapes the input converted for regopy; the compiled path reads the review as it is."""
    monkeypatch.setattr(gatekeeper, "USE_COMPILED", False)
    monkeypatch.setattr(modules, "USE_COMPILED", False)


def test_a_path_read_whole_ends_where_the_reference_does() -> None:
    src = (
        "package p\n"
        "deny contains msg if {\n"
        '  msg := sprintf("%v %v %v", [input.review.object.metadata["name"], input.review.object.spec.containers[i].image,\n'
        "    input.review.object.status[k]])\n"
        "  input.parameters.labels\n"
        "}\n"
    )
    assert input_paths([src], ROOT) == {
        "object": {"metadata": {"name": None}, "spec": {"containers": {"*": {"image": None}}}, "status": {"*": None}}
    }


def test_a_shorter_path_keeps_everything_below_it() -> None:
    srcs = [
        "package a\ndeny contains 1 if { input.review.object.spec.containers }\n",
        "package b\ndeny contains 1 if { input.review.object.spec }\n",
        "package c\ndeny contains 1 if { input.review.object.spec.a.b }\n",
    ]
    assert input_paths(srcs, ROOT) == {"object": {"spec": None}}


def test_object_get_with_a_constant_key_reads_only_that_key() -> None:
    src = (
        "package p\ndeny contains [a, b, c] if {\n"
        '  a := object.get(input.review.object.metadata, "labels", {})\n'
        '  b := object.get(input.review.object, ["spec", "replicas"], 1)\n'
        "  c := object.get(input.review.object.status, k, 1)\n"
        "}\n"
    )
    assert input_paths([src], ROOT) == {
        "object": {"metadata": {"labels": None}, "spec": {"replicas": None}, "status": None}
    }


def test_reading_the_root_or_the_whole_input_keeps_everything() -> None:
    assert input_paths(["package p\ndeny contains x if { x := input.review }\n"], ROOT) is None
    assert input_paths(['package p\ndeny contains x if { x := object.get(input, "review", {}) }\n'], ROOT) is None
    assert input_paths(["package p\ndeny contains x if { x := input }\n"], ROOT) is None
    assert input_paths(['package p\ndeny contains 1 if { input["review"] }\n'], ROOT) is None
    assert input_paths(["package p\nimport input.review\n"], ROOT) is None
    # other parts of the input are not the root's business
    assert input_paths(["package p\ndeny contains x if { x := input.parameters }\n"], ROOT) == {}


def test_prune_keeps_the_paths_and_whole_values_below_their_ends() -> None:
    value = {"object": {"kind": "Pod", "metadata": {"name": "a", "annotations": {"x": "y"}}, "spec": {"c": [1]}, "status": {}}, "userInfo": {}}
    paths: Paths = {"object": {"metadata": {"name": None}, "spec": None, "missing": None}}
    assert prune(value, paths) == {"object": {"metadata": {"name": "a"}, "spec": {"c": [1]}}}
    assert prune(value, None) is value
    assert prune({"object": [1, 2]}, {"object": {"a": None}}) == {"object": [1, 2]}  # not an object: kept


ANNOTATION_TEMPLATE = """package k8sannotation

violation[{"msg": msg}] {
  owner := object.get(input.review.object.metadata, ["annotations", "owner"], "")
  owner == ""
  msg := sprintf("%v %v has no owner annotation", [input.review.kind.kind, input.review.object.metadata.name])
}
"""

WHOLE_TEMPLATE = """package k8swhole

violation[{"msg": msg}] {
  obj := input.review.object
  obj.status.phase == "Failed"
  msg := "failed"
}
"""


def _input_of(ev: RegoEvaluator, obj: dict[str, Any]) -> dict[str, Any]:
    """The input a request's query receives (what the engine converts)."""
    seen: list[Any] = []
    program = ev.constraints.program
    assert program is not None
    real = program.evaluate

    def spy(value: Any) -> Any:
        seen.append(copy.deepcopy(value))
        return real(value)

    setattr(program, "evaluate", spy)  # noqa: B010 - an instance attribute shadowing the method
    try:
        ev.validate(Request.for_object(obj), Context())
    finally:
        delattr(program, "evaluate")
    return dict(seen[0])


def test_gatekeeper_input_holds_only_what_templates_read() -> None:
    ev = RegoEvaluator.from_sources(
        [template("K8sAnnotation", ANNOTATION_TEMPLATE), constraint("owner", "K8sAnnotation")], [], isolate=False
    )
    obj = pod()
    obj["status"] = {"phase": "Running"}
    obj["metadata"]["annotations"] = {"owner": "team-a", "big": "x" * 1000}
    review = _input_of(ev, obj)["review"]
    assert review == {"kind": {"kind": "Pod"}, "object": {"metadata": {"annotations": {"owner": "team-a"}, "name": "web"}}}
    assert [r for r in ev.validate(Request.for_object(obj), Context()) if r.status != Status.PASS] == []
    del obj["metadata"]["annotations"]["owner"]
    got = [r.message for r in ev.validate(Request.for_object(obj), Context())]
    assert got == ["Pod web has no owner annotation"]


def test_a_template_reading_the_object_whole_gets_all_of_it() -> None:
    ev = RegoEvaluator.from_sources(
        [
            template("K8sAnnotation", ANNOTATION_TEMPLATE),
            constraint("owner", "K8sAnnotation"),
            template("K8sWhole", WHOLE_TEMPLATE),
            constraint("whole", "K8sWhole"),
        ],
        [],
        isolate=False,
    )
    obj = pod()
    obj["status"] = {"phase": "Failed"}
    obj["metadata"]["annotations"] = {"owner": "team-a"}
    assert _input_of(ev, obj)["review"]["object"]["status"] == {"phase": "Failed"}
    assert [r.message for r in ev.validate(Request.for_object(obj), Context()) if r.status != Status.PASS] == ["failed"]


def test_a_lib_reading_the_whole_input_keeps_everything() -> None:
    lib = 'package lib.helpers\n\nreview := object.get(input, "review", {})\n'
    rego = 'package k8suseslib\n\nimport data.lib.helpers\n\nviolation[{"msg": "m"}] {\n  helpers.review.object.status.phase == "Failed"\n}\n'
    ev = RegoEvaluator.from_sources([template("K8sUsesLib", rego, [lib]), constraint("lib", "K8sUsesLib")], [], isolate=False)
    assert ev.constraints.review_paths is None
    obj = pod()
    obj["status"] = {"phase": "Failed"}
    assert [r.message for r in ev.validate(Request.for_object(obj), Context())] == ["m"]


def test_managed_fields_still_left_out_when_metadata_is_read_whole() -> None:
    rego = 'package k8smeta\n\nviolation[{"msg": "m"}] {\n  count(input.review.object.metadata) > 100\n}\n'
    ev = RegoEvaluator.from_sources([template("K8sMeta", rego), constraint("meta", "K8sMeta")], [], isolate=False)
    obj = pod()
    obj["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    review = _input_of(ev, obj)["review"]
    assert "managedFields" not in review["object"]["metadata"] and review["object"]["metadata"]["name"] == "web"


def test_plain_modules_input_holds_only_what_modules_read(tmp_path: Any) -> None:
    (tmp_path / "labels.rego").write_text(
        "package labels\n\n"
        'deny[msg] {\n  not input.request.object.metadata.labels.team\n  msg := sprintf("%v has no team", [input.request.name])\n}\n'
    )
    ev = RegoEvaluator.from_sources([], [tmp_path / "labels.rego"], isolate=False)
    assert ev.modules.request_paths == {"object": {"metadata": {"labels": {"team": None}}}, "name": None}
    obj = pod()
    obj["status"] = {"phase": "Running"}
    assert [r.message for r in ev.validate(Request.for_object(obj), Context())] == ["web has no team"]
    obj["metadata"]["labels"]["team"] = "a"
    assert [r for r in ev.validate(Request.for_object(obj), Context()) if r.status != Status.PASS] == []
    (tmp_path / "whole.rego").write_text('package whole\n\nwarn[msg] {\n  r := input.request\n  r.object.status.phase == "Running"\n  msg := "running"\n}\n')
    ev = RegoEvaluator.from_sources([], [tmp_path / "labels.rego", tmp_path / "whole.rego"], isolate=False)
    # followed through the variable r: its phase, not the whole request
    assert ev.modules.request_paths == {
        "object": {"metadata": {"labels": {"team": None}}, "status": {"phase": None}}, "name": None
    }
    assert [r.message for r in ev.validate(Request.for_object(obj), Context()) if r.status != Status.PASS] == ["running"]


def test_template_expressions_read_their_paths() -> None:
    """What a template string's expressions read is read (a pruned input would render `<undefined>`), their
    `with` values too."""
    src = (
        "package p\n"
        'deny contains $"{input.review.object.metadata.name} runs {input.review.object.spec.containers[_].image}" if {\n'
        "  input.review.object.kind\n"
        "}\n"
        'warn contains $"{data.q.x with input.y as input.review.object.status}" if true\n'
    )
    assert input_paths([src], ROOT) == {
        "object": {"metadata": {"name": None}, "spec": {"containers": {"*": {"image": None}}}, "kind": None, "status": None}
    }


TEMPLATE_STRING_TEMPLATE = """package k8stemplatestring

violation[{"msg": msg}] {
  not input.review.object.metadata.labels[input.parameters.label]
  msg := $"{input.review.kind.kind} {input.review.object.metadata.name} needs label {input.parameters.label}; has {object.keys(object.get(input.review.object.metadata, "labels", {}))}"
}
"""


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "regopy"])
def test_a_template_string_message_on_both_paths(monkeypatch: pytest.MonkeyPatch, compiled: bool) -> None:
    """A ConstraintTemplate (Rego v0, as Gatekeeper reads it) whose message is a template string: the same
    message on the compiled path and on regopy (which gets the module printed, template string and all)."""
    monkeypatch.setattr(gatekeeper, "USE_COMPILED", compiled)
    ev = RegoEvaluator.from_sources(
        [template("K8sTemplateString", TEMPLATE_STRING_TEMPLATE), constraint("team", "K8sTemplateString", parameters={"label": "team"})],
        [],
        isolate=False,
    )
    assert ev.constraints.routes["k8stemplatestring"].startswith("compiled" if compiled else "regopy")
    obj = pod()
    obj["metadata"]["labels"] = {"app": "web", "tier": "x"}
    got = [r.message for r in ev.validate(Request.for_object(obj), Context()) if r.status != Status.PASS]
    assert got == ['Pod web needs label team; has {"app", "tier"}']
    obj["metadata"]["labels"]["team"] = "a"
    assert [r for r in ev.validate(Request.for_object(obj), Context()) if r.status != Status.PASS] == []
