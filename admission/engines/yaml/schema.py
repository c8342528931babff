"""The Kyverno ClusterPolicy/Policy dialect as a table: which fields each node has, of which type (and, smaller,
the common fields of Gatekeeper constraints, our PodSecurityException and our PolicyTest).

Learned from Kyverno's CRD (api/kyverno/v1: Spec, Rule, MatchResources, ResourceDescription, UserInfo,
ContextEntry, Validation, Mutation, Generation, ForEach*, Condition, PodSecurity). A document is walked once
at load time; the first field that is unknown, of the wrong type or outside its enum is a SchemaError naming
its path (`spec.rules[0].validate.deny.conditions.any[0].operator`) and, for a near miss, the closest name.
Fields Kyverno accepts but this engine does not implement, where ignoring them would change what the policy
means, are errors saying "not supported". Free-form values (patterns, patches, condition keys and values,
generated data) are not walked.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml

from admission.engines import PolicyError
from admission.engines.yaml.conditions import OPERATOR_NAMES
from admission.manifests import Document, SafeLoader

FieldPath = tuple[str | int, ...]


class SchemaError(Exception):
    """A field that does not mean what its author thinks. `path` leads to it from the document's root."""

    def __init__(self, path: FieldPath, message: str) -> None:
        super().__init__(f"{format_path(path)}: {message}")
        self.path = path
        self.message = message


