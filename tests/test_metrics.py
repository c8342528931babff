"""Prometheus metrics: what is counted, and that several worker processes add up in multiprocess mode."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from admission import metrics
from admission.results import Action, RuleResult, Status

REPO = Path(__file__).resolve().parents[1]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture(autouse=True)
def single_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(metrics.MULTIPROC_ENV, raising=False)


def test_decisions_are_counted_by_policy_rule_and_result() -> None:
    metrics.flush()
    before_fail = sample("admission_rule_results_total", policy="m-pol", rule="r1", result="fail")
    before_pass = sample("admission_rule_results_total", policy="m-pol", rule="r2", result="pass")
    before_denied = sample("admission_reviews_total", endpoint="validate", decision="denied")
    metrics.record_decision("validate", False, [
        RuleResult("m-pol", "r1", Status.FAIL, "no", Action.ENFORCE),
        RuleResult("m-pol", "r2", Status.PASS),
    ])
    metrics.record_decision("validate", True, [RuleResult("m-pol", "r2", Status.PASS)])
    assert sample("admission_reviews_total", endpoint="validate", decision="denied") == before_denied + 1
    assert sample("admission_rule_results_total", policy="m-pol", rule="r2", result="pass") == before_pass  # tallied
    metrics.flush()
    assert sample("admission_rule_results_total", policy="m-pol", rule="r1", result="fail") == before_fail + 1
    assert sample("admission_rule_results_total", policy="m-pol", rule="r2", result="pass") == before_pass + 2
    metrics.flush()  # nothing new: no change
    assert sample("admission_rule_results_total", policy="m-pol", rule="r1", result="fail") == before_fail + 1


def test_requests_and_latency_by_endpoint_and_code() -> None:
    before = sample("admission_requests_total", endpoint="mutate", code="413")
    count_before = sample("admission_request_duration_seconds_count", endpoint="mutate")
    fast_before = sample("admission_request_duration_seconds_bucket", endpoint="mutate", le="0.001")
    metrics.record_request("mutate", 413, 0.0004)
    metrics.record_request("mutate", 413, 0.2)
    assert sample("admission_requests_total", endpoint="mutate", code="413") == before + 2
    assert sample("admission_request_duration_seconds_count", endpoint="mutate") == count_before + 2
    assert sample("admission_request_duration_seconds_bucket", endpoint="mutate", le="0.001") == fast_before + 1


def test_render_is_prometheus_text() -> None:
    metrics.record_request("validate", 200, 0.001)
    metrics.record_decision("validate", True, [RuleResult("render-pol", "r", Status.WARN)])
    data, content_type = metrics.render()
    text = data.decode()
    assert content_type.startswith("text/plain")
    assert "# TYPE admission_requests_total counter" in text
    assert "# TYPE admission_request_duration_seconds histogram" in text
    assert 'admission_rule_results_total{policy="render-pol",result="warn",rule="r"} 1.0' in text  # flushed


WORKER = textwrap.dedent("""
    from admission import metrics
    from admission.results import RuleResult, Status
    metrics.record_request("validate", 200, 0.002)
    metrics.record_decision("validate", True, [RuleResult("p", "r", Status.PASS)])
    metrics.flush()  # as the server does every second and at shutdown
""")

RENDER = textwrap.dedent("""
    from admission import metrics
    print(metrics.render()[0].decode())
""")


def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path) -> None:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path), "PYTHONPATH": str(REPO)}
    for _ in range(2):  # two "workers", each its own process
        subprocess.run([sys.executable, "-c", WORKER], env=env, check=True, timeout=60)
    out = subprocess.run([sys.executable, "-c", RENDER], env=env, check=True, timeout=60,
                         capture_output=True, text=True).stdout
    assert 'admission_requests_total{code="200",endpoint="validate"} 2.0' in out
    assert 'admission_rule_results_total{policy="p",result="pass",rule="r"} 2.0' in out
    assert 'admission_request_duration_seconds_count{endpoint="validate"} 2.0' in out


def test_dry_run_decisions_are_counted_apart() -> None:
    before_real = sample("admission_reviews_total", endpoint="validate", decision="denied")
    before_dry = sample("admission_dry_run_reviews_total", endpoint="validate", decision="denied")
    failing = [RuleResult("dry-pol", "r", Status.FAIL, "no", Action.ENFORCE)]
    metrics.record_decision("validate", False, failing, dry_run=True)
    metrics.record_decision("validate", False, failing, dry_run=True)
    metrics.record_decision("validate", False, failing)
    assert sample("admission_dry_run_reviews_total", endpoint="validate", decision="denied") == before_dry + 2
    assert sample("admission_reviews_total", endpoint="validate", decision="denied") == before_real + 1
