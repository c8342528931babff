"""CEL expressions to test the parser and printer on, found by walking YAML documents for the fields that hold
CEL: `expression`, `messageExpression` and `valueExpression` (ValidatingAdmissionPolicy,
MutatingAdmissionPolicy, Kyverno's CEL kinds and ClusterPolicy `validate.cel`/`celPreconditions`, Gatekeeper's
K8sNativeValidation code). Sources: the conformance suites kyverno-policies-cel, kyverno-cli and
gatekeeper-library, and our own policies/ and tests/."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO.parent / "shared" / "conformance"
SUITES = ("kyverno-policies-cel", "kyverno-cli", "gatekeeper-library")
CEL_FIELDS = frozenset({"expression", "messageExpression", "valueExpression"})


@dataclass(frozen=True)
class Source:
    name: str  # file and where in it
    text: str


def _walk(value: Any, where: str) -> Iterator[Source]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k in CEL_FIELDS and isinstance(v, str) and v.strip():
                yield Source(f"{where}.{k}", v)
            else:
                yield from _walk(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, f"{where}[{i}]")


def _is_cel_document(doc: Any) -> bool:
    """A Kubernetes-style document (it has a kind): in these suites, the only ones whose `expression` fields
    hold anything, and then CEL."""
    return isinstance(doc, dict) and isinstance(doc.get("kind"), str)


def file_expressions(path: Path) -> Iterator[Source]:
    try:
        docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError):
        return
    for n, doc in enumerate(docs):
        if _is_cel_document(doc):
            yield from _walk(doc, f"{path}#{n}")


def _yaml_files(root: Path) -> list[Path]:
    return sorted(p for ext in ("*.yaml", "*.yml") for p in root.rglob(ext) if ".venv" not in p.parts)


@cache
def conformance_expressions() -> tuple[Source, ...]:
    """Every CEL expression of the conformance suites (empty when they are not checked out)."""
    out: list[Source] = []
    for suite in SUITES:
        if (CONFORMANCE / suite).is_dir():
            for path in _yaml_files(CONFORMANCE / suite):
                out.extend(file_expressions(path))
    return tuple(out)


@cache
def own_expressions() -> tuple[Source, ...]:
    """Every CEL expression of our policies/ and tests/ YAML."""
    return tuple(s for root in (REPO / "policies", REPO / "tests") for p in _yaml_files(root)
                 for s in file_expressions(p))
