"""Our ValidatingAdmissionPolicy / MutatingAdmissionPolicy engine against a real kube-apiserver, differentially.

The API server evaluates VAP and MAP natively, also for server-side dry-run requests: a dry-run CREATE (or
UPDATE) answers with the admitted (for MAP: mutated) object, or the denial with the message, and Warn comes
back in Warning headers. Each policy of the corpus below (and the VAP/MAP cases of the kyverno CLI's own
tests) is installed with its binding, and every object of the corpus (handwritten, and generated with
hypothesis) is sent as a dry-run to the API server and evaluated by our engine (`Engine.review`, the one
pipeline) on the same request; allowed/denied, the denial's text as the author wrote it, the Warn texts and the
mutated object must agree.

Our engine is given the object as the API server's policies see it: the request's object after the API
server's defaulting and its built-in mutating plugins (the same request dry-run without any policy selecting
it). Defaulting the built-in types is the API server's, not the policy engine's (tested below, once, as a
known difference).

Isolation (the API server is shared): two namespaces of this run carry the run's label, and every binding
selects only those (namespaceSelector) and only the objects of its own case (objectSelector on a case label
each request carries); policies and bindings have the run's suffix and are deleted at the end, also on
failure. Namespaces cannot be deleted on an API server without a controller-manager; they stay Terminating.

Runs when ADMISSION_E2E_KUBECONFIG names the kubeconfig of a disposable API server (../shared/apiserver/
starts one on loopback); skipped otherwise.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admission.engine import Engine, Phase
from admission.engines import Context
from admission.policyset import load
from admission.results import Action, Status
from admission.review import Request
from admission.state import ClusterState
from tests.cel_parity import Answer, Server, isolate, resource_path, stripped
from tests.e2e import e2e_kubeconfig

RUN_LABEL = "admission.dev/e2e-cel-parity"
CASE_LABEL = "admission.dev/cel-parity-case"
KYVERNO_CLI = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "kyverno-cli"
GROUP = "admissionregistration.k8s.io"


# --- the corpus ---------------------------------------------------------------------------------------------------
# Policies as users write them; $NS_A / $NS_B are the run's namespaces (env=prod and env=dev). Each case's
# objects are sent in $NS_A unless they name $NS_B; `updates` are (stored, new) pairs sent as UPDATE.


def pod(name: str, *images: str, labels: dict[str, str] | None = None, limits: dict[str, str] | None = None,
        ns: str = "$NS_A", **spec: Any) -> dict[str, Any]:
    containers = []
    for i, image in enumerate(images or ("nginx:1.27",)):
        c: dict[str, Any] = {"name": f"c{i}", "image": image}
        if limits is not None:
            c["resources"] = {"limits": dict(limits)}
        containers.append(c)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, **({"labels": labels} if labels else {})},
            "spec": {"containers": containers, **spec}}


def deployment(name: str, replicas: int | None = 1, labels: dict[str, str] | None = None, ns: str = "$NS_A",
               image: str = "nginx:1.27", **spec: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name, **(labels or {})}},
        "spec": {"selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "app", "image": image}], **spec}}}}
    if replicas is not None:
        d["spec"]["replicas"] = replicas
    return d


def configmap(name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None,
              ns: str = "$NS_A", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, **({"data": data} if data else {})}


def params(name: str, data: dict[str, str], labels: dict[str, str] | None = None, ns: str = "$NS_A"
           ) -> dict[str, Any]:
    """A param object: of the run's own kind (PARAMS_CRD), shaped as a ConfigMap (`data`, strings)."""
    meta: dict[str, Any] = {"name": name, "namespace": ns, **({"labels": labels} if labels else {})}
    return {"apiVersion": "$PARAMS_API", "kind": "Params", "metadata": meta, "data": data}


@dataclass
class Case:
    name: str
    policy: str  # YAML: the policy and its bindings (a binding is added when there is none)
    objects: list[dict[str, Any]]
    updates: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    deletes: list[dict[str, Any]] = field(default_factory=list)  # stored (with the case label), then DELETEd
    sentinel: int | None = 0  # the object whose answer shows the policy took effect (None: none does)
    params: list[dict[str, Any]] = field(default_factory=list)  # param objects to create first
    kinds: tuple[str, ...] = ()  # which generated objects it also gets
    suffix: str = ""

    @property
    def mutating(self) -> bool:
        return "kind: MutatingAdmissionPolicy" in self.policy


def rules(*resources: str, ops: str = "[CREATE, UPDATE]") -> str:
    groups = {"pods": '""', "configmaps": '""', "deployments": "apps"}
    return "\n".join(f"    - {{apiGroups: [{groups[r]}], apiVersions: [v1], operations: {ops}, resources: [{r}]}}"
                     for r in resources)


VAP_HEAD = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: NAME}
spec:
"""

CORPUS: list[Case] = [
    Case("limits", VAP_HEAD + """\
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
""" + rules("pods") + """
  variables:
  - name: containers
    expression: object.spec.containers
  - name: unlimited
    expression: variables.containers.filter(c, !has(c.resources.limits))
  validations:
  - expression: size(variables.unlimited) == 0
    messageExpression: "'containers without limits: ' + variables.unlimited.map(c, c.name).join(', ')"
    reason: Forbidden
  - expression: "!variables.containers.exists(c, c.image.endsWith(':latest'))"
    message: no latest images
  - expression: >
      variables.containers.all(c,
        !has(c.resources.limits) || !('memory' in c.resources.limits) ||
        quantity(c.resources.limits.memory).isLessThan(quantity('1Gi')))
  - expression: size(variables.containers) <= 2
""", [
        pod("no-limits", "nginx:1.27", "busybox:latest"),
        pod("limited", "nginx:1.27", limits={"cpu": "500m", "memory": "256Mi"}),
        pod("big", "nginx:1.27", limits={"memory": "2Gi"}),
        pod("latest", "nginx:latest", limits={"memory": "1Mi"}),
        pod("three", "a:1", "b:1", "c:1", limits={"memory": "1Mi"}),
    ], kinds=("Pod",)),
    Case("labels-warn", VAP_HEAD + """\
  matchConstraints:
    resourceRules:
""" + rules("deployments") + """
  validations:
  - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
    message: team label required
  - expression: object.spec.replicas <= 5
    messageExpression: "'replicas ' + string(object.spec.replicas) + ' > 5'"
  - expression: "object.metadata.name.matches('^[a-z]+(-[a-z0-9]+)*$')"
    messageExpression: "'bad name %s'.format([object.metadata.name])"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: BINDING}
spec:
  policyName: NAME
  validationActions: [Warn]
""", [deployment("web", 8), deployment("web-ok", 2, {"team": "a"}), deployment("x9", 9, {"team": "b"})],
        kinds=("Deployment",)),
    Case("match-conditions", VAP_HEAD + """\
  matchConstraints:
    resourceRules:
""" + rules("pods") + """
  matchConditions:
  - name: not-system
    expression: "!object.metadata.name.startsWith('system-')"
  - name: not-skipped
    expression: "object.metadata.?labels.tier.orValue('') != 'skip'"
  validations:
  - expression: object.spec.containers.all(c, c.image.startsWith('registry.example.com/'))
    message: images must come from registry.example.com
""", [pod("web"), pod("system-web"), pod("skip", labels={"tier": "skip"}), pod("ok", "registry.example.com/a:1")],
        kinds=("Pod",)),
    Case("match-condition-error-fail", VAP_HEAD + """\
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
""" + rules("configmaps") + """
  matchConditions:
  - name: opted-in
    expression: "object.metadata.annotations['policy'] == 'on'"
  validations:
  - expression: "has(object.data) && 'owner' in object.data"
    message: an owner is required
