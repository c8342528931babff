"""The Kubernetes authorizer CEL library, answered from the RBAC objects in cluster state.

    authorizer.group('apps').resource('deployments').namespace('team').name('web').check('update').allowed()
    authorizer.path('/healthz').check('get').allowed()
    authorizer.serviceAccount('team', 'builder').group('').resource('pods').check('create').allowed()

`authorizer` is the request's user (userInfo.username and groups). A check is answered as the API server's RBAC
authorizer answers it, from the Roles, ClusterRoles, RoleBindings and ClusterRoleBindings in the cluster state
(a ClusterRoleBinding grants everywhere; a RoleBinding grants in its namespace, its ClusterRole's rules
included; rules match on apiGroups, resources (`resource/subresource`, `*`), resourceNames, verbs and
nonResourceURLs with a trailing `*`). Aggregated ClusterRoles are read through their `rules` as stored.

Where that cannot be known, the answer is a documented denial, not a guess: with no cluster state
(`errored()` is true, `error()` says why) or no RBAC objects in it (`allowed()` is false, `reason()` says
so: `serve` watches no RBAC kinds; `lint` and `test` see the RBAC objects among their manifests).
`system:masters` is allowed everything, as in the API server.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator
from typing import Any

from cel_expr_python import cel

from admission.engines.cel.expr import Library, Overload
from admission.engines.cel.messages import message_class, type_name
from admission.state import ClusterState, StateUnavailable

T = cel.Type
AUTHORIZER = T(type_name("Authorizer"))
RESOURCE_CHECK = T(type_name("ResourceCheck"))
PATH_CHECK = T(type_name("PathCheck"))
DECISION = T(type_name("Decision"))

# the cluster state the current evaluation answers from (set around evaluation by the evaluator)
current_state: contextvars.ContextVar[ClusterState | None] = contextvars.ContextVar("cel_authz_state", default=None)
RBAC_KINDS = ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")


def authorizer_for(user_info: dict[str, Any]) -> Any:
    """The `authorizer` variable's value for a request's userInfo."""
    return message_class("Authorizer")(user=str(user_info.get("username") or ""),
                                       groups=[str(g) for g in user_info.get("groups") or []])


_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")


def _service_account(a: Any, namespace: str, name: str) -> Any:
    # the Kubernetes library's checks and words (a service account name is a DNS subdomain, a namespace a label)
    if len(name) > 253 or not _DNS_SUBDOMAIN.fullmatch(name):
        raise ValueError("Invalid service account name")
    if len(namespace) > 63 or not re.fullmatch(_DNS_LABEL, namespace):
        raise ValueError("Invalid service account namespace")
    return message_class("Authorizer")(
        user=f"system:serviceaccount:{namespace}:{name}",
        groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"])


def _group(a: Any, group: str) -> Any:
    return message_class("ResourceCheck")(user=a.user, groups=list(a.groups), group=group)


def _with(field: str) -> Any:
    def set_field(check: Any, value: str) -> Any:
        if field == "resource" and not value.strip():
            raise ValueError("resource must not be empty")
        out = message_class("ResourceCheck")()
        out.CopyFrom(check)
        setattr(out, field, value)
        return out
    return set_field


def _path(a: Any, path: str) -> Any:
    if not path.strip():
        raise ValueError("path must not be empty")
    return message_class("PathCheck")(user=a.user, groups=list(a.groups), path=path)


def _decision(allowed: bool, reason: str = "", error: str = "") -> Any:
    return message_class("Decision")(allowed=allowed, reason=reason, error=error)


def _check(check: Any, verb: str) -> Any:
    state = current_state.get()
    if state is None or not state.available:
        why = (state.reason if state is not None else "") or "no cluster state is available"
        return _decision(False, error=f"authorizer unavailable: {why}")
    if "system:masters" in check.groups:
        return _decision(True, "system:masters")
    try:
        objects = {kind: state.list(kind) for kind in RBAC_KINDS}
    except StateUnavailable as e:
        return _decision(False, error=f"authorizer unavailable: {e}")
    if not any(objects.values()):
        return _decision(False, "no RBAC objects (Roles, RoleBindings, ...) in the cluster state: denied")
    is_path = check.DESCRIPTOR.name == "PathCheck"
    namespace = "" if is_path else check.namespace
    for rule, binding in _rules_for(check.user, list(check.groups), namespace, objects):
        if _rule_allows(rule, check, verb, is_path):
            return _decision(True, f"RBAC: allowed by {binding}")
    return _decision(False, "")


def _subject_matches(subject: dict[str, Any], user: str, groups: list[str], binding_ns: str) -> bool:
    kind = subject.get("kind")
    name = str(subject.get("name") or "")
    if kind == "User":
        return name == user
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        ns = str(subject.get("namespace") or binding_ns)
        return user == f"system:serviceaccount:{ns}:{name}"
    return False


def _rules_for(user: str, groups: list[str], namespace: str,
               objects: dict[str, list[Any]]) -> Iterator[tuple[dict[str, Any], str]]:
    cluster_roles = {(o.get("metadata") or {}).get("name"): o for o in objects["ClusterRole"]}
    roles = {((o.get("metadata") or {}).get("namespace"), (o.get("metadata") or {}).get("name")): o
             for o in objects["Role"]}
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for b in objects[kind]:
            meta = b.get("metadata") or {}
            b_ns = str(meta.get("namespace") or "")
            if kind == "RoleBinding" and b_ns != namespace:
                continue
            if not any(_subject_matches(s, user, groups, b_ns) for s in b.get("subjects") or [] if isinstance(s, dict)):
                continue
            ref = b.get("roleRef") or {}
            role = (cluster_roles.get(ref.get("name")) if ref.get("kind") == "ClusterRole"
                    else roles.get((b_ns, ref.get("name"))))
            for rule in (role or {}).get("rules") or []:
                if isinstance(rule, dict):
                    yield rule, f"{kind} {meta.get('name')}"


def _has(values: Any, value: str) -> bool:
    return isinstance(values, list) and ("*" in values or value in values)


def _rule_allows(rule: dict[str, Any], check: Any, verb: str, is_path: bool) -> bool:
    if not _has(rule.get("verbs"), verb):
        return False
    if is_path:
        return any(u == check.path or u == "*" or (u.endswith("*") and check.path.startswith(u[:-1]))
                   for u in rule.get("nonResourceURLs") or [] if isinstance(u, str))
    if not _has(rule.get("apiGroups"), check.group):
        return False
    resource = f"{check.resource}/{check.subresource}" if check.subresource else check.resource
    resources = rule.get("resources") or []
    if not (_has(resources, resource) or (check.subresource and f"*/{check.subresource}" in resources)):
        return False
    names = rule.get("resourceNames") or []
    return not names or check.name in names


def _o(function: str, oid: str, result: Any, params: list[Any], member: bool, impl: Any) -> Overload:
    return Overload(function, oid, result, tuple(params), member, impl)


AUTHZ = Library("kubernetes.authz", (
    _o("serviceAccount", "authorizer_serviceaccount", AUTHORIZER, [AUTHORIZER, T.STRING, T.STRING], True,
       _service_account),
    _o("group", "authorizer_group", RESOURCE_CHECK, [AUTHORIZER, T.STRING], True, _group),
    _o("path", "authorizer_path", PATH_CHECK, [AUTHORIZER, T.STRING], True, _path),
    _o("resource", "resourcecheck_resource", RESOURCE_CHECK, [RESOURCE_CHECK, T.STRING], True, _with("resource")),
    _o("subresource", "resourcecheck_subresource", RESOURCE_CHECK, [RESOURCE_CHECK, T.STRING], True,
       _with("subresource")),
    _o("namespace", "resourcecheck_namespace", RESOURCE_CHECK, [RESOURCE_CHECK, T.STRING], True,
       _with("namespace")),
    _o("name", "resourcecheck_name", RESOURCE_CHECK, [RESOURCE_CHECK, T.STRING], True, _with("name")),
    _o("check", "resourcecheck_check", DECISION, [RESOURCE_CHECK, T.STRING], True, _check),
    _o("check", "pathcheck_check", DECISION, [PATH_CHECK, T.STRING], True, _check),
    _o("allowed", "decision_allowed", T.BOOL, [DECISION], True, lambda d: bool(d.allowed)),
    _o("reason", "decision_reason", T.STRING, [DECISION], True, lambda d: d.reason),
    _o("errored", "decision_errored", T.BOOL, [DECISION], True, lambda d: bool(d.error)),
    _o("error", "decision_error", T.STRING, [DECISION], True, lambda d: d.error),
))
