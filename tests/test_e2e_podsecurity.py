"""Pod Security against a real kube-apiserver: a namespace the server's cache has not seen (just created) is
read from the API server, so its Pod Security labels apply at once; a namespace that cannot be read fails closed.

Runs when ADMISSION_E2E_KUBECONFIG names the kubeconfig of a disposable API server (../shared/apiserver's
up.sh writes one); skipped otherwise. The interplay with the API server's own PodSecurity admission needs a
second one with it on (up.sh with DISABLE_PLUGINS=ServiceAccount, other ports), named by
ADMISSION_E2E_BUILTIN_PSA_KUBECONFIG.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from admission.cluster import connect
from admission.decide import decide
from admission.engines import Context
from admission.engines.psa import PodSecurityAdmission
from admission.review import Request
from admission.state import ClusterState
from admission.watch import namespace_fetcher
from tests.e2e import E2E_ENV, e2e_kubeconfig


@pytest.fixture(scope="module")
def api_client() -> Any:
    path = e2e_kubeconfig()
    return connect(path).api


@pytest.fixture
def labelled_namespace(api_client: Any) -> Iterator[str]:
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    name = f"e2e-psa-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}})
    try:
        yield name
    finally:
        core.delete_namespace(name)  # stays Terminating on an API server without a controller-manager


def host_pod(namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "agent", "namespace": namespace},
            "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "example.com/agent:1"}]}}


def test_a_namespace_just_created_is_read_from_the_api_server(api_client: Any, labelled_namespace: str) -> None:
    state = ClusterState([], fetch_namespace=namespace_fetcher(api_client))  # a cache that has not seen it
    decision = decide(PodSecurityAdmission().validate(Request.for_object(host_pod(labelled_namespace)),
                                                      Context(state=state)))
    assert not decision.allowed
    assert 'violates PodSecurity "baseline:latest"' in decision.message and "host namespaces" in decision.message
    assert state.get("Namespace", labelled_namespace) is not None  # kept for the next request


def test_a_namespace_that_does_not_exist_has_no_labels(api_client: Any) -> None:
    state = ClusterState([], fetch_namespace=namespace_fetcher(api_client))
    name = f"e2e-psa-absent-{uuid.uuid4().hex[:8]}"
    assert PodSecurityAdmission().validate(Request.for_object(host_pod(name)), Context(state=state)) == []


def test_an_unreachable_api_server_fails_closed(api_client: Any) -> None:
    from kubernetes import client

    configuration = client.Configuration()
    configuration.host = "https://127.0.0.1:1"  # nothing listens there
    configuration.retries = 0
    state = ClusterState([], fetch_namespace=namespace_fetcher(client.ApiClient(configuration), timeout=1))
    decision = decide(PodSecurityAdmission().validate(Request.for_object(host_pod("team")), Context(state=state)))
    assert not decision.allowed and "cannot read the Pod Security labels of namespace team" in decision.message


def test_the_webhook_enforces_the_namespace_labels_through_the_api_server(api_client: Any, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With the API server's built-in PodSecurity admission off (as on the test API server, or for a namespace
    listed in its exemptions), our webhook enforces the namespace's `enforce` label and answers its `warn`
    label with warnings, and a PodSecurityException relaxes what it covers: all through the API server.
    Only the Pod Security evaluator and the exception are loaded (no other policy), and the webhook
    configuration selects only this test's namespace."""
    import yaml
    from click.testing import CliRunner
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from admission.cli import main

    from .serving import serve

    kubeconfig = os.environ[E2E_ENV]
    run = uuid.uuid4().hex[:8]
    namespace, name, scope = f"e2e-psa-webhook-{run}", f"admission-e2e-psa-{run}", f"admission.dev/e2e-psa={run}"
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "exception.yaml").write_text(yaml.safe_dump({
        "apiVersion": "admission.dev/v1", "kind": "PodSecurityException",
        "metadata": {"name": "node-agent", "namespace": namespace},
        "spec": {"match": {"kinds": ["Pod"], "names": ["node-agent*"]}, "controls": ["hostNamespaces"],
                 "owner": "team-observability", "reason": "reads node metrics from the host",
                 "expires": "2999-03-31"}}))
    core = client.CoreV1Api(api_client)
    core.create_namespace({"metadata": {"name": namespace, "labels": {
        "pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted",
        "admission.dev/e2e-psa": run}}})
    monkeypatch.setenv("ADMISSION_HOME", str(tmp_path))
    assert CliRunner().invoke(main, ["certs", "init"]).exit_code == 0

    def create(pod_name: str, host_network: bool) -> tuple[int, str]:
        """(HTTP status, the refusal or the warnings) of a server-side dry-run creation."""
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "example.com/agent:1"}]}
        if host_network:
            spec["hostNetwork"] = True
        try:
            _, status, headers = core.create_namespaced_pod_with_http_info(
                namespace, {"metadata": {"name": pod_name}, "spec": spec}, dry_run="All")
        except ApiException as exc:
            return exc.status, str(exc.body)
        return status, str(headers.get("Warning", ""))

    try:
        status, message = create("web", host_network=True)
        assert status == 201, "the API server's own PodSecurity admission is on: this test needs it off"
        with serve(tmp_path, "--kubeconfig", kubeconfig, "--policies", str(policies), "--no-watch-policies",
                   "--log-level", "warning") as (port, _):
            result = CliRunner().invoke(main, ["register", "--kubeconfig", kubeconfig, "--url",
                                               f"https://127.0.0.1:{port}", "--name", name, "--namespace-label",
                                               scope, "--policies", str(policies)])
            assert result.exit_code == 0, result.output
            deadline = time.monotonic() + 20
            while (status := create("web", host_network=True)[0]) != 403 and time.monotonic() < deadline:
                time.sleep(0.2)
            status, message = create("web", host_network=True)
            assert status == 403, message
            assert "admission webhook" in message and "denied the request" in message  # ours, not the built-in
            assert 'violates PodSecurity \\"baseline:latest\\"' in message and "host namespaces" in message
            # the exception covers node-agent* for hostNamespaces: admitted, and `warn: restricted` still warns
            status, warnings = create("node-agent-1", host_network=True)
            assert status == 201, warnings
            # (a Warning header is a quoted string: its quotes come escaped)
            assert '[pod-security-admission/warn] violates PodSecurity \\"restricted:latest\\"' in warnings
            # baseline is met: admitted, with the restricted level's warnings
            status, warnings = create("plain", host_network=False)
            assert status == 201, warnings
            assert '[pod-security-admission/warn] violates PodSecurity \\"restricted:latest\\"' in warnings
            assert "host namespaces" not in warnings
    finally:
        CliRunner().invoke(main, ["register", "--kubeconfig", kubeconfig, "--delete", "--name", name])
        core.delete_namespace(namespace)  # stays Terminating on an API server without a controller-manager


