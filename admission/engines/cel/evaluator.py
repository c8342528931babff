"""CelEvaluator: ValidatingAdmissionPolicy and MutatingAdmissionPolicy with their bindings, behind the Evaluator
interface.

Per request, in the API server's order, for each policy whose matchConstraints match, and each binding of it whose
matchResources match:
1. params: none without paramKind; else the binding's paramRef picks them from cluster state (by name, in
   paramRef.namespace or the request's namespace; or every object its selector selects: the policy is evaluated
   once per param). None found: parameterNotFoundAction Allow skips the binding, Deny (the default) denies;
2. matchConditions: any false skips the binding; an error (and no false) follows the failurePolicy;
3. validations (each a result; a false one fails with its message, messageExpression, or `failed expression:
   <expression>`) or mutations (applied in order; the next policy sees the result).
An evaluation error, an exceeded cost budget or deadline is an error result that follows the failurePolicy
(Fail denies; Ignore allows, with a warning). A validation's `reason` (the HTTP status the API server answers
with) is checked but not used: the webhook answers every denial alike. auditAnnotations are evaluated (an
error follows the failurePolicy) and their values logged at debug level: there is no audit event to add them to.

Bindings: the binding's validationActions decide what a failure does: Deny denies, Warn warns, Audit alone is
recorded but not returned (our DryRun action: logged and counted; lint and audit report it). A policy with no binding in the loaded set:
- offline (`lint`, `test`, `audit`) is applied wherever its matchConstraints match, with Deny, as the kyverno
  CLI does (so a policy can be tested before its binding is written);
- in `serve` does nothing, as in the API server (a policy acts only through a binding); the server logs a
  warning naming it at load.

The variables of a request are bound once (admission.engines.cel.expr.bind) and shared by every expression
of every policy evaluated for it; a param object, and a mutated object, each get their own binding.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from admission.engines import Context, PolicyError, PolicyInfo, Target
from admission.engines.cel.authz import current_state
from admission.engines.cel.cost import PER_POLICY_BUDGET
from admission.engines.cel.expr import Activation, Budget, EvalError, Program, read_paths
from admission.engines.cel.kubernetes import kubernetes_activation
from admission.engines.cel.mutation import MutationError, apply_configuration, json_patch
from admission.engines.cel.policy import (
    MUTATING,
    VALIDATING,
    AdmissionPolicy,
    Binding,
    is_admission_policy,
    load_binding,
    load_policy,
)
from admission.manifests import Document, Locator
from admission.prune import Paths
from admission.results import Action, FailurePolicy, RuleResult, Status
from admission.review import Request
from admission.selectors import selector_matches
from admission.state import StateUnavailable
from admission.types import Object

log = logging.getLogger("admission.engines.cel")

__all__ = ["CelEvaluator", "is_admission_policy"]


@dataclass(frozen=True)
class _Bound:
    """A policy with one of its bindings (None: applied without one, offline)."""

    policy: AdmissionPolicy
    binding: Binding | None

    @property
    def rule(self) -> str:
        return self.binding.name if self.binding is not None else ""

    @property
    def action(self) -> Action:
        actions = self.binding.actions if self.binding is not None else frozenset({"Deny"})
        if "Deny" in actions:
            return Action.ENFORCE
        if "Warn" in actions:
            return Action.WARN
        return Action.DRYRUN  # Audit alone: recorded (logged, counted), not in the response


@dataclass
class _Request:
    """What is shared by every policy evaluated for one request: its bindings by params and object."""

    request: Request
    ctx: Context
    namespace_object: Object | None
    reads: Mapping[str, Paths | None] | None = None  # what the policies' expressions can read of the objects
    # (id(params), id(object)) -> (params, object, binding): the objects are kept so that their ids stay theirs
    activations: dict[tuple[int, int], tuple[Any, Any, Activation]] = field(default_factory=dict)

    def activation(self, params: Object | None, obj: Object | None = None) -> Activation:
        key = (id(params), id(obj))
        found = self.activations.get(key)
        if found is None:
            found = (params, obj, kubernetes_activation(self.request, self.reads, params=params,
                                                        namespace_object=self.namespace_object, obj=obj))
            self.activations[key] = found
        return found[2]


class CelEvaluator:
    """The compiled ValidatingAdmissionPolicies and MutatingAdmissionPolicies of a policy set."""

    def __init__(self, policies: list[AdmissionPolicy], bindings: list[Binding], *, apply_unbound: bool) -> None:
        self.compiled = policies
        self.bindings = bindings
        self.apply_unbound = apply_unbound
        # bound per request: only what some expression can read; a policy's variables are compiled into the
        # expressions that read them (their own programs run only to name a failing variable, on the whole
        # objects: Activation.whole)
        self.reads = read_paths(policies, exclude=[p for policy in policies for _, p in policy.variables])
        by_policy: dict[tuple[str, str], list[Binding]] = {}
        for b in bindings:
            by_policy.setdefault((b.kind, b.policy_name), []).append(b)
        self._bound: list[_Bound] = []
        for p in policies:
            found = by_policy.get((p.kind, p.name), [])
            if found:
                self._bound.extend(_Bound(p, b) for b in found)
            elif apply_unbound:
                self._bound.append(_Bound(p, None))
            else:
                log.warning("%s %s (%s) has no binding among the loaded policies: it does nothing, as in the "
                            "API server", p.kind, p.name, p.source)
        known = {(p.kind, p.name) for p in policies}
        for b in bindings:
            if (b.kind, b.policy_name) not in known:
                raise PolicyError(b.source, f"{b.kind}Binding {b.name!r} binds {b.kind} {b.policy_name!r}, "
                                            "which is not among the loaded policies")

    @classmethod
    def from_documents(cls, docs: Iterable[Document], *, apply_unbound: bool = False) -> CelEvaluator:
        """Check and compile every document (PolicyError with file:line on the first problem)."""
        locator = Locator()
        policies: list[AdmissionPolicy] = []
        bindings: list[Binding] = []
        seen: dict[tuple[str, str], str] = {}
        for doc in docs:
            if str(doc.obj.get("kind", "")).endswith("Binding"):
                bindings.append(load_binding(doc, locator))
                continue
            policy = load_policy(doc, locator)
            key = (policy.kind, policy.name)
            if key in seen:
                raise PolicyError(policy.source, f"{policy.kind} {policy.name!r} is also defined at {seen[key]}")
            seen[key] = policy.source
            policies.append(policy)
        return cls(policies, bindings, apply_unbound=apply_unbound)

    # -- Evaluator --------------------------------------------------------------------------------------------

    def policies(self) -> list[PolicyInfo]:
        out: list[PolicyInfo] = []
        for p in self.compiled:
            bound = [b for b in self._bound if b.policy is p]
            rules = tuple(b.rule for b in bound) or ("",)
            # a policy that acts nowhere (no binding, in serve) needs no webhook registration
            targets = () if not bound else tuple(
                Target(phase="mutate" if p.mutates else "validate", group=g, version=v,
                       kind=_kind_of(r), subresource=_subresource_of(r), operations=_operations(ops))
                for g, v, r, ops in (p.match.kinds() if p.match is not None else []))
            out.append(PolicyInfo(
                name=p.name, dialect="cel", source=p.source, rules=rules, mutates=p.mutates,
                validates=not p.mutates, description=p.description,
                rule_docs=tuple((r, p.description or f"{p.kind} {p.name}") for r in rules),
                targets=targets))
        return out

    def validate(self, request: Request, ctx: Context) -> list[RuleResult]:
        token = current_state.set(ctx.state)  # what `authorizer` checks are answered from
        try:
            return self._validate(_as_the_api_server_sends(request), ctx)
        finally:
            current_state.reset(token)

    def mutate(self, request: Request, obj: Object, ctx: Context) -> tuple[Object, list[RuleResult]]:
        token = current_state.set(ctx.state)
        try:
            return self._mutate(_as_the_api_server_sends(request), obj, ctx)
        finally:
            current_state.reset(token)

    def _validate(self, request: Request, ctx: Context) -> list[RuleResult]:
        shared: _Request | None = None
        results: list[RuleResult] = []
        for bound in self._bound:
            if bound.policy.kind != VALIDATING or not self._matches(bound, request, ctx):
                continue
            shared = shared or _shared(request, ctx, self.reads)
            results.extend(self._validate_one(bound, shared))
        return results

    def _mutate(self, request: Request, obj: Object, ctx: Context) -> tuple[Object, list[RuleResult]]:
        results: list[RuleResult] = []
        mutating = [b for b in self._bound if b.policy.kind == MUTATING]
        if not mutating:
            return obj, results
        shared = _shared(request, ctx, self.reads)
        changed_by: dict[int, Object] = {}
        for round_ in range(2):  # reinvocationPolicy IfNeeded: once more when a later policy changed the object
            for i, bound in enumerate(mutating):
                if round_ == 1 and (bound.policy.reinvocation != "IfNeeded" or changed_by.get(i) is obj):
                    continue
                if not self._matches(bound, _with_object(request, obj), ctx):
                    continue
                obj, rs = self._mutate_one(bound, shared, obj)
                changed_by[i] = obj
                results.extend(r for r in rs if round_ == 0 or r.status != Status.PASS)
            if not any(b.policy.reinvocation == "IfNeeded" for b in mutating):
                break
        return obj, results

    # -- one policy and binding -------------------------------------------------------------------------------

    def _matches(self, bound: _Bound, request: Request, ctx: Context) -> bool:
        def labels(ns: str) -> Mapping[str, Any] | None:
            try:
                return ctx.state.namespace_labels(ns)
            except StateUnavailable:
                return None

        policy = bound.policy
        if policy.match is not None and not policy.match.matches(request, labels):
            return False
        return bound.binding is None or bound.binding.match is None or bound.binding.match.matches(request, labels)

    def _params(self, bound: _Bound, shared: _Request) -> list[Object | None] | RuleResult:
        """The params to evaluate with ([None] without paramKind), or the result when there are none."""
        policy = bound.policy
        if policy.param_kind is None:
            return [None]
        ref = bound.binding.param_ref if bound.binding is not None else None
        if ref is None:
            return self._result(bound, Status.ERROR, f"{policy.kind} {policy.name} has paramKind "
                                                     f"{policy.param_kind[1]} but no binding with a paramRef")
        api_version, kind = policy.param_kind
        namespace = ref.namespace or shared.request.namespace
        try:
            candidates = shared.ctx.state.list(kind, api_version=api_version or None)
        except StateUnavailable as e:
            return self._result(bound, Status.ERROR, f"params unavailable: {e}")
        found: list[Object | None] = []
        for obj in candidates:
            meta = obj.get("metadata") or {}
            obj_ns = str(meta.get("namespace") or "")
            if obj_ns and namespace and obj_ns != namespace:
                continue
            if ref.name:
                if meta.get("name") == ref.name:
                    found.append(obj)
            elif selector_matches(ref.selector or {}, meta.get("labels") or {}):
                found.append(obj)
        if found:
            return found
        if ref.not_found == "Allow":
            return []
        what = f"{kind} {ref.name!r}" if ref.name else f"{kind} objects matching the selector"
        log.debug("%s %s binding %s: no %s%s", policy.kind, policy.name, bound.rule, what,
                  f" in namespace {namespace}" if namespace else "")
        # a configuration error, as the API server words it: it follows the failurePolicy, whatever the
        # binding's validationActions
        return self._result(bound, Status.ERROR, "failed to configure binding: no params found for policy "
                                                 "binding with `Deny` parameterNotFoundAction")

    def _conditions_hold(self, bound: _Bound, activation: Activation, budget: Budget,
                         deadline: float | None) -> bool | RuleResult:
        errors: list[str] = []
        for cond in bound.policy.match_conditions:
            try:
                value = cond.program.evaluate(activation, budget=budget, deadline=deadline)
                if value is not True and value is not False:
                    raise EvalError(f"matchCondition {cond.name!r} must give a bool, not {value!r}")
            except EvalError as e:
                errors.append(expression_error(cond.program.source, e))
                continue
            if value is False:
                return False  # any false condition skips, errors or not
        if not errors:
            return True
        return self._evaluation_error(bound, aggregate(errors))

    def _validate_one(self, bound: _Bound, shared: _Request) -> Iterator[RuleResult]:
        params_list = self._params(bound, shared)
        if isinstance(params_list, RuleResult):
            yield params_list
            return
        policy = bound.policy
        for params in params_list:
            activation = shared.activation(params)
            budget = Budget(PER_POLICY_BUDGET)
            deadline = shared.ctx.deadline
            holds = self._conditions_hold(bound, activation, budget, deadline)
            if holds is False:
                continue
            if isinstance(holds, RuleResult):
                yield holds
                continue
            failed = False
            for v in policy.validations:
                try:
                    value = v.program.evaluate(activation, budget=budget, deadline=deadline)
                    if value is not True and value is not False:
                        raise EvalError(f"validation expression must give a bool, not {value!r}")
                except EvalError as e:
                    yield self._evaluation_error(bound, self._expression_error(policy, v.program, e, activation,
                                                                               deadline))
                    failed = True
                    continue
                if value is False:
                    failed = True
                    yield self._result(bound, Status.FAIL, self._message(v, activation, budget, deadline),
                                       where=v.program.where, reason=v.reason)
            for key, program in policy.audit_annotations:
                try:
                    value = program.evaluate(activation, budget=budget, deadline=deadline)
                    log.debug("%s %s audit annotation %s=%r", policy.kind, policy.name, key, value)
                except EvalError as e:
                    # the API server denies (failurePolicy Fail) whatever the binding's validationActions
                    yield self._result(bound, Status.ERROR,
                                       self._expression_error(policy, program, e, activation, deadline),
                                       where=program.where)
                    failed = True
            if not failed:
                yield self._result(bound, Status.PASS, "")

    def _message(self, v: Any, activation: Activation, budget: Budget, deadline: float | None) -> str:
        """As the API server words a failed validation: messageExpression's value (trimmed; one that is empty,
        has a line break or is longer than 5 KiB is not used), else message (trimmed), else the expression."""
        if v.message_program is not None:
            try:
                text = v.message_program.evaluate(activation, budget=budget, deadline=deadline)
                if isinstance(text, str):
                    text = text.strip()
                    if text and "\n" not in text and len(text.encode()) <= MAX_MESSAGE_BYTES:
                        return text
                    log.debug("messageExpression %s: %r is not used (empty, several lines or too long)",
                              v.message_program.where, text[:200])
            except EvalError as e:
                log.debug("messageExpression %s failed: %s", v.message_program.where, e)
        if v.message.strip():
            return v.message.strip()
        return f"failed expression: {v.program.source.strip()}"

    def _evaluation_error(self, bound: _Bound, message: str) -> RuleResult:
        """An expression that could not be evaluated. As in the API server, with failurePolicy Fail it is a
        failure that the binding's validationActions act on (Deny denies, Warn warns, Audit records); with
        Ignore it is ignored (an error result: allowed, and our warning says so)."""
        if bound.policy.failure_policy == FailurePolicy.FAIL and bound.action != Action.ENFORCE:
            return self._result(bound, Status.FAIL, message)
        return self._result(bound, Status.ERROR, message)

    def _mutate_one(self, bound: _Bound, shared: _Request, obj: Object) -> tuple[Object, list[RuleResult]]:
        params_list = self._params(bound, shared)
        if isinstance(params_list, RuleResult):
            return obj, [params_list]
        results: list[RuleResult] = []
        for params in params_list:
            deadline = shared.ctx.deadline
            budget = Budget(PER_POLICY_BUDGET)
            holds = self._conditions_hold(bound, shared.activation(params, obj), budget, deadline)
            if holds is False:
                continue
            if isinstance(holds, RuleResult):
                results.append(holds)
                continue
            # as the API server: each mutation applies to what the previous ones left; one that fails is an
            # error (it follows the failurePolicy) and the next ones still apply
            failed = False
            for m in bound.policy.mutations:
                activation = shared.activation(params, obj)
                try:
                    value = m.program.evaluate(activation, budget=budget, deadline=deadline)
                except EvalError as e:
                    results.append(self._result(bound, Status.ERROR, self._expression_error(
                        bound.policy, m.program, e, activation, deadline)))
                    failed = True
                    continue
                try:
                    obj = (apply_configuration(obj, value) if m.patch_type == "ApplyConfiguration"
                           else json_patch(obj, value))
                except MutationError as e:
                    results.append(self._result(bound, Status.ERROR, str(e)))
                    failed = True
            if not failed:
                results.append(self._result(bound, Status.PASS, ""))
        return obj, results

    def _expression_error(self, policy: AdmissionPolicy, program: Program, error: EvalError,
                          activation: Activation, deadline: float | None) -> str:
        """An expression's evaluation error as the API server words it; when a variable it reads is what
        fails, it says so (`composited variable "name" fails to evaluate: ...`)."""
        return expression_error(program.source, _variable_failure(policy, program.source, activation.whole(), deadline)
                                or error)

    def _result(self, bound: _Bound, status: Status, message: str, *, where: str = "",
                reason: str = "Invalid") -> RuleResult:
        """A result; `reason` is the HTTP status reason a ValidatingAdmissionPolicy's denial answers with (the
        validation's, Invalid (422) for the others, as the API server); a MutatingAdmissionPolicy's denial is
        Forbidden (403)."""
        policy = bound.policy
        if status == Status.ERROR and policy.failure_policy == FailurePolicy.IGNORE:
            log.debug("%s %s: %s (failurePolicy Ignore)", policy.kind, policy.name, message)
        return RuleResult(policy=policy.name, rule=bound.rule, status=status, message=message, action=bound.action,
                          failure_policy=policy.failure_policy, reason=reason if policy.kind == VALIDATING else "")


def _is_namespace(request: Request) -> bool:
    return request.kind.kind == "Namespace" and request.kind.group == "" and request.kind.version == "v1"


def _as_the_api_server_sends(request: Request) -> Request:
    """A request for a Namespace names the namespace itself as its namespace (`request.namespace`, where
    namespaced params are looked up), as the API server's are; an offline request has none."""
    import dataclasses

    if _is_namespace(request) and not request.namespace and request.name:
        return dataclasses.replace(request, namespace=request.name)
    return request


