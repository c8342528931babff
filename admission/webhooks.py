"""Webhook registration rules derived from the loaded policies, so that deploy/ and the policies agree.

Each policy says what its rules can apply to (PolicyInfo.targets: kinds, subresources, operations, per
phase). `rules(policies, phase)` turns those into the `rules` of a ValidatingWebhookConfiguration
(phase "validate", path /validate) or MutatingWebhookConfiguration (phase "mutate", path /mutate): the API
server then sends exactly the requests some rule may act on: UPDATE and DELETE only where a rule takes
them, pod controllers where rules are generated for them, and Namespaces or NetworkPolicies only where a
rule matches them (the server reads those as cluster state, not as admission requests).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from admission.engines import OPERATIONS, PolicyInfo, Skips, Target
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
        # the preferred version belongs to the known group (Deployments of `extensions` were never v1)
        version = t.version if t.version != "*" else known_version if group == known_group else "*"
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


# --- whole webhook configurations (admission register) -------------------------------------------------------

DEFAULT_TIMEOUT = 10
SYSTEM_NAMESPACE = "kube-system"
FIELD_MANAGER = "admission"
PATHS = {"validate": "/validate", "mutate": "/mutate"}
KINDS_BY_PHASE = {"validate": "ValidatingWebhookConfiguration", "mutate": "MutatingWebhookConfiguration"}
API_VERSION = "admissionregistration.k8s.io/v1"


class RegistrationError(ValueError):
    """Registration options that cannot work; the message says which and why."""


@dataclass(frozen=True)
class Registration:
    """Where the API server reaches the server, and how the configurations are named and guarded."""

    name: str = "admission"  # metadata.name of both configurations
    url: str = ""  # https://host:port of a server outside the cluster (paths are appended)
    service: tuple[str, str, int] | None = None  # (namespace, name, port) of the Service in front of it
    namespace: str = ""  # the server's own namespace, always excluded ("" : the Service's, else "admission")
    ca_bundle: bytes = b""  # PEM of the CA(s) that sign the serving certificate; empty: none in the output
    inject_ca_from: str = ""  # cert-manager Certificate NAMESPACE/NAME whose CA the injector fills in
    timeout_seconds: int = DEFAULT_TIMEOUT  # for policies that do not set their own
    namespace_labels: tuple[tuple[str, str], ...] = ()  # opt-in: only namespaces with these labels

    @property
    def own_namespace(self) -> str:
        return self.namespace or (self.service[0] if self.service else "admission")


def parse_service(text: str) -> tuple[str, str, int]:
    """`NAMESPACE/NAME[:PORT]` (port 443 when left out)."""
    namespace, slash, rest = text.partition("/")
    name, colon, port = rest.partition(":")
    if not slash or not namespace or not name:
        raise RegistrationError(f"--service {text!r}: expected NAMESPACE/NAME[:PORT], e.g. admission/admission")
    if colon and not (port.isdigit() and 0 < int(port) < 65536):
        raise RegistrationError(f"--service {text!r}: the port must be a number from 1 to 65535")
    return namespace, name, int(port) if colon else 443


def check_url(url: str) -> str:
    """The API server calls webhooks over HTTPS only, without query or fragment (and paths are ours to add)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment or parts.username:
        raise RegistrationError(f"--url {url!r}: expected https://HOST[:PORT][/PREFIX] (no query, fragment or user)")
    return url.rstrip("/")


def client_config(reg: Registration, phase: str) -> dict[str, Any]:
    path = PATHS[phase]
    out: dict[str, Any]
    if reg.url:
        out = {"url": check_url(reg.url) + path}
    elif reg.service:
        namespace, name, port = reg.service
        out = {"service": {"namespace": namespace, "name": name, "path": path, "port": port}}
    else:
        raise RegistrationError("say where the API server reaches the server: --url URL or --service NAMESPACE/NAME")
    if reg.ca_bundle:
        out["caBundle"] = base64.b64encode(reg.ca_bundle).decode()
    return out


def _cel_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(v) for v in sorted(values)) + "]"


def match_conditions(skips: Skips) -> list[dict[str, str]]:
    """CEL conditions that leave out the requests every policy of a webhook skips (its users and groups)."""
    out = []
    if skips.users:
        out.append({"name": "excluded-users",
                    "expression": f"!(request.userInfo.username in {_cel_list(skips.users)})"})
    if skips.groups:
        out.append({"name": "excluded-groups",
                    "expression": f"!request.userInfo.groups.exists(g, g in {_cel_list(skips.groups)})"})
    return out


# The requested resource as "group/resource[/subresource]" (with matchPolicy Equivalent, `request.resource` is
# the one the rules matched).
_RESOURCE_KEY = ('request.resource.group + "/" + request.resource.resource + '
                 '(has(request.subResource) && request.subResource != "" ? "/" + request.subResource : "")')


def _excluded(skips: Skips) -> str:
    parts = []
    if skips.users:
        parts.append(f"request.userInfo.username in {_cel_list(skips.users)}")
    if skips.groups:
        parts.append(f"request.userInfo.groups.exists(g, g in {_cel_list(skips.groups)})")
    return " || ".join(parts)


