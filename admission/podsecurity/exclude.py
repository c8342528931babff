"""Kyverno's `validate.podSecurity.exclude`: exempting controls, optionally per image, field and value.

An entry names a control (`controlName`, one of the Pod Security Standards control names) and may add:
- `images`: wildcard patterns (`*`, `?`); the entry then exempts only the fields of containers whose image
  matches (a container-level exemption). Without images the entry is a pod-level exemption: it exempts the
  control's pod-level fields, and the container fields that fail only because the pod-level field is unset
  (for example containers without runAsNonRoot in a pod that does not set it either).
- `restrictedField`: only the field with this path (list indexes written `[*]`, e.g.
  `spec.containers[*].securityContext.capabilities.add`) is exempted.
- `values`: wildcard patterns; a field is exempted only if every offending value matches one of them.
A failed check whose offending fields are all exempted no longer counts.

Kyverno finds the fields a pod-level entry exempts by re-running the check on the pod with its containers
replaced by one bare container, and then drops one matching field per field found, compared by path alone.
Here every field a bare container would also be required to set is exempted, in containers and init
containers alike, and a container that explicitly sets a forbidden value is never exempted by a pod-level
entry (it needs an entry naming its image).

As Kyverno validates them: controls that only concern containers must name images and pod-level-only
controls must not; `restrictedField` and `values` go together; a baseline rule cannot exclude a control
only the restricted level has. Such entries, unknown control names and malformed entries are errors.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Any

from admission.podsecurity.model import (
    CONTAINER_LISTS,
    REQUIRED,
    CheckFn,
    FieldError,
    Violation,
    containers,
)
from admission.podsecurity.registry import BASELINE, PodSecurityError
from admission.wildcard import wildcard_match

CONTROLS: dict[str, tuple[str, ...]] = {
    "Capabilities": ("capabilities_baseline", "capabilities_restricted"),
    "Seccomp": ("seccompProfile_baseline", "seccompProfile_restricted"),
    "Privileged Containers": ("privileged",),
    "Host Ports": ("hostPorts",),
    "/proc Mount Type": ("procMount", "procMount_restricted"),
    "Host Probes / Lifecycle Hooks": ("hostProbesAndHostLifecycle",),
    "HostProcess": ("windowsHostProcess",),
    "SELinux": ("seLinuxOptions",),
    "Host Namespaces": ("hostNamespaces",),
    "HostPath Volumes": ("hostPathVolumes",),
    "Sysctls": ("sysctls",),
    "AppArmor": ("appArmorProfile",),
    "Privilege Escalation": ("allowPrivilegeEscalation",),
    "Running as Non-root": ("runAsNonRoot",),
    "Running as Non-root user": ("runAsUser",),
    "Volume Types": ("restrictedVolumes",),
}

RESTRICTED_ONLY_CONTROLS = frozenset(
    {"Volume Types", "Privilege Escalation", "Running as Non-root", "Running as Non-root user"}
)
POD_LEVEL_CONTROLS = frozenset({"Host Namespaces", "HostPath Volumes", "Sysctls", "Volume Types"})
CONTAINER_LEVEL_CONTROLS = frozenset(
    {"Capabilities", "Privileged Containers", "Host Ports", "/proc Mount Type", "Privilege Escalation",
     "Host Probes / Lifecycle Hooks"}
)  # fmt: skip


def control_name(check_id: str) -> str:
    """The Pod Security Standards control a check belongs to ("" if none)."""
    for name, ids in CONTROLS.items():
        if check_id in ids:
            return name
    return ""


def _strings(entry: dict[str, Any], key: str, where: str) -> list[str]:
    value = entry.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise PodSecurityError(f"{where}.{key} must be a list of strings")
    return value


def validate_exclude(exclude: Any, level: str = "restricted") -> list[str]:
    """Problems with an exclude list, as messages (empty when it is valid)."""
    if exclude is None:
        return []
    if not isinstance(exclude, list):
        return ["exclude must be a list"]
    problems = []
    for i, entry in enumerate(exclude):
        try:
            _parse(entry, f"exclude[{i}]", level)
        except PodSecurityError as exc:
            problems.append(str(exc))
    return problems


def _parse(entry: Any, where: str, level: str) -> tuple[str, list[str], str, list[str]]:
    if not isinstance(entry, dict):
        raise PodSecurityError(f"{where} must be a mapping")
    name = entry.get("controlName")
    if name not in CONTROLS:
        raise PodSecurityError(f"{where}.controlName {name!r} is not a Pod Security Standards control")
    images = _strings(entry, "images", where)
    values = _strings(entry, "values", where)
    field = entry.get("restrictedField") or ""
    if not isinstance(field, str):
        raise PodSecurityError(f"{where}.restrictedField must be a string")
    if name in CONTAINER_LEVEL_CONTROLS and not images:
        raise PodSecurityError(f"{where}: images must be specified for the container-level control {name!r}")
    if name in POD_LEVEL_CONTROLS and images:
        raise PodSecurityError(f"{where}: images must not be specified for the pod-level control {name!r}")
    if field and not values:
        raise PodSecurityError(f"{where}: values are required with restrictedField")
    if values and not field:
        raise PodSecurityError(f"{where}: restrictedField is required with values")
    if level == BASELINE and name in RESTRICTED_ONLY_CONTROLS:
        raise PodSecurityError(f"{where}: {name!r} is not a control of the baseline level")
    return name, images, field, values


def matches_any(patterns: list[str], value: str) -> bool:
    return any(wildcard_match(p, value) for p in patterns)


@lru_cache(maxsize=4096)
def container_of(path: str) -> str | None:
    """The container a field path lies in ("spec.containers[2]"), or None for pod-level fields."""
    for kind in CONTAINER_LISTS:
        prefix = f"spec.{kind}["
        if path.startswith(prefix):
            return path[: path.index("]", len(prefix)) + 1]
    return None


def _field_ok(error: FieldError, field: str, values: list[str]) -> bool:
    if field and error.pattern != field:
        return False
    return not values or all(matches_any(values, value) for value in error.values)


def apply(
    violations: list[Violation],
    exclude: list[dict[str, Any]],
    meta: dict[str, Any],
    spec: dict[str, Any],
    implementations: dict[str, CheckFn],
    level: str,
) -> list[Violation]:
    """The violations left once every exclude entry has removed the fields it exempts."""
    images = {c.path: c.image for c in containers(spec)}
    for i, entry in enumerate(exclude):
        name, patterns, field, values = _parse(entry, f"exclude[{i}]", level)
        kept = []
        for violation in violations:
            if violation.check not in CONTROLS[name]:
                kept.append(violation)
                continue
            if patterns:
                exempt = {
                    e for e in violation.fields
                    if (c := container_of(e.path)) is not None and matches_any(patterns, images.get(c, ""))
                }  # fmt: skip
            else:
                implied = _implied_by_pod(violation.check, meta, spec, implementations)
                exempt = {
                    e for e in violation.fields
                    if container_of(e.path) is None or (e.kind == REQUIRED and _in_container(e.path) in implied)
                }  # fmt: skip
            remaining = tuple(
                e for e in violation.fields if not (e in exempt and _field_ok(e, field, values))
            )
            if remaining:
                kept.append(
                    replace(violation, fields=remaining) if remaining != violation.fields else violation
                )
        violations = kept
    return violations


def _in_container(path: str) -> str:
    """The part of a container field's path after the container: ".securityContext.runAsNonRoot"."""
    container = container_of(path)
    return path[len(container) :] if container else path


def _implied_by_pod(
    check_id: str, meta: dict[str, Any], spec: dict[str, Any], implementations: dict[str, CheckFn]
) -> set[str]:
    """Container fields (paths within a container) that any container, init containers included, would
    be required to set in this pod: those the pod level leaves unset."""
    fn = implementations.get(check_id)
    if fn is None:
        return set()
    bare = {k: v for k, v in spec.items() if k not in CONTAINER_LISTS}
    bare["containers"] = [{"name": "fake"}]
    result = fn(meta, bare)
    if result is None:
        return set()
    return {_in_container(e.path) for e in result.errors if e.kind == REQUIRED and container_of(e.path)}
