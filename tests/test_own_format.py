"""The PolicyTest runner (admission.testing.own), driven by a small in-test evaluator so that what is
checked is the runner: result matching, autogen names, resources by name, state, patched resources."""

from __future__ import annotations

import copy
import io
import textwrap
from pathlib import Path

import pytest

import admission.policyset
from admission.engine import Engine
from admission.engines import Context, PolicyInfo
from admission.results import Action, RuleResult, Status
from admission.review import Request
from admission.testing import run, run_paths
from admission.testing.own import run_policy_test
from admission.types import Object


class Scripted:
    """Validates by reading the expected status from the resource's `verdict` label; for workloads the
    result carries the generated rule name and the rule as written is reported as a skip, as Kyverno does.
    `needs-state` fails unless a NetworkPolicy exists in the state. Mutation adds a `mutated` label."""

    def __init__(self) -> None:
        self.contexts: list[Context] = []

    def policies(self) -> list[PolicyInfo]:
        return [
            PolicyInfo("p", "test", "here:1", rules=("r", "audit", "sees-mutation")),
            PolicyInfo("m", "test", "here:2", rules=("add-label",), mutates=True, validates=False),
        ]

    def validate(self, request: Request, ctx: Context) -> list[RuleResult]:
        self.contexts.append(ctx)
        obj = request.object or {}
        labels = (obj.get("metadata") or {}).get("labels") or {}
        verdict = labels.get("verdict", "pass")
        if verdict == "needs-state":
            verdict = "pass" if ctx.state.list("NetworkPolicy") else "fail"
        out = []
        if request.kind.kind == "Pod":
            out.append(RuleResult("p", "r", Status(verdict), "scripted"))
        else:
            out.append(RuleResult("p", "r", Status.SKIP))
            out.append(RuleResult("p", "autogen-r", Status(verdict), "scripted"))
        out.append(RuleResult("p", "audit", Status.FAIL, "audited", action=Action.AUDIT))
        if labels.get("mutated") == "yes":
            out.append(RuleResult("p", "sees-mutation", Status.PASS))
        return out

    def mutate(self, request: Request, obj: Object, ctx: Context) -> tuple[Object, list[RuleResult]]:
        if obj.get("kind") != "Pod":
            return obj, [RuleResult("m", "add-label", Status.SKIP)]
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {}).setdefault("labels", {})["mutated"] = "yes"
        return obj, [RuleResult("m", "add-label", Status.PASS)]


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> Scripted:
    evaluator = Scripted()
    monkeypatch.setattr(admission.policyset, "load", lambda paths, **_: Engine([evaluator]))
    return evaluator


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


RESOURCES = """\
    apiVersion: v1
    kind: Pod
    metadata: {name: good, namespace: apps, labels: {verdict: pass}}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: bad, namespace: apps, labels: {verdict: fail}}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: bad, namespace: other, labels: {verdict: pass}}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: skipped, labels: {verdict: skip}}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: apps, labels: {verdict: fail}}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: stateful, namespace: apps, labels: {verdict: needs-state}}
    """


def policy_test(tmp_path: Path, results: str, extra: str = "") -> tuple[Path, dict]:
    write(tmp_path, "resources.yaml", RESOURCES)
    write(tmp_path, "policy.yaml", "# the policies are scripted in this test\n")
    text = textwrap.dedent("""\
        apiVersion: admission.dev/v1
        kind: PolicyTest
        policies: [policy.yaml]
        resources: [resources.yaml]
        """) + textwrap.dedent(extra) + "results:\n" + textwrap.indent(textwrap.dedent(results), "  ")
    path = tmp_path / "x.test.yaml"
    path.write_text(text)
    import yaml

    return path, yaml.safe_load(text)


def outcomes(path: Path, doc: dict) -> dict[str, tuple[bool, str]]:
    return {r.name: (r.passed, r.detail) for r in run_policy_test(path, doc)}


def test_one_case_per_policy_rule_and_resource(scripted, tmp_path):
    path, doc = policy_test(tmp_path, """\
        - {policy: p, rule: r, kind: Pod, resources: [good, apps/bad, other/bad], result: pass}
        """)
    got = outcomes(path, doc)
    assert got["p/r Pod/good"] == (True, "")
    assert got["p/r Pod/other/bad"] == (True, "")
    passed, detail = got["p/r Pod/apps/bad"]
    assert not passed and detail == "expected pass, got fail: scripted"


def test_a_bare_name_matches_every_namespace(scripted, tmp_path):
    path, doc = policy_test(tmp_path, "- {policy: p, rule: r, kind: Pod, resources: [bad], result: fail}\n")
    results = run_policy_test(path, doc)
    assert [r.passed for r in results] == [True, False]  # apps/bad fails, other/bad passes


def test_default_namespace_and_skip(scripted, tmp_path):
    path, doc = policy_test(tmp_path, "- {policy: p, rule: r, kind: Pod, resources: [default/skipped], result: skip}\n")
    assert outcomes(path, doc) == {"p/r Pod/default/skipped": (True, "")}


def test_workload_results_may_name_the_rule_as_written(scripted, tmp_path):
    path, doc = policy_test(tmp_path, """\
        - {policy: p, rule: r, kind: Deployment, resources: [web], result: fail}
        - {policy: p, rule: autogen-r, kind: Deployment, resources: [web], result: fail}
        - {policy: p, rule: r, kind: Deployment, resources: [web], result: pass}
        """)
    results = run_policy_test(path, doc)
    assert [r.passed for r in results] == [True, True, False]
    assert results[2].detail.startswith("expected pass, got fail")


