"""Gatekeeper's `data.inventory`: cluster state as the templates expect it.

`cluster[apiVersion][kind][name]` for cluster-scoped objects and `namespace[ns][apiVersion][kind][name]` for
namespaced ones (apiVersion as written in the object, e.g. `v1` or `networking.k8s.io/v1`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from admission.types import Object


def inventory_of(objects: Iterable[Object]) -> dict[str, Any]:
    cluster: dict[str, Any] = {}
    namespaced: dict[str, Any] = {}
    for obj in objects:
        if not isinstance(obj, dict):
            continue
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or "")
        api_version = str(obj.get("apiVersion") or "")
        kind = str(obj.get("kind") or "")
        if not name or not kind:
            continue
        ns = str(meta.get("namespace") or "")
        root = namespaced.setdefault(ns, {}) if ns else cluster
        root.setdefault(api_version, {}).setdefault(kind, {})[name] = obj
    return {"cluster": cluster, "namespace": namespaced}
