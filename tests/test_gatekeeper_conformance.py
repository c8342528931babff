"""The Gatekeeper policy library's suites (`gator verify` format) through `admission test`'s runner."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from admission.engines.cel.gatekeeper_cel import engine
from admission.engines.rego import gatekeeper
from admission.testing import run_paths

SUITE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "gatekeeper-library"
KNOWN = Path(__file__).resolve().parent / "known-failures" / "gatekeeper.yaml"
EXPECTED_CASES = 218
FLOOR = 218  # what we pass today


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "regopy"])
def test_gatekeeper_library_conformance(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every case on both paths: the compiled evaluator (templates it declines run on regopy) and regopy alone."""
    if not SUITE.is_dir():
        pytest.skip(f"the conformance suites are not checked out beside the repository ({SUITE} is missing)")
    monkeypatch.setattr(gatekeeper, "USE_COMPILED", compiled)
    start = time.monotonic()
    with engine("rego"):  # the templates' Rego; their CEL runs in tests/test_gatekeeper_cel_conformance.py
        results = run_paths([str(SUITE)])
    passed = sum(r.passed for r in results)
    print(f"gatekeeper-library ({'compiled' if compiled else 'regopy'}): {passed} of {len(results)} cases pass in {time.monotonic() - start:.1f} s")
    assert len(results) == EXPECTED_CASES
    assert passed >= FLOOR, [f"{r.file}: {r.name}: {r.detail}" for r in results if not r.passed][:10]
    failing = {(str(Path(r.file).relative_to(SUITE)), r.name) for r in results if not r.passed}
    known = {(k["test"], k["case"]) for k in yaml.safe_load(KNOWN.read_text()) or []}
    assert failing == known, "tests/known-failures/gatekeeper.yaml must list exactly the failing cases"
