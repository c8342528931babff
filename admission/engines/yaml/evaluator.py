"""The Kyverno-dialect evaluator: every rule goes through the same pipeline.

match -> exclude -> load context -> preconditions -> evaluate (validate: pattern, anyPattern, deny,
foreach, podSecurity; mutate: patchStrategicMerge, patchesJson6902, foreach; generate: data, clone,
cloneList). Every rule that applies yields a RuleResult; variable and context errors are `error` results,
never exceptions. Rules that do not match yield nothing; skips are reported only when the context asks
for them (`test`). Generate rules never take part in admission (see KyvernoEvaluator.generate).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from admission.engines import OPERATIONS, Context, PolicyInfo, Skips, Target, parse_each
from admission.engines.yaml.conditions import evaluate_conditions
from admission.engines.yaml.context import load_context
from admission.engines.yaml.pattern import match_pattern
from admission.engines.yaml.podsecurity import check
from admission.engines.yaml.policy import Policy, Rule, parse_policy
from admission.engines.yaml.values import contains_wildcard, wildcard_match
from admission.manifests import Document
from admission.match import Subject, block_kinds, parse_kind_selector
from admission.podsecurity import sharing
from admission.results import Action, RuleResult, Status, parse_action
from admission.review import Kind, Request
from admission.selectors import selector_matches
from admission.types import Object

# `skipBackgroundRequests` (default true) makes Kyverno skip requests from its background controller's
# service account, but only for generate and mutate-existing rules (its update-request path); validate and
# mutate rules evaluate those requests like any other. Neither of those rule types is supported here, so
# the field is parsed (Rule.skip_background_requests) and has no effect, exactly as on the rules we run.

# The skip message of a rule that matched but had nothing to check (Kyverno gives no rule response then:
# a pattern on a deleted resource, a foreach over no elements).
NOT_APPLIED = "rule did not apply to this resource"

POD_CONTROLLERS = ("DaemonSet", "Deployment", "Job", "StatefulSet", "ReplicaSet", "ReplicationController")


@dataclass
class KyvernoContext(Context):
    """A Context with what the kyverno CLI's values and userinfo files add (used by `test`)."""

    # (policy, rule, resource name) -> extra variables such as `request.operation` or a context entry's value
    values: Callable[[str, str, str], dict[str, Any]] | None = None
    roles: tuple[str, ...] = ()
    cluster_roles: tuple[str, ...] = ()
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    status: Status
    message: str = ""
    obj: Object | None = None  # for mutations: the patched object
    generated: tuple[Object, ...] = ()  # for generate rules: the resources they would create
    path: str = ""  # for a failed pattern: the field (JSON pointer) where the resource does not match


@dataclass(frozen=True)
class Generated:
    """A generate rule's result and the resources it would create."""

    result: RuleResult
    objects: tuple[Object, ...] = ()


class _Memo:
    """What every rule of one request shares: the match subject and the request's variables."""

    def __init__(self) -> None:
        self._subjects: dict[tuple[int, int], Subject] = {}
        self._variables: dict[tuple[int, int], Any] = {}
        self._requests: dict[tuple[int, int], Request] = {}
        self._keep: list[Any] = []  # keeps the keyed objects alive so their ids stay unique
        # the last answers, for the rules that follow one another on the same request and object
        self._last_subject: tuple[Request, Object | None, Subject] | None = None
        self._last_variables: tuple[Request, Object | None, Any] | None = None

    def subject(self, request: Request, obj: Object | None, ctx: Context) -> Subject:
        last = self._last_subject
        if last is not None and last[0] is request and last[1] is obj:
            return last[2]
        key = (id(request), id(obj))
        if key not in self._subjects:
            self._keep.append((request, obj))
            self._subjects[key] = _subject(request, obj, ctx)
        found = self._subjects[key]
        self._last_subject = (request, obj, found)
        return found

    def request_with(self, request: Request, obj: Object | None) -> Request:
        """The request with the object mutations have produced so far (one Request per object)."""
        key = (id(request), id(obj))
        if key not in self._requests:
            self._keep.append((request, obj))
            self._requests[key] = dataclasses.replace(request, object=obj)
        return self._requests[key]

    def variables(self, request: Request) -> Any:
        last = self._last_variables
        if last is not None and last[0] is request and last[1] is request.object:
            return last[2]
        key = (id(request), id(request.object))
        if key not in self._variables:
            from admission.engines.yaml.variables import Variables

            self._keep.append(request)
            self._variables[key] = Variables.for_request(request)
        found = self._variables[key]
        self._last_variables = (request, request.object, found)
        return found


