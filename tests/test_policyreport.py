"""Audit results as policy reports: building them (per namespace, capped, exact summaries, stable timestamps),
writing them through a store (idempotent, stale ones deleted), `-o policyreport`, and the CRDs in deploy/crds."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from admission import policyreport
from admission.audit import Written, run, write_reports
from admission.lint import Evaluation, Resource
from admission.results import Action, RuleResult, Status

from .test_audit import cluster, deployment

CRDS = Path(__file__).resolve().parent.parent / "deploy" / "crds"
T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def pod(name: str, namespace: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "uid": f"u-{name}"}}


def ev(obj: dict, *results: RuleResult) -> Evaluation:
    return Evaluation(Resource(obj, "cluster", 0), list(results))


def test_one_report_per_namespace_and_one_for_cluster_scoped_objects():
    evaluations = [
        ev(pod("a", "team"), RuleResult("p", "r", Status.FAIL, "bad")),
        ev(pod("b", "other"), RuleResult("p", "r", Status.PASS)),
        ev({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}, RuleResult("q", "", Status.WARN, "w")),
    ]
    reports = policyreport.build(evaluations, [], now=T0)
    assert [(r["kind"], r["metadata"].get("namespace", "")) for r in reports] == [
        ("ClusterPolicyReport", ""), ("PolicyReport", "other"), ("PolicyReport", "team")]
    team = reports[2]
    assert team["apiVersion"] == "wgpolicyk8s.io/v1alpha2"
    assert team["metadata"]["name"] == policyreport.REPORT_NAME
    assert team["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "admission"}
    assert team["summary"] == {"pass": 0, "fail": 1, "warn": 0, "error": 0, "skip": 0}
    (result,) = team["results"]
    assert result["policy"] == "p" and result["rule"] == "r" and result["result"] == "fail"
    assert result["source"] == "admission" and result["message"] == "bad"
    assert result["timestamp"] == {"seconds": int(T0.timestamp()), "nanos": 0}
    assert result["resources"] == [{"apiVersion": "v1", "kind": "Pod", "name": "a", "namespace": "team", "uid": "u-a"}]
    assert result["properties"] == {"action": "Enforce"}
    assert reports[0]["results"][0]["rule"] == "q"  # a rule-less result (a constraint) is named by its policy


def test_openreports_format():
    reports = policyreport.build([ev(pod("a", "team"), RuleResult("p", "r", Status.ERROR, "boom"))], [],
                                 "openreports", now=T0, max_results=7)
    (report,) = reports
    assert (report["apiVersion"], report["kind"]) == ("openreports.io/v1alpha1", "Report")
    assert report["source"] == "admission"
    assert report["configuration"] == {"limits": {"maxResults": 7}}
    assert report["results"][0]["message"] == "error evaluating policy: boom"
    cluster_report = policyreport.build([ev({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}},
                                            RuleResult("p", "r", Status.PASS))], [], "openreports", now=T0)
    assert cluster_report[0]["kind"] == "ClusterReport"


def test_severity_category_and_action_come_from_the_policy():
    from admission.engines import PolicyInfo

    infos = [PolicyInfo("p", "kyverno", "x:1", category="Pod security", severity="High"),
             PolicyInfo("q", "kyverno", "x:2", severity="bogus")]
    (report,) = policyreport.build([ev(pod("a", "t"), RuleResult("p", "r", Status.FAIL, "m", action=Action.AUDIT,
                                                                 path="/spec/x"),
                                       RuleResult("q", "r", Status.FAIL, "m"))], infos, now=T0)
    p, q = sorted(report["results"], key=lambda r: r["policy"])
    assert p["category"] == "Pod security" and p["severity"] == "high"
    assert p["properties"] == {"action": "Audit", "path": "/spec/x"}
    assert "severity" not in q  # the CRD's enum would refuse it


def test_reports_are_capped_worst_first_with_an_exact_summary():
    results = ([RuleResult("p", f"pass{i}", Status.PASS) for i in range(50)]
               + [RuleResult("p", f"warn{i}", Status.WARN, "w") for i in range(5)]
               + [RuleResult("p", f"fail{i}", Status.FAIL, "x" * 5000) for i in range(3)]
               + [RuleResult("p", "err", Status.ERROR, "e")])
    (report,) = policyreport.build([ev(pod("a", "team"), *results)], [], now=T0, max_results=10)
    assert report["summary"] == {"pass": 50, "fail": 3, "warn": 5, "error": 1, "skip": 0}
    kept = [r["result"] for r in report["results"]]
    assert kept == ["fail"] * 3 + ["error"] + ["warn"] * 5 + ["pass"]
    assert report["metadata"]["annotations"][policyreport.TRUNCATED_ANNOTATION].startswith("10 of 59 results kept")
    assert all(len(r.get("message", "")) <= policyreport.MAX_MESSAGE for r in report["results"])


def test_the_largest_report_stays_well_under_the_etcd_object_limit():
    results = [RuleResult("p" * 63, f"rule-{i}", Status.FAIL, "m" * 10_000, path="/spec/" + "x" * 1000)
               for i in range(3 * policyreport.MAX_RESULTS)]
    name = "n" * 253
    (report,) = policyreport.build([ev(pod(name, "t" * 63), *results)], [], now=T0)
    size = len(json.dumps(report).encode())
    assert size < 1.5 * 1024 * 1024  # etcd's request limit
    kept = len(report["results"])
    assert 0 < kept < policyreport.MAX_RESULTS  # bound by bytes here, not by count
    assert report["metadata"]["annotations"][policyreport.TRUNCATED_ANNOTATION].startswith(f"{kept} of 3000")
    assert report["summary"]["fail"] == 3000


def test_unchanged_results_keep_their_timestamp():
    first = policyreport.build([ev(pod("a", "team"), RuleResult("p", "r", Status.FAIL, "bad"))], [], now=T0)
    later = T0 + dt.timedelta(hours=1)
    again = policyreport.build([ev(pod("a", "team"), RuleResult("p", "r", Status.FAIL, "bad"),
                                   RuleResult("p", "s", Status.FAIL, "new"))],
                               [], now=later, previous={"team": first[0]})
    stamps = {r["rule"]: r["timestamp"]["seconds"] for r in again[0]["results"]}
    assert stamps == {"r": int(T0.timestamp()), "s": int(later.timestamp())}


class MemoryStore:
    """A ReportStore over a dict, with resourceVersions bumped only when the content changes (as the API
    server does for a server-side apply that changes nothing)."""

    def __init__(self) -> None:
        self.reports: dict[str, dict[str, Any]] = {}
        self.version = 0

    def existing(self) -> dict[str, dict[str, Any]]:
        return {ns: dict(r) for ns, r in self.reports.items()}

    def apply(self, doc: dict[str, Any]) -> str:
        ns = doc["metadata"].get("namespace", "")
        old = self.reports.get(ns)
        content = {k: v for k, v in doc.items() if k != "metadata"}
        if old is not None and {k: v for k, v in old.items() if k != "metadata"} == content:
            return old["metadata"]["resourceVersion"]
        self.version += 1
        self.reports[ns] = {**doc, "metadata": {**doc["metadata"], "resourceVersion": str(self.version)}}
        return str(self.version)

    def delete(self, namespace: str) -> None:
        del self.reports[namespace]


def audit(store: MemoryStore, fake=None, **kw: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run([], kw.pop("fmt", "json"), out, err=err, lister=fake or cluster(), write=True, store=store, **kw)
    return code, out.getvalue(), err.getvalue()


def test_audit_writes_reports_idempotently_and_replaces_stale_ones():
    store = MemoryStore()
    code, _, err = audit(store)
    assert code == 1
    assert set(store.reports) == {"team"}
    team = store.reports["team"]
    denied = {r["resources"][0]["name"] for r in team["results"]
              if r["result"] == "fail" and r["properties"]["action"] == "Enforce"}
    assert denied == {"bad"}
    assert "1 written, 0 unchanged, 0 stale deleted" in err

    _, _, err = audit(store)  # the same cluster again: nothing changes
    assert "0 written, 1 unchanged, 0 stale deleted" in err
    assert store.reports["team"]["metadata"]["resourceVersion"] == team["metadata"]["resourceVersion"]

    store.reports["gone"] = {**team, "metadata": {**team["metadata"], "namespace": "gone"}}  # a namespace emptied
    fake = cluster()
    fake.objects[("apps/v1", "Deployment")] = [deployment("good", "registry.example.com/app:1.0")]
    code, _, err = audit(store, fake)
    assert code == 0
    assert set(store.reports) == {"team"}
    assert not any(r["resources"][0]["name"] == "bad" for r in store.reports["team"]["results"])
    assert "1 written, 0 unchanged, 1 stale deleted" in err


def test_a_namespaced_audit_touches_only_that_namespace():
    store = MemoryStore()
    store.reports["other"] = {"metadata": {"namespace": "other", "resourceVersion": "9"}}
    store.reports[""] = {"metadata": {"resourceVersion": "8"}}
    audit(store, namespace="team")
    assert set(store.reports) == {"", "other", "team"}
    assert store.reports[""]["metadata"]["resourceVersion"] == "8"


def test_write_reports_counts():
    store = MemoryStore()
    reports = policyreport.build([ev(pod("a", "x"), RuleResult("p", "r", Status.PASS))], [], now=T0)
    assert write_reports(store, reports, {}) == Written(1, 0, 0)
    assert write_reports(store, reports, store.existing()) == Written(0, 1, 0)


def test_print_policyreports_without_a_cluster():
    out, err = io.StringIO(), io.StringIO()
    code = run([], "policyreport", out, err=err, lister=cluster(), report_format="openreports")
    assert code == 1
    docs = list(yaml.safe_load_all(out.getvalue()))
    assert [(d["kind"], d["metadata"]["namespace"]) for d in docs] == [("Report", "team")]
    assert docs[0]["summary"]["fail"] >= 1


def test_progress_is_reported_per_resource():
    seen: list[tuple[int, int]] = []
    out = io.StringIO()
    run([], "json", out, err=io.StringIO(), lister=cluster(), progress=lambda done, total: seen.append((done, total)))
    total = seen[0][1]
    assert seen[0] == (0, total) and seen[-1] == (total, total) and total >= 2


# --- the CRDs -------------------------------------------------------------------------------------------------


def crd(kind: str) -> dict[str, Any]:
    for path in CRDS.glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        if doc["spec"]["names"]["kind"] == kind:
            return doc
    raise AssertionError(f"no CRD for {kind} in deploy/crds")


def conforms(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Problems of value against a structural schema (type, enum, required, properties, items)."""
    kind = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool}
    if kind and not isinstance(value, types[kind]) or (kind == "integer" and isinstance(value, bool)):
        return [f"{where}: {value!r} is not {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    problems = []
    if isinstance(value, dict):
        problems += [f"{where}.{k}: required" for k in schema.get("required", []) if k not in value]
        props = schema.get("properties")
        for k, v in value.items():
            if props is not None and k in props:
                problems += conforms(v, props[k], f"{where}.{k}")
            elif "additionalProperties" in schema:
                problems += conforms(v, schema["additionalProperties"], f"{where}.{k}")
            elif props is not None and where != ".metadata":
                problems.append(f"{where}.{k}: not in the schema (would be pruned)")
    if isinstance(value, list):
        for i, item in enumerate(value):
            problems += conforms(item, schema.get("items", {}), f"{where}[{i}]")
    return problems


@pytest.mark.parametrize("fmt", sorted(policyreport.FORMATS))
def test_reports_conform_to_the_crds(fmt):
    form = policyreport.FORMATS[fmt]
    evaluations = [ev(pod("a", "team"), RuleResult("p", "r", Status.FAIL, "m", path="/x"),
                      RuleResult("p", "s", Status.ERROR, "e"), RuleResult("p", "t", Status.WARN, "w"),
                      RuleResult("p", "u", Status.PASS), RuleResult("p", "v", Status.SKIP)),
                   ev({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}},
                      RuleResult("p", "r", Status.PASS))]
    from admission.engines import PolicyInfo

    for report in policyreport.build(evaluations, [PolicyInfo("p", "k", "", severity="medium", category="c")],
                                     fmt, now=T0, max_results=3):
        doc = crd(report["kind"])
        assert doc["spec"]["group"] == form.api_version.split("/")[0]
        (version,) = doc["spec"]["versions"]
        assert version["name"] == form.api_version.split("/")[1]
        assert doc["spec"]["scope"] == ("Namespaced" if report["kind"] == form.kind else "Cluster")
        assert conforms(report, version["schema"]["openAPIV3Schema"]) == []


def test_every_crd_is_structural():
    """Every node of the schema has a type (what the API server requires of a structural schema)."""

    def untyped(schema: dict[str, Any], where: str) -> list[str]:
        out = [] if "type" in schema else [where]
        for k, v in (schema.get("properties") or {}).items():
            out += untyped(v, f"{where}.{k}")
        if isinstance(schema.get("items"), dict):
            out += untyped(schema["items"], f"{where}[]")
        if isinstance(schema.get("additionalProperties"), dict):
            out += untyped(schema["additionalProperties"], f"{where}{{}}")
        return out

    files = sorted(CRDS.glob("*.yaml"))
    assert len(files) == 4
    for path in files:
        doc = yaml.safe_load(path.read_text())
        assert untyped(doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"], path.name) == []
