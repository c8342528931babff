"""The Gatekeeper `Suite` runner: assertions, AdmissionReview case objects, inventory, and our own suites."""

from __future__ import annotations

from pathlib import Path

import yaml

from admission.engines.rego.gatekeeper import Violation
from admission.testing import run_paths
from admission.testing.gatekeeper import check_assertion, request_for

REPO = Path(__file__).resolve().parents[1]

TEMPLATE = """apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8snoowner
spec:
  crd:
    spec:
      names:
        kind: K8sNoOwner
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8snoowner

        violation[{"msg": msg}] {
          not input.review.object.metadata.labels.owner
          msg := sprintf("%v %v has no owner", [input.review.kind.kind, input.review.object.metadata.name])
        }

        violation[{"msg": msg}] {
          input.review.operation == "UPDATE"
          input.review.oldObject.metadata.labels.owner != input.review.object.metadata.labels.owner
          msg := sprintf("%v changed the owner", [input.review.userInfo.username])
        }

        violation[{"msg": msg}] {
          name := input.review.object.metadata.name
          data.inventory.namespace[_]["v1"]["ConfigMap"]["owners"].data[name] == "retired"
          msg := sprintf("%v belongs to a retired owner", [name])
        }
"""
CONSTRAINT = """apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sNoOwner
metadata:
  name: owner-required
spec:
  match:
    kinds:
      - apiGroups: [""]
        kinds: ["Pod"]
"""
POD = """apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: default
  labels: {labels}
spec:
  containers:
    - name: app
      image: app:1
"""
REVIEW = """apiVersion: admission.k8s.io/v1
kind: AdmissionReview
request:
  uid: "7"
  kind: {group: "", version: v1, kind: Pod}
  operation: UPDATE
  name: web
  namespace: default
  userInfo: {username: bob}
  object: {apiVersion: v1, kind: Pod, metadata: {name: web, namespace: default, labels: {owner: b}}}
  oldObject: {apiVersion: v1, kind: Pod, metadata: {name: web, namespace: default, labels: {owner: a}}}
"""
INVENTORY = """apiVersion: v1
kind: ConfigMap
metadata:
  name: owners
  namespace: kube-system
data:
  legacy: retired
"""
SUITE = """kind: Suite
apiVersion: test.gatekeeper.sh/v1alpha1
tests:
  - name: owners
    template: template.yaml
    constraint: constraint.yaml
    cases:
      - name: owned
        object: owned.yaml
        assertions:
          - violations: no
      - name: unowned-default-assertion-is-yes
        object: unowned.yaml
      - name: unowned-count-and-regex
        object: unowned.yaml
        assertions:
          - violations: 1
            message: "^Pod bare has no owner$"
          - violations: "no"
            message: changed
      - name: update-review
        object: review.yaml
        assertions:
          - violations: 1
            message: bob changed the owner
      - name: inventory
        object: legacy.yaml
        inventory: [inventory.yaml]
        assertions:
          - violations: yes
            message: legacy belongs to a retired owner
      - name: without-inventory
        object: legacy.yaml
        assertions:
          - violations: no
      - name: wrong-expectation
        object: owned.yaml
        assertions:
          - violations: 2
"""


def write_suite(tmp_path: Path) -> Path:
    files = {
        "template.yaml": TEMPLATE,
        "constraint.yaml": CONSTRAINT,
        "owned.yaml": POD.format(name="web", labels="{owner: a}"),
        "unowned.yaml": POD.format(name="bare", labels="{}"),
        "legacy.yaml": POD.format(name="legacy", labels="{owner: z}"),
        "review.yaml": REVIEW,
        "inventory.yaml": INVENTORY,
        "suite.yaml": SUITE,
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return tmp_path / "suite.yaml"


def test_suite_cases(tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    results = {r.name: r for r in run_paths([str(suite)])}
    assert {n: r.passed for n, r in results.items()} == {
        "owners/owned": True,
        "owners/unowned-default-assertion-is-yes": True,
        "owners/unowned-count-and-regex": True,
        "owners/update-review": True,
        "owners/inventory": True,
        "owners/without-inventory": True,
        "owners/wrong-expectation": False,
    }
    assert "expected 2 violation(s), got 0" in results["owners/wrong-expectation"].detail


def test_broken_template_fails_each_case_with_the_reason(tmp_path: Path) -> None:
    suite = write_suite(tmp_path)
    (tmp_path / "template.yaml").write_text(TEMPLATE.replace("not input.review", "not input.review ("))
    results = run_paths([str(suite)])
    assert len(results) == 7 and not any(r.passed for r in results)
    assert all("cannot load" in r.detail and "template.yaml" in r.detail for r in results)


def test_yaml_booleans_and_counts() -> None:
    v = [Violation(None, "container a is bad"), Violation(None, "initContainer b is bad")]  # type: ignore[arg-type]
    doc = yaml.safe_load("- violations: yes\n- violations: no\n- violations: 2\n- {violations: 1, message: ^init}\n")
    assert [check_assertion(a, v) for a in doc] == ["", "expected no violations, got 2", "", ""]
    assert check_assertion({"violations": "no", "message": "nothing"}, v) == ""
    assert check_assertion({"message": "container"}, v) == ""
    assert "violations must be yes, no or a count" in check_assertion({"violations": "many"}, v)
    assert "invalid message regex" in check_assertion({"message": "("}, v)


def test_admission_review_sets_operation_user_and_old_object() -> None:
    req = request_for(yaml.safe_load(REVIEW))
    assert req.operation == "UPDATE" and req.user_info == {"username": "bob"}
    assert req.old_object is not None and req.old_object["metadata"]["labels"] == {"owner": "a"}
    delete = request_for({"kind": "AdmissionReview", "request": {"operation": "DELETE", "oldObject": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}}})
    assert delete.operation == "DELETE" and delete.object is None and delete.kind.kind == "Pod" and delete.name == "x"


def test_builtin_gatekeeper_policies_pass_their_suites() -> None:
    results = run_paths([str(REPO / "policies" / "gatekeeper")])
    assert len(results) >= 13
    assert [f"{r.name}: {r.detail}" for r in results if not r.passed] == []


def test_gatekeeper_guardrails_are_opt_in() -> None:
    from admission.policyset import load

    default = load([str(REPO / "policies")])
    assert not [p for p in default.policies() if p.dialect == "gatekeeper"]
    chosen = load([str(REPO / "policies" / "gatekeeper")])
    assert {p.name for p in chosen.policies() if p.dialect == "gatekeeper"} == {
        "allowed-registries", "container-limits", "memory-limit-warning", "required-labels",
    }
