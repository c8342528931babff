"""The kyverno CLI's own tests for ValidatingAdmissionPolicy and MutatingAdmissionPolicy (bindings, params,
matchConditions, namespaceObject, user info, ApplyConfiguration) through `admission test`'s runner."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from admission.testing import run_paths

SUITE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "kyverno-cli"
KNOWN = Path(__file__).resolve().parent / "known-failures" / "kyverno-cli.yaml"
EXPECTED_RESULTS = 28
FLOOR = 28  # what we pass today


def test_kyverno_cli_cel_conformance() -> None:
    if not SUITE.is_dir():
        pytest.skip(f"the conformance suites are not checked out beside the repository ({SUITE} is missing)")
    results = run_paths([str(SUITE)])
    passed = sum(r.passed for r in results)
    print(f"kyverno-cli (ValidatingAdmissionPolicy, MutatingAdmissionPolicy): {passed} of {len(results)} "
          "expected results pass")
    for r in results:
        if not r.passed:
            print(f"FAIL {Path(r.file).relative_to(SUITE)}: {r.name}: {r.detail}")
    assert len(results) == EXPECTED_RESULTS
    assert passed >= FLOOR
    failing = {(str(Path(r.file).relative_to(SUITE)), r.name) for r in results if not r.passed}
    known = {(k["test"], k["case"]) for k in yaml.safe_load(KNOWN.read_text()) or []}
    assert failing == known, "tests/known-failures/kyverno-cli.yaml must list exactly the failing cases"