def _shared(request: Request, ctx: Context, reads: Mapping[str, Paths | None] | None = None) -> _Request:
    namespace_object: Object | None = None
    if request.namespace and not _is_namespace(request):  # a Namespace's namespaceObject is null (API server)
        try:
            namespace_object = ctx.state.get("Namespace", request.namespace) if ctx.state.available else None
        except StateUnavailable:
            namespace_object = None
    return _Request(request, ctx, namespace_object, reads)


def _with_object(request: Request, obj: Object) -> Request:
    import dataclasses

    return request if request.object is obj else dataclasses.replace(request, object=obj)


# celconfig.MaxEvaluatedMessageExpressionSizeBytes: a longer messageExpression value is not used
MAX_MESSAGE_BYTES = 5 * 1024


_VARIABLE_REFERENCE = re.compile(r"\bvariables\.([A-Za-z_][A-Za-z0-9_]*)")


def _variable_failure(policy: AdmissionPolicy, source: str, activation: Activation, deadline: float | None,
                      seen: tuple[str, ...] = ()) -> str | None:
    """The first variable `source` reads that fails to evaluate on its own, worded as the API server's
    composited variables say it (nested when that variable fails because of another), else None."""
    programs = dict(policy.variables)
    for name in dict.fromkeys(_VARIABLE_REFERENCE.findall(source)):
        program = programs.get(name)
        if program is None or name in seen:
            continue
        try:
            program.evaluate(activation, deadline=deadline)  # the API server evaluates each variable once
        except EvalError as e:
            inner = _variable_failure(policy, program.source, activation, deadline, (*seen, name))
            return f'composited variable "{name}" fails to evaluate: {inner or e}'
    return None


def expression_error(source: str, error: Exception | str) -> str:
    """An evaluation error as the API server words it, quoting the expression as written."""
    return f"expression '{source}' resulted in error: {error}"


def aggregate(messages: list[str]) -> str:
    """Several errors as the API server joins them (utilerrors.NewAggregate): one alone, else the distinct
    ones in brackets."""
    distinct = list(dict.fromkeys(messages))
    return distinct[0] if len(distinct) == 1 else "[" + ", ".join(distinct) + "]"


def _kind_of(resource: str) -> str:
    """A Target's kind for a resource name: `*`, or the resource's singular (webhook registration turns it back
    into the same plural: admission.review.plural)."""
    name = resource.partition("/")[0]
    if name == "*":
        return "*"
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith(("sses", "xes", "ches", "shes")):
        return name[:-2]
    return name[:-1] if name.endswith("s") else name


def _subresource_of(resource: str) -> str:
    return resource.partition("/")[2]


def _operations(ops: tuple[str, ...]) -> tuple[str, ...]:
    return ("CREATE", "UPDATE", "DELETE", "CONNECT") if "*" in ops or not ops else ops

