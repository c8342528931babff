"""The kyverno/policies test suites (pod-security and best-practices) through `admission test`'s runner."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from admission.testing import run_paths

SUITE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "kyverno-policies"
KNOWN = Path(__file__).resolve().parent / "known-failures" / "kyverno.yaml"
EXPECTED_RESULTS = 1025
FLOOR = 1025  # what we pass today


def test_kyverno_policies_conformance() -> None:
    if not SUITE.is_dir():
        pytest.skip(f"the conformance suites are not checked out beside the repository ({SUITE} is missing)")
    results = run_paths([str(SUITE)])
    passed = sum(r.passed for r in results)
    print(f"kyverno-policies: {passed} of {len(results)} expected results pass")
    assert len(results) == EXPECTED_RESULTS
    assert passed >= FLOOR
    failing = {(str(Path(r.file).relative_to(SUITE)), r.name) for r in results if not r.passed}
    known = {(k["test"], k["case"]) for k in yaml.safe_load(KNOWN.read_text()) or []}
    assert failing == known, "tests/known-failures/kyverno.yaml must list exactly the failing cases"
