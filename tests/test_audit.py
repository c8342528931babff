"""`admission audit` over a fake cluster: the same engine and reports as lint, objects listed from the API."""

from __future__ import annotations

import io
import json

import pytest

from admission.audit import DEFAULT_KINDS, ClusterError, parse_kind, run

TEAM_NP = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": {"name": "all", "namespace": "team"}, "spec": {"podSelector": {}}}


def deployment(name: str, image: str) -> dict:
    container = {"name": "app", "image": image,
                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "team"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}}


def owned_pod(name: str, image: str) -> dict:
    # The API's list items carry no apiVersion/kind; audit fills them in from what it listed.
    return {"metadata": {"name": name, "namespace": "team", "labels": {"app": name},
                         "ownerReferences": [{"kind": "ReplicaSet", "name": "x", "controller": True}]},
            "spec": {"containers": [{"name": "app", "image": image}]}}


class FakeCluster:
    def __init__(self, objects: dict[tuple[str, str], list[dict]]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, str, str]] = []

    def __call__(self, api_version: str, kind: str, namespace: str) -> list[dict]:
        self.calls.append((api_version, kind, namespace))
        items = self.objects.get((api_version, kind), [])
        return [o for o in items if not namespace or (o.get("metadata") or {}).get("namespace") == namespace]


def cluster() -> FakeCluster:
    return FakeCluster({
        ("apps/v1", "Deployment"): [deployment("good", "registry.example.com/app:1.0"), deployment("bad", "nginx")],
        ("v1", "Pod"): [owned_pod("bad-abc", "nginx")],
        ("networking.k8s.io/v1", "NetworkPolicy"): [TEAM_NP],
    })


def audit(fmt: str = "json", **kw) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run([], fmt, out, err=err, lister=kw.pop("lister", None) or cluster(), **kw)
    return code, out.getvalue(), err.getvalue()


def test_reports_violations_of_running_workloads_once_at_their_controller():
    code, out, _ = audit()
    assert code == 1
    found = json.loads(out)["findings"]
    denied = {(f["kind"], f["name"]) for f in found if f["enforced"]}
    assert denied == {("Deployment", "bad")}
    assert not any(f["kind"] == "Pod" for f in found)  # owned by a ReplicaSet: reported at the Deployment
    assert all(f["file"] == "cluster" for f in found)
    assert any(f["policy"] == "disallow-public-registries" for f in found)


def test_listed_network_policies_are_the_cluster_state():
    _, out, _ = audit()
    assert not any(f["policy"] == "require-network-policy" for f in json.loads(out)["findings"])


def test_include_owned_reports_pods_too():
    _, out, _ = audit(include_owned=True)
    assert any(f["kind"] == "Pod" and f["name"] == "bad-abc" for f in json.loads(out)["findings"])


def test_text_report_names_the_cluster_instead_of_a_line():
    code, out, _ = audit("text")
    assert code == 1
    assert "cluster: Deployment team/bad: deny [disallow-public-registries" in out


def test_namespace_and_kinds_narrow_what_is_listed():
    fake = cluster()
    audit(lister=fake, kinds=["apps/v1/Deployment", "pod"], namespace="team")
    assert fake.calls == [("apps/v1", "Deployment", "team"), ("v1", "Pod", "team")]


def test_default_kinds_list_namespaces_cluster_wide():
    fake = cluster()
    audit(lister=fake, namespace="team")
    assert ("v1", "Namespace", "") in fake.calls
    assert len(fake.calls) == len(DEFAULT_KINDS)


def test_unknown_kind_and_unreachable_cluster_are_usage_errors():
    code, _, err = audit(kinds=["Gizmo"])
    assert code == 2 and "apiVersion/Kind" in err

    def unreachable(api_version: str, kind: str, namespace: str) -> list[dict]:
        raise ClusterError("cannot list v1/Namespace: connection refused")

    code, _, err = audit(lister=unreachable)
    assert code == 2 and "connection refused" in err


@pytest.mark.parametrize(("text", "expected"), [
    ("apps/v1/Deployment", ("apps/v1", "Deployment")),
    ("v1/Pod", ("v1", "Pod")),
    ("cronjob", ("batch/v1", "CronJob")),
])
def test_parse_kind(text, expected):
    assert parse_kind(text) == expected


@pytest.fixture
def kube_client_imported():
    """The Kubernetes client reads KUBECONFIG into its default once, when first imported: import it
    before a test points KUBECONFIG elsewhere, so that later tests see the real default."""
    import kubernetes.config  # noqa: F401


def test_an_unreachable_api_server_is_one_line_and_exit_2(tmp_path, monkeypatch, kube_client_imported):
    """Through the real Kubernetes client: a kubeconfig naming a port nothing listens on."""
    import socket

    with socket.socket() as s:  # a free port, closed again: connections to it are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(f"""
apiVersion: v1
kind: Config
clusters: [{{name: c, cluster: {{server: "https://127.0.0.1:{port}", insecure-skip-tls-verify: true}}}}]
users: [{{name: u, user: {{token: t}}}}]
contexts: [{{name: x, context: {{cluster: c, user: u}}}}]
current-context: x
""")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    out, err = io.StringIO(), io.StringIO()
    assert run([], "text", out, err=err) == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in err.getvalue() and out.getvalue() == ""


def test_no_kubeconfig_is_one_line_and_exit_2(tmp_path, monkeypatch, kube_client_imported):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    err = io.StringIO()
    assert run([], "text", io.StringIO(), err=err) == 2
    assert len(err.getvalue().splitlines()) == 1
