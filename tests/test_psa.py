"""Namespace-label Pod Security with exceptions: who, why, until when."""

from __future__ import annotations

import datetime as dt

import pytest

from admission.decide import decide
from admission.engines import Context, PolicyError
from admission.engines.psa import PodSecurityAdmission, parse_exception
from admission.manifests import load_text
from admission.results import Status
from admission.review import Request
from admission.state import ClusterState, unavailable

NOW = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)


def namespace(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def host_pod(name: str = "agent", ns: str = "team") -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {"hostNetwork": True, "containers": [{"name": "c", "image": "example.com/agent:1"}]},
    }


def deployment(pod: dict) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": pod["metadata"]["name"], "namespace": pod["metadata"]["namespace"]},
        "spec": {"template": {"metadata": {"labels": pod["metadata"]["labels"]}, "spec": pod["spec"]}},
    }


def exception(expires: str = "2027-01-31", controls: str = "[hostNamespaces]", extra: str = "") -> PodSecurityAdmission:
    text = f"""\
apiVersion: admission.dev/v1
kind: PodSecurityException
metadata: {{name: agent-host-network, namespace: team}}
spec:
  match: {{kinds: [Pod, Deployment], names: ["agent*"]}}
  controls: {controls}
  owner: team-observability
  reason: the agent reads node metrics over the host network
  expires: "{expires}"
{extra}"""
    return PodSecurityAdmission([parse_exception(d) for d in load_text(text, "exc.yaml")], now=lambda: NOW)


def results(psa: PodSecurityAdmission, obj: dict, *labels_ns: dict) -> list:
    return psa.validate(Request.for_object(obj), Context(state=ClusterState(list(labels_ns))))


ENFORCE = namespace("team", **{"pod-security.kubernetes.io/enforce": "baseline"})


def test_enforce_label_denies_a_violating_pod_with_the_upstream_fragment():
    rs = results(PodSecurityAdmission(), host_pod(), ENFORCE)
    d = decide(rs)
    assert not d.allowed
    assert "host namespaces" in d.message and 'baseline:latest' in d.message


def test_unlabelled_or_unknown_namespace_does_nothing():
    assert results(PodSecurityAdmission(), host_pod(), namespace("team")) == []
    assert results(PodSecurityAdmission(), host_pod()) == []
    psa = PodSecurityAdmission()
    assert psa.validate(Request.for_object(host_pod()), Context(state=unavailable("no cluster"))) == []


def test_warn_mode_warns_and_workloads_are_warned_not_enforced():
    ns = namespace("team", **{"pod-security.kubernetes.io/enforce": "baseline",
                              "pod-security.kubernetes.io/warn": "baseline"})
    d = decide(results(PodSecurityAdmission(), deployment(host_pod()), ns))
    assert d.allowed
    assert any("host namespaces" in w for w in d.warnings)


def test_audit_mode_is_neither_denial_nor_warning():
    ns = namespace("team", **{"pod-security.kubernetes.io/audit": "restricted"})
    rs = results(PodSecurityAdmission(), host_pod(), ns)
    assert rs and all(r.status == Status.FAIL for r in rs)
    d = decide(rs)
    assert d.allowed and d.warnings == []


def test_valid_exception_exempts_its_controls_only():
    assert decide(results(exception(), host_pod(), ENFORCE)).allowed
    privileged = host_pod()
    privileged["spec"]["containers"][0]["securityContext"] = {"privileged": True}
    d = decide(results(exception(), privileged, ENFORCE))
    assert not d.allowed and "privileged" in d.message and "host namespaces" not in d.message


def test_exception_does_not_cover_other_names_or_namespaces():
    assert not decide(results(exception(), host_pod("web"), ENFORCE)).allowed
    other = namespace("other", **{"pod-security.kubernetes.io/enforce": "baseline"})
    assert not decide(results(exception(), host_pod("agent", "other"), other)).allowed


def test_expired_exception_stops_applying_and_is_reported():
    d = decide(results(exception(expires="2026-11-01"), host_pod(), ENFORCE))
    assert not d.allowed
    assert any("expired" in w and "team-observability" in w for w in d.warnings)