""", [configmap("no-annotations"), configmap("on", annotations={"policy": "on"}),
      configmap("off", annotations={"policy": "off"}),
      configmap("owned", {"owner": "me"}, annotations={"policy": "on"})], kinds=("ConfigMap",)),
    Case("match-condition-error-ignore", VAP_HEAD + """\
  failurePolicy: Ignore
  matchConstraints:
    resourceRules:
""" + rules("configmaps") + """
  matchConditions:
  - name: opted-in
    expression: "object.metadata.annotations['policy'] == 'on'"
  validations:
  - expression: "has(object.data) && 'owner' in object.data"
    message: an owner is required
""", [configmap("on", annotations={"policy": "on"}), configmap("no-annotations"),
      configmap("owned", {"owner": "me"}, annotations={"policy": "on"})], kinds=("ConfigMap",)),
    Case("runtime-error-fail", VAP_HEAD + """\
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
""" + rules("deployments") + """
  validations:
  - expression: object.spec.template.spec.serviceAccountName != 'default'
  - expression: object.spec.replicas < 4
    message: at most 3 replicas
""", [deployment("no-sa", 1), deployment("sa", 1, serviceAccountName="builder"),
      deployment("sa-many", 5, serviceAccountName="builder"), deployment("default-sa", 1, serviceAccountName="default")],
        kinds=("Deployment",)),
    Case("runtime-error-ignore", VAP_HEAD + """\
  failurePolicy: Ignore
  matchConstraints:
    resourceRules:
""" + rules("deployments") + """
  validations:
  - expression: object.spec.template.spec.serviceAccountName != 'default'
  - expression: object.spec.replicas < 4
    message: at most 3 replicas
""", [deployment("many", 5), deployment("no-sa", 1), deployment("default-sa", 1, serviceAccountName="default")],
        kinds=("Deployment",)),
    Case("params-by-name", VAP_HEAD + """\
  paramKind: {apiVersion: $PARAMS_API, kind: Params}
  matchConstraints:
    resourceRules:
""" + rules("deployments") + """
  validations:
  - expression: object.spec.replicas <= int(params.data.maxReplicas)
    messageExpression: "'replicas must be at most ' + params.data.maxReplicas"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: BINDING}
spec:
  policyName: NAME
  validationActions: [Deny]
  paramRef: {name: replica-limits, parameterNotFoundAction: Deny}
""", [deployment("five", 5), deployment("two", 2), deployment("two-b", 2, ns="$NS_B"),
      deployment("seven-b", 7, ns="$NS_B")],
        params=[params("replica-limits", {"maxReplicas": "3"}),
                params("replica-limits", {"maxReplicas": "6"}, ns="$NS_B")], kinds=("Deployment",)),
    Case("params-by-selector", VAP_HEAD + """\
  paramKind: {apiVersion: $PARAMS_API, kind: Params}
  matchConstraints:
    resourceRules:
""" + rules("pods") + """
  validations:
  - expression: object.spec.containers.all(c, !c.image.startsWith(params.data.forbidden))
    messageExpression: "'images from ' + params.data.forbidden + ' are not allowed'"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: BINDING}
spec:
  policyName: NAME
  validationActions: [Deny]
  paramRef:
    namespace: $NS_A
    selector: {matchLabels: {params: forbidden-registries}}
    parameterNotFoundAction: Deny
""", [pod("docker", "docker.io/nginx:1"), pod("quay", "quay.io/app:1"), pod("fine", "registry.example.com/a:1"),
      pod("fine-b", "registry.example.com/a:1", ns="$NS_B")],
        params=[params("forbid-docker", {"forbidden": "docker.io/"}, {"params": "forbidden-registries"}),
                params("forbid-quay", {"forbidden": "quay.io/"}, {"params": "forbidden-registries"})],
        kinds=("Pod",)),
    Case("params-not-found", VAP_HEAD + """\
  paramKind: {apiVersion: $PARAMS_API, kind: Params}
  matchConstraints:
    resourceRules:
""" + rules("configmaps") + """
  validations:
  - expression: "!has(object.data) || !('secret' in object.data)"
    message: no secrets in ConfigMaps
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: BINDING}
spec:
  policyName: NAME
  validationActions: [Deny]
  paramRef: {name: only-in-b, parameterNotFoundAction: Allow}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: BINDING-deny}
spec:
  policyName: NAME
  validationActions: [Deny]
  paramRef: {name: absent, parameterNotFoundAction: Deny}
  matchResources:
    objectSelector: {matchLabels: {strict: "yes"}}
""", [configmap("secret-b", {"secret": "x"}, ns="$NS_B"), configmap("secret-a", {"secret": "x"}),
      configmap("plain-b", {"a": "b"}, ns="$NS_B"), configmap("strict", labels={"strict": "yes"})],
        params=[params("only-in-b", {"x": "y"}, ns="$NS_B")], kinds=("ConfigMap",)),
    Case("match-constraints", VAP_HEAD + """\
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods, configmaps]}
    excludeResourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: ["*"], resources: [configmaps], resourceNames: [excluded]}
    objectSelector:
      matchExpressions:
      - {key: tier, operator: NotIn, values: [internal]}
  validations:
  - expression: size(object.metadata.name) < 8
    messageExpression: "'name too long: ' + object.metadata.name"
""", [configmap("long-name-cm"), configmap("excluded"), pod("long-name-pod"),
      configmap("internal-cm", labels={"tier": "internal"}), configmap("short")], kinds=("Pod", "ConfigMap")),
    Case("namespace-object", VAP_HEAD + """\
  matchConstraints:
    resourceRules:
""" + rules("pods") + """
  validations:
  - expression: >
      namespaceObject.metadata.labels.env != 'prod' ||
      object.spec.containers.all(c, c.image.startsWith('registry.example.com/'))
    messageExpression: "'namespace ' + namespaceObject.metadata.name + ' only runs images of registry.example.com'"
""", [pod("web"), pod("web-b", ns="$NS_B"), pod("good", "registry.example.com/web:1")], kinds=("Pod",)),
    Case("update-old", VAP_HEAD + """\
  matchConstraints:
    resourceRules:
""" + rules("deployments") + """
  validations:
  - expression: "request.operation != 'UPDATE' || object.spec.replicas >= oldObject.spec.replicas"
    messageExpression: >-
      'scaling down from ' + string(oldObject.spec.replicas) + ' to ' + string(object.spec.replicas) +
      ' is not allowed'
  - expression: "oldObject == null || object.metadata.labels.app == oldObject.metadata.labels.app"
    message: the app label is immutable
  - expression: object.spec.replicas != 0
    message: zero replicas
""", [deployment("fresh", 3), deployment("zero", 0)], updates=[
        (deployment("scaled", 3), deployment("scaled", 1)),
        (deployment("grown", 3), deployment("grown", 5)),
        (deployment("relabelled", 2), {**deployment("relabelled", 2), "metadata": {
            "name": "relabelled", "namespace": "$NS_A", "labels": {"app": "other"}}}),
    ], sentinel=1, kinds=("Deployment",)),
    Case("user-info", VAP_HEAD + """\
  matchConstraints:
    resourceRules:
""" + rules("configmaps") + """
  validations:
  - expression: "'system:authenticated' in request.userInfo.groups"
    message: anonymous users may not write ConfigMaps
  - expression: "!object.metadata.name.startsWith(request.userInfo.username + '-')"
    messageExpression: "'the name prefix ' + request.userInfo.username + '- is reserved'"
  - expression: "request.dryRun == true && request.kind.kind == 'ConfigMap' && request.resource.resource == 'configmaps'"
