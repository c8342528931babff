"""Renderers for `admission lint` results: text, JSON, SARIF 2.1.0 and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

from admission.decide import line
from admission.results import RuleResult, Status

if TYPE_CHECKING:
    from admission.engine import Engine
    from admission.lint import Evaluation, Finding

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def level(f: Finding) -> str:
    """`deny` for what would block the request, `warn` for what would only be reported."""
    return "deny" if f.enforced else "warn"


def rule_id(r: RuleResult) -> str:
    return f"{r.policy}/{r.rule}" if r.rule else r.policy


def summary(evaluations: list[Evaluation], found: list[Finding]) -> dict[str, int]:
    return {
        "resources": len(evaluations),
        "findings": len(found),
        "denied": sum(f.enforced for f in found),
        "warnings": sum(not f.enforced for f in found),
        "errors": sum(f.result.status == Status.ERROR for f in found),
    }


def text(out: TextIO, evaluations: list[Evaluation], found: list[Finding], engine: Engine) -> None:
    for f in found:
        res = f.resource
        where = f"{res.file}:{res.line}" if res.line else res.file  # `audit` has no lines: "cluster"
        out.write(f"{where}: {res.label}: {level(f)} {line(f.result)}\n")
    s = summary(evaluations, found)
    out.write(
        f"{_count(s['resources'], 'resource')} checked, {_count(s['findings'], 'finding')}: "
        f"{s['denied']} would be denied, {_count(s['warnings'], 'warning')}\n"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def finding_dict(f: Finding) -> dict[str, Any]:
    res, r = f.resource, f.result
    return {
        "file": res.file,
        "line": res.line,
        "kind": res.kind,
        "namespace": res.namespace,
        "name": res.name,
        "policy": r.policy,
        "rule": r.rule,
        "action": r.action.value,
        "result": r.status.value,
        "enforced": f.enforced,
        "message": r.message,
    }


def as_json(out: TextIO, evaluations: list[Evaluation], found: list[Finding], engine: Engine) -> None:
    doc = {"findings": [finding_dict(f) for f in found], "summary": summary(evaluations, found)}
    json.dump(doc, out, indent=2)
    out.write("\n")


def artifact_uri(file: str) -> str:
    """A SARIF artifact URI: relative paths stay relative (resolved against the run's working folder)."""
    if file == "<stdin>":
        return "stdin"
    p = PurePath(file)
    if p.is_absolute():
        return "file://" + quote(p.as_posix())
    return quote(p.as_posix())


def sarif(out: TextIO, evaluations: list[Evaluation], found: list[Finding], engine: Engine) -> None:
    rule_ids: dict[str, int] = {}
    rules: list[dict[str, Any]] = []

    def index(rid: str, policy: str) -> int:
        if rid not in rule_ids:
            rule_ids[rid] = len(rules)
            rules.append({"id": rid, "name": rid, "properties": {"policy": policy}})
        return rule_ids[rid]

    for info in engine.policies():
        for name in info.rules:
            index(f"{info.name}/{name}", info.name)
    results = []
    for f in found:
        rid = rule_id(f.result)
        res = f.resource
        results.append({
            "ruleId": rid,
            "ruleIndex": index(rid, f.result.policy),
            "level": "error" if f.enforced else "warning",
            "message": {"text": f"{res.label}: {line(f.result)}"},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(res.file)},
                    "region": {"startLine": max(res.line, 1)},
                },
                "logicalLocations": [{
                    "name": res.name,
                    "fullyQualifiedName": f"{res.kind}/{res.namespace}/{res.name}" if res.namespace
                    else f"{res.kind}/{res.name}",
                    "kind": "resource",
                }],
            }],
            "properties": {"action": f.result.action.value, "result": f.result.status.value},
        })
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "admission", "version": _version(), "rules": rules}},
            "results": results,
        }],
    }
    json.dump(doc, out, indent=2)
    out.write("\n")


def junit(out: TextIO, evaluations: list[Evaluation], found: list[Finding], engine: Engine) -> None:
    """One testcase per resource and rule evaluated; a fail is a <failure>, an error an <error>."""
    suites = ET.Element("testsuites", name="admission lint")
    by_file: dict[str, list[Evaluation]] = {}
    for e in evaluations:
        by_file.setdefault(e.resource.file, []).append(e)
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for file, evs in by_file.items():
        suite = ET.SubElement(suites, "testsuite", name=file)
        counts = {"tests": 0, "failures": 0, "errors": 0}
        for e in evs:
            for r in e.results:
                if r.status == Status.SKIP:
                    continue
                counts["tests"] += 1
                case = ET.SubElement(
                    suite, "testcase", classname=f"{file}:{e.resource.line} {e.resource.label}",
                    name=rule_id(r), file=file, line=str(e.resource.line),
                )
                if r.status == Status.FAIL:
                    counts["failures"] += 1
                    failure = ET.SubElement(case, "failure", message=r.message or "rule failed", type=r.action.value)
                    failure.text = line(r)
                elif r.status == Status.ERROR:
                    counts["errors"] += 1
                    error = ET.SubElement(case, "error", message=r.message or "error", type="error")
                    error.text = line(r)
                elif r.status == Status.WARN:
                    ET.SubElement(case, "system-out").text = line(r)
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        suites.set(k, str(v))
    ET.indent(suites)
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.write(ET.tostring(suites, encoding="unicode"))
    out.write("\n")


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("admission")
    except Exception:  # not installed (running from a checkout)
        return "0.0.0"


Renderer = Callable[[TextIO, "list[Evaluation]", "list[Finding]", "Engine"], None]

FORMATS: dict[str, Renderer] = {"text": text, "json": as_json, "sarif": sarif, "junit": junit}
