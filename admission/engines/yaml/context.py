"""Kyverno rule `context` entries: variable, configMap, apiCall, imageRegistry.

Entries are resolved in order against the cluster-state cache (the live cluster in `serve`, the linted
manifests in `lint`, values in `test`). As in Kyverno (deferred loading, its default) an entry is loaded
the first time a query names it, so a rule whose preconditions never read an entry never fails on it;
a failure then surfaces as a VariableError from that query.

`apiCall.urlPath` is answered from the cache the way the API server would answer the GET: a `<Kind>List`
for a collection, the object for a single name. `apiCall.default` is used when the call fails (not found,
unknown resource), but not when there is no cluster state at all: that is an error, so the rule follows
its failure policy instead of silently seeing the default.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from admission.engines.yaml.variables import VariableError, Variables, search
from admission.review import plural
from admission.state import ClusterState, StateUnavailable
from admission.types import Object

# Resource plurals of the built-in kinds, with their API group ("" is the core group).
RESOURCES: dict[str, tuple[str, str]] = {
    "pods": ("", "Pod"),
    "services": ("", "Service"),
    "configmaps": ("", "ConfigMap"),
    "secrets": ("", "Secret"),
    "namespaces": ("", "Namespace"),
    "nodes": ("", "Node"),
    "serviceaccounts": ("", "ServiceAccount"),
    "persistentvolumes": ("", "PersistentVolume"),
    "persistentvolumeclaims": ("", "PersistentVolumeClaim"),
    "endpoints": ("", "Endpoints"),
    "events": ("", "Event"),
    "limitranges": ("", "LimitRange"),
    "resourcequotas": ("", "ResourceQuota"),
    "replicationcontrollers": ("", "ReplicationController"),
    "podtemplates": ("", "PodTemplate"),
    "deployments": ("apps", "Deployment"),
    "statefulsets": ("apps", "StatefulSet"),
    "daemonsets": ("apps", "DaemonSet"),
    "replicasets": ("apps", "ReplicaSet"),
    "controllerrevisions": ("apps", "ControllerRevision"),
    "jobs": ("batch", "Job"),
    "cronjobs": ("batch", "CronJob"),
    "ingresses": ("networking.k8s.io", "Ingress"),
    "ingressclasses": ("networking.k8s.io", "IngressClass"),
    "networkpolicies": ("networking.k8s.io", "NetworkPolicy"),
    "roles": ("rbac.authorization.k8s.io", "Role"),
    "rolebindings": ("rbac.authorization.k8s.io", "RoleBinding"),
    "clusterroles": ("rbac.authorization.k8s.io", "ClusterRole"),
    "clusterrolebindings": ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    "storageclasses": ("storage.k8s.io", "StorageClass"),
    "poddisruptionbudgets": ("policy", "PodDisruptionBudget"),
    "horizontalpodautoscalers": ("autoscaling", "HorizontalPodAutoscaler"),
    "priorityclasses": ("scheduling.k8s.io", "PriorityClass"),
    "leases": ("coordination.k8s.io", "Lease"),
    "endpointslices": ("discovery.k8s.io", "EndpointSlice"),
    "customresourcedefinitions": ("apiextensions.k8s.io", "CustomResourceDefinition"),
    "validatingwebhookconfigurations": ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    "mutatingwebhookconfigurations": ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    "clusterpolicies": ("kyverno.io", "ClusterPolicy"),
    "policies": ("kyverno.io", "Policy"),
}

_NAMESPACE_IN_PATH = re.compile(r"^/api(s)?/.*?/namespaces/([^/]+)/?.*$")


def load_context(
    entries: list[dict[str, Any]] | None,
    variables: Variables,
    state: ClusterState,
    *,
    policy_namespace: str = "",
    skip: Collection[str] = (),
    image_data: Mapping[str, Any] | None = None,
    deferred: bool = True,
) -> None:
    """Register (or with deferred=False, load now) each context entry as a variable of its name.
    Entries named in `skip` keep the value already set (values supplied by a test's values file).
    Raises VariableError for a malformed entry, or when loading now fails."""
    for index, entry in enumerate(entries or []):
        if not isinstance(entry, dict):
            raise VariableError(f"context entry {index} must be an object")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise VariableError(f"context entry {index} has no name")
        if name in skip:
            continue
        loader = _loader(name, entry, state, policy_namespace, image_data)
        if deferred:
            variables.defer(name, loader)
        else:
            variables.set(name, loader(variables))


def _loader(name: str, entry: dict[str, Any], state: ClusterState, policy_namespace: str,
            image_data: Mapping[str, Any] | None) -> Any:
    if isinstance(entry.get("variable"), dict):
        return lambda v: load_variable(name, entry["variable"], v)
    if isinstance(entry.get("configMap"), dict):
        return lambda v: load_config_map(name, entry["configMap"], v, state, policy_namespace)
    if isinstance(entry.get("apiCall"), dict):
        return lambda v: load_api_call(name, entry["apiCall"], v, state, policy_namespace)
    if isinstance(entry.get("imageRegistry"), dict):
        return lambda v: load_image_registry(name, entry["imageRegistry"], v, image_data)
    if "globalReference" in entry:
        raise VariableError(f"context entry {name}: globalReference entries are not supported")
    raise VariableError(f"missing ConfigMap|APICall|ImageRegistry|Variable in context entry {name}")


def _substitute_str(variables: Variables, value: Any, what: str) -> str:
    result = variables.substitute(value)
    if not isinstance(result, str):
        raise VariableError(f"{what} must be a string, got {type(result).__name__}")
    return result


# ---------------------------------------------------------------------------------------------- variable

def load_variable(name: str, spec: dict[str, Any], variables: Variables) -> Any:
    """Kyverno's variable loader: value and/or jmesPath, with default when they fail or give null."""
    try:
        path = ""
        if spec.get("jmesPath"):
            path = _substitute_str(variables, spec["jmesPath"], f"jmespath of variable {name}")
        default = variables.substitute(spec["default"]) if spec.get("default") is not None else None
        output = default
        if spec.get("value") is not None:
            value = variables.substitute(spec["value"])
            if path:
                try:
                    output = search(path, value, strict=True)
                except VariableError as exc:
                    if default is None:
                        raise VariableError(f"failed to apply jmespath {path} to variable {name}: {exc}") from None
            else:
                output = value
        elif path:
            try:
                result = variables.query(path, strict=True)
                if result is not None:
                    output = result
            except VariableError as exc:
                if default is None:
                    raise VariableError(f"failed to apply jmespath {path} to variable {name}: {exc}") from None
    except VariableError as exc:
        raise VariableError(f"failed to substitute variables in context entry {name}: {exc}") from None
    if output is None:
        raise VariableError(f"failed to add context entry for variable {name} since it evaluated to nil")
    return output


# ---------------------------------------------------------------------------------------------- configMap

def load_config_map(name: str, spec: dict[str, Any], variables: Variables, state: ClusterState,
                    policy_namespace: str = "") -> Any:
    """A ConfigMap's `data` and `metadata`; the namespace defaults to the policy's, else `default`."""
    cm_name = _substitute_str(variables, spec.get("name") or "", f"context {name} configMap.name")
    namespace = _substitute_str(variables, spec.get("namespace") or "", f"context {name} configMap.namespace")
    namespace = namespace or policy_namespace or "default"
    if policy_namespace and namespace != policy_namespace:
        raise VariableError(f"context entry {name}: configMap namespace {namespace!r} is different from "
                            f"policy namespace {policy_namespace!r}")
    try:
        obj = state.get("ConfigMap", cm_name, namespace=namespace)
    except StateUnavailable as exc:
        raise VariableError(f"context entry {name}: cannot read ConfigMap {namespace}/{cm_name}: "
                            f"no cluster state ({exc})") from None
    if obj is None:
        raise VariableError(f"failed to retrieve config map for context entry {name}: failed to get configmap "
                            f"{namespace}/{cm_name} : configmaps \"{cm_name}\" not found")
    return {"data": obj.get("data"), "metadata": obj.get("metadata") or {}}


# ---------------------------------------------------------------------------------------------- apiCall

class ApiError(VariableError):
    """The API server would have answered this call with an error (the entry's default then applies)."""


def load_api_call(name: str, spec: dict[str, Any], variables: Variables, state: ClusterState,
                  policy_namespace: str = "") -> Any:
    """An apiCall answered from the cluster state, then its jmesPath; its default when the call fails."""
    try:
        call = variables.substitute({k: v for k, v in spec.items() if k not in ("default", "jmesPath")})
    except VariableError as exc:
        raise VariableError(f"failed to substitute variables in context entry {name} "
                            f"{spec.get('urlPath', '')}: {exc}") from None
    default = spec.get("default")
    try:
        data = _execute(call, state, policy_namespace)
    except StateUnavailable as exc:
        raise VariableError(f"context entry {name}: cannot call {call.get('urlPath') or 'the API'}: "
                            f"no cluster state ({exc})") from None
    except ApiError as exc:
        if default is not None:
            return default
        raise VariableError(f"failed to fetch data for APICall {name}: {exc}") from None
    if not spec.get("jmesPath"):
        return data
    try:
        path = _substitute_str(variables, spec["jmesPath"], f"jmesPath of context entry {name}")
        return search(path, data, strict=True)
    except VariableError as exc:
        raise VariableError(f"failed to apply JMESPath {spec['jmesPath']} for context entry {name}: {exc}") from None


def _execute(call: dict[str, Any], state: ClusterState, policy_namespace: str) -> Any:
    if call.get("service"):
        raise ApiError("apiCall.service (calls to external services) is not supported")
    method = str(call.get("method") or "GET").upper()
    if method != "GET":
        raise ApiError(f"apiCall method {method} is not supported (only GET on the cluster state)")
    url = call.get("urlPath")
    if not isinstance(url, str) or not url.startswith("/"):
        raise ApiError(f"invalid urlPath {url!r}")
    if policy_namespace:
        m = _NAMESPACE_IN_PATH.match(url)
        if not m:
            raise ApiError(f"path {url} does not contain a namespace segment, which is required for "
                           "namespaced policies")
        if m.group(2) != policy_namespace:
            raise ApiError(f"path {url} refers to namespace {m.group(2)}, which is different from the "
                           f"policy namespace {policy_namespace}")
    return api_get(url, state)


def api_get(url: str, state: ClusterState) -> Any:
    """Answer a GET on the Kubernetes API from the cluster state. Raises ApiError as the server would
    answer with an error, StateUnavailable when there is no state at all."""
    state.require()
    parse = _parse_url if len(url) <= 2048 else _parse_url.__wrapped__
    group, version, namespace, resource, name, query_items = parse(url)
    kind = _kind_for(resource, group, state)
    if kind is None:
        raise ApiError(f"the server could not find the requested resource ({url})")
    api_version = f"{group}/{version}" if group else version
    query = dict(query_items)
    if name is not None:
        for obj in _objects(state, kind, group, namespace or ""):
            if (obj.get("metadata") or {}).get("name") == name:
                return obj
        raise ApiError(f'{resource} "{name}" not found')
    items = _objects(state, kind, group, namespace)
    if "labelSelector" in query:
        selector = parse_label_selector(query["labelSelector"][0])
        items = [o for o in items if selector_accepts(selector, (o.get("metadata") or {}).get("labels") or {})]
    if "fieldSelector" in query:
        items = [o for o in items if _fields_match(query["fieldSelector"][0], o)]
    items.sort(key=lambda o: ((o.get("metadata") or {}).get("namespace") or "",
                              (o.get("metadata") or {}).get("name") or ""))
    return {"apiVersion": api_version, "kind": f"{kind}List", "metadata": {"resourceVersion": ""}, "items": items}


@lru_cache(maxsize=1024)
def _parse_url(url: str) -> tuple[str, str, str | None, str, str | None, tuple[tuple[str, list[str]], ...]]:
    """(group, version, namespace, resource, name, query) of an API path (the same few paths come back
    request after request). Raises ApiError for a path the API server does not serve."""
    parts_url = urlsplit(url)
    segments = [unquote(s) for s in parts_url.path.strip("/").split("/") if s]
    if segments[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", segments[2:]
    elif len(segments) >= 3 and segments[0] == "apis":
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        raise ApiError(f"the server could not find the requested resource ({url})")
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 2:
        raise ApiError(f"the server could not find the requested resource ({url})")
    name = rest[1] if len(rest) == 2 else None
    return group, version, namespace, rest[0], name, tuple(parse_qs(parts_url.query).items())


def _kind_for(resource: str, group: str, state: ClusterState) -> str | None:
    known = RESOURCES.get(resource)
    if known is not None and known[0] == group:
        return known[1]
    objects: Any = state.objects()
    for obj in objects:  # kinds the state knows: custom resources and anything not listed above
        kind = str(obj.get("kind") or "")
        obj_group = str(obj.get("apiVersion") or "").rpartition("/")[0]
        if plural(kind) == resource and obj_group == group:
            return kind
    return known[1] if known is not None and not group else None


def _objects(state: ClusterState, kind: str, group: str, namespace: str | None) -> list[Object]:
    found: Any = state.list(kind, namespace=namespace)  # (ClusterState.list shadows `list` for mypy)
    return [o for o in found
            if str(o.get("apiVersion") or "").rpartition("/")[0] == group]


def parse_label_selector(text: str) -> list[tuple[str, str, list[str]]]:
    """A label selector string (`a=b,c!=d,e in (f,g),!h,i`) as (key, operator, values) requirements."""
    requirements: list[tuple[str, str, list[str]]] = []
    for part in re.findall(r"(?:[^,(]|\([^)]*\))+", text):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\(([^)]*)\)", part)
        if m:
            values = [v.strip() for v in m.group(3).split(",") if v.strip()]
            requirements.append((m.group(1), m.group(2), values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            requirements.append((key.strip(), "!=", [value.strip()]))
        elif "=" in part:
            key, value = re.split(r"==?", part, maxsplit=1)
            requirements.append((key.strip(), "=", [value.strip()]))
        elif part.startswith("!"):
            requirements.append((part[1:].strip(), "!", []))
        else:
            requirements.append((part, "exists", []))
    return requirements


def selector_accepts(requirements: list[tuple[str, str, list[str]]], labels: Mapping[str, Any]) -> bool:
    for key, op, values in requirements:
        present = key in labels
        value = str(labels.get(key, ""))
        if op == "=" and not (present and value == values[0]):
            return False
        if op == "!=" and present and value == values[0]:
            return False
        if op == "in" and not (present and value in values):
            return False
        if op == "notin" and present and value in values:
            return False
        if op == "exists" and not present:
            return False
        if op == "!" and present:
            return False
    return True


def _fields_match(text: str, obj: Object) -> bool:
    for part in text.split(","):
        negate = "!=" in part
        key, _, value = part.partition("!=" if negate else "=")
        actual = search(key.strip().lstrip("="), obj)
        if (str(actual) == value.strip().lstrip("=")) == negate:
            return False
    return True


# ---------------------------------------------------------------------------------------------- imageRegistry

def load_image_registry(name: str, spec: dict[str, Any], variables: Variables,
                        image_data: Mapping[str, Any] | None) -> Any:
    """Image registry data, only from data supplied to us (there is no registry access)."""
    reference = _substitute_str(variables, spec.get("reference") or "", f"context {name} imageRegistry.reference")
    if image_data is None or reference not in image_data:
        raise VariableError(f"context entry {name}: no image registry data is available for {reference!r} "
                            "(registry lookups are not supported; supply the data)")
    data = image_data[reference]
    if not spec.get("jmesPath"):
        return data
    path = _substitute_str(variables, spec["jmesPath"], f"jmesPath of context entry {name}")
    return search(path, data, strict=True)