class KyvernoEvaluator:
    """Compiled Kyverno ClusterPolicies and Policies."""

    def __init__(self, policies: list[Policy]) -> None:
        self._policies = policies
        # (rule type, kind) -> each policy with that type of rules, and those of its rules that can match
        # the kind (see _plan); filled on first use, read without a lock (a race computes it twice).
        self._plans: dict[tuple[str, str], list[tuple[Policy, tuple[Rule, ...]]]] = {}

    def _plan(self, rule_type: str, kind: str) -> list[tuple[Policy, tuple[Rule, ...]]]:
        """The policies to evaluate for a request of this (top-level) kind, in order, each with the rules
        of that type that can match the kind: a rule whose match block names only other kinds yields
        nothing for it, so it is left out before matching (Policy.rules_for decides autogen rules)."""
        key = (rule_type, kind)
        plan = self._plans.get(key)
        if plan is None:
            plan = []
            for policy in self._policies:
                if not getattr(policy, rule_type + "s"):
                    continue
                rules = tuple(
                    r for r in policy.rules_for(kind)
                    if getattr(r, rule_type) is not None and _may_match(r, kind)
                )
                plan.append((policy, rules))
            if len(self._plans) >= 4096:  # one entry per kind seen: bounded all the same
                self._plans.clear()
            self._plans[key] = plan
        return plan

    @classmethod
    def from_documents(cls, docs: list[Document]) -> KyvernoEvaluator:
        return cls(parse_each(docs, parse_policy))

    @property
    def compiled(self) -> list[Policy]:
        return list(self._policies)

    def policies(self) -> list[PolicyInfo]:
        return [
            PolicyInfo(
                name=p.name,
                dialect="kyverno",
                source=p.source,
                rules=tuple(r.name for r in p.all_rules),
                mutates=p.mutates,
                validates=p.validates,  # generate rules are evaluated for `test` only (see generate())
                description=p.annotations.get("policies.kyverno.io/description")
                or p.annotations.get("policies.kyverno.io/title") or "",
                rule_docs=tuple((r.name, _rule_doc(p, r)) for r in p.all_rules),
                targets=tuple(t for r in p.all_rules for t in rule_targets(r)),
                category=str(p.annotations.get("policies.kyverno.io/category") or ""),
                severity=str(p.annotations.get("policies.kyverno.io/severity") or ""),
                failure_policy=p.failure_policy.value,
                timeout_seconds=_timeout(p),
                skips=policy_skips(p),
            )
            for p in self._policies
        ]

    def validate(self, request: Request, ctx: Context) -> list[RuleResult]:
        with sharing():  # podSecurity rules of one request share the checks they have in common
            return self._validate(request, ctx)

    def _validate(self, request: Request, ctx: Context) -> list[RuleResult]:
        results: list[RuleResult] = []
        memo = _Memo()
        for policy, rules in self._plan("validate", top_level_kind(request).kind):
            applied = 0
            for rule in rules:
                result, _ = self._run(policy, rule, request, request.object, ctx, validate_rule, memo)
                if result is None:
                    continue
                if result.status == Status.FAIL and self._violated_before(policy, rule, request, ctx, memo):
                    result = _result(policy, rule, Status.SKIP,
                                     "skipping the rule evaluation as pre-existing violations are allowed")
                if result.status in (Status.PASS, Status.FAIL):
                    applied += 1
                if result.status != Status.SKIP or ctx.report_skips:
                    results.append(result)
                if policy.apply_one and applied:
                    break
        return results

    def _violated_before(self, policy: Policy, rule: Rule, request: Request, ctx: Context, memo: _Memo) -> bool:
        """Kyverno's allowExistingViolations (default true): an enforced rule does not block an UPDATE of
        a resource that already violated it; the old object is checked as if it were being created."""
        if request.operation != "UPDATE" or request.old_object is None or rule.action != Action.ENFORCE:
            return False
        if (rule.validate or {}).get("allowExistingViolations") is False:
            return False
        before = dataclasses.replace(request, operation="CREATE", object=request.old_object, old_object=None)
        old, _ = self._run(policy, rule, before, before.object, ctx, validate_rule, memo)
        return old is not None and old.status == Status.FAIL

    def generate(self, request: Request, ctx: Context) -> list[Generated]:
        """What the generate rules that apply would create. The webhook never creates anything (Kyverno
        creates generated resources in the background, after admission, and its admission response does
        not depend on them); `test` compares these with the expected generated resources."""
        out: list[Generated] = []
        memo = _Memo()
        for policy, rules in self._plan("generate", top_level_kind(request).kind):
            for rule in rules:
                result, outcome = self._run(policy, rule, request, request.object, ctx, generate_rule, memo)
                if result is not None and (result.status != Status.SKIP or ctx.report_skips):
                    out.append(Generated(result, outcome.generated if outcome is not None else ()))
        return out

    def mutate(self, request: Request, obj: Object, ctx: Context) -> tuple[Object, list[RuleResult]]:
        results: list[RuleResult] = []
        current = obj
        memo = _Memo()
        for policy, rules in self._plan("mutate", top_level_kind(request).kind):
            applied = 0
            for rule in rules:
                result, outcome = self._run(policy, rule, request, current, ctx, mutate_rule, memo)
                if result is None:
                    continue
                if outcome is not None and outcome.status == Status.PASS and outcome.obj is not None:
                    current = outcome.obj
                if result.status in (Status.PASS, Status.FAIL):
                    applied += 1
                if result.status != Status.SKIP or ctx.report_skips:
                    results.append(result)
                if policy.apply_one and applied:
                    break
        return current, results

    # -- the pipeline ---------------------------------------------------------------------------

    def _run(
        self,
        policy: Policy,
        rule: Rule,
        request: Request,
        obj: Object | None,
        ctx: Context,
        body: Callable[[Policy, Rule, Any, Object | None, Context], Outcome | None],
        memo: _Memo,
    ) -> tuple[RuleResult | None, Outcome | None]:
        """The rule's result (None when it does not apply) and, for mutations, the outcome of its body."""
        try:
            subject = memo.subject(request, obj, ctx)
            if not rule.matcher.applies(subject, policy_namespace=policy.namespace):
                return None, None
            action = failure_action(policy, rule, subject)
        except Exception as exc:  # a malformed match block or override: this rule's error, not a crash
            return _result_only(policy, rule, Status.ERROR, f"failed to match the rule: {type(exc).__name__}: {exc}")
        if action != rule.action:
            rule = dataclasses.replace(rule, action=action)
        if ctx.expired():
            return _result_only(policy, rule, Status.ERROR, "deadline exceeded")
        try:
            variables, provided = _variables(policy, rule, request, obj, ctx, memo)
        except Exception as exc:  # a values error is this rule's error
            return _result_only(policy, rule, Status.ERROR, f"failed to set up variables: {exc}")
        if not provided and not _PROVIDED.get():  # nothing given offline (always so in the webhook)
            return self._evaluate(policy, rule, variables, obj, ctx, body)
        token = _PROVIDED.set(frozenset(provided))
        try:
            return self._evaluate(policy, rule, variables, obj, ctx, body)
        finally:
            _PROVIDED.reset(token)

    def _evaluate(
        self,
        policy: Policy,
        rule: Rule,
        variables: Any,
        obj: Object | None,
        ctx: Context,
        body: Callable[[Policy, Rule, Any, Object | None, Context], Outcome | None],
    ) -> tuple[RuleResult | None, Outcome | None]:
        try:
            if rule.spec.get("context"):
                _load_context(rule.context, variables, ctx)
        except Exception as exc:
            return _result_only(policy, rule, Status.ERROR, f"failed to load context: {exc}")
        try:
            passed, why = _conditions(rule.preconditions, variables)
        except Exception as exc:
            return _result_only(policy, rule, Status.ERROR, f"failed to evaluate preconditions: {exc}")
        if not passed:
            return _result_only(policy, rule, Status.SKIP, _join("preconditions not met", why))
        if rule.cel is not None and rule.cel.preconditions:
            try:
                from admission.engines.yaml.cel import preconditions_hold, scope_for

                passed, why = preconditions_hold(rule.cel, scope_for(rule.cel, variables, obj, ctx))
            except Exception as exc:
                return _result_only(policy, rule, Status.ERROR, f"failed to evaluate celPreconditions: {exc}")
            if not passed:
                return _result_only(policy, rule, Status.SKIP, _join("celPreconditions not met", why))
        try:
            outcome = body(policy, rule, variables, obj, ctx)
        except Exception as exc:  # a bug or odd input in one rule must not take down the others
            return _result_only(policy, rule, Status.ERROR, f"{type(exc).__name__}: {exc}")
        if outcome is None:
            return _result(policy, rule, Status.SKIP, NOT_APPLIED), None
        return _result(policy, rule, outcome.status, outcome.message, outcome.path), outcome


