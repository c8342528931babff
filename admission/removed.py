"""API versions Kubernetes has removed, as pluto and kubent report them: what replaces each, and since when.

A manifest still written against one of these cannot be applied to a cluster of that version or later:
the API server no longer serves it. `lint` reports each such object as a finding of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from admission.results import Action, RuleResult, Status

POLICY = "removed-api-versions"
DESCRIPTION = "the object's apiVersion has been removed from Kubernetes; it must be rewritten to the replacement"


@dataclass(frozen=True)
class Removed:
    api_version: str
    kind: str
    removed_in: str  # the Kubernetes version that stopped serving it
    replacement: str  # apiVersion to use instead, or a sentence when there is none

    def message(self) -> str:
        instead = (f"use {self.replacement}" if "/" in self.replacement or self.replacement.startswith("v")
                   else self.replacement)
        return (f"{self.api_version} {self.kind} was removed in Kubernetes {self.removed_in}; {instead}")


def _table(*rows: tuple[str, str, str, str]) -> dict[tuple[str, str], Removed]:
    return {(av, kind): Removed(av, kind, version, replacement) for av, kind, version, replacement in rows}


REMOVED: dict[tuple[str, str], Removed] = _table(
    # v1.16
    ("extensions/v1beta1", "Deployment", "v1.16", "apps/v1"),
    ("extensions/v1beta1", "DaemonSet", "v1.16", "apps/v1"),
    ("extensions/v1beta1", "ReplicaSet", "v1.16", "apps/v1"),
    ("extensions/v1beta1", "NetworkPolicy", "v1.16", "networking.k8s.io/v1"),
    ("extensions/v1beta1", "PodSecurityPolicy", "v1.16", "policy/v1beta1 (itself removed in v1.25: use Pod Security Admission)"),
    ("apps/v1beta1", "Deployment", "v1.16", "apps/v1"),
    ("apps/v1beta1", "StatefulSet", "v1.16", "apps/v1"),
    ("apps/v1beta1", "ReplicaSet", "v1.16", "apps/v1"),
    ("apps/v1beta1", "ControllerRevision", "v1.16", "apps/v1"),
    ("apps/v1beta2", "Deployment", "v1.16", "apps/v1"),
    ("apps/v1beta2", "DaemonSet", "v1.16", "apps/v1"),
    ("apps/v1beta2", "ReplicaSet", "v1.16", "apps/v1"),
    ("apps/v1beta2", "StatefulSet", "v1.16", "apps/v1"),
    ("apps/v1beta2", "ControllerRevision", "v1.16", "apps/v1"),
    # v1.17
    ("scheduling.k8s.io/v1alpha1", "PriorityClass", "v1.17", "scheduling.k8s.io/v1"),
    # v1.21
    ("batch/v2alpha1", "CronJob", "v1.21", "batch/v1"),
    # v1.22
    ("extensions/v1beta1", "Ingress", "v1.22", "networking.k8s.io/v1"),
    ("networking.k8s.io/v1beta1", "Ingress", "v1.22", "networking.k8s.io/v1"),
    ("networking.k8s.io/v1beta1", "IngressClass", "v1.22", "networking.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRole", "v1.22", "rbac.authorization.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding", "v1.22", "rbac.authorization.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1beta1", "Role", "v1.22", "rbac.authorization.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1beta1", "RoleBinding", "v1.22", "rbac.authorization.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1alpha1", "ClusterRole", "v1.22", "rbac.authorization.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1alpha1", "ClusterRoleBinding", "v1.22", "rbac.authorization.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1alpha1", "Role", "v1.22", "rbac.authorization.k8s.io/v1"),
    ("rbac.authorization.k8s.io/v1alpha1", "RoleBinding", "v1.22", "rbac.authorization.k8s.io/v1"),
    ("admissionregistration.k8s.io/v1beta1", "MutatingWebhookConfiguration", "v1.22", "admissionregistration.k8s.io/v1"),
    ("admissionregistration.k8s.io/v1beta1", "ValidatingWebhookConfiguration", "v1.22", "admissionregistration.k8s.io/v1"),
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition", "v1.22", "apiextensions.k8s.io/v1"),
    ("apiregistration.k8s.io/v1beta1", "APIService", "v1.22", "apiregistration.k8s.io/v1"),
    ("authentication.k8s.io/v1beta1", "TokenReview", "v1.22", "authentication.k8s.io/v1"),
    ("authorization.k8s.io/v1beta1", "SubjectAccessReview", "v1.22", "authorization.k8s.io/v1"),
    ("authorization.k8s.io/v1beta1", "LocalSubjectAccessReview", "v1.22", "authorization.k8s.io/v1"),
    ("authorization.k8s.io/v1beta1", "SelfSubjectAccessReview", "v1.22", "authorization.k8s.io/v1"),
    ("certificates.k8s.io/v1beta1", "CertificateSigningRequest", "v1.22", "certificates.k8s.io/v1"),
    ("coordination.k8s.io/v1beta1", "Lease", "v1.22", "coordination.k8s.io/v1"),
    ("scheduling.k8s.io/v1beta1", "PriorityClass", "v1.22", "scheduling.k8s.io/v1"),
    ("storage.k8s.io/v1beta1", "CSIDriver", "v1.22", "storage.k8s.io/v1"),
    ("storage.k8s.io/v1beta1", "CSINode", "v1.22", "storage.k8s.io/v1"),
    ("storage.k8s.io/v1beta1", "StorageClass", "v1.22", "storage.k8s.io/v1"),
    ("storage.k8s.io/v1beta1", "VolumeAttachment", "v1.22", "storage.k8s.io/v1"),
    # v1.25
    ("batch/v1beta1", "CronJob", "v1.25", "batch/v1"),
    ("policy/v1beta1", "PodDisruptionBudget", "v1.25", "policy/v1"),
    ("policy/v1beta1", "PodSecurityPolicy", "v1.25", "no replacement: use Pod Security Admission (namespace labels)"),
    ("autoscaling/v2beta1", "HorizontalPodAutoscaler", "v1.25", "autoscaling/v2"),
    ("discovery.k8s.io/v1beta1", "EndpointSlice", "v1.25", "discovery.k8s.io/v1"),
    ("events.k8s.io/v1beta1", "Event", "v1.25", "events.k8s.io/v1"),
    ("node.k8s.io/v1beta1", "RuntimeClass", "v1.25", "node.k8s.io/v1"),
    # v1.26
    ("autoscaling/v2beta2", "HorizontalPodAutoscaler", "v1.26", "autoscaling/v2"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema", "v1.26", "flowcontrol.apiserver.k8s.io/v1"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "PriorityLevelConfiguration", "v1.26", "flowcontrol.apiserver.k8s.io/v1"),
    # v1.27
    ("storage.k8s.io/v1beta1", "CSIStorageCapacity", "v1.27", "storage.k8s.io/v1"),
    # v1.29
    ("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema", "v1.29", "flowcontrol.apiserver.k8s.io/v1"),
    ("flowcontrol.apiserver.k8s.io/v1beta2", "PriorityLevelConfiguration", "v1.29", "flowcontrol.apiserver.k8s.io/v1"),
    # v1.32
    ("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema", "v1.32", "flowcontrol.apiserver.k8s.io/v1"),
    ("flowcontrol.apiserver.k8s.io/v1beta3", "PriorityLevelConfiguration", "v1.32", "flowcontrol.apiserver.k8s.io/v1"),
)


def removed(api_version: str, kind: str) -> Removed | None:
    return REMOVED.get((api_version, kind))


def check(obj: object) -> RuleResult | None:
    """A failing result when the object's apiVersion and kind are among the removed ones, else None."""
    if not isinstance(obj, dict):
        return None
    found = removed(str(obj.get("apiVersion") or ""), str(obj.get("kind") or ""))
    if found is None:
        return None
    return RuleResult(POLICY, "", Status.FAIL, found.message(), Action.ENFORCE, path="/apiVersion")
