"""One policy set in the three dialects side by side (a Kyverno ClusterPolicy, a Gatekeeper
ConstraintTemplate in Rego, a ValidatingAdmissionPolicy in CEL), run through every entry point: `test`,
`lint`, `serve` (the real HTTPS server on a loopback port) and `audit` (against a real API server when
ADMISSION_E2E_KUBECONFIG names one). The README shows these three files; a test keeps it honest."""

from __future__ import annotations

import http.client
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from admission.cli import main
from admission.policyset import load

from .serving import client_context, serve

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "fixtures" / "three-dialects"
POLICIES = HERE / "policies"
RESOURCES = HERE / "resources.yaml"

# the resource each policy denies, and the words of its denial
DENIED = {
    "latest": ("disallow-latest-tag", "images must name a tag other than latest"),
    "no-team": ("pods-have-a-team", "missing label team"),
    "no-limits": ("require-memory-limits", "containers without a memory limit: app"),
}


def pods() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(RESOURCES.read_text()) if d}


def test_one_policy_set_holds_the_three_dialects() -> None:
    infos = {p.name: p for p in load([POLICIES]).policies()}
    assert infos["disallow-latest-tag"].dialect == "kyverno"
    assert infos["pods-have-a-team"].dialect == "gatekeeper"
    assert infos["require-memory-limits"].dialect == "cel"


def test_admission_test_passes_the_suite_written_for_all_three() -> None:
    out = CliRunner().invoke(main, ["test", "-v", str(HERE)])
    assert out.exit_code == 0, out.output
    assert "12 passed, 0 failed" in out.output
    for policy in ("disallow-latest-tag/require-a-pinned-tag", "pods-have-a-team", "require-memory-limits"):
        assert f"{policy} Pod/good" in out.output


def test_lint_finds_each_dialects_violation_at_its_line() -> None:
    out = CliRunner().invoke(main, ["lint", "--policies", str(POLICIES), "--format", "json", str(RESOURCES)])
    assert out.exit_code == 1, out.output
    findings = json.loads(out.output)["findings"]
    got = {(f["name"], f["policy"]) for f in findings if f["result"] == "fail"}
    assert got == {(name, policy) for name, (policy, _) in DENIED.items()}
    lines = RESOURCES.read_text().splitlines()
    for f in findings:
        assert f["message"].find(DENIED[f["name"]][1]) >= 0
        # the line is the resource's own document: its name is among the lines that follow
        assert f"name: {f['name']}" in "\n".join(lines[f["line"] - 1:f["line"] + 3])


def review(obj: dict[str, Any]) -> bytes:
    obj = {**obj, "metadata": {**obj["metadata"], "namespace": "team"}}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": obj["metadata"]["name"], "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "CREATE",
        "namespace": "team", "name": obj["metadata"]["name"], "userInfo": {"username": "alice"},
        "object": obj}}).encode()


def test_serve_denies_through_each_dialect(tmp_path: Path) -> None:
    # the namespace's labels come from a state file, as a cluster would give them (Pod Security reads them)
    state = tmp_path / "state.yaml"
    state.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}))
    with serve(tmp_path, "--policies", str(POLICIES), "--state", str(state)) as (port, _):
        answers: dict[str, Any] = {}
        for name, obj in pods().items():
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(tmp_path / "certs" / "ca.pem"),
                                               timeout=10)
            conn.request("POST", "/validate", body=review(obj), headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200
            answers[name] = json.loads(resp.read())["response"]
            conn.close()
    assert answers["good"]["allowed"] is True
    for name, (policy, words) in DENIED.items():
        answer = answers[name]
        assert answer["allowed"] is False, answer
        message = answer["status"]["message"]
        assert policy in message and words in message, message
        # only the dialect whose rule the resource breaks denies it
        assert [p for p, _ in DENIED.values() if p in message] == [policy], message


KUBECONFIG = os.environ.get("ADMISSION_E2E_KUBECONFIG", "")


@pytest.mark.skipif(not KUBECONFIG, reason="no API server for end-to-end tests: set ADMISSION_E2E_KUBECONFIG to its "
                                           "kubeconfig (../shared/apiserver/up.sh starts one)")
def test_audit_reports_each_dialects_violation_in_a_real_cluster() -> None:
    from kubernetes import client

    from admission.cluster import connect

    core = client.CoreV1Api(connect(KUBECONFIG).api)
    ns = f"e2e-dialects-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": ns}})
    for obj in pods().values():
        core.create_namespaced_pod(ns, obj)
    out = CliRunner().invoke(main, ["audit", "--kubeconfig", KUBECONFIG, "-n", ns, "--policies", str(POLICIES),
                                    "--kind", "v1/Pod", "--format", "json"])
    assert out.exit_code == 1, out.output
    findings = json.loads(out.output)["findings"]
    got = {(f["name"], f["policy"]) for f in findings if f["result"] == "fail"}
    assert got == {(name, policy) for name, (policy, _) in DENIED.items()}


def test_the_readme_shows_the_three_policies_as_they_are_tested() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)
    for path in sorted(POLICIES.glob("*.yaml")):
        assert path.read_text() in blocks, f"README.md does not show {path.name} as tested"