BUILTIN_ENV = "ADMISSION_E2E_BUILTIN_PSA_KUBECONFIG"


def test_with_the_built_in_admission_on_an_exception_cannot_relax_it(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's warning, shown on an API server whose own PodSecurity admission is on (../shared/apiserver's
    up.sh with DISABLE_PLUGINS=ServiceAccount; its kubeconfig in ADMISSION_E2E_BUILTIN_PSA_KUBECONFIG): our
    webhook is called and admits the host-network Pod its PodSecurityException covers, and the API server's
    own admission still rejects it for the namespace's `enforce: baseline` label. A Pod that meets baseline
    passes both, with our warnings for `warn: restricted`."""
    kubeconfig = os.environ.get(BUILTIN_ENV, "")
    if not kubeconfig or not Path(kubeconfig).is_file():
        pytest.skip(f"{BUILTIN_ENV} does not name the kubeconfig of an API server with its built-in PodSecurity "
                    "admission on (../shared/apiserver/up.sh with DISABLE_PLUGINS=ServiceAccount)")
    import yaml
    from click.testing import CliRunner
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from admission.cli import main

    from .serving import serve

    run = uuid.uuid4().hex[:8]
    namespace, name, scope = f"e2e-builtin-psa-{run}", f"admission-e2e-builtin-psa-{run}", f"admission.dev/e2e-psa={run}"
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "exception.yaml").write_text(yaml.safe_dump({
        "apiVersion": "admission.dev/v1", "kind": "PodSecurityException",
        "metadata": {"name": "node-agent", "namespace": namespace},
        "spec": {"match": {"kinds": ["Pod"], "names": ["node-agent*"]}, "controls": ["hostNamespaces"],
                 "owner": "team-observability", "reason": "reads node metrics from the host",
                 "expires": "2999-03-31"}}))
    core = client.CoreV1Api(connect(kubeconfig).api)
    core.create_namespace({"metadata": {"name": namespace, "labels": {
        "pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/warn": "restricted",
        "admission.dev/e2e-psa": run}}})
    monkeypatch.setenv("ADMISSION_HOME", str(tmp_path))
    assert CliRunner().invoke(main, ["certs", "init"]).exit_code == 0

    def create(pod_name: str, host_network: bool) -> tuple[int, str]:
        spec: dict[str, Any] = {"containers": [{"name": "c", "image": "example.com/agent:1"}]}
        if host_network:
            spec["hostNetwork"] = True
        try:
            _, status, headers = core.create_namespaced_pod_with_http_info(
                namespace, {"metadata": {"name": pod_name}, "spec": spec}, dry_run="All")
        except ApiException as exc:
            return exc.status, str(exc.body)
        return status, str(headers.get("Warning", ""))

    ours = '[pod-security-admission/warn] violates PodSecurity \\"restricted:latest\\"'
    try:
        status, message = create("node-agent-1", host_network=True)
        assert status == 403 and "violates PodSecurity" in message, "this test needs the built-in admission on"
        with serve(tmp_path, "--kubeconfig", kubeconfig, "--policies", str(policies), "--no-watch-policies",
                   "--log-level", "warning") as (port, _):
            result = CliRunner().invoke(main, ["register", "--kubeconfig", kubeconfig, "--url",
                                               f"https://127.0.0.1:{port}", "--name", name, "--namespace-label",
                                               scope, "--policies", str(policies)])
            assert result.exit_code == 0, result.output
            deadline = time.monotonic() + 20
            while ours not in (warnings := create("plain", host_network=False)[1]) and time.monotonic() < deadline:
                time.sleep(0.2)
            status, warnings = create("plain", host_network=False)
            assert status == 201 and ours in warnings, warnings  # our webhook is called
            # our webhook, asked directly, admits the Pod its exception covers
            import http.client
            import json

            from .serving import client_context

            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "node-agent-1", "namespace": namespace},
                   "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "example.com/agent:1"}]}}
            review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
                "uid": "1", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "CREATE",
                "namespace": namespace, "name": "node-agent-1", "userInfo": {"username": "alice"}, "object": pod}}
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(tmp_path / "certs" / "ca.pem"))
            conn.request("POST", "/validate", body=json.dumps(review), headers={"Content-Type": "application/json"})
            answer = json.loads(conn.getresponse().read())["response"]
            conn.close()
            assert answer["allowed"] is True, answer
            status, message = create("node-agent-1", host_network=True)
            assert status == 403, message  # ... and the API server's own admission rejects it all the same
            assert "admission webhook" not in message, message
            assert 'violates PodSecurity \\"baseline:latest\\"' in message and "host namespaces" in message
    finally:
        CliRunner().invoke(main, ["register", "--kubeconfig", kubeconfig, "--delete", "--name", name])
        core.delete_namespace(namespace)
