"""End to end, against a real kube-apiserver: `admission register --url` with the caBundle, a Pod that
violates a built-in policy denied through the API server, certificates rotated while the API server keeps
calling (no failed admission), `serve --register` following a policy reload, and `--delete`.

Set ADMISSION_E2E_KUBECONFIG to the kubeconfig of a disposable API server (../shared/apiserver/ starts one
on loopback); without it these tests skip. The server under test runs on this machine, on a loopback port,
and the API server reaches it through `clientConfig.url`. Every webhook configuration here is scoped to
namespaces carrying a label of this test run, so nothing else on that API server is affected; everything
created is deleted again. The namespace has a name of this run too (two checkouts may run these tests
against the same API server at once); it is deleted at the end, and stays Terminating on a bare API server
without a controller-manager.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from admission.cli import main

from .serving import fingerprint, free_port, serve, wait_for

ENV = "ADMISSION_E2E_KUBECONFIG"
KUBECONFIG = os.environ.get(ENV, "")
pytestmark = pytest.mark.skipif(not KUBECONFIG, reason=f"no API server for end-to-end tests: set {ENV} to its kubeconfig "
                                                      "(../shared/apiserver/up.sh starts one)")
LABEL = "admission.dev/e2e-register"


def api() -> Any:
    from admission.cluster import connect

    return connect(KUBECONFIG).api


def core() -> Any:
    from kubernetes import client

    return client.CoreV1Api(api())


def ensure_namespace(name: str, run: str) -> None:
    from kubernetes.client.exceptions import ApiException

    body = {"metadata": {"name": name, "labels": {LABEL: run}}}
    try:
        core().create_namespace(body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        core().patch_namespace(name, body)


def pod(name: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image,
                                     "securityContext": {"allowPrivilegeEscalation": False}}]}}


def create_pod(namespace: str, body: dict[str, Any], *, dry_run: bool = False) -> Any:
    return core().create_namespaced_pod(namespace, body, dry_run="All" if dry_run else None)


def register(*args: str) -> Any:
    result = CliRunner().invoke(main, ["register", "--kubeconfig", KUBECONFIG, *args])
    assert result.exit_code == 0, result.output
    return result


def configuration(kind: str, name: str) -> dict[str, Any] | None:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    admission = client.AdmissionregistrationV1Api(api())
    read = (admission.read_validating_webhook_configuration if kind == "validating"
            else admission.read_mutating_webhook_configuration)
    try:
        return api().sanitize_for_serialization(read(name))  # type: ignore[no-any-return]
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADMISSION_HOME", str(tmp_path))
    assert CliRunner().invoke(main, ["certs", "init"]).exit_code == 0
    return tmp_path


@pytest.fixture(scope="module")
def module_namespace() -> Iterator[str]:
    """The namespace of this module's run, deleted at the end."""
    name = f"admission-e2e-register-{uuid.uuid4().hex[:8]}"
    ensure_namespace(name, "")
    yield name
    core().delete_namespace(name)


@pytest.fixture
def namespace(run_id: str, module_namespace: str) -> Iterator[str]:
    """A namespace the test's webhooks select (its label names the test), with a NetworkPolicy for every Pod
    (require-network-policy is then met); emptied again afterwards."""
    from kubernetes import client

    name = module_namespace
    ensure_namespace(name, run_id)
    net = client.NetworkingV1Api(api())
    policy = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "all"},
              "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}
    try:
        net.create_namespaced_network_policy(name, policy)
    except client.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
    yield name
    core().delete_collection_namespaced_pod(name)
    net.delete_collection_namespaced_network_policy(name)


@pytest.fixture
def registered(home: Path, run_id: str, namespace: str) -> Iterator[tuple[int, str]]:
    """The server on a loopback port, watching the API server, registered by `admission register --url`."""
    name = f"admission-e2e-{run_id}"
    with serve(home, "--kubeconfig", KUBECONFIG, "--no-watch-policies", "--log-level", "warning") as (port, _):
        try:
            register("--url", f"https://127.0.0.1:{port}", "--name", name, "--namespace-label", f"{LABEL}={run_id}")
            yield port, name
        finally:
            CliRunner().invoke(main, ["register", "--kubeconfig", KUBECONFIG, "--delete", "--name", name])