def _rule_doc(policy: Policy, rule: Rule) -> str:
    """What a rule checks, for reports: its static message, else the policy's title or description."""
    message = str((rule.validate or {}).get("message") or "")
    if message and "{{" not in message:
        return " ".join(message.split())
    if rule.cel is not None and rule.cel.expressions and rule.cel.expressions[0][1]:
        return " ".join(rule.cel.expressions[0][1].split())  # validate.cel: its first expression's message
    if rule.mutate is not None:
        return f"mutation rule {rule.name} of {policy.name}"
    return " ".join((policy.annotations.get("policies.kyverno.io/title")
                     or policy.annotations.get("policies.kyverno.io/description") or f"rule {rule.name}").split())


# Subresources reached with CONNECT rather than CREATE/UPDATE.
_CONNECT_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})


def rule_targets(rule: Rule) -> list[Target]:
    """The kinds and operations a rule's match block can select, in its phase (see _targets); a block
    that cannot be read this way (matching reports its problem) may select anything."""
    try:
        return _targets(rule)
    except (TypeError, ValueError, AttributeError):
        phase = "mutate" if rule.mutate is not None else "validate" if rule.validate is not None else ""
        return [Target(phase, "*", "*", "*", "*", OPERATIONS)] if phase else []


def _targets(rule: Rule) -> list[Target]:
    """The kinds and operations a rule's match block can select, in its phase (none for generate rules).

    Without `operations`, a rule selects CREATE and UPDATE (CONNECT for exec/attach/portforward/proxy),
    and DELETE only for a `deny` rule: pattern, anyPattern and podSecurity rules skip a deleted resource,
    and mutations never see one. A Pod rule also matches the pods/ephemeralcontainers subresource (as
    match does). An exclude filter naming only operations takes them away."""
    from admission.engines.yaml.autogen import descriptions

    default: tuple[str, ...]
    if rule.mutate is not None:
        phase, default = "mutate", ("CREATE", "UPDATE")
    elif rule.validate is not None:
        phase = "validate"
        default = ("CREATE", "UPDATE", "DELETE") if rule.validate.get("deny") is not None else ("CREATE", "UPDATE")
    else:
        return []
    excluded: set[str] = set()
    for desc in descriptions(rule.exclude):
        if desc.get("operations") and not any(v for k, v in desc.items() if k != "operations"):
            excluded.update(str(o) for o in _list(desc["operations"]))
    out: list[Target] = []
    for desc in descriptions(rule.match):
        kinds = [str(k) for k in _list(desc.get("kinds") or [])] or ["*"]
        for selector in kinds:
            group, version, kind, sub = parse_kind_selector(selector)
            if not kind:
                continue
            given = [str(o) for o in _list(desc.get("operations") or [])]
            ops = given or (["CONNECT"] if sub in _CONNECT_SUBRESOURCES else list(default))
            ops = [o for o in OPERATIONS if o in ops and o not in excluded]
            if not ops:
                continue
            out.append(Target(phase, group, version, kind, sub, tuple(ops)))
            if (group, kind, sub) in (("*", "Pod", ""), ("", "Pod", "")) and "UPDATE" in ops:
                out.append(Target(phase, group, version, kind, "ephemeralcontainers", ("UPDATE",)))
    return out


