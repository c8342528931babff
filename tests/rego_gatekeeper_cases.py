"""The Gatekeeper library's suites as plain (modules, input, data) evaluations, for the compiler's tests and
bench: each case of each suite with its template's Rego (parsed), the input `{review, parameters}` and
`data.inventory`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from admission.engines.rego import ast
from admission.engines.rego.inventory import inventory_of
from admission.engines.rego.parser import parse_module
from admission.regex import compile_regex

LIBRARY = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "gatekeeper-library"
TARGET = "admission.k8s.gatekeeper.sh"


@dataclass
class Template:
    name: str
    file: str
    sources: list[str]  # the Rego, then its libs
    modules: list[ast.Module]

    @property
    def package(self) -> str:
        return ".".join(str(s.value) for s in self.modules[0].package.path.path if isinstance(s, ast.Scalar))


@dataclass
class Case:
    name: str
    template: Template
    input: dict[str, Any]
    data: dict[str, Any]
    assertions: list[dict[str, Any]]

    def check(self, messages: list[str]) -> str:
        """'' when the violation messages meet the suite's assertions, else what fails."""
        for a in self.assertions:
            want = a.get("violations", "yes")
            pattern = a.get("message")
            found = [m for m in messages if pattern is None or compile_regex(str(pattern)).search(m)]
            if want is True or want == "yes":
                ok = bool(found)
            elif want is False or want == "no":
                ok = not found
            else:
                ok = len(found) == int(want)
            if not ok:
                return f"assertion {a} fails for {messages}"
        return ""


def _load(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def template_sources(obj: dict[str, Any]) -> list[str]:
    for target in obj["spec"].get("targets") or []:
        if target.get("target", TARGET) != TARGET:
            continue
        if target.get("rego"):
            return [target["rego"], *(target.get("libs") or [])]
        for code in target.get("code") or []:
            if code.get("engine") == "Rego":
                src = code["source"]
                return [src["rego"], *(src.get("libs") or [])]
    return []


def load_template(path: Path) -> Template | None:
    obj = _load(path)[0]
    sources = template_sources(obj)
    if not sources:
        return None
    modules = [parse_module(src, file=f"{path}#{i}") for i, src in enumerate(sources)]
    return Template(obj["metadata"]["name"], str(path), sources, modules)


def review_of(obj: dict[str, Any]) -> dict[str, Any]:
    """input.review for an object file: an AdmissionReview's request, or a CREATE of the object."""
    if obj.get("kind") == "AdmissionReview":
        return dict(obj.get("request") or {})
    api = str(obj.get("apiVersion", ""))
    group, _, version = api.rpartition("/")
    meta = obj.get("metadata") or {}
    review: dict[str, Any] = {
        "kind": {"group": group, "version": version, "kind": obj.get("kind", "")},
        "object": obj,
        "operation": "CREATE",
        "name": meta.get("name", ""),
        "userInfo": {"username": "admin"},
    }
    if meta.get("namespace"):
        review["namespace"] = meta["namespace"]
    return review


def library_cases() -> list[Case]:
    out: list[Case] = []
    templates: dict[str, Template | None] = {}
    for suite_file in sorted(LIBRARY.rglob("suite.yaml")):
        suite = _load(suite_file)[0]
        base = suite_file.parent
        for test in suite.get("tests") or []:
            tpath = base / test["template"]
            key = str(tpath)
            if key not in templates:
                templates[key] = load_template(tpath)
            template = templates[key]
            if template is None:
                continue
            constraint = _load(base / test["constraint"])[0]
            params = (constraint.get("spec") or {}).get("parameters") or {}
            for case in test.get("cases") or []:
                objs = _load(base / case["object"])
                if not objs:
                    continue
                inventory: list[Any] = []
                for inv in case.get("inventory") or []:
                    inventory.extend(_load(base / inv))
                data = {"inventory": inventory_of(inventory)}
                inp = {"review": review_of(objs[0]), "parameters": params}
                out.append(Case(f"{test['name']}/{case['name']}", template, inp, data, case.get("assertions") or [{}]))
    return out
