"""Cluster state the policies may read: NetworkPolicies for a namespace, Gatekeeper's inventory, Kyverno's apiCall.

`lint` and `test` fill a StaticState from the manifests they read; `serve` keeps one up to date from watches
(see admission.watch). When no cluster is configured, `available` is False and rules that need state error,
which then follows their failure policy.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterable
from typing import Any

from admission.types import Object


class StateUnavailable(Exception):
    """Cluster state was needed but there is none (no cluster configured, or the cache is not synced)."""


def _key(obj: Object) -> tuple[str, str, str, str]:
    meta = obj.get("metadata") or {}
    return (
        str(obj.get("apiVersion") or ""),
        str(obj.get("kind") or ""),
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
    )


class ClusterState:
    """An in-memory index of objects by apiVersion, kind, namespace and name. Thread-safe.

    Objects are bucketed by kind, so a lookup costs the size of one kind's bucket, not of the whole
    state (`lint` puts every linted manifest here and looks up Namespaces for each of them)."""

    def __init__(self, objects: Iterable[Object] = (), *, available: bool = True, reason: str = "",
                 fetch_namespace: Callable[[str], Object | None] | None = None) -> None:
        self._lock = threading.Lock()
        self._kinds: dict[str, dict[tuple[str, str, str, str], Object]] = {}
        self.available = available
        self.reason = reason
        # Reads a Namespace the state does not hold (yet) from the cluster: None when it does not exist,
        # StateUnavailable when it cannot be read. Set by the server, whose watch may lag a new namespace.
        self.fetch_namespace = fetch_namespace
        for obj in objects:
            self.put(obj)

    def put(self, obj: Object) -> None:
        if isinstance(obj, dict) and obj.get("kind"):
            key = _key(obj)
            with self._lock:
                self._kinds.setdefault(key[1], {})[key] = obj

    def remove(self, obj: Object) -> None:
        key = _key(obj)
        with self._lock:
            self._kinds.get(key[1], {}).pop(key, None)

    def replace(self, api_version: str, kind: str, objects: Iterable[Object]) -> None:
        """Swap every object of one kind for a fresh list (a watch's relist)."""
        fresh = {_key(o): o for o in objects}
        with self._lock:
            bucket = self._kinds.setdefault(kind, {})
            for k in [k for k in bucket if k[0] == api_version]:
                del bucket[k]
            bucket.update(fresh)

    def require(self) -> None:
        if not self.available:
            raise StateUnavailable(self.reason or "no cluster state is available")

    def list(self, kind: str, *, api_version: str | None = None, namespace: str | None = None) -> list[Object]:
        """Objects of a kind (any apiVersion unless given), in one namespace or (None) in all."""
        self.require()
        with self._lock:
            bucket = self._kinds.get(kind)
            if not bucket:
                return []
            return [
                o for (av, _, ns, _), o in bucket.items()
                if (api_version is None or av == api_version) and (namespace is None or ns == namespace)
            ]

    def get(self, kind: str, name: str, *, namespace: str = "", api_version: str | None = None) -> Object | None:
        for obj in self.list(kind, api_version=api_version, namespace=namespace):
            if (obj.get("metadata") or {}).get("name") == name:
                return obj
        return None

    def objects(self) -> builtins.list[Object]:
        with self._lock:
            return [o for bucket in self._kinds.values() for o in bucket.values()]

    def namespace_labels(self, namespace: str) -> dict[str, Any] | None:
        """Labels of a Namespace object, or None when it is not known. A namespace the state does not hold
        (a watch not synced yet, or lagging behind a namespace just created) is fetched when the state can
        (`fetch_namespace`), and kept; a failure to fetch it raises StateUnavailable."""
        if not namespace:
            return None
        ns = self.get("Namespace", namespace) if self.available else None
        if ns is None and self.fetch_namespace is not None:
            ns = self.fetch_namespace(namespace)
            if ns is not None:
                self.put({**ns, "apiVersion": ns.get("apiVersion") or "v1", "kind": "Namespace"})
        if ns is None:
            return None
        return dict((ns.get("metadata") or {}).get("labels") or {})


def unavailable(reason: str) -> ClusterState:
    return ClusterState(available=False, reason=reason)