def test_audit_failures_count_as_fail_or_warn(scripted, tmp_path):
    path, doc = policy_test(tmp_path, """\
        - {policy: p, rule: audit, kind: Pod, resources: [good], result: fail}
        - {policy: p, rule: audit, kind: Pod, resources: [good], result: warn}
        - {policy: p, rule: audit, kind: Pod, resources: [good], result: pass}
        """)
    assert [r.passed for r in run_policy_test(path, doc)] == [True, True, False]


def test_unknown_resource_policy_and_rule_fail_with_a_reason(scripted, tmp_path):
    path, doc = policy_test(tmp_path, """\
        - {policy: p, rule: r, kind: Pod, resources: [nope], result: pass}
        - {policy: nope, rule: r, kind: Pod, resources: [good], result: skip}
        - {policy: p, rule: nope, kind: Pod, resources: [good], result: skip}
        - {policy: p, rule: r, kind: Service, resources: [good], result: pass}
        """)
    results = run_policy_test(path, doc)
    assert not any(r.passed for r in results)
    details = [r.detail for r in results]
    assert "no Pod named 'nope'" in details[0]
    assert "policy 'nope' is not among the policies loaded" in details[1]
    assert "has no rule 'nope'" in details[2]
    assert "no Service named 'good'" in details[3]


def test_state_files_are_the_cluster_state(scripted, tmp_path):
    results = "- {policy: p, rule: r, kind: Pod, resources: [stateful], result: pass}\n"
    path, doc = policy_test(tmp_path, results)
    assert [r.passed for r in run_policy_test(path, doc)] == [False]
    write(tmp_path, "cluster.yaml", """\
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata: {name: all, namespace: apps}
        spec: {podSelector: {}}
        """)
    path, doc = policy_test(tmp_path, results, extra="state: [cluster.yaml]\n")
    assert [r.passed for r in run_policy_test(path, doc)] == [True]
    assert all(ctx.report_skips for ctx in scripted.contexts)


def test_validation_sees_the_mutated_object(scripted, tmp_path):
    path, doc = policy_test(tmp_path, """\
        - {policy: p, rule: sees-mutation, kind: Pod, resources: [good], result: pass}
        - {policy: m, rule: add-label, kind: Pod, resources: [good], result: pass}
        - {policy: m, rule: add-label, kind: Deployment, resources: [web], result: skip}
        """)
    assert [r.passed for r in run_policy_test(path, doc)] == [True, True, True]


def test_patched_resource_is_compared(scripted, tmp_path):
    write(tmp_path, "patched.yaml", """\
        apiVersion: v1
        kind: Pod
        metadata: {name: good, namespace: apps, labels: {verdict: pass, mutated: "yes"}}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: skipped, labels: {verdict: skip, mutated: "no"}}
        """)
    path, doc = policy_test(tmp_path, """\
        - {policy: m, rule: add-label, kind: Pod, resources: [good], patchedResource: patched.yaml}
        - {policy: m, rule: add-label, kind: Pod, resources: [skipped], patchedResource: patched.yaml}
        - {policy: m, rule: add-label, kind: Pod, resources: [apps/bad], patchedResource: patched.yaml}
        """)
    results = run_policy_test(path, doc)
    assert [r.passed for r in results] == [True, False, False]
    assert "mutated resource differs from patched.yaml" in results[1].detail
    assert '"/metadata/labels/mutated"' in results[1].detail
    assert "patched.yaml holds no Pod/apps/bad" in results[2].detail


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ("[]", "`results` must be a non-empty list"),
        ("[{policy: p, rule: 3, kind: Pod, resources: [a], result: pass}]", "results[0].rule: must be a string"),
        ("[{policy: p, rule: r, kind: Pod, result: pass}]", "results[0].resources must list resource names"),
        ("[{policy: p, rule: r, kind: Pod, resources: [a], result: maybe}]", "results[0].result must be one of"),
    ],
)
def test_malformed_tests_are_one_failed_case(scripted, tmp_path, results, message):
    import yaml

    doc = yaml.safe_load(f"{{apiVersion: admission.dev/v1, kind: PolicyTest, policies: [p.yaml], resources: [r.yaml], "
                         f"results: {results}}}")
    got = run_policy_test(tmp_path / "t.test.yaml", doc)
    assert len(got) == 1 and not got[0].passed and got[0].name == "format"
    assert message in got[0].detail


def test_missing_policy_file_is_a_failed_load(tmp_path):
    doc = {"apiVersion": "admission.dev/v1", "kind": "PolicyTest", "policies": ["missing.yaml"],
           "resources": ["r.yaml"], "results": [{"policy": "p", "rule": "r", "kind": "Pod", "resources": ["a"],
                                                  "result": "pass"}]}
    got = run_policy_test(tmp_path / "t.test.yaml", doc)
    assert [(r.name, r.passed) for r in got] == [("load", False)]
    assert "no such file or folder" in got[0].detail


def test_admission_test_finds_and_counts_policy_tests(scripted, tmp_path):
    policy_test(tmp_path, """\
        - {policy: p, rule: r, kind: Pod, resources: [good], result: pass}
        - {policy: p, rule: r, kind: Pod, resources: [apps/bad], result: pass}
        """)
    assert len(run_paths([str(tmp_path)])) == 2
    out = io.StringIO()
    assert run([str(tmp_path)], out) == 1
    lines = out.getvalue().splitlines()
    assert lines[-1] == "1 passed, 1 failed"
    assert lines[0].startswith("FAIL ") and "p/r Pod/apps/bad: expected pass, got fail" in lines[0]
