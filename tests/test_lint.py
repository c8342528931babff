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
    # the pattern wants metadata.labels, which the Pod lacks: its nearest field there, `metadata:`
    assert location["region"] == {"startLine": 9, "startColumn": 1}
    assert location["artifactLocation"]["uri"].endswith("app.yaml")
    assert "the label `team` is required" in deny["message"]["text"]


def test_junit_report_has_a_testcase_per_resource_and_policy(tmp_path, policies):
    manifest = write(tmp_path, "app.yaml", MIXED)
    code, out, _ = lint([str(manifest)], [policies], "junit")
    root = ET.fromstring(out)
    cases = root.findall(".//testcase")
    assert code == 1
    names = {c.get("name") for c in cases}
    assert {"require-team", "audit-owner", "removed-api-versions"} <= names
    assert len(cases) == 3 * len(names)  # three resources, each against every policy
    assert root.get("tests") == str(len(cases)) and root.get("failures") == "2"
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert failed == {
        (f"{manifest}:7 Pod apps/unlabelled", "require-team"),
        (f"{manifest}:7 Pod apps/unlabelled", "audit-owner"),
    }
    skipped = {(c.get("classname"), c.get("name")) for c in cases if c.find("skipped") is not None}
    assert (f"{manifest}:12 ConfigMap default/settings", "require-team") in skipped
    assert int(root.get("skipped")) == len(skipped)


def test_a_clean_junit_run_has_tests_and_passes(tmp_path, policies):
    manifest = write(tmp_path, "app.yaml", GOOD)
    code, out, _ = lint([str(manifest)], [policies], "junit")
    root = ET.fromstring(out)
    assert code == 0 and int(root.get("tests")) > 0
    assert root.get("failures") == "0" and root.get("errors") == "0"
    passed = [c for c in root.findall(".//testcase") if not list(c)]
    assert {c.get("name") for c in passed} >= {"require-team", "audit-owner", "removed-api-versions"}


CONTROL = "".join(chr(c) for c in range(32) if chr(c) not in "\t\n\r") + "\x7f\ufffe"


@pytest.mark.parametrize("fmt", ["junit", "sarif", "json"])
def test_reports_parse_whatever_the_messages_hold(tmp_path, fmt):
    """Control characters from a manifest (through a rule's message) never break the report."""
    policy = write(tmp_path, "p.yaml", """\
        apiVersion: kyverno.io/v1
        kind: ClusterPolicy
        metadata: {name: echo}
        spec:
          validationFailureAction: Enforce
          rules:
            - name: echo
              match: {any: [{resources: {kinds: [ConfigMap]}}]}
              validate:
                message: "value {{ request.object.data.v }}"
                deny: {}
        """)
    manifest = tmp_path / "cm.json"
    manifest.write_text(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": "c" + CONTROL[:3]}, "data": {"v": CONTROL}}))
    code, out, _ = lint([str(manifest)], [str(policy)], fmt)
    assert code == 1
    if fmt == "junit":
        root = ET.fromstring(out)
        [failure] = root.findall(".//failure")
        assert "\\x07" in failure.text and "\\x1b" in failure.text
    else:
        json.loads(out)


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


# -- lint tells the truth -----------------------------------------------------------------------------


@pytest.mark.parametrize(("api_version", "kind", "replacement", "version"), [
    ("extensions/v1beta1", "Deployment", "apps/v1", "v1.16"),
    ("apps/v1beta2", "StatefulSet", "apps/v1", "v1.16"),
    ("extensions/v1beta1", "Ingress", "networking.k8s.io/v1", "v1.22"),
    ("policy/v1beta1", "PodDisruptionBudget", "policy/v1", "v1.25"),
    ("policy/v1beta1", "PodSecurityPolicy", "Pod Security Admission", "v1.25"),
    ("batch/v1beta1", "CronJob", "batch/v1", "v1.25"),
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler", "autoscaling/v2", "v1.26"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRole", "rbac.authorization.k8s.io/v1", "v1.22"),
])
def test_removed_api_versions_are_findings(tmp_path, policies, api_version, kind, replacement, version):
    manifest = tmp_path / "old.yaml"
    manifest.write_text(f"apiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: old}}\nspec: {{}}\n")
    code, out, _ = lint([str(manifest)], [policies], "json")
    doc = json.loads(out)
    [finding] = [f for f in doc["findings"] if f["policy"] == "removed-api-versions"]
    assert code == 1 and finding["enforced"]
    assert api_version in finding["message"] and replacement in finding["message"]
    assert f"removed in Kubernetes {version}" in finding["message"]
    assert finding["region"] == {"line": 1, "column": 1}  # the apiVersion field


