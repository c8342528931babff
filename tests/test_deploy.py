"""The deploy/ manifests fit together and keep the webhook's safety properties."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from admission.cli import main as cli

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def objects() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in sorted(DEPLOY.glob("*.yaml")):
        if f.name == "kustomization.yaml":
            continue
        out += [d for d in yaml.safe_load_all(f.read_text()) if d]
    return out


def one(kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects() if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, (kind, name)
    return found[0]


def granted(service_account: str) -> dict[tuple[str, str, str], set[str]]:
    """(apiGroup, resource, namespace or "" for cluster-wide) -> verbs the (Cluster)Roles bound to a
    ServiceAccount grant; a rule limited to resourceNames is keyed with "resource/name"."""
    out: dict[tuple[str, str, str], set[str]] = {}
    for binding in (o for o in objects() if o["kind"] in ("ClusterRoleBinding", "RoleBinding")):
        if not any(s["kind"] == "ServiceAccount" and s["name"] == service_account for s in binding["subjects"]):
            continue
        role = one(binding["roleRef"]["kind"], binding["roleRef"]["name"])
        namespace = binding["metadata"].get("namespace", "")
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for name in rule.get("resourceNames") or [""]:
                        key = (group, f"{resource}/{name}" if name else resource, namespace)
                        out.setdefault(key, set()).update(rule["verbs"])
    return out


def server_args() -> dict[str, list[str]]:
    container = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    args: dict[str, list[str]] = {}
    for a in container["args"][1:]:
        key, _, value = a.partition("=")
        args.setdefault(key, []).append(value)
    return args


def test_kustomization_lists_every_manifest_but_the_webhooks() -> None:
    """webhooks.yaml is applied by `admission register` (it adds the caBundle), not by kustomize: a
    registration without caBundle would fail closed for every matching request until one is added."""
    listed = set(yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"])
    assert listed == {f.name for f in DEPLOY.glob("*.yaml") if f.name not in ("kustomization.yaml", "webhooks.yaml")}


def test_webhooks_yaml_is_the_output_of_register(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/webhooks.yaml is `admission register --dry-run --service admission/admission` for the built-in
    library, byte for byte (regenerate it with that command when the policies change)."""
    from click.testing import CliRunner

    monkeypatch.setenv("ADMISSION_HOME", str(tmp_path))  # no certificates: the output has no caBundle
    result = CliRunner().invoke(cli, ["register", "--dry-run", "--service", "admission/admission"])
    assert result.exit_code == 0, result.output
    assert (DEPLOY / "webhooks.yaml").read_text() == result.output


def test_deployment_is_highly_available_and_probed() -> None:
    dep = one("Deployment")
    assert dep["spec"]["replicas"] >= 2
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert one("Service")["spec"]["selector"].items() <= labels.items()


def test_server_args_are_options_serve_accepts() -> None:
    """Every flag in the Deployment is one `admission serve` knows (click rejects unknown ones)."""
    args = server_args()
    command = cli.commands["serve"]
    known = {opt for p in command.params for opt in getattr(p, "opts", [])}
    assert set(args) <= known


