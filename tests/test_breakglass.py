"""Break-glass: the ConfigMap switch, its checks (owner, reason, expiry), and the server answering denials as
warnings while it is on, logged loudly and counted; dry-run requests counted apart."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from admission import logs
from admission.breakglass import NAME, BreakGlassError, Switch, parse
from admission.decide import Decision, break_glass
from admission.server import Settings, create_app
from admission.state import ClusterState
from tests.conftest import admission_review, pod

NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)


def configmap(namespace: str = "admission", **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME, "namespace": namespace},
            "data": data}


ON = {"enabled": "true", "owner": "oncall-alice", "reason": "INC-1 registry outage", "expires": "2026-12-06T06:00:00Z"}


def test_parse_on_off_and_date_only_expiry():
    glass = parse(configmap(**ON))
    assert glass is not None and glass.owner == "oncall-alice" and glass.source == "admission/admission-break-glass"
    assert glass.expires == dt.datetime(2026, 12, 6, 6, tzinfo=dt.UTC)
    assert parse(configmap(**{**ON, "enabled": "false"})) is None
    assert parse(configmap()) is None
    through = parse(configmap(**{**ON, "expires": "2026-12-05"}))
    assert through is not None and not through.expired(dt.datetime(2026, 12, 5, 23, 59, tzinfo=dt.UTC))
    assert through.expired(dt.datetime(2026, 12, 6, tzinfo=dt.UTC))


@pytest.mark.parametrize("change, fragment", [
    ({"owner": ""}, "data.owner is required"),
    ({"reason": " "}, "data.reason is required"),
    ({"expires": ""}, "data.expires is required"),
    ({"expires": "next tuesday"}, "not an RFC 3339"),
    ({"enabled": "yes"}, 'data.enabled must be "true" or "false"'),
])
def test_owner_reason_and_expiry_are_required(change, fragment):
    with pytest.raises(BreakGlassError, match=fragment):
        parse(configmap(**{**ON, **change}))


def test_switch_logs_each_change_once_and_ignores_expired_or_invalid(caplog):
    state = ClusterState()
    now = [NOW]
    changes: list[bool] = []
    switch = Switch(lambda: state.get("ConfigMap", NAME, namespace="admission"), now=lambda: now[0],
                    on_change=changes.append)
    caplog.set_level(logging.INFO, logger="admission.breakglass")
    assert switch.current() is None and caplog.records == []
    state.put(configmap(**ON))
    assert switch.current() is not None and switch.current() is not None
    assert [r.getMessage() for r in caplog.records] == [
        "BREAK-GLASS ON: every denial is answered as a warning until it expires or is turned off"]
    assert caplog.records[0].fields["breakGlassOwner"] == "oncall-alice"
    now[0] = dt.datetime(2026, 12, 6, 6, tzinfo=dt.UTC)  # the moment it expires
    assert switch.current() is None
    assert "expired and is ignored" in caplog.records[-1].getMessage()
    state.put(configmap(**{**ON, "owner": ""}))
    assert switch.current() is None
    assert caplog.records[-1].levelno == logging.ERROR and "data.owner is required" in caplog.records[-1].getMessage()
    assert changes == [True, False]


def test_an_unreadable_switch_is_off():
    def broken() -> None:
        raise RuntimeError("watch not synced")

    assert Switch(broken).current() is None


def test_break_glass_turns_each_denial_into_a_warning():
    denied = Decision(False, "[a/r] no\n[b] nope", ["[c/w] careful"])
    out = break_glass(denied, "break-glass by x")
    assert out.allowed and out.message == ""
    assert out.warnings == ["[break-glass] would deny: [a/r] no (break-glass by x)",
                            "[break-glass] would deny: [b] nope (break-glass by x)", "[c/w] careful"]
    allowed = Decision(True)
    assert break_glass(allowed, "x") is allowed


# --- the server --------------------------------------------------------------------------------------------


def _fake() -> Any:
    path = Path(__file__).resolve().parent / "fixtures" / "server" / "fake_server.py"
    spec = importlib.util.spec_from_file_location("breakglass_fake_server", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


fake = _fake()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def post(app: Any, *bodies: dict[str, Any], path: str = "/validate") -> list[dict[str, Any]]:
    async def scenario() -> list[dict[str, Any]]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            return [(await c.post(path, json=b)).json()["response"] for b in bodies]

    return asyncio.run(scenario())


def get(app: Any, path: str) -> httpx.Response:
    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            return await c.get(path)

    return asyncio.run(scenario())


@pytest.fixture
def decisions(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    out = io.StringIO()
    monkeypatch.setattr(logs, "decision_stream", out)
    level = logs.decision_log.level
    logs.decision_log.setLevel(logging.INFO)
    yield out
    logs.decision_log.setLevel(level)


def test_the_server_answers_denials_as_warnings_while_the_switch_is_on(caplog, decisions):
    state = ClusterState()
    app = create_app(Settings(namespace="admission"), engine=fake.engine({"name": "no-latest", "denyImage": ":latest"}),
                     state=state)
    bad = admission_review(pod(name="api", namespace="shop", image="nginx:latest"))
    assert post(app, bad)[0]["allowed"] is False

    before = sample("admission_break_glass_overrides_total", endpoint="validate")
    state.put(configmap(**{**ON, "expires": "2999-01-01"}))
    state.put(configmap("elsewhere", **{**ON, "owner": "not-in-the-server-namespace"}))
    caplog.set_level(logging.WARNING)
    answer, again = post(app, bad, bad)
    assert answer["allowed"] is True and "status" not in answer
    assert answer["warnings"][0].startswith(
        "[break-glass] would deny: [no-latest/check] image nginx:latest is not allowed (break-glass by oncall-alice")
    assert again["allowed"] is True
    loud = [r for r in caplog.records if r.getMessage() == "BREAK-GLASS: allowed a request the policies deny"]
    assert len(loud) == 2  # at every decision it changes
    assert loud[0].levelno == logging.WARNING
    assert {k: loud[0].fields[k] for k in ("kind", "namespace", "name", "breakGlassOwner", "denied")} == {
        "kind": "Pod", "namespace": "shop", "name": "api", "breakGlassOwner": "oncall-alice",
        "denied": ["no-latest/check"]}
    assert sample("admission_break_glass_overrides_total", endpoint="validate") == before + 2
    assert "admission_break_glass_active 1.0" in get(app, "/metrics").text
    assert get(app, "/readyz").json()["breakGlass"].startswith("break-glass by oncall-alice")
    good = admission_review(pod(image="registry.example.com/app:1"))
    assert post(app, good)[0].get("warnings") is None  # an allowed request is left alone

    state.put(configmap(**{**ON, "expires": "2001-01-01"}))  # expired: ignored, enforcement is back
    assert post(app, bad)[0]["allowed"] is False
    assert any("expired and is ignored" in r.getMessage() for r in caplog.records)
    assert "admission_break_glass_active 0.0" in get(app, "/metrics").text
    state.remove(configmap())
    assert post(app, bad)[0]["allowed"] is False
    assert get(app, "/readyz").json()["breakGlass"] == "off"
    lines = [json.loads(line) for line in decisions.getvalue().splitlines()]
    assert [line["decision"] for line in lines] == ["denied", "allowed", "allowed", "allowed", "denied", "denied"]


def test_the_switch_is_read_from_state_manifests(tmp_path):
    manifest = tmp_path / "state.yaml"
    manifest.write_text(json.dumps(configmap("ops", **{**ON, "expires": "2999-01-01"})))
    from admission.server import static_state

    app = create_app(Settings(namespace="ops"), engine=fake.engine({"name": "no-latest", "denyImage": ":latest"}),
                     state=static_state([str(manifest)]))
    assert post(app, admission_review(pod(image="nginx:latest")))[0]["allowed"] is True


def test_dry_run_denials_are_counted_apart_and_logged(decisions):
    app = create_app(Settings(), engine=fake.engine({"name": "no-latest", "denyImage": ":latest"}),
                     state=ClusterState())
    dry = admission_review(pod(image="nginx:latest"))
    dry["request"]["dryRun"] = True
    before_dry = sample("admission_dry_run_reviews_total", endpoint="validate", decision="denied")
    before = sample("admission_reviews_total", endpoint="validate", decision="denied")
    assert post(app, dry)[0]["allowed"] is False
    assert sample("admission_dry_run_reviews_total", endpoint="validate", decision="denied") == before_dry + 1
    assert sample("admission_reviews_total", endpoint="validate", decision="denied") == before
    (line,) = [json.loads(x) for x in decisions.getvalue().splitlines()]
    assert line["dryRun"] is True and line["decision"] == "denied"
