"""Our own test format, `PolicyTest`, close to Kyverno's `Test` so its users feel at home:

    apiVersion: admission.dev/v1
    kind: PolicyTest
    metadata: {name: my-policy}          # optional
    policies: [../policy.yaml]           # files or folders, relative to this file, any dialect admission loads
    resources: [resources.yaml]          # the objects evaluated, each as a CREATE
    state: [cluster.yaml]                # optional: objects visible as cluster state (NetworkPolicies, ...)
    results:
      - {policy: P, rule: R, kind: Pod, resources: [name or ns/name], result: pass|fail|skip|warn|error}
      - {policy: P, rule: R, kind: Pod, resources: [name], patchedResource: patched.yaml}

Mutating policies apply first and the validating rules see the mutated object, as in the cluster.
Each (policy, rule, resource) is one CaseResult. A result for a workload may name the rule as written
(`R`) where the engine reports the generated one (`autogen-R`, `autogen-cronjob-R`). A rule that did not
apply counts as `skip`; `warn` means a warning status or a failure that only warns (Audit/Warn).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from admission.engine import Engine, Phase
from admission.engines import Context, PolicyError
from admission.manifests import ManifestError, load_paths
from admission.objects import ObjectIdentity
from admission.patch import diff
from admission.results import Action, RuleResult, Status
from admission.review import Request
from admission.state import ClusterState
from admission.testing import CaseResult, engine_notes
from admission.types import Object

RESULTS = ("pass", "fail", "skip", "warn", "error")


class TestFormatError(ValueError):
    """A PolicyTest document that does not say what to run."""


@dataclass(frozen=True)
class Expectation:
    policy: str
    rule: str
    kind: str
    resources: tuple[str, ...]
    result: str
    patched: str = ""  # patchedResource file, relative to the test


@dataclass
class Subject(ObjectIdentity):
    """A resource under test and, once evaluated, its results and mutated form."""

    obj: Object
    results: list[RuleResult] = field(default_factory=list)
    mutated: Object | None = None
    evaluated: bool = False

    def named(self, ref: str) -> bool:
        ns, _, name = ref.rpartition("/")
        if name != self.name:
            return False
        return not ns or ns == (self.namespace or "default")

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"


def _str_list(doc: dict[str, Any], key: str, *, required: bool) -> list[str]:
    value = doc.get(key)
    if value is None and not required:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise TestFormatError(f"`{key}` must be a list of file names")
    return value


def parse_expectations(doc: dict[str, Any]) -> list[Expectation]:
    raw = doc.get("results")
    if not isinstance(raw, list) or not raw:
        raise TestFormatError("`results` must be a non-empty list")
    out: list[Expectation] = []
    for i, entry in enumerate(raw):
        where = f"results[{i}]"
        if not isinstance(entry, dict):
            raise TestFormatError(f"{where} must be a mapping")
        for key in ("policy", "kind"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise TestFormatError(f"{where}.{key} is required")
        # no rule: the policy as a whole (Gatekeeper constraints and admission policies name no rules)
        if not isinstance(entry.get("rule", ""), str):
            raise TestFormatError(f"{where}.rule must be a string")
        resources = entry.get("resources")
        if isinstance(resources, str):
            resources = [resources]
        if not isinstance(resources, list) or not resources:
            raise TestFormatError(f"{where}.resources must list resource names")
        patched = entry.get("patchedResource") or ""
        result = str(entry.get("result") or ("pass" if patched else "")).lower()
        if result not in RESULTS:
            raise TestFormatError(f"{where}.result must be one of {', '.join(RESULTS)}, got {entry.get('result')!r}")
        out.append(Expectation(
            entry["policy"], entry.get("rule", ""), entry["kind"], tuple(str(r) for r in resources), result, str(patched),
        ))
    return out


def rule_names(rule: str) -> list[str]:
    """The names a result for `rule` may carry: as written, or as generated for pod controllers."""
    if rule.startswith("autogen-"):
        return [rule]
    return [rule, f"autogen-{rule}"[:63], f"autogen-cronjob-{rule}"[:63]]


def observed(results: list[RuleResult], policy: str, rule: str) -> RuleResult | None:
    """The result for policy/rule: the first that applied among its names, else a skip, else None. Without a
    rule, the policy's own: its worst result that applied (error, fail, warn, pass), else a skip, else None."""
    if not rule:
        mine = [r for r in results if r.policy == policy]
        for status in (Status.ERROR, Status.FAIL, Status.WARN, Status.PASS):
            for r in mine:
                if r.status == status:
                    return r
        return mine[0] if mine else None
    names = rule_names(rule)
    candidates = [r for n in names for r in results if r.policy == policy and r.rule == n]
    for r in candidates:
        if r.status != Status.SKIP:
            return r
    return candidates[0] if candidates else None


