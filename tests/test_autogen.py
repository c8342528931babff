"""Pod-controller auto-generation, as Kyverno's autogen v1 does it (pkg/autogen/v1)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from admission.engines import Context
from admission.engines.yaml import KyvernoEvaluator
from admission.engines.yaml.autogen import can_autogen, kind_name
from admission.engines.yaml.policy import Policy, parse_policy
from admission.manifests import Document
from admission.results import Status
from admission.review import Request

POLICY = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: no-latest
  annotations: {}
spec:
  validationFailureAction: Enforce
  rules:
  - name: pin-images
    match:
      any:
      - resources:
          kinds: [Pod]
    preconditions:
      all:
      - key: "{{ request.object.metadata.labels.app || '' }}"
        operator: NotEquals
        value: skip-me
    validate:
      message: "pin {{ request.object.metadata.name }}"
      pattern:
        spec:
          containers:
          - image: "!*:latest"
"""


def policy(text: str = POLICY, annotations: dict[str, str] | None = None, **rule_changes: Any) -> Policy:
    obj = yaml.safe_load(text)
    obj["metadata"]["annotations"] = annotations or {}
    obj["spec"]["rules"][0].update(rule_changes)
    return parse_policy(Document(obj, "policy.yaml", 1))


def test_rules_for_pods_generate_workload_and_cronjob_rules() -> None:
    p = policy()
    names = [r.name for r in p.generated]
    assert names == ["autogen-pin-images", "autogen-cronjob-pin-images"]
    workload, cron = p.generated
    assert workload.base_name == "pin-images"
    assert workload.spec["validate"]["pattern"] == {"spec": {"template": {"spec": {"containers": [
        {"image": "!*:latest"}]}}}}
    assert cron.spec["validate"]["pattern"] == {"spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "containers": [{"image": "!*:latest"}]}}}}}}
    assert workload.spec["match"]["any"][0]["resources"]["kinds"] == [
        "apps/v1/DaemonSet", "apps/v1/Deployment", "batch/v1/Job", "apps/v1/ReplicaSet",
        "v1/ReplicationController", "apps/v1/StatefulSet"]
    assert cron.spec["match"]["any"][0]["resources"]["kinds"] == ["batch/v1/CronJob"]


def test_variables_are_rewritten_to_the_template() -> None:
    workload, cron = policy().generated
    key = workload.spec["preconditions"]["all"][0]["key"]
    assert key == "{{ request.object.spec.template.metadata.labels.app || '' }}"
    assert cron.spec["preconditions"]["all"][0]["key"] == (
        "{{ request.object.spec.jobTemplate.spec.template.metadata.labels.app || '' }}")
    assert workload.spec["validate"]["message"] == "pin {{ request.object.spec.template.metadata.name }}"


def test_annotation_none_turns_autogen_off_and_a_list_narrows_it() -> None:
    assert policy(annotations={"pod-policies.kyverno.io/autogen-controllers": "none"}).generated == ()
    p = policy(annotations={"pod-policies.kyverno.io/autogen-controllers": "Deployment"})
    assert [r.name for r in p.generated] == ["autogen-pin-images"]
    assert p.controllers == {"Deployment"}
    assert p.generated[0].spec["match"]["any"][0]["resources"]["kinds"] == ["apps/v1/Deployment"]
    only_cron = policy(annotations={"pod-policies.kyverno.io/autogen-controllers": "CronJob"})
    assert [r.name for r in only_cron.generated] == ["autogen-cronjob-pin-images"]


@pytest.mark.parametrize("resources", [
    {"kinds": ["Pod"], "names": ["web"]},
    {"kinds": ["Pod"], "selector": {"matchLabels": {"app": "x"}}},
    {"kinds": ["Pod"], "annotations": {"a": "b"}},
    {"kinds": ["Pod", "Service"]},
])
def test_rules_that_may_not_carry_over_to_templates_disable_autogen(resources: dict[str, Any]) -> None:
    p = policy(match={"any": [{"resources": resources}]})
    assert p.generated == ()
    assert p.rules_for("Deployment") == p.rules


def test_json6902_mutation_disables_autogen() -> None:
    rule = {"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
            "mutate": {"patchesJson6902": "- op: add\n  path: /metadata/labels/x\n  value: y"}}
    assert not can_autogen([rule])


def test_exclude_without_pod_kind_generates_nothing_for_that_rule() -> None:
    p = policy(exclude={"any": [{"resources": {"kinds": ["Deployment"]}}]})
    assert p.generated == ()


def test_exclude_filters_are_rewritten_too() -> None:
    p = policy(exclude={"any": [{"resources": {"kinds": ["Pod"], "namespaces": ["kube-system"]}}]})
    workload, cron = p.generated
    assert workload.spec["exclude"]["any"][0]["resources"]["namespaces"] == ["kube-system"]
    assert "apps/v1/Deployment" in workload.spec["exclude"]["any"][0]["resources"]["kinds"]
    assert cron.spec["exclude"]["any"][0]["resources"]["kinds"] == ["batch/v1/CronJob"]


def test_rule_names_are_cut_at_63_characters() -> None:
    p = policy(name="x" * 60)
    assert all(len(r.name) <= 63 for r in p.generated)
    assert p.generated[0].name.startswith("autogen-xxx")


def test_kind_names() -> None:
    assert kind_name("Pod") == kind_name("v1/Pod") == kind_name("Pod/exec") == "Pod"
    assert kind_name("apps/v1/Deployment") == "Deployment"


def test_generated_rules_apply_to_workload_templates() -> None:
    ev = KyvernoEvaluator([policy()])
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:latest"}]}}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "a"},
                  "spec": {"template": template}}
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "job", "namespace": "a"},
               "spec": {"jobTemplate": {"spec": {"template": template}}}}
    results = ev.validate(Request.for_object(deployment), Context())
    assert [(r.rule, r.status) for r in results] == [("autogen-pin-images", Status.FAIL)]
    assert "spec/template/spec/containers/0/image" in results[0].message
    results = ev.validate(Request.for_object(cronjob), Context())
    assert [(r.rule, r.status) for r in results] == [("autogen-cronjob-pin-images", Status.FAIL)]
    # a Pod only sees the rule as written
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a"}, "spec": template["spec"]}
    assert [r.rule for r in ev.validate(Request.for_object(pod), Context())] == ["pin-images"]
