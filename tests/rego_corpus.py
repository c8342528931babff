"""Rego modules to test the parser and printer on: the Gatekeeper library's templates (targets[].rego/libs and
code[].source.rego/libs), OPA's evaluation cases (modules, queries, input terms) and our own policies/."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO.parent / "shared" / "conformance"
GATEKEEPER = CONFORMANCE / "gatekeeper-library" / "library"
OPA_CASES = CONFORMANCE / "opa-cases" / "v1"


@dataclass(frozen=True)
class Source:
    name: str  # file and where in it
    text: str


def template_sources(path: Path) -> Iterator[Source]:
    """Every Rego text of a ConstraintTemplate file."""
    for n, doc in enumerate(yaml.safe_load_all(path.read_text(encoding="utf-8"))):
        if not isinstance(doc, dict) or doc.get("kind") != "ConstraintTemplate":
            continue
        for t, target in enumerate((doc.get("spec") or {}).get("targets") or []):
            where = f"{path}#{n}.targets[{t}]"
            if target.get("rego"):
                yield Source(f"{where}.rego", target["rego"])
            for i, lib in enumerate(target.get("libs") or []):
                yield Source(f"{where}.libs[{i}]", lib)
            for c, code in enumerate(target.get("code") or []):
                source = code.get("source") or {}
                if code.get("engine") != "Rego":
                    continue
                if source.get("rego"):
                    yield Source(f"{where}.code[{c}].rego", source["rego"])
                for i, lib in enumerate(source.get("libs") or []):
                    yield Source(f"{where}.code[{c}].libs[{i}]", lib)


@functools.cache
def gatekeeper_modules() -> tuple[Source, ...]:
    """Every Rego module of the library's templates (read once: property tests draw from it per example)."""
    if not GATEKEEPER.is_dir():
        return ()
    out: list[Source] = []
    for path in sorted(GATEKEEPER.rglob("template.yaml")):
        out.extend(template_sources(path))
    return tuple(out)


def policy_modules() -> list[Source]:
    out: list[Source] = []
    for path in sorted((REPO / "policies").rglob("*.yaml")):
        out.extend(template_sources(path))
    for path in sorted(REPO.glob("policies/**/*.rego")) + sorted(REPO.glob("tests/fixtures/**/*.rego")):
        out.append(Source(str(path), path.read_text(encoding="utf-8")))
    return out


@dataclass(frozen=True)
class OpaCase:
    file: Path
    note: str
    modules: tuple[str, ...]
    query: str
    input_term: str | None
    case: dict[str, Any]


def opa_cases() -> list[OpaCase]:
    if not OPA_CASES.is_dir():
        return []
    out: list[OpaCase] = []
    for path in sorted(OPA_CASES.rglob("*.json")):
        for case in json.loads(path.read_text(encoding="utf-8")).get("cases") or []:
            out.append(OpaCase(path, case.get("note", ""), tuple(case.get("modules") or ()), case.get("query", ""), case.get("input_term"), case))
    return out
