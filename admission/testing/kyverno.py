"""The kyverno CLI's `Test` format (`cli.kyverno.io/v1alpha1`, `kyverno-test.yaml`), run on our engine.

Policies and resources are files relative to the test. Every resource is reviewed as a CREATE (unless the
values file sets `request.operation`) against every policy: mutations first, then validation of the
mutated resource, as `kyverno test` does. Each expected result (policy, rule, resource) is one case: the
rule's result must equal `result`, and for mutations the mutated resource must equal `patchedResources`.
A result naming a rule written for Pods matches its generated `autogen-<rule>` / `autogen-cronjob-<rule>`
on workloads, as the CLI matches them. A rule that did not apply to the resource counts as `skip`.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from admission.engine import Engine, Phase
from admission.engines import PolicyError
from admission.engines.yaml import KyvernoContext, KyvernoEvaluator
from admission.engines.yaml.evaluator import NOT_APPLIED
from admission.manifests import ManifestError, load_file
from admission.objects import ObjectIdentity
from admission.policyset import load as load_policies
from admission.results import RuleResult, Status
from admission.review import Kind, Request
from admission.state import ClusterState
from admission.testing import CaseResult
from admission.testing.cel import add_namespaces, param_resources
from admission.testing.kyverno_cel import cel_flag
from admission.types import Object


@dataclasses.dataclass
class Reviewed(ObjectIdentity):
    obj: Object
    mutated: Object
    results: list[RuleResult]
    # the resource as each mutating policy left it (the CLI compares patchedResources per policy)
    after: dict[str, Object] = dataclasses.field(default_factory=dict)
    # (policy, rule) -> the resources a generate rule would create for this resource
    generated: dict[tuple[str, str], tuple[Object, ...]] = dataclasses.field(default_factory=dict)


class Values:
    """A kyverno CLI Values document: globalValues, per-policy rule and resource values, namespace labels."""

    def __init__(self, spec: dict[str, Any] | None) -> None:
        spec = spec or {}
        self.global_values: dict[str, Any] = dict(spec.get("globalValues") or {})
        self.rules: dict[tuple[str, str], dict[str, Any]] = {}
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        for p in spec.get("policies") or []:
            if not isinstance(p, dict):
                continue
            policy = str(p.get("name") or "")
            for r in p.get("rules") or []:
                if isinstance(r, dict):
                    self.rules[(policy, str(r.get("name") or ""))] = dict(r.get("values") or {})
            for r in p.get("resources") or []:
                if isinstance(r, dict):
                    self.resources[(policy, str(r.get("name") or ""))] = dict(r.get("values") or {})
        self.namespace_labels: dict[str, dict[str, str]] = {}
        for ns in spec.get("namespaceSelector") or []:
            if isinstance(ns, dict) and ns.get("name"):
                self.namespace_labels[str(ns["name"])] = {str(k): str(v) for k, v in (ns.get("labels") or {}).items()}
        self.namespaces: list[Object] = [n for n in spec.get("namespaces") or [] if isinstance(n, dict)]
        # subresource kinds (e.g. PodExecOptions) reviewed as their parent kind and subresource (pods/exec)
        self.subresources: dict[tuple[str, str], tuple[Kind, str]] = {}
        for sub in spec.get("subresources") or []:
            if not isinstance(sub, dict):
                continue
            child, parent = sub.get("subresource") or {}, sub.get("parentResource") or {}
            api = "/".join(x for x in (str(child.get("group") or ""), str(child.get("version") or "")) if x)
            name = str(child.get("name") or "")
            self.subresources[(api, str(child.get("kind") or ""))] = (
                Kind(str(parent.get("group") or ""), str(parent.get("version") or ""), str(parent.get("kind") or "")),
                name.split("/", 1)[1] if "/" in name else name,
            )

    def object_values(self, resource: str) -> dict[str, Any]:
        """Values that rewrite the resource itself (`request.object.<path>`), as the CLI injects them."""
        out = {k: v for k, v in self.global_values.items() if k.startswith("request.object.")}
        for (_, name), values in self.resources.items():
            if name == resource:
                out.update({k: v for k, v in values.items() if k.startswith("request.object.")})
        return out

    def for_rule(self, policy: str, rule: str, resource: str) -> dict[str, Any]:
        out = dict(self.global_values)
        out.update(self.resources.get((policy, resource), {}))
        out.update(self.rules.get((policy, rule), {}))
        return out

    def operation(self, resource: str) -> str:
        op = self.global_values.get("request.operation")
        for (_, name), values in self.resources.items():
            if name == resource and values.get("request.operation"):
                op = values["request.operation"]
        return str(op).upper() if op else "CREATE"


# Kinds that live outside namespaces; the CLI puts every other resource without a namespace in `default`.
CLUSTER_SCOPED = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterCleanupPolicy", "ClusterPolicy", "ClusterPolicyReport",
    "ClusterRole", "ClusterRoleBinding", "ComponentStatus", "CSIDriver", "CSINode", "CustomResourceDefinition",
    "FlowSchema", "IngressClass", "MutatingWebhookConfiguration", "Namespace", "Node", "PersistentVolume",
    "PodSecurityPolicy", "PriorityClass", "PriorityLevelConfiguration", "RuntimeClass", "SelfSubjectAccessReview",
    "SelfSubjectRulesReview", "StorageClass", "SubjectAccessReview", "TokenReview",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration",
    "VolumeAttachment", "ClusterIssuer",
})


def cli_defaults(obj: Object) -> Object:
    """A resource as the kyverno CLI loads it: namespaced kinds default to the `default` namespace."""
    meta = obj.get("metadata")
    if str(obj.get("kind") or "") in CLUSTER_SCOPED or (isinstance(meta, dict) and meta.get("namespace")):
        return obj
    out = dict(obj)
    out["metadata"] = {**(meta if isinstance(meta, dict) else {}), "namespace": "default"}
    return out


def _load_objects(base: Path, files: list[Any]) -> list[Object]:
    out: list[Object] = []
    for f in files:
        for doc in load_file(base / str(f)):
            if isinstance(doc.obj, dict) and doc.obj.get("kind"):
                out.append(cli_defaults(doc.obj))
    return out


def _load_values(base: Path, doc: dict[str, Any]) -> Values:
    spec: dict[str, Any] = {}
    if doc.get("variables"):
        for d in load_file(base / str(doc["variables"])):
            if isinstance(d.obj, dict):
                spec = d.obj
                break
    inline = doc.get("values")
    if isinstance(inline, dict):
        merged = dict(spec)
        merged.update(inline)
        spec = merged
    return Values(spec)


def _load_user(base: Path, doc: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...], tuple[str, ...]]:
    if not doc.get("userinfo"):
        return {}, (), ()
    for d in load_file(base / str(doc["userinfo"])):
        if isinstance(d.obj, dict):
            info = d.obj
            user = dict(info.get("userInfo") or {})
            return user, tuple(map(str, info.get("roles") or [])), tuple(map(str, info.get("clusterRoles") or []))
    return {}, (), ()


def _path(text: str) -> list[str]:
    """`a.b."c.d"` -> [a, b, c.d]"""
    parts: list[str] = []
    current, quoted = "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return parts


def with_values(obj: Object, values: dict[str, Any]) -> Object:
    out: Object = copy.deepcopy(obj)
    for key, value in values.items():
        parts = _path(key.removeprefix("request.object."))
        target = out
        for part in parts[:-1]:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[parts[-1]] = value
    return out


def review_all(engine: Engine, resources: list[Object], values: Values, user: dict[str, Any],
               roles: tuple[str, ...], cluster_roles: tuple[str, ...], operation: str = "",
               existing: list[Object] | None = None) -> list[Reviewed]:
    """Every resource through the engine: mutate, validate the mutated resource, and what generate rules
    would create. `operation` overrides the values file's (a result's own `operation`); `existing` are
    objects only present in the cluster state (clone sources)."""
    state = ClusterState([*resources, *values.namespaces, *(existing or [])])
    add_namespaces(state, values.namespace_labels)
    labels = dict(values.namespace_labels)
    for ns in values.namespaces:
        meta = ns.get("metadata") or {}
        labels.setdefault(str(meta.get("name") or ""), dict(meta.get("labels") or {}))
    out: list[Reviewed] = []
    for original in resources:
        name = str((original.get("metadata") or {}).get("name") or "")
        injected = values.object_values(name)
        obj = with_values(original, injected) if injected else original
        op = (operation or values.operation(name)).upper()
        parent = values.subresources.get((str(obj.get("apiVersion") or ""), str(obj.get("kind") or "")))
        request = Request.for_object(
            obj, operation=op, old_object=obj if op != "CREATE" else None, user_info=user,
            kind=parent[0] if parent is not None else None, sub_resource=parent[1] if parent is not None else "",
        )
        ctx = KyvernoContext(state=state, report_skips=True, values=values.for_rule, roles=roles,
                             cluster_roles=cluster_roles, namespace_labels=labels)
        # one policy at a time, in order, each on what the previous ones produced (as the CLI does)
        outcome = engine.review(request, ctx, Phase.ALL, per_policy=True)
        request, mutated, after = outcome.request, outcome.mutated or obj, outcome.after
        results = outcome.results
        generated: dict[tuple[str, str], tuple[Object, ...]] = {}
        for evaluator in engine.evaluators:
            generate = getattr(evaluator, "generate", None)  # the dialects with generating policies
            if generate is not None:
                for g in generate(request, ctx):
                    results.append(g.result)
                    generated[(g.result.policy, g.result.rule)] = g.objects
        out.append(Reviewed(original, mutated, results, after, generated))
    return out


def _rule_matches(expected: str, actual: str) -> bool:
    return actual in (expected, f"autogen-{expected}", f"autogen-cronjob-{expected}") or not expected


def _same_resource(a: Object, b: Object) -> bool:
    ma, mb = a.get("metadata") or {}, b.get("metadata") or {}
    return (a.get("apiVersion"), a.get("kind"), ma.get("name"), ma.get("namespace") or "") == (
        b.get("apiVersion"), b.get("kind"), mb.get("name"), mb.get("namespace") or "")


def run_test(path: Path, doc: dict[str, Any]) -> list[CaseResult]:
    base = path.parent
    file = str(path)
    try:
        engine = load_policies([base / str(p) for p in doc.get("policies") or []], offline=True)
        resources = _load_objects(base, list(doc.get("resources") or []))
        values = _load_values(base, doc)
        user, roles, cluster_roles = _load_user(base, doc)
    except (PolicyError, ManifestError) as exc:
        # every expected result of a test that cannot load fails (and is counted)
        return [CaseResult(file, label, False, str(exc)) for label in _labels(doc)] or [
            CaseResult(file, "load", False, str(exc))]
    runs: dict[str, list[Reviewed]] = {}
    try:  # the sources generate rules clone from
        sources = _load_objects(base, sorted({str(e["cloneSourceResource"]) for e in doc.get("results") or []
                                              if isinstance(e, dict) and e.get("cloneSourceResource")}))
        sources += param_resources(base, doc, _load_objects)
    except ManifestError as exc:
        return [CaseResult(file, label, False, str(exc)) for label in _labels(doc)]
    # policies annotated `policies.kyverno.io/scored: "false"` report failures as warnings
    unscored = {p.name for e in engine.evaluators if isinstance(e, KyvernoEvaluator) for p in e.compiled
                if p.annotations.get("policies.kyverno.io/scored") == "false"}
    cases: list[CaseResult] = []
    for expected in doc.get("results") or []:
        if not isinstance(expected, dict):
            continue
        operation = str(expected.get("operation") or "").upper()  # a result may ask for its own operation
        if operation not in runs:
            runs[operation] = review_all(engine, resources, values, user, roles, cluster_roles, operation, sources)
        cases.extend(_check(file, base, expected, runs[operation], unscored))
    return cases


def _labels(doc: dict[str, Any]) -> list[str]:
    labels: list[str] = []
    for expected in doc.get("results") or []:
        if isinstance(expected, dict):
            policy, rule, kind = expected.get("policy"), expected.get("rule"), expected.get("kind")
            for ref in expected.get("resources") or [expected.get("resource") or ""]:
                labels.append(f"{policy} {kind}/{ref}" if cel_flag(expected) else f"{policy}/{rule} {kind}/{ref}")
    return labels


def _check(file: str, base: Path, expected: dict[str, Any], reviewed: list[Reviewed],
           unscored: set[str] | None = None) -> list[CaseResult]:
    policy_namespace, _, policy = str(expected.get("policy") or "").rpartition("/")
    rule = str(expected.get("rule") or "")
    kind = str(expected.get("kind") or "")
    want = str(expected.get("result") or expected.get("status") or "").lower()
    names = [str(r) for r in expected.get("resources") or []]
    if not names and expected.get("resource"):
        names = [str(expected["resource"])]
    patched_file = expected.get("patchedResources") or expected.get("patchedResource")
    generated_files = list(expected.get("generatedResources") or [])
    if expected.get("generatedResource"):
        generated_files.append(expected["generatedResource"])
    cases: list[CaseResult] = []
    if not names and cel_flag(expected):  # a CEL policy's result naming no resources counts once
        return [_check_all(file, expected, reviewed, policy, kind, want)]
    if not names:  # no resources named: every resource of the kind the rule gave a result for (as the CLI)
        names = [f"{r.namespace}/{r.name}" if r.namespace else r.name for r in reviewed
                 if (not kind or r.kind == kind)
                 and any(x.policy == policy and _rule_matches(rule, x.rule) and x.message != NOT_APPLIED
                         for x in r.results)]
    for ref in names:
        ns, _, name = ref.rpartition("/")
        label = f"{policy} {kind}/{ref}" if cel_flag(expected) else f"{policy}/{rule} {kind}/{ref}"
        # a namespaced Policy (`ns/name`) only sees resources in its namespace
        ns = ns or policy_namespace
        found = [r for r in reviewed if r.name == name and (not ns or r.namespace == ns) and (not kind or r.kind == kind)]
        if not found:
            cases.append(CaseResult(file, label, False, f"resource {kind}/{ref} not found among the test's resources"))
            continue
        for r in found:
            got = [x for x in r.results if x.policy == policy and _rule_matches(rule, x.rule)]
            statuses = sorted({"warn" if x.status == Status.FAIL and policy in (unscored or set()) else str(x.status)
                               for x in got}) or ["skip"]
            ok = statuses == [want]
            detail = "" if ok else f"want {want}, got {', '.join(statuses)}" + "".join(
                f"; {x.rule}: {x.message}" for x in got if x.message)
            if ok and patched_file:
                ok, detail = _compare_patched(base / str(patched_file), r.after.get(policy, r.mutated))
            if ok and generated_files:
                made = [o for x in got for o in r.generated.get((x.policy, x.rule), ())]
                ok, detail = _compare_generated([base / str(f) for f in generated_files], made)
            cases.append(CaseResult(file, label, ok, detail))
    return cases


def _check_all(file: str, expected: dict[str, Any], reviewed: list[Reviewed], policy: str, kind: str,
               want: str) -> CaseResult:
    """One case for a CEL policy's result that names no resources: every resource of the kind the policy
    gave a result for must have the expected one."""
    label = f"{policy} {kind}/*"
    found = [(r, [x for x in r.results if x.policy == policy]) for r in reviewed if not kind or r.kind == kind]
    found = [(r, got) for r, got in found if got]
    if not found:
        return CaseResult(file, label, False, f"{policy} gave no result for any {kind or 'resource'}")
    wrong = [f"{r.kind}/{r.name}: {', '.join(sorted({str(x.status) for x in got}))}" for r, got in found
             if sorted({str(x.status) for x in got}) != [want]]
    return CaseResult(file, label, not wrong, f"want {want}, got {'; '.join(wrong)}" if wrong else "")


def tidy(value: Any) -> Any:
    """As the CLI compares resources: empty mappings and lists, and nulls, are dropped."""
    if isinstance(value, dict):
        out = {k: t for k, v in value.items() if (t := tidy(v)) is not None}
        return out or None
    if isinstance(value, list):
        items = [t for v in value if (t := tidy(v)) is not None]
        return items or None
    return value


def _without_generate_labels(obj: Object) -> Object:
    """As the CLI compares generated resources: Kyverno's generate.kyverno.io/* labels dropped and the
    managed-by label set on both sides."""
    meta = dict(obj.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if not str(k).startswith("generate.kyverno.io/")}
    labels["app.kubernetes.io/managed-by"] = "kyverno"
    meta["labels"] = labels
    return {**obj, "metadata": meta}


def _compare_generated(paths: list[Path], made: list[Object]) -> tuple[bool, str]:
    if not made:
        return False, "the rule generated nothing"
    expected: list[Object] = []
    for path in paths:
        try:
            expected.extend(cli_defaults(d.obj) for d in load_file(path) if isinstance(d.obj, dict))
        except ManifestError as exc:
            return False, f"cannot load generated resources: {exc}"
    import json

    for obj in made:
        candidates = [e for e in expected if _same_resource(e, cli_defaults(obj))]
        if not candidates:
            return False, f"no expected generated resource for {obj.get('kind')} {json.dumps(obj.get('metadata'))}"
        actual = tidy(_without_generate_labels(cli_defaults(obj)))
        if not any(tidy(_without_generate_labels(c)) == actual for c in candidates):
            return False, (f"generated resource differs: want {json.dumps(candidates[0], sort_keys=True)}, "
                           f"got {json.dumps(obj, sort_keys=True)}")
    return True, ""


def _compare_patched(path: Path, actual: Object) -> tuple[bool, str]:
    try:
        docs = [cli_defaults(d.obj) for d in load_file(path) if isinstance(d.obj, dict)]
    except ManifestError as exc:
        return False, f"cannot load patchedResources: {exc}"
    wanted = [d for d in docs if _same_resource(d, actual)]
    if not wanted:
        return False, f"patchedResources {path.name} has no {actual.get('kind')} {(actual.get('metadata') or {}).get('name')}"
    if tidy(wanted[0]) == tidy(actual):
        return True, ""
    import json

    return False, (f"patched resource differs from {path.name}: want {json.dumps(wanted[0], sort_keys=True)}, "
                   f"got {json.dumps(actual, sort_keys=True)}")
