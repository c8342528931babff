"""`matchConstraints` / `matchResources` (admissionregistration.k8s.io MatchResources), as the API server reads them.

A request matches when some `resourceRules` entry matches it and no `excludeResourceRules` entry does, and
both selectors select it:

- a rule matches the request's operation (`*` for all), API group, version and resource (`*`; `pods/*` for
  every subresource of pods; `*/scale` for the scale subresource of anything; `*/*` for everything; a rule
  without a subresource matches only the resource itself), `resourceNames` (empty for all) and `scope`
  (`Cluster`, `Namespaced` or `*`);
- `namespaceSelector` is matched against the labels of the request's namespace; a Namespace itself is matched
  on its own labels, and other cluster-scoped objects are never excluded by it; a namespace whose labels are
  not known counts as having none;
- `objectSelector` is matched against the labels of the object and of the old object: either selects;
- `matchPolicy: Equivalent` (the default) also matches a request for the same group and resource in another
  version (the API server would convert it); `Exact` does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from admission.review import Request
from admission.selectors import selector_matches

OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT", "*")
SCOPES = ("Cluster", "Namespaced", "*")


@dataclass(frozen=True)
class ResourceRule:
    api_groups: tuple[str, ...]
    api_versions: tuple[str, ...]
    operations: tuple[str, ...]
    resources: tuple[str, ...]
    resource_names: tuple[str, ...] = ()
    scope: str = "*"

    def matches(self, request: Request, *, exact: bool) -> bool:
        if "*" not in self.operations and request.operation not in self.operations:
            return False
        group = request.resource.get("group", request.kind.group) if request.resource else request.kind.group
        version = request.resource.get("version", request.kind.version) if request.resource else request.kind.version
        if "*" not in self.api_groups and group not in self.api_groups:
            return False
        if exact and "*" not in self.api_versions and version not in self.api_versions:
            return False
        if not any(_resource_matches(r, request) for r in self.resources):
            return False
        if self.resource_names and request.name not in self.resource_names:
            return False
        if self.scope != "*":
            namespaced = bool(request.namespace)
            if (self.scope == "Namespaced") != namespaced:
                return False
        return True


def _resource_matches(pattern: str, request: Request) -> bool:
    resource = request.resource.get("resource", "") if request.resource else ""
    sub = request.sub_resource
    want_res, _, want_sub = pattern.partition("/")
    if pattern == "*/*":
        return True
    if want_res not in ("*", resource):
        return False
    if "/" not in pattern:
        return not sub
    return want_sub == "*" or want_sub == sub


@dataclass(frozen=True)
class MatchResources:
    rules: tuple[ResourceRule, ...]
    exclude: tuple[ResourceRule, ...] = ()
    namespace_selector: Mapping[str, Any] | None = None  # None: every namespace
    object_selector: Mapping[str, Any] | None = None  # None: every object
    exact: bool = False  # matchPolicy: Exact

    def matches(self, request: Request, namespace_labels: Callable[[str], Mapping[str, Any] | None]) -> bool:
        """Whether the request is in scope. `namespace_labels(name)` gives a namespace's labels (None: unknown)."""
        if not any(r.matches(request, exact=self.exact) for r in self.rules):
            return False
        if any(r.matches(request, exact=self.exact) for r in self.exclude):
            return False
        return self._namespace_selected(request, namespace_labels) and self._object_selected(request)

    def _namespace_selected(self, request: Request,
                            namespace_labels: Callable[[str], Mapping[str, Any] | None]) -> bool:
        if not self.namespace_selector:
            return True
        if request.kind.kind == "Namespace" and request.kind.group == "":
            meta = request.resource_object.get("metadata") or {}
            return selector_matches(self.namespace_selector, meta.get("labels") or {})
        if not request.namespace:
            return True
        return selector_matches(self.namespace_selector, namespace_labels(request.namespace) or {})

    def _object_selected(self, request: Request) -> bool:
        if not self.object_selector:
            return True
        for obj in (request.object, request.old_object):
            if obj is not None and selector_matches(self.object_selector, (obj.get("metadata") or {}).get("labels") or {}):
                return True
        return False

    def kinds(self) -> list[tuple[str, str, str, tuple[str, ...]]]:
        """(group, version, resource, operations) of every rule, for webhook registration."""
        return [(g, v, r, rule.operations) for rule in self.rules for g in rule.api_groups
                for v in rule.api_versions for r in rule.resources]
