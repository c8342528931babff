"""Kubernetes' `matchConstraints` (admissionregistration/v1 MatchResources) for Kyverno's CEL policy kinds,
and their pod-controller auto-generation. Matching itself is the Kubernetes kinds' (admission.engines.cel.
matching: resource rules, exclusions, namespace and object selectors, matchPolicy).

Auto-generation (Kyverno's, for ValidatingPolicy): a policy whose resource rules select only Pods also
applies to the pod controllers, with every expression reading the pod from the template
(admission.engines.cel.syntax.passes.pod_template_paths): `spec.template` for Deployments, DaemonSets,
StatefulSets, ReplicaSets, ReplicationControllers and Jobs, `spec.jobTemplate.spec.template` for CronJobs.
"""

from __future__ import annotations

from typing import Any

from admission.engines.cel.matching import MatchResources, ResourceRule
from admission.review import Request

# controller kind -> (group, resource, which template: see passes.pod_template_paths)
CONTROLLERS: dict[str, tuple[str, str, str]] = {
    "Deployment": ("apps", "deployments", "template"),
    "DaemonSet": ("apps", "daemonsets", "template"),
    "StatefulSet": ("apps", "statefulsets", "template"),
    "ReplicaSet": ("apps", "replicasets", "template"),
    "ReplicationController": ("", "replicationcontrollers", "template"),
    "Job": ("batch", "jobs", "template"),
    "CronJob": ("batch", "cronjobs", "jobTemplate"),
}
# Kyverno's default controllers for a ValidatingPolicy that matches Pods
DEFAULT_CONTROLLERS = ("DaemonSet", "Deployment", "Job", "StatefulSet", "ReplicaSet", "ReplicationController",
                       "CronJob")
_BY_RESOURCE = {resource: kind for kind, (_, resource, _) in CONTROLLERS.items()}

# The cluster-scoped kinds among those policies commonly match (for `scope` and namespaceSelector).
CLUSTER_SCOPED_RESOURCES = frozenset({
    "namespaces", "nodes", "persistentvolumes", "clusterroles", "clusterrolebindings", "storageclasses",
    "priorityclasses", "runtimeclasses", "customresourcedefinitions", "ingressclasses", "csidrivers",
    "csinodes", "volumeattachments", "validatingwebhookconfigurations", "mutatingwebhookconfigurations",
    "validatingadmissionpolicies", "validatingadmissionpolicybindings", "mutatingadmissionpolicies",
    "mutatingadmissionpolicybindings", "apiservices", "certificatesigningrequests", "flowschemas",
    "prioritylevelconfigurations", "podsecuritypolicies", "clusterpolicies",
})


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def request_coordinates(request: Request) -> tuple[str, str, str, str, str, bool]:
    """(group, version, resource, subresource, name, namespaced) of a request."""
    resource = request.resource or {}
    group = str(resource.get("group") if resource.get("group") is not None else request.kind.group)
    version = str(resource.get("version") or request.kind.version)
    plural = str(resource.get("resource") or "")
    obj = request.resource_object
    name = request.name or str((obj.get("metadata") or {}).get("name") or "")
    namespaced = plural not in CLUSTER_SCOPED_RESOURCES and bool(
        request.namespace or (obj.get("metadata") or {}).get("namespace"))
    return group, version, plural, request.sub_resource, name, namespaced


def _rule(r: dict[str, Any]) -> ResourceRule:
    return ResourceRule(
        api_groups=tuple(_strings(r.get("apiGroups"))), api_versions=tuple(_strings(r.get("apiVersions"))),
        # a rule without operations applies to every operation, as the kyverno CLI applies it
        operations=tuple(_strings(r.get("operations"))) or ("*",), resources=tuple(_strings(r.get("resources"))),
        resource_names=tuple(_strings(r.get("resourceNames"))), scope=str(r.get("scope") or "*"))


def match_resources(match: dict[str, Any]) -> MatchResources:
    """matchConstraints read once, as the Kubernetes kinds read them (admission.engines.cel.matching: resource
    rules, exclusions, namespace and object selectors, matchPolicy). Its namespace_labels callable may raise
    when labels cannot be known (no cluster state): a namespaceSelector is then an error, not a silent miss."""
    return MatchResources(
        tuple(_rule(r) for r in match.get("resourceRules") or [] if isinstance(r, dict)),
        tuple(_rule(r) for r in match.get("excludeResourceRules") or [] if isinstance(r, dict)),
        match.get("namespaceSelector") or None, match.get("objectSelector") or None,
        match.get("matchPolicy") == "Exact")


def only_pods(match: dict[str, Any]) -> bool:
    """Whether the resource rules select Pods and nothing else (then controllers are generated)."""
    rules = [r for r in match.get("resourceRules") or [] if isinstance(r, dict)]
    if not rules:
        return False
    for r in rules:
        groups, resources = _strings(r.get("apiGroups")), _strings(r.get("resources"))
        if groups != [""] or not resources or any(x != "pods" for x in resources):
            return False
        if r.get("resourceNames"):
            return False
    return True


def controllers_for(match: dict[str, Any], spec: dict[str, Any], annotations: dict[str, str]) -> list[str]:
    """The controller kinds a Pod policy is generated for (empty: none)."""
    if not only_pods(match):
        return []
    configured = ((spec.get("autogen") or {}).get("podControllers") or {}).get("controllers")
    if isinstance(configured, list):
        wanted = [str(c) for c in configured]
    else:
        value = annotations.get("pod-policies.kyverno.io/autogen-controllers")
        if value is None:
            return list(DEFAULT_CONTROLLERS)
        wanted = [v.strip() for v in value.split(",") if v.strip()]
    if "none" in (w.lower() for w in wanted):
        return []
    if "all" in (w.lower() for w in wanted):
        return list(DEFAULT_CONTROLLERS)
    out: list[str] = []
    for w in wanted:
        kind = w if w in CONTROLLERS else _BY_RESOURCE.get(w.lower(), "")
        if kind and kind not in out:
            out.append(kind)
    return out


def controller_match(match: dict[str, Any], kinds: list[str]) -> dict[str, Any]:
    """matchConstraints for the controllers: the Pod rules' operations, on the controllers' resources."""
    ops: list[str] = []
    for r in match.get("resourceRules") or []:
        for o in _strings((r or {}).get("operations")):
            if o not in ops:
                ops.append(o)
    rules: list[dict[str, Any]] = []
    for kind in kinds:
        group, resource, _ = CONTROLLERS[kind]
        rules.append({"apiGroups": [group], "apiVersions": ["*"], "resources": [resource], "operations": ops})
    out = {k: v for k, v in match.items() if k not in ("resourceRules", "excludeResourceRules")}
    out["resourceRules"] = rules
    return out
