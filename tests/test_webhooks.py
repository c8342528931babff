"""Webhook rules derived from what policies' rules can apply to (admission.webhooks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from admission.engines import Target
from admission.policyset import load
from admission.webhooks import rules


def policy(tmp_path: Path, *rules_: dict[str, Any], annotations: dict[str, str] | None = None) -> list[Any]:
    doc = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
           "metadata": {"name": "p", "annotations": annotations or {}},
           "spec": {"validationFailureAction": "Enforce", "rules": list(rules_)}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(doc))
    return [p for p in load([tmp_path / "p.yaml"]).policies() if p.name == "p"]


def match(*kinds: str, operations: list[str] | None = None) -> dict[str, Any]:
    resources: dict[str, Any] = {"kinds": list(kinds)}
    if operations:
        resources["operations"] = operations
    return {"any": [{"resources": resources}]}


PATTERN = {"pattern": {"spec": {"containers": [{"image": "?*"}]}}}
DENY = {"deny": {"conditions": {"any": [{"key": "{{ request.operation }}", "operator": "Equals", "value": "X"}]}}}


def test_a_pattern_rule_on_pods_covers_pod_controllers_and_ephemeral_containers(tmp_path: Path) -> None:
    infos = policy(tmp_path, {"name": "r", "match": match("Pod"), "validate": PATTERN})
    got = rules(infos, "validate")
    assert {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": ["pods", "replicationcontrollers"], "scope": "Namespaced"} in got
    assert {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["UPDATE"],
            "resources": ["pods/ephemeralcontainers"], "scope": "Namespaced"} in got
    resources = {r for rule in got for r in rule["resources"]}
    assert {"deployments", "statefulsets", "daemonsets", "replicasets", "jobs", "cronjobs"} <= resources
    assert "namespaces" not in resources and "networkpolicies" not in resources
    assert rules(infos, "mutate") == []


def test_delete_only_where_a_rule_takes_it(tmp_path: Path) -> None:
    infos = policy(tmp_path, {"name": "a", "match": match("ConfigMap"), "validate": DENY},
                   {"name": "b", "match": match("Secret"), "validate": PATTERN},
                   {"name": "c", "match": match("Service", operations=["CREATE"]), "validate": DENY})
    ops = {r: rule["operations"] for rule in rules(infos, "validate") for r in rule["resources"]}
    assert ops == {"configmaps": ["CREATE", "UPDATE", "DELETE"], "secrets": ["CREATE", "UPDATE"],
                   "services": ["CREATE"]}


def test_subresources_versions_and_excluded_operations(tmp_path: Path) -> None:
    infos = policy(tmp_path,
                   {"name": "exec", "match": match("Pod/exec"), "validate": DENY},
                   {"name": "ns", "match": match("Namespace"), "validate": PATTERN,
                    "exclude": {"any": [{"resources": {"operations": ["UPDATE"]}}]}},
                   {"name": "scale", "match": match("apps/v1/Deployment/scale", operations=["UPDATE"]),
                    "validate": DENY},
                   annotations={"pod-policies.kyverno.io/autogen-controllers": "none"})
    got = rules(infos, "validate")
    assert {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CONNECT"], "resources": ["pods/exec"],
            "scope": "Namespaced"} in got
    assert {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["namespaces"],
            "scope": "Cluster"} in got
    assert {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["UPDATE"],
            "resources": ["deployments/scale"], "scope": "Namespaced"} in got


def test_mutating_rules_go_to_the_mutating_webhook(tmp_path: Path) -> None:
    infos = policy(tmp_path, {"name": "m", "match": match("Pod", operations=["CREATE"]),
                              "mutate": {"patchStrategicMerge": {"metadata": {"labels": {"+(x)": "y"}}}}})
    got = rules(infos, "mutate")
    resources = {r for rule in got for r in rule["resources"]}
    assert {"pods", "deployments", "cronjobs"} <= resources
    assert all(rule["operations"] == ["CREATE"] for rule in got)
    assert rules(infos, "validate") == []


def test_rules_group_resources_by_group_version_operations_and_scope() -> None:
    from admission.engines import PolicyInfo

    info = PolicyInfo("x", "rego", "x.rego:1", targets=(
        Target("validate", "*", "*", "Pod"), Target("validate", "*", "*", "Service"),
        Target("validate", "example.com", "v1", "Widget", "", ("CREATE",)),
        Target("validate", "*", "*", "*", "", ("CREATE", "UPDATE", "DELETE", "CONNECT")),
    ))
    got = rules([info], "validate")
    assert {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": ["pods", "services"], "scope": "Namespaced"} in got
    assert {"apiGroups": ["example.com"], "apiVersions": ["v1"], "operations": ["CREATE"],
            "resources": ["widgets"], "scope": "*"} in got
    assert {"apiGroups": ["*"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE", "DELETE", "CONNECT"],
            "resources": ["*"], "scope": "*"} in got
    assert got == rules([info], "validate")  # stable


def test_the_webhooks_command_prints_the_derived_rules(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from admission.cli import main
    from admission.policyset import builtin_policies

    result = CliRunner().invoke(main, ["webhooks"])
    assert result.exit_code == 0
    printed = list(yaml.safe_load(result.output).values())
    infos = load([builtin_policies()]).policies()
    assert printed == [rules(infos, "validate"), rules(infos, "mutate")]
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: b}\nspec: {rules: []}\n")
    assert CliRunner().invoke(main, ["webhooks", "--policies", str(broken)]).exit_code == 2


CEL_POLICIES = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: deployments}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}
  validations:
  - expression: object.spec.replicas <= 5
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: deployments}
spec: {policyName: deployments, validationActions: [Deny]}
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: label-configmaps}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}
  reinvocationPolicy: Never
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: 'Object{metadata: Object.metadata{labels: {"seen": "yes"}}}'
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: label-configmaps}
spec: {policyName: label-configmaps}
"""


def test_cel_admission_policies_register_the_resources_they_match(tmp_path: Path) -> None:
    (tmp_path / "cel.yaml").write_text(CEL_POLICIES)
    infos = load([tmp_path / "cel.yaml"]).policies()
    validate = {(r["apiGroups"][0], res, tuple(r["operations"])) for r in rules(infos, "validate") for res in r["resources"]}
    mutate = {(r["apiGroups"][0], res, tuple(r["operations"])) for r in rules(infos, "mutate") for res in r["resources"]}
    assert ("apps", "deployments", ("CREATE",)) in validate
    assert ("", "configmaps", ("CREATE", "UPDATE")) in mutate
    assert not any(res == "configmaps" for _, res, _ in validate)
