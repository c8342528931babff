"""Prometheus metrics of the webhook server.

With several worker processes each keeps its own counters; `admission serve --workers N` (N > 1) points
PROMETHEUS_MULTIPROC_DIR at a fresh folder before the workers start, and /metrics then aggregates every
worker's files (prometheus-client's multiprocess mode). The variable must be set before this module is
imported, which `admission.server.run` takes care of.

Rule results are many per request (one per rule that applies), and each increment of a counter costs about
2 µs in multiprocess mode (a lock and a write to the worker's file), so they are tallied in memory and added
to `admission_rule_results_total` by `flush()`: the server calls it every second, before rendering /metrics
and at shutdown. Requests, decisions and latency are counted at once. Decisions on dry-run requests
(`kubectl apply --dry-run=server`) go to `admission_dry_run_reviews_total`, not `admission_reviews_total`, so
that a denial alert counts only requests that would have changed the cluster; their rule results count as any.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from admission.results import RuleResult

if TYPE_CHECKING:
    from admission.engines import PolicyInfo

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Admission latency is usually well under 10 ms; the buckets resolve that range and the webhook timeout.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "admission_requests", "HTTP requests to the webhook endpoints, by endpoint and status code",
    ["endpoint", "code"],
)
REVIEWS = Counter(
    "admission_reviews", "Admission decisions answered, by endpoint and decision (allowed or denied); "
    "dry-run requests are counted apart, in admission_dry_run_reviews",
    ["endpoint", "decision"],
)
DRY_RUN_REVIEWS = Counter(
    "admission_dry_run_reviews", "Admission decisions answered for dry-run requests (nothing is persisted), by "
    "endpoint and decision",
    ["endpoint", "decision"],
)
RULES = Counter(
    "admission_rule_results", "Rule results, by policy, rule and result (pass, fail, warn, error, skip)",
    ["policy", "rule", "result"],
)
LATENCY = Histogram(
    "admission_request_duration_seconds", "Time to answer a webhook request, by endpoint",
    ["endpoint"], buckets=LATENCY_BUCKETS,
)
DEADLINES = Counter("admission_deadline_exceeded", "Requests whose evaluation passed the deadline", ["endpoint"])
RELOADS = Counter("admission_policy_reloads", "Policy reloads, by result (ok or error)", ["result"])
# 1 for each policy of the set in use; the engine label says which evaluator runs it: for Rego "compiled" or
# "regopy" (`admission test -v` prints why a policy is not compiled), else its dialect
POLICY_ENGINE = Gauge(
    "admission_policy_engine", "Policies in use, by policy, dialect and the evaluator that runs it",
    ["policy", "dialect", "engine"], multiprocess_mode="livemax",
)
BREAK_GLASS_ACTIVE = Gauge(
    "admission_break_glass_active", "1 while the break-glass switch is on (denials answered as warnings)",
    multiprocess_mode="livemax",
)
BREAK_GLASS_OVERRIDES = Counter(
    "admission_break_glass_overrides", "Requests the policies denied and the break-glass switch allowed, by endpoint",
    ["endpoint"],
)


# labels() looks the child up under a lock on every call; a request touches one per rule, so keep them,
# keyed by the metric object itself and the label values.
_children: dict[tuple[object, ...], Any] = {}


def _child(metric: Counter | Histogram, *labels: str) -> Any:
    key = (metric, *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def record_request(endpoint: str, code: int, seconds: float) -> None:
    _child(REQUESTS, endpoint, str(code)).inc()
    _child(LATENCY, endpoint).observe(seconds)


_engines: set[tuple[str, str, str]] = set()  # the label sets POLICY_ENGINE holds at 1


def engine_label(policy: PolicyInfo) -> str:
    """The evaluator a policy runs on, as a label value: "compiled" or "regopy" for Rego (the reason a
    template is not compiled stays out of the label), else the dialect."""
    return policy.engine.split(" ", 1)[0] if policy.engine else policy.dialect


def record_policies(policies: Iterable[PolicyInfo]) -> None:
    """The policy set in use (after each load): its policies at 1, those no longer loaded at 0."""
    global _engines
    now = {(p.name, p.dialect, engine_label(p)) for p in policies}
    for gone in _engines - now:
        POLICY_ENGINE.labels(*gone).set(0)
    for labels in now:
        POLICY_ENGINE.labels(*labels).set(1)
    _engines = now


def record_break_glass(endpoint: str) -> None:
    _child(BREAK_GLASS_OVERRIDES, endpoint).inc()


def set_break_glass(active: bool) -> None:
    BREAK_GLASS_ACTIVE.set(1 if active else 0)


_pending: dict[tuple[str, str, str], int] = {}  # rule results not yet added to RULES
_pending_lock = threading.Lock()


def record_decision(endpoint: str, allowed: bool, results: Iterable[RuleResult], dry_run: bool = False) -> None:
    _child(DRY_RUN_REVIEWS if dry_run else REVIEWS, endpoint, "allowed" if allowed else "denied").inc()
    with _pending_lock:
        pending = _pending
        for r in results:
            key = (r.policy, r.rule, r.status.value)
            pending[key] = pending.get(key, 0) + 1


def flush() -> None:
    """Add the rule results tallied since the last flush to the Prometheus counter."""
    global _pending
    with _pending_lock:
        pending, _pending = _pending, {}
    for (policy, rule, status), count in pending.items():
        _child(RULES, policy, rule, status).inc(count)


def render() -> tuple[bytes, str]:
    """The exposition text of this process, or of every worker in multiprocess mode (this one's flushed first)."""
    flush()
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST

