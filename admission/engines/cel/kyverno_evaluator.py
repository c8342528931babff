"""The Evaluator for Kyverno's CEL policy kinds (admission.engines.cel.kyverno_policies).

Per request, each policy picks the body that applies (as written, or the one generated for the pod
controller kind), checks its matchConditions, and evaluates; exceptions that name the policy and whose
matchConditions hold turn its result into `skip`. Results carry the policy's name and no rule name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from admission.engines import OPERATIONS, Context, PolicyInfo, Target, parse_each
from admission.engines.cel.kyverno_eval import EvalError, Scope, namespace_object, request_wire, scope_reads
from admission.engines.cel.kyverno_match import CLUSTER_SCOPED_RESOURCES, request_coordinates
from admission.engines.cel.kyverno_policies import Body, CelPolicy, parse
from admission.manifests import Document
from admission.prune import Paths
from admission.results import Action, RuleResult, Status
from admission.review import Request
from admission.state import StateUnavailable
from admission.types import Object

DIALECT = "kyverno-cel"


@dataclasses.dataclass(frozen=True)
class Generated:
    """A generating policy's result and the resources it would create (as the Kyverno dialect's)."""

    result: RuleResult
    objects: tuple[Object, ...] = ()


class _NotMatched(Exception):
    pass


class CelPolicyEvaluator:
    """Compiled ValidatingPolicies, MutatingPolicies, GeneratingPolicies and their PolicyExceptions."""

    def __init__(self, policies: list[CelPolicy]) -> None:
        self.compiled = [p for p in policies if p.does != "exception"]
        self.exceptions = [p for p in policies if p.does == "exception"]
        # per body: what its expressions can read of the objects (bound per request, the rest left out); the
        # bodies are held by the policies, so their ids stay theirs
        self._reads = {id(b): scope_reads(b, b.variables) for p in policies for b in p.bodies}

    @classmethod
    def from_documents(cls, docs: list[Document]) -> CelPolicyEvaluator:
        return cls(parse_each(docs, parse))

    def per_policy(self) -> list[CelPolicyEvaluator]:
        """One evaluator per mutating policy (with the exceptions), for Engine.steps: the kyverno CLI
        compares each policy's patchedResources."""
        return [CelPolicyEvaluator([p, *self.exceptions]) for p in self.compiled if p.does == "mutate"]

    # -- what the policies are -------------------------------------------------------------------

    def policies(self) -> list[PolicyInfo]:
        return [
            PolicyInfo(
                name=p.name, dialect=DIALECT, source=p.source, rules=(),
                mutates=p.does == "mutate", validates=p.does == "validate",
                description=p.annotations.get("policies.kyverno.io/description")
                or p.annotations.get("policies.kyverno.io/title") or "",
                rule_docs=(("", _doc(p)),),
                targets=tuple(t for b in p.bodies for t in targets_of(b.match, p.does)),
            )
            for p in self.compiled if p.does in ("validate", "mutate")
        ]

    # -- the phases ------------------------------------------------------------------------------

    def validate(self, request: Request, ctx: Context) -> list[RuleResult]:
        out: list[RuleResult] = []
        for policy in self.compiled:
            if policy.does != "validate":
                continue
            result = self._run(policy, request, request.object, ctx, _validate)[0]
            if result is not None and (result.status != Status.SKIP or ctx.report_skips):
                out.append(result)
        return out

    def mutate(self, request: Request, obj: Object, ctx: Context) -> tuple[Object, list[RuleResult]]:
        out: list[RuleResult] = []
        current = obj
        for policy in self.compiled:
            if policy.does != "mutate":
                continue
            here = dataclasses.replace(request, object=current)
            result, value = self._run(policy, here, current, ctx, _mutate)
            if result is None:
                continue
            if result.status == Status.PASS and value is not None:
                current = value
            if result.status != Status.SKIP or ctx.report_skips:
                out.append(result)
        return current, out

    def generate(self, request: Request, ctx: Context) -> list[Generated]:
        """What the generating policies that apply would create (only `test` asks, as for the Kyverno
        dialect's generate rules: the webhook creates nothing)."""
        out: list[Generated] = []
        for policy in self.compiled:
            if policy.does != "generate":
                continue
            result, value = self._run(policy, request, request.object, ctx, _generate)
            if result is not None and (result.status != Status.SKIP or ctx.report_skips):
                out.append(Generated(result, tuple(value or ())))
        return out

    # -- one policy ------------------------------------------------------------------------------

    def _run(self, policy: CelPolicy, request: Request, obj: Object | None, ctx: Context,
             body_fn: Callable[[CelPolicy, Body, Scope], tuple[Status, str, Any]]) -> tuple[RuleResult | None, Any]:
        labels = _namespace_labels(ctx)
        try:
            body = next((b for b in policy.bodies if _applies(policy, b, request, labels)), None)
        except Exception as exc:  # the namespace's labels could not be known: the policy's error
            return _result(policy, Status.ERROR, f"failed to match: {exc}"), None
        if body is None:
            return None, None
        if ctx.expired():  # each expression checks the deadline too (Scope)
            return _result(policy, Status.ERROR, "deadline exceeded"), None
        scope = _scope(request, obj, body, ctx, self._reads.get(id(body)))
        try:
            if not _conditions_hold(body, scope):
                return _result(policy, Status.SKIP, "matchConditions not met"), None
            exception = self._excepted(policy, request, obj, ctx, labels)
            if exception:
                return _result(policy, Status.SKIP, f"excepted by PolicyException {exception}"), None
            status, message, value = body_fn(policy, body, scope)
        except EvalError as exc:
            return _result(policy, Status.ERROR, str(exc)), None
        return _result(policy, status, message), value

    def _excepted(self, policy: CelPolicy, request: Request, obj: Object | None, ctx: Context,
                  labels: Callable[[str], dict[str, Any]]) -> str:
        for exc in self.exceptions:
            if not any(name == policy.name and (not kind or kind == policy.kind) for kind, name in exc.policy_refs):
                continue
            body = exc.bodies[0]
            if _conditions_hold(body, _scope(request, obj, body, ctx, self._reads.get(id(body)))):
                return f"{exc.namespace}/{exc.name}" if exc.namespace else exc.name
        return ""


