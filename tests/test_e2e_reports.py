"""`admission audit --write-reports` against a real kube-apiserver: the CRDs of deploy/crds install (their
schemas are structural), reports are written per namespace, rewriting unchanged findings changes nothing,
and a namespace's report follows what is in it until it is deleted.

Runs when ADMISSION_E2E_KUBECONFIG names the kubeconfig of a disposable API server (../shared/apiserver's
up.sh writes one); skipped otherwise. Objects live in a namespace of their own, removed at the end.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from admission import policyreport
from admission.audit import kube_api, run
from tests.e2e import e2e_kubeconfig

CRDS = Path(__file__).resolve().parent.parent / "deploy" / "crds"


def _kubeconfig() -> str:
    path = e2e_kubeconfig()
    return path


@pytest.fixture(scope="module")
def api() -> Any:
    client = kube_api(_kubeconfig())
    install_crds(client)
    return client


def install_crds(api: Any) -> None:
    crds = api.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    names = []
    for path in sorted(CRDS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        api.server_side_apply(crds, body=doc, field_manager="admission-e2e", force_conflicts=True)
        names.append(doc["metadata"]["name"])
    deadline = time.monotonic() + 60
    for name in names:
        while True:
            conditions = {c["type"]: c["status"] for c in
                          (crds.get(name=name).to_dict().get("status") or {}).get("conditions") or []}
            assert conditions.get("NonStructuralSchema") != "True", f"{name}: schema is not structural"
            if conditions.get("Established") == "True":
                break
            assert time.monotonic() < deadline, f"{name} not established: {conditions}"
            time.sleep(0.2)


@pytest.fixture
def namespace(api: Any) -> Iterator[str]:
    name = f"e2e-reports-{uuid.uuid4().hex[:8]}"
    namespaces = api.resources.get(api_version="v1", kind="Namespace")
    namespaces.create(body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    try:
        yield name
    finally:
        deployments = api.resources.get(api_version="apps/v1", kind="Deployment")
        for item in deployments.get(namespace=name).to_dict().get("items") or []:
            deployments.delete(name=item["metadata"]["name"], namespace=name)
        for form in policyreport.FORMATS.values():
            reports = api.resources.get(api_version=form.api_version, kind=form.kind)
            for item in reports.get(namespace=name).to_dict().get("items") or []:
                reports.delete(name=item["metadata"]["name"], namespace=name)
        namespaces.delete(name=name)  # stays Terminating on an API server without a controller-manager


def deployment(name: str, image: str) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "app", "image": image}]}}}}


def audit(api: Any, namespace: str, fmt: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    code = run([], "json", out, err=err, namespace=namespace, write=True, report_format=fmt, api=api)
    assert code in (0, 1), err.getvalue()
    return err.getvalue()


def stored(api: Any, namespace: str, fmt: str) -> dict[str, Any] | None:
    form = policyreport.FORMATS[fmt]
    reports = api.resources.get(api_version=form.api_version, kind=form.kind)
    items = reports.get(namespace=namespace).to_dict().get("items") or []
    assert len(items) <= 1, "one report per namespace"
    return items[0] if items else None


@pytest.mark.parametrize("fmt", sorted(policyreport.FORMATS))
def test_reports_follow_the_namespace(api: Any, namespace: str, fmt: str) -> None:
    deployments = api.resources.get(api_version="apps/v1", kind="Deployment")
    deployments.create(body=deployment("bad", "nginx"), namespace=namespace)
    deployments.create(body=deployment("latest", "registry.example.com/app:latest"), namespace=namespace)

    assert "1 written" in audit(api, namespace, fmt)
    report = stored(api, namespace, fmt)
    assert report is not None
    assert report["metadata"]["name"] == policyreport.REPORT_NAME
    managers = {m["manager"] for m in report["metadata"].get("managedFields") or []}
    assert managers == {policyreport.FIELD_MANAGER}
    failing = {(r["resources"][0]["name"], r["policy"]) for r in report["results"] if r["result"] == "fail"}
    assert ("bad", "disallow-public-registries") in failing
    assert ("latest", "disallow-latest-tag") in failing
    assert ("latest", "disallow-public-registries") not in failing
    assert report["summary"]["fail"] == sum(r["result"] == "fail" for r in report["results"])
    assert all(r["source"] == "admission" and r["timestamp"]["seconds"] > 0 for r in report["results"])

    # the same findings again: server-side apply changes nothing, not even the resourceVersion
    assert "0 written, 1 unchanged" in audit(api, namespace, fmt)
    assert stored(api, namespace, fmt)["metadata"]["resourceVersion"] == report["metadata"]["resourceVersion"]

    deployments.delete(name="bad", namespace=namespace)
    audit(api, namespace, fmt)
    report = stored(api, namespace, fmt)
    assert report is not None
    assert {r["resources"][0]["name"] for r in report["results"]} == {"latest"}

    deployments.delete(name="latest", namespace=namespace)
    assert "1 stale deleted" in audit(api, namespace, fmt)
    assert stored(api, namespace, fmt) is None


def test_the_summary_stays_exact_when_results_are_capped(api: Any, namespace: str) -> None:
    deployments = api.resources.get(api_version="apps/v1", kind="Deployment")
    for i in range(4):
        deployments.create(body=deployment(f"bad-{i}", "nginx"), namespace=namespace)
    out, err = io.StringIO(), io.StringIO()
    run([], "json", out, err=err, namespace=namespace, write=True, max_results=3, api=api)
    report = stored(api, namespace, "wgpolicyk8s")
    assert report is not None
    assert len(report["results"]) == 3
    assert all(r["result"] == "fail" for r in report["results"])
    assert report["summary"]["fail"] >= 8  # at least two enforced rules fail per Deployment
    assert policyreport.TRUNCATED_ANNOTATION in report["metadata"]["annotations"]
