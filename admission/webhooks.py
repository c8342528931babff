"""Webhook registration rules derived from the loaded policies, so that deploy/ and the policies agree.

Each policy says what its rules can apply to (PolicyInfo.targets: kinds, subresources, operations, per
phase). `rules(policies, phase)` turns those into the `rules` of a ValidatingWebhookConfiguration
(phase "validate", path /validate) or MutatingWebhookConfiguration (phase "mutate", path /mutate): the API
server then sends exactly the requests some rule may act on: UPDATE and DELETE only where a rule takes
them, pod controllers where rules are generated for them, and Namespaces or NetworkPolicies only where a
rule matches them (the server reads those as cluster state, not as admission requests).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from admission.engines import OPERATIONS, PolicyInfo, Target
from admission.review import plural

# kind -> (group, preferred version, resource, namespaced), for the kinds policies commonly name.
KINDS: dict[str, tuple[str, str, str, bool]] = {
    "Pod": ("", "v1", "pods", True),
    "Service": ("", "v1", "services", True),
    "ConfigMap": ("", "v1", "configmaps", True),
    "Secret": ("", "v1", "secrets", True),
    "ServiceAccount": ("", "v1", "serviceaccounts", True),
    "PersistentVolumeClaim": ("", "v1", "persistentvolumeclaims", True),
    "PersistentVolume": ("", "v1", "persistentvolumes", False),
    "ReplicationController": ("", "v1", "replicationcontrollers", True),
    "Namespace": ("", "v1", "namespaces", False),
    "Node": ("", "v1", "nodes", False),
    "LimitRange": ("", "v1", "limitranges", True),
    "ResourceQuota": ("", "v1", "resourcequotas", True),
    "Endpoints": ("", "v1", "endpoints", True),
    "Deployment": ("apps", "v1", "deployments", True),
    "StatefulSet": ("apps", "v1", "statefulsets", True),
    "DaemonSet": ("apps", "v1", "daemonsets", True),
    "ReplicaSet": ("apps", "v1", "replicasets", True),
    "Job": ("batch", "v1", "jobs", True),
    "CronJob": ("batch", "v1", "cronjobs", True),
    "Ingress": ("networking.k8s.io", "v1", "ingresses", True),
    "IngressClass": ("networking.k8s.io", "v1", "ingressclasses", False),
    "NetworkPolicy": ("networking.k8s.io", "v1", "networkpolicies", True),
    "PodDisruptionBudget": ("policy", "v1", "poddisruptionbudgets", True),
    "HorizontalPodAutoscaler": ("autoscaling", "v2", "horizontalpodautoscalers", True),
    "Role": ("rbac.authorization.k8s.io", "v1", "roles", True),
    "RoleBinding": ("rbac.authorization.k8s.io", "v1", "rolebindings", True),
    "ClusterRole": ("rbac.authorization.k8s.io", "v1", "clusterroles", False),
    "ClusterRoleBinding": ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", False),
    "StorageClass": ("storage.k8s.io", "v1", "storageclasses", False),
    "PriorityClass": ("scheduling.k8s.io", "v1", "priorityclasses", False),
    "RuntimeClass": ("node.k8s.io", "v1", "runtimeclasses", False),
    "CustomResourceDefinition": ("apiextensions.k8s.io", "v1", "customresourcedefinitions", False),
    "ValidatingWebhookConfiguration": ("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations", False),
    "MutatingWebhookConfiguration": ("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations", False),
}


def _resolve(t: Target) -> tuple[str, str, str, str]:
    """(apiGroup, apiVersion, resource[/subresource], scope) of a target."""
    if t.kind == "*":
        group, version, resource, scope = t.group, "*", "*", "*"
    elif t.kind in KINDS:
        known_group, known_version, resource, namespaced = KINDS[t.kind]
        group = known_group if t.group == "*" else t.group
        version = known_version if t.version == "*" else t.version
        scope = "Namespaced" if namespaced else "Cluster"
    else:  # a kind we do not know (a custom resource): its lowercase plural, any scope
        group, version, resource, scope = t.group, t.version, plural(t.kind), "*"
    if t.subresource:
        resource = f"{resource}/{t.subresource}"
    return group, version, resource, scope


def rules(policies: Iterable[PolicyInfo], phase: str) -> list[dict[str, Any]]:
    """The webhook `rules` for one phase ("validate" or "mutate"): one rule per (apiGroup, apiVersion,
    operations, scope), each listing its resources; in a stable order."""
    ops: dict[tuple[str, str, str, str], set[str]] = {}
    for info in policies:
        for t in info.targets:
            if t.phase == phase:
                ops.setdefault(_resolve(t), set()).update(t.operations)
    grouped: dict[tuple[str, str, tuple[str, ...], str], set[str]] = {}
    for (group, version, resource, scope), found in ops.items():
        key = (group, version, tuple(o for o in OPERATIONS if o in found), scope)
        grouped.setdefault(key, set()).add(resource)
    return [
        {"apiGroups": [group], "apiVersions": [version], "operations": list(operations),
         "resources": sorted(resources), "scope": scope}
        for (group, version, operations, scope), resources in sorted(grouped.items())
    ]


def derived(policies: Iterable[PolicyInfo]) -> dict[str, list[dict[str, Any]]]:
    """The rules of both webhooks: {"validate": [...], "mutate": [...]}."""
    infos = list(policies)
    return {"validate": rules(infos, "validate"), "mutate": rules(infos, "mutate")}
