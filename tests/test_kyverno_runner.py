"""The kyverno CLI `Test` runner: values files, userinfo, namespace selectors, patchedResources, skips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from admission.testing import run_paths
from admission.testing.kyverno import run_test

POLICY = {
    "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "labels"},
    "spec": {"validationFailureAction": "Enforce", "rules": [
        {"name": "need-team", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
         "validate": {"message": "team label", "pattern": {"metadata": {"labels": {"team": "?*"}}}}},
        {"name": "prod-only", "match": {"any": [{"resources": {
            "kinds": ["Pod"], "namespaceSelector": {"matchLabels": {"env": "prod"}}}}]},
         "validate": {"pattern": {"metadata": {"labels": {"tier": "?*"}}}}},
        {"name": "no-delete", "match": {"any": [{"resources": {"kinds": ["Pod"], "operations": ["DELETE"]}}]},
         "validate": {"message": "no deletes", "deny": {}}},
        {"name": "admins-only", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
         "preconditions": {"all": [{"key": "{{ allowed }}", "operator": "Equals", "value": False}]},
         "validate": {"message": "not allowed", "deny": {}}},
    ]},
}
MUTATE = {
    "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "add-owner"},
    "spec": {"rules": [{"name": "owner", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                        "mutate": {"patchStrategicMerge": {"metadata": {"labels": {"+(owner)": "platform"}}}}}]},
}


def pod(name: str, namespace: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}


def write(path: Path, *docs: Any) -> None:
    path.write_text(yaml.safe_dump_all(list(docs)))


def setup(tmp_path: Path, results: list[dict[str, Any]], **test: Any) -> Path:
    write(tmp_path / "policy.yaml", POLICY, MUTATE)
    write(tmp_path / "resources.yaml", pod("good", "prod", team="a", tier="web"), pod("bad", "prod"),
          pod("dev", "dev", team="a"), pod("gone", "dev", team="a"))
    write(tmp_path / "values.yaml", {
        "apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Values",
        "namespaceSelector": [{"name": "prod", "labels": {"env": "prod"}}],
        "globalValues": {"allowed": False},
        "policies": [{"name": "labels",
                      "resources": [{"name": "gone", "values": {"request.operation": "DELETE"}},
                                    {"name": "good", "values": {"allowed": True}}]}],
    })
    doc = {"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Test", "metadata": {"name": "t"},
           "policies": ["policy.yaml"], "resources": ["resources.yaml"], "variables": "values.yaml",
           "results": results, **test}
    path = tmp_path / "kyverno-test.yaml"
    write(path, doc)
    return path


def run(path: Path) -> dict[str, tuple[bool, str]]:
    doc = yaml.safe_load(path.read_text())
    return {c.name: (c.passed, c.detail) for c in run_test(path, doc)}


def test_results_per_policy_rule_and_resource(tmp_path: Path) -> None:
    path = setup(tmp_path, [
        {"policy": "labels", "rule": "need-team", "kind": "Pod", "resources": ["good", "prod/dev"], "result": "pass"},
        {"policy": "labels", "rule": "need-team", "kind": "Pod", "resources": ["bad"], "result": "fail"},
        {"policy": "labels", "rule": "need-team", "kind": "Pod", "resources": ["bad"], "result": "pass"},
    ])
    cases = run(path)
    assert cases["labels/need-team Pod/good"] == (True, "")
    assert cases["labels/need-team Pod/bad"][0] in (True, False)
    # namespace/name that does not exist is reported, not silently passed
    assert cases["labels/need-team Pod/prod/dev"][0] is False
    assert "not found" in cases["labels/need-team Pod/prod/dev"][1]
    detailed = [c for c in run_test(path, yaml.safe_load(path.read_text())) if c.name == "labels/need-team Pod/bad"]
    assert [c.passed for c in detailed] == [True, False]
    assert "want pass, got fail" in detailed[1].detail


def test_namespace_selector_operation_and_rule_values(tmp_path: Path) -> None:
    path = setup(tmp_path, [
        {"policy": "labels", "rule": "prod-only", "kind": "Pod", "resources": ["good"], "result": "pass"},
        {"policy": "labels", "rule": "prod-only", "kind": "Pod", "resources": ["bad"], "result": "fail"},
        {"policy": "labels", "rule": "prod-only", "kind": "Pod", "resources": ["dev"], "result": "skip"},
        {"policy": "labels", "rule": "no-delete", "kind": "Pod", "resources": ["gone"], "result": "fail"},
        {"policy": "labels", "rule": "no-delete", "kind": "Pod", "resources": ["good"], "result": "skip"},
        {"policy": "labels", "rule": "admins-only", "kind": "Pod", "resources": ["good"], "result": "skip"},
        {"policy": "labels", "rule": "admins-only", "kind": "Pod", "resources": ["dev"], "result": "fail"},
    ])
    assert {k: v[0] for k, v in run(path).items()} == {
        "labels/prod-only Pod/good": True, "labels/prod-only Pod/bad": True, "labels/prod-only Pod/dev": True,
        "labels/no-delete Pod/gone": True, "labels/no-delete Pod/good": True,
        "labels/admins-only Pod/good": True, "labels/admins-only Pod/dev": True,
    }


def test_patched_resources_are_compared(tmp_path: Path) -> None:
    patched = pod("bad", "prod", owner="platform")
    write(tmp_path / "patched.yaml", patched)
    wrong = pod("good", "prod", team="a", tier="web", owner="someone-else")
    write(tmp_path / "wrong.yaml", wrong)
    path = setup(tmp_path, [
        {"policy": "add-owner", "rule": "owner", "kind": "Pod", "resources": ["bad"], "result": "pass",
         "patchedResources": "patched.yaml"},
        {"policy": "add-owner", "rule": "owner", "kind": "Pod", "resources": ["good"], "result": "pass",
         "patchedResources": "wrong.yaml"},
    ])
    cases = run(path)
    assert cases["add-owner/owner Pod/bad"] == (True, "")
    assert cases["add-owner/owner Pod/good"][0] is False
    assert "patched resource differs" in cases["add-owner/owner Pod/good"][1]


def test_userinfo_file_feeds_user_filters(tmp_path: Path) -> None:
    policy = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "who"},
              "spec": {"rules": [{"name": "admins", "match": {"any": [{"resources": {"kinds": ["Pod"]},
                                                                        "clusterRoles": ["cluster-admin"]}]},
                                  "validate": {"message": "admins may not", "deny": {}}}]}}
    write(tmp_path / "policy.yaml", policy)
    write(tmp_path / "resources.yaml", pod("p", "x"))
    write(tmp_path / "user.yaml", {"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "UserInfo",
                                   "clusterRoles": ["cluster-admin"], "userInfo": {"username": "root"}})
    doc = {"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Test", "policies": ["policy.yaml"],
           "resources": ["resources.yaml"], "userinfo": "user.yaml",
           "results": [{"policy": "who", "rule": "admins", "kind": "Pod", "resources": ["p"], "result": "fail"}]}
    write(tmp_path / "kyverno-test.yaml", doc)
    [case] = run_test(tmp_path / "kyverno-test.yaml", doc)
    assert case.passed, case.detail
    write(tmp_path / "user.yaml", {"clusterRoles": ["view"], "userInfo": {"username": "someone"}})
    [case] = run_test(tmp_path / "kyverno-test.yaml", doc)
    assert not case.passed and "want fail, got skip" in case.detail


def test_a_broken_policy_fails_every_expected_result(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: x}\n"
                                          "spec:\n  rules:\n  - name: r\n    validate: {pattern: {}}\n")
    write(tmp_path / "resources.yaml", pod("p", "x"))
    write(tmp_path / "kyverno-test.yaml", {
        "apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Test", "policies": ["policy.yaml"],
        "resources": ["resources.yaml"],
        "results": [{"policy": "x", "rule": "r", "kind": "Pod", "resources": ["p", "q"], "result": "pass"}]})
    results = run_paths([str(tmp_path)])
    assert [r.passed for r in results] == [False, False]
    assert "has no match" in results[0].detail


def test_values_precedence_rule_over_resource_over_global() -> None:
    from admission.testing.kyverno import Values

    values = Values({"globalValues": {"a": 1, "b": 1, "c": 1},
                     "policies": [{"name": "p", "rules": [{"name": "r", "values": {"a": 3}}],
                                   "resources": [{"name": "x", "values": {"a": 2, "b": 2,
                                                                          "request.operation": "update"}}]}]})
    assert values.for_rule("p", "r", "x") == {"a": 3, "b": 2, "c": 1, "request.operation": "update"}
    assert values.for_rule("p", "other", "y") == {"a": 1, "b": 1, "c": 1}
    assert values.operation("x") == "UPDATE"
    assert values.operation("y") == "CREATE"


def test_a_result_without_resources_checks_every_resource_the_rule_applied_to(tmp_path: Path) -> None:
    path = setup(tmp_path, [{"policy": "labels", "rule": "need-team", "kind": "Pod", "result": "pass"}])
    cases = run(path)
    assert cases == {"labels/need-team Pod/prod/good": (True, ""),
                     "labels/need-team Pod/prod/bad": (False, cases["labels/need-team Pod/prod/bad"][1]),
                     "labels/need-team Pod/dev/dev": (True, "")}
    assert "want pass, got fail" in cases["labels/need-team Pod/prod/bad"][1]


def test_result_operation_object_values_and_subresources(tmp_path: Path) -> None:
    policy = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "guard"}, "spec": {
        "validationFailureAction": "Enforce", "rules": [
            {"name": "no-delete", "match": {"any": [{"resources": {"kinds": ["Pod"], "operations": ["DELETE"]}}]},
             "validate": {"message": "no", "deny": {}}},
            {"name": "owned", "match": {"any": [{"resources": {"kinds": ["ConfigMap"],
                                                               "annotations": {"owner": "platform"}}}]},
             "validate": {"message": "owned by platform", "deny": {}}},
            {"name": "no-exec", "match": {"any": [{"resources": {"kinds": ["Pod/exec"]}}]},
             "validate": {"message": "no exec", "deny": {}}}]}}
    write(tmp_path / "policy.yaml", policy)
    write(tmp_path / "resources.yaml", pod("web", "apps"),
          {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "apps"}},
          {"apiVersion": "v1", "kind": "PodExecOptions", "metadata": {"name": "web", "namespace": "apps"},
           "command": ["sh"]})
    doc = {"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Test", "policies": ["policy.yaml"],
           "resources": ["resources.yaml"],
           "values": {"policies": [{"name": "guard", "resources": [
               {"name": "cm", "values": {'request.object.metadata.annotations."owner"': "platform"}}]}],
               "subresources": [{"parentResource": {"kind": "Pod", "name": "pods", "version": "v1"},
                                 "subresource": {"kind": "PodExecOptions", "name": "pods/exec", "version": "v1"}}]},
           "results": [
               {"policy": "guard", "rule": "no-delete", "kind": "Pod", "resources": ["web"], "result": "fail",
                "operation": "DELETE"},
               {"policy": "guard", "rule": "no-delete", "kind": "Pod", "resources": ["web"], "result": "skip"},
               {"policy": "guard", "rule": "owned", "kind": "ConfigMap", "resources": ["cm"], "result": "fail"},
               {"policy": "guard", "rule": "no-exec", "kind": "PodExecOptions", "resources": ["web"], "result": "fail"},
           ]}
    write(tmp_path / "kyverno-test.yaml", doc)
    cases = run_test(tmp_path / "kyverno-test.yaml", doc)
    assert [(c.name, c.passed) for c in cases] == [
        ("guard/no-delete Pod/web", True), ("guard/no-delete Pod/web", True),
        ("guard/owned ConfigMap/cm", True), ("guard/no-exec PodExecOptions/web", True)], [c.detail for c in cases]


def test_patched_resources_are_compared_after_the_named_policy(tmp_path: Path) -> None:
    second = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "add-tier"},
              "spec": {"rules": [{"name": "tier", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                                  "mutate": {"patchStrategicMerge": {"metadata": {"labels": {"tier": "web"}}}}}]}}
    write(tmp_path / "policy.yaml", MUTATE, second)
    write(tmp_path / "resources.yaml", pod("p", "apps"))
    write(tmp_path / "after-owner.yaml", pod("p", "apps", owner="platform"))
    write(tmp_path / "after-tier.yaml", pod("p", "apps", owner="platform", tier="web"))
    doc = {"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Test", "policies": ["policy.yaml"],
           "resources": ["resources.yaml"], "results": [
               {"policy": "add-owner", "rule": "owner", "kind": "Pod", "resources": ["p"], "result": "pass",
                "patchedResources": "after-owner.yaml"},
               {"policy": "add-tier", "rule": "tier", "kind": "Pod", "resources": ["p"], "result": "pass",
                "patchedResources": "after-tier.yaml"}]}
    write(tmp_path / "kyverno-test.yaml", doc)
    assert [(c.passed, c.detail) for c in run_test(tmp_path / "kyverno-test.yaml", doc)] == [(True, ""), (True, "")]


def test_unscored_policies_report_failures_as_warnings(tmp_path: Path) -> None:
    policy = dict(POLICY, metadata={"name": "labels", "annotations": {"policies.kyverno.io/scored": "false"}})
    write(tmp_path / "policy.yaml", policy)
    write(tmp_path / "resources.yaml", pod("bad", "prod"))
    doc = {"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Test", "policies": ["policy.yaml"],
           "resources": ["resources.yaml"],
           "results": [{"policy": "labels", "rule": "need-team", "kind": "Pod", "resources": ["bad"], "result": "warn"}]}
    write(tmp_path / "kyverno-test.yaml", doc)
    assert [c.passed for c in run_test(tmp_path / "kyverno-test.yaml", doc)] == [True]


def test_generated_resources_are_compared(tmp_path: Path) -> None:
    policy = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "ns-defaults"},
              "spec": {"rules": [
                  {"name": "quota", "match": {"any": [{"resources": {"kinds": ["Namespace"]}}]},
                   "generate": {"apiVersion": "v1", "kind": "ResourceQuota", "name": "default",
                                "namespace": "{{request.object.metadata.name}}",
                                "data": {"spec": {"hard": {"pods": "10"}}}}},
                  {"name": "pull-secret", "match": {"any": [{"resources": {"kinds": ["Namespace"]}}]},
                   "generate": {"apiVersion": "v1", "kind": "Secret", "name": "regcred",
                                "namespace": "{{request.object.metadata.name}}",
                                "clone": {"namespace": "default", "name": "regcred"}}}]}}
    write(tmp_path / "policy.yaml", policy)
    write(tmp_path / "resources.yaml", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}})
    write(tmp_path / "source.yaml", {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                     "metadata": {"name": "regcred", "namespace": "default"}, "data": {"a": "Yg=="}})
    write(tmp_path / "quota.yaml", {"apiVersion": "v1", "kind": "ResourceQuota",
                                    "metadata": {"name": "default", "namespace": "team"},
                                    "spec": {"hard": {"pods": "10"}}})
    write(tmp_path / "secret.yaml", {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                                     "metadata": {"name": "regcred", "namespace": "team"}, "data": {"a": "Yg=="}})
    write(tmp_path / "wrong.yaml", {"apiVersion": "v1", "kind": "ResourceQuota",
                                    "metadata": {"name": "default", "namespace": "team"},
                                    "spec": {"hard": {"pods": "99"}}})
    doc = {"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Test", "policies": ["policy.yaml"],
           "resources": ["resources.yaml"], "results": [
               {"policy": "ns-defaults", "rule": "quota", "kind": "Namespace", "resources": ["team"],
                "result": "pass", "generatedResource": "quota.yaml"},
               {"policy": "ns-defaults", "rule": "pull-secret", "kind": "Namespace", "resources": ["team"],
                "result": "pass", "generatedResource": "secret.yaml", "cloneSourceResource": "source.yaml"},
               {"policy": "ns-defaults", "rule": "quota", "kind": "Namespace", "resources": ["team"],
                "result": "pass", "generatedResource": "wrong.yaml"}]}
    write(tmp_path / "kyverno-test.yaml", doc)
    cases = run_test(tmp_path / "kyverno-test.yaml", doc)
    assert [c.passed for c in cases] == [True, True, False]
    assert "generated resource differs" in cases[2].detail
