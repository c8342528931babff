"""Keep a ClusterState up to date from the Kubernetes API: list, then watch from the list's resourceVersion.

One Reflector per kind runs in a daemon thread of each worker. It relists when the API answers 410 Gone
(the resourceVersion is too old), and backs off exponentially (with jitter) after errors. The API calls are
injected (`list_fn`, `watch_fn`) so the logic is tested without a cluster; `kube_resources` builds them on the
`kubernetes` client. With no cluster configured the server uses `admission.state.unavailable(reason)` instead.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from admission.state import ClusterState
from admission.types import Object

log = logging.getLogger("admission.watch")

ListFn = Callable[[], tuple[list[Object], str]]  # -> items, the list's resourceVersion
WatchFn = Callable[[str, int], Iterable[dict[str, Any]]]  # (resourceVersion, timeout s) -> events
WATCH_TIMEOUT = 300


class Gone(Exception):
    """410 Gone: the resourceVersion is no longer available; relist."""


@dataclass
class Resource:
    api_version: str
    kind: str
    list_fn: ListFn
    watch_fn: WatchFn


class Backoff:
    """Exponential backoff with full jitter: base * 2^n, capped."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base, self.cap, self.attempt = base, cap, 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * (2 ** self.attempt))
        self.attempt += 1
        return delay / 2 + self.rng.uniform(0, delay / 2)

    def reset(self) -> None:
        self.attempt = 0


class Reflector:
    """Mirrors one kind into the state. `run` returns when `stop` is set."""

    def __init__(self, state: ClusterState, resource: Resource, stop: threading.Event,
                 backoff: Backoff | None = None, on_synced: Callable[[str], None] | None = None,
                 watch_timeout: int = WATCH_TIMEOUT) -> None:
        self.state = state
        self.resource = resource
        self.stop = stop
        self.backoff = backoff or Backoff()
        self.on_synced = on_synced
        self.watch_timeout = watch_timeout
        self.resource_version = ""
        self.synced = False
        self.lists = 0  # how many times it listed (tests and logs)

    def _typed(self, obj: Object) -> Object:
        """List items come without apiVersion/kind; the state indexes by them."""
        if not obj.get("kind"):
            obj = {**obj, "apiVersion": self.resource.api_version, "kind": self.resource.kind}
        return obj

    def relist(self) -> None:
        items, rv = self.resource.list_fn()
        self.state.replace(self.resource.api_version, self.resource.kind, [self._typed(i) for i in items])
        self.resource_version = rv
        self.lists += 1
        if not self.synced:
            self.synced = True
            log.info("cluster state synced", extra={"fields": {"kind": self.resource.kind, "objects": len(items)}})
            if self.on_synced:
                self.on_synced(self.resource.kind)

    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object")
        if kind == "ERROR":
            code = obj.get("code") if isinstance(obj, dict) else None
            if code == 410:
                raise Gone(str((obj or {}).get("message") or "resourceVersion too old"))
            raise RuntimeError(f"watch error: {obj}")
        if not isinstance(obj, dict):
            return
        rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
        if kind in ("ADDED", "MODIFIED"):
            self.state.put(self._typed(obj))
        elif kind == "DELETED":
            self.state.remove(self._typed(obj))
        if rv:  # BOOKMARK events carry only this
            self.resource_version = rv

    def step(self) -> None:
        """One list (when needed) and one watch until it ends. Raises on errors."""
        if not self.resource_version:
            self.relist()
            self.backoff.reset()
        for event in self.resource.watch_fn(self.resource_version, self.watch_timeout):
            if self.stop.is_set():
                return
            self.apply(event)
            self.backoff.reset()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.step()
            except Gone as exc:
                log.info("watch expired, relisting", extra={"fields": {"kind": self.resource.kind, "reason": str(exc)}})
                self.resource_version = ""
            except Exception as exc:
                delay = self.backoff.next()
                log.warning("watch of %s failed (%s: %s); retrying in %.1fs", self.resource.kind,
                            type(exc).__name__, exc, delay)
                if self.stop.wait(delay):
                    return


class ClusterWatch:
    """Reflectors for several kinds filling one state; the state is available once every kind has listed."""

    def __init__(self, resources: list[Resource], state: ClusterState | None = None,
                 backoff: Callable[[], Backoff] = Backoff) -> None:
        self.state = state or ClusterState(available=False, reason="cluster state is not synced yet")
        self.stop = threading.Event()
        self._pending = {r.kind for r in resources}
        self._lock = threading.Lock()
        self.reflectors = [Reflector(self.state, r, self.stop, backoff(), self._synced) for r in resources]
        self.threads: list[threading.Thread] = []

    def _synced(self, kind: str) -> None:
        with self._lock:
            self._pending.discard(kind)
            if not self._pending:
                self.state.available = True
                self.state.reason = ""

    @property
    def synced(self) -> bool:
        return self.state.available

    def start(self) -> None:
        for r in self.reflectors:
            t = threading.Thread(target=r.run, name=f"watch-{r.resource.kind}", daemon=True)
            t.start()
            self.threads.append(t)

    def close(self, timeout: float = 1.0) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout)


# --- the kubernetes client ----------------------------------------------------------------------------------


def detect_cluster() -> tuple[bool, str]:
    """Load in-cluster config or a kubeconfig. Returns (configured, how or why not)."""
    from kubernetes import config

    try:
        config.load_incluster_config()
        return True, "in-cluster service account"
    except config.ConfigException:
        pass
    try:
        config.load_kube_config()
        return True, "kubeconfig"
    except (config.ConfigException, OSError, TypeError, ValueError) as exc:
        return False, f"no Kubernetes cluster configured (not in a cluster, no usable kubeconfig: {exc})"


def _raw_list(fn: Callable[..., Any]) -> tuple[list[Object], str]:
    resp = fn(_preload_content=False, _request_timeout=60)
    doc = json.loads(resp.data)
    return list(doc.get("items") or []), str((doc.get("metadata") or {}).get("resourceVersion") or "")


def _raw_watch(fn: Callable[..., Any], resource_version: str, timeout: int) -> Iterator[dict[str, Any]]:
    from kubernetes.client.exceptions import ApiException
    from kubernetes.watch.watch import iter_resp_lines

    try:
        resp = fn(watch=True, resource_version=resource_version, timeout_seconds=timeout,
                  allow_watch_bookmarks=True, _preload_content=False, _request_timeout=timeout + 30)
    except ApiException as exc:
        if exc.status == 410:
            raise Gone(str(exc.reason)) from None
        raise
    try:
        for line in iter_resp_lines(resp):
            if line.strip():
                yield json.loads(line)
    finally:
        resp.close()
        resp.release_conn()


def kube_resources() -> list[Resource]:
    """NetworkPolicies and Namespaces through the kubernetes client (config loaded by detect_cluster)."""
    from kubernetes import client

    core = client.CoreV1Api()
    net = client.NetworkingV1Api()

    def resource(api_version: str, kind: str, fn: Callable[..., Any]) -> Resource:
        return Resource(api_version, kind, lambda: _raw_list(fn), lambda rv, t: _raw_watch(fn, rv, t))

    return [
        resource("networking.k8s.io/v1", "NetworkPolicy", net.list_network_policy_for_all_namespaces),
        resource("v1", "Namespace", core.list_namespace),
    ]
