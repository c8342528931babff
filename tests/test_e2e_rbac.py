"""deploy/'s RBAC against a real kube-apiserver: the ServiceAccounts of deploy/rbac.yaml (the server) and
deploy/audit.yaml (the audit CronJob) may do what they need and nothing more, checked two ways:
SelfSubjectAccessReviews made while impersonating each ServiceAccount, and the real commands run with a token
of each ServiceAccount (TokenRequest): `admission serve --register` registers its webhooks, watches Namespaces,
NetworkPolicies and the break-glass ConfigMap, and decides Pods through the API server; `admission audit
--write-reports` lists what it audits and writes its report.

So that several runs can share an API server, the manifests are applied with names of this run: the
`admission` namespace becomes a namespace of the run, cluster-scoped roles and bindings get the run's suffix,
and the webhook configuration name `admission` in resourceNames becomes the run's (the server is started with
that `--webhook-name`). Nothing else in them changes. The audit runs with `-n` (the CronJob audits every
namespace; here that would write reports into namespaces of other runs).

Runs when ADMISSION_E2E_KUBECONFIG names the kubeconfig of a disposable API server (../shared/apiserver/
starts one on loopback); skipped otherwise.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from admission.cli import main

from .serving import client_context, free_port, serve, wait_for

ENV = "ADMISSION_E2E_KUBECONFIG"
KUBECONFIG = os.environ.get(ENV, "")
pytestmark = pytest.mark.skipif(not KUBECONFIG, reason=f"no API server for end-to-end tests: set {ENV} to its kubeconfig "
                                                      "(../shared/apiserver/up.sh starts one)")
DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
LABEL = "admission.dev/e2e-rbac"


def admin() -> Any:
    from admission.cluster import connect

    return connect(KUBECONFIG).api


@dataclass
class Run:
    suffix: str
    namespace: str  # stands for `admission`
    target: str  # a namespace the webhooks select and the audit reads
    webhook: str
    docs: list[dict[str, Any]] = field(repr=False)

    def account(self, name: str) -> str:
        return f"system:serviceaccount:{self.namespace}:{name}"


def renamed(doc: dict[str, Any], run: Run) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    meta = doc["metadata"]
    if meta.get("namespace") == "admission":
        meta["namespace"] = run.namespace
    if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
        meta["name"] = f"{meta['name']}-{run.suffix}"
    if doc["kind"] == "ClusterRoleBinding":
        doc["roleRef"]["name"] = f"{doc['roleRef']['name']}-{run.suffix}"
    for subject in doc.get("subjects") or []:
        if subject.get("namespace") == "admission":
            subject["namespace"] = run.namespace
    for rule in doc.get("rules") or []:
        if "admissionregistration.k8s.io" in rule["apiGroups"] and rule.get("resourceNames") == ["admission"]:
            rule["resourceNames"] = [run.webhook]
    return doc


def create(api: Any, doc: dict[str, Any]) -> None:
    from kubernetes import dynamic

    resource = dynamic.DynamicClient(api).resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
    resource.create(body=doc, namespace=doc["metadata"].get("namespace"))


def delete(api: Any, doc: dict[str, Any]) -> None:
    from kubernetes import dynamic
    from kubernetes.client.exceptions import ApiException

    resource = dynamic.DynamicClient(api).resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
    try:
        resource.delete(name=doc["metadata"]["name"], namespace=doc["metadata"].get("namespace"))
    except ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture(scope="module")
def run() -> Iterator[Run]:
    from kubernetes import client

    from .test_e2e_reports import install_crds

    suffix = uuid.uuid4().hex[:8]
    docs = [d for f in ("rbac.yaml", "audit.yaml") for d in yaml.safe_load_all((DEPLOY / f).read_text())
            if d and d["kind"] in RBAC_KINDS]
    r = Run(suffix, f"admission-e2e-rbac-{suffix}", f"admission-e2e-rbac-target-{suffix}",
            f"admission-e2e-rbac-{suffix}", [])
    r.docs = [renamed(d, r) for d in docs]
    api = admin()
    core = client.CoreV1Api(api)
    from admission.audit import kube_api

    install_crds(kube_api(KUBECONFIG))
    core.create_namespace({"metadata": {"name": r.namespace}})
    core.create_namespace({"metadata": {"name": r.target, "labels": {LABEL: suffix}}})
    # there before any webhook: the audit finds it
    client.AppsV1Api(api).create_namespaced_deployment(r.target, {
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
            "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}})
    try:
        for doc in r.docs:
            create(api, doc)
        yield r
    finally:
        CliRunner().invoke(main, ["register", "--kubeconfig", KUBECONFIG, "--delete", "--name", r.webhook])
        for doc in reversed(r.docs):
            delete(api, doc)
        client.AppsV1Api(api).delete_collection_namespaced_deployment(r.target)
        client.CustomObjectsApi(api).delete_collection_namespaced_custom_object(
            "wgpolicyk8s.io", "v1alpha2", r.target, "policyreports")
        for ns in (r.target, r.namespace):
            core.delete_namespace(ns)  # stays Terminating on a bare API server without a controller-manager


def allowed(run: Run, user: str, verb: str, group: str, resource: str, namespace: str = "", name: str = "") -> bool:
    """A SelfSubjectAccessReview made as `user` (impersonated by the test's admin)."""
    from kubernetes import client

    from admission.cluster import connect

    api = connect(KUBECONFIG).api
    api.set_default_header("Impersonate-User", user)
    attributes = {"verb": verb, "group": group, "resource": resource}
    if namespace:
        attributes["namespace"] = namespace
    if name:
        attributes["name"] = name
    review = client.AuthorizationV1Api(api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": attributes}})
    return bool(review.status.allowed)


def test_the_server_account_may_do_what_serve_register_needs_and_no_more(run: Run) -> None:
    server = run.account("admission")
    webhooks = ("validatingwebhookconfigurations", "mutatingwebhookconfigurations")
    for verb in ("get", "list", "watch"):
        assert allowed(run, server, verb, "", "namespaces")
        assert allowed(run, server, verb, "", "configmaps", run.namespace, "admission-break-glass")
    for verb in ("list", "watch"):
        assert allowed(run, server, verb, "networking.k8s.io", "networkpolicies")
    for kind in webhooks:
        for verb in ("get", "create", "patch"):
            assert allowed(run, server, verb, "admissionregistration.k8s.io", kind, name=run.webhook), (verb, kind)
    denied = [("patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", "someone-else"),
              ("delete", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", run.webhook),
              ("list", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", "", ""),
              ("list", "", "configmaps", run.namespace, ""),
              ("get", "", "secrets", run.namespace, "admission-tls"),
              ("create", "", "pods", run.target, ""),
              ("list", "apps", "deployments", "", ""),
              ("patch", "wgpolicyk8s.io", "policyreports", run.target, "admission-audit")]
    for verb, group, resource, namespace, name in denied:
        assert not allowed(run, server, verb, group, resource, namespace, name), (verb, resource, name)


def test_the_audit_account_may_list_and_write_its_reports_and_no_more(run: Run) -> None:
    from admission.audit import DEFAULT_KINDS

    auditor = run.account("admission-audit")
    plural = {"NetworkPolicy": "networkpolicies", "Ingress": "ingresses"}
    for api_version, kind in DEFAULT_KINDS:
        resource = plural.get(kind, kind.lower() + "s")
        assert allowed(run, auditor, "list", api_version.rpartition("/")[0], resource), kind
    for verb in ("create", "patch", "delete"):
        assert allowed(run, auditor, verb, "wgpolicyk8s.io", "policyreports", run.target, "admission-audit")
        assert allowed(run, auditor, verb, "openreports.io", "reports", run.target, "admission-audit")
    denied = [("patch", "wgpolicyk8s.io", "policyreports", run.target, "someone-elses-report"),
              ("get", "", "secrets", run.target, ""),
              ("patch", "admissionregistration.k8s.io", "validatingwebhookconfigurations", "", run.webhook),
              ("create", "apps", "deployments", run.target, "")]
    for verb, group, resource, namespace, name in denied:
        assert not allowed(run, auditor, verb, group, resource, namespace, name), (verb, resource, name)


def token_kubeconfig(run: Run, account: str, path: Path) -> Path:
    """A kubeconfig for a ServiceAccount: the test API server, and a token from the TokenRequest API."""
    from kubernetes import client

    token = client.CoreV1Api(admin()).create_namespaced_service_account_token(
        account, run.namespace, {"spec": {"expirationSeconds": 3600}}).status.token
    config = yaml.safe_load(Path(KUBECONFIG).read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
    cluster = next(c for c in config["clusters"] if c["name"] == context["cluster"])["cluster"]
    if "certificate-authority" in cluster:  # relative to the admin kubeconfig's folder
        cluster["certificate-authority"] = str((Path(KUBECONFIG).parent / cluster["certificate-authority"]).resolve())
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "e2e", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "e2e", "user": account}}]}))
    return path


