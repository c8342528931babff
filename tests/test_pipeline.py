"""One pipeline (Engine.review: mutate -> validate -> decide) behind every surface, so none can disagree."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admission.engine import Engine, Phase
from admission.engines import Context
from admission.policyset import builtin_policies, load
from admission.review import Kind, Request
from admission.state import ClusterState

ENGINE = load([builtin_policies()])
NETPOL = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "web", "namespace": "team"}, "spec": {"podSelector": {"matchLabels": {"app": "web"}}}}

images = st.sampled_from(["registry.example.com/app:1.0", "nginx", "registry.example.com/app:latest",
                          "registry.example.com/app@sha256:" + "a" * 64, "localhost:5000/app"])
resources = st.sampled_from([None, {}, {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
                             {"requests": {"cpu": "1"}}, {"limits": {"memory": "1Gi"}}])
contexts = st.sampled_from([None, {"privileged": True}, {"privileged": False, "runAsNonRoot": True},
                            {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}])


@st.composite
def containers(draw: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": f"c{draw(st.integers(0, 99))}", "image": draw(images)}
    if (r := draw(resources)) is not None:
        c["resources"] = r
    if (sc := draw(contexts)) is not None:
        c["securityContext"] = sc
    return c


@st.composite
def workloads(draw: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": draw(st.lists(containers(), min_size=1, max_size=3))}
    if draw(st.booleans()):
        spec["initContainers"] = draw(st.lists(containers(), min_size=1, max_size=2))
    labels = draw(st.sampled_from([{"app": "web"}, {"app": "other"}, {}]))
    kind = draw(st.sampled_from(["Pod", "Deployment", "CronJob"]))
    meta = {"name": "w", "namespace": "team", "labels": labels}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    template = {"metadata": {"labels": labels}, "spec": spec}
    if kind == "Deployment":
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                "spec": {"selector": {"matchLabels": labels}, "template": template}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workloads())
def test_the_server_endpoints_in_sequence_decide_as_one_review(obj: dict[str, Any]) -> None:
    """/mutate then /validate on the mutated object (the API server's order) gives the decision that
    the offline surfaces get from one review, and the patch turns the object into the mutated one."""
    ctx = Context(state=ClusterState([obj, NETPOL]))
    request = Request.for_object(obj)
    whole = ENGINE.review(request, ctx, Phase.ALL)
    mutated = ENGINE.review(request, ctx, Phase.MUTATE)
    validated = ENGINE.review(Request.for_object(mutated.mutated), ctx, Phase.VALIDATE)
    assert mutated.mutated == whole.mutated == whole.request.object
    assert [r.source for r in whole.validate_results] == [r.source for r in validated.validate_results]
    assert whole.validate_results == validated.validate_results
    assert whole.decision.allowed == (mutated.decision.allowed and validated.decision.allowed)
    assert request.object == obj  # the request's own object is never changed


def test_a_review_skips_mutation_when_nothing_mutates_and_for_delete() -> None:
    only_validating = Engine([e for e in ENGINE.evaluators])
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team"},
           "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    deleted = only_validating.review(Request.for_object(pod, operation="DELETE"), Context(), Phase.ALL)
    assert deleted.mutate_results == [] and deleted.mutated is None and deleted.patch == []
    assert deleted.request.old_object == pod and deleted.decision.allowed  # deleting stays possible


def test_for_object_is_the_one_request_builder() -> None:
    old = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "a"}}
    new = {**old, "spec": {"replicas": 2}}
    update = Request.for_object(new, operation="UPDATE", old_object=old, user_info={"username": "u"}, namespace="b")
    assert (update.object, update.old_object, update.namespace, update.name) == (new, old, "b", "d")
    assert update.kind == Kind("apps", "v1", "Deployment") and update.resource["resource"] == "deployments"
    delete = Request.for_object(old, operation="DELETE")
    assert delete.object is None and delete.old_object == old and delete.name == "d"
    exec_ = Request.for_object({"kind": "PodExecOptions", "apiVersion": "v1"}, operation="CONNECT",
                               kind=Kind("", "v1", "Pod"), sub_resource="exec", name="web")
    assert (exec_.kind.kind, exec_.sub_resource, exec_.name, exec_.resource["resource"]) == ("Pod", "exec", "web", "pods")


# -- every surface goes through Engine.review -------------------------------------------------------


@pytest.fixture
def reviews(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Phase]]:
    seen: list[tuple[str, Phase]] = []
    original = Engine.review

    def spy(self: Engine, request: Request, ctx: Context | None = None, phases: Phase = Phase.ALL,
            **kw: Any) -> Any:
        seen.append((request.kind.kind, phases))
        return original(self, request, ctx, phases, **kw)

    monkeypatch.setattr(Engine, "review", spy)
    return seen


def test_lint_reviews_each_resource_once_with_both_phases(tmp_path: Path, reviews: list[tuple[str, Phase]]) -> None:
    from admission.lint import run

    manifest = tmp_path / "m.yaml"
    manifest.write_text(yaml.safe_dump_all([NETPOL, {"apiVersion": "v1", "kind": "Pod",
                                                     "metadata": {"name": "p", "namespace": "team"},
                                                     "spec": {"containers": [{"name": "c", "image": "x"}]}}]))
    run([str(manifest)], [], "json", io.StringIO(), workers=1)
    assert sorted(reviews, key=str) == sorted([("NetworkPolicy", Phase.ALL), ("Pod", Phase.ALL)], key=str)


def test_audit_reviews_the_validate_phase(reviews: list[tuple[str, Phase]]) -> None:
    from admission.audit import run

    def lister(api_version: str, kind: str, namespace: str) -> list[dict[str, Any]]:
        return [NETPOL] if kind == "NetworkPolicy" else []

    run([], "json", io.StringIO(), kinds=["networking.k8s.io/v1/NetworkPolicy"], lister=lister)
    assert reviews == [("NetworkPolicy", Phase.VALIDATE)]


def test_every_test_runner_reviews(reviews: list[tuple[str, Phase]]) -> None:
    from admission.testing import run_paths

    results = run_paths([str(builtin_policies() / "require-requests-limits")])
    assert results and all(r.passed for r in results)
    assert reviews and all(phases == Phase.ALL for _, phases in reviews)


def test_the_gatekeeper_runner_reviews(reviews: list[tuple[str, Phase]]) -> None:
    from admission.testing import run_paths

    results = run_paths([str(builtin_policies() / "gatekeeper" / "required-labels" / "suite.yaml")])
    assert results and all(r.passed for r in results)
    assert len(reviews) == len(results)  # one review per case


def test_the_server_endpoints_are_the_pipeline_phases(reviews: list[tuple[str, Phase]]) -> None:
    """The server answers /validate with Engine.validate and /mutate with Engine.mutate: the two phases."""
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team"},
           "spec": {"containers": [{"name": "c", "image": "registry.example.com/x:1", "resources": {
               "requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}}]}}
    ctx = Context(state=ClusterState([NETPOL]))
    decision = ENGINE.validate(Request.for_object(pod), ctx)
    outcome = ENGINE.mutate(Request.for_object(pod), ctx)
    assert reviews == [("Pod", Phase.VALIDATE), ("Pod", Phase.MUTATE)]
    assert outcome.patch == [] and outcome.decision.allowed and not decision.allowed  # no app label: no NetworkPolicy
