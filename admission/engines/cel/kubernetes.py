"""The variables of a Kubernetes admission expression, as the API server binds them.

- `object`, `oldObject`: the request's objects (null when absent: oldObject on CREATE, object on DELETE);
- `request`: the admission request's attributes (kind, resource, name, namespace, operation, userInfo, dryRun,
  options, ...), without the objects (as the API server's `request` variable);
- `params`: the parameter object the binding selected (null without paramKind);
- `namespaceObject`: the Namespace of a namespaced request (null for cluster-scoped ones or when unknown);
- `variables`: the policy's variables by name (admission.engines.cel.variables evaluates them);
- `authorizer`: RBAC checks (admission.engines.cel.authz).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from admission.engines.cel.authz import authorizer_for
from admission.engines.cel.expr import Activation, bind
from admission.prune import Paths
from admission.review import Request
from admission.types import Object


def request_variable(request: Request) -> dict[str, Any]:
    """`request` as CEL sees it: AdmissionRequest without object and oldObject; absent fields are left out."""
    wire = request.to_wire()
    wire.pop("object", None)
    wire.pop("oldObject", None)
    if wire.get("options") is None:
        wire.pop("options", None)
    wire.setdefault("requestKind", wire["kind"])
    if wire.get("resource"):
        wire.setdefault("requestResource", wire["resource"])
    return wire


def kubernetes_values(request: Request, *, params: Object | None = None, namespace_object: Object | None = None,
                      variables: Mapping[str, Any] | None = None, authorizer: Any = None,
                      obj: Object | None = None) -> dict[str, Any]:
    """The plain values of the Kubernetes variables for one request. `obj` replaces the request's object (a
    mutated copy, as mutating policies see it after earlier mutations)."""
    return {
        "object": request.object if obj is None else obj,
        "oldObject": request.old_object,
        "request": request_variable(request),
        "params": params,
        "namespaceObject": namespace_object,
        "variables": dict(variables or {}),
        "authorizer": authorizer if authorizer is not None else authorizer_for(request.user_info),
    }


def kubernetes_activation(request: Request, reads: Mapping[str, Paths | None] | None = None, **kwargs: Any) -> Activation:
    """kubernetes_values bound once: every expression of every policy evaluated for the request reads it
    (`reads`: what they can read of the objects, `read_paths`; the rest is not bound)."""
    return bind(kubernetes_values(request, **kwargs), reads)