""", [configmap("admin-settings"), configmap("settings")], kinds=("ConfigMap",)),
    Case("libraries", VAP_HEAD + """\
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
""" + rules("configmaps") + """
  variables:
  - name: data
    expression: "has(object.data) ? object.data : {}"
  validations:
  - expression: "!('cpu' in variables.data) || quantity(variables.data.cpu).compareTo(quantity('2')) <= 0"
    messageExpression: "'cpu ' + variables.data.cpu + ' is more than 2'"
  - expression: "!('url' in variables.data) || !isURL(variables.data.url) || url(variables.data.url).getScheme() == 'https'"
    message: URLs must be https
  - expression: "!('ip' in variables.data) || isIP(variables.data.ip) && ip(variables.data.ip).family() == 4"
    message: IPv4 only
  - expression: "!('ip' in variables.data) || !isIP(variables.data.ip) || cidr('10.0.0.0/8').containsIP(variables.data.ip)"
    messageExpression: "'%s is outside %s'.format([variables.data.ip, '10.0.0.0/8'])"
  - expression: "!('dns' in variables.data) || !format.dns1123Label().validate(variables.data.dns).hasValue()"
    messageExpression: "format.dns1123Label().validate(variables.data.dns).value().join('; ')"
  - expression: "variables.data.all(k, k.matches('^[a-z]+$'))"
    messageExpression: "'bad keys: ' + variables.data.filter(k, !k.matches('^[a-z]+$')).join(', ')"
  - expression: "object.metadata.name.find('[0-9]+') != '13'"
    message: unlucky
  - expression: "[1, 2, 3].filter(x, x > 1).map(x, x * 2) == [4, 6] && sets.contains([1, 2], [2])"
""", [configmap("plain", {"cpu": "1500m", "url": "https://example.com/x", "ip": "10.1.2.3", "dns": "ok"}),
      configmap("big-cpu", {"cpu": "3"}), configmap("http", {"url": "http://example.com"}),
      configmap("v6", {"ip": "fd00::1"}), configmap("outside", {"ip": "192.168.0.1"}),
      configmap("bad-dns", {"dns": "Not_A_Label"}), configmap("keys", {"Upper": "x", "ok": "y"}),
      configmap("cm-13"), configmap("bad-quantity", {"cpu": "two"})], sentinel=1, kinds=("ConfigMap",)),
    Case("authorizer", VAP_HEAD + """\
  matchConstraints:
    resourceRules:
""" + rules("configmaps") + """
  validations:
  - expression: "authorizer.group('').resource('secrets').namespace(object.metadata.namespace).check('list').allowed()"
    message: only users who may list secrets
  - expression: >
      !has(object.data) || !('sa' in object.data) ||
      authorizer.serviceAccount(object.metadata.namespace, object.data.sa).group('apps').resource('deployments')
        .namespace(object.metadata.namespace).check('create').allowed()
    messageExpression: "'service account ' + object.data.sa + ' may not create deployments'"
""", [configmap("nobody-sa", {"sa": "nobody"}), configmap("no-sa"), configmap("bad-sa", {"sa": "Bad_Name"})],
        kinds=("ConfigMap",)),
    Case("two-bindings", VAP_HEAD + """\
  matchConstraints:
    resourceRules:
""" + rules("pods") + """
  validations:
  - expression: "has(object.spec.securityContext) && has(object.spec.securityContext.runAsNonRoot) && object.spec.securityContext.runAsNonRoot"
    message: pods must run as non-root
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: BINDING}
spec:
  policyName: NAME
  validationActions: [Deny]
  matchResources:
    namespaceSelector: {matchLabels: {env: prod}}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: BINDING-dev}
spec:
  policyName: NAME
  validationActions: [Warn, Audit]
  matchResources:
    namespaceSelector: {matchLabels: {env: dev}}
""", [pod("root"), pod("root-b", ns="$NS_B"), pod("nonroot", securityContext={"runAsNonRoot": True})],
        kinds=("Pod",)),
    Case("runtime-error-warn", VAP_HEAD + """\
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
""" + rules("deployments") + """
  matchConditions:
  - name: opted-in
    expression: "object.metadata.annotations['policy'] == 'on'"
  validations:
  - expression: object.spec.template.spec.serviceAccountName != 'default'
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: BINDING}
spec:
  policyName: NAME
  validationActions: [Warn]
""", [deployment("no-sa"), deployment("default-sa", serviceAccountName="default")], kinds=("Deployment",)),
    Case("params-ignore", VAP_HEAD + """\
  failurePolicy: Ignore
  paramKind: {apiVersion: $PARAMS_API, kind: Params}
  matchConstraints:
    resourceRules:
""" + rules("configmaps") + """
  validations:
  - expression: "!has(object.data) || object.data.size() <= int(params.data.maxKeys)"
    messageExpression: "'at most ' + params.data.maxKeys + ' keys'"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: BINDING}
spec:
  policyName: NAME
  validationActions: [Deny]
  paramRef: {name: key-limits, parameterNotFoundAction: Deny}
""", [configmap("many-b", {"a": "1", "b": "2"}, ns="$NS_B"), configmap("many-a", {"a": "1", "b": "2"})],
        params=[params("key-limits", {"maxKeys": "1"}, ns="$NS_B")], kinds=("ConfigMap",)),
    Case("messages", VAP_HEAD + """\
  matchConstraints:
    resourceRules:
