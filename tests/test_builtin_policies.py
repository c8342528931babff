"""The built-in policy library: every policy's own test cases pass, each has cases both ways, and the
behaviours its documentation promises hold (fail closed without cluster state, editable registries)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from admission.decide import decide
from admission.engines import Context
from admission.manifests import load_paths
from admission.policyset import builtin_policies, is_kyverno, load
from admission.results import Status
from admission.review import Request
from admission.state import ClusterState, unavailable
from admission.testing import find_tests, run, run_paths

LIBRARY = Path(__file__).resolve().parents[1] / "policies"
VALIDATING = (
    "disallow-public-registries",
    "require-requests-limits",
    "require-network-policy",
    "disallow-privileged",
    "disallow-latest-tag",
)
MUTATING = ("add-default-resources",)
OURS = VALIDATING + MUTATING


def test_library_is_the_default_and_holds_each_policy_once():
    assert builtin_policies() == LIBRARY
    for name in OURS:
        docs = [d for d in load_paths([LIBRARY / name / "policy.yaml"]) if is_kyverno(d)]
        assert [d.obj["metadata"]["name"] for d in docs] == [name]
        assert docs[0].obj["kind"] == "ClusterPolicy"


@pytest.mark.parametrize("name", OURS)
def test_policy_cases_pass(name):
    tests = find_tests([str(LIBRARY / name)])
    assert tests, f"{name} has no test file"
    results = run_paths([str(LIBRARY / name)])
    failed = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    assert results and not failed, "\n".join(failed)


def expectations(name: str) -> list[dict]:
    out = []
    for path in find_tests([str(LIBRARY / name)]):
        doc = yaml.safe_load(path.read_text())
        out.extend(e for e in doc["results"] if e["policy"] == name)
    return out


@pytest.mark.parametrize("name", VALIDATING)
def test_validating_policies_have_pass_and_fail_cases_for_pods_and_workloads(name):
    results = expectations(name)
    assert {e["result"] for e in results} >= {"pass", "fail"}
    assert any(e["kind"] != "Pod" and e["result"] == "fail" for e in results), "no failing workload case"


@pytest.mark.parametrize("name", OURS)
def test_every_test_file_has_resources_that_must_pass_and_must_fail(name):
    for path in find_tests([str(LIBRARY / name)]):
        results = {e.get("result") or "pass" for e in yaml.safe_load(path.read_text())["results"]}
        assert {"pass", "fail"} <= results, path


def test_mutation_has_changed_and_unchanged_cases():
    results = expectations("add-default-resources")
    assert any(e.get("patchedResource") and e["result"] == "pass" for e in results)
    assert any(e.get("patchedResource") and e["result"] == "skip" for e in results)


def test_admission_test_runs_the_library():
    out = io.StringIO()
    code = run([str(LIBRARY / name) for name in OURS], out)
    last = out.getvalue().splitlines()[-1]
    passed, failed = (int(part.split()[0]) for part in last.split(", "))
    assert code == 0 and failed == 0 and passed >= 100, out.getvalue()


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]},
}


def test_network_policy_rule_fails_closed_without_cluster_state():
    engine = load([LIBRARY / "require-network-policy"])
    results = engine.results(Request.for_object(POD), Context(state=unavailable("no cluster configured")))
    assert [r.status for r in results] == [Status.ERROR]
    assert "no cluster configured" in results[0].message
    decision = decide(results)
    assert not decision.allowed and "require-network-policy" in decision.message


def test_network_policy_opt_out_label_on_the_namespace():
    engine = load([LIBRARY / "require-network-policy"])
    namespace = {"apiVersion": "v1", "kind": "Namespace",
                 "metadata": {"name": "shop", "labels": {"admission.dev/require-network-policy": "false"}}}
    assert not engine.validate(Request.for_object(POD), Context(state=ClusterState())).allowed
    assert engine.validate(Request.for_object(POD), Context(state=ClusterState([namespace]))).allowed


def test_allowed_registries_are_one_list_to_edit(tmp_path):
    source = (LIBRARY / "disallow-public-registries" / "policy.yaml").read_text()
    engine = load([LIBRARY / "disallow-public-registries"])
    assert not engine.validate(Request.for_object(POD)).allowed
    policy = yaml.safe_load(source)
    entry = policy["spec"]["rules"][0]["context"][0]
    assert entry["name"] == "allowedRegistries"
    entry["variable"]["value"].append("docker.io")
    edited = tmp_path / "policy.yaml"
    edited.write_text(yaml.safe_dump(policy))
    assert load([edited]).validate(Request.for_object(POD)).allowed
    quay = {**POD, "spec": {"containers": [{"name": "web", "image": "quay.io/org/web:1"}]}}
    assert not load([edited]).validate(Request.for_object(quay)).allowed


def test_system_namespaces_are_left_alone():
    engine = load([LIBRARY / name for name in VALIDATING])
    system = {**POD, "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
              "spec": {"containers": [{"name": "p", "image": "registry.k8s.io/kube-proxy",
                                       "securityContext": {"privileged": True}}]}}
    decision = engine.validate(Request.for_object(system), Context(state=ClusterState()))
    assert decision.allowed and decision.results == []
