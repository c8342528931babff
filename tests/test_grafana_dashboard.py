"""deploy/grafana-dashboard.json queries only metrics the server exports (admission/metrics.py's registry),
and charts the ones operators need: decisions, rule results, latency, errors, reloads, dry runs, break-glass."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from admission import metrics

DASHBOARD = Path(__file__).resolve().parent.parent / "deploy" / "grafana-dashboard.json"

FUNCTIONS_AND_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool", "and", "or", "unless",
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "quantile", "stddev", "stdvar", "count_values",
    "rate", "irate", "increase", "delta", "idelta", "histogram_quantile", "label_values", "abs", "clamp_min",
    "clamp_max", "absent", "vector", "scalar", "time", "sort", "sort_desc", "round", "ceil", "floor", "le",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers left once strings, label matchers, ranges,
    grouping clauses, function names, keywords and numbers are taken out."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors ([5m], [$__rate_interval])
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # grouping labels
    text = re.sub(r"\$\w+", " ", text)  # dashboard variables
    text = re.sub(r"label_values\(\s*([^,()]+?)\s*,\s*\w+\s*\)", r"\1", text)  # Grafana's: (metric, label)
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = m.group()
        following = text[m.end():].lstrip()
        if word in FUNCTIONS_AND_KEYWORDS or following.startswith("("):  # a function call
            continue
        names.add(word)
    return names


def test_metric_names_are_parsed_from_promql():
    assert metric_names('sum by (le, endpoint) (rate(a_b_bucket{job=~"x", c!="d"}[$__rate_interval]))') == {"a_b_bucket"}
    assert metric_names("topk(10, sum by (policy) (rate(x_total[5m]))) / ignoring(code) y") == {"x_total", "y"}
    assert metric_names("label_values(admission_requests_total, job)") == {"admission_requests_total"}
    assert metric_names("sum(admision_reviews_total)") == {"admision_reviews_total"}  # a typo is a name too...
    assert "admision_reviews_total" not in exported()  # ...that the registry does not have


def exported() -> set[str]:
    """Every series name the server's registry can export (counters as _total, histograms' _bucket/_count/_sum)."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
    names = set()
    for family in REGISTRY.collect():
        if family.name.startswith("admission_"):
            names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def queries(doc: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    exprs += [v["query"] for v in doc["templating"]["list"] if v.get("type") == "query"]
    return exprs


def test_every_queried_metric_exists():
    assert metrics.REVIEWS is not None  # the registry holds admission.metrics' collectors
    doc = json.loads(DASHBOARD.read_text())
    known = exported()
    unknown = {(name, expr) for expr in queries(doc) for name in metric_names(expr)
               if name not in known}
    assert unknown == set()


@pytest.mark.parametrize("metric", [
    "admission_reviews_total", "admission_rule_results_total", "admission_request_duration_seconds_bucket",
    "admission_requests_total", "admission_deadline_exceeded_total", "admission_policy_reloads_total",
    "admission_dry_run_reviews_total", "admission_break_glass_active", "admission_break_glass_overrides_total",
])
def test_the_dashboard_charts(metric):
    doc = json.loads(DASHBOARD.read_text())
    assert any(metric in metric_names(expr) for expr in queries(doc))


def test_panels_do_not_overlap_and_use_the_datasource_variable():
    doc = json.loads(DASHBOARD.read_text())
    cells: set[tuple[int, int]] = set()
    for p in doc["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, p["title"]
        cells |= mine
        assert p["datasource"]["uid"] == "${datasource}" and p["targets"]