def test_served_api_versions_are_not_findings(tmp_path, policies):
    manifest = write(tmp_path, "new.yaml", """\
        apiVersion: policy/v1
        kind: PodDisruptionBudget
        metadata: {name: d}
        spec: {}
        ---
        apiVersion: autoscaling/v2
        kind: HorizontalPodAutoscaler
        metadata: {name: h}
        ---
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: i}
        """)
    code, out, _ = lint([str(manifest)], [policies], "json")
    assert code == 0 and json.loads(out)["findings"] == []


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n---\n", "just a string\n",
                                  "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\n"])
def test_no_resources_is_unusable_input(tmp_path, policies, text):
    manifest = tmp_path / "empty.yaml"
    manifest.write_text(text)
    code, out, err = lint([str(manifest)], [policies], "json")
    assert code == 2 and out == ""
    assert "no Kubernetes resources found" in err


def test_documents_that_are_not_objects_are_reported(tmp_path, policies):
    manifest = tmp_path / "mixed.yaml"
    manifest.write_text(textwrap.dedent(GOOD) + "---\nmetadata: {name: no-kind}\n---\n- a list\n")
    code, out, _ = lint([str(manifest)], [policies], "text")
    assert code == 0
    assert f"{manifest}:6: not a Kubernetes object (no apiVersion and kind); skipped" in out
    assert f"{manifest}:8: not a Kubernetes object (a list, not a mapping); skipped" in out
    assert "2 documents skipped" in out
    code, out, _ = lint([str(manifest)], [policies], "json")
    assert len(json.loads(out)["skipped"]) == 2
    code, out, _ = lint([str(manifest)], [policies], "sarif")
    notes = json.loads(out)["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert len(notes) == 2


IMAGE_POLICY = """\
    apiVersion: kyverno.io/v1
    kind: ClusterPolicy
    metadata:
      name: no-latest
      annotations: {policies.kyverno.io/description: "images are pinned"}
    spec:
      validationFailureAction: Enforce
      rules:
        - name: pin
          match: {any: [{resources: {kinds: [Pod]}}]}
          validate:
            message: "pin the image"
            pattern: {spec: {containers: [{image: "!*:latest"}]}}
    """


def test_sarif_rules_are_described_once_and_regions_name_the_field(tmp_path, policies):
    policy = write(tmp_path, "image.yaml", IMAGE_POLICY)
    manifest = write(tmp_path, "deploy.yaml", """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web, namespace: apps}
        spec:
          template:
            spec:
              containers:
                - name: ok
                  image: registry.example.com/a:1
                - name: web
                  image: nginx:latest
        """)
    code, out, _ = lint([str(manifest)], [str(policy), policies], "sarif")
    run_ = json.loads(out)["runs"][0]
    rules = run_["tool"]["driver"]["rules"]
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids))
    assert {"no-latest/pin", "no-latest/autogen-pin", "require-team/team-label"} <= set(ids)
    assert all(r["shortDescription"]["text"] for r in rules)
    assert rules[ids.index("no-latest/pin")]["shortDescription"]["text"] == "pin the image"
    [result] = [r for r in run_["results"] if r["ruleId"] == "no-latest/autogen-pin"]
    assert ids[result["ruleIndex"]] == "no-latest/autogen-pin"
    region = result["locations"][0]["physicalLocation"]["region"]
    assert region == {"startLine": 11, "startColumn": 11}  # `image: nginx:latest`, not the Deployment's line
    assert code == 1


def test_sarif_ids_stay_unique_when_constraint_names_repeat(tmp_path):
    from admission.engine import Engine
    from admission.engines import PolicyInfo
    from admission.report import sarif

    class Two:
        def policies(self):
            return [PolicyInfo("same", "gatekeeper", "a:1", ("KindA",), rule_docs=(("", "a"),)),
                    PolicyInfo("same", "gatekeeper", "b:1", ("KindB",), rule_docs=(("", "b"),))]

    out = io.StringIO()
    sarif(out, [], [], Engine([Two()]))  # type: ignore[list-item]
    ids = [r["id"] for r in json.loads(out.getvalue())["runs"][0]["tool"]["driver"]["rules"]]
    assert ids.count("same") == 1 and len(ids) == len(set(ids))


def test_pod_security_findings_point_at_the_offending_field(tmp_path):
    manifest = write(tmp_path, "priv.yaml", """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: priv, namespace: apps}
        spec:
          template:
            spec:
              containers:
                - name: c
                  image: registry.example.com/c:1
                  securityContext:
                    privileged: true
        """)
    code, out, _ = lint([str(manifest)], [], "json")
    by_policy = {f["policy"]: f for f in json.loads(out)["findings"]}
    baseline = by_policy["pod-security-baseline"]
    assert code == 1 and baseline["enforced"]
    assert baseline["path"] == "/spec/template/spec/containers/0/securityContext/privileged"
    assert baseline["region"] == {"line": 11, "column": 13}
