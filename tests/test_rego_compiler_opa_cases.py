"""OPA's own evaluation cases through the parser and the Rego compiler.

Every case whose modules the compiler accepts must give OPA's answer: the same solutions, or an error
where OPA expects one. A case the compiler refuses (`Unsupported`: the module would run on regopy) is
counted as skipped; the counts are printed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from admission.engines.rego.compiler import Unsupported, compile_modules
from admission.engines.rego.lexer import RegoSyntaxError
from admission.engines.rego.parser import parse_module, parse_query
from admission.engines.rego.values import UNDEFINED, UNSUPPORTED_VALUE, EvalError, to_json

CASES = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "opa-cases" / "v1"
# the least number of cases the compiler must run and get right (it only grows)
FLOOR = 1040


def _canon(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, list):
        return [_canon(x) for x in v]
    if isinstance(v, dict):
        return {k: _canon(x) for k, x in v.items()}
    return v


def _solutions(rows: list[dict[str, Any]], sort_bindings: bool, ignore_generated: bool) -> set[str]:
    out = set()
    for row in rows:
        kept = {}
        for k, v in row.items():
            if ignore_generated and k.startswith("__"):
                continue
            v = _canon(v)
            if sort_bindings and isinstance(v, list):
                v = sorted(v, key=lambda x: json.dumps(x, sort_keys=True))
            kept[k] = v
        out.add(json.dumps(kept, sort_keys=True))
    return out


def _input(case: dict[str, Any]) -> Any:
    if "input" in case:
        return case["input"]
    if "input_term" in case:
        rows = compile_modules([]).query_body(parse_query("__input := " + case["input_term"]))
        return rows[0]["__input"]
    return UNDEFINED


def run_case(case: dict[str, Any]) -> tuple[str, str]:
    """('pass'|'fail'|'skip', detail)."""
    try:
        modules = [parse_module(text, file=f"test-{i}.rego") for i, text in enumerate(case.get("modules", []))]
        query = parse_query(case["query"])
    except RegoSyntaxError as exc:
        return "skip", f"parse: {exc}"
    try:
        compiled = compile_modules(modules)
    except Unsupported as exc:
        return "skip", f"unsupported: {exc}"
    strict = bool(case.get("strict_error"))
    wants_error = "want_error" in case or "want_error_code" in case
    try:
        inp = _input(case)
        rows = compiled.query_body(query, inp, case.get("data") or {}, strict=strict)
    except Unsupported as exc:
        return "skip", f"unsupported query: {exc}"
    except EvalError as exc:
        if exc.code == UNSUPPORTED_VALUE:
            return "limit", str(exc)
        if wants_error:
            code = case.get("want_error_code")
            if code and exc.code != code:
                return "fail", f"error code {exc.code}, want {code}: {exc}"
            return "pass", ""
        return "fail", f"unexpected error {exc}"
    if wants_error:
        return "fail", f"expected error {case.get('want_error_code')} {case.get('want_error')}, got {rows!r}"[:300]
    got = _solutions([{k: to_json(v) for k, v in r.items()} for r in rows], bool(case.get("sort_bindings")), bool(case.get("ignore_generated_vars")))
    want = _solutions(case.get("want_result") or [], bool(case.get("sort_bindings")), bool(case.get("ignore_generated_vars")))
    if got != want:
        return "fail", f"got {sorted(got)}, want {sorted(want)}"[:400]
    return "pass", ""


def _all_cases() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for f in sorted(CASES.glob("*/*.json")):
        for case in json.loads(f.read_text())["cases"]:
            out.append((f"{f.parent.name}/{f.name}", case))
    return out


def test_opa_cases_through_the_compiler() -> None:
    if not CASES.is_dir():
        pytest.skip(f"the conformance suites are not checked out beside the repository ({CASES} is missing)")
    counts: Counter[str] = Counter()
    failures = []
    for where, case in _all_cases():
        try:
            outcome, detail = run_case(case)
        except RecursionError:
            outcome, detail = "fail", "recursion"
        counts[outcome] += 1
        if outcome == "fail":
            failures.append(f"{where}: {case['note']}: {detail}")
    total = sum(counts.values())
    print(
        f"OPA cases: {counts['pass']} pass, {counts['fail']} fail, {counts['skip']} skipped (not compiled),"
        f" {counts['limit']} refused at evaluation (a value the compiled evaluator cannot hold) of {total}"
    )
    assert not failures, "\n".join(failures[:40])
    assert counts["pass"] >= FLOOR