def _timeout(policy: Policy) -> int | None:
    value = (policy.raw.get("spec") or {}).get("webhookTimeoutSeconds")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def policy_skips(policy: Policy) -> Skips:
    """The users, groups and namespaces every admission rule of the policy excludes by name (see Skips)."""
    found: Skips | None = None
    for rule in policy.all_rules:
        if rule.validate is None and rule.mutate is None:
            continue
        skips = rule_skips(rule.exclude, tuple(rule_targets(rule)))
        found = skips if found is None else found & skips
    return found or Skips()


def rule_skips(exclude: dict[str, Any] | None, targets: tuple[Target, ...] = ()) -> Skips:
    """What an exclude block excludes whatever else the request is: a filter naming only subjects (exact
    users, groups, service accounts) or only namespaces (exact names), besides kinds that cover every kind
    the rule matches (`targets`; as auto-generated rules carry). Anything else contributes nothing."""
    if not isinstance(exclude, dict):
        return Skips()
    if "any" in exclude or "all" in exclude:
        filters = list(exclude.get("any") or [])
        every = exclude.get("all") or []
        if isinstance(every, list) and len(every) == 1:  # all of several filters: none alone excludes
            filters += every
    else:
        filters = [exclude]
    users: set[str] = set()
    groups: set[str] = set()
    namespaces: set[str] = set()
    for f in filters if isinstance(filters, list) else []:
        if not isinstance(f, dict):
            continue
        resources = f.get("resources")
        if isinstance(resources, dict) and resources.get("kinds") and _covers(resources["kinds"], targets):
            resources = {k: v for k, v in resources.items() if k != "kinds"}
        others = {k for k, v in f.items() if v and k != "resources"}
        if others == {"subjects"} and not resources:
            for subj in f["subjects"] if isinstance(f["subjects"], list) else []:
                if not isinstance(subj, dict):
                    continue
                kind, name = subj.get("kind"), str(subj.get("name") or "")
                if not name or contains_wildcard(name):
                    continue
                if kind == "User":
                    users.add(name)
                elif kind == "Group":
                    groups.add(name)
                elif kind == "ServiceAccount" and subj.get("namespace") and not contains_wildcard(
                        str(subj["namespace"])):
                    users.add(f"system:serviceaccount:{subj['namespace']}:{name}")
        elif not others and isinstance(resources, dict) and {k for k, v in resources.items() if v} == {"namespaces"}:
            names = resources["namespaces"]
            namespaces.update(str(n) for n in names if isinstance(n, str) and n and not contains_wildcard(n))
    return Skips(frozenset(users), frozenset(groups), frozenset(namespaces))


def _covers(kinds: Any, targets: tuple[Target, ...]) -> bool:
    """Whether kind selectors select every target (then, in an exclude filter, they narrow nothing)."""
    if not targets or not isinstance(kinds, list):
        return False
    try:
        selectors = [parse_kind_selector(str(k)) for k in kinds]
    except (TypeError, ValueError):
        return False

    def covered(t: Target) -> bool:
        sub = "" if (t.kind, t.subresource) == ("Pod", "ephemeralcontainers") else t.subresource
        return any(g in ("*", t.group) and v in ("*", t.version) and k == t.kind and s in ("*", sub)
                   for g, v, k, s in selectors)

    return all(covered(t) for t in targets)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value


def _may_match(rule: Rule, kind: str) -> bool:
    """False when the rule's match block can only select other kinds (then it never applies to this one)."""
    kinds = block_kinds(rule.match)
    return kinds is None or kind in kinds


def _override(overrides: Any, subject: Subject) -> Action | None:
    """The action of the first failureActionOverride whose namespaces and namespace selector match."""
    for o in overrides if isinstance(overrides, list) else []:
        if not isinstance(o, dict) or str(o.get("action") or "").lower() not in ("audit", "enforce"):
            continue
        selector = o.get("namespaceSelector")
        if selector is not None and not selector_matches(selector, subject.namespace_labels):
            continue
        namespaces = o.get("namespaces")
        if namespaces is None or any(wildcard_match(str(n), subject.resource_namespace) for n in namespaces):
            return parse_action(o["action"])
    return None


