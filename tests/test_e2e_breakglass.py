"""Break-glass against a real kube-apiserver: `admission serve --kubeconfig` watches the ConfigMap in its
namespace; creating it (with owner, reason and expiry) turns denials into warnings within moments, and turning
it off brings enforcement back. Reviews are posted to the server directly (no webhook registration needed).

Runs when ADMISSION_E2E_KUBECONFIG names the kubeconfig of a disposable API server (../shared/apiserver's
up.sh writes one); skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from admission.breakglass import NAME
from admission.cluster import connect
from tests.conftest import admission_review, pod
from tests.e2e import e2e_kubeconfig

HARNESS = Path(__file__).resolve().parent / "fixtures" / "server" / "harness.py"


def _harness() -> Any:
    spec = importlib.util.spec_from_file_location("e2e_breakglass_harness", HARNESS)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def kubeconfig() -> str:
    path = e2e_kubeconfig()
    return path


@pytest.fixture
def core(kubeconfig: str) -> Any:
    from kubernetes import client

    return client.CoreV1Api(connect(kubeconfig).api)


@pytest.fixture
def server_namespace(core: Any) -> Iterator[str]:
    name = f"e2e-bg-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        try:
            core.delete_namespaced_config_map(NAME, name)
        except Exception:
            pass
        core.delete_namespace(name)  # stays Terminating on an API server without a controller-manager


def until(check: Callable[[], bool], seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_the_configmap_switch_turns_enforcement_off_and_on(tmp_path: Path, kubeconfig: str, core: Any,
                                                           server_namespace: str) -> None:
    harness = _harness()
    server = harness.start(tmp_path, "--kubeconfig", kubeconfig, "--namespace", server_namespace,
                           "--no-watch-policies", fake=False)
    try:
        body = admission_review(pod(name="web", namespace="default", image="nginx:latest"))
        with server.client() as c:
            def answer() -> dict[str, Any]:
                return c.post("/validate", json=body).json()["response"]

            assert answer()["allowed"] is False
            core.create_namespaced_config_map(server_namespace, {
                "metadata": {"name": NAME},
                "data": {"enabled": "true", "owner": "e2e-oncall", "reason": "end-to-end test",
                         "expires": "2999-01-01T00:00:00Z"}})
            assert until(lambda: answer()["allowed"] is True), server.log_text()[-3000:]
            allowed = answer()
            assert all(w.startswith("[break-glass] would deny: ") for w in allowed["warnings"][:1])
            assert "break-glass by e2e-oncall" in allowed["warnings"][0]
            assert "admission_break_glass_active 1.0" in c.get("/metrics").text

            core.patch_namespaced_config_map(NAME, server_namespace, {"data": {"enabled": "false"}})
            assert until(lambda: answer()["allowed"] is False), server.log_text()[-3000:]
    finally:
        server.stop()
    log = server.log_text()
    assert "BREAK-GLASS ON" in log and "BREAK-GLASS: allowed a request the policies deny" in log
    assert "break-glass off: policies are enforced again" in log
