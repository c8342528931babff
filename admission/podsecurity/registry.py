"""Which checks run at which level and version, with upstream pod-security-admission's rules.

Each check lists the minor version from which each of its implementations applies; at a version a check
uses its newest implementation not newer than that version, and does not exist before its first one.
Restricted includes baseline, except the baseline checks a restricted check overrides at that version.
"latest", and any version newer than the newest known, mean the newest known version.
Checks run baseline first, then restricted, each group sorted by id, as upstream orders them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from admission.podsecurity import baseline as b
from admission.podsecurity import restricted as r
from admission.podsecurity.model import CheckFn

BASELINE = "baseline"
RESTRICTED = "restricted"
LEVELS = (BASELINE, RESTRICTED)


@dataclass(frozen=True)
class Check:
    id: str
    level: str
    versions: tuple[tuple[int, CheckFn], ...]  # (minimum minor version, implementation), increasing
    overrides: dict[int, tuple[str, ...]] = field(default_factory=dict)  # minimum minor -> overridden ids

    def at(self, minor: int) -> tuple[CheckFn, tuple[str, ...]] | None:
        """The implementation and overrides in force at v1.<minor>, or None before the first version."""
        chosen: tuple[CheckFn, tuple[str, ...]] | None = None
        for minimum, fn in self.versions:
            if minimum <= minor:
                chosen = (fn, self.overrides.get(minimum, ()))
        return chosen


CHECKS: tuple[Check, ...] = (
    Check("appArmorProfile", BASELINE, ((0, b.app_armor_1_0),)),
    Check("capabilities_baseline", BASELINE, ((0, b.capabilities_baseline_1_0),)),
    Check("hostNamespaces", BASELINE, ((0, b.host_namespaces_1_0),)),
    Check("hostPathVolumes", BASELINE, ((0, b.host_path_volumes_1_0),)),
    Check("hostPorts", BASELINE, ((0, b.host_ports_1_0),)),
    Check("hostProbesAndHostLifecycle", BASELINE, ((34, b.host_probes_1_34),)),
    Check("privileged", BASELINE, ((0, b.privileged_1_0),)),
    Check("procMount", BASELINE, ((0, b.proc_mount_1_0), (35, b.proc_mount_1_35))),
    Check("seLinuxOptions", BASELINE, ((0, b.selinux_1_0), (31, b.selinux_1_31))),
    Check("seccompProfile_baseline", BASELINE, ((0, b.seccomp_baseline_1_0), (19, b.seccomp_baseline_1_19))),
    Check(
        "sysctls",
        BASELINE,
        (
            (0, b.sysctls_1_0),
            (27, b.sysctls_1_27),
            (29, b.sysctls_1_29),
            (32, b.sysctls_1_32),
            (37, b.sysctls_1_37),
        ),
    ),
    Check("windowsHostProcess", BASELINE, ((0, b.windows_host_process_1_0),)),
    Check(
        "allowPrivilegeEscalation",
        RESTRICTED,
        ((8, r.allow_privilege_escalation_1_8), (25, r.allow_privilege_escalation_1_25)),
    ),
    Check(
        "capabilities_restricted",
        RESTRICTED,
        ((22, r.capabilities_restricted_1_22), (25, r.capabilities_restricted_1_25)),
        {22: ("capabilities_baseline",), 25: ("capabilities_baseline",)},
    ),
    Check("procMount_restricted", RESTRICTED, ((35, b.proc_mount_1_0),), {35: ("procMount",)}),
    Check("restrictedVolumes", RESTRICTED, ((0, r.restricted_volumes_1_0),), {0: ("hostPathVolumes",)}),
    Check("runAsNonRoot", RESTRICTED, ((0, r.run_as_non_root_1_0), (35, r.run_as_non_root_1_35))),
    Check("runAsUser", RESTRICTED, ((23, r.run_as_user_1_23), (35, r.run_as_user_1_35))),
    Check(
        "seccompProfile_restricted",
        RESTRICTED,
        ((19, r.seccomp_restricted_1_19), (25, r.seccomp_restricted_1_25)),
        {19: ("seccompProfile_baseline",), 25: ("seccompProfile_baseline",)},
    ),
)

NEWEST_MINOR = max(minimum for check in CHECKS for minimum, _ in check.versions)

_VERSION = re.compile(r"^v1\.(0|[1-9][0-9]*)$")


class PodSecurityError(ValueError):
    """An invalid level, version or exclude entry."""


def parse_version(version: str) -> int:
    """The minor version meant by "latest" or "v1.<minor>" (clamped to the newest known)."""
    if version in ("", "latest"):
        return NEWEST_MINOR
    match = _VERSION.match(version) if isinstance(version, str) else None
    if not match:
        raise PodSecurityError(f'invalid Pod Security version {version!r}: expected "latest" or "v1.<minor>"')
    return min(int(match.group(1)), NEWEST_MINOR)


def parse_level(level: str) -> str:
    if level not in LEVELS:
        raise PodSecurityError(f'invalid Pod Security level {level!r}: expected "baseline" or "restricted"')
    return level


def checks_for(level: str, minor: int) -> list[tuple[str, CheckFn]]:
    """The (id, implementation) pairs that apply at this level and minor version, in upstream's order."""
    return list(_checks_for(level, minor))


@lru_cache(maxsize=256)
def _checks_for(level: str, minor: int) -> tuple[tuple[str, CheckFn], ...]:
    chosen: dict[str, tuple[CheckFn, tuple[str, ...]]] = {}
    for check in CHECKS:
        if check.level == BASELINE or level == RESTRICTED:
            found = check.at(minor)
            if found:
                chosen[check.id] = found
    overridden = {oid for _, overrides in chosen.values() for oid in overrides}
    ordered = sorted(c.id for c in CHECKS if c.level == BASELINE) + sorted(
        c.id for c in CHECKS if c.level == RESTRICTED
    )
    return tuple((cid, chosen[cid][0]) for cid in ordered if cid in chosen and cid not in overridden)
