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


def detect_cluster(kubeconfig: str | None = None, context: str | None = None) -> tuple[bool, str]:
    """Whether a cluster is configured (see admission.cluster): (configured, how or why not)."""
    from admission.cluster import ClusterError, connect

    try:
        return True, connect(kubeconfig, context).how
    except ClusterError as exc:
        return False, str(exc)


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


def kube_resources(api_client: Any = None) -> list[Resource]:
    """NetworkPolicies and Namespaces through the kubernetes client (an ApiClient from admission.cluster)."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    net = client.NetworkingV1Api(api_client)

    return [
        _resource("networking.k8s.io/v1", "NetworkPolicy", net.list_network_policy_for_all_namespaces),
        _resource("v1", "Namespace", core.list_namespace),
    ]


def namespace_fetcher(api_client: Any = None, timeout: float = 2.0) -> Callable[[str], Object | None]:
    """Reads one Namespace from the API server (for ClusterState.fetch_namespace): None when it does not
    exist, StateUnavailable when it cannot be read within `timeout` seconds."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    from admission.cluster import one_line
    from admission.state import StateUnavailable

    core = client.CoreV1Api(api_client)

    def fetch(name: str) -> Object | None:
        try:
            resp: Any = core.read_namespace(name, _preload_content=False, _request_timeout=timeout)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise StateUnavailable(f"cannot read namespace {name}: {exc.status} {exc.reason}") from None
        except Exception as exc:  # unreachable, timed out
            raise StateUnavailable(f"cannot read namespace {name}: {one_line(exc, 200)}") from None
        obj: Object = json.loads(resp.data)
        return obj

    return fetch


def configmap_resource(api_client: Any, namespace: str, name: str) -> Resource:
    """One ConfigMap, listed and watched by name (a field selector; RBAC may grant just that name)."""
    import functools

    from kubernetes import client

    core = client.CoreV1Api(api_client)
    fn = functools.partial(core.list_namespaced_config_map, namespace, field_selector=f"metadata.name={name}")
    return _resource("v1", "ConfigMap", fn)


# --- kinds a Gatekeeper sync Config names ------------------------------------------------------------------


def _policy_objects(paths: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Every YAML object in the policy paths (broken files skipped: the policy loader reports them)."""
    from pathlib import Path

    from admission.manifests import ManifestError, find_files, load_file

    for p in paths:
        path = Path(p)
        if not path.exists():
            continue
        for f in find_files(path):
            try:
                docs = load_file(f)
            except ManifestError:
                continue
            yield from (d.obj for d in docs if isinstance(d.obj, dict))


def gatekeeper_sync_kinds(paths: Iterable[str]) -> list[tuple[str, str, str]]:
    """(group, version, kind) listed under spec.sync.syncOnly of any `config.gatekeeper.sh` Config in paths."""
    kinds: list[tuple[str, str, str]] = []
    for obj in _policy_objects(paths):
        if obj.get("kind") != "Config" or not str(obj.get("apiVersion", "")).startswith("config.gatekeeper.sh/"):
            continue
        for entry in ((obj.get("spec") or {}).get("sync") or {}).get("syncOnly") or []:
            if isinstance(entry, dict) and entry.get("kind") and entry.get("version"):
                key = (str(entry.get("group") or ""), str(entry["version"]), str(entry["kind"]))
                if key not in kinds:
                    kinds.append(key)
    return kinds


def admission_policy_param_kinds(paths: Iterable[str]) -> list[tuple[str, str, str]]:
    """(group, version, kind) of every `paramKind` of the ValidatingAdmissionPolicies and MutatingAdmissionPolicies
    in paths: their bindings' paramRef reads params from cluster state, so serve watches those kinds."""
    kinds: list[tuple[str, str, str]] = []
    for obj in _policy_objects(paths):
        if (obj.get("kind") not in ("ValidatingAdmissionPolicy", "MutatingAdmissionPolicy")
                or not str(obj.get("apiVersion", "")).startswith("admissionregistration.k8s.io/")):
            continue
        param = (obj.get("spec") or {}).get("paramKind") or {}
        if isinstance(param, dict) and param.get("kind"):
            group, _, version = str(param.get("apiVersion") or "v1").rpartition("/")
            key = (group, version, str(param["kind"]))
            if key not in kinds:
                kinds.append(key)
    return kinds


_QUERY_NAMES = {"watch": "watch", "resource_version": "resourceVersion", "timeout_seconds": "timeoutSeconds",
                "allow_watch_bookmarks": "allowWatchBookmarks"}


def resource_path(group: str, version: str, kind: str) -> str:
    """The cluster-wide list path of a kind (its plural as the API server names built-in kinds)."""
    from admission.review import plural

    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    return f"{base}/{plural(kind)}"


def generic_list_function(api_client: Any, path: str) -> Callable[..., Any]:
    """A list function over any kind's path, shaped like the generated client's (for _raw_list/_raw_watch)."""

    def call(**params: Any) -> Any:
        query = [(_QUERY_NAMES[k], str(v).lower() if isinstance(v, bool) else v)
                 for k, v in params.items() if k in _QUERY_NAMES]
        return api_client.call_api(
            path, "GET", query_params=query, header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True,
            _request_timeout=params.get("_request_timeout"),
        )

    return call


def synced_resources(kinds: list[tuple[str, str, str]], skip: Iterable[str] = (), api_client: Any = None
                     ) -> list[Resource]:
    """Resources for Gatekeeper-synced kinds (kinds already watched are skipped)."""
    from kubernetes import client

    api_client = api_client or client.ApiClient()
    out: list[Resource] = []
    skipped = set(skip)
    for group, version, kind in kinds:
        if kind in skipped:
            continue
        api_version = f"{group}/{version}" if group else version
        out.append(_resource(api_version, kind, generic_list_function(api_client, resource_path(group, version, kind))))
    return out


def _resource(api_version: str, kind: str, fn: Callable[..., Any]) -> Resource:
    def list_fn() -> tuple[list[Object], str]:
        return _raw_list(fn)

    def watch_fn(rv: str, timeout: int) -> Iterable[dict[str, Any]]:
        return _raw_watch(fn, rv, timeout)

    return Resource(api_version, kind, list_fn, watch_fn)
