"""`admission lint`: reading inputs, cluster state from the linted manifests, exit codes and the four reports."""

from __future__ import annotations

import io
import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from admission.lint import collect, evaluate, load_engine, run
from admission.manifests import load_paths

POLICIES = """\
    apiVersion: kyverno.io/v1
    kind: ClusterPolicy
    metadata: {name: require-team}
    spec:
      validationFailureAction: Enforce
      rules:
        - name: team-label
          match: {any: [{resources: {kinds: [Pod]}}]}
          validate:
            message: "the label `team` is required"
            pattern: {metadata: {labels: {team: "?*"}}}
    ---
    apiVersion: kyverno.io/v1
    kind: ClusterPolicy
    metadata: {name: audit-owner}
    spec:
      validationFailureAction: Audit
      rules:
        - name: owner-annotation
          match: {any: [{resources: {kinds: [Pod]}}]}
          validate:
            message: "an owner annotation is recommended"
            pattern: {metadata: {annotations: {owner: "?*"}}}
    """

GOOD = """\
    apiVersion: v1
    kind: Pod
    metadata: {name: good, namespace: apps, labels: {team: a}, annotations: {owner: me}}
    spec: {containers: [{name: c, image: registry.example.com/c:1}]}
    """

MIXED = """\
    # a comment line first
    apiVersion: v1
    kind: Pod
    metadata: {name: good, namespace: apps, labels: {team: a}, annotations: {owner: me}}
    spec: {containers: [{name: c, image: registry.example.com/c:1}]}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: unlabelled, namespace: apps}
    spec: {containers: [{name: c, image: registry.example.com/c:1}]}
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings}
    data: {a: b}
    """


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def policies(tmp_path: Path) -> str:
    return str(write(tmp_path, "policies.yaml", POLICIES))


