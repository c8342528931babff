"""Cluster-state watches against a fake API: list, watch from the resourceVersion, relist on 410, back off."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from admission.state import ClusterState
from admission.watch import Backoff, ClusterWatch, Gone, Reflector, Resource, detect_cluster


def netpol(name: str, ns: str, rv: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    # list items come without apiVersion/kind, as the API server sends them
    return {"metadata": {"name": name, "namespace": ns, "resourceVersion": rv},
            "spec": {"podSelector": {"matchLabels": labels or {}}}}


class FakeApi:
    """Scripted list results and watch streams; records what it was asked."""

    def __init__(self) -> None:
        self.lists: list[tuple[list[dict[str, Any]], str]] = []
        self.watches: list[list[dict[str, Any]] | Exception] = []
        self.watched_from: list[str] = []
        self.list_calls = 0

    def list(self) -> tuple[list[dict[str, Any]], str]:
        self.list_calls += 1
        items, rv = self.lists.pop(0) if len(self.lists) > 1 else self.lists[0]
        return [dict(i) for i in items], rv

    def watch(self, resource_version: str, timeout: int) -> Iterator[dict[str, Any]]:
        self.watched_from.append(resource_version)
        script = self.watches.pop(0) if self.watches else []
        if isinstance(script, Exception):
            raise script
        yield from script

    def resource(self) -> Resource:
        return Resource("networking.k8s.io/v1", "NetworkPolicy", self.list, self.watch)


def names(state: ClusterState) -> list[str]:
    return sorted(f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in state.list("NetworkPolicy"))


def test_list_then_watch_applies_events_from_the_list_version() -> None:
    api = FakeApi()
    api.lists = [([netpol("a", "team", "5")], "10")]
    api.watches = [[
        {"type": "ADDED", "object": {**netpol("b", "team", "11"), "apiVersion": "networking.k8s.io/v1",
                                     "kind": "NetworkPolicy"}},
        {"type": "MODIFIED", "object": netpol("a", "team", "12", {"app": "web"})},
        {"type": "DELETED", "object": netpol("b", "team", "13")},
        {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "20"}}},
    ]]
    state = ClusterState()
    r = Reflector(state, api.resource(), threading.Event())
    r.step()
    assert api.watched_from == ["10"]
    assert names(state) == ["team/a"]
    obj = state.get("NetworkPolicy", "a", namespace="team")
    assert obj is not None and obj["spec"]["podSelector"]["matchLabels"] == {"app": "web"}
    assert obj["apiVersion"] == "networking.k8s.io/v1"  # filled in for list and watch items
    assert r.resource_version == "20"  # bookmarks advance it
    r.step()  # the next watch resumes from there without relisting
    assert api.watched_from == ["10", "20"] and api.list_calls == 1


def test_410_gone_event_relists_and_resumes_from_the_new_version() -> None:
    api = FakeApi()
    api.lists = [([netpol("a", "t", "1"), netpol("b", "t", "2")], "3"), ([netpol("c", "t", "40")], "41")]
    api.watches = [[{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old resource version"}}],
                   []]
    state = ClusterState()
    stop = threading.Event()
    r = Reflector(state, api.resource(), stop)
    with pytest.raises(Gone):
        r.step()
    assert names(state) == ["t/a", "t/b"]
    r.resource_version = ""  # what run() does on Gone
    r.step()
    assert names(state) == ["t/c"]  # the relist replaced the stale objects
    assert api.watched_from == ["3", "41"] and r.lists == 2


def test_run_relists_on_gone_and_backs_off_on_errors() -> None:
    api = FakeApi()
    api.lists = [([netpol("a", "t", "1")], "1"), ([netpol("z", "t", "9")], "9")]
    stop = threading.Event()
    api.watches = [Gone("expired"), ConnectionError("api down"), []]
    delays: list[float] = []

    class RecordingBackoff(Backoff):
        def next(self) -> float:
            delays.append(super().next())
            return 0.01

    state = ClusterState()
    r = Reflector(state, api.resource(), stop, RecordingBackoff())
    t = threading.Thread(target=r.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 5
    while len(api.watched_from) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    t.join(2)
    assert not t.is_alive()
    assert api.watched_from[:3] == ["1", "9", "9"]  # relisted after Gone; retried from the same version after the error
    assert r.lists == 2 and len(delays) == 1
    assert names(state) == ["t/z"]


def test_backoff_grows_exponentially_with_jitter_and_caps() -> None:
    b = Backoff(base=1.0, cap=8.0, rng=random.Random(7))
    delays = [b.next() for _ in range(6)]
    for attempt, d in enumerate(delays):
        ceiling = min(8.0, 2 ** attempt)
        assert ceiling / 2 <= d <= ceiling
    b.reset()
    assert b.next() <= 1.0


def test_cluster_watch_is_available_only_once_every_kind_listed() -> None:
    np_api = FakeApi()
    np_api.lists = [([netpol("a", "t", "1")], "1")]
    ns_started = threading.Event()
    ns_release = threading.Event()

    def ns_list() -> tuple[list[dict[str, Any]], str]:
        ns_started.set()
        ns_release.wait(5)
        return [{"metadata": {"name": "t", "labels": {"env": "prod"}}}], "7"

    def idle_watch(rv: str, timeout: int) -> Iterator[dict[str, Any]]:
        time.sleep(0.02)
        return iter(())

    np_api_res = Resource("networking.k8s.io/v1", "NetworkPolicy", np_api.list, idle_watch)
    watch = ClusterWatch([np_api_res, Resource("v1", "Namespace", ns_list, idle_watch)])
    assert watch.state.available is False
    watch.start()
    try:
        assert ns_started.wait(5)
        time.sleep(0.1)
        assert watch.state.available is False  # NetworkPolicies listed, Namespaces not yet
        ns_release.set()
        deadline = time.monotonic() + 5
        while not watch.synced and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watch.synced
        assert watch.state.namespace_labels("t") == {"env": "prod"}
        assert names(watch.state) == ["t/a"]
    finally:
        ns_release.set()
        watch.close()
    assert all(not t.is_alive() for t in watch.threads)


def test_no_cluster_configured_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    configured, why = detect_cluster()
    assert configured is False and "no Kubernetes cluster configured" in why


# --- the kubernetes-client adapters, against fake responses -----------------------------------------------------


class FakeResponse:
    def __init__(self, data: bytes = b"", chunks: list[bytes] | None = None) -> None:
        self.data = data
        self.chunks = chunks or []
        self.closed = False

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        yield from self.chunks

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        pass


def test_raw_list_and_watch_read_the_wire_format() -> None:
    import json

    from admission.watch import _raw_list, _raw_watch

    calls: list[dict[str, Any]] = []
    listing = {"kind": "NamespaceList", "metadata": {"resourceVersion": "77"},
               "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]}
    events = [{"type": "ADDED", "object": {"metadata": {"name": "c", "resourceVersion": "78"}}},
              {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "80"}}}]
    stream = "".join(json.dumps(e) + "\n" for e in events).encode()
    watch_resp = FakeResponse(chunks=[stream[:25], stream[25:]])  # events split across chunks

    def fn(**kw: Any) -> FakeResponse:
        calls.append(kw)
        return watch_resp if kw.get("watch") else FakeResponse(json.dumps(listing).encode())

    items, rv = _raw_list(fn)
    assert [i["metadata"]["name"] for i in items] == ["a", "b"] and rv == "77"
    assert list(_raw_watch(fn, "77", 30)) == events
    assert calls[1]["resource_version"] == "77" and calls[1]["allow_watch_bookmarks"] is True
    assert calls[1]["timeout_seconds"] == 30 and watch_resp.closed


def test_raw_watch_turns_410_into_gone() -> None:
    from kubernetes.client.exceptions import ApiException

    from admission.watch import _raw_watch

    def fn(**kw: Any) -> Any:
        raise ApiException(status=410, reason="Expired")

    with pytest.raises(Gone):
        list(_raw_watch(fn, "5", 30))


def test_gatekeeper_sync_config_names_extra_kinds(tmp_path: Any) -> None:
    from admission.watch import gatekeeper_sync_kinds, generic_list_function, resource_path

    (tmp_path / "config.yaml").write_text(
        "apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\nmetadata: {name: config, namespace: gk}\n"
        "spec:\n  sync:\n    syncOnly:\n"
        "      - {group: '', version: v1, kind: Namespace}\n"
        "      - {group: networking.k8s.io, version: v1, kind: Ingress}\n"
        "      - {group: '', version: v1, kind: Service}\n")
    (tmp_path / "other.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    kinds = gatekeeper_sync_kinds([str(tmp_path), str(tmp_path / "missing")])
    assert kinds == [("", "v1", "Namespace"), ("networking.k8s.io", "v1", "Ingress"), ("", "v1", "Service")]
    assert resource_path("networking.k8s.io", "v1", "Ingress") == "/apis/networking.k8s.io/v1/ingresses"
    assert resource_path("", "v1", "Service") == "/api/v1/services"

    class Client:
        def __init__(self) -> None:
            self.calls: list[tuple[Any, ...]] = []

        def call_api(self, path: str, method: str, **kw: Any) -> str:
            self.calls.append((path, method, kw["query_params"], kw["_preload_content"]))
            return "response"

    api = Client()
    fn = generic_list_function(api, "/api/v1/services")
    assert fn(watch=True, resource_version="9", timeout_seconds=60, allow_watch_bookmarks=True,
              _preload_content=False, _request_timeout=90) == "response"
    assert api.calls == [("/api/v1/services", "GET", [("watch", "true"), ("resourceVersion", "9"),
                                                     ("timeoutSeconds", 60), ("allowWatchBookmarks", "true")], False)]


def test_broken_kubeconfig_means_no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    bad = tmp_path / "kubeconfig"
    bad.write_text("garbage: [")
    monkeypatch.setenv("KUBECONFIG", str(bad))
    configured, why = detect_cluster()
    assert configured is False and "kubeconfig unusable" in why