def known_rule(rules: tuple[str, ...], rule: str) -> bool:
    base = rule.removeprefix("autogen-cronjob-").removeprefix("autogen-")
    return base in rules or any(n in rules for n in rule_names(rule))


def status_word(r: RuleResult | None) -> str:
    if r is None:
        return "skip"
    if r.status == Status.FAIL and r.action in (Action.AUDIT, Action.WARN):
        return "warn-or-fail"
    return r.status.value


def matches(expected: str, r: RuleResult | None) -> bool:
    got = status_word(r)
    if got == "warn-or-fail":
        return expected in ("fail", "warn")
    return got == expected


def _objects(base: Path, files: list[str]) -> list[Object]:
    return [d.obj for d in load_paths([base / f for f in files]) if isinstance(d.obj, dict) and d.obj.get("kind")]


def evaluate(engine: Engine, subject: Subject, ctx: Context) -> None:
    """The subject through the pipeline as a CREATE: mutations first, then validation of the result."""
    if subject.evaluated:
        return
    outcome = engine.review(Request.for_object(subject.obj), ctx, Phase.ALL)
    subject.results.extend(outcome.results)
    subject.mutated = outcome.mutated
    subject.evaluated = True


def run_policy_test(path: Path, doc: dict[str, Any]) -> list[CaseResult]:
    from admission.engines.yaml.schema import SchemaError, check_document
    from admission.policyset import load

    file = str(path)
    try:
        check_document(doc, "PolicyTest")
    except SchemaError as exc:
        return [CaseResult(file, "format", False, str(exc))]
    try:
        policies = _str_list(doc, "policies", required=True)
        resource_files = _str_list(doc, "resources", required=True)
        state_files = _str_list(doc, "state", required=False)
        expectations = parse_expectations(doc)
    except TestFormatError as exc:
        return [CaseResult(file, "format", False, str(exc))]
    base = path.parent
    try:
        engine = load([base / p for p in policies], offline=True)
        subjects = [Subject(obj) for obj in _objects(base, resource_files)]
        ctx = Context(state=ClusterState(_objects(base, state_files)), report_skips=True)
    except (PolicyError, ManifestError) as exc:
        return [CaseResult(file, "load", False, str(exc))]
    infos = {p.name: p for p in engine.policies()}
    notes = engine_notes(infos.values())  # which evaluator runs each Rego policy (admission test -v)
    out: list[CaseResult] = []
    for exp in expectations:
        for ref in exp.resources:
            name = f"{exp.policy}{'/' + exp.rule if exp.rule else ''} {exp.kind}/{ref}"
            info = infos.get(exp.policy)
            if info is None:
                out.append(CaseResult(file, name, False, f"policy {exp.policy!r} is not among the policies loaded"))
                continue
            if exp.rule and info.rules and not known_rule(info.rules, exp.rule):
                out.append(CaseResult(file, name, False, f"policy {exp.policy!r} has no rule {exp.rule!r}"))
                continue
            found = [s for s in subjects if s.kind == exp.kind and s.named(ref)]
            if not found:
                out.append(CaseResult(file, name, False, f"no {exp.kind} named {ref!r} among the resources"))
                continue
            for subject in found:
                evaluate(engine, subject, ctx)
                out.append(check(file, name, exp, subject, base))
    return [replace(r, engines=notes) for r in out]


def check(file: str, name: str, exp: Expectation, subject: Subject, base: Path) -> CaseResult:
    got = observed(subject.results, exp.policy, exp.rule)
    if not matches(exp.result, got):
        detail = f"expected {exp.result}, got {got.status.value if got else 'skip (rule did not apply)'}"
        if got is not None and got.message:
            detail += f": {got.message}"
        return CaseResult(file, name, False, detail)
    if exp.patched:
        want = [o for o in _objects(base, [exp.patched]) if Subject(o).kind == subject.kind
                and Subject(o).name == subject.name and Subject(o).namespace == subject.namespace]
        if not want:
            return CaseResult(file, name, False, f"{exp.patched} holds no {subject.ref}")
        mutated = subject.mutated if subject.mutated is not None else subject.obj
        if mutated != want[0]:
            ops = diff(want[0], mutated)
            return CaseResult(
                file, name, False, f"mutated resource differs from {exp.patched}: {json.dumps(ops)[:500]}",
            )
    return CaseResult(file, name, True)