def _doc(policy: CelPolicy) -> str:
    for body in policy.bodies[:1]:
        for v in body.validations:
            if v.message:
                return " ".join(v.message.split())
    return " ".join((policy.annotations.get("policies.kyverno.io/title") or f"{policy.kind} {policy.name}").split())


def _namespace_labels(ctx: Context) -> Callable[[str], dict[str, Any]]:
    given = getattr(ctx, "namespace_labels", None)  # the kyverno CLI's values file (KyvernoContext)

    def labels(namespace: str) -> dict[str, Any]:
        if isinstance(given, dict) and namespace in given:
            return dict(given[namespace])
        found = ctx.state.namespace_labels(namespace)  # raises StateUnavailable without cluster state
        if found is None and not ctx.state.available:
            raise StateUnavailable(ctx.state.reason or "no cluster state is available")
        return found or {}

    return labels


def _applies(policy: CelPolicy, body: Body, request: Request, labels: Callable[[str], dict[str, Any]]) -> bool:
    if policy.namespace and request.namespace != policy.namespace:
        return False  # a Namespaced policy applies in its own namespace only
    return bool(body.matcher.matches(request, labels))


def _scope(request: Request, obj: Object | None, body: Body, ctx: Context, reads: Mapping[str, Paths | None] | None) -> Scope:
    _, _, resource, _, _, namespaced = request_coordinates(request)
    subject = obj if obj is not None else (request.old_object or {})
    ns = request.namespace or str((subject.get("metadata") or {}).get("namespace") or "")
    cluster_scoped = resource in CLUSTER_SCOPED_RESOURCES or not namespaced
    return Scope(obj, request.old_object, request_wire(request), namespace_object(ns, ctx, cluster_scoped=cluster_scoped),
                 variables=body.variables, deadline=ctx.deadline, reads=reads)


def _conditions_hold(body: Body, scope: Scope) -> bool:
    """matchConditions, as the API server reads them: any false -> no match; an error (when none is
    false) -> the error."""
    error: EvalError | None = None
    for name, expr in body.conditions:
        try:
            value = scope.evaluate(expr)
        except EvalError as exc:
            error = error or EvalError(f"matchCondition {name!r}: {exc}")
            continue
        if value is False:
            return False
        if value is not True:
            error = error or EvalError(f"matchCondition {name!r} returned {type(value).__name__}, not a bool")
    if error is not None:
        raise error
    return True