""" + rules("configmaps") + """
  validations:
  - expression: "!has(object.data) || !('a' in object.data)"
    messageExpression: "'  the key a\\\\nis reserved  '"
    message: "  a is reserved  "
  - expression: "!has(object.data) || !('b' in object.data)"
    messageExpression: "'   '"
  - expression: "!has(object.data) || !('c' in object.data)"
    messageExpression: "'   c is reserved '"
  - expression: "!has(object.data) || !('d' in object.data)"
    messageExpression: "'""" + "x" * 5200 + """'"
    message: d is reserved
  - expression: "!has(object.data) || !('e' in object.data)"
    messageExpression: "string(object.data.nope)"
    message: e is reserved
""", [configmap("a", {"a": "1"}), configmap("b", {"b": "1"}), configmap("c", {"c": "1"}),
      configmap("d", {"d": "1"}), configmap("e", {"e": "1"}), configmap("ab", {"a": "1", "b": "1"})],
        kinds=("ConfigMap",)),
    Case("audit-and-variables", VAP_HEAD + """\
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
""" + rules("configmaps") + """
  variables:
  - name: owner
    expression: object.data.owner
  - name: tier
    expression: "object.metadata.?labels.tier.orValue('none')"
  validations:
  - expression: variables.owner != 'nobody'
    messageExpression: "'owner ' + variables.owner + ' in tier ' + variables.tier + ' is not allowed'"
  auditAnnotations:
  - key: size
    valueExpression: "string(object.data.size())"
  - key: cost
    valueExpression: "object.data.cost == '' ? '' : 'cost ' + string(int(object.data.cost) * 2)"
""", [configmap("nobody", {"owner": "nobody", "cost": ""}), configmap("fine", {"owner": "me", "cost": "3"}),
      configmap("no-owner", {"cost": "1"}), configmap("bad-cost", {"owner": "me", "cost": "x"}),
      configmap("no-cost", {"owner": "me"})], kinds=("ConfigMap",)),
    Case("runtime-errors", VAP_HEAD + """\
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
""" + rules("configmaps") + """
  variables:
  - name: d
    expression: "has(object.data) ? object.data : {}"
  validations:
  - expression: "!('int' in variables.d) || int(variables.d.int) > 0"
  - expression: "!('uint' in variables.d) || uint(variables.d.uint) > 0u"
  - expression: "!('double' in variables.d) || double(variables.d.double) > 0.0"
  - expression: "!('bool' in variables.d) || bool(variables.d.bool)"
  - expression: "!('duration' in variables.d) || duration(variables.d.duration) > duration('0s')"
  - expression: "!('timestamp' in variables.d) || timestamp(variables.d.timestamp) > timestamp('2000-01-01T00:00:00Z')"
  - expression: "!('big' in variables.d) || int(double(variables.d.big)) > 0"
  - expression: "!('negative' in variables.d) || uint(int(variables.d.negative)) > 0u"
  - expression: "!('divide' in variables.d) || 10 / int(variables.d.divide) > 0"
  - expression: "!('modulo' in variables.d) || 10 % int(variables.d.modulo) > 0"
  - expression: "!('overflow' in variables.d) || int(variables.d.overflow) + 9223372036854775807 > 0"
  - expression: "!('index' in variables.d) || [1, 2][int(variables.d.index)] > 0"
  - expression: "!('substring' in variables.d) || variables.d.substring.substring(10) != ''"
  - expression: "!('regex' in variables.d) || 'abc'.matches(variables.d.regex)"
  - expression: "!('url' in variables.d) || url(variables.d.url).getHost() != ''"
  - expression: "!('ip' in variables.d) || ip(variables.d.ip).family() > 0"
  - expression: "!('cidr' in variables.d) || cidr(variables.d.cidr).prefixLength() > 0"
""", [configmap(k, {k: v}) for k, v in (
        ("int", "x"), ("uint", "x"), ("double", "x"), ("bool", "x"), ("duration", "x"), ("timestamp", "x"),
        ("big", "1e100"), ("negative", "-1"), ("divide", "0"), ("modulo", "0"), ("overflow", "1"), ("index", "5"),
        ("substring", "abc"), ("regex", "(("), ("url", "not a url"), ("ip", "1.2.3"), ("cidr", "10.0.0.0/33"))]
    + [configmap(f"ip-{i}", {"ip": v}) for i, v in enumerate((
        "https://example.com", "1:2:3", "fd00::1::2", "12345::", "1.2.3.4.5", "01.2.3.4", "256.1.1.1", "1..2.3",
        "fe80::1%eth0", "::ffff:1.2.3.4", "fe80::1%", "abc", "1:2:3:4:5:6:7:8:9"))]
    + [configmap(f"cidr-{i}", {"cidr": v}) for i, v in enumerate((
        "10.0.0/8", "1.2.3.4/x", "1.2.3.4", "fd00::/129", "1.2.3.4/08"))]
    + [configmap(f"url-{i}", {"url": v}) for i, v in enumerate(("", "http://a b", "http://a:b/", "a#b"))],
        kinds=("ConfigMap",)),
    Case("delete-guard", VAP_HEAD + """\
  matchConstraints:
    resourceRules:
""" + rules("configmaps", ops="[CREATE, DELETE]") + """
  validations:
  - expression: >
      request.operation != 'DELETE' ||
      object == null && oldObject.metadata.?labels.protected.orValue('') != 'true'
    messageExpression: "'ConfigMap ' + oldObject.metadata.name + ' is protected from ' + request.operation"
  - expression: >
      request.operation != 'DELETE' ||
      request.name == oldObject.metadata.name && request.namespace == oldObject.metadata.namespace
  - expression: "request.operation != 'CREATE' || !object.metadata.name.startsWith('deny-')"
""", [configmap("deny-me"), configmap("created")], deletes=[configmap("protected", labels={"protected": "true"}),
                                                           configmap("unprotected", labels={"protected": "false"})],
        kinds=()),
    Case("namespaces", VAP_HEAD + """\
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [namespaces]}
  validations:
  - expression: "object.metadata.name.startsWith('valid-')"
    messageExpression: "'namespace ' + object.metadata.name + ' must start with valid-'"
  - expression: "namespaceObject == null"
    message: namespaceObject is set
  - expression: "request.namespace == ''"
    messageExpression: "'request.namespace is ' + request.namespace"
""", [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{prefix}-$RUN", "labels": {
        "admission.dev/e2e-cel-parity": "$RUN"}}} for prefix in ("invalid", "valid")], kinds=()),
    # MutatingAdmissionPolicy
    Case("map-apply", """\
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: NAME}
spec:
  matchConstraints:
    resourceRules:
""" + rules("pods", ops="[CREATE]") + """
  failurePolicy: Fail
  reinvocationPolicy: Never
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{
          metadata: Object.metadata{labels: {"mutated": "yes"}},
          spec: Object.spec{
            containers: object.spec.containers.map(c, Object.spec.containers{
              name: c.name,
              securityContext: Object.spec.containers.securityContext{allowPrivilegeEscalation: false}
            })
          }
        }
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        object.spec.containers.exists(c, c.name == 'sidecar') ? Object{} :
        Object{spec: Object.spec{containers: [Object.spec.containers{name: 'sidecar', image: 'registry.example.com/sidecar:1'}]}}
""", [pod("one"), pod("two", "a:1", "b:1", labels={"app": "x"}),
      pod("with-sidecar", "a:1", securityContext={"runAsUser": 1000})], kinds=("Pod",)),
    Case("map-json-patch", """\
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: NAME}
spec:
  matchConstraints:
    resourceRules:
""" + rules("deployments", ops="[CREATE]") + """
  failurePolicy: Fail
  reinvocationPolicy: Never
  variables:
  - name: annotated
    expression: has(object.metadata.annotations)
  mutations:
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        (variables.annotated ? [] : [JSONPatch{op: "add", path: "/metadata/annotations", value: {}}]) +
        [JSONPatch{op: "add", path: "/metadata/annotations/" + jsonpatch.escapeKey("example.com/owner"), value: "team-a"}] +
        (object.spec.replicas > 3 ? [JSONPatch{op: "replace", path: "/spec/replicas", value: 3}] : [])
""", [deployment("many", 6), deployment("few", 1), {**deployment("annotated", 2), "metadata": {
        "name": "annotated", "namespace": "$NS_A", "labels": {"app": "annotated"}, "annotations": {"x": "y"}}}],
        kinds=("Deployment",)),
    Case("map-errors-fail", """\
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: NAME}
spec:
  matchConstraints:
    resourceRules:
""" + rules("deployments", ops="[CREATE]") + """
  failurePolicy: Fail
  reinvocationPolicy: Never
  mutations:
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        [JSONPatch{op: "replace", path: "/spec/replicas", value: int(object.metadata.annotations["replicas"])}]
  - patchType: JSONPatch
    jsonPatch:
      expression: '[JSONPatch{op: "test", path: "/spec/replicas", value: 4}]'
""", [{**deployment("annotated", 1), "metadata": {"name": "annotated", "namespace": "$NS_A", "labels": {
        "app": "annotated"}, "annotations": {"replicas": "4"}}}, deployment("plain", 2),
      {**deployment("bad-number", 1), "metadata": {"name": "bad-number", "namespace": "$NS_A", "labels": {
          "app": "bad-number"}, "annotations": {"replicas": "four"}}},
      {**deployment("five", 1), "metadata": {"name": "five", "namespace": "$NS_A", "labels": {
          "app": "five"}, "annotations": {"replicas": "5"}}}], kinds=("Deployment",)),
    Case("map-errors-ignore", """\
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: NAME}
spec:
  matchConstraints:
    resourceRules:
""" + rules("configmaps", ops="[CREATE]") + """
  failurePolicy: Ignore
  reinvocationPolicy: Never
  mutations:
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        [JSONPatch{op: "test", path: "/data/mode", value: "auto"},
         JSONPatch{op: "add", path: "/data/managed", value: "true"}]
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: 'Object{metadata: Object.metadata{labels: {"seen": "yes"}}}'
""", [configmap("auto", {"mode": "auto"}), configmap("manual", {"mode": "manual"}), configmap("none")],
        kinds=("ConfigMap",)),
    Case("map-params-conditions", """\
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: NAME}
spec:
  paramKind: {apiVersion: $PARAMS_API, kind: Params}
  matchConstraints:
    resourceRules:
""" + rules("configmaps", ops="[CREATE]") + """
  reinvocationPolicy: Never
  matchConditions:
  - name: not-opted-out
    expression: "object.metadata.?labels['opt-out'].orValue('') != 'true'"
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: 'Object{metadata: Object.metadata{labels: {"owner": params.data.owner}}}'
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: BINDING}
spec:
  policyName: NAME
  paramRef: {name: owners, parameterNotFoundAction: Deny}
""", [configmap("first"), configmap("opted-out", labels={"opt-out": "true"}), configmap("b", ns="$NS_B")],
        params=[params("owners", {"owner": "platform"})], kinds=("ConfigMap",)),
]