def denied(namespace: str, body: dict[str, Any], *, dry_run: bool = False) -> str:
    """The API server's refusal message ("" when the Pod was admitted)."""
    from kubernetes.client.exceptions import ApiException

    try:
        create_pod(namespace, body, dry_run=dry_run)
    except ApiException as exc:
        assert exc.status == 403, exc
        return str(exc.body)
    return ""


def test_register_url_denies_a_violating_pod_through_the_api_server(registered: tuple[int, str],
                                                                    namespace: str, home: Path) -> None:
    import base64

    port, name = registered
    validating = configuration("validating", name)
    assert validating is not None
    [hook] = validating["webhooks"]
    assert hook["clientConfig"]["url"] == f"https://127.0.0.1:{port}/validate"
    assert base64.b64decode(hook["clientConfig"]["caBundle"]) == (home / "certs" / "ca.pem").read_bytes()
    assert {"admission", "kube-system"} <= set(hook["namespaceSelector"]["matchExpressions"][0]["values"])

    message = denied(namespace, pod("bad", "nginx"))
    assert f'admission webhook \\"{hook["name"]}\\" denied the request' in message
    assert "[disallow-latest-tag]" in message and "[disallow-public-registries/allowed-registries]" in message
    # a compliant Pod is admitted, and mutated on the way (add-default-resources fills in resources); the
    # server's cluster state must have seen the namespace's NetworkPolicy first
    assert wait_for(lambda: denied(namespace, pod("good", "registry.example.com/app:1.0"), dry_run=True) == "")
    created = create_pod(namespace, pod("good", "registry.example.com/app:1.0"))
    assert created.spec.containers[0].resources.limits["memory"]


def test_rotation_while_the_api_server_keeps_calling(registered: tuple[int, str], namespace: str,
                                                     home: Path) -> None:
    """Server-side dry-run creations (the API server calls both webhooks for them) in a loop while the serving
    certificate and then the CA rotate; the CA rotation patches caBundle through the API."""
    port, name = registered
    assert wait_for(lambda: denied(namespace, pod("good", "registry.example.com/app:1.0"), dry_run=True) == "")
    sent, failed = 0, []
    stop = threading.Event()

    def call() -> None:
        nonlocal sent
        while not stop.is_set():
            sent += 1
            try:
                message = denied(namespace, pod(f"p{sent}", "registry.example.com/app:1.0"), dry_run=True)
                if message:
                    failed.append(message)
                bad = denied(namespace, pod(f"b{sent}", "nginx"), dry_run=True)
                if "[disallow-latest-tag]" not in bad:  # still decided by our server, not by a failure policy
                    failed.append(bad or "a violating Pod was admitted")
            except Exception as exc:
                failed.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=call, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        before = fingerprint(home / "certs" / "tls.pem")
        runner = CliRunner()
        result = runner.invoke(main, ["certs", "rotate", "--kubeconfig", KUBECONFIG, "--name", name])
        assert result.exit_code == 0, result.output
        time.sleep(3)
        result = runner.invoke(main, ["certs", "rotate", "--ca", "--kubeconfig", KUBECONFIG, "--name", name,
                                      "--wait", "3"])
        assert result.exit_code == 0, result.output
        assert "ValidatingWebhookConfiguration/" + name + ": caBundle patched" in result.output
        assert fingerprint(home / "certs" / "tls.pem") != before
        time.sleep(4)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    print(f"rotation while the API server calls: {sent} rounds (2 admission requests each, 2 webhooks), "
          f"{len(failed)} failed")
    assert failed == []
    assert sent > 10
    import base64

    validating = configuration("validating", name)
    assert validating is not None
    bundle = base64.b64decode(validating["webhooks"][0]["clientConfig"]["caBundle"])
    assert bundle == (home / "certs" / "ca.pem").read_bytes() and bundle.count(b"BEGIN CERTIFICATE") == 2