def failure_action(policy: Policy, rule: Rule, subject: Subject) -> Action:
    """Kyverno's order: the rule's overrides, its failureAction, the policy's overrides, the policy's action."""
    if not rule.may_override and not policy.may_override:
        return rule.action  # no overrides: the common case
    validate = rule.validate or {}
    rule_overrides = validate.get("failureActionOverrides")
    policy_overrides = (policy.raw.get("spec") or {}).get("validationFailureActionOverrides")
    if rule_overrides is None and policy_overrides is None:
        return rule.action
    action = _override(rule_overrides, subject)
    if action is None and validate.get("failureAction") is None and validate.get("validationFailureAction") is None:
        action = _override(policy_overrides, subject)
    return action or rule.action


def _result_only(policy: Policy, rule: Rule, status: Status, message: str) -> tuple[RuleResult, None]:
    return _result(policy, rule, status, message), None


# Passing results, which read the same request after request (RuleResult is immutable, so one is shared).
_PASSED: dict[tuple[str, str, str, Action, Any], RuleResult] = {}


def _result(policy: Policy, rule: Rule, status: Status, message: str, path: str = "") -> RuleResult:
    if status == Status.PASS:
        key = (policy.name, rule.name, message, rule.action, rule.failure_policy)
        found = _PASSED.get(key)
        if found is None:
            if len(_PASSED) >= 4096:
                _PASSED.clear()
            found = _PASSED[key] = _new_result(policy, rule, status, message)
        return found
    return _new_result(policy, rule, status, message, path)


def _new_result(policy: Policy, rule: Rule, status: Status, message: str, path: str = "") -> RuleResult:
    return RuleResult(
        policy=policy.name,
        rule=rule.name,
        status=status,
        message=message,
        action=rule.action,
        failure_policy=rule.failure_policy,
        path=path,
    )


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


# The kinds of the resources whose subresources are reviewed (pods/exec arrives as a PodExecOptions,
# deployments/scale as a Scale): Kyverno matches `Pod/exec` or `Deployment/scale` against the top-level kind.
_TOP_LEVEL = {
    "pods": "Pod", "deployments": "Deployment", "replicasets": "ReplicaSet", "statefulsets": "StatefulSet",
    "daemonsets": "DaemonSet", "replicationcontrollers": "ReplicationController", "jobs": "Job",
    "cronjobs": "CronJob", "services": "Service", "nodes": "Node", "namespaces": "Namespace",
    "persistentvolumeclaims": "PersistentVolumeClaim", "persistentvolumes": "PersistentVolume",
    "serviceaccounts": "ServiceAccount", "secrets": "Secret", "configmaps": "ConfigMap",
    "horizontalpodautoscalers": "HorizontalPodAutoscaler", "ingresses": "Ingress",
    "certificatesigningrequests": "CertificateSigningRequest",
}


def top_level_kind(request: Request) -> Kind:
    """The kind a rule is matched against: for a subresource request, that of the parent resource."""
    if not request.sub_resource:
        return request.kind
    resource = request.resource or {}
    kind = _TOP_LEVEL.get(str(resource.get("resource") or ""))
    if kind is None:
        return request.kind
    return Kind(str(resource.get("group") or ""), str(resource.get("version") or request.kind.version), kind)


def _subject(request: Request, obj: Object | None, ctx: Context) -> Subject:
    kind = top_level_kind(request)
    resource: Object = obj if obj is not None else (request.old_object or {})
    user = request.user_info or {}
    namespace = request.namespace or str((resource.get("metadata") or {}).get("namespace") or "")
    labels: dict[str, Any] | None = None
    roles: tuple[str, ...] = ()
    cluster_roles: tuple[str, ...] = ()
    if isinstance(ctx, KyvernoContext):
        labels = ctx.namespace_labels.get(namespace)
        roles, cluster_roles = ctx.roles, ctx.cluster_roles
    if labels is None:
        try:
            labels = ctx.state.namespace_labels(namespace)
        except Exception:
            labels = None
    return Subject(
        group=kind.group,
        version=kind.version,
        kind=kind.kind,
        resource=resource,
        operation=request.operation,
        sub_resource=request.sub_resource,
        namespace=namespace,
        namespace_labels=labels or {},
        username=str(user.get("username") or ""),
        groups=tuple(str(g) for g in user.get("groups") or []),
        roles=roles,
        cluster_roles=cluster_roles,
    )


def _variables(
    policy: Policy, rule: Rule, request: Request, obj: Object | None, ctx: Context, memo: _Memo
) -> tuple[Any, set[str]]:
    req = request
    if obj is not request.object and request.operation != "DELETE":
        req = memo.request_with(request, obj)
    extra: dict[str, Any] = {}
    if isinstance(ctx, KyvernoContext) and ctx.values is not None:
        name = str(((req.resource_object or {}).get("metadata") or {}).get("name") or "")
        extra = dict(ctx.values(policy.name, rule.base_name or rule.name, name))
    if not extra and not rule.spec.get("context"):
        # Nothing to add: the rule reads the request's variables as they are, and what it loads on first
        # use (images) is the same for every rule, so it shares them instead of copying them.
        return memo.variables(req), set()
    variables = memo.variables(req).child(**extra)
    if "request.operation" in extra:
        variables.set("request.operation", req.operation)  # the request's own operation wins (see _violated_before)
    return variables, {str(k).split(".")[0] for k in extra}


