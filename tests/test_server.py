"""The webhook server over real HTTPS (uvicorn, TLS with generated certificates), and its app in-process.

The policies here are the fake dialect of tests/fixtures/server/fake_server.py, so these tests pin the
server's own behaviour (protocol, errors, deadlines, reload, metrics, logs) independently of the real dialects.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import shutil
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from admission.patch import apply
from admission.server import Settings, create_app
from admission.state import ClusterState
from tests.conftest import admission_review, pod

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "server"


def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"server_fixture_{name}", FIXTURES / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


harness = _module("harness")
fake = _module("fake_server")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("server")
    policies = tmp / "policies"
    shutil.copytree(FIXTURES / "policies", policies)
    srv = harness.start(tmp, "--policies", str(policies), "--no-cluster", "--max-body-bytes", "65536",
                        "--timeout", "2")
    srv.policies = policies
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def review(client: httpx.Client, endpoint: str, obj: dict[str, Any], **kw: Any) -> dict[str, Any]:
    body = admission_review(obj, **kw)
    r = client.post(f"/{endpoint}", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["response"]["uid"] == body["request"]["uid"]
    return out


def test_allows_a_compliant_pod(client: httpx.Client) -> None:
    out = review(client, "validate", pod(image="registry.example.com/app:1.0"))
    assert out["apiVersion"] == "admission.k8s.io/v1" and out["kind"] == "AdmissionReview"
    assert out["response"]["allowed"] is True
    assert "status" not in out["response"] and "warnings" not in out["response"]


def test_denies_with_policy_and_rule_in_message(client: httpx.Client) -> None:
    out = review(client, "validate", pod(image="nginx:latest"))
    resp = out["response"]
    assert resp["allowed"] is False
    assert resp["status"]["code"] == 403
    assert resp["status"]["message"] == "[no-latest/check] image nginx:latest is not allowed"


def test_audit_failures_become_warnings(client: httpx.Client) -> None:
    out = review(client, "validate", pod(image="busybox:1.36"))
    assert out["response"]["allowed"] is True
    assert out["response"]["warnings"] == ["[audit-busybox/check] image busybox:1.36 is not allowed"]


def test_mutate_returns_a_base64_jsonpatch(client: httpx.Client) -> None:
    out = review(client, "mutate", pod(image="nginx:latest"))  # mutate does not validate
    resp = out["response"]
    assert resp["allowed"] is True and resp["patchType"] == "JSONPatch"
    ops = json.loads(base64.b64decode(resp["patch"]))
    assert sorted((o["op"], o["path"], o["value"]) for o in ops) == [
        ("add", "/metadata/labels/team", "core"), ("add", "/metadata/labels/tier", "web"),
    ]


def test_mutate_without_change_has_no_patch(client: httpx.Client) -> None:
    already = pod()
    already["metadata"]["labels"].update({"team": "core", "tier": "web"})
    resp = review(client, "mutate", already)["response"]
    assert resp["allowed"] is True and "patch" not in resp and "patchType" not in resp


def test_v1beta1_is_answered_in_v1beta1(client: httpx.Client) -> None:
    out = review(client, "validate", pod(image="nginx:latest"), api_version="admission.k8s.io/v1beta1")
    assert out["apiVersion"] == "admission.k8s.io/v1beta1"
    assert out["response"]["allowed"] is False


@pytest.mark.parametrize(("body", "words"), [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (json.dumps({**admission_review(pod()), "kind": "Pod"}).encode(), "kind must be AdmissionReview"),
    (json.dumps({**admission_review(pod()), "apiVersion": "admission.k8s.io/v2"}).encode(), "apiVersion must be"),
])
def test_bad_bodies_are_400_with_a_message(client: httpx.Client, body: bytes, words: str) -> None:
    r = client.post("/validate", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert words in r.json()["error"]


def test_deeply_nested_json_is_400_not_a_crash(client: httpx.Client) -> None:
    r = client.post("/validate", content=b"[" * 50000)
    assert r.status_code == 400 and "nested more than 100 levels" in r.json()["error"]


def test_missing_uid_is_400(client: httpx.Client) -> None:
    body = admission_review(pod())
    del body["request"]["uid"]
    r = client.post("/mutate", json=body)
    assert r.status_code == 400 and "request.uid" in r.json()["error"]


def test_oversized_body_is_413_by_content_length(client: httpx.Client) -> None:
    r = client.post("/validate", content=b"x" * 70000)
    assert r.status_code == 413 and "limit of 65536" in r.json()["error"]


def test_oversized_chunked_body_is_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"y" * 4096

    r = client.post("/validate", content=chunks())  # no Content-Length: sent chunked
    assert r.status_code == 413 and "over the limit" in r.json()["error"]


def test_unknown_path_and_method_are_json_errors(client: httpx.Client) -> None:
    assert client.get("/nope").status_code == 404
    r = client.get("/validate")
    assert r.status_code == 405 and "error" in r.json()


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"ok": True}
    review(client, "validate", pod())
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and body["policies"] == 3
    assert body["clusterState"].startswith("unavailable: cluster state disabled")
    assert set(body["evaluations"]) == {"inline", "thread"} and sum(body["evaluations"].values()) >= 1


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls_1_1_is_refused(server: Any) -> None:
    ctx = ssl.create_default_context(cafile=str(server.ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=ctx) as c:
        c.get(f"{server.url}/healthz")
    ok = ssl.create_default_context(cafile=str(server.ca))
    ok.maximum_version = ssl.TLSVersion.TLSv1_2
    with httpx.Client(verify=ok) as c:
        assert c.get(f"{server.url}/healthz").status_code == 200


def test_metrics_count_requests_decisions_and_latency(client: httpx.Client) -> None:
    review(client, "validate", pod(image="nginx:latest"))
    text = client.get("/metrics").text
    assert 'admission_requests_total{code="200",endpoint="validate"}' in text
    assert 'admission_requests_total{code="400",endpoint="validate"}' in text
    assert 'admission_reviews_total{decision="denied",endpoint="validate"}' in text
    assert 'admission_rule_results_total{policy="no-latest",result="fail",rule="check"}' in text
    assert 'admission_request_duration_seconds_bucket{endpoint="validate",le="0.005"}' in text


def test_one_json_log_line_per_decision(server: Any, client: httpx.Client) -> None:
    out = review(client, "validate", pod(name="logged", namespace="team-a", image="nginx:latest"))
    uid = out["response"]["uid"]
    lines: list[dict[str, Any]] = []
    for _ in range(50):
        lines = [json.loads(line) for line in server.log_text().splitlines() if uid in line]
        if lines:
            break
        time.sleep(0.05)
    assert len(lines) == 1
    entry = lines[0]
    assert entry["msg"] == "decision" and entry["decision"] == "denied"
    assert (entry["kind"], entry["namespace"], entry["name"], entry["operation"], entry["user"]) == (
        "Pod", "team-a", "logged", "CREATE", "alice")
    assert entry["failing"] == ["no-latest/check"] and entry["warnings"] == 0
    assert isinstance(entry["duration_ms"], float)


def _wait_for(predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_reload_keeps_last_good_set_then_picks_up_a_fixed_file(server: Any, client: httpx.Client) -> None:
    """Runs last in this module: it changes the policies the server has loaded."""
    before = client.get("/readyz").json()["generation"]
    broken = server.policies / "broken.yaml"
    broken.write_text("kind: FakePolicy\nmetadata: {name: ok}\n---\nkind: FakePolicy\nspec: {}\n")
    assert _wait_for(lambda: "lastReloadError" in client.get("/readyz").json())
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert f"{broken}:4" in ready.json()["lastReloadError"]  # file:line of the bad document
    assert review(client, "validate", pod(image="nginx:latest"))["response"]["allowed"] is False
    assert review(client, "validate", pod(image="registry.example.com/redis:7"))["response"]["allowed"] is True

    broken.write_text("kind: FakePolicy\nmetadata: {name: no-redis}\nspec: {denyImage: redis}\n")
    assert _wait_for(lambda: client.get("/readyz").json()["generation"] > before
                     and "lastReloadError" not in client.get("/readyz").json())
    resp = review(client, "validate", pod(image="registry.example.com/redis:7"))["response"]
    assert resp["allowed"] is False and "[no-redis/check]" in resp["status"]["message"]
    assert "policy load failed" in server.log_text()


def test_sighup_reloads_a_single_worker_server_over_plain_http(tmp_path: Path) -> None:
    """--insecure-http serves plain HTTP (behind a TLS proxy); SIGHUP reloads without file watching."""
    import signal

    policies = tmp_path / "policies"
    shutil.copytree(FIXTURES / "policies", policies)
    srv = harness.start(tmp_path, "--policies", str(policies), "--no-cluster", "--insecure-http",
                        "--no-watch-policies")
    try:
        assert srv.url.startswith("http://") and not srv.ca.exists()
        with srv.client() as c:
            redis = pod(image="registry.example.com/redis:7")
            assert review(c, "validate", redis)["response"]["allowed"] is True
            (policies / "redis.yaml").write_text("kind: FakePolicy\nmetadata: {name: no-redis}\n"
                                                 "spec: {denyImage: redis}\n")
            time.sleep(0.5)
            assert review(c, "validate", redis)["response"]["allowed"] is True  # not watching: unchanged
            srv.proc.send_signal(signal.SIGHUP)
            assert _wait_for(lambda: c.get("/readyz").json()["generation"] == 2)
            assert review(c, "validate", redis)["response"]["allowed"] is False
    finally:
        srv.stop()


# --- in-process: deadlines, crashes, readiness ------------------------------------------------------------------


def _asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def test_deadline_denies_without_blocking_the_event_loop() -> None:
    engine = fake.engine({"name": "slow", "denyImage": "nothing-matches", "sleep": 1.0})
    app = create_app(Settings(timeout_seconds=0.2), engine=engine, state=ClusterState())

    async def scenario() -> list[tuple[httpx.Response, float, float]]:
        out = []
        async with _asgi_client(app) as c:
            for _ in range(3):  # every slow evaluation stays off the event loop, not just the first
                start = time.monotonic()
                slow = asyncio.create_task(c.post("/validate", json=admission_review(pod())))
                await asyncio.sleep(0.05)
                health = await c.get("/healthz")
                health_at = time.monotonic() - start
                assert health.status_code == 200
                out.append((await slow, health_at, time.monotonic() - start))
        return out

    for resp, health_at, total in asyncio.run(scenario()):
        assert health_at < 0.2  # answered while the slow evaluation was still running
        assert total < 0.9  # the deadline answered, not the 1 s evaluation
        out = resp.json()["response"]
        assert out["allowed"] is False
        assert "did not finish within 0.2s" in out["status"]["message"] and "fail closed" in out["status"]["message"]
    assert app.webhook.offload.inline_runs == 0


def test_cheap_evaluations_run_inline_with_the_same_answers() -> None:
    app = create_app(Settings(), engine=fake.engine({"name": "no-latest", "denyImage": ":latest"}),
                     state=ClusterState())

    async def scenario() -> list[dict[str, Any]]:
        async with _asgi_client(app) as c:
            return [(await c.post("/validate", json=admission_review(pod(image=image)))).json()["response"]
                    for _ in range(20) for image in ("nginx:latest", "registry.example.com/app:1")]

    answers = asyncio.run(scenario())
    offload = app.webhook.offload
    assert offload.thread_runs >= offload.warmup and offload.inline_runs > 0  # measured first, then inline
    assert [a["allowed"] for a in answers] == [False, True] * 20
    assert all(a["status"]["message"] == "[no-latest/check] image nginx:latest is not allowed" for a in answers[::2])


def test_a_slow_inline_evaluation_is_denied_by_the_deadline() -> None:
    policy = {"name": "sometimes-slow", "denyImage": "nothing-matches", "sleep": 0}
    app = create_app(Settings(timeout_seconds=0.1), engine=fake.engine(policy), state=ClusterState())
    app.webhook.offload.inline_budget = 1.0  # an estimate that trusts the first samples

    async def scenario() -> dict[str, Any]:
        async with _asgi_client(app) as c:
            for _ in range(app.webhook.offload.warmup):
                assert (await c.post("/validate", json=admission_review(pod()))).json()["response"]["allowed"]
            policy["sleep"] = 0.3  # the engine turns slow while its estimate says cheap: evaluated inline
            r = await c.post("/validate", json=admission_review(pod()))
            response: dict[str, Any] = r.json()["response"]
            return response

    resp = asyncio.run(scenario())
    assert app.webhook.offload.inline_runs == 1
    assert resp["allowed"] is False and "did not finish within 0.1s" in resp["status"]["message"]


def test_evaluator_crash_fails_closed() -> None:
    app = create_app(Settings(), engine=fake.engine({"name": "boom", "crash": True}), state=ClusterState())

    async def scenario() -> httpx.Response:
        async with _asgi_client(app) as c:
            return await c.post("/validate", json=admission_review(pod()))

    r = asyncio.run(scenario())
    assert r.status_code == 200
    out = r.json()["response"]
    assert out["allowed"] is False and "fake evaluator crashed" in out["status"]["message"]


def test_not_ready_until_policies_load(tmp_path: Path) -> None:
    app = create_app(Settings(policies=[str(tmp_path / "missing")]), state=ClusterState())

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with _asgi_client(app) as c:  # no lifespan here: nothing has loaded
            return await c.get("/readyz"), await c.post("/validate", json=admission_review(pod()))

    ready, validate = asyncio.run(scenario())
    assert ready.status_code == 503 and ready.json()["ready"] is False
    assert validate.status_code == 503


def test_serve_refuses_broken_policies_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: FakePolicy\nmetadata: {name: a}\n---\nkind: Other\n")
    with pytest.raises(RuntimeError) as info:
        harness.start(tmp_path, "--policies", str(bad), "--no-cluster", wait=20)
    assert f"{bad}:4" in str(info.value) and "exited with 2" in str(info.value)


# --- the real CLI: built-in policies, two workers, cluster state from manifests ------------------------------------

REPO = FIXTURES.parents[2]
TEAM_LABEL = (FIXTURES / "kyverno" / "team-label.yaml").read_text()


def compliant_pod(name: str = "web", namespace: str = "team-a", containers: int = 3) -> dict[str, Any]:
    """A Pod every built-in policy admits (given a NetworkPolicy for app=web in its namespace)."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "web", "team": "core"}},
        "spec": {"containers": [{
            "name": f"c{i}", "image": f"registry.example.com/team/app{i}:1.{i}",
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
            "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        } for i in range(containers)]},
    }


@pytest.fixture(scope="module")
def workers_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp("workers")
    extra = tmp / "extra"
    extra.mkdir()
    (extra / "team-label.yaml").write_text(TEAM_LABEL)
    srv = harness.start(tmp, "--workers", "2", "--policies", str(REPO / "policies"), "--policies", str(extra),
                        "--state", str(FIXTURES / "state.yaml"), fake=False, wait=60)
    srv.extra = extra
    yield srv
    srv.stop()


def fresh_review(server: Any, endpoint: str, obj: dict[str, Any]) -> dict[str, Any]:
    """One request on its own connection, so that requests spread over the workers."""
    with server.client() as c:
        return review(c, endpoint, obj)


def test_builtin_policies_admit_a_compliant_pod(workers_server: Any) -> None:
    resp = fresh_review(workers_server, "validate", compliant_pod())["response"]
    assert resp["allowed"] is True and "warnings" not in resp


def test_builtin_network_policy_rule_reads_cluster_state(workers_server: Any) -> None:
    resp = fresh_review(workers_server, "validate", compliant_pod(namespace="team-b"))["response"]
    assert resp["allowed"] is False
    assert resp["status"]["message"].startswith("[require-network-policy]")
    assert "namespace team-b" in resp["status"]["message"]


def test_builtin_mutation_adds_default_resources(workers_server: Any) -> None:
    bare = compliant_pod(containers=2)
    del bare["spec"]["containers"][1]["resources"]
    resp = fresh_review(workers_server, "mutate", bare)["response"]
    ops = json.loads(base64.b64decode(resp["patch"]))
    assert all(o["path"].startswith("/spec/containers/1/") for o in ops), ops
    patched = apply(bare, ops)
    resources = patched["spec"]["containers"][1]["resources"]
    assert {"cpu", "memory"} <= resources["requests"].keys() and "memory" in resources["limits"]
    assert patched["spec"]["containers"][0] == bare["spec"]["containers"][0]


def _counter(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_add_up_over_workers(workers_server: Any) -> None:
    key = 'admission_requests_total{code="200",endpoint="validate"}'
    with workers_server.client() as c:
        before = _counter(c.get("/metrics").text, key)
    for _ in range(12):
        fresh_review(workers_server, "validate", compliant_pod())
    with workers_server.client() as c:
        text = c.get("/metrics").text
    assert _counter(text, key) == before + 12
    assert 'admission_rule_results_total{policy="require-network-policy",result="pass"' in text


def test_reload_on_every_worker_keeps_last_good_set(workers_server: Any) -> None:
    policy = workers_server.extra / "team-label.yaml"
    unlabeled = compliant_pod()
    del unlabeled["metadata"]["labels"]["team"]
    assert "the label team is required" in fresh_review(workers_server, "validate", unlabeled)["response"]["warnings"][0]

    policy.write_text(TEAM_LABEL.replace("validate:", "validate: [broken"))
    assert _wait_for(lambda: "lastReloadError" in fresh_review_ready(workers_server))
    time.sleep(1.0)  # let the other worker see the change too
    for _ in range(6):  # whichever worker answers, the last good set is in force
        resp = fresh_review(workers_server, "validate", unlabeled)["response"]
        assert resp["allowed"] is True and "the label team is required" in resp["warnings"][0]

    policy.write_text(TEAM_LABEL.replace("validationFailureAction: Audit", "validationFailureAction: Enforce"))
    time.sleep(1.5)
    assert _wait_for(lambda: all(
        not fresh_review(workers_server, "validate", unlabeled)["response"]["allowed"] for _ in range(6)))
    resp = fresh_review(workers_server, "validate", unlabeled)["response"]
    assert resp["status"]["message"].startswith("[require-team-label/check-team]")


def fresh_review_ready(server: Any) -> dict[str, Any]:
    with server.client() as c:
        body: dict[str, Any] = c.get("/readyz").json()
        return body


def test_sighup_with_broken_policies_keeps_the_running_workers(workers_server: Any) -> None:
    """With several workers SIGHUP is uvicorn's rolling restart; a replacement that cannot load fails to start."""
    import signal

    policy = workers_server.extra / "team-label.yaml"
    good = policy.read_text()
    policy.write_text("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: x}\nspec: [oops\n")
    workers_server.proc.send_signal(signal.SIGHUP)
    assert _wait_for(lambda: "aborting the restart" in workers_server.log_text(), timeout=30)
    assert workers_server.proc.poll() is None
    assert fresh_review(workers_server, "validate", compliant_pod())["response"]["allowed"] is True
    policy.write_text(good)


def test_unexpected_errors_are_a_json_500_without_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    import admission.server as server_module

    def broken_encode(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(server_module, "encode", broken_encode)
    app = create_app(Settings(), engine=fake.engine({"name": "p", "denyImage": "x"}), state=ClusterState())

    async def scenario() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.post("/validate", json=admission_review(pod()))

    r = asyncio.run(scenario())
    assert r.status_code == 500
    assert r.json() == {"error": "internal server error", "code": 500}
    assert "Traceback" not in r.text and "encoder bug" not in r.text


# --- the plain ASGI path: reading the body ------------------------------------------------------------------


def _read(headers: list[tuple[bytes, bytes]], messages: list[dict[str, Any]], limit: int = 100) -> bytes:
    from admission.server import read_body

    pending = list(messages)

    async def receive() -> dict[str, Any]:
        return pending.pop(0)

    body: bytes = asyncio.run(read_body({"type": "http", "headers": headers}, receive, limit))
    return body


def test_read_body_joins_chunks_and_checks_the_limit() -> None:
    from starlette.requests import ClientDisconnect

    from admission.review import ReviewError

    chunks = [{"type": "http.request", "body": b"ab", "more_body": True},
              {"type": "http.request", "body": b"cd", "more_body": False}]
    assert _read([], chunks) == b"abcd"
    assert _read([(b"content-length", b"2")], [{"type": "http.request", "body": b"xy"}]) == b"xy"
    with pytest.raises(ReviewError) as info:
        _read([(b"content-length", b"abc")], chunks)
    assert info.value.status_code == 400 and "invalid Content-Length" in info.value.message
    with pytest.raises(ReviewError) as info:
        _read([(b"content-length", b"101")], chunks)
    assert info.value.status_code == 413 and "101 bytes" in info.value.message
    with pytest.raises(ReviewError) as info:
        _read([], [{"type": "http.request", "body": b"x" * 60, "more_body": True}] * 2)
    assert info.value.status_code == 413
    with pytest.raises(ClientDisconnect):
        _read([], [chunks[0], {"type": "http.disconnect"}])


def test_review_endpoints_answer_other_methods_with_405_json() -> None:
    app = create_app(Settings(), engine=fake.engine(), state=ClusterState())

    async def scenario() -> list[httpx.Response]:
        async with _asgi_client(app) as c:
            return [await c.put("/mutate", json={}), await c.get("/validate")]

    for r in asyncio.run(scenario()):
        assert r.status_code == 405 and r.headers["allow"] == "POST" and r.json()["code"] == 405


# --- hostile input: never a 500, bounded answers ------------------------------------------------------------


def test_a_lone_surrogate_is_400_over_https(client: httpx.Client) -> None:
    body = json.dumps(admission_review(pod())).encode().replace(b'"web"', b'"web\\ud800"', 1)
    for endpoint in ("validate", "mutate"):
        r = client.post(f"/{endpoint}", content=body)
        assert r.status_code == 400 and "not valid Unicode" in r.json()["error"]


def test_a_thousand_nested_arrays_are_400_on_both_endpoints(client: httpx.Client) -> None:
    body = json.dumps(admission_review(pod())).encode().replace(
        b'"spec": {', b'"spec": {"x": ' + b"[" * 1000 + b"]" * 1000 + b", ", 1)
    for endpoint in ("validate", "mutate"):
        r = client.post(f"/{endpoint}", content=body)
        assert r.status_code == 400 and "nested more than 100 levels" in r.json()["error"]


def test_a_huge_uid_is_400_over_https(server: Any, client: httpx.Client) -> None:
    r = client.post("/validate", json=admission_review(pod(), uid="u" * 60_000))
    assert r.status_code == 400 and "request.uid is 60000 characters" in r.json()["error"]
    assert len(r.content) < 1000 and "u" * 1000 not in server.log_text()


def test_too_many_or_too_large_headers_are_431(client: httpx.Client) -> None:
    many = {f"x-h{i}": "v" for i in range(150)}
    r = client.post("/validate", json=admission_review(pod()), headers=many)
    assert r.status_code == 431 and "over the limit of 100" in r.json()["error"]
    r = client.get("/healthz", headers={"x-big": "v" * 20_000})
    assert r.status_code == 431 and "over the limit of 16384" in r.json()["error"]
    assert client.get("/healthz").status_code == 200  # a fresh connection serves on


def _too_large_review(uid: str) -> dict[str, Any]:
    from admission.review import MAX_VALUES

    doc = admission_review(pod(image="nginx:latest"), uid=uid)
    doc["request"]["object"]["metadata"]["annotations"] = {"blob": "x"}
    doc["request"]["object"]["spec"]["extra"] = [0] * MAX_VALUES
    return doc


def test_a_review_over_the_value_limit_is_answered_at_once_by_failure_policy() -> None:
    engine = fake.engine({"name": "labels", "addLabel": {"team": "core"}, "denyImage": ":latest"})
    app = create_app(Settings(), engine=engine, state=ClusterState())

    async def scenario() -> tuple[httpx.Response, httpx.Response]:
        async with _asgi_client(app) as c:
            return (await c.post("/validate", json=_too_large_review("big-v")),
                    await c.post("/mutate", json=_too_large_review("big-m")))

    validate, mutate = asyncio.run(scenario())
    assert validate.status_code == 200 and mutate.status_code == 200
    v, m = validate.json()["response"], mutate.json()["response"]
    assert v["uid"] == "big-v" and v["allowed"] is False
    assert "over the limit of 100000" in v["status"]["message"] and "fail closed" in v["status"]["message"]
    assert m["uid"] == "big-m" and m["allowed"] is True and "patch" not in m  # unpatched, with a warning
    assert any("not mutated" in w and "over the limit of 100000" in w for w in m["warnings"])
    assert app.webhook.offload.thread_runs == app.webhook.offload.inline_runs == 0  # never evaluated


def test_a_megabyte_uid_is_400_in_process() -> None:
    app = create_app(Settings(), engine=fake.engine({"name": "p", "denyImage": "x"}), state=ClusterState())

    async def scenario() -> httpx.Response:
        async with _asgi_client(app) as c:
            return await c.post("/validate", json=admission_review(pod(), uid="u" * 1_000_000))

    r = asyncio.run(scenario())
    assert r.status_code == 400 and "over the limit of 128" in r.json()["error"] and len(r.content) < 1000


@pytest.fixture(scope="module", params=["httptools", "h11"])
def limits_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    tmp = tmp_path_factory.mktemp(f"limits-{request.param}")
    policies = tmp / "policies"
    shutil.copytree(FIXTURES / "policies", policies)
    srv = harness.start(tmp, "--policies", str(policies), "--no-cluster", "--keep-alive-timeout", "1",
                        "--max-connections", "4", "--http", request.param)
    srv.http = request.param
    yield srv
    srv.stop()


def _tls_socket(server: Any) -> ssl.SSLSocket:
    import socket
    from urllib.parse import urlsplit

    port = urlsplit(server.url).port
    context = ssl.create_default_context(cafile=str(server.ca))
    raw = socket.create_connection(("localhost", port), timeout=20)
    return context.wrap_socket(raw, server_hostname="localhost")


def _read_response(sock: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
    while len(rest) < length:
        rest += sock.recv(65536)
    return head


def test_an_idle_keep_alive_connection_is_closed(limits_server: Any) -> None:
    with _tls_socket(limits_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        sock.settimeout(20)  # a liveness bound: --keep-alive-timeout is 1 s
        assert sock.recv(1) == b""  # the server closed the idle connection


def test_connections_past_the_limit_are_answered_503(limits_server: Any) -> None:
    held = [_tls_socket(limits_server) for _ in range(4)]  # connected, never sending: they count
    try:
        time.sleep(0.2)  # the server has registered the handshakes
        with limits_server.client() as c:
            assert c.get("/healthz").status_code == 503
    finally:
        for sock in held:
            sock.close()
    assert _wait_for(lambda: _healthz(limits_server) == 200)


def _healthz(server: Any) -> int:
    with server.client() as c:
        return c.get("/healthz").status_code


def test_a_huge_header_block_is_refused_with_a_4xx(limits_server: Any) -> None:
    with _tls_socket(limits_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + b"x-big: " + b"v" * 40_000 + b"\r\n\r\n")
        status = _read_response(sock).split(b" ")[1]
    # the app's limit (431); h11 may refuse it first while parsing (400), depending on how the bytes arrive
    assert status == b"431" or (limits_server.http == "h11" and status == b"400")


def test_h11_bounds_an_unfinished_header_block_while_parsing(limits_server: Any) -> None:
    if limits_server.http != "h11":
        pytest.skip("httptools holds the header block until it ends (the app's 431 applies then)")
    with _tls_socket(limits_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        for _ in range(4):  # 40 KB of header that never ends
            sock.sendall(b"x-big: " + b"v" * 10_000 + b"\r\n")
        assert _read_response(sock).split(b" ")[1] == b"400"