def test_serve_register_follows_a_policy_reload_and_delete_removes_it(home: Path, run_id: str,
                                                                      namespace: str, tmp_path: Path) -> None:
    from admission.policyset import builtin_policies

    name = f"admission-e2e-{run_id}"
    site = tmp_path / "site"
    site.mkdir()
    (site / "placeholder.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "team-label"},
        "spec": {"validationFailureAction": "Audit", "rules": [{
            "name": "team", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
            "validate": {"message": "a team label", "pattern": {"metadata": {"labels": {"team": "?*"}}}}}]}}))
    port = free_port()
    try:
        with serve(home, "--kubeconfig", KUBECONFIG, "--policies", str(builtin_policies()), "--policies", str(site),
                   "--register", "--register-url", f"https://127.0.0.1:{port}", "--webhook-name", name,
                   "--namespace-label", f"{LABEL}={run_id}", "--log-level", "warning", port=port):
            def resources() -> set[str]:
                found = configuration("validating", name)
                return {r for h in (found or {}).get("webhooks") or [] for rule in h["rules"] for r in rule["resources"]}

            assert wait_for(lambda: "pods" in resources())
            assert "configmaps" not in resources()
            hook = (configuration("validating", name) or {})["webhooks"][0]
            assert hook["clientConfig"]["url"] == f"https://127.0.0.1:{port}/validate"
            (site / "configmaps.yaml").write_text(yaml.safe_dump({
                "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "cm-owner"},
                "spec": {"validationFailureAction": "Enforce", "rules": [{
                    "name": "owner", "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]},
                    "validate": {"message": "an owner label",
                                 "pattern": {"metadata": {"labels": {"owner": "?*"}}}}}]}}))
            assert wait_for(lambda: "configmaps" in resources(), timeout=30), "the reload did not re-register"
            from kubernetes.client.exceptions import ApiException

            with pytest.raises(ApiException, match="an owner label"):
                core().create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}}, dry_run="All")
    finally:
        result = CliRunner().invoke(main, ["register", "--kubeconfig", KUBECONFIG, "--delete", "--name", name])
    assert result.exit_code == 0, result.output
    assert "deleted" in result.output
    assert configuration("validating", name) is None and configuration("mutating", name) is None


def test_serve_register_follows_a_new_ca_bundle_without_a_policy_reload(home: Path, run_id: str) -> None:
    """A CA renewed behind the server's back (a Secret updated by another tool; here the files rotated with no
    cluster access) reaches caBundle from serve --register itself, with the policies unchanged."""
    import base64

    from admission import certs

    name = f"admission-e2e-ca-{run_id}"
    port = free_port()
    try:
        with serve(home, "--kubeconfig", KUBECONFIG, "--register", "--register-url", f"https://127.0.0.1:{port}",
                   "--webhook-name", name, "--namespace-label", f"{LABEL}={run_id}", "--log-level", "warning",
                   port=port):
            def ca_bundle() -> bytes:
                found = configuration("validating", name) or {}
                hooks = found.get("webhooks") or []
                return base64.b64decode(hooks[0]["clientConfig"]["caBundle"]) if hooks else b""

            before = (home / "certs" / "ca.pem").read_bytes()
            assert wait_for(lambda: ca_bundle() == before)
            certs.rotate(home / "certs", ca=True)  # no before_serving hook: nothing told the cluster
            after = (home / "certs" / "ca.pem").read_bytes()
            assert after != before
            assert wait_for(lambda: ca_bundle() == after, timeout=30), "caBundle did not follow the new CA"
    finally:
        CliRunner().invoke(main, ["register", "--kubeconfig", KUBECONFIG, "--delete", "--name", name])
    assert configuration("validating", name) is None


def test_the_api_server_accepts_the_built_in_and_gatekeeper_registrations(tmp_path: Path, home: Path) -> None:
    """Server-side dry-run applies: the API server validates every field (names, rules, CEL) and stores nothing."""
    from admission.engines import PolicyInfo, Skips, Target
    from admission.policyset import builtin_policies, load
    from admission.register import apply
    from admission.webhooks import Registration

    from .test_register import GATEKEEPER_LIBRARY, gatekeeper_set

    reg = Registration(name="admission-e2e-dry-run", url="https://127.0.0.1:1",
                       ca_bundle=(home / "certs" / "ca.pem").read_bytes())
    sets = [load([builtin_policies()]).policies()]
    if GATEKEEPER_LIBRARY.is_dir():
        sets.append(load([gatekeeper_set(tmp_path / "gk")]).policies())
    target = (Target("validate", "", "v1", "ConfigMap"),)
    sets.append([PolicyInfo("a", "rego", "a:1", targets=target, failure_policy="Ignore", timeout_seconds=5,
                            skips=Skips(frozenset({"ci-bot"}), frozenset({"ops:oncall"}), frozenset({"legacy"})))])
    for infos in sets:
        done = apply(api(), infos, reg, server_dry_run=True)
        assert len(done) == 2
    assert configuration("validating", reg.name) is None  # dry run: nothing stored


