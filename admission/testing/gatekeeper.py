"""Run a Gatekeeper `Suite` (test.gatekeeper.sh/v1alpha1, the `gator verify` format): one result per case.

Each test names a template and a constraint file; each case an object (a resource, or an AdmissionReview
whose request is reviewed), optional inventory files, and assertions: `violations` is yes, no or an exact
count (YAML 1.1 reads yes/no as booleans), with an optional `message` regex a violation's msg must match.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from admission.engine import Engine, Phase
from admission.engines import Context, PolicyError
from admission.engines.rego.evaluator import RegoEvaluator
from admission.engines.rego.gatekeeper import ConstraintSet
from admission.engines.rego.modules import ModuleSet
from admission.manifests import Document, ManifestError, load_file
from admission.results import RuleResult, Status
from admission.review import Kind, Request
from admission.state import ClusterState
from admission.testing import CaseResult, engine_notes
from admission.types import Object


def run_suite(path: Path, doc: dict[str, Any]) -> list[CaseResult]:
    results: list[CaseResult] = []
    base = path.parent
    for test in doc.get("tests") or []:
        tname = str(test.get("name") or "test")
        cases = test.get("cases") or []
        try:
            engine = _engine(base, test)
        except (PolicyError, ManifestError, OSError) as exc:
            for case in cases:
                results.append(CaseResult(str(path), f"{tname}/{case.get('name')}", False, f"cannot load: {exc}"))
            continue
        notes = engine_notes(engine.policies())  # compiled or regopy, per template (admission test -v)
        for case in cases:
            results.append(replace(_run_case(path, base, tname, case, engine), engines=notes))
    return results


def _documents(base: Path, test: dict[str, Any]) -> list[Document]:
    docs: list[Document] = []
    for key in ("template", "constraint"):
        file = test.get(key)
        if not file:
            raise PolicyError(str(base), f"test {test.get('name')!r} names no {key}")
        docs.extend(load_file(base / str(file)))
    return docs


def _compile(base: Path, test: dict[str, Any]) -> ConstraintSet:
    return ConstraintSet.from_documents(_documents(base, test))


def _engine(base: Path, test: dict[str, Any]) -> Engine:
    """The test's engine: its template's Rego or CEL code, as the engine choice (`--engine`) picks it."""
    from admission.engines.cel.gatekeeper_cel import GatekeeperCelEvaluator, split

    rego, cel = split(_documents(base, test))
    if not cel:
        return engine_for(ConstraintSet.from_documents(rego))
    evaluators: list[Any] = [GatekeeperCelEvaluator.from_documents(cel)]
    if any(d for d in rego if isinstance(d.obj, dict) and d.obj.get("kind")):
        evaluators.insert(0, RegoEvaluator(ConstraintSet.from_documents(rego), ModuleSet([])))
    return Engine(evaluators)


def engine_for(cset: ConstraintSet) -> Engine:
    """An Engine over a test's constraints: cases go through the pipeline `serve` and `lint` run."""
    return Engine([RegoEvaluator(cset, ModuleSet([]))])


def request_for(obj: Object) -> Request:
    """The request a case object stands for: an AdmissionReview's request, or a CREATE of the resource."""
    if obj.get("kind") == "AdmissionReview" and isinstance(obj.get("request"), dict):
        req = obj["request"]
        new, old = req.get("object"), req.get("oldObject")
        kind = req.get("kind")
        user = req.get("userInfo")
        return Request.for_object(
            new if isinstance(new, dict) else None,
            operation=str(req.get("operation") or "CREATE"),
            old_object=old if isinstance(old, dict) else None,
            user_info=user if isinstance(user, dict) else None,
            namespace=str(req["namespace"]) if req.get("namespace") else None,
            uid=str(req.get("uid") or "suite"),
            kind=Kind(str(kind.get("group") or ""), str(kind.get("version") or ""), str(kind.get("kind") or ""))
            if isinstance(kind, dict) and kind else None,
            name=str(req["name"]) if req.get("name") else None,
            sub_resource=str(req.get("subResource") or ""),
            resource=req["resource"] if isinstance(req.get("resource"), dict) else {},
            dry_run=bool(req.get("dryRun")),
            options=req.get("options"),
        )
    return Request.for_object(obj)


def _run_case(path: Path, base: Path, tname: str, case: dict[str, Any], engine: Engine) -> CaseResult:
    name = f"{tname}/{case.get('name')}"
    try:
        objects = [d.obj for d in load_file(base / str(case.get("object")))]
        inventory: list[Object] = []
        for f in case.get("inventory") or []:
            inventory.extend(d.obj for d in load_file(base / str(f)) if isinstance(d.obj, dict))
    except (ManifestError, OSError) as exc:
        return CaseResult(str(path), name, False, f"cannot load case files: {exc}")
    if not objects or not isinstance(objects[0], dict):
        return CaseResult(str(path), name, False, "the case object file holds no object")
    # the inventory is the cluster state: data.inventory, and the labels of the namespaces it holds
    outcome = engine.review(request_for(objects[0]), Context(state=ClusterState(inventory)), Phase.ALL)
    errors = [r for r in outcome.results if r.status == Status.ERROR]
    if errors:
        return CaseResult(str(path), name, False, "; ".join(f"[{e.policy}] {e.message}" for e in errors))
    violations = [r for r in outcome.validate_results if r.status == Status.FAIL]
    problems = [p for a in case.get("assertions") or [{}] if (p := check_assertion(a, violations))]
    if problems:
        got = [v.message for v in violations]
        return CaseResult(str(path), name, False, f"{'; '.join(problems)}; got {len(got)} violation(s): {got}")
    return CaseResult(str(path), name, True)


def check_assertion(assertion: dict[str, Any], violations: list[RuleResult]) -> str:
    """Why the assertion does not hold, or "" when it does."""
    expected = assertion.get("violations", "yes")
    pattern = assertion.get("message")
    try:
        matching = [v for v in violations if pattern is None or re.search(str(pattern), v.message)]
    except re.error as exc:
        return f"invalid message regex {pattern!r}: {exc}"
    count = len(matching)
    about = f" matching {pattern!r}" if pattern is not None else ""
    if expected is True or (isinstance(expected, str) and expected.lower() == "yes"):
        return "" if count >= 1 else f"expected violations{about}, got none"
    if expected is False or (isinstance(expected, str) and expected.lower() == "no"):
        return "" if count == 0 else f"expected no violations{about}, got {count}"
    try:
        n = int(expected)
    except (TypeError, ValueError):
        return f"violations must be yes, no or a count, not {expected!r}"
    return "" if count == n else f"expected {n} violation(s){about}, got {count}"