# --- the kyverno CLI's cases, made to run in a cluster -----------------------------------------------------------

def kyverno_cli_cases() -> list[Case]:
    """The VAP/MAP cases of the kyverno CLI's tests whose resources are Pods, Deployments or ConfigMaps: their
    policies as written (v1alpha1 read as v1, which the API server serves), each resource in the run's first
    namespace, their params beside it. Cases about Namespaces themselves or user info given as a file are
    left out (a namespace cannot be deleted here; the request's user is the test's)."""
    if not KYVERNO_CLI.is_dir():
        return []
    out = []
    for test in sorted(KYVERNO_CLI.glob("*/*/kyverno-test.yaml")):
        spec = yaml.safe_load(test.read_text())
        if spec.get("userinfo") or spec.get("values") or spec.get("variables"):
            continue
        docs = [d for p in spec.get("policies", []) for d in yaml.safe_load_all((test.parent / p).read_text()) if d]
        resources = [d for p in spec.get("resources", []) for d in yaml.safe_load_all((test.parent / p).read_text())
                     if d]
        params = [d for p in spec.get("paramResources", []) for d in yaml.safe_load_all((test.parent / p).read_text())
                  if d]
        if not resources or any(r["kind"] not in ("Pod", "Deployment", "ConfigMap") for r in resources):
            continue
        for d in docs:
            d["apiVersion"] = f"{GROUP}/v1"
        for d in [*resources, *params]:
            d.setdefault("metadata", {})["namespace"] = "$NS_A"
            if d["kind"] == "ConfigMap" and d.get("data"):
                d["data"] = {k: str(v) for k, v in d["data"].items()}
        for d in params:  # ConfigMap params as the run's param kind (see PARAMS_CRD)
            if d["kind"] == "ConfigMap":
                d["apiVersion"], d["kind"] = "$PARAMS_API", "Params"
        for d in docs:
            spec = d.get("spec") or {}
            if spec.get("paramKind") == {"apiVersion": "v1", "kind": "ConfigMap"}:
                spec["paramKind"] = {"apiVersion": "$PARAMS_API", "kind": "Params"}
            ref = spec.get("paramRef") or {}
            if ref.get("namespace"):
                ref["namespace"] = "$NS_A"
            # fields the API server requires and the kyverno CLI defaults: given their defaults
            if ref:
                ref.setdefault("parameterNotFoundAction", "Deny")
            if d["kind"] == "ValidatingAdmissionPolicyBinding":
                spec.setdefault("validationActions", ["Deny"])
            if d["kind"] == "MutatingAdmissionPolicy":
                spec.setdefault("reinvocationPolicy", "Never")
        out.append(Case(f"kyverno-{test.parent.parent.name.split('-')[1]}-{test.parent.name}",
                        yaml.safe_dump_all(docs, sort_keys=False), resources, params=params,
                        sentinel=_kyverno_sentinel(spec, resources)))
    return out


def _kyverno_sentinel(spec: dict[str, Any], resources: list[dict[str, Any]]) -> int | None:
    """A resource the test expects the policy to act on (fail, or a patched resource)."""
    names = [r["metadata"]["name"] for r in resources]
    for result in spec.get("results", []):
        if result.get("result") == "fail" or result.get("patchedResources"):
            for name in result.get("resources", []):
                if name in names:
                    return names.index(name)
    return None


# --- the run --------------------------------------------------------------------------------------------------


@dataclass
class World:
    server: Server
    suffix: str
    ns_a: str
    ns_b: str
    user: dict[str, Any]
    namespaces: list[dict[str, Any]]
    cases: list[Case]
    params: list[dict[str, Any]]
    engines: dict[str, Engine] = field(default_factory=dict)
    compared: list[int] = field(default_factory=lambda: [0])
    agreed: dict[tuple[str, str], bool] = field(default_factory=dict)  # (case, request) -> whether they agree
    not_ready: list[str] = field(default_factory=list)  # cases whose sentinel the API server never acted on

    @property
    def params_api(self) -> str:
        return f"cel-parity-{self.suffix}.e2e.admission.dev/v1"

    def place(self, obj: Any) -> Any:
        """$NS_A / $NS_B / $PARAMS_API replaced by the run's namespaces and param kind, everywhere in a value."""
        if isinstance(obj, str):
            return (obj.replace("$NS_A", self.ns_a).replace("$NS_B", self.ns_b).replace("$PARAMS_API", self.params_api)
                    .replace("$RUN", self.suffix))
        if isinstance(obj, list):
            return [self.place(v) for v in obj]
        if isinstance(obj, dict):
            return {k: self.place(v) for k, v in obj.items()}
        return obj

    def state(self) -> ClusterState:
        return ClusterState([*self.namespaces, *self.params])


def policy_docs(case: Case, world: World) -> list[dict[str, Any]]:
    """The case's policy and bindings with the run's names, every binding narrowed to the case."""
    text = world.place(case.policy)
    name = f"{case.name}-{world.suffix}"
    text = text.replace("BINDING", f"{name}-binding").replace("{name: NAME}", f"{{name: {name}}}")
    text = text.replace("policyName: NAME", f"policyName: {name}")
    docs = [d for d in yaml.safe_load_all(text) if d]
    policies = [d for d in docs if not d["kind"].endswith("Binding")]
    bindings = [d for d in docs if d["kind"].endswith("Binding")]
    renames = {}
    for p in policies:  # the kyverno CLI's cases share policy names: each gets its case's name too
        old = p["metadata"]["name"]
        renames[old] = old if old.endswith(world.suffix) else f"{old}-{case.name}-{world.suffix}"
        p["metadata"]["name"] = renames[old]
    if not bindings:
        for p in policies:
            binding: dict[str, Any] = {"apiVersion": f"{GROUP}/v1", "kind": f"{p['kind']}Binding",
                                       "metadata": {"name": f"{p['metadata']['name']}-binding"},
                                       "spec": {"policyName": p["metadata"]["name"]}}
            if p["kind"] == "ValidatingAdmissionPolicy":
                binding["spec"]["validationActions"] = ["Deny"]
            bindings.append(binding)
    for b in bindings:
        b["spec"]["policyName"] = renames.get(b["spec"]["policyName"], b["spec"]["policyName"])
        if world.suffix not in b["metadata"]["name"]:
            b["metadata"]["name"] = f"{b['metadata']['name']}-{case.name}-{world.suffix}"
        isolate(b, (RUN_LABEL, world.suffix), (CASE_LABEL, case.name))
    return [*policies, *bindings]


