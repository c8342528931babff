"""The engine flow with stand-in evaluators: crash containment, mutation diffing, and the decision."""

from __future__ import annotations

from admission.engine import Engine
from admission.engines import Context, PolicyInfo
from admission.results import RuleResult, Status
from admission.review import Request
from tests.conftest import pod


class Labeller:
    """Adds a label in mutate; fails validation for pods without an `owner` label."""

    def policies(self):
        return [PolicyInfo("labeller", "test", "test:1", ("r",), mutates=True)]

    def validate(self, request, ctx):
        labels = (request.resource_object.get("metadata") or {}).get("labels") or {}
        ok = "owner" in labels
        return [RuleResult("labeller", "r", Status.PASS if ok else Status.FAIL, "" if ok else "owner label required")]

    def mutate(self, request, obj, ctx):
        obj["metadata"].setdefault("labels", {})["mutated"] = "yes"
        return obj, [RuleResult("labeller", "r", Status.PASS)]


class Broken:
    def policies(self):
        return []

    def validate(self, request, ctx):
        raise RuntimeError("engine bug")

    def mutate(self, request, obj, ctx):
        raise RuntimeError("engine bug")


def test_validate_denies_with_rule_message():
    d = Engine([Labeller()]).validate(Request.for_object(pod()))
    assert not d.allowed and d.message == "[labeller/r] owner label required"


def test_mutate_returns_diff_patch_and_leaves_request_untouched():
    obj = pod()
    req = Request.for_object(obj)
    out = Engine([Labeller()]).mutate(req, Context())
    assert out.decision.allowed
    assert out.patch == [{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}]
    assert "mutated" not in obj["metadata"]["labels"]


def test_crashing_evaluator_fails_closed_with_an_error_result():
    engine = Engine([Broken(), Labeller()])
    d = engine.validate(Request.for_object(pod()))
    assert not d.allowed
    assert any(r.status == Status.ERROR and "engine bug" in r.message for r in d.results)
    out = engine.mutate(Request.for_object(pod()))
    assert not out.decision.allowed and out.patch == []


def test_no_evaluators_allows():
    assert Engine().validate(Request.for_object(pod())).allowed
