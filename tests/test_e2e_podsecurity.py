"""Pod Security against a real kube-apiserver: a namespace the server's cache has not seen (just created) is
read from the API server, so its Pod Security labels apply at once; a namespace that cannot be read fails closed.

Runs when ADMISSION_E2E_KUBECONFIG names the kubeconfig of a disposable API server (../shared/apiserver's
up.sh writes one); skipped otherwise.
"""

from __future__ import annotations

import os
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

E2E_ENV = "ADMISSION_E2E_KUBECONFIG"


@pytest.fixture(scope="module")
def api_client() -> Any:
    path = os.environ.get(E2E_ENV, "")
    if not path:
        pytest.skip(f"{E2E_ENV} is not set: no API server to run end-to-end tests against "
                    "(../shared/apiserver/up.sh starts one and prints its kubeconfig)")
    if not Path(path).is_file():
        pytest.skip(f"{E2E_ENV}={path} does not exist (is the API server up?)")
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
