"""The official Pod Security Standards fixtures (kubernetes/pod-security-admission testdata).

Every pod under `<level>/v1.N/pass/` must be allowed at that level and version, every pod under `fail/`
denied with a message containing upstream's fragment for the check the file exercises; the same again
with each pod wrapped in a Deployment (checking its `spec.template`). One test per level and version
reports every mismatch of that directory at once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from admission.engines.yaml.podsecurity import check, summary
from admission.podsecurity import NEWEST_MINOR

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "pod-security" / "testdata"

pytestmark = pytest.mark.conformance

# Upstream's expected message fragment per fixture family (the file name without its number).
FRAGMENTS = {
    "allowprivilegeescalation": "allowPrivilegeEscalation != false",
    "apparmorprofile": "forbidden AppArmor profile",
    "capabilities_baseline": "capabilities",
    "capabilities_restricted": "unrestricted capabilities",
    "hostnamespaces": "host namespaces",
    "hostpathvolumes": "hostPath",
    "hostports": "hostPort",
    "hostprobesandhostlifecycle": "probe or lifecycle host",
    "privileged": "privileged",
    "procmount": "procMount",
    "procmount_restricted": "procMount",
    "restrictedvolumes": "restricted volume types",
    "runasnonroot": "runAsNonRoot != true",
    "runasuser": "runAsUser=0",
    "selinuxoptions": "seLinuxOptions",
    "seccompprofile_baseline": "seccompProfile",
    "seccompprofile_restricted": "seccompProfile",
    "sysctls": "forbidden sysctl",
    "windowshostprocess": "hostProcess",
}

_FAMILY = re.compile(r"^(?P<family>[a-z_]+?)\d+\.yaml$")


def _directories() -> list[tuple[str, str]]:
    if not TESTDATA.is_dir():
        return []
    found = [(d.parent.name, d.name) for d in TESTDATA.glob("*/v1.*") if d.is_dir()]
    return sorted(found, key=lambda lv: (lv[0], int(lv[1].split(".")[1])))


def _load(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(path.read_text(), Loader=loader)  # noqa: S506 - a safe loader
    assert isinstance(doc, dict), f"{path.name}: not a mapping"
    return doc


def _as_deployment(pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": pod.get("metadata", {}).get("name", "pod")},
        "spec": {"template": {"metadata": pod.get("metadata", {}), "spec": pod.get("spec", {})}},
    }


def _verdict(
    subject: dict[str, Any], level: str, version: str, expect: str, fragment: str | None
) -> str | None:
    """None when the verdict is the expected one, else what went wrong."""
    violations = check(subject, level=level, version=version)
    if expect == "pass":
        return f"denied: {summary(violations)}" if violations else None
    if not violations:
        return "allowed"
    if fragment is not None and fragment not in summary(violations):
        return f"message lacks {fragment!r}: {summary(violations)}"
    return None


def test_fixtures_present_and_versions_known() -> None:
    if not TESTDATA.is_dir():
        pytest.skip(f"Pod Security fixtures absent (expected at {TESTDATA.parent.parent.name}/pod-security)")
    dirs = _directories()
    assert {level for level, _ in dirs} == {"baseline", "restricted"}
    newest = max(int(version.split(".")[1]) for _, version in dirs)
    # The registry must know every version the fixtures exercise ("latest" is the newest of them).
    assert newest == NEWEST_MINOR


@pytest.mark.parametrize(
    ("level", "version"),
    _directories() or [pytest.param("-", "-", marks=pytest.mark.skip(reason="Pod Security fixtures absent"))],
)
def test_fixture_directory(level: str, version: str) -> None:
    if not TESTDATA.is_dir():
        pytest.skip("Pod Security fixtures absent")
    mismatches: list[str] = []
    count = 0
    for expect in ("pass", "fail"):
        for path in sorted((TESTDATA / level / version / expect).glob("*.yaml")):
            match = _FAMILY.match(path.name)
            family = match.group("family") if match else path.stem
            fragment = FRAGMENTS.get(family) if expect == "fail" else None
            if expect == "fail":
                assert fragment is not None, f"no known message fragment for fixture family {family!r}"
            pod = _load(path)
            count += 1
            problem = _verdict(pod, level, version, expect, fragment)
            if problem:
                mismatches.append(f"{expect}/{path.name}: {problem}")
            template = _as_deployment(pod)["spec"]["template"]
            problem = _verdict(template, level, version, expect, fragment)
            if problem:
                mismatches.append(f"{expect}/{path.name} as Deployment: {problem}")
    assert count > 0, f"{level}/{version}: no fixtures"
    assert not mismatches, f"{level}/{version}: {len(mismatches)} mismatches\n" + "\n".join(mismatches)
