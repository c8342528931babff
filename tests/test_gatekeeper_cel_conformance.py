"""The Gatekeeper library's templates that carry K8sNativeValidation (CEL) code, run with `--engine cel`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from admission.engines.cel.gatekeeper_cel import cel_source, engine
from admission.manifests import load_file
from admission.testing import run_paths

SUITE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "gatekeeper-library"
KNOWN = Path(__file__).resolve().parent / "known-failures" / "gatekeeper-cel.yaml"
EXPECTED_TEMPLATES = 14
EXPECTED_CASES = 115
FLOOR = 115  # what we pass today


def _cel_suites() -> list[Path]:
    """The suite.yaml beside every template.yaml that has a CEL code entry."""
    return sorted(t.parent / "suite.yaml" for t in SUITE.rglob("template.yaml")
                  if any(isinstance(d.obj, dict) and cel_source(d.obj) is not None for d in load_file(t)))


def test_gatekeeper_library_cel_conformance() -> None:
    if not SUITE.is_dir():
        pytest.skip(f"the conformance suites are not checked out beside the repository ({SUITE} is missing)")
    suites = _cel_suites()
    assert len(suites) == EXPECTED_TEMPLATES
    with engine("cel"):
        results = run_paths([str(s) for s in suites])
    passed = sum(r.passed for r in results)
    print(f"gatekeeper-library (CEL): {passed} of {len(results)} cases pass")
    assert len(results) == EXPECTED_CASES
    assert passed >= FLOOR, [f"{r.file}: {r.name}: {r.detail}" for r in results if not r.passed][:10]
    failing = {(str(Path(r.file).relative_to(SUITE)), r.name) for r in results if not r.passed}
    known = {(k["test"], k["case"]) for k in yaml.safe_load(KNOWN.read_text()) or []}
    assert failing == known, "tests/known-failures/gatekeeper-cel.yaml must list exactly the failing cases"