def lint(paths: list[str], policies: list[str], fmt: str = "text") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(paths, policies, fmt, out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_text_report_names_file_line_and_rule(tmp_path, policies):
    manifest = write(tmp_path, "app.yaml", MIXED)
    code, out, err = lint([str(manifest)], [policies])
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{manifest}:7: Pod apps/unlabelled: deny [require-team/team-label] ")
    assert "the label `team` is required" in lines[0]
    assert lines[1].startswith(f"{manifest}:7: Pod apps/unlabelled: warn [audit-owner/owner-annotation] ")
    assert "an owner annotation is recommended" in lines[1]
    assert not any("Pod apps/good" in line for line in lines)
    assert lines[-1] == "3 resources checked, 2 findings: 1 would be denied, 1 warning"


def test_exit_0_when_only_audit_rules_fail(tmp_path, policies):
    manifest = write(tmp_path, "app.yaml", """\
        apiVersion: v1
        kind: Pod
        metadata: {name: p, labels: {team: a}}
        spec: {containers: [{name: c, image: x}]}
        """)
    code, out, _ = lint([str(manifest)], [policies])
    assert code == 0
    assert "warn [audit-owner/owner-annotation]" in out
    assert lint([str(write(tmp_path, "good.yaml", GOOD))], [policies])[0] == 0


def test_json_report(tmp_path, policies):
    manifest = write(tmp_path, "app.yaml", MIXED)
    code, out, _ = lint([str(manifest)], [policies], "json")
    doc = json.loads(out)
    assert code == 1
    assert doc["summary"] == {"resources": 3, "findings": 2, "denied": 1, "warnings": 1, "errors": 0}
    first = doc["findings"][0]
    assert {k: first[k] for k in ("file", "line", "kind", "namespace", "name", "policy", "rule", "action", "message")} == {
        "file": str(manifest), "line": 7, "kind": "Pod", "namespace": "apps", "name": "unlabelled",
        "policy": "require-team", "rule": "team-label", "action": "Enforce", "message": first["message"],
    }
    assert "the label `team` is required" in first["message"]
    assert [f["action"] for f in doc["findings"]] == ["Enforce", "Audit"]


def test_sarif_report(tmp_path, policies):
    manifest = write(tmp_path, "app.yaml", MIXED)
    code, out, _ = lint([str(manifest)], [policies], "sarif")
    doc = json.loads(out)
    assert code == 1 and doc["version"] == "2.1.0" and "sarif" in doc["$schema"]
    run_ = doc["runs"][0]
    rules = [r["id"] for r in run_["tool"]["driver"]["rules"]]
    assert {"require-team/team-label", "audit-owner/owner-annotation"} <= set(rules)
    by_rule = {r["ruleId"]: r for r in run_["results"]}
    deny, audit = by_rule["require-team/team-label"], by_rule["audit-owner/owner-annotation"]
    assert deny["level"] == "error" and audit["level"] == "warning"
    assert rules[deny["ruleIndex"]] == "require-team/team-label"
    location = deny["locations"][0]["physicalLocation"]
    assert location["region"]["startLine"] == 7
    assert location["artifactLocation"]["uri"].endswith("app.yaml")
    assert "the label `team` is required" in deny["message"]["text"]


def test_junit_report_has_a_testcase_per_resource_and_rule(tmp_path, policies):
    manifest = write(tmp_path, "app.yaml", MIXED)
    code, out, _ = lint([str(manifest)], [policies], "junit")
    root = ET.fromstring(out)
    cases = root.findall(".//testcase")
    assert code == 1
    assert len(cases) == 4  # two Pods x two rules; the ConfigMap matches no rule
    assert root.get("tests") == "4" and root.get("failures") == "2"
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert failed == {
        (f"{manifest}:7 Pod apps/unlabelled", "require-team/team-label"),
        (f"{manifest}:7 Pod apps/unlabelled", "audit-owner/owner-annotation"),
    }


def test_stdin_folders_and_list_kinds(tmp_path, policies, monkeypatch):
    folder = tmp_path / "manifests"
    folder.mkdir()
    write(folder, "a.yaml", GOOD)
    write(folder, "list.yaml", """\
        apiVersion: v1
        kind: List
        items:
          - apiVersion: v1
            kind: Pod
            metadata: {name: first, labels: {team: a}, annotations: {owner: x}}
            spec: {containers: [{name: c, image: x}]}
          - apiVersion: v1
            kind: Pod
            metadata: {name: second}
            spec: {containers: [{name: c, image: x}]}
        """)
    code, out, _ = lint([str(folder)], [policies], "json")
    findings = json.loads(out)["findings"]
    assert code == 1
    assert {(f["name"], f["line"], f["namespace"]) for f in findings} == {("second", 8, "default")}
    monkeypatch.setattr("sys.stdin", io.StringIO(textwrap.dedent(MIXED)))
    code, out, _ = lint(["-"], [policies])
    assert code == 1 and "<stdin>:7: Pod apps/unlabelled: deny" in out


def test_policies_tests_and_non_objects_are_not_linted(tmp_path, policies):
    manifest = tmp_path / "mixed.yaml"
    manifest.write_text(textwrap.dedent(POLICIES) + textwrap.dedent("""\
    ---
    apiVersion: admission.dev/v1
    kind: PolicyTest
    policies: [x.yaml]
    ---
    just a string
    ---
    - a
    - list
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec: {containers: [{name: c, image: x}]}
    """))
    resources = collect(load_paths([manifest]))
    assert [r.name for r in resources] == ["p"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"bad.yaml": "a: [1, 2\nb: c\n"}, "bad.yaml:2: invalid YAML"),
        ({}, "no such file or folder"),
    ],
)
def test_unusable_input_exits_2(tmp_path, policies, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    target = str(tmp_path / "bad.yaml") if files else str(tmp_path / "missing.yaml")
    code, out, err = lint([target], [policies])
    assert code == 2 and out == ""
    assert message in err


def test_broken_policy_exits_2(tmp_path):
    manifest = write(tmp_path, "app.yaml", GOOD)
    broken = write(tmp_path, "broken.yaml", """\
        apiVersion: kyverno.io/v1
        kind: ClusterPolicy
        metadata: {name: broken}
        spec:
          rules:
            - name: no-match
              validate: {pattern: {a: b}}
        """)
    code, _, err = lint([str(manifest)], [str(broken)])
    assert code == 2
    assert "cannot load policies" in err and "broken.yaml" in err
    assert lint([str(manifest)], [str(tmp_path / "nope.yaml")])[0] == 2


def test_unknown_format_is_a_usage_error(tmp_path, policies):
    assert lint([str(write(tmp_path, "a.yaml", GOOD))], [policies], "xml")[0] == 2


BUILTIN = Path(__file__).resolve().parents[1] / "policies"


def builtin(*names: str) -> list[str]:
    return [str(BUILTIN / n) for n in names]


WORKLOAD = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop}
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers: [{name: web, image: registry.example.com/web:1.0}]
    """

NETPOL = """\
    apiVersion: networking.k8s.io/v1
    kind: NetworkPolicy
    metadata: {name: web, namespace: shop}
    spec: {podSelector: {matchLabels: {app: web}}}
    """


def test_linted_network_policies_are_the_cluster_state(tmp_path):
    deployment = write(tmp_path, "deployment.yaml", WORKLOAD)
    code, out, _ = lint([str(deployment)], builtin("require-network-policy"))
    assert code == 1
    assert "deny [require-network-policy/autogen-require-network-policy] no NetworkPolicy in namespace shop" in out
    netpol = write(tmp_path, "netpol.yaml", NETPOL)
    code, out, _ = lint([str(deployment), str(netpol)], builtin("require-network-policy"))
    assert code == 0, out


def test_mutations_apply_before_validation(tmp_path):
    deployment = write(tmp_path, "deployment.yaml", WORKLOAD)
    policies = builtin("add-default-resources", "require-requests-limits")
    assert lint([str(deployment)], builtin("require-requests-limits"))[0] == 1
    code, out, _ = lint([str(deployment)], policies)
    assert code == 0, out
    out_io = io.StringIO()
    assert run([str(deployment)], policies, "text", out_io, err=io.StringIO(), mutate=False) == 1


def test_workers_give_the_same_results_as_one_process(tmp_path, policies):
    docs = []
    for i in range(40):
        labels = "{team: a}" if i % 3 else "{}"
        docs.append(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, labels: {labels}}}\n"
                    f"spec: {{containers: [{{name: c, image: x}}]}}\n")
    manifest = tmp_path / "many.yaml"
    manifest.write_text("---\n".join(docs))
    engine = load_engine([policies])
    resources = collect(load_paths([manifest]))
    serial = evaluate(engine, resources, workers=1)
    forked = evaluate(engine, resources, workers=2)
    assert [e.results for e in forked] == [e.results for e in serial]
    assert [e.resource.name for e in forked] == [f"p{i}" for i in range(40)]
    assert sum(r.status == "fail" for e in serial for r in e.results) == 14 + 40


def test_parallel_reading_keeps_order_and_reports_errors(tmp_path):
    from admission.lint import read
    from admission.manifests import ManifestError

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        write(folder, f"{i:02d}.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c{i}}}\n---\n"
                                       f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s{i}}}\n")
    serial = read([str(folder)], workers=1)
    forked = read([str(folder)], workers=2)
    assert forked == serial
    assert [(d.obj["metadata"]["name"], d.line) for d in forked[:3]] == [("c0", 1), ("s0", 5), ("c1", 1)]
    write(folder, "03.yaml", "a: [1\n")
    with pytest.raises(ManifestError, match=r"03.yaml:2: invalid YAML"):
        read([str(folder)], workers=2)


def test_the_admission_lint_command(tmp_path, policies):
    from click.testing import CliRunner

    from admission.cli import main

    manifest = write(tmp_path, "app.yaml", MIXED)
    result = CliRunner().invoke(main, ["lint", str(manifest), "--policies", policies, "--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["summary"]["denied"] == 1
    good = write(tmp_path, "good.yaml", GOOD)
    assert CliRunner().invoke(main, ["lint", str(good), "--policies", policies]).exit_code == 0
    missing = CliRunner().invoke(main, ["lint", str(tmp_path / "nope.yaml"), "--policies", policies])
    assert missing.exit_code == 2


def test_a_worker_that_dies_does_not_hang_lint():
    import os

    from admission.engine import Engine
    from admission.engines import PolicyInfo
    from admission.lint import Resource
    from admission.results import RuleResult, Status

    parent = os.getpid()

    class DiesInWorkers:
        def policies(self):
            return [PolicyInfo("p", "test", "here:1", rules=("r",))]

        def validate(self, request, ctx):
            if os.getpid() != parent:
                os._exit(3)  # a native crash in a worker, as a segfaulting engine would
            return [RuleResult("p", "r", Status.PASS)]

        def mutate(self, request, obj, ctx):
            return obj, []

    resources = [Resource({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"}}, "f.yaml", i + 1)
                 for i in range(8)]
    evaluations = evaluate(Engine([DiesInWorkers()]), resources, workers=2)
    assert [[r.status for r in e.results] for e in evaluations] == [[Status.PASS]] * 8