def readyz(port: int, home: Path) -> dict[str, Any]:
    import http.client

    conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(home / "certs" / "ca.pem"))
    conn.request("GET", "/readyz")
    body: dict[str, Any] = json.loads(conn.getresponse().read())
    conn.close()
    return body


def test_serve_register_runs_as_the_server_account(run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from admission.breakglass import NAME

    kubeconfig = token_kubeconfig(run, "admission", tmp_path / "server.kubeconfig")
    monkeypatch.setenv("ADMISSION_HOME", str(tmp_path))
    assert CliRunner().invoke(main, ["certs", "init"]).exit_code == 0
    api = admin()
    core = client.CoreV1Api(api)
    registration = client.AdmissionregistrationV1Api(api)
    body = {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}

    def answer() -> str:
        """The API server's refusal, or "allowed" and its warnings."""
        try:
            _, _, headers = core.create_namespaced_pod_with_http_info(run.target, body, dry_run="All")
        except ApiException as exc:
            return str(exc.body)
        return f"allowed {headers.get('Warning', '')}"

    port = free_port()
    with serve(tmp_path, "--kubeconfig", str(kubeconfig), "--namespace", run.namespace, "--register",
               "--register-url", f"https://127.0.0.1:{port}", "--webhook-name", run.webhook,
               "--namespace-label", f"{LABEL}={run.suffix}", "--no-watch-policies", "--log-level", "info",
               port=port):
        # registered (apply creates both), with the Service replaced by this server's loopback address
        assert wait_for(lambda: bool(registration.list_validating_webhook_configuration(
            field_selector=f"metadata.name={run.webhook}").items), timeout=30)
        [hook] = registration.read_validating_webhook_configuration(run.webhook).webhooks
        assert hook.client_config.url == f"https://127.0.0.1:{port}/validate"
        assert registration.read_mutating_webhook_configuration(run.webhook).webhooks
        # its watches of Namespaces and NetworkPolicies are synced
        assert wait_for(lambda: readyz(port, tmp_path)["clusterState"] == "available", timeout=30), readyz(port, tmp_path)
        # a Pod is decided by it, through the API server
        assert wait_for(lambda: "[disallow-latest-tag]" in answer())
        # the break-glass ConfigMap, read through its name-limited watch
        core.create_namespaced_config_map(run.namespace, {"metadata": {"name": NAME}, "data": {
            "enabled": "true", "owner": "e2e-oncall", "reason": "RBAC end-to-end test",
            "expires": "2999-01-01T00:00:00Z"}})
        try:
            assert wait_for(lambda: readyz(port, tmp_path)["breakGlass"].startswith("break-glass by e2e-oncall"))
            assert wait_for(lambda: answer().startswith("allowed") and "[break-glass] would deny" in answer())
        finally:
            core.delete_namespaced_config_map(NAME, run.namespace)
        assert wait_for(lambda: readyz(port, tmp_path)["breakGlass"] == "off")
    log = (tmp_path / f"serve-{port}.log").read_text()
    assert "webhooks registered" in log
    for sign in ("Forbidden", "forbidden", "403", "registration failed"):
        assert sign not in log, log[-3000:]


def test_audit_runs_as_the_audit_account(run: Run, tmp_path: Path) -> None:
    """The CronJob's command (with -n, see above), with a token of the audit ServiceAccount."""
    from kubernetes import client

    kubeconfig = token_kubeconfig(run, "admission-audit", tmp_path / "audit.kubeconfig")
    done = subprocess.run([sys.executable, "-m", "admission", "audit", "--write-reports", "-n", run.target],
                          env={**os.environ, "KUBECONFIG": str(kubeconfig), "ADMISSION_HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr  # 1: something fails (written to the report)
    assert "Forbidden" not in done.stderr and "forbidden" not in done.stderr, done.stderr
    report = client.CustomObjectsApi(admin()).get_namespaced_custom_object(
        "wgpolicyk8s.io", "v1alpha2", run.target, "policyreports", "admission-audit")
    assert ("disallow-latest-tag", "web") in {(r["policy"], r["resources"][0]["name"]) for r in report["results"]
                                              if r["result"] == "fail"}
