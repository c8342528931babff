"""Structured logs: JSON lines, and one decision line with who, what and why."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from admission import logs
from admission.decide import decide
from admission.results import Action, RuleResult, Status
from admission.review import Request
from tests.conftest import pod


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    out = io.StringIO()
    monkeypatch.setattr(logs, "decision_stream", out)
    before = logs.decision_log.level
    logs.decision_log.setLevel(logging.INFO)
    yield out
    logs.decision_log.setLevel(before)


def test_decision_line_names_the_request_and_the_failing_rules(captured: io.StringIO) -> None:
    request = Request.for_object(pod(name="api", namespace="shop"), user_info={"username": "bob"}, uid="u-1")
    decision = decide([
        RuleResult("no-latest", "check", Status.FAIL, "bad tag"),
        RuleResult("labels", "team", Status.FAIL, "no team", Action.AUDIT),
        RuleResult("limits", "mem", Status.PASS),
    ])
    logs.log_decision("validate", request, decision, 1.23456)
    lines = captured.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["msg"] == "decision" and entry["level"] == "info" and entry["logger"] == "admission.decision"
    assert {k: entry[k] for k in ("uid", "kind", "namespace", "name", "operation", "user", "decision")} == {
        "uid": "u-1", "kind": "Pod", "namespace": "shop", "name": "api", "operation": "CREATE", "user": "bob",
        "decision": "denied"}
    assert entry["failing"] == ["no-latest/check"] and entry["warnings"] == 1 and entry["duration_ms"] == 1.235
    assert "patch_ops" not in entry


def test_decision_lines_can_be_turned_off(captured: io.StringIO) -> None:
    logs.decision_log.setLevel(logging.WARNING)
    logs.log_decision("mutate", Request.for_object(pod()), decide([]), 0.5, patch_ops=0)
    assert captured.getvalue() == ""


def test_json_formatter_keeps_a_traceback_on_one_line() -> None:
    formatter = logs.JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("admission.server", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info())
    record.fields = {"uid": "u-2"}
    text = formatter.format(record)
    assert "\n" not in text
    doc = json.loads(text)
    assert doc["msg"] == "failed x" and doc["level"] == "error" and doc["uid"] == "u-2"
    assert "ValueError: boom" in doc["exception"]


def test_decision_time_is_utc_iso_with_milliseconds(captured: io.StringIO) -> None:
    import datetime as dt
    import re

    before = dt.datetime.now(dt.UTC)
    logs.log_decision("validate", Request.for_object(pod()), decide([]), 0.1)
    stamp = json.loads(captured.getvalue())["time"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", stamp)
    assert abs((dt.datetime.fromisoformat(stamp) - before).total_seconds()) < 2


def test_long_request_fields_are_truncated_with_a_marker(captured: io.StringIO) -> None:
    obj = pod(name="n" * 100_000, namespace="s" * 5000)
    request = Request.for_object(obj, user_info={"username": "u" * 1_000_000}, uid="x" * 1_000_000)
    failing = [RuleResult(f"policy-{i}", "r" * 1000, Status.FAIL, "no") for i in range(200)]
    logs.log_decision("validate", request, decide(failing), 1.0)
    line = captured.getvalue()
    assert len(line) < 64 * 1024  # bounded, whatever the request holds
    entry = json.loads(line)
    for key in ("uid", "name", "namespace", "user"):
        assert entry[key].endswith(logs.TRUNCATED)
        assert len(entry[key]) == logs.MAX_FIELD_CHARS + len(logs.TRUNCATED)
    assert entry["uid"].startswith("x" * logs.MAX_FIELD_CHARS)
    assert len(entry["failing"]) == logs.MAX_FAILING and entry["failing"][-1] == "151 more"


def test_short_fields_are_kept_whole(captured: io.StringIO) -> None:
    name = "n" * logs.MAX_FIELD_CHARS
    logs.log_decision("validate", Request.for_object(pod(name=name)), decide([]), 1.0)
    assert json.loads(captured.getvalue())["name"] == name


def test_a_generate_name_that_is_not_text_is_logged_as_text(captured: io.StringIO) -> None:
    obj = pod()
    obj["metadata"] = {"generateName": ["web-"] * 1000}
    logs.log_decision("validate", Request.for_object(obj), decide([]), 1.0)
    assert json.loads(captured.getvalue())["name"].endswith(logs.TRUNCATED)


def test_decision_line_says_whether_the_request_was_a_dry_run(captured: io.StringIO) -> None:
    denied = decide([RuleResult("no-latest", "check", Status.FAIL, "bad tag")])
    logs.log_decision("validate", Request.for_object(pod(), dry_run=True), denied, 1.0)
    logs.log_decision("validate", Request.for_object(pod()), denied, 1.0)
    first, second = (json.loads(line) for line in captured.getvalue().splitlines())
    assert first["dryRun"] is True and first["decision"] == "denied"
    assert second["dryRun"] is False