def test_date_only_expiry_holds_through_that_day():
    assert decide(results(exception(expires="2026-11-29"), host_pod(), ENFORCE)).allowed


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("spec: {controls: ['*'], reason: r, expires: '2027-01-01'}", "spec.owner is required"),
        ("spec: {controls: ['*'], owner: o, expires: '2027-01-01'}", "spec.reason is required"),
        ("spec: {controls: ['*'], owner: o, reason: r}", "spec.expires is required"),
        ("spec: {controls: ['*'], owner: o, reason: r, expires: soon}", "not an RFC 3339"),
        ("spec: {owner: o, reason: r, expires: '2027-01-01'}", "spec.controls"),
    ],
)
def test_exceptions_must_say_who_why_and_until_when(body, fragment):
    text = f"apiVersion: admission.dev/v1\nkind: PodSecurityException\nmetadata: {{name: x}}\n{body}\n"
    with pytest.raises(PolicyError, match=fragment) as info:
        parse_exception(load_text(text, "e.yaml")[0])
    assert info.value.source == "e.yaml:1"


def test_workload_in_enforce_only_namespace_is_warned_as_upstream_does():
    # Upstream: an unset warn level follows a stricter enforce level, so workloads get warnings.
    d = decide(results(PodSecurityAdmission(), deployment(host_pod()), ENFORCE))
    assert d.allowed
    assert any('violates PodSecurity "baseline:latest"' in w for w in d.warnings)


def test_pod_denied_by_enforce_is_not_warned_twice():
    d = decide(results(PodSecurityAdmission(), host_pod(), ENFORCE))
    assert not d.allowed and d.warnings == []


def test_invalid_namespace_label_is_reported_and_enforce_fails_closed():
    ns = namespace("team", **{"pod-security.kubernetes.io/enforce": "strict"})
    d = decide(results(PodSecurityAdmission(), host_pod(), ns))
    assert not d.allowed and "restricted" in d.message
    assert any("invalid value 'strict'" in w for w in d.warnings)


# --- a namespace the cache does not hold (yet) ---------------------------------------------------------------


class Fetcher:
    def __init__(self, *namespaces: dict, error: str = "") -> None:
        self.namespaces = {n["metadata"]["name"]: n for n in namespaces}
        self.error = error
        self.calls: list[str] = []

    def __call__(self, name: str) -> dict | None:
        from admission.state import StateUnavailable

        self.calls.append(name)
        if self.error:
            raise StateUnavailable(self.error)
        return self.namespaces.get(name)


def test_a_namespace_missing_from_the_cache_is_fetched_not_skipped():
    fetch = Fetcher(ENFORCE)
    state = ClusterState([namespace("other")], fetch_namespace=fetch)  # the watch has not seen `team` yet
    psa = PodSecurityAdmission()
    first = decide(psa.validate(Request.for_object(host_pod()), Context(state=state)))
    assert not first.allowed and "host namespaces" in first.message
    assert decide(psa.validate(Request.for_object(host_pod()), Context(state=state))).allowed is False
    assert fetch.calls == ["team"]  # fetched once, then held


def test_a_cache_not_synced_yet_fetches_too():
    fetch = Fetcher(ENFORCE)
    state = ClusterState(available=False, reason="not synced yet", fetch_namespace=fetch)
    assert not decide(PodSecurityAdmission().validate(Request.for_object(host_pod()), Context(state=state))).allowed


def test_a_namespace_that_does_not_exist_has_no_labels():
    state = ClusterState(fetch_namespace=Fetcher())
    assert PodSecurityAdmission().validate(Request.for_object(host_pod()), Context(state=state)) == []


def test_a_namespace_that_cannot_be_read_fails_closed():
    state = ClusterState(fetch_namespace=Fetcher(error="cannot read namespace team: 503 Service Unavailable"))
    rs = PodSecurityAdmission().validate(Request.for_object(host_pod()), Context(state=state))
    assert [(r.rule, r.status) for r in rs] == [("labels", Status.ERROR)]
    d = decide(rs)
    assert not d.allowed
    assert "cannot read the Pod Security labels of namespace team" in d.message and "503" in d.message