# Names given offline (the kyverno CLI's values file) for the rule being evaluated: they stand in for
# the context entries of the same name, at the rule's level and in its foreach entries.
_PROVIDED: ContextVar[frozenset[str]] = ContextVar("provided", default=frozenset())


def _load_context(entries: list[dict[str, Any]], variables: Any, ctx: Context) -> None:
    provided = _PROVIDED.get()
    entries = [e for e in entries if not (isinstance(e, dict) and e.get("name") in provided)]
    if not entries:
        return
    load_context(entries, variables, ctx.state)


def _conditions(conditions: Any, variables: Any) -> tuple[bool, str]:
    if not conditions:
        return True, ""
    return evaluate_conditions(conditions, variables.substitute)


# -- validate ---------------------------------------------------------------------------------------


def validate_rule(policy: Policy, rule: Rule, variables: Any, obj: Object | None, ctx: Context) -> Outcome | None:
    spec = rule.validate or {}
    if spec.get("podSecurity") is not None:
        return validate_pod_security(rule, spec, obj)
    if rule.cel is not None and rule.cel.validates:
        return validate_cel(rule, variables, obj, ctx)
    return validate_body(rule, spec, variables, obj, None, 0, ctx, top=True)


def validate_cel(rule: Rule, variables: Any, obj: Object | None, ctx: Context) -> Outcome | None:
    """validate.cel: every expression must hold; the messages of those that do not are the failure's."""
    from admission.engines.yaml.cel import EvalError, failures, scope_for

    if obj is None:
        return None  # as for patterns: a deleted resource is not validated
    try:
        failed = failures(rule.cel, scope_for(rule.cel, variables, obj, ctx))
    except EvalError as exc:
        return Outcome(Status.ERROR, f"validation error: rule {rule.name} failed to evaluate: {exc}")
    if not failed:
        return _passed(rule.name)
    return Outcome(Status.FAIL, f"validation error: {'; '.join(failed)}")


def validate_body(
    rule: Rule,
    body: dict[str, Any],
    variables: Any,
    obj: Object | None,
    element: Any,
    nesting: int,
    ctx: Context,
    *,
    top: bool = False,
) -> Outcome | None:
    """One validate body: the rule's own, or a foreach entry's (its context and preconditions first)."""
    if not top:
        try:
            _load_context(list(body.get("context") or []), variables, ctx)
        except Exception as exc:
            return Outcome(Status.ERROR, f"failed to load context: {exc}")
        try:
            passed, why = _conditions(body.get("preconditions"), variables)
        except Exception as exc:
            return Outcome(Status.ERROR, f"failed to evaluate preconditions: {exc}")
        if not passed:
            return Outcome(Status.SKIP, _join("preconditions not met", why))
    if body.get("deny") is not None:
        return validate_deny(rule, body["deny"], variables)
    if body.get("pattern") is not None or body.get("anyPattern") is not None:
        target = element if element is not None else obj
        if target is None:
            return None  # Kyverno does not validate patterns on a deleted resource
        try:
            if body.get("pattern") is not None:
                pattern = _substituted(body["pattern"], variables)
                return validate_pattern(rule, pattern, target, variables, static=pattern is body["pattern"])
            patterns = _substituted(body["anyPattern"], variables)
        except Exception as exc:
            return Outcome(Status.ERROR, f"variable substitution failed: {exc}")
        return validate_any_pattern(rule, patterns, target, variables, static=patterns is body["anyPattern"])
    if body.get("foreach") is not None:
        from admission.engines.yaml.foreach import validate_foreach

        return validate_foreach(rule, list(body["foreach"]), variables, obj, element, nesting, ctx)
    return None


_HAS_VARIABLES: dict[int, tuple[Any, bool]] = {}


def _substituted(document: Any, variables: Any) -> Any:
    """The document with its variables substituted (a new structure); as is when it has none."""
    cached = _HAS_VARIABLES.get(id(document))
    if cached is None or cached[0] is not document:
        cached = (document, "{{" in json.dumps(document, default=str))
        _HAS_VARIABLES[id(document)] = cached
    return variables.substitute(document) if cached[1] else document


@lru_cache(maxsize=4096)
def _passed(name: str, word: str = "validation") -> Outcome:
    """A validate rule's passing outcome (immutable, so one per rule name serves every request)."""
    return Outcome(Status.PASS, f"{word} rule '{name}' passed.")


def rule_message(rule: Rule, variables: Any) -> str | None:
    """The rule's validate.message with variables substituted; None when substitution fails."""
    message = str((rule.validate or {}).get("message") or "")
    if not message:
        return ""
    try:
        return str(variables.substitute(message))
    except Exception:
        return None


def validate_deny(rule: Rule, deny: dict[str, Any], variables: Any) -> Outcome:
    try:
        denied, why = _conditions(deny.get("conditions"), variables) if deny.get("conditions") else (True, "")
    except Exception as exc:
        return Outcome(Status.ERROR, f"failed to check deny conditions: {exc}")
    if not denied:
        return _passed(rule.name)
    message = str((rule.validate or {}).get("message") or "")
    if not message and not why:
        return Outcome(Status.FAIL, f"validation error: rule {rule.name} failed")
    text = _join(message, why)
    try:
        return Outcome(Status.FAIL, str(variables.substitute(text)))
    except Exception:
        return Outcome(Status.FAIL, why)


