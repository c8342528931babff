"""Pod Security Admission by namespace labels, with exceptions the built-in admission lacks.

A namespace labelled `pod-security.kubernetes.io/<mode>: <level>` (and optionally `<mode>-version`) gets
the Pod Security Standards at that level, as the built-in admission does: `enforce` rejects Pods;
`warn` answers with warnings and `audit` only logs, both for Pods and for workloads through their pod
template. On top of that, a `PodSecurityException` exempts named workloads from named checks, saying
who asked, why, and until when; an expired exception stops applying and is reported.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from admission.engines import Context, PolicyError, PolicyInfo, Target
from admission.engines.yaml import schema
from admission.engines.yaml.values import wildcard_match
from admission.manifests import Document
from admission.podsecurity import check, summary
from admission.podsecurity.namespace import PRIVILEGED, policy_from_labels
from admission.results import Action, FailurePolicy, RuleResult, Status
from admission.review import Request
from admission.selectors import selector_matches
from admission.state import StateUnavailable
from admission.types import Object

POLICY = "pod-security-admission"
MODES = {"enforce": Action.ENFORCE, "warn": Action.WARN, "audit": Action.DRYRUN}
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController", "Job")
EXCEPTION_KIND = "PodSecurityException"


def pod_template(obj: Object) -> Object | None:
    """The pod (metadata + spec) an object runs: the Pod itself or a workload's template, as the built-in
    Pod Security admission reads it. Not the Kyverno evaluator's pod_of: Kyverno takes a CronJob's pod
    metadata from spec.jobTemplate.metadata and knows no ReplicationControllers; upstream does neither."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return {"metadata": obj.get("metadata") or {}, "spec": spec}
    if kind in WORKLOADS:
        template = spec.get("template")
    elif kind == "CronJob":
        template = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template")
    else:
        return None
    return template if isinstance(template, dict) else None


@dataclass(frozen=True)
class PodSecurityException:
    """Exempts matching workloads in a namespace from some checks, with an owner, a reason and an end date."""

    name: str
    namespace: str  # "" = every namespace
    kinds: tuple[str, ...]
    names: tuple[str, ...]
    selector: dict[str, Any] | None
    controls: tuple[str, ...]  # check ids, or "*"
    owner: str
    reason: str
    expires: dt.datetime
    source: str

    def covers(self, obj: Object, namespace: str) -> bool:
        meta = obj.get("metadata") or {}
        if self.namespace and self.namespace != namespace:
            return False
        if self.kinds and obj.get("kind") not in self.kinds:
            return False
        if self.names and not any(wildcard_match(n, str(meta.get("name") or "")) for n in self.names):
            return False
        if self.selector is not None and not selector_matches(self.selector, meta.get("labels") or {}):
            return False
        return True

    def exempts(self, check: str) -> bool:
        return "*" in self.controls or check in self.controls

    def expired(self, now: dt.datetime) -> bool:
        return now >= self.expires


