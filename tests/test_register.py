"""`admission register`: whole webhook configurations derived from the policies (no cluster needed here;
tests/test_e2e_register.py applies them to a real API server)."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from admission.cli import main
from admission.engines import PolicyInfo, Skips, Target
from admission.policyset import builtin_policies, load
from admission.webhooks import (
    Registration,
    RegistrationError,
    configurations,
    parse_service,
    rules,
)

GATEKEEPER_LIBRARY = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "gatekeeper-library" / "library"
SERVICE = Registration(service=("admission", "admission", 443))


def kyverno(tmp_path: Path, name: str, *rules_: dict[str, Any], **spec: Any) -> list[PolicyInfo]:
    doc = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": name},
           "spec": {"validationFailureAction": "Enforce", **spec, "rules": list(rules_)}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return [p for p in load([path]).policies() if p.dialect == "kyverno"]


POD_RULE = {"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
            "validate": {"pattern": {"spec": {"containers": [{"image": "?*"}]}}}}


def hooks(infos: list[PolicyInfo], reg: Registration = SERVICE) -> dict[str, list[dict[str, Any]]]:
    validating, mutating = configurations(infos, reg)
    assert validating["kind"] == "ValidatingWebhookConfiguration" and mutating["kind"] == "MutatingWebhookConfiguration"
    return {"validate": validating["webhooks"], "mutate": mutating["webhooks"]}


def test_every_webhook_has_the_safe_settings(tmp_path: Path) -> None:
    infos = load([builtin_policies()]).policies()
    for phase, found in hooks(infos).items():
        assert found, phase
        for hook in found:
            assert hook["sideEffects"] == "None"
            assert hook["admissionReviewVersions"] == ["v1", "v1beta1"]
            assert hook["matchPolicy"] == "Equivalent"
            [expr] = hook["namespaceSelector"]["matchExpressions"]
            assert expr["key"] == "kubernetes.io/metadata.name" and expr["operator"] == "NotIn"
            assert {"admission", "kube-system"} <= set(expr["values"])
            assert hook["clientConfig"]["service"] == {"namespace": "admission", "name": "admission",
                                                       "path": f"/{phase}", "port": 443}
            assert hook["rules"] == rules(infos, phase)  # one webhook per phase here: every rule is in it


def test_one_webhook_per_failure_policy_and_timeout(tmp_path: Path) -> None:
    infos = (kyverno(tmp_path, "a", POD_RULE)
             + kyverno(tmp_path, "b", {**POD_RULE, "match": {"any": [{"resources": {"kinds": ["Service"]}}]}},
                       failurePolicy="Ignore")
             + kyverno(tmp_path, "c", {**POD_RULE, "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]}},
                       webhookTimeoutSeconds=3)
             + kyverno(tmp_path, "d", {**POD_RULE, "match": {"any": [{"resources": {"kinds": ["Secret"]}}]}}))
    found = {(h["failurePolicy"], h["timeoutSeconds"]): h for h in hooks(infos)["validate"]}
    assert set(found) == {("Fail", 10), ("Ignore", 10), ("Fail", 3)}
    resources = {key: {r for rule in h["rules"] for r in rule["resources"]} for key, h in found.items()}
    assert resources[("Ignore", 10)] == {"services"}
    assert resources[("Fail", 3)] == {"configmaps"}
    assert {"pods", "secrets", "deployments"} <= resources[("Fail", 10)]
    assert len({h["name"] for h in found.values()}) == 3
    assert hooks(infos)["mutate"] == []


def test_url_and_ca_bundle(tmp_path: Path) -> None:
    reg = Registration(url="https://127.0.0.1:8443/", ca_bundle=b"-----BEGIN CERTIFICATE-----\nx\n")
    [hook] = hooks(kyverno(tmp_path, "a", POD_RULE), reg)["validate"]
    assert hook["clientConfig"] == {"url": "https://127.0.0.1:8443/validate",
                                    "caBundle": base64.b64encode(reg.ca_bundle).decode()}
    assert "admission" in hook["namespaceSelector"]["matchExpressions"][0]["values"]  # the default own namespace


@pytest.mark.parametrize("url", ["http://127.0.0.1:8443", "https://", "https://h/x?y=1", "https://u@h"])
def test_a_url_the_api_server_would_not_call_is_refused(url: str, tmp_path: Path) -> None:
    with pytest.raises(RegistrationError, match="--url"):
        configurations(kyverno(tmp_path, "a", POD_RULE), Registration(url=url))


@pytest.mark.parametrize(("text", "expected"), [("ns/svc", ("ns", "svc", 443)), ("ns/svc:8443", ("ns", "svc", 8443))])
def test_parse_service(text: str, expected: tuple[str, str, int]) -> None:
    assert parse_service(text) == expected


@pytest.mark.parametrize("text", ["svc", "/svc", "ns/", "ns/svc:x", "ns/svc:0", "ns/svc:70000"])
def test_parse_service_refuses(text: str) -> None:
    with pytest.raises(RegistrationError, match="--service"):
        parse_service(text)


EXCLUDE_USERS = {"any": [{"subjects": [{"kind": "User", "name": "ci-bot"}, {"kind": "Group", "name": "ops:oncall"},
                                       {"kind": "ServiceAccount", "namespace": "infra", "name": "deployer"}]}]}


def test_users_and_groups_every_policy_excludes_become_match_conditions(tmp_path: Path) -> None:
    infos = (kyverno(tmp_path, "a", {**POD_RULE, "exclude": EXCLUDE_USERS})
             + kyverno(tmp_path, "b", {**POD_RULE, "exclude": {"any": [
                 {"subjects": [{"kind": "User", "name": "ci-bot"}, {"kind": "Group", "name": "ops:oncall"},
                               {"kind": "User", "name": "only-b"}]}]}}))
    [hook] = hooks(infos)["validate"]
    assert hook["matchConditions"] == [
        {"name": "excluded-users", "expression": '!(request.userInfo.username in ["ci-bot"])'},
        {"name": "excluded-groups", "expression": '!request.userInfo.groups.exists(g, g in ["ops:oncall"])'},
    ]
    # the generated pod-controller rules carry the exclusion too (their kinds narrow nothing)
    assert infos[0].skips.users == {"ci-bot", "system:serviceaccount:infra:deployer"}


def test_a_policy_without_the_exclusion_on_the_same_kinds_keeps_every_request(tmp_path: Path) -> None:
    infos = kyverno(tmp_path, "a", {**POD_RULE, "exclude": EXCLUDE_USERS}) + kyverno(tmp_path, "b", POD_RULE)
    [hook] = hooks(infos)["validate"]
    assert "matchConditions" not in hook


def test_exclusions_on_other_kinds_become_a_per_resource_condition(tmp_path: Path) -> None:
    """A ConfigMap policy excluding ci-bot beside a Pod policy excluding no one (as the always-loaded
    namespace-label Pod Security is): ci-bot's ConfigMaps skip the webhook, its Pods do not."""
    configmaps = {**POD_RULE, "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]}, "exclude": EXCLUDE_USERS}
    infos = kyverno(tmp_path, "cm", configmaps) + kyverno(tmp_path, "pods", POD_RULE)
    [hook] = hooks(infos)["validate"]
    [condition] = hook["matchConditions"]
    assert condition["name"] == "some-policy-applies"
    expression = condition["expression"]
    assert '"/configmaps"' in expression and '"/pods"' in expression and '"apps/deployments"' in expression
    assert '!(request.userInfo.username in ["ci-bot", "system:serviceaccount:infra:deployer"] || ' \
           'request.userInfo.groups.exists(g, g in ["ops:oncall"]))' in expression
    # the ConfigMap term carries the exclusion, the Pod term does not
    pods_term, cm_term = expression.split(") || (")
    assert "configmaps" not in pods_term and "userInfo" not in pods_term
    assert "configmaps" in cm_term and "userInfo" in cm_term


def test_a_policy_on_any_kind_without_exclusions_leaves_no_condition(tmp_path: Path) -> None:
    configmaps = {**POD_RULE, "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]}, "exclude": EXCLUDE_USERS}
    anything = PolicyInfo("any", "rego", "x.rego:1", targets=(Target("validate"),))
    [hook] = hooks(kyverno(tmp_path, "cm", configmaps) + [anything])["validate"]
    assert "matchConditions" not in hook


@pytest.mark.parametrize("exclude", [
    {"any": [{"subjects": [{"kind": "User", "name": "ci-*"}]}]},  # a wildcard: not expressible exactly
    {"any": [{"subjects": [{"kind": "User", "name": "ci-bot"}], "resources": {"names": ["x"]}}]},  # narrower
    {"all": [{"subjects": [{"kind": "User", "name": "ci-bot"}]}, {"resources": {"namespaces": ["x"]}}]},
    {"any": [{"clusterRoles": ["admin"]}]},
])
def test_exclusions_that_do_not_skip_the_whole_request_are_left_to_the_server(tmp_path: Path,
                                                                               exclude: dict[str, Any]) -> None:
    [info] = kyverno(tmp_path, "a", {**POD_RULE, "exclude": exclude})
    assert info.skips == Skips()
    assert "matchConditions" not in hooks([info])["validate"][0]


def test_namespaces_every_policy_excludes_join_the_namespace_selector(tmp_path: Path) -> None:
    exclude = {"any": [{"resources": {"namespaces": ["kube-public", "legacy", "team-*"]}}]}
    [hook] = hooks(kyverno(tmp_path, "a", {**POD_RULE, "exclude": exclude}))["validate"]
    [expr] = hook["namespaceSelector"]["matchExpressions"]
    assert expr["values"] == ["admission", "kube-public", "kube-system", "legacy"]


def test_namespace_labels_make_an_opt_in_selector(tmp_path: Path) -> None:
    reg = Registration(service=("sec", "hook", 8443), namespace_labels=(("policy", "on"),))
    [hook] = hooks(kyverno(tmp_path, "a", POD_RULE), reg)["validate"]
    assert hook["namespaceSelector"]["matchLabels"] == {"policy": "on"}
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["kube-system", "sec"]


def test_match_conditions_are_computed_from_policy_info_alone() -> None:
    """Dialect-neutral: any evaluator's PolicyInfo.skips count (a Rego module, say)."""
    target = (Target("validate", "", "v1", "ConfigMap"),)
    a = PolicyInfo("a", "rego", "a.rego:1", targets=target, skips=Skips(groups=frozenset({"g1", "g2"})))
    b = PolicyInfo("b", "rego", "b.rego:1", targets=target, skips=Skips(groups=frozenset({"g2"})))
    [hook] = hooks([a, b])["validate"]
    assert hook["matchConditions"] == [
        {"name": "excluded-groups", "expression": '!request.userInfo.groups.exists(g, g in ["g2"])'}]


def test_mutating_webhooks_are_reinvoked(tmp_path: Path) -> None:
    mutate = {"name": "m", "match": {"any": [{"resources": {"kinds": ["Pod"], "operations": ["CREATE"]}}]},
              "mutate": {"patchStrategicMerge": {"metadata": {"labels": {"+(x)": "y"}}}}}
    [hook] = hooks(kyverno(tmp_path, "m", mutate, failurePolicy="Ignore"))["mutate"]
    assert hook["reinvocationPolicy"] == "IfNeeded" and hook["failurePolicy"] == "Ignore"
    assert hook["clientConfig"]["service"]["path"] == "/mutate"


def test_each_reload_hands_the_new_policy_set_to_the_registrar(tmp_path: Path) -> None:
    """serve --register: Policies calls its on_load hooks after every good load, never after a failed one."""
    from admission.reload import Policies

    path = tmp_path / "p.yaml"
    kyverno(tmp_path, "p", POD_RULE)
    calls: list[list[str]] = []
    policies = Policies([path])
    policies.on_load.append(lambda infos: calls.append(sorted(i.name for i in infos)))
    assert policies.load()
    path.write_text("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec: {rules: []}\n")
    assert not policies.load()
    assert calls == [["p", "pod-security-admission"]]


def test_explicit_groups_do_not_borrow_another_groups_version() -> None:
    info = PolicyInfo("x", "gatekeeper", "x:1", targets=(Target("validate", "extensions", "*", "Deployment"),))
    [rule] = rules([info], "validate")
    assert rule["apiGroups"] == ["extensions"] and rule["apiVersions"] == ["*"]


# --- the command -----------------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADMISSION_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["register", *args])


def test_dry_run_prints_both_configurations(home: Path) -> None:
    result = invoke("--dry-run", "--service", "admission/admission")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.output))
    infos = load([builtin_policies()]).policies()
    assert docs == configurations(infos, SERVICE)
    assert "No caBundle" in result.output  # no certificates under ADMISSION_HOME yet: says how to get one


