"""`admission test`: find test files under the given paths and run each with the runner for its format.

Formats: our own `PolicyTest` (admission.testing.own), Kyverno's `Test` (admission.testing.kyverno),
Gatekeeper's `Suite` (admission.testing.gatekeeper). Every runner returns CaseResults; this module only
finds files, dispatches, and reports. It closes with exactly `N passed, N failed` on its own line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from admission.engines import PolicyInfo
from admission.manifests import ManifestError, find_files, load_file


@dataclass(frozen=True)
class CaseResult:
    file: str  # the test file
    name: str  # what was checked, e.g. "policy/rule Pod/ns/name"
    passed: bool
    detail: str = ""  # why it failed (expected vs got)
    engines: tuple[str, ...] = ()  # which evaluator ran the policies, where a dialect has several (`engine_notes`)


Runner = Callable[[Path, dict[str, Any]], list[CaseResult]]


def engine_notes(policies: Iterable[PolicyInfo]) -> tuple[str, ...]:
    """For `admission test -v`: each policy whose dialect has several evaluators (Rego: compiled or regopy,
    with the reason the compiler declined), as "<policy>: <evaluator>"."""
    return tuple(sorted({f"{p.rule_docs[0][1] if p.rule_docs else p.name}: {p.engine}" for p in policies if p.engine}))


def runner_for(doc: Any) -> Runner | None:
    """The runner for a test document, or None when the document is not a test."""
    if not isinstance(doc, dict):
        return None
    api, kind = str(doc.get("apiVersion", "")), doc.get("kind")
    # the kyverno CLI reads a `Test` whatever its apiVersion: its MutatingAdmissionPolicy tests say kyverno.io/v1
    if kind == "Test" and api.startswith(("cli.kyverno.io/", "kyverno.io/")):
        from admission.testing.kyverno import run_test

        return run_test
    if kind == "Suite" and api.startswith("test.gatekeeper.sh/"):
        from admission.testing.gatekeeper import run_suite

        return run_suite
    if kind == "PolicyTest" and api.startswith("admission.dev/"):
        from admission.testing.own import run_policy_test

        return run_policy_test
    return None


TEST_FILE_NAMES = ("kyverno-test.yaml", "kyverno-test.yml", "suite.yaml", "suite.yml")


def is_test_file(path: Path) -> bool:
    return path.name in TEST_FILE_NAMES or path.name.endswith((".test.yaml", ".test.yml"))


def find_tests(paths: list[str]) -> list[Path]:
    """Test files under the paths: hidden folders such as `.kyverno-test/` are searched too."""
    found: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(sorted(f for f in path.rglob("*") if f.is_file() and is_test_file(f)))
    return found


def run_paths(paths: list[str]) -> list[CaseResult]:
    results: list[CaseResult] = []
    for file in find_tests(paths):
        try:
            docs = load_file(file)
        except ManifestError as exc:
            results.append(CaseResult(str(file), "load", False, str(exc)))
            continue
        for doc in docs:
            runner = runner_for(doc.obj)
            if runner is None:
                continue
            try:
                results.extend(runner(file, doc.obj))
            except Exception as exc:  # a broken test file is one failed case, not a crash of the whole run
                results.append(CaseResult(str(file), "run", False, f"{type(exc).__name__}: {exc}"))
    return results


def run(paths: list[str], out: TextIO, *, verbose: bool = False) -> int:
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        out.write(f"error: no such file or folder: {', '.join(missing)}\n")
        return 2
    results = run_paths(paths)
    if not results:  # nothing was tested: never report that as a success
        out.write(f"error: no policy tests (PolicyTest, kyverno-test.yaml, Gatekeeper Suite) in: {', '.join(paths)}\n")
        return 2
    noted: set[tuple[str, str]] = set()
    for r in results:
        if verbose:
            for note in r.engines:
                if (r.file, note) not in noted:
                    noted.add((r.file, note))
                    out.write(f"engine {r.file}: {note}\n")
        if not r.passed:
            out.write(f"FAIL {r.file}: {r.name}: {r.detail}\n")
        elif verbose:
            out.write(f"ok   {r.file}: {r.name}\n")
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    out.write(f"{passed} passed, {failed} failed\n")
    return 1 if failed else 0


__all__ = ["CaseResult", "engine_notes", "find_files", "find_tests", "run", "run_paths", "runner_for"]