def _parse_expiry(value: Any, source: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime.combine(value, dt.time(), dt.UTC) + dt.timedelta(days=1)  # valid through that day
    elif isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise PolicyError(source, f"spec.expires {value!r} is not an RFC 3339 date or time") from None
        if len(value) == 10:
            when += dt.timedelta(days=1)
    else:
        raise PolicyError(source, "spec.expires is required: say until when the exception holds")
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def parse_exception(doc: Document) -> PodSecurityException:
    source = f"{doc.file}:{doc.line}"
    schema.validate(doc, "PodSecurityException")
    obj = doc.obj
    meta = obj.get("metadata") or {}
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise PolicyError(source, f"{EXCEPTION_KIND} has no spec")
    name = str(meta.get("name") or "")
    if not name:
        raise PolicyError(source, f"{EXCEPTION_KIND} has no metadata.name")
    for required, what in (("owner", "who asked for it"), ("reason", "why it is needed")):
        if not str(spec.get(required) or "").strip():
            raise PolicyError(source, f"{EXCEPTION_KIND} {name}: spec.{required} is required ({what})")
    controls = spec.get("controls")
    if not isinstance(controls, list) or not controls:
        raise PolicyError(source, f"{EXCEPTION_KIND} {name}: spec.controls must list check names, or [\"*\"]")
    match = spec.get("match") or {}
    return PodSecurityException(
        name=name,
        namespace=str(meta.get("namespace") or ""),
        kinds=tuple(str(k) for k in match.get("kinds") or ()),
        names=tuple(str(n) for n in match.get("names") or ()),
        selector=match.get("selector"),
        controls=tuple(str(c) for c in controls),
        owner=str(spec["owner"]),
        reason=str(spec["reason"]),
        expires=_parse_expiry(spec.get("expires"), source),
        source=source,
    )


class PodSecurityAdmission:
    """The Evaluator for namespace-label Pod Security, with exceptions."""

    def __init__(self, exceptions: list[PodSecurityException] | None = None, now: Any = None) -> None:
        self.exceptions = exceptions or []
        self._now = now or (lambda: dt.datetime.now(dt.UTC))

    @classmethod
    def from_documents(cls, docs: list[Document]) -> PodSecurityAdmission:
        return cls([parse_exception(d) for d in docs])

    def policies(self) -> list[PolicyInfo]:
        targets = tuple(Target("validate", "*", "*", k) for k in ("Pod", *WORKLOADS, "CronJob"))
        docs = tuple((mode, f"Pod Security Standards at the level of the namespace label "
                            f"pod-security.kubernetes.io/{mode}") for mode in MODES)
        return [PolicyInfo(POLICY, "psa", "namespace labels", tuple(MODES), targets=targets,
                           description="Pod Security Standards by namespace labels, with exceptions",
                           rule_docs=(*docs, ("labels", "namespace Pod Security labels are valid")))]

    def validate(self, request: Request, ctx: Context) -> list[RuleResult]:
        if request.operation not in ("CREATE", "UPDATE") or request.object is None or request.sub_resource:
            return []
        pod = pod_template(request.object)
        if pod is None:
            return []
        try:
            labels = ctx.state.namespace_labels(request.namespace)
        except StateUnavailable as exc:
            # The namespace's labels exist but cannot be read: fail closed, as the built-in admission does.
            return [RuleResult(POLICY, "labels", Status.ERROR,
                               f"cannot read the Pod Security labels of namespace {request.namespace}: {exc}",
                               failure_policy=FailurePolicy.FAIL)]
        if not labels:
            return []
        ns_policy = policy_from_labels(labels)
        results = [RuleResult(POLICY, "labels", Status.WARN, f"namespace {request.namespace}: {e}")
                   for e in ns_policy.errors]
        now = self._now()
        applicable = [e for e in self.exceptions if e.covers(request.object, request.namespace)]
        is_pod = request.kind.kind == "Pod"
        for mode, action in MODES.items():
            wanted = getattr(ns_policy, mode)
            if wanted.level == PRIVILEGED:
                continue
            if mode == "enforce" and not is_pod:
                continue  # as the built-in admission: workloads are warned and audited, their pods enforced
            if mode == "warn" and is_pod and wanted == ns_policy.enforce:
                continue  # the enforce result already says it
            kept = []
            for v in check(pod, level=wanted.level, version=wanted.version):
                exemption = next((e for e in applicable if e.exempts(v.check)), None)
                if exemption is not None and not exemption.expired(now):
                    continue
                kept.append(v)
                if exemption is not None:
                    results.append(RuleResult(
                        POLICY, mode, Status.WARN,
                        f"exception {exemption.name} (owner {exemption.owner}) expired "
                        f"{exemption.expires.isoformat()} and no longer exempts {v.check}",
                    ))
            if kept:
                results.append(RuleResult(
                    POLICY, mode, Status.FAIL, f'violates PodSecurity "{wanted}": {summary(kept)}',
                    action=action, failure_policy=FailurePolicy.FAIL,
                ))
            elif ctx.report_skips:
                results.append(RuleResult(POLICY, mode, Status.PASS))
        return results

    def mutate(self, request: Request, obj: Object, ctx: Context) -> tuple[Object, list[RuleResult]]:
        return obj, []