def validate_calls(port: int, home: Path, counter: str = "^admission_(?:dry_run_)?reviews_total") -> float:
    """How many reviews the server has answered on /validate (its /metrics): dry-run decisions are counted in
    admission_dry_run_reviews_total, the others in admission_reviews_total; both by default."""
    import http.client
    import re

    from .serving import client_context

    conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(home / "certs" / "ca.pem"))
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return sum(float(m.group(1)) for m in re.finditer(counter + r'\{[^}]*endpoint="validate"[^}]*\} (\S+)',
                                                      text, re.M))


def test_match_conditions_spare_the_server_the_excluded_users(home: Path, run_id: str, namespace: str,
                                                              tmp_path: Path) -> None:
    """A ConfigMap policy excluding a user and a group: their requests never reach the server (the API
    server's matchConditions), everybody else's are decided by it, and Pods still go to it for everyone."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    policy = tmp_path / "cm-owner.yaml"
    policy.write_text(yaml.safe_dump({
        "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "cm-owner"},
        "spec": {"validationFailureAction": "Enforce", "rules": [{
            "name": "owner", "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]},
            "exclude": {"any": [{"subjects": [{"kind": "User", "name": "ci-bot"},
                                              {"kind": "Group", "name": "ops:oncall"}]}]},
            "validate": {"message": "an owner label", "pattern": {"metadata": {"labels": {"owner": "?*"}}}}}]}}))
    rbac = client.RbacAuthorizationV1Api(api())
    # a Role of its own: the built-in `edit` gets its rules from an aggregation controller a bare API server
    # does not run
    role = {"metadata": {"name": f"admission-e2e-{run_id}"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps", "pods"], "verbs": ["create"]}]}
    rbac.create_namespaced_role(namespace, role)
    binding = {"metadata": {"name": f"admission-e2e-{run_id}"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": n}
                            for n in ("alice", "ci-bot", "bob")]
               + [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops:oncall"}]}
    rbac.create_namespaced_role_binding(namespace, binding)
    name = f"admission-e2e-{run_id}"

    def as_user(user: str, *groups: str) -> Any:
        from admission.cluster import connect

        impersonating = connect(KUBECONFIG).api
        impersonating.set_default_header("Impersonate-User", user)
        for g in groups:  # the client sends one value per header name: one group is enough here
            impersonating.set_default_header("Impersonate-Group", g)
        return client.CoreV1Api(impersonating)

    def configmap(user: str, *groups: str) -> str:
        try:
            as_user(user, *groups).create_namespaced_config_map(namespace, {"metadata": {"name": "cm"}},
                                                               dry_run="All")
        except ApiException as exc:
            return str(exc.body)
        return ""

    try:
        with serve(home, "--kubeconfig", KUBECONFIG, "--policies", str(policy), "--no-watch-policies",
                   "--log-level", "warning") as (port, _):
            register("--url", f"https://127.0.0.1:{port}", "--name", name, "--namespace-label",
                     f"{LABEL}={run_id}", "--policies", str(policy))
            [hook] = (configuration("validating", name) or {})["webhooks"]
            assert [c["name"] for c in hook["matchConditions"]] == ["some-policy-applies"]
            assert wait_for(lambda: "an owner label" in configmap("alice"))
            before = validate_calls(port, home)
            assert "an owner label" in configmap("alice")
            assert wait_for(lambda: validate_calls(port, home) == before + 1, timeout=5)
            before += 1
            # these were all dry-run requests: none of them counts as a decision that changed the cluster
            assert validate_calls(port, home, "^admission_reviews_total") == 0
            assert configmap("ci-bot") == "" and configmap("bob", "ops:oncall") == ""
            time.sleep(1.5)  # the server flushes its counters every second
            assert validate_calls(port, home) == before  # neither reached the server
            assert "an owner label" in configmap("bob")
            # Pods still go to the server for every user (namespace-label Pod Security excludes no one)
            time.sleep(1.5)
            before = validate_calls(port, home)
            as_user("ci-bot").create_namespaced_pod(namespace, pod("p", "registry.example.com/app:1.0"),
                                                    dry_run="All")
            assert wait_for(lambda: validate_calls(port, home) == before + 1, timeout=5)
    finally:
        CliRunner().invoke(main, ["register", "--kubeconfig", KUBECONFIG, "--delete", "--name", name])
        rbac.delete_namespaced_role_binding(binding["metadata"]["name"], namespace)
        rbac.delete_namespaced_role(role["metadata"]["name"], namespace)