@pytest.mark.parametrize("kind", ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"])
def test_webhooks_are_safe(kind: str) -> None:
    namespace = one("Namespace")["metadata"]["name"]
    service = one("Service")
    deadline = float(server_args()["--timeout"][0])
    for hook in one(kind)["webhooks"]:
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1", "v1beta1"]
        assert hook["failurePolicy"] in ("Fail", "Ignore")
        assert deadline < hook["timeoutSeconds"] <= 30
        excluded = [e for e in hook["namespaceSelector"]["matchExpressions"]
                    if e["key"] == "kubernetes.io/metadata.name" and e["operator"] == "NotIn"]
        assert excluded and {namespace, "kube-system"} <= set(excluded[0]["values"])
        svc = hook["clientConfig"]["service"]
        assert (svc["name"], svc["namespace"]) == (service["metadata"]["name"], service["metadata"]["namespace"])
        assert svc["port"] == service["spec"]["ports"][0]["port"]
        assert svc["path"] == ("/validate" if kind.startswith("Validating") else "/mutate")


def test_rbac_grants_what_the_server_and_the_audit_do_and_no_more() -> None:
    """The server: watches of NetworkPolicies and Namespaces, the break-glass ConfigMap by name, its own two
    webhook configurations by name (serve --register); nothing else. The audit: lists, and its reports by
    name. tests/test_e2e_rbac.py checks the same grants against a real API server."""
    server = one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    assert one("ServiceAccount", server)
    rules = granted(server)
    assert {"list", "watch"} <= rules["networking.k8s.io", "networkpolicies", ""]
    assert {"get", "list", "watch"} <= rules["", "namespaces", ""]
    assert rules["", "configmaps/admission-break-glass", "admission"] == {"get", "list", "watch"}
    for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations"):
        assert rules["admissionregistration.k8s.io", f"{kind}/admission", ""] == {"get", "create", "patch"}
    writes = {"create", "update", "patch", "delete", "deletecollection", "*"}
    assert {key for key, verbs in rules.items() if verbs & writes} == {
        ("admissionregistration.k8s.io", f"{kind}/admission", "")
        for kind in ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")}
    assert "--register" in server_args()  # so the server uses what it is granted

    cron = one("CronJob", "admission-audit")
    auditor = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["serviceAccountName"]
    assert auditor != server and one("ServiceAccount", auditor)
    rules = granted(auditor)
    from admission.audit import DEFAULT_KINDS
    from admission.policyreport import FORMATS

    plural = {"NetworkPolicy": "networkpolicies", "Ingress": "ingresses"}
    for api_version, kind in DEFAULT_KINDS:
        group = api_version.rpartition("/")[0]
        assert "list" in rules[group, plural.get(kind, kind.lower() + "s"), ""], kind
    for form in FORMATS.values():
        group = form.api_version.split("/")[0]
        for kind in (form.kind, form.cluster_kind):
            assert "list" in rules[group, kind.lower() + "s", ""]
            assert {"create", "patch", "delete"} <= rules[group, f"{kind.lower()}s/admission-audit", ""]
    assert {key for key, verbs in rules.items() if verbs & writes} == {
        (form.api_version.split("/")[0], f"{kind.lower()}s/admission-audit", "")
        for form in FORMATS.values() for kind in (form.kind, form.cluster_kind)}


def test_configmap_policies_load(tmp_path: Path) -> None:
    from admission.policyset import load

    for name, text in one("ConfigMap")["data"].items():
        (tmp_path / name).write_text(text)
    engine = load([tmp_path])
    assert "require-team-label" in [p.name for p in engine.policies()]


# -- deploy/ agrees with the policies ---------------------------------------------------------------

def deployed_engine(tmp_path: Path) -> Any:
    """The policies the Deployment loads: the built-in library and the ConfigMap's site policies."""
    from admission.policyset import builtin_policies, load

    for name, text in one("ConfigMap")["data"].items():
        (tmp_path / name).write_text(text)
    return load([builtin_policies(), tmp_path])


@pytest.mark.parametrize(("kind", "phase"), [("ValidatingWebhookConfiguration", "validate"),
                                             ("MutatingWebhookConfiguration", "mutate")])
def test_webhook_rules_are_the_ones_derived_from_the_policies(tmp_path: Path, kind: str, phase: str) -> None:
    from admission.webhooks import rules

    [hook] = one(kind)["webhooks"]
    assert hook["rules"] == rules(deployed_engine(tmp_path).policies(), phase)


def sent(hook: dict[str, Any], obj: dict[str, Any], operation: str) -> bool:
    """Whether the API server sends this request to the webhook (its rules, as registered)."""
    from admission.review import Kind
    from admission.webhooks import KINDS

    kind = Kind.of(obj)
    resource = KINDS[kind.kind][2]
    return any(kind.group in r["apiGroups"] and kind.version in r["apiVersions"] and resource in r["resources"]
               and operation in r["operations"] for r in hook["rules"])


WORKLOADS = [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "team"},
     "spec": {"containers": [{"name": "c", "image": "registry.example.com/app:1.0"}]}},
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "team"},
     "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
         "metadata": {"labels": {"app": "d"}},
         "spec": {"containers": [{"name": "c", "image": "registry.example.com/app:1.0"}]}}}},
    {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj", "namespace": "team"},
     "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
         "restartPolicy": "Never", "containers": [{"name": "c", "image": "registry.example.com/app:1.0"}]}}}}}},
]


@pytest.mark.parametrize("obj", WORKLOADS, ids=lambda o: o["kind"])
def test_the_cluster_decides_as_lint_does(tmp_path: Path, obj: dict[str, Any]) -> None:
    """A workload without resources: lint mutates then validates; so does the cluster through the
    registered webhooks (the Deployment used to reach /validate but not /mutate, and was denied)."""
    from admission.engine import Phase
    from admission.engines import Context
    from admission.review import Request
    from admission.state import ClusterState

    engine = deployed_engine(tmp_path)
    netpol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "all", "namespace": "team"}, "spec": {"podSelector": {}}}
    ctx = Context(state=ClusterState([obj, netpol]))
    request = Request.for_object(obj)
    offline = engine.review(request, ctx, Phase.ALL)
    [mutating] = one("MutatingWebhookConfiguration")["webhooks"]
    [validating] = one("ValidatingWebhookConfiguration")["webhooks"]
    if sent(mutating, obj, "CREATE"):
        mutated = engine.review(request, ctx, Phase.MUTATE)  # what /mutate answers (its patch: this diff)
        assert mutated.decision.allowed
        request = Request.for_object(mutated.mutated)
    assert sent(validating, obj, "CREATE")
    in_cluster = engine.review(request, ctx, Phase.VALIDATE).decision  # what /validate answers
    assert offline.decision.allowed and in_cluster.allowed
    assert offline.decision.message == in_cluster.message


def test_deploy_manifests_pass_the_builtin_policies() -> None:
    """Our own manifests, linted with our own built-in library: nothing enforced fails, nothing warns."""
    import io

    from admission.lint import run

    out = io.StringIO()
    code = run([str(DEPLOY)], [], "json", out)
    import json

    report = json.loads(out.getvalue())
    assert code == 0, report["findings"]
    assert report["summary"]["resources"] >= 10
    assert report["findings"] == []
    # kustomization.yaml configures kustomize, the Grafana dashboard is not a Kubernetes object
    kustomization, dashboard = sorted(report["skipped"], key=lambda note: "grafana" in note)
    assert "kustomization.yaml" in kustomization and "Kustomization" in kustomization
    assert "grafana-dashboard.json" in dashboard and "not a Kubernetes object" in dashboard


def test_the_server_pods_have_a_network_policy() -> None:
    from admission.selectors import selector_matches

    labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    policy = one("NetworkPolicy", "admission")
    assert selector_matches(policy["spec"]["podSelector"], labels)
    ports = {p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]}
    container = one("Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {p["containerPort"] for p in container["ports"]} <= ports
