"""Gatekeeper's `spec.match` of a constraint: kinds, scope, namespaces, excludedNamespaces, labelSelector,
namespaceSelector and name.

Semantics follow Gatekeeper's match field: every condition given must hold. Namespace globs allow one `*` at
the front or the end (`kube-*`, `*-system`). Cluster-scoped objects are not filtered by namespaces,
excludedNamespaces or namespaceSelector; a Namespace is matched by its own name and labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from admission.review import Request
from admission.selectors import selector_matches


def glob_match(pattern: str, value: str) -> bool:
    if pattern.endswith("*") and not pattern.startswith("*"):
        return value.startswith(pattern[:-1])
    if pattern.startswith("*") and not pattern.endswith("*"):
        return value.endswith(pattern[1:])
    if pattern == "*":
        return True
    if pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in value
    return pattern == value


def kinds_match(kinds: Any, group: str, kind: str) -> bool:
    if not kinds:
        return True
    for entry in kinds:
        if not isinstance(entry, dict):
            continue
        groups = entry.get("apiGroups") or []
        names = entry.get("kinds") or []
        group_ok = not groups or "*" in groups or group in groups
        kind_ok = not names or "*" in names or kind in names
        if group_ok and kind_ok:
            return True
    return False


def _subject(request: Request) -> dict[str, Any]:
    return request.object if request.object is not None else (request.old_object or {})


def constraint_matches(
    match: dict[str, Any] | None,
    request: Request,
    namespace_labels: Callable[[str], dict[str, Any] | None],
) -> tuple[bool, str]:
    """Whether the constraint applies to the request, and if not, why (for `test` output)."""
    match = match or {}
    kind = request.kind
    if not kinds_match(match.get("kinds"), kind.group, kind.kind):
        return False, "kind"
    obj = _subject(request)
    meta = obj.get("metadata") or {}
    is_namespace = kind.kind == "Namespace" and kind.group == ""
    namespace = request.namespace or str(meta.get("namespace") or "")
    if is_namespace:
        ns_name: str | None = request.name or str(meta.get("name") or "")
    else:
        ns_name = namespace or None  # None: cluster-scoped
    scope = match.get("scope") or "*"
    if scope == "Cluster" and namespace and not is_namespace:
        return False, "scope"
    if scope == "Namespaced" and (not namespace or is_namespace):
        return False, "scope"
    namespaces = match.get("namespaces")
    if namespaces and ns_name is not None and not any(glob_match(str(p), ns_name) for p in namespaces):
        return False, "namespaces"
    excluded = match.get("excludedNamespaces")
    if excluded and ns_name is not None and any(glob_match(str(p), ns_name) for p in excluded):
        return False, "excludedNamespaces"
    name = match.get("name")
    if name and not glob_match(str(name), request.name or str(meta.get("name") or "")):
        return False, "name"
    selector = match.get("labelSelector")
    if selector is not None and not _labels_match(selector, request):
        return False, "labelSelector"
    ns_selector = match.get("namespaceSelector")
    if ns_selector is not None and ns_name is not None:
        labels = (meta.get("labels") or {}) if is_namespace else namespace_labels(ns_name)
        if labels is None or not selector_matches(ns_selector, labels):
            return False, "namespaceSelector"
    return True, ""


def _labels_match(selector: dict[str, Any], request: Request) -> bool:
    """Gatekeeper matches the labelSelector against the new object, or the old one (an UPDATE that removes a
    label is still matched by the old labels)."""
    for obj in (request.object, request.old_object):
        if obj is not None and selector_matches(selector, (obj.get("metadata") or {}).get("labels") or {}):
            return True
    return False
