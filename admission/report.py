"""Renderers for `admission lint` results: text, JSON, SARIF 2.1.0 and JUnit XML."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
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
    """How reports name a rule: `policy/rule`, or the policy alone (constraints, Rego modules)."""
    return r.source


def _id(policy: str, rule: str) -> str:
    return RuleResult(policy, rule, Status.PASS).source


def summary(evaluations: list[Evaluation], found: list[Finding]) -> dict[str, int]:
    return {
        "resources": len(evaluations),
        "findings": len(found),
        "denied": sum(f.enforced for f in found),
        "warnings": sum(not f.enforced for f in found),
        "errors": sum(f.result.status == Status.ERROR for f in found),
    }


def text(out: TextIO, evaluations: list[Evaluation], found: list[Finding], engine: Engine,
         notes: Sequence[str] = ()) -> None:
    for f in found:
        res = f.resource
        where = f"{res.file}:{res.line}" if res.line else res.file  # `audit` has no lines: "cluster"
        out.write(f"{where}: {res.label}: {level(f)} {line(f.result)}\n")
    for note in notes:
        out.write(f"{note}\n")
    s = summary(evaluations, found)
    skipped = f", {_count(len(notes), 'document')} skipped" if notes else ""
    out.write(
        f"{_count(s['resources'], 'resource')} checked, {_count(s['findings'], 'finding')}: "
        f"{s['denied']} would be denied, {_count(s['warnings'], 'warning')}{skipped}\n"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def finding_dict(f: Finding) -> dict[str, Any]:
    res, r = f.resource, f.result
    out = {
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
    if r.path:
        out["path"] = r.path
    if f.region is not None:
        out["region"] = {"line": f.region[0], "column": f.region[1]}
    return out


def as_json(out: TextIO, evaluations: list[Evaluation], found: list[Finding], engine: Engine,
            notes: Sequence[str] = ()) -> None:
    doc = {"findings": [finding_dict(f) for f in found], "summary": summary(evaluations, found),
           "skipped": list(notes)}
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


def catalog(engine: Engine) -> dict[str, tuple[str, str]]:
    """Every rule reports can name, once: id -> (policy, what the rule checks)."""
    from admission import removed

    rules: dict[str, tuple[str, str]] = {removed.POLICY: (removed.POLICY, removed.DESCRIPTION)}
    for info in engine.policies():
        docs = info.rule_docs or tuple((r, "") for r in info.rules) or (("", ""),)
        for rule, doc in docs:
            rid = _id(info.name, rule)
            if rid not in rules or not rules[rid][1]:
                rules[rid] = (info.name, doc or info.description or f"{info.dialect} policy {info.name}")
    return rules


def sarif(out: TextIO, evaluations: list[Evaluation], found: list[Finding], engine: Engine,
          notes: Sequence[str] = ()) -> None:
    known = catalog(engine)
    for f in found:  # results from outside the catalog (an evaluator's crash) still get a rule entry
        known.setdefault(rule_id(f.result), (f.result.policy, f"results of {f.result.policy}"))
    ids = list(known)
    index = {rid: i for i, rid in enumerate(ids)}
    rules = [
        {"id": rid, "name": rid, "shortDescription": {"text": known[rid][1]},
         "fullDescription": {"text": known[rid][1]}, "properties": {"policy": known[rid][0]}}
        for rid in ids
    ]
    results = []
    for f in found:
        rid = rule_id(f.result)
        res = f.resource
        region: dict[str, int] = {"startLine": max(res.line, 1)}
        if f.region is not None:
            region = {"startLine": f.region[0], "startColumn": f.region[1]}
        results.append({
            "ruleId": rid,
            "ruleIndex": index[rid],
            "level": "error" if f.enforced else "warning",
            "message": {"text": f"{res.label}: {line(f.result)}"},
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(res.file)},
                    "region": region,
                },
                "logicalLocations": [{
                    "name": res.name,
                    "fullyQualifiedName": f"{res.kind}/{res.namespace}/{res.name}" if res.namespace
                    else f"{res.kind}/{res.name}",
                    "kind": "resource",
                }],
            }],
            "properties": {"action": f.result.action.value, "result": f.result.status.value,
                           **({"path": f.result.path} if f.result.path else {})},
        })
    run: dict[str, Any] = {
        "tool": {"driver": {"name": "admission", "version": _version(), "rules": rules}},
        "results": results,
    }
    if notes:
        run["invocations"] = [{"executionSuccessful": True, "toolExecutionNotifications": [
            {"level": "note", "message": {"text": note}} for note in notes]}]
    doc = {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [run]}
    json.dump(doc, out, indent=2)
    out.write("\n")


# Characters XML 1.0 cannot carry at all, even escaped (control characters, lone surrogates, U+FFFE/F).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """Text an XML document can hold: each character XML 1.0 forbids written as `\\xNN` / `\\uNNNN`."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", str(value))


def junit(out: TextIO, evaluations: list[Evaluation], found: list[Finding], engine: Engine,
          notes: Sequence[str] = ()) -> None:
    """One testcase per (resource, policy): a policy whose rules fail is a <failure>, one that errs an
    <error>, one none of whose rules applies to the resource is <skipped>. So a clean run has tests too."""
    from admission import removed

    policies = list(dict.fromkeys([removed.POLICY, *(p.name for p in engine.policies())]))
    suites = ET.Element("testsuites", name="admission lint")
    by_file: dict[str, list[Evaluation]] = {}
    for e in evaluations:
        by_file.setdefault(e.resource.file, []).append(e)
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for file, evs in by_file.items():
        suite = ET.SubElement(suites, "testsuite", name=xml_text(file))
        counts = dict.fromkeys(totals, 0)
        for e in evs:
            by_policy: dict[str, list[RuleResult]] = {p: [] for p in policies}
            for r in e.results:
                by_policy.setdefault(r.policy, []).append(r)
            for policy, results in by_policy.items():
                counts["tests"] += 1
                case = ET.SubElement(
                    suite, "testcase", classname=xml_text(f"{file}:{e.resource.line} {e.resource.label}"),
                    name=xml_text(policy), file=xml_text(file), line=str(e.resource.line),
                )
                applied = [r for r in results if r.status != Status.SKIP]
                failed = [r for r in applied if r.status == Status.FAIL]
                errors = [r for r in applied if r.status == Status.ERROR]
                if failed:
                    counts["failures"] += 1
                    enforced = [r for r in failed if r.action.value == "Enforce"]
                    failure = ET.SubElement(case, "failure", message=xml_text(failed[0].message or "rule failed"),
                                            type=(enforced or failed)[0].action.value)
                    failure.text = xml_text("\n".join(line(r) for r in failed))
                elif errors:
                    counts["errors"] += 1
                    error = ET.SubElement(case, "error", message=xml_text(errors[0].message or "error"), type="error")
                    error.text = xml_text("\n".join(line(r) for r in errors))
                elif not applied and policy != removed.POLICY:  # an apiVersion check applies to every object
                    counts["skipped"] += 1
                    ET.SubElement(case, "skipped", message="no rule of the policy applies to this resource")
                warned = [r for r in applied if r.status == Status.WARN]
                if warned:
                    ET.SubElement(case, "system-out").text = xml_text("\n".join(line(r) for r in warned))
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        suites.set(k, str(v))
    if notes:
        ET.SubElement(suites, "system-err").text = xml_text("\n".join(notes))
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


Renderer = Callable[..., None]  # (out, evaluations, findings, engine, notes=())

FORMATS: dict[str, Renderer] = {"text": text, "json": as_json, "sarif": sarif, "junit": junit}