def labelled(obj: dict[str, Any], case: str | None) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    labels = out["metadata"].setdefault("labels", {})
    if case is None:
        labels.pop(CASE_LABEL, None)
        if not labels:
            out["metadata"].pop("labels")
    else:
        labels[CASE_LABEL] = case
    return out


def params_crd(group: str) -> dict[str, Any]:
    """The run's param kind. The API server's param informer for a built-in kind (ConfigMap) comes from its
    shared informer factory, and is stopped for good once no policy uses that kind (policy_source.go cancels
    the context it was started with; the factory never starts it again): every later policy with
    `paramKind: ConfigMap` then reads a frozen cache and finds no params. A custom kind gets an informer of
    its own each time, so every run starts from a working one."""
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"params.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": "params", "singular": "params", "kind": "Params", "listKind": "ParamsList"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "properties": {
                             "data": {"type": "object", "additionalProperties": {"type": "string"}}}}}}]}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from admission.cluster import connect

    server = Server(connect(e2e_kubeconfig()).api)
    suffix = uuid.uuid4().hex[:8]
    ns_a, ns_b = f"cel-parity-{suffix}", f"cel-parity-{suffix}-b"
    status, review, _ = server.call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                    {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert status == 201, review
    namespaces = [server.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "labels": {RUN_LABEL: suffix, "env": env, "team": "payments"}}})
        for name, env in ((ns_a, "prod"), (ns_b, "dev"))]
    w = World(server, suffix, ns_a, ns_b, review["status"]["userInfo"], namespaces,
              [*CORPUS, *kyverno_cli_cases()], [])
    installed: list[dict[str, Any]] = []
    crd = params_crd(w.params_api.partition("/")[0])
    try:
        server.create(crd)
        deadline = time.monotonic() + 30
        while server.call("GET", f"/apis/{w.params_api}/namespaces/{ns_a}/params")[0] != 200:
            assert time.monotonic() < deadline, "the param kind is not served after 30 s"
            time.sleep(0.2)
        for case in w.cases:
            for p in case.params:
                w.params.append(server.create(w.place(p)))
        tmp = tmp_path_factory.mktemp("cel-parity")
        for case in w.cases:
            docs = policy_docs(case, w)
            path = tmp / f"{case.name}.yaml"
            path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
            w.engines[case.name] = load([path])  # as `serve` and `admission test` load it (bindings apply)
            for d in docs:
                server.create(d)
                installed.append(d)
        yield w
    finally:
        for d in reversed(installed):
            server.delete(d)
        for p in w.params:
            server.delete(p)
        server.delete(crd)
        for ns in (ns_a, ns_b):
            server.call("DELETE", f"/api/v1/namespaces/{ns}")  # stays Terminating without a controller-manager


def effect(answer: Answer, baseline: Answer) -> bool:
    if "failed to configure" in answer.raw:  # e.g. its params not seen yet
        return False
    return (not answer.allowed or bool(answer.warnings)
            or stripped(answer.obj) != stripped(labelled_baseline(baseline.obj, answer.obj)))


def labelled_baseline(baseline: dict[str, Any] | None, answer: dict[str, Any] | None) -> dict[str, Any] | None:
    if baseline is None or answer is None:
        return baseline
    case = ((answer.get("metadata") or {}).get("labels") or {}).get(CASE_LABEL)
    return labelled(baseline, case)


@pytest.fixture(scope="module")
def ready(world: World) -> World:
    """Every case's policy has taken effect in the API server: its sentinel object is acted on."""
    deadline = time.monotonic() + 30
    pending = {c.name: c for c in world.cases if c.sentinel is not None}
    while pending and time.monotonic() < deadline:
        for name, case in list(pending.items()):
            assert case.sentinel is not None
            obj = world.place(case.objects[case.sentinel])
            baseline = world.server.dry_run("POST", labelled(obj, None))
            if effect(world.server.dry_run("POST", labelled(obj, case.name)), baseline):
                del pending[name]
        if pending:
            time.sleep(0.2)
    world.not_ready = sorted(pending)
    return world


# --- one request, both ways -------------------------------------------------------------------------------------


def ours(world: World, case: Case, obj: dict[str, Any], operation: str, old: dict[str, Any] | None) -> Answer:
    engine = world.engines[case.name]
    request = Request.for_object(obj, operation=operation, old_object=old, user_info=world.user, dry_run=True)
    review = engine.review(request, Context(state=world.state()), Phase.ALL)
    decision = review.decision
    denials = decision.denials
    message = ""
    if denials:
        first = denials[0]
        message = first.message
    warnings = [r.message for r in review.results
                if r.status == Status.FAIL and r.action == Action.WARN and r not in denials]
    return Answer(decision.allowed, 200 if decision.allowed else decision.code, message=message, warnings=warnings,
                  obj=review.mutated)


@dataclass
class Pair:
    case: str
    what: str
    server: Answer
    ours: Answer

    def differences(self) -> list[str]:
        out = []
        if self.server.allowed != self.ours.allowed:
            out.append(f"allowed: server {self.server.allowed} ({self.server.raw!r}), ours {self.ours.allowed} "
                       f"({self.ours.message!r})")
        elif not self.server.allowed and self.server.message != self.ours.message:
            out.append(f"message: server {self.server.message!r}, ours {self.ours.message!r}")
        elif not self.server.allowed and self.server.status != self.ours.status:
            out.append(f"HTTP status: server {self.server.status}, ours {self.ours.status}")
        if sorted(self.server.warnings) != sorted(self.ours.warnings):
            out.append(f"warnings: server {self.server.warnings!r}, ours {self.ours.warnings!r}")
        if self.server.allowed and self.ours.allowed and self.server.obj is not None:
            theirs, mine = stripped(self.server.obj), stripped(self.ours.obj)
            if theirs != mine:
                out.append(f"object: server {theirs!r},\n ours {mine!r}")
        return [f"{self.case} / {self.what}: {d}" for d in out]


def compare(world: World, case: Case, obj: dict[str, Any], *, old: dict[str, Any] | None = None) -> Pair:
    """One request to the API server and to our engine; `old` (stored) makes it an UPDATE."""
    method = "PUT" if old is not None else "POST"
    baseline = world.server.dry_run(method, labelled(obj, None))
    assert baseline.allowed and baseline.obj is not None, f"the API server refuses {obj['metadata']['name']} " \
                                                          f"without any policy: {baseline.raw}"
    answer = world.server.dry_run(method, labelled(obj, case.name))
    seen = labelled(baseline.obj, case.name)
    mine = ours(world, case, seen, "UPDATE" if old is not None else "CREATE", old)
    if case.mutating and mine.obj is not None and mine.allowed:
        mine.obj = server_defaulted(world, method, mine.obj, case.name)
    world.compared[0] += 1
    pair = Pair(case.name, f"{method} {obj['kind']} {obj['metadata'].get('namespace')}/{obj['metadata']['name']}",
                answer, mine)
    world.agreed[(case.name, repr(obj))] = not pair.differences()
    return pair


def server_defaulted(world: World, method: str, obj: dict[str, Any], case: str) -> dict[str, Any] | None:
    """Our mutated object as the API server stores it: after a mutation the API server applies the defaults of
    the built-in types again (a container a policy adds gets its imagePullPolicy, ...), which is the API
    server's part, not the policy engine's. Sent without the case label (no binding acts on it)."""
    plain = labelled(stripped(obj) or {}, None)
    plain.pop("status", None)  # the API server's own (a Pod's qosClass is computed from what it is sent)
    answer = world.server.dry_run(method, plain)
    return labelled(answer.obj, case) if answer.allowed and answer.obj is not None else obj


