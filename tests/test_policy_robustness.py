"""Malformed policies are the user's to fix, never a crash: every node of the built-in Kyverno policies is
replaced by a value of the wrong type, and loading must either succeed or raise PolicyError with the
file and line; whatever loads must evaluate to results, never reach the engine's crash handler."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from admission.engine import Engine
from admission.engines import Context, PolicyError
from admission.engines.yaml import KyvernoEvaluator
from admission.manifests import Document, load_file
from admission.review import Request
from tests.conftest import REPO, pod

POLICIES = sorted((REPO / "policies").glob("*/policy.yaml"))
WRONG = (5, "x", None, {"k": 1})


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix + (i,)
            yield from paths(v, prefix + (i,))


def replaced(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def deployment() -> dict[str, Any]:
    p = pod("web", "team", image="nginx")
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "team"},
            "spec": {"template": {"metadata": p["metadata"], "spec": p["spec"]}}}


@pytest.mark.parametrize("policy_file", POLICIES, ids=lambda p: Path(p).parent.name)
def test_wrongly_typed_nodes_are_policy_errors_not_crashes(policy_file: Path) -> None:
    doc = load_file(policy_file)[0]
    requests = [Request.for_object(pod("web", "team", image="nginx")), Request.for_object(deployment())]
    loaded = rejected = 0
    for path in paths(doc.obj):
        if path[0] in ("apiVersion", "kind"):
            continue  # then it is not a Kyverno policy at all, and policyset never hands it over
        for value in WRONG:
            bad = Document(replaced(doc.obj, path, value), doc.file, doc.line)
            try:
                evaluator = KyvernoEvaluator.from_documents([bad])
            except PolicyError as exc:
                assert exc.source.startswith(f"{doc.file}:"), exc
                rejected += 1
                continue
            loaded += 1
            engine = Engine([evaluator])
            mutates = any(p.mutates for p in engine.policies())
            for request in requests:
                results = engine.results(request, Context())
                if mutates:
                    results += engine.mutate(request, Context()).decision.results
                for r in results:
                    assert not r.message.startswith("internal error"), (path, value, r)
    assert rejected > 0 and loaded > 0


GATEKEEPER = sorted(p for p in (REPO / "policies" / "gatekeeper").iterdir() if p.is_dir())


@pytest.mark.parametrize("folder", GATEKEEPER, ids=lambda p: Path(p).name)
def test_wrongly_typed_gatekeeper_documents_are_policy_errors(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from admission.engines.rego.gatekeeper import ConstraintSet

    # Parsing is what meets the malformed shapes; compiling the Rego is regopy's part, tested elsewhere.
    monkeypatch.setattr(ConstraintSet, "compile", classmethod(lambda cls, templates, constraints, **kw: None))
    docs = [load_file(folder / "template.yaml")[0]]
    docs += [d for f in sorted(folder.glob("constraint*.yaml")) for d in load_file(f)]
    rejected = 0
    for index, doc in enumerate(docs):
        for path in paths(doc.obj):
            if path[0] in ("apiVersion", "kind"):
                continue  # then it is not a Gatekeeper document, and policyset never hands it over
            for value in WRONG:
                variant = [Document(replaced(d.obj, path, value), d.file, d.line) if i == index else d
                           for i, d in enumerate(docs)]
                try:
                    ConstraintSet.from_documents(variant, isolate=False)
                except PolicyError as exc:
                    # a broken template may surface as its constraint's error: either names its file
                    assert exc.source.split(":")[0] in {d.file for d in docs}, exc
                    rejected += 1
    assert rejected > 0