def test_dry_run_json_and_the_ca_of_the_certs_folder(home: Path) -> None:
    from admission import certs

    assert CliRunner().invoke(main, ["certs", "init"]).exit_code == 0
    result = invoke("--dry-run", "--url", "https://127.0.0.1:9443", "-o", "json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)["items"]
    bundle = (certs.certs_dir() / "ca.pem").read_bytes()
    for doc in items:
        for hook in doc["webhooks"]:
            assert base64.b64decode(hook["clientConfig"]["caBundle"]) == bundle


@pytest.mark.parametrize(("args", "message"), [
    ((), "exactly one of --url"),
    (("--url", "https://h", "--service", "a/b"), "exactly one of --url"),
    (("--service", "a"), "NAMESPACE/NAME"),
    (("--service", "a/b", "--timeout-seconds", "31"), "from 1 to 30"),
    (("--service", "a/b", "--namespace-label", "x"), "KEY=VALUE"),
    (("--service", "a/b", "--ca-bundle", "missing.pem"), "missing.pem"),
])
def test_unusable_options_exit_2(home: Path, args: tuple[str, ...], message: str) -> None:
    result = invoke("--dry-run", *args)
    assert result.exit_code == 2 and message in result.output


def test_applying_without_a_ca_bundle_says_how_to_get_one(home: Path) -> None:
    result = invoke("--service", "admission/admission")
    assert result.exit_code == 2 and "admission certs init" in result.output


def test_cert_manager_injection_leaves_the_bundle_out(home: Path) -> None:
    result = invoke("--dry-run", "--service", "admission/admission", "--inject-ca-from", "admission/serving")
    docs = list(yaml.safe_load_all(result.output))
    for doc in docs:
        assert doc["metadata"]["annotations"] == {"cert-manager.io/inject-ca-from": "admission/serving"}
        assert all("caBundle" not in h["clientConfig"] for h in doc["webhooks"])
    assert "No caBundle" not in result.output


def gatekeeper_set(tmp_path: Path) -> Path:
    """Every template of the Gatekeeper library with its sample constraints (each constraint name once)."""
    seen: set[tuple[str, str]] = set()
    for i, template in enumerate(sorted(GATEKEEPER_LIBRARY.rglob("template.yaml"))):
        folder = tmp_path / f"{i:03d}"
        folder.mkdir(parents=True)
        shutil.copy(template, folder / "template.yaml")
        for j, constraint in enumerate(sorted(template.parent.glob("samples/*/constraint.yaml"))):
            doc = yaml.safe_load(constraint.read_text())
            key = (doc["kind"], doc["metadata"]["name"])
            if key not in seen:
                seen.add(key)
                shutil.copy(constraint, folder / f"constraint-{j}.yaml")
    return tmp_path


def test_the_gatekeeper_library(tmp_path: Path, home: Path) -> None:
    if not GATEKEEPER_LIBRARY.is_dir():
        pytest.skip(f"the conformance suites are not checked out beside the repository ({GATEKEEPER_LIBRARY} is missing)")
    policies = gatekeeper_set(tmp_path / "gk")
    result = invoke("--dry-run", "--service", "gatekeeper-system/admission", "--policies", str(policies))
    assert result.exit_code == 0, result.output
    validating, mutating = yaml.safe_load_all(result.output)
    assert mutating["webhooks"] == []  # constraints only validate
    [hook] = validating["webhooks"]  # every constraint: failurePolicy Fail, the default timeout
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["gatekeeper-system", "kube-system"]
    infos = load([policies]).policies()
    constraints = [i for i in infos if i.dialect == "gatekeeper"]
    assert len(constraints) >= 40
    assert hook["rules"] == rules(infos, "validate")
    by_group = {(g, r) for rule in hook["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert ("", "pods") in by_group and ("*", "*") in by_group  # constraints without kinds match everything
    for rule in hook["rules"]:  # a version is only named where the group is the kind's own
        if rule["apiGroups"] == ["extensions"]:
            assert rule["apiVersions"] == ["*"]