def compare_delete(world: World, case: Case, stored: dict[str, Any]) -> Pair:
    """A dry-run DELETE of a stored object: the request has no object, its oldObject is the stored one."""
    answer = world.server.dry_run("DELETE", stored)
    engine = world.engines[case.name]
    request = Request.for_object(stored, operation="DELETE", user_info=world.user, dry_run=True)
    review = engine.review(request, Context(state=world.state()), Phase.ALL)
    denials = review.decision.denials
    warnings = [r.message for r in review.results if r.status == Status.FAIL and r.action == Action.WARN]
    mine = Answer(review.decision.allowed, 200 if review.decision.allowed else review.decision.code,
                  message=denials[0].message if denials else "", warnings=warnings)
    answer.obj = None  # a DELETE answers with a Status (or the object as it was): nothing mutated to compare
    world.compared[0] += 1
    pair = Pair(case.name, f"DELETE {stored['kind']} {stored['metadata']['namespace']}/{stored['metadata']['name']}",
                answer, mine)
    world.agreed[(case.name, "DELETE " + repr(stored["metadata"]["name"]))] = not pair.differences()
    return pair


def case_pairs(world: World, case: Case) -> list[Pair]:
    stored_for_delete = [world.server.create(labelled(world.place(o), case.name)) for o in case.deletes]
    try:
        pairs = [compare_delete(world, case, stored) for stored in stored_for_delete]
    finally:
        for stored in stored_for_delete:  # out of the binding's reach (no case label) first: it guards DELETE
            status, body, _ = world.server.call("PUT", resource_path(stored, named=True), labelled(stored, None))
            assert status < 300, body
            world.server.delete(stored)
    return pairs + _create_and_update_pairs(world, case)


def _create_and_update_pairs(world: World, case: Case) -> list[Pair]:
    requests: list[tuple[dict[str, Any], dict[str, Any] | None]] = [(world.place(o), None) for o in case.objects]
    for stored, new in case.updates:
        old = world.server.create(world.place(stored))  # outside the case's binding: no case label
        new = world.place(new)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        requests.append((new, labelled(old, None)))
    try:
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(lambda r: compare(world, case, r[0], old=r[1]), requests))
    finally:
        for stored, _ in case.updates:
            world.server.delete(world.place(stored))


CASE_NAMES = [c.name for c in CORPUS] + [c.name for c in kyverno_cli_cases()]
# (case, object name) -> why we cannot word it as the API server does; the test checks they still differ
KNOWN_DIFFERENCES = {
    ("runtime-errors", "substring"): "cel-cpp's strings extension does not say which index is out of range "
                                     "(cel-go: `index out of range: 10`)",
}


@pytest.mark.parametrize("name", CASE_NAMES)
def test_the_api_server_and_our_engine_agree(ready: World, name: str) -> None:
    case = next(c for c in ready.cases if c.name == name)
    pairs = case_pairs(ready, case)
    known = {p.what.rpartition("/")[2]: p for p in pairs if (name, p.what.rpartition("/")[2]) in KNOWN_DIFFERENCES}
    for object_name, pair in known.items():
        assert pair.differences(), f"{name}/{object_name} agrees now: drop it from KNOWN_DIFFERENCES"
        assert pair.server.allowed == pair.ours.allowed and not pair.server.allowed  # only the wording differs
    pairs = [p for p in pairs if p not in known.values()]
    if name in ready.not_ready:
        sentinel = pairs[case.sentinel or 0]
        pytest.fail(f"{name}: the API server did not act on {sentinel.what} within 30 s: {sentinel.server}; "
                    f"ours: {sentinel.ours}")
    differences = [d for p in pairs for d in p.differences()]
    assert not differences, "\n".join(differences)


# --- generated objects ------------------------------------------------------------------------------------------

IMAGES = ["nginx:1.27", "nginx:latest", "registry.example.com/web:2", "docker.io/library/busybox:1",
          "quay.io/app:latest", "registry.example.com/sidecar:1"]
QUANTITIES = ["100m", "500m", "1", "2", "1500m", "64Mi", "1Gi", "2Gi", "512Mi", "0.5"]
NAMES = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True).filter(
    lambda n: not n.startswith(("system-", "kube-")))
LABELS = st.dictionaries(st.sampled_from(["app", "team", "tier", "env", "strict", "opt-out"]),
                         st.sampled_from(["web", "a", "internal", "skip", "yes", "true", "prod"]), max_size=3)


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    images = draw(st.lists(st.sampled_from(IMAGES), min_size=1, max_size=3))
    limits = draw(st.none() | st.dictionaries(st.sampled_from(["cpu", "memory"]), st.sampled_from(QUANTITIES),
                                              min_size=1))
    ns = draw(st.sampled_from(["$NS_A", "$NS_B"]))
    extra = draw(st.sampled_from([{}, {"securityContext": {"runAsNonRoot": True}}]))
    return pod(draw(NAMES), *images, labels=draw(LABELS), limits=limits, ns=ns, **extra)


@st.composite
def deployments(draw: st.DrawFn) -> dict[str, Any]:
    d = deployment(draw(NAMES), draw(st.integers(0, 10)), draw(LABELS), ns=draw(st.sampled_from(["$NS_A", "$NS_B"])),
                   image=draw(st.sampled_from(IMAGES)),
                   **draw(st.sampled_from([{}, {"serviceAccountName": "default"}, {"serviceAccountName": "ci"}])))
    return d


@st.composite
def configmaps(draw: st.DrawFn) -> dict[str, Any]:
    data = draw(st.dictionaries(
        st.sampled_from(["cpu", "url", "ip", "dns", "owner", "secret", "Upper", "sa"]),
        st.sampled_from(["1", "3", "250m", "two", "https://example.com", "http://a.b/c", "10.0.0.1", "fd00::1",
                         "192.168.1.1", "ok", "Bad_Label", "nobody"]), max_size=3))
    annotations = draw(st.none() | st.dictionaries(st.just("policy"), st.sampled_from(["on", "off"]), min_size=1))
    return configmap(draw(NAMES), data or None, draw(LABELS), ns=draw(st.sampled_from(["$NS_A", "$NS_B"])),
                     annotations=annotations)


def check_generated(world: World, obj: dict[str, Any]) -> None:
    obj = world.place(obj)
    cases = [c for c in world.cases if obj["kind"] in c.kinds and c.name not in world.not_ready]
    with ThreadPoolExecutor(4) as pool:
        pairs = list(pool.map(lambda c: compare(world, c, obj), cases))
    differences = [d for p in pairs for d in p.differences()]
    assert not differences, "\n".join(differences)


GENERATED = settings(max_examples=15, deadline=None, derandomize=True, database=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@GENERATED
@given(obj=pods())
def test_generated_pods(ready: World, obj: dict[str, Any]) -> None:
    check_generated(ready, obj)


@GENERATED
@given(obj=deployments())
def test_generated_deployments(ready: World, obj: dict[str, Any]) -> None:
    check_generated(ready, obj)


@GENERATED
@given(obj=configmaps())
def test_generated_configmaps(ready: World, obj: dict[str, Any]) -> None:
    check_generated(ready, obj)


def test_summary(ready: World, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\ncel parity: {len(ready.agreed)} distinct (policy, request) pairs compared with the API server "
              f"({ready.compared[0]} comparisons), {sum(ready.agreed.values())} agree")


# --- what the API server refuses at creation, and what we refuse at load -------------------------------------

VALIDITY_HEAD = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: NAME}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
"""
# (what, policy or binding, whether the API server takes it, why we differ when we do)
VALIDITY: list[tuple[str, str, bool, str]] = [
    ("valid", VALIDITY_HEAD + "  validations: [{expression: 'true'}]\n", True, ""),
    ("syntax error", VALIDITY_HEAD + "  validations: [{expression: 'object.x +'}]\n", False, ""),
    ("type error", VALIDITY_HEAD + "  validations: [{expression: \"1 + 'a' == 2\"}]\n", False, ""),
    ("dyn validation", VALIDITY_HEAD + "  validations: [{expression: object.data.x}]\n", False, ""),
    ("dyn messageExpression", VALIDITY_HEAD + "  validations: [{expression: 'true', messageExpression: "
                                              "object.data.x}]\n", False, ""),
    ("null or string", VALIDITY_HEAD + "  validations: [{expression: 'true'}]\n  auditAnnotations: [{key: a, "
                                       "valueExpression: \"true ? 'a' : null\"}]\n", False, ""),
    ("unknown field", VALIDITY_HEAD + "  validations: [{expression: 'true', mesage: x}]\n", True,
     "the API server drops an unknown field with a warning; we refuse it, so that a typo is not ignored"),
    ("MAP without reinvocationPolicy", """\
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: NAME}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
  mutations:
  - {patchType: ApplyConfiguration, applyConfiguration: {expression: 'Object{}'}}
