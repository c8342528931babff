"""Gatekeeper templates' K8sNativeValidation (CEL) code, and which code entry runs (--engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from admission.cli import main
from admission.engines import Context, PolicyError
from admission.engines.cel.gatekeeper_cel import GatekeeperCelEvaluator, engine
from admission.policyset import load
from admission.results import Status
from admission.review import Request

TEMPLATE: dict[str, Any] = {
    "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate", "metadata": {"name": "k8snolabel"},
    "spec": {
        "crd": {"spec": {"names": {"kind": "K8sNoLabel"}}},
        "targets": [{"target": "admission.k8s.gatekeeper.sh", "code": [
            {"engine": "K8sNativeValidation", "source": {
                "variables": [{"name": "labels", "expression":
                               "has(variables.anyObject.metadata.labels) ? variables.anyObject.metadata.labels : {}"}],
                "validations": [{
                    "expression": "!has(variables.params.label) || !(variables.params.label in variables.labels)",
                    "messageExpression": "'cel: label ' + variables.params.label + ' is not allowed'"}]}},
            {"engine": "Rego", "source": {"rego": (
                "package k8snolabel\n\nviolation[{\"msg\": msg}] {\n  input.review.object.metadata.labels"
                "[input.parameters.label]\n  msg := sprintf(\"rego: label %v is not allowed\", "
                "[input.parameters.label])\n}\n")}},
        ]}],
    },
}
CONSTRAINT = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sNoLabel", "metadata": {"name": "no-debug"},
              "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}, "parameters": {"label": "debug"}}}


def pod(**labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a", "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}


def write(path: Path, *docs: Any) -> Path:
    path.write_text(yaml.safe_dump_all(list(docs), sort_keys=False))
    return path


@pytest.mark.parametrize(("choice", "prefix"), [("auto", "cel"), ("cel", "cel"), ("rego", "rego")])
def test_engine_choice_picks_the_code_entry(tmp_path: Path, choice: str, prefix: str) -> None:
    file = write(tmp_path / "gk.yaml", TEMPLATE, CONSTRAINT)
    with engine(choice):
        policies = load([file])
    review = policies.review(Request.for_object(pod(debug="1")))
    assert not review.decision.allowed
    [violation] = [r for r in review.validate_results if r.status == Status.FAIL]
    assert violation.policy == "no-debug" and violation.message == f"{prefix}: label debug is not allowed"
    assert policies.review(Request.for_object(pod(other="1"))).decision.allowed


def test_any_object_is_the_old_object_on_delete(tmp_path: Path) -> None:
    with engine("cel"):
        policies = load([write(tmp_path / "gk.yaml", TEMPLATE, CONSTRAINT)])
    request = Request.for_object(pod(debug="1"), operation="DELETE")
    [r] = [e for e in policies.evaluators if isinstance(e, GatekeeperCelEvaluator)][0].validate(request, Context())
    assert r.status == Status.FAIL


def test_constraint_without_parameters_reads_params_as_an_empty_map(tmp_path: Path) -> None:
    constraint = {**CONSTRAINT, "spec": {"match": CONSTRAINT["spec"]["match"]}}
    with engine("cel"):
        policies = load([write(tmp_path / "gk.yaml", TEMPLATE, constraint)])
    assert [r.status for r in policies.review(Request.for_object(pod(debug="1"))).validate_results] == []


def test_cel_only_template_runs_its_cel_whatever_the_choice(tmp_path: Path) -> None:
    template = yaml.safe_load(yaml.safe_dump(TEMPLATE))
    template["spec"]["targets"][0]["code"] = template["spec"]["targets"][0]["code"][:1]
    with engine("rego"):
        policies = load([write(tmp_path / "gk.yaml", template, CONSTRAINT)])
    assert not policies.review(Request.for_object(pod(debug="1"))).decision.allowed


def test_a_cel_expression_that_does_not_compile_names_its_line(tmp_path: Path) -> None:
    template = yaml.safe_load(yaml.safe_dump(TEMPLATE))
    template["spec"]["targets"][0]["code"][0]["source"]["validations"][0]["expression"] = "variables.labels.("
    with engine("cel"), pytest.raises(PolicyError) as err:
        load([write(tmp_path / "gk.yaml", template, CONSTRAINT)])
    assert "validations[0].expression" in err.value.message and "variables.labels.(" in err.value.message
    assert err.value.source != f"{tmp_path / 'gk.yaml'}:1"


def test_admission_test_engine_option(tmp_path: Path) -> None:
    write(tmp_path / "template.yaml", TEMPLATE)
    write(tmp_path / "constraint.yaml", CONSTRAINT)
    write(tmp_path / "bad.yaml", pod(debug="1"))
    write(tmp_path / "suite.yaml", {
        "apiVersion": "test.gatekeeper.sh/v1alpha1", "kind": "Suite", "metadata": {"name": "s"},
        "tests": [{"name": "t", "template": "template.yaml", "constraint": "constraint.yaml", "cases": [
            {"name": "bad", "object": "bad.yaml", "assertions": [{"violations": 1, "message": "^cel:"}]}]}]})
    cel = CliRunner().invoke(main, ["test", str(tmp_path), "--engine", "cel"])
    assert cel.exit_code == 0 and "1 passed, 0 failed" in cel.output
    rego = CliRunner().invoke(main, ["test", str(tmp_path), "--engine", "rego"])
    assert rego.exit_code == 1 and "0 passed, 1 failed" in rego.output
