"""kyverno/policies' CEL policies (ClusterPolicy validate.cel, ValidatingPolicy, MutatingPolicy,
GeneratingPolicy) with their kyverno-test.yaml files, through `admission test`'s runner."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from admission.testing import run_paths

SUITE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "kyverno-policies-cel"
KNOWN = Path(__file__).resolve().parent / "known-failures" / "kyverno-cel.yaml"
# expected results per folder, as upstream's test files give them (README of the conformance suites)
FOLDERS = {
    "pod-security-cel": 925, "best-practices-cel": 64, "pod-security-vpol": 865, "best-practices-vpol": 63,
    "best-practices-mpol": 4, "psp-migration-mpol": 5, "velero-mpol": 3, "best-practices-gpol": 1,
}
EXPECTED_RESULTS = 1930
FLOOR = 1930  # what we pass today


def test_kyverno_policies_cel_conformance() -> None:
    if not SUITE.is_dir():
        pytest.skip(f"the conformance suites are not checked out beside the repository ({SUITE} is missing)")
    results = []
    for folder, expected in FOLDERS.items():
        found = run_paths([str(SUITE / folder)])
        print(f"kyverno-policies-cel/{folder}: {sum(r.passed for r in found)} of {len(found)} expected results pass")
        assert len(found) == expected, folder
        results.extend(found)
    passed = sum(r.passed for r in results)
    print(f"kyverno-policies-cel: {passed} of {len(results)} expected results pass")
    assert len(results) == EXPECTED_RESULTS
    assert passed >= FLOOR, [f"{r.file}: {r.name}: {r.detail}" for r in results if not r.passed][:10]
    failing = {(str(Path(r.file).relative_to(SUITE)), r.name) for r in results if not r.passed}
    known = {(k["test"], k["case"]) for k in yaml.safe_load(KNOWN.read_text()) or []}
    assert failing == known, "tests/known-failures/kyverno-cel.yaml must list exactly the failing cases"