""", False, ""),
    ("rule without operations", VALIDITY_HEAD.replace("operations: [CREATE], ", "")
     + "  validations: [{expression: 'true'}]\n", False,
     "the kyverno CLI applies such a rule to every operation, and its tests rely on it"),
    ("binding without validationActions", """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: NAME}
spec: {policyName: NAME}
""", False, "the kyverno CLI defaults validationActions to Deny, and its tests rely on it"),
    ("paramRef without parameterNotFoundAction", """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: NAME}
spec: {policyName: NAME, validationActions: [Deny], paramRef: {name: p}}
""", False, "the kyverno CLI defaults parameterNotFoundAction to Deny, and its tests rely on it"),
]


@pytest.mark.parametrize(("what", "text", "served", "why"), VALIDITY, ids=[v[0] for v in VALIDITY])
def test_what_the_api_server_refuses_we_refuse(ready: World, tmp_path: Path, what: str, text: str, served: bool,
                                              why: str) -> None:
    from admission.engines import PolicyError

    name = f"validity-{ready.suffix}"
    doc = yaml.safe_load(text.replace("NAME", name))
    status, body, _ = ready.server.call("POST", f"/apis/{GROUP}/v1/{doc['kind'].lower()}s"
                                        .replace("policys", "policies"), doc, [("dryRun", "All")])
    assert (status < 300) is served, f"the API server answered {status}: {body}"
    path = tmp_path / "p.yaml"
    docs = [doc]
    if doc["kind"].endswith("Binding"):  # a binding loads with its policy
        docs.insert(0, yaml.safe_load(VALIDITY_HEAD.replace("NAME", name) + "  validations: [{expression: 'true'}]\n"
                                      + ("  paramKind: {apiVersion: v1, kind: ConfigMap}\n" if "paramRef" in text
                                         else "")))
    path.write_text(yaml.safe_dump_all(docs))
    try:
        load([path], offline=True)
        loaded = True
    except PolicyError:
        loaded = False
    if why:  # a known difference, on purpose
        assert loaded is not served, why
    else:
        assert loaded is served


# --- what is the API server's, not the policy engine's -------------------------------------------------------

def test_defaulting_is_the_api_servers(ready: World) -> None:
    """Policies see the object after the API server's defaulting; an offline manifest has no defaults. Our
    engine on the defaulted object agrees (the corpus above); on the manifest as written it cannot know that
    `imagePullPolicy` defaults to Always for a `:latest` image. Defaulting the built-in types is the API
    server's (a CI check can run `kubectl create --dry-run=server` for that)."""
    case = Case("limits", "", [])
    raw = ready.place(pod("defaults", "nginx:latest", limits={"memory": "1Mi"}))
    baseline = ready.server.dry_run("POST", raw)
    assert baseline.obj is not None and baseline.obj["spec"]["containers"][0]["imagePullPolicy"] == "Always"
    assert "imagePullPolicy" not in raw["spec"]["containers"][0]
    assert case.name in ready.engines  # the corpus's `limits` policy reads only what the manifest has ...
    engine = ready.engines["limits"]
    on_raw = engine.review(Request.for_object(labelled(raw, "limits"), user_info=ready.user, dry_run=True),
                           Context(state=ready.state()), Phase.ALL)
    on_defaulted = engine.review(Request.for_object(labelled(baseline.obj, "limits"), user_info=ready.user,
                                                    dry_run=True), Context(state=ready.state()), Phase.ALL)
    assert on_raw.decision.allowed == on_defaulted.decision.allowed  # ... so both agree here
    assert on_raw.request.object != on_defaulted.request.object  # but the objects a policy sees differ


def test_reinvocation_after_defaulting_is_the_api_servers(ready: World, tmp_path: Path) -> None:
    """After a mutation the API server applies the built-in types' defaults again; defaults added since a
    policy ran count as a change, so a policy with reinvocationPolicy IfNeeded runs once more and sees the
    container an earlier mutation of its own added. We apply no defaults: our policy runs once."""
    name = f"reinvoke-{ready.suffix}"
    policy = {"apiVersion": f"{GROUP}/v1", "kind": "MutatingAdmissionPolicy", "metadata": {"name": name}, "spec": {
        "reinvocationPolicy": "IfNeeded",
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                                "resources": ["pods"]}]},
        "mutations": [
            {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": (
                "Object{spec: Object.spec{containers: object.spec.containers.map(c, Object.spec.containers{"
                "name: c.name, securityContext: Object.spec.containers.securityContext{"
                "allowPrivilegeEscalation: false}})}}")}},
            {"patchType": "ApplyConfiguration", "applyConfiguration": {"expression": (
                "object.spec.containers.exists(c, c.name == 'sidecar') ? Object{} : Object{spec: Object.spec{"
                "containers: [Object.spec.containers{name: 'sidecar', image: 'registry.example.com/s:1'}]}}")}}]}}
    binding = {"apiVersion": f"{GROUP}/v1", "kind": "MutatingAdmissionPolicyBinding",
               "metadata": {"name": name}, "spec": {"policyName": name}}
    isolate(binding, (RUN_LABEL, ready.suffix), (CASE_LABEL, "reinvoke"))
    path = tmp_path / "reinvoke.yaml"
    path.write_text(yaml.safe_dump_all([policy, binding]))
    engine = load([path])
    ready.server.create(policy)
    try:
        ready.server.create(binding)
        try:
            obj = labelled(ready.place(pod("reinvoked")), "reinvoke")
            deadline = time.monotonic() + 30
            answer = ready.server.dry_run("POST", obj)
            while answer.allowed and (answer.obj or {})["metadata"].get("labels") and len(
                    (answer.obj or {})["spec"]["containers"]) == 1 and time.monotonic() < deadline:
                time.sleep(0.2)
                answer = ready.server.dry_run("POST", obj)
            assert answer.obj is not None
            sidecar = next(c for c in answer.obj["spec"]["containers"] if c["name"] == "sidecar")
            assert sidecar["securityContext"] == {"allowPrivilegeEscalation": False}  # reinvoked
            baseline = ready.server.dry_run("POST", labelled(obj, None))
            ours = engine.review(Request.for_object(labelled(baseline.obj or {}, "reinvoke"), user_info=ready.user,
                                                    dry_run=True), Context(state=ready.state()), Phase.ALL)
            assert ours.mutated is not None
            mine = next(c for c in ours.mutated["spec"]["containers"] if c["name"] == "sidecar")
            assert "securityContext" not in mine  # not reinvoked: nothing but our own policy changed the object
        finally:
            ready.server.delete(binding)
    finally:
        ready.server.delete(policy)