def validate_pattern(rule: Rule, pattern: Any, resource: Any, variables: Any, *, static: bool = False) -> Outcome:
    """static: the pattern is the policy's own (not substituted), so its matching plan can be kept."""
    result = match_pattern(resource, pattern, static=static)
    if result.status == "pass":
        return _passed(rule.name)
    if result.status == "skip":
        return Outcome(Status.SKIP, result.message)
    if not result.path:
        return Outcome(Status.ERROR, _pattern_message(rule, variables, "", result.message))
    return Outcome(Status.FAIL, _pattern_message(rule, variables, result.path, result.message),
                   path=pointer(result.path))


def _pattern_message(rule: Rule, variables: Any, path: str, error: str) -> str:
    message = rule_message(rule, variables)
    if message is None:
        return f"validation error: variables substitution error in rule {rule.name} execution error: {error}"
    if not message:
        if path:
            return f"validation error: rule {rule.name} failed at path {path}"
        return f"validation error: rule {rule.name} execution error: {error}"
    if not message.endswith("."):
        message += "."
    if path:
        return f"validation error: {message} rule {rule.name} failed at path {path}"
    return f"validation error: {message} rule {rule.name} execution error: {error}"


def validate_any_pattern(rule: Rule, patterns: Any, resource: Any, variables: Any, *, static: bool = False) -> Outcome:
    if not isinstance(patterns, list):
        return Outcome(Status.ERROR, "failed to deserialize anyPattern, expected type array")
    failed: list[str] = []
    skipped: list[str] = []
    first_path = ""
    for i, pattern in enumerate(patterns):
        result = match_pattern(resource, pattern, static=static)
        if result.status == "pass":
            return Outcome(Status.PASS, f"validation rule '{rule.name}' anyPattern[{i}] passed.")
        if result.status == "skip":
            skipped.append(f"rule {rule.name}[{i}] skipped: {result.message}")
        elif result.path:
            failed.append(f"rule {rule.name}[{i}] failed at path {result.path}")
            first_path = first_path or pointer(result.path)
        else:
            failed.append(f"rule {rule.name}[{i}] failed: {result.message}")
    if skipped and not failed:
        return Outcome(Status.SKIP, " ".join(skipped))
    if failed:
        errors = " ".join(failed)
        message = rule_message(rule, variables)
        if message is None:
            return Outcome(Status.FAIL, f"validation error: variables substitution error in rule {rule.name} "
                                        f"execution error: {errors}")
        if not message:
            return Outcome(Status.FAIL, f"validation error: {errors}", path=first_path)
        sep = " " if message.endswith(".") else ". "
        return Outcome(Status.FAIL, f"validation error: {message}{sep}{errors}", path=first_path)
    return Outcome(Status.PASS, str((rule.validate or {}).get("message") or ""))


def pointer(path: str) -> str:
    """A pattern mismatch's path (`/spec/containers/0/image/`, anchors as written) as a JSON pointer into
    the resource (`/spec/containers/0/image`)."""
    from admission.engines.yaml.policy import anchor_of

    parts = []
    for part in path.strip("/").split("/"):
        if not part:
            continue
        anchor = anchor_of(part)
        parts.append(anchor[1] if anchor else part)
    return "/" + "/".join(parts) if parts else ""


def _map(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def pod_of(obj: Object) -> dict[str, Any] | None:
    """The pod a Pod or workload describes, as Kyverno's podSecurity sees it ({metadata, spec})."""
    kind = obj.get("kind")
    spec = _map(obj.get("spec"))
    if kind == "Pod":
        return {"metadata": obj.get("metadata") or {}, "spec": spec}
    if kind in POD_CONTROLLERS:
        template = _map(spec.get("template"))
        return {"metadata": template.get("metadata") or {}, "spec": template.get("spec") or {}}
    if kind == "CronJob":
        job = _map(spec.get("jobTemplate"))
        template = _map(_map(job.get("spec")).get("template"))
        # Kyverno reads the CronJob's pod metadata from spec.jobTemplate.metadata
        return {"metadata": job.get("metadata") or {}, "spec": template.get("spec") or {}}
    return None


_FIELD_PART = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def pod_field_pointer(obj: Object, field_path: str) -> str:
    """A Pod Security field (`spec.containers[0].securityContext.privileged`, `metadata.annotations[k]`,
    relative to the pod pod_of reads) as a JSON pointer into the object itself (a workload's template)."""
    parts = [name or key.strip("'\"") for name, key in _FIELD_PART.findall(field_path)]
    if not parts:
        return ""
    kind = obj.get("kind")
    if kind in POD_CONTROLLERS:
        prefix = ["spec", "template"]
    elif kind == "CronJob":
        prefix = ["spec", "jobTemplate"] if parts[0] == "metadata" else ["spec", "jobTemplate", "spec", "template"]
    else:
        prefix = []
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in [*prefix, *parts])


