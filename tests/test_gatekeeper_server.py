"""The Gatekeeper guardrails behind the webhook (the real HTTPS server on a loopback port): denial messages
`[constraint] msg`, warnings, and requests answered from several threads sharing one compiled program."""

from __future__ import annotations

import copy
import threading
from pathlib import Path

from admission.engines import Context
from admission.policyset import load
from admission.review import Request
from tests.conftest import admission_review, pod
from tests.test_server import harness

GATEKEEPER = Path(__file__).resolve().parents[1] / "policies" / "gatekeeper"
LIMITS = {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}


def good_pod(namespace: str = "apps") -> dict:
    p = pod(namespace=namespace, image="registry.example.com/app:1.0")
    p["spec"]["containers"][0]["resources"] = copy.deepcopy(LIMITS)
    return p


def test_webhook_denies_and_warns_with_constraint_names(tmp_path: Path) -> None:
    server = harness.start(tmp_path, "--policies", str(GATEKEEPER), "--no-cluster", fake=False, wait=60)
    try:
        client = server.client()
        ok = client.post("/validate", json=admission_review(good_pod())).json()["response"]
        assert ok["allowed"] is True
        bad = pod(namespace="apps", image="docker.io/nginx:1")
        bad["spec"]["containers"][0]["resources"] = copy.deepcopy(LIMITS)
        denied = client.post("/validate", json=admission_review(bad)).json()["response"]
        assert denied["allowed"] is False
        assert denied["status"]["message"].startswith("[allowed-registries] container <app> uses image <docker.io/nginx:1>")
        sandbox = good_pod("team-sandbox")
        del sandbox["spec"]["containers"][0]["resources"]["limits"]["memory"]
        del sandbox["spec"]["containers"][0]["resources"]["requests"]
        response = client.post("/validate", json=admission_review(sandbox)).json()["response"]
        assert response["allowed"] is False
        assert response["warnings"] == ["[memory-limit-warning] container <app> has no memory limit"]
        client.close()
    finally:
        server.stop()


def test_threads_share_the_compiled_policies() -> None:
    engine = load([str(GATEKEEPER)])
    bad = pod(namespace="apps", image="docker.io/nginx:1")
    expected = engine.validate(Request.for_object(bad), Context()).message
    assert expected
    seen: list[str] = []

    def work() -> None:
        for _ in range(15):
            seen.append(engine.validate(Request.for_object(bad), Context()).message)
            seen.append(engine.validate(Request.for_object(good_pod()), Context()).message)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen.count(expected) == 60 and seen.count("") == 60