def format_path(path: FieldPath) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'X'?)` for the closest of choices, comparing case-insensitively; "" when none is close."""
    by_lower: dict[str, str] = {}
    for c in choices:  # the first spelling of each name is the one suggested
        by_lower.setdefault(c.lower(), c)
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""


# --- types -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scalar:
    """A str, bool, int or number; `name` is what the message calls it."""

    types: tuple[type, ...]
    name: str


STR = Scalar((str,), "a string")
BOOL = Scalar((bool,), "a boolean")
INT = Scalar((int,), "an integer")
ANY = Scalar((object,), "anything")


@dataclass(frozen=True)
class Enum:
    """One of values. `shown` are the values a message lists and suggests (default: all; the first spelling of each)."""

    values: tuple[str, ...]
    case_insensitive: bool = False
    shown: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class MapOf:
    """A mapping of free keys to values of one type (labels, annotations)."""

    value: Any


@dataclass(frozen=True)
class Node:
    """A mapping whose fields are NODES[name]."""

    name: str


@dataclass(frozen=True)
class Unsupported:
    """Kyverno accepts it; this engine does not implement it, and ignoring it would change the policy."""

    why: str


@dataclass(frozen=True)
class Only:
    """A value of `kind` that Kyverno accepts, of which this engine implements only `values`."""

    kind: Any
    values: tuple[Any, ...]
    why: str


@dataclass(frozen=True)
class StrOrList:
    """A string, or a list of strings (Kyverno's JSON patch text; condition values in the legacy form)."""


CONDITIONS = "Conditions"  # a list of Condition (legacy, all must hold), or {any, all}


# Kyverno's engine lowercases operator names; Equal and NotEqual are its deprecated spellings (not suggested).
OPERATORS = Enum(OPERATOR_NAMES, case_insensitive=True,
                 shown=tuple(n for n in OPERATOR_NAMES if n not in ("Equal", "NotEqual")))
FAILURE_ACTION = Enum(("Enforce", "Audit", "enforce", "audit"), shown=("Enforce", "Audit"))  # the CRD's enum
LABEL_SELECTOR = Node("LabelSelector")

NODES: dict[str, dict[str, Any]] = {
    "Policy": {
        "apiVersion": STR,
        "kind": STR,
        "metadata": Node("ObjectMeta"),
        "spec": Node("Spec"),
        "status": ANY,
    },
    "ObjectMeta": {
        "name": STR,
        "namespace": STR,
        "labels": MapOf(STR),
        "annotations": MapOf(STR),
        "generateName": STR,
        "uid": STR,
        "resourceVersion": STR,
        "generation": INT,
        "creationTimestamp": ANY,
        "deletionTimestamp": ANY,
        "deletionGracePeriodSeconds": INT,
        "finalizers": ListOf(STR),
        "ownerReferences": ANY,
        "managedFields": ANY,
    },
    "Spec": {
        "rules": ListOf(Node("Rule")),
        "applyRules": Enum(("One", "All")),
        "failurePolicy": Enum(("Ignore", "Fail")),
        "validationFailureAction": FAILURE_ACTION,
        "validationFailureActionOverrides": ListOf(Node("FailureActionOverride")),
        "emitWarning": BOOL,
        "admission": Only(BOOL, (True,), "admission: false (background scans only) is not supported: "
                                         "every policy loaded here applies at admission"),
        "background": BOOL,
        "schemaValidation": BOOL,
        "webhookTimeoutSeconds": INT,
        "mutateExistingOnPolicyUpdate": BOOL,
        "generateExisting": BOOL,
        "generateExistingOnPolicyUpdate": BOOL,
        "useServerSideApply": BOOL,
        "webhookConfiguration": Node("WebhookConfiguration"),
    },
    "WebhookConfiguration": {
        "failurePolicy": Enum(("Ignore", "Fail")),
        "timeoutSeconds": INT,
        "matchConditions": Unsupported("webhookConfiguration.matchConditions (CEL) is not supported; "
                                       "narrow the rule's match instead"),
    },
    "FailureActionOverride": {
        "action": FAILURE_ACTION,
        "namespaces": ListOf(STR),
        "namespaceSelector": LABEL_SELECTOR,
    },
    "Rule": {
        "name": STR,
        "context": ListOf(Node("ContextEntry")),
        "match": Node("Match"),
        "exclude": Node("Match"),
        "imageExtractors": Unsupported("imageExtractors are not supported"),
        "preconditions": CONDITIONS,
        "celPreconditions": ListOf(Node("MatchCondition")),
        "validate": Node("Validation"),
        "mutate": Node("Mutation"),
        "generate": Node("Generation"),
        "verifyImages": Unsupported("verifyImages rules are not supported"),
        "skipBackgroundRequests": BOOL,
        "reportProperties": MapOf(STR),
    },
    "Match": {
        "any": ListOf(Node("ResourceFilter")),
        "all": ListOf(Node("ResourceFilter")),
        "resources": Node("ResourceDescription"),
        "subjects": ListOf(Node("Subject")),
        "roles": ListOf(STR),
        "clusterRoles": ListOf(STR),
    },
    "ResourceFilter": {
        "resources": Node("ResourceDescription"),
        "subjects": ListOf(Node("Subject")),
        "roles": ListOf(STR),
        "clusterRoles": ListOf(STR),
    },
    "ResourceDescription": {
        "kinds": ListOf(STR),
        "name": STR,
        "names": ListOf(STR),
        "namespaces": ListOf(STR),
        "annotations": MapOf(STR),
        "selector": LABEL_SELECTOR,
        "namespaceSelector": LABEL_SELECTOR,
        "operations": ListOf(Enum(("CREATE", "CONNECT", "UPDATE", "DELETE"))),
    },
    "Subject": {
        "kind": Enum(("User", "Group", "ServiceAccount")),
        "apiGroup": STR,
        "name": STR,
        "namespace": STR,
    },
    "LabelSelector": {
        "matchLabels": MapOf(STR),
        "matchExpressions": ListOf(Node("LabelSelectorRequirement")),
    },
    "LabelSelectorRequirement": {
        "key": STR,
        "operator": Enum(("In", "NotIn", "Exists", "DoesNotExist")),
        "values": ListOf(STR),
    },
    "ContextEntry": {
        "name": STR,
        "configMap": Node("ConfigMapReference"),
        "apiCall": Node("APICall"),
        "imageRegistry": Node("ImageRegistry"),
        "variable": Node("Variable"),
        "globalReference": Unsupported("globalReference context entries are not supported"),
    },
    "ConfigMapReference": {"name": STR, "namespace": STR},
    "APICall": {
        "urlPath": STR,
        "method": Only(Enum(("GET", "POST")), ("GET",),
                       "apiCall method POST is not supported (only GET, answered from the cluster state)"),
        "data": ListOf(Node("RequestData")),
        "service": Unsupported("apiCall.service (calling a service by URL) is not supported; use urlPath"),
        "jmesPath": STR,
        "default": ANY,
    },
    "RequestData": {"key": STR, "value": ANY},
    "ImageRegistry": {
        "reference": STR,
        "jmesPath": STR,
        "imageRegistryCredentials": ANY,
    },
    "Variable": {"value": ANY, "jmesPath": STR, "default": ANY},
    "Validation": {
        "failureAction": FAILURE_ACTION,
        "failureActionOverrides": ListOf(Node("FailureActionOverride")),
        "validationFailureAction": FAILURE_ACTION,
        "allowExistingViolations": BOOL,
        "message": STR,
        "pattern": ANY,
        "anyPattern": ANY,
        "deny": Node("Deny"),
        "foreach": ListOf(Node("ForEachValidation")),
        "podSecurity": Node("PodSecurity"),
        "manifests": Unsupported("validate.manifests is not supported"),
        "cel": Node("CELValidation"),
        "assert": Unsupported("validate.assert is not supported"),
    },
    "Deny": {"conditions": CONDITIONS},
    "ForEachValidation": {
        "list": STR,
        "elementScope": BOOL,
        "context": ListOf(Node("ContextEntry")),
        "preconditions": CONDITIONS,
        "pattern": ANY,
        "anyPattern": ANY,
        "deny": Node("Deny"),
        "foreach": ListOf(Node("ForEachValidation")),
    },
    "PodSecurity": {
        "level": Enum(("privileged", "baseline", "restricted")),
        "version": STR,
        "exclude": ListOf(Node("PodSecurityExclude")),
    },
    "PodSecurityExclude": {
        "controlName": STR,
        "images": ListOf(STR),
        "restrictedField": STR,
        "values": ListOf(STR),
    },
    "Mutation": {
        "mutateExistingOnPolicyUpdate": Unsupported(
            "mutate.mutateExistingOnPolicyUpdate (mutating existing resources) is not supported"),
        "targets": Unsupported("mutate.targets (mutating existing resources in the background) is not "
                               "supported; only the admitted resource can be mutated"),
        "patchStrategicMerge": ANY,
        "patchesJson6902": StrOrList(),
        "foreach": ListOf(Node("ForEachMutation")),
    },
    "ForEachMutation": {
        "list": STR,
        "order": Enum(("Ascending", "Descending")),
        "context": ListOf(Node("ContextEntry")),
        "preconditions": CONDITIONS,
        "patchStrategicMerge": ANY,
        "patchesJson6902": StrOrList(),
        "foreach": ListOf(Node("ForEachMutation")),
    },
    "Generation": {
        "generateExisting": BOOL,
        "synchronize": BOOL,
        "orphanDownstreamOnPolicyDelete": BOOL,
        "apiVersion": STR,
        "kind": STR,
        "name": STR,
        "namespace": STR,
        "uid": STR,
        "data": ANY,
        "clone": Node("CloneFrom"),
        "cloneList": Node("CloneList"),
        "foreach": Unsupported("generate.foreach is not supported"),
    },
    "CloneFrom": {"namespace": STR, "name": STR},
    "CloneList": {"namespace": STR, "kinds": ListOf(STR), "selector": LABEL_SELECTOR},
    "Condition": {
        "key": ANY,
        "operator": OPERATORS,
        "value": ANY,
        "message": STR,
    },
    "AnyAllConditions": {
        "any": ListOf(Node("Condition")),
        "all": ListOf(Node("Condition")),
    },
    # --- CEL, as Kyverno's ClusterPolicy `validate.cel` and its policies.kyverno.io kinds write it
    # (Kubernetes' admissionregistration/v1 Validation, Variable, MatchCondition, MatchResources)
    "CELValidation": {
        "expressions": ListOf(Node("CELExpression")),
        "variables": ListOf(Node("CELVariable")),
        "paramKind": Unsupported("validate.cel.paramKind is not supported (params are not available to "
                                 "ClusterPolicy rules)"),
        "paramRef": Unsupported("validate.cel.paramRef is not supported (params are not available to "
                                "ClusterPolicy rules)"),
        "auditAnnotations": Unsupported("validate.cel.auditAnnotations are not supported"),
    },
    "CELExpression": {"expression": STR, "message": STR, "messageExpression": STR, "reason": STR},
    "CELVariable": {"name": STR, "expression": STR},
    "MatchCondition": {"name": STR, "expression": STR},
    # --- Kyverno's CEL policy kinds (policies.kyverno.io v1alpha1, v1beta1, v1): ValidatingPolicy,
    # MutatingPolicy, GeneratingPolicy, PolicyException, and their Namespaced variants
    "CELPolicy": {
        "apiVersion": STR,
        "kind": STR,
        "metadata": Node("ObjectMeta"),
        "spec": ANY,  # checked against the kind's own spec node (admission.engines.cel.kyverno_policies)
        "status": ANY,
    },
    "ValidatingPolicySpec": {
        "matchConstraints": Node("MatchResources"),
        "matchConditions": ListOf(Node("MatchCondition")),
        "variables": ListOf(Node("CELVariable")),
        "validations": ListOf(Node("CELExpression")),
        "validationActions": ListOf(Enum(("Deny", "Warn", "Audit"))),
        "failurePolicy": Enum(("Ignore", "Fail")),
        "auditAnnotations": Unsupported("auditAnnotations are not supported (no audit events are written)"),
        "autogen": Node("ValidatingPolicyAutogen"),
        "evaluation": Node("CELEvaluation"),
        "webhookConfiguration": Node("CELWebhookConfiguration"),
        "paramKind": Unsupported("paramKind is not supported for ValidatingPolicy"),
        "paramRef": Unsupported("paramRef is not supported for ValidatingPolicy"),
    },
    "MutatingPolicySpec": {
        "matchConstraints": Node("MatchResources"),
        "matchConditions": ListOf(Node("MatchCondition")),
        "variables": ListOf(Node("CELVariable")),
        "mutations": ListOf(Node("CELMutation")),
        "failurePolicy": Enum(("Ignore", "Fail")),
        "reinvocationPolicy": Enum(("Never", "IfNeeded")),
        "autogen": Node("MutatingPolicyAutogen"),
        "evaluation": Node("CELEvaluation"),
        "webhookConfiguration": Node("CELWebhookConfiguration"),
        "targetMatchConstraints": Unsupported("targetMatchConstraints (mutating existing resources) is not "
                                              "supported; only the admitted resource can be mutated"),
        "paramKind": Unsupported("paramKind is not supported for MutatingPolicy"),
        "paramRef": Unsupported("paramRef is not supported for MutatingPolicy"),
    },
    "GeneratingPolicySpec": {
        "matchConstraints": Node("MatchResources"),
        "matchConditions": ListOf(Node("MatchCondition")),
        "variables": ListOf(Node("CELVariable")),
        "generate": ListOf(Node("CELGeneration")),
        "evaluation": Node("CELEvaluation"),
        "webhookConfiguration": Node("CELWebhookConfiguration"),
    },
    "PolicyExceptionSpec": {
        "policyRefs": ListOf(Node("PolicyRef")),
        "matchConditions": ListOf(Node("MatchCondition")),
        "images": ListOf(STR),
    },
    "PolicyRef": {"name": STR, "kind": STR},
    "CELMutation": {
        "patchType": Enum(("ApplyConfiguration", "JSONPatch")),
        "applyConfiguration": Node("CELExpressionOnly"),
        "jsonPatch": Node("CELExpressionOnly"),
    },
    "CELExpressionOnly": {"expression": STR},
    "CELGeneration": {"expression": STR},
    "ValidatingPolicyAutogen": {
        "podControllers": Node("PodControllers"),
        "validatingAdmissionPolicy": Node("Enabled"),
    },
    "MutatingPolicyAutogen": {
        "podControllers": Node("PodControllers"),
        "mutatingAdmissionPolicy": Node("Enabled"),
    },
    "PodControllers": {"controllers": ListOf(STR)},
    "Enabled": {"enabled": BOOL},
    "CELEvaluation": {
        "mode": Only(Enum(("Kubernetes", "JSON")), ("Kubernetes",),
                     "evaluation.mode JSON (policies over arbitrary JSON payloads) is not supported"),
        "admission": Only(Node("Enabled"), ({"enabled": True}, {}),
                          "evaluation.admission.enabled: false (background scans only) is not supported: every "
                          "policy loaded here applies at admission"),
        "background": Node("Enabled"),
        "mutateExisting": Only(Node("Enabled"), ({"enabled": False}, {}),
                               "evaluation.mutateExisting is not supported; only the admitted resource "
                               "can be mutated"),
        "generateExisting": Node("Enabled"),
        "synchronize": Node("Enabled"),
        "orphanDownstreamOnPolicyDelete": Node("Enabled"),
    },
    "CELWebhookConfiguration": {"timeoutSeconds": INT},
    "MatchResources": {
        "namespaceSelector": LABEL_SELECTOR,
        "objectSelector": LABEL_SELECTOR,
        "resourceRules": ListOf(Node("NamedRuleWithOperations")),
        "excludeResourceRules": ListOf(Node("NamedRuleWithOperations")),
        "matchPolicy": Enum(("Exact", "Equivalent")),
    },
    "NamedRuleWithOperations": {
        "apiGroups": ListOf(STR),
        "apiVersions": ListOf(STR),
        "resources": ListOf(STR),
        "resourceNames": ListOf(STR),
        "operations": ListOf(Enum(("*", "CREATE", "UPDATE", "DELETE", "CONNECT"))),
        "scope": Enum(("*", "Cluster", "Namespaced")),
    },
    # --- Gatekeeper constraints (constraints.gatekeeper.sh): the fields Gatekeeper gives every constraint kind
    "Constraint": {
        "apiVersion": STR,
        "kind": STR,
        "metadata": Node("ObjectMeta"),
        "spec": Node("ConstraintSpec"),
        "status": ANY,
    },
    "ConstraintSpec": {
        "match": Node("ConstraintMatch"),
        "parameters": ANY,
        "enforcementAction": Enum(("deny", "dryrun", "warn", "scoped")),
        "scopedEnforcementActions": ListOf(Node("ScopedEnforcementAction")),
    },
    "ScopedEnforcementAction": {
        "action": Enum(("deny", "dryrun", "warn")),
        "enforcementPoints": ListOf(Node("EnforcementPoint")),
    },
    "EnforcementPoint": {"name": STR},
    "ConstraintMatch": {
        "kinds": ListOf(Node("ConstraintKinds")),
        "scope": Enum(("*", "Cluster", "Namespaced")),
        "namespaces": ListOf(STR),
        "excludedNamespaces": ListOf(STR),
        "labelSelector": LABEL_SELECTOR,
        "namespaceSelector": LABEL_SELECTOR,
        "name": STR,
        "source": Unsupported("spec.match.source is not supported (every request is matched as Original)"),
    },
    "ConstraintKinds": {"apiGroups": ListOf(STR), "kinds": ListOf(STR)},
    # --- our PodSecurityException (admission.dev/v1)
    "PodSecurityException": {
        "apiVersion": STR,
        "kind": STR,
        "metadata": Node("ObjectMeta"),
        "spec": Node("PodSecurityExceptionSpec"),
    },
    "PodSecurityExceptionSpec": {
        "match": Node("PodSecurityExceptionMatch"),
        "controls": ListOf(STR),
        "owner": STR,
        "reason": STR,
        "expires": STR,
    },
    "PodSecurityExceptionMatch": {"kinds": ListOf(STR), "names": ListOf(STR), "selector": LABEL_SELECTOR},
    # --- our PolicyTest (admission.dev/v1)
    "PolicyTest": {
        "apiVersion": STR,
        "kind": STR,
        "metadata": Node("ObjectMeta"),
        "policies": ANY,  # a file name or a list of them: admission.testing.own checks
        "resources": ANY,
        "state": ANY,
        "results": ListOf(Node("PolicyTestResult")),
    },
    "PolicyTestResult": {
        "policy": STR,
        "rule": STR,
        "kind": STR,
        "resources": ANY,
        "result": STR,
        "patchedResource": STR,
    },
}


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def check(value: Any, kind: Any, path: FieldPath) -> None:
    """Raise SchemaError for the first part of value that does not fit kind."""
    if isinstance(kind, Scalar):
        if kind is ANY:
            return
        ok = isinstance(value, kind.types) and not (bool not in kind.types and isinstance(value, bool))
        if not ok:
            raise SchemaError(path, f"must be {kind.name}, not {_type_name(value)}")
    elif isinstance(kind, Enum):
        _check_enum(value, kind, path)
    elif isinstance(kind, ListOf):
        if not isinstance(value, list):
            raise SchemaError(path, f"must be a list, not {_type_name(value)}")
        for i, item in enumerate(value):
            check(item, kind.item, path + (i,))
    elif isinstance(kind, MapOf):
        if not isinstance(value, dict):
            raise SchemaError(path, f"must be a mapping, not {_type_name(value)}")
        for k, v in value.items():
            check(v, kind.value, path + (str(k),))
    elif isinstance(kind, Node):
        _check_node(value, kind.name, path)
    elif isinstance(kind, Unsupported):
        raise SchemaError(path, kind.why)
    elif isinstance(kind, Only):
        check(value, kind.kind, path)
        if value not in kind.values:
            raise SchemaError(path, kind.why)
    elif isinstance(kind, StrOrList):
        if not isinstance(value, (str, list)):
            raise SchemaError(path, f"must be a string or a list, not {_type_name(value)}")
    elif kind == CONDITIONS:
        if isinstance(value, list):
            check(value, ListOf(Node("Condition")), path)
        elif isinstance(value, dict):
            _check_node(value, "AnyAllConditions", path)
        else:
            raise SchemaError(path, f"must be a mapping with any/all or a list of conditions, not {_type_name(value)}")
    else:  # pragma: no cover - a mistake in the table above
        raise TypeError(f"unknown schema type {kind!r}")


def _check_enum(value: Any, kind: Enum, path: FieldPath) -> None:
    shown = kind.shown or kind.values
    allowed = ", ".join(shown)
    if not isinstance(value, str):
        raise SchemaError(path, f"must be one of {allowed}, not {_type_name(value)}")
    known = {v.lower() for v in kind.values} if kind.case_insensitive else set(kind.values)
    if (value.lower() if kind.case_insensitive else value) not in known:
        raise SchemaError(path, f"{value!r} is not one of {allowed}{did_you_mean(value, shown)}")


def _check_node(value: Any, name: str, path: FieldPath) -> None:
    if not isinstance(value, dict):
        raise SchemaError(path, f"must be a mapping, not {_type_name(value)}")
    fields = NODES[name]
    for key, item in value.items():
        k = str(key)
        if k not in fields:
            raise SchemaError(path + (k,), f"unknown field{did_you_mean(k, fields)}")
        if item is None:  # an explicit null is the field left out, as Kubernetes decodes it
            continue
        check(item, fields[k], path + (k,))


def check_document(obj: Any, node: str) -> None:
    """Raise SchemaError for the first field of obj that NODES[node] does not allow."""
    _check_node(obj, node, ())


def validate(doc: Document, node: str) -> None:
    """Raise PolicyError (`file:line: path: problem`) for the first field of doc that NODES[node] does not allow."""
    try:
        _check_node(doc.obj, node, ())
    except SchemaError as exc:
        raise PolicyError(f"{doc.file}:{line_of(doc, exc.path)}", str(exc)) from None


# --- where a path is in the file ------------------------------------------------------------------------

def _document_node(doc: Document) -> Any:
    """The YAML node of the document, composed again from its file (None when it cannot be: stdin, a List item)."""
    try:
        with open(doc.file, encoding="utf-8") as f:
            nodes = list(yaml.compose_all(f, Loader=SafeLoader))
        return next(n for n in nodes if n is not None and n.start_mark.line + 1 == doc.line)
    except Exception:  # stdin, a List item, or anything unexpected: the document's line will do
        return None


def _child(node: Any, key: str | int) -> tuple[Any, Any] | None:
    """(the node whose line names the entry, the entry's value node), or None."""
    if isinstance(node, yaml.MappingNode) and isinstance(key, str):
        return next(((k, v) for k, v in node.value if getattr(k, "value", None) == key), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return (node.value[key], node.value[key])
    return None


def node_at(doc: Document, path: FieldPath) -> Any:
    """The YAML node at path in doc's file, or None."""
    node = _document_node(doc)
    for key in path:
        found = _child(node, key)
        if found is None:
            return None
        node = found[1]
    return node


def line_of(doc: Document, path: FieldPath) -> int:
    """The line of the node at path (of its key, for a mapping entry), following the path as far as it goes."""
    node = _document_node(doc)
    if node is None:
        return doc.line
    line = node.start_mark.line + 1
    for key in path:
        found = _child(node, key)
        if found is None:
            break
        line = found[0].start_mark.line + 1
        node = found[1]
    return line
