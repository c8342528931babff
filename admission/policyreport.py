"""Audit results as policy reports: `wgpolicyk8s.io/v1alpha2` PolicyReport/ClusterPolicyReport (the format
Kyverno, Policy Reporter and most dashboards read today) or `openreports.io/v1alpha1` Report/ClusterReport
(its successor). Building them is pure; `admission.audit` writes them to the cluster.

One report per namespace with results (the namespaced kind, named REPORT_NAME) plus one cluster-scoped
report for cluster-scoped objects. A report keeps at most `max_results` results (fail first, then error, warn, pass),
and no more than MAX_BYTES of them, each message cut to MAX_MESSAGE characters, so the largest report stays
below etcd's 1.5 MiB object limit; its `summary` always counts every result. A report that dropped results says how many in the
TRUNCATED_ANNOTATION. A result identical to one in the previous report keeps that report's timestamp, so
writing the same findings again changes nothing in the cluster.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from admission.results import RuleResult, Status

if TYPE_CHECKING:
    from admission.engines import PolicyInfo
    from admission.lint import Evaluation

SOURCE = "admission"
REPORT_NAME = "admission-audit"
FIELD_MANAGER = "admission"
MANAGED_BY = ("app.kubernetes.io/managed-by", "admission")
TRUNCATED_ANNOTATION = "admission.dev/results-truncated"
MAX_RESULTS = 1000  # per report
MAX_BYTES = 1_000_000  # of results (as JSON) per report, whatever their count: etcd takes objects up to 1.5 MiB
MAX_MESSAGE = 512  # characters of a result's message
SEVERITIES = ("critical", "high", "medium", "low", "info")  # the CRDs' enum
# the order results are kept in when a report is capped: what needs action first
_PRIORITY = {Status.FAIL: 0, Status.ERROR: 1, Status.WARN: 2, Status.PASS: 3, Status.SKIP: 4}


@dataclass(frozen=True)
class Format:
    name: str
    api_version: str
    kind: str  # namespaced
    cluster_kind: str

    def kind_for(self, namespace: str) -> str:
        return self.kind if namespace else self.cluster_kind


FORMATS: dict[str, Format] = {
    "wgpolicyk8s": Format("wgpolicyk8s", "wgpolicyk8s.io/v1alpha2", "PolicyReport", "ClusterPolicyReport"),
    "openreports": Format("openreports", "openreports.io/v1alpha1", "Report", "ClusterReport"),
}
DEFAULT_FORMAT = "wgpolicyk8s"


def _cut(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reference(obj: Mapping[str, Any]) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    ref = {"apiVersion": str(obj.get("apiVersion") or ""), "kind": str(obj.get("kind") or ""),
           "name": str(meta.get("name") or "")}
    if meta.get("namespace"):
        ref["namespace"] = str(meta["namespace"])
    if meta.get("uid"):
        ref["uid"] = str(meta["uid"])
    return ref


def result_entry(evaluation: Evaluation, r: RuleResult, info: PolicyInfo | None, timestamp: dt.datetime) -> dict[str, Any]:
    """One report result for one rule result on one resource."""
    entry: dict[str, Any] = {
        "source": SOURCE,
        "policy": r.policy,
        "rule": r.rule or r.policy,
        "result": r.status.value,  # pass, fail, warn, error, skip: the same five values
        "scored": True,
        "timestamp": {"seconds": int(timestamp.timestamp()), "nanos": 0},
        "resources": [_reference(evaluation.resource.obj)],
    }
    message = r.message or ("rule failed" if r.status == Status.FAIL else "")
    if r.status == Status.ERROR:
        message = f"error evaluating policy: {message}" if message else "error evaluating policy"
    if message:
        entry["message"] = _cut(message)
    if info is not None and info.category:
        entry["category"] = _cut(info.category, 100)
    if info is not None and info.severity.lower() in SEVERITIES:
        entry["severity"] = info.severity.lower()
    properties = {"action": r.action.value}
    if r.path:
        properties["path"] = _cut(r.path, 256)
    entry["properties"] = properties
    return entry


def _identity(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes two results the same finding (everything but the timestamp)."""
    res = tuple((x.get("kind"), x.get("namespace"), x.get("name"), x.get("uid")) for x in entry.get("resources") or ())
    return (entry.get("policy"), entry.get("rule"), entry.get("result"), entry.get("message"), res,
            tuple(sorted((entry.get("properties") or {}).items())))


def _sort_key(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    res = (entry.get("resources") or [{}])[0]
    return (_PRIORITY.get(Status(entry["result"]), 9),
            res.get("kind", ""), res.get("name", ""), entry["policy"], entry["rule"], entry.get("message", ""))


def build(
    evaluations: Sequence[Evaluation],
    policies: Sequence[PolicyInfo],
    fmt: str = DEFAULT_FORMAT,
    *,
    now: dt.datetime | None = None,
    previous: Mapping[str, Mapping[str, Any]] | None = None,
    max_results: int = MAX_RESULTS,
) -> list[dict[str, Any]]:
    """The reports for these evaluations: one per namespace ("" = the cluster-scoped report), ordered by
    namespace. `previous` maps a namespace to the report now in the cluster (its timestamps are kept for
    unchanged results)."""
    form = FORMATS[fmt]
    now = now or dt.datetime.now(dt.UTC)
    infos = {p.name: p for p in policies}
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for e in evaluations:  # a namespace without results gets no report (and loses the one it had)
        for r in e.results:
            by_namespace.setdefault(e.resource.namespace, []).append(result_entry(e, r, infos.get(r.policy), now))
    reports = []
    for ns in sorted(by_namespace):
        old = {_identity(x): x.get("timestamp") for x in ((previous or {}).get(ns) or {}).get("results") or ()}
        entries = by_namespace[ns]
        for entry in entries:
            kept = old.get(_identity(entry))
            if isinstance(kept, dict):
                entry["timestamp"] = kept
        reports.append(report(form, ns, entries, max_results))
    return reports


def report(form: Format, namespace: str, entries: list[dict[str, Any]], max_results: int = MAX_RESULTS
           ) -> dict[str, Any]:
    """A report object holding the first `max_results` entries by priority, and the summary of all."""
    entries = sorted(entries, key=_sort_key)
    summary = dict.fromkeys(("pass", "fail", "warn", "error", "skip"), 0)
    for entry in entries:
        summary[entry["result"]] += 1
    kept = []
    size = 0
    for entry in entries[: max(0, max_results)]:
        size += len(json.dumps(entry, separators=(",", ":")))
        if size > MAX_BYTES:
            break
        kept.append(entry)
    metadata: dict[str, Any] = {"name": REPORT_NAME, "labels": {MANAGED_BY[0]: MANAGED_BY[1]}}
    if namespace:
        metadata["namespace"] = namespace
    if len(kept) < len(entries):
        metadata["annotations"] = {
            TRUNCATED_ANNOTATION: f"{len(kept)} of {len(entries)} results kept (the summary counts all)"}
    doc: dict[str, Any] = {"apiVersion": form.api_version, "kind": form.kind_for(namespace), "metadata": metadata}
    if form.name == "openreports":
        doc["source"] = SOURCE
        doc["configuration"] = {"limits": {"maxResults": max_results}}
    doc["summary"] = summary
    doc["results"] = kept
    return doc
