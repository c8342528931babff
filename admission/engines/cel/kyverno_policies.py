"""Kyverno's CEL policy kinds (`policies.kyverno.io` v1alpha1, v1beta1, v1): ValidatingPolicy,
MutatingPolicy, GeneratingPolicy and PolicyException, and their Namespaced variants.

Each document is checked against its kind's fields (admission.engines.yaml.schema: unknown fields, enums,
types, with "did you mean") and every expression is compiled once, at load; a problem is a PolicyError
naming file:line (and the expression). Evaluation follows the API server's ValidatingAdmissionPolicy:

    matchConstraints -> matchConditions (all true) -> variables (lazily, once per request) -> body

A ValidatingPolicy yields one result per request it matches: `fail` with the messages of the validations
that returned false, `pass` when none did, `error` when an expression failed (which follows the policy's
failurePolicy). Its validationActions give the action (Deny enforces; Warn and Audit report). A
MutatingPolicy applies its mutations in order (ApplyConfiguration merges, JSONPatch lists); a
GeneratingPolicy's `generator.Apply(namespace, objects)` names what it would create (only `test` asks:
see CelPolicyEvaluator.generate). A PolicyException whose policyRefs name a policy and whose
matchConditions all hold turns that policy's result on the request into `skip`.

Policies that select only Pods also apply to pod controllers (kyverno_match: auto-generation), their
expressions reading the template's pod.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from admission.engines import PolicyError
from admission.engines.cel.kyverno_eval import Expression
from admission.engines.yaml import schema
from admission.manifests import Document
from admission.results import Action, FailurePolicy, parse_failure_policy

GROUP = "policies.kyverno.io"
VERSIONS = ("v1alpha1", "v1beta1", "v1")
# kind -> (its spec's schema node, what it does)
KINDS: dict[str, tuple[str, str]] = {
    "ValidatingPolicy": ("ValidatingPolicySpec", "validate"),
    "NamespacedValidatingPolicy": ("ValidatingPolicySpec", "validate"),
    "MutatingPolicy": ("MutatingPolicySpec", "mutate"),
    "NamespacedMutatingPolicy": ("MutatingPolicySpec", "mutate"),
    "GeneratingPolicy": ("GeneratingPolicySpec", "generate"),
    "NamespacedGeneratingPolicy": ("GeneratingPolicySpec", "generate"),
    "PolicyException": ("PolicyExceptionSpec", "exception"),
}
# Kyverno has these too; this engine does not run them, and loading them silently would mislead.
UNSUPPORTED = {
    "ImageValidatingPolicy": "image verification (signatures, attestations) is not supported",
    "NamespacedImageValidatingPolicy": "image verification (signatures, attestations) is not supported",
    "DeletingPolicy": "DeletingPolicy (scheduled deletion of cluster objects) is not supported",
    "NamespacedDeletingPolicy": "DeletingPolicy (scheduled deletion of cluster objects) is not supported",
}


def is_cel_policy(obj: Any) -> bool:
    """A document of the policies.kyverno.io group (any kind: unknown ones are load errors)."""
    return isinstance(obj, dict) and str(obj.get("apiVersion") or "").startswith(GROUP + "/")


@dataclass(frozen=True)
class Validation:
    expression: Expression
    message: str = ""
    message_expression: Expression | None = None


@dataclass(frozen=True)
class Mutation:
    patch_type: str  # ApplyConfiguration | JSONPatch
    expression: Expression


@dataclass(frozen=True)
class Body:
    """The expressions of a policy as they apply to one group of kinds: as written, or rewritten for pod
    controllers (template "template" / "jobTemplate")."""

    template: str
    match: dict[str, Any]
    matcher: Any = None  # match read once (admission.engines.cel.matching.MatchResources)
    conditions: tuple[tuple[str, Expression], ...] = ()
    variables: tuple[tuple[str, Expression], ...] = ()
    validations: tuple[Validation, ...] = ()
    mutations: tuple[Mutation, ...] = ()
    generate: tuple[Expression, ...] = ()


@dataclass(frozen=True)
class CelPolicy:
    kind: str
    name: str
    namespace: str  # "" unless a Namespaced kind or a PolicyException
    source: str  # file:line
    does: str  # validate | mutate | generate | exception
    bodies: tuple[Body, ...]  # the policy as written first, then the generated ones
    action: Action = Action.ENFORCE
    actions: tuple[str, ...] = ("Deny",)
    failure_policy: FailurePolicy = FailurePolicy.FAIL
    annotations: dict[str, str] = field(default_factory=dict)
    controllers: tuple[str, ...] = ()
    policy_refs: tuple[tuple[str, str], ...] = ()  # for a PolicyException: (kind, name)
    raw: dict[str, Any] = field(default_factory=dict)


def _schema(doc: Document, node: str, value: Any, path: tuple[str | int, ...]) -> None:
    try:
        schema.check(value, schema.Node(node), path)
    except schema.SchemaError as exc:
        raise PolicyError(f"{doc.file}:{schema.line_of(doc, exc.path)}", str(exc)) from None


def action_of(actions: list[str]) -> Action:
    """The action of validationActions: Deny enforces; Warn and Audit only report."""
    if "Deny" in actions:
        return Action.ENFORCE
    if "Warn" in actions:
        return Action.WARN
    return Action.AUDIT


def check_document(doc: Document) -> tuple[str, str, str, dict[str, Any]]:
    """(kind, name, namespace, spec) of a policies.kyverno.io document, checked against its schema."""
    obj = doc.obj
    where = f"{doc.file}:{doc.line}"
    api = str(obj.get("apiVersion") or "")
    version = api.partition("/")[2]
    kind = str(obj.get("kind") or "")
    if kind in UNSUPPORTED:
        raise PolicyError(where, f"kind: {kind}: {UNSUPPORTED[kind]}")
    if kind not in KINDS:
        hint = schema.did_you_mean(kind, list(KINDS))
        raise PolicyError(where, f"kind: {kind!r} of {api} is not supported (one of {', '.join(KINDS)}){hint}")
    if version not in VERSIONS:
        hint = schema.did_you_mean(version, VERSIONS)
        raise PolicyError(where, f"apiVersion: {api!r}: {GROUP} has versions {', '.join(VERSIONS)}{hint}")
    schema.validate(doc, "CELPolicy")
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    if not name:
        raise PolicyError(where, f"{kind} has no metadata.name")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise PolicyError(where, f"{kind} {name} has no spec")
    _schema(doc, KINDS[kind][0], spec, ("spec",))
    namespace = str(meta.get("namespace") or "") if kind.startswith("Namespaced") or kind == "PolicyException" else ""
    return kind, name, namespace, spec


def parse_failure(spec: dict[str, Any]) -> FailurePolicy:
    return parse_failure_policy(spec.get("failurePolicy"), FailurePolicy.FAIL)


def _compile(doc: Document, text: Any, path: tuple[str | int, ...], template: str,
             names: tuple[str, ...] = (), object_types: tuple[str, ...] = (),
             definitions: tuple[tuple[str, Expression], ...] = ()) -> Expression:
    """An expression of the document at path, compiled (its tree rewritten to read a template's pod, for the
    bodies generated for pod controllers: passes.pod_template_paths)."""
    from admission.engines.cel.kyverno_eval import compile_expression

    field = schema.format_path(path)
    where = f"{doc.file}:{doc.line}"
    if not isinstance(text, str) or not text.strip():
        raise PolicyError(f"{doc.file}:{schema.line_of(doc, path)}", f"{field}: an expression is required")
    try:
        return compile_expression(text, where, field, names, object_types, definitions, template)
    except PolicyError as exc:
        raise PolicyError(f"{doc.file}:{schema.line_of(doc, path)}", exc.message) from None


def _named(doc: Document, items: Any, key: str, template: str,
           chained: bool = False) -> tuple[tuple[str, Expression], ...]:
    """Named expressions (matchConditions, variables); chained: each may read those before it as variables."""
    out: list[tuple[str, Expression]] = []
    seen: set[str] = set()
    for i, item in enumerate(items or []):
        name = str(item.get("name") or "")
        if not name:
            raise PolicyError(f"{doc.file}:{schema.line_of(doc, ('spec', key, i))}", f"spec.{key}[{i}]: name is required")
        if name in seen:
            raise PolicyError(f"{doc.file}:{schema.line_of(doc, ('spec', key, i))}",
                              f"spec.{key}[{i}]: duplicate name {name!r}")
        seen.add(name)
        out.append((name, _compile(doc, item.get("expression"), ("spec", key, i, "expression"), template,
                                   definitions=tuple(out) if chained else ())))
    return tuple(out)


def _body(doc: Document, spec: dict[str, Any], does: str, template: str, match: dict[str, Any]) -> Body:
    conditions = _named(doc, spec.get("matchConditions"), "matchConditions", template)
    variables = _named(doc, spec.get("variables"), "variables", template, chained=True)
    validations: list[Validation] = []
    mutations: list[Mutation] = []
    generate: list[Expression] = []
    if does == "validate":
        for i, v in enumerate(spec.get("validations") or []):
            expr = _compile(doc, v.get("expression"), ("spec", "validations", i, "expression"), template,
                            definitions=variables)
            message_expr = None
            if v.get("messageExpression"):
                message_expr = _compile(doc, v["messageExpression"], ("spec", "validations", i, "messageExpression"),
                                        template, definitions=variables)
            validations.append(Validation(expr, str(v.get("message") or ""), message_expr))
    elif does == "mutate":
        for i, m in enumerate(spec.get("mutations") or []):
            patch_type = str(m.get("patchType") or "")
            key = {"ApplyConfiguration": "applyConfiguration", "JSONPatch": "jsonPatch"}.get(patch_type)
            if key is None or not isinstance(m.get(key), dict):
                raise PolicyError(f"{doc.file}:{schema.line_of(doc, ('spec', 'mutations', i))}",
                                  f"spec.mutations[{i}]: patchType ApplyConfiguration needs applyConfiguration, "
                                  "JSONPatch needs jsonPatch")
            expr = _compile(doc, m[key].get("expression"), ("spec", "mutations", i, key, "expression"), template,
                            object_types=("Object", "JSONPatch"), definitions=variables)
            mutations.append(Mutation(patch_type, expr))
    elif does == "generate":
        for i, g in enumerate(spec.get("generate") or []):
            generate.append(_compile(doc, g.get("expression"), ("spec", "generate", i, "expression"), template,
                                     ("generator",), definitions=variables))
    from admission.engines.cel.kyverno_match import match_resources

    return Body(template, match, match_resources(match), conditions, variables, tuple(validations), tuple(mutations),
                tuple(generate))


def parse(doc: Document) -> CelPolicy:
    """A CelPolicy from a policies.kyverno.io document. Raises PolicyError (file:line) for a malformed one."""
    from admission.engines.cel.kyverno_match import CONTROLLERS, controller_match, controllers_for

    kind, name, namespace, spec = check_document(doc)
    source = f"{doc.file}:{doc.line}"
    does = KINDS[kind][1]
    meta = doc.obj.get("metadata") or {}
    annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    if does == "exception":
        refs = tuple((str(r.get("kind") or ""), str(r.get("name") or "")) for r in spec.get("policyRefs") or [])
        if not refs:
            raise PolicyError(source, f"{kind} {name}: spec.policyRefs must name the policies it exempts from")
        conditions = _named(doc, spec.get("matchConditions"), "matchConditions", "")
        return CelPolicy(kind, name, namespace, source, does, (Body("", {}, None, conditions),), annotations=annotations,
                         policy_refs=refs, raw=doc.obj)
    match = spec.get("matchConstraints")
    if not isinstance(match, dict) or not match.get("resourceRules"):
        raise PolicyError(source, f"{kind} {name}: spec.matchConstraints.resourceRules must say which resources "
                                  "it applies to")
    if does == "validate" and not spec.get("validations"):
        raise PolicyError(source, f"{kind} {name}: spec.validations is empty")
    if does == "mutate" and not spec.get("mutations"):
        raise PolicyError(source, f"{kind} {name}: spec.mutations is empty")
    if does == "generate" and not spec.get("generate"):
        raise PolicyError(source, f"{kind} {name}: spec.generate is empty")
    if does == "mutate" and ((spec.get("autogen") or {}).get("podControllers") or {}).get("controllers"):
        raise PolicyError(f"{doc.file}:{schema.line_of(doc, ('spec', 'autogen', 'podControllers'))}",
                          f"{kind} {name}: spec.autogen.podControllers is not supported for mutations (a "
                          "MutatingPolicy applies to the kinds its matchConstraints name)")
    bodies = [_body(doc, spec, does, "", match)]
    controllers = controllers_for(match, spec, annotations) if does == "validate" else []
    workloads = [k for k in controllers if CONTROLLERS[k][2] == "template"]
    if workloads:
        bodies.append(_body(doc, spec, does, "template", controller_match(match, workloads)))
    if "CronJob" in controllers:
        bodies.append(_body(doc, spec, does, "jobTemplate", controller_match(match, ["CronJob"])))
    actions = tuple(str(a) for a in spec.get("validationActions") or ["Deny"])
    return CelPolicy(kind, name, namespace, source, does, tuple(bodies), action_of(list(actions)), actions,
                     parse_failure(spec), annotations, tuple(controllers), raw=doc.obj)