def _resource_keys(infos: Iterable[PolicyInfo], phase: str) -> set[str] | None:
    """The "group/resource[/sub]" keys the policies' targets register, or None when any is a wildcard."""
    keys: set[str] = set()
    for info in infos:
        for t in info.targets:
            if t.phase != phase:
                continue
            group, _version, resource, _scope = _resolve(t)
            if "*" in (group, resource) or resource.endswith("/*"):
                return None
            keys.add(f"{group}/{resource}")
    return keys


def applies_condition(infos: list[PolicyInfo], phase: str) -> list[dict[str, str]]:
    """When the policies of a webhook exclude different users or groups: one CEL condition that holds when
    some policy may act on the request, i.e. the request is of a resource the policy registers and not from
    a user or group it excludes. Policies that exclude no one only need the resource test, so a policy on
    ConfigMaps that exclude a CI user is skipped for that user's ConfigMaps even though a Pod policy beside
    it excludes no one. [] when no policy excludes anyone or some policy may act on anything."""
    if not any(i.skips.users or i.skips.groups for i in infos):
        return []
    by_exclusion: dict[str, list[PolicyInfo]] = {}
    for info in infos:
        by_exclusion.setdefault(_excluded(Skips(info.skips.users, info.skips.groups)), []).append(info)
    every = _resource_keys(infos, phase)
    terms = []
    for excluded, group in sorted(by_exclusion.items()):
        keys = _resource_keys(group, phase)
        if not excluded and (keys is None or (every is not None and keys >= every)):
            return []  # policies excluding no one act on every resource the webhook registers
        parts = [] if keys is None else [f"({_RESOURCE_KEY}) in {_cel_list(keys)}"]
        if excluded:
            parts.append(f"!({excluded})")
        terms.append(" && ".join(parts))
    return [{"name": "some-policy-applies", "expression": " || ".join(f"({t})" for t in terms)}]


def _common_skips(infos: list[PolicyInfo]) -> Skips:
    found = infos[0].skips
    for info in infos[1:]:
        found = found & info.skips
    return found


def namespace_selector(reg: Registration, skips: Skips) -> dict[str, Any]:
    """Never the server's own namespace or kube-system (no lock-out), nor a namespace every policy excludes;
    with --namespace-label, only the namespaces that carry those labels."""
    selector: dict[str, Any] = {}
    if reg.namespace_labels:
        selector["matchLabels"] = dict(sorted(reg.namespace_labels))
    selector["matchExpressions"] = [{
        "key": "kubernetes.io/metadata.name", "operator": "NotIn",
        "values": sorted({reg.own_namespace, SYSTEM_NAMESPACE} | skips.namespaces),
    }]
    return selector


def parse_label(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise RegistrationError(f"--namespace-label {text!r}: expected KEY=VALUE")
    return key, value


def webhook_name(reg: Registration, phase: str, failure_policy: str, timeout: int) -> str:
    suffix = "" if timeout == reg.timeout_seconds else f"-{timeout}s"
    return f"{phase}-{failure_policy.lower()}{suffix}.{reg.name}.webhook.admission"


def webhooks(policies: Iterable[PolicyInfo], phase: str, reg: Registration) -> list[dict[str, Any]]:
    """One webhook per distinct (failurePolicy, timeoutSeconds) among the policies acting in this phase."""
    groups: dict[tuple[str, int], list[PolicyInfo]] = {}
    for info in policies:
        if any(t.phase == phase for t in info.targets):
            key = (info.failure_policy, info.timeout_seconds or reg.timeout_seconds)
            groups.setdefault(key, []).append(info)
    out = []
    for (failure_policy, timeout), infos in sorted(groups.items()):
        found = rules(infos, phase)
        if not found:
            continue
        skips = _common_skips(infos)
        hook: dict[str, Any] = {
            "name": webhook_name(reg, phase, failure_policy, timeout),
            "clientConfig": client_config(reg, phase),
            "rules": found,
            "failurePolicy": failure_policy,
            "timeoutSeconds": timeout,
            "sideEffects": "None",
            "admissionReviewVersions": ["v1", "v1beta1"],
            "matchPolicy": "Equivalent",
            "namespaceSelector": namespace_selector(reg, skips),
        }
        conditions = match_conditions(skips) or applies_condition(infos, phase)
        if conditions:
            hook["matchConditions"] = conditions
        if phase == "mutate":
            hook["reinvocationPolicy"] = "IfNeeded"
        out.append(hook)
    return out


def configurations(policies: Iterable[PolicyInfo], reg: Registration) -> list[dict[str, Any]]:
    """The ValidatingWebhookConfiguration and MutatingWebhookConfiguration for the policies (a phase no
    policy acts in gets an empty `webhooks` list, so applying it removes what an older set registered)."""
    infos = list(policies)

    def metadata() -> dict[str, Any]:
        meta: dict[str, Any] = {"name": reg.name, "labels": {
            "app.kubernetes.io/name": "admission", "app.kubernetes.io/managed-by": FIELD_MANAGER}}
        if reg.inject_ca_from:
            meta["annotations"] = {"cert-manager.io/inject-ca-from": reg.inject_ca_from}
        return meta

    return [{"apiVersion": API_VERSION, "kind": KINDS_BY_PHASE[phase], "metadata": metadata(),
             "webhooks": webhooks(infos, phase, reg)} for phase in ("validate", "mutate")]