def validate_pod_security(rule: Rule, spec: dict[str, Any], obj: Object | None) -> Outcome | None:
    if obj is None:
        return None  # Kyverno does not check a deleted resource
    settings = spec.get("podSecurity") or {}
    level = str(settings.get("level") or "baseline")
    version = str(settings.get("version") or "latest")
    pod = pod_of(obj)
    if pod is None:
        return Outcome(Status.ERROR, f"podSecurity cannot check a {obj.get('kind')}: could not find correct resource type")
    try:
        violations = check(pod, level=level, version=version, exclude=list(settings.get("exclude") or []))
    except Exception as exc:
        return Outcome(Status.ERROR, f"failed to evaluate pod security: {exc}")
    if not violations:
        return _passed(rule.name, "Validation")
    details = ", ".join(f"({v.message})" for v in violations)
    fields = [f.path for v in violations for f in v.fields]
    return Outcome(Status.FAIL, f"Validation rule '{rule.name}' failed. It violates PodSecurity "
                                f"\"{level}:{version}\": {details}",
                   path=pod_field_pointer(obj, fields[0]) if fields else "")


# -- mutate -----------------------------------------------------------------------------------------


def mutate_rule(policy: Policy, rule: Rule, variables: Any, obj: Object | None, ctx: Context) -> Outcome | None:
    if obj is None:
        return None
    from admission.engines.yaml.mutate import mutate_resource

    spec = rule.mutate or {}
    if spec.get("foreach") is not None:
        from admission.engines.yaml.foreach import mutate_foreach

        outcome = mutate_foreach(list(spec["foreach"]), variables, obj, 0, ctx)
    else:
        outcome = mutate_resource(spec, variables, obj)
    if outcome.status == Status.PASS and outcome.obj is not None:
        meta = outcome.obj.get("metadata") or {}
        ns = meta.get("namespace")
        where = f" in namespace {ns}" if ns else ""
        return Outcome(Status.PASS, f"mutated {outcome.obj.get('kind')}/{meta.get('name')}{where}", outcome.obj)
    return outcome


# -- generate ---------------------------------------------------------------------------------------

_SERVER_FIELDS = ("uid", "resourceVersion", "creationTimestamp", "managedFields", "selfLink", "generation")


def generate_rule(policy: Policy, rule: Rule, variables: Any, obj: Object | None, ctx: Context) -> Outcome | None:
    if obj is None:
        return None  # a deleted trigger generates nothing
    try:
        spec = variables.substitute(rule.generate or {})
    except Exception as exc:
        return Outcome(Status.ERROR, f"variable substitution failed: {exc}")
    try:
        objects = _generated_objects(spec, ctx)
    except LookupError as exc:
        return Outcome(Status.ERROR, str(exc))
    names = ", ".join(_describe(o) for o in objects)
    return Outcome(Status.PASS, f"generated {names}" if names else "nothing to generate", generated=tuple(objects))


def _describe(obj: Object) -> str:
    meta = obj.get("metadata") or {}
    where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')}/{where}{meta.get('name')}"


def _generated_objects(spec: dict[str, Any], ctx: Context) -> list[Object]:
    api_version, kind = str(spec.get("apiVersion") or ""), str(spec.get("kind") or "")
    name, namespace = str(spec.get("name") or ""), str(spec.get("namespace") or "")
    if spec.get("clone") is None and spec.get("cloneList") is None:  # data (a bare resource when absent)
        data = spec["data"] if isinstance(spec.get("data"), dict) else {}
        meta = dict(data.get("metadata") or {})
        meta["name"] = name
        if namespace:
            meta["namespace"] = namespace
        return [{**data, "apiVersion": api_version, "kind": kind, "metadata": meta}]
    if spec.get("clone") is not None:
        clone = spec["clone"] or {}
        source_ns, source_name = str(clone.get("namespace") or ""), str(clone.get("name") or "")
        if (source_ns, source_name) == (namespace, name):
            return []  # Kyverno skips cloning a resource onto itself
        source = ctx.state.get(kind, source_name, namespace=source_ns, api_version=api_version or None)
        if source is None:
            raise LookupError(f"source resource {kind} {source_ns}/{source_name} not found")
        return [_copy_to(source, namespace, name)]
    clone_list = spec.get("cloneList") or {}
    source_ns = str(clone_list.get("namespace") or "")
    out: list[Object] = []
    for selector_kind in clone_list.get("kinds") or []:

        group, version, bare, _ = parse_kind_selector(str(selector_kind))
        wanted = None if "*" in (group, version) else (f"{group}/{version}" if group else version)
        for source in ctx.state.list(bare, api_version=wanted, namespace=source_ns):
            labels = (source.get("metadata") or {}).get("labels") or {}
            selector = clone_list.get("selector")
            if selector is not None and not selector_matches(selector, labels):
                continue
            if source_ns == namespace:
                continue  # no self-clone
            out.append(_copy_to(source, namespace, str((source.get("metadata") or {}).get("name") or "")))
    return out


def _copy_to(source: Object, namespace: str, name: str) -> Object:
    copy_ = json.loads(json.dumps(source))
    meta = copy_.setdefault("metadata", {})
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    if meta.get("namespace") != namespace:
        meta.pop("ownerReferences", None)
    meta["name"] = name
    if namespace:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    result: Object = copy_
    return result