def _validate(policy: CelPolicy, body: Body, scope: Scope) -> tuple[Status, str, Any]:
    from admission.engines.yaml.cel import message_of

    failed: list[str] = []
    for v in body.validations:
        value = scope.evaluate(v.expression)
        if value is True:
            continue
        if value is not False:
            raise EvalError(f"{v.expression.describe()} returned {type(value).__name__}, not a bool")
        failed.append(message_of(scope, v.expression, v.message, v.message_expression))
    if failed:
        return Status.FAIL, "; ".join(failed), None
    return Status.PASS, f"policy {policy.name} passed", None


def _mutate(policy: CelPolicy, body: Body, scope: Scope) -> tuple[Status, str, Any]:
    from admission.engines.cel.mutation import MutationError, apply_configuration, json_patch

    current = scope.object
    if current is None:
        return Status.SKIP, "nothing to mutate on a deleted resource", None
    for m in body.mutations:  # each sees the object as the mutations before it left it
        value = scope.rebind(object=current).evaluate(m.expression)
        try:
            current = apply_configuration(current, value) if m.patch_type == "ApplyConfiguration" else json_patch(
                current, value)
        except MutationError as exc:
            raise EvalError(f"{m.expression.field}: {exc}") from None
    return Status.PASS, f"mutated by {policy.name}", current


def _generate(policy: CelPolicy, body: Body, scope: Scope) -> tuple[Status, str, Any]:
    from admission.engines.cel.kyverno_library import GENERATOR_VALUE, collecting

    made: list[Object] = []
    step = scope.rebind(extra={**scope.extra, "generator": GENERATOR_VALUE})
    with collecting(made):
        for expr in body.generate:
            step.evaluate(expr)
    names = ", ".join(f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}" for o in made)
    return Status.PASS, f"generated {names}" if names else "nothing to generate", made


def _result(policy: CelPolicy, status: Status, message: str) -> RuleResult:
    action = policy.action if policy.does == "validate" else Action.ENFORCE
    return RuleResult(policy.name, "", status, message, action, policy.failure_policy)


# resource (plural) -> kind, for webhook targets
_KINDS = {
    "pods": ("", "Pod"), "deployments": ("apps", "Deployment"), "daemonsets": ("apps", "DaemonSet"),
    "statefulsets": ("apps", "StatefulSet"), "replicasets": ("apps", "ReplicaSet"),
    "replicationcontrollers": ("", "ReplicationController"), "jobs": ("batch", "Job"),
    "cronjobs": ("batch", "CronJob"), "services": ("", "Service"), "namespaces": ("", "Namespace"),
    "configmaps": ("", "ConfigMap"), "secrets": ("", "Secret"), "ingresses": ("networking.k8s.io", "Ingress"),
    "networkpolicies": ("networking.k8s.io", "NetworkPolicy"), "serviceaccounts": ("", "ServiceAccount"),
    "persistentvolumeclaims": ("", "PersistentVolumeClaim"), "nodes": ("", "Node"),
}


def targets_of(match: dict[str, Any], does: str) -> list[Target]:
    """The webhook targets of matchConstraints: each resource rule's kinds and operations."""
    phase = "mutate" if does == "mutate" else "validate"
    out: list[Target] = []
    for rule in match.get("resourceRules") or []:
        if not isinstance(rule, dict):
            continue
        ops = tuple(o for o in OPERATIONS if o in (rule.get("operations") or []) or "*" in (rule.get("operations") or []))
        versions = [str(v) for v in rule.get("apiVersions") or ["*"]]
        for group in [str(g) for g in rule.get("apiGroups") or ["*"]]:
            for resource in [str(r) for r in rule.get("resources") or ["*"]]:
                base, _, sub = resource.partition("/")
                known = _KINDS.get(base)
                kind = "*" if base == "*" else known[1] if known else _kind_of(base)
                for version in versions:
                    out.append(Target(phase, group, version, kind, sub, ops or OPERATIONS))
    return out


def _kind_of(resource: str) -> str:
    """A resource's kind when it is not in _KINDS: its singular, capitalised (`flowschemas` -> `Flowschema`)."""
    singular = resource[:-3] + "y" if resource.endswith("ies") else resource[:-2] if resource.endswith(
        ("ses", "xes", "ches", "shes")) else resource[:-1] if resource.endswith("s") else resource
    return singular[:1].upper() + singular[1:]
