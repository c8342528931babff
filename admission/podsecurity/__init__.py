"""Pod Security Standards (baseline and restricted), version-aware, evaluated natively.

`check(pod, level=..., version=...)` returns the failed checks of a pod (or a workload's pod template:
anything with `metadata` and `spec`), with the semantics and messages of Kubernetes' pod-security-admission
at that version; `exclude` applies Kyverno's `validate.podSecurity.exclude` entries.
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from typing import Any

from admission.podsecurity import exclude as _exclude
from admission.podsecurity.model import (
    CheckFn,
    FieldError,
    Violation,
    as_dict,
    pod_checks,
    reset_reading,
    set_reading,
    sharing,
)
from admission.podsecurity.registry import (
    BASELINE,
    LEVELS,
    NEWEST_MINOR,
    RESTRICTED,
    PodSecurityError,
    checks_for,
    parse_level,
    parse_version,
)

__all__ = [
    "BASELINE",
    "LEVELS",
    "NEWEST_MINOR",
    "RESTRICTED",
    "FieldError",
    "PodSecurityError",
    "Violation",
    "check",
    "control_name",
    "sharing",
    "summary",
    "validate",
]

control_name = _exclude.control_name


def validate(level: Any, version: Any = "latest", exclude: Any = None) -> list[str]:
    """Problems with podSecurity settings, as messages (empty when valid)."""
    problems = []
    for fn, value in ((parse_level, level), (parse_version, version)):
        try:
            fn(value)
        except PodSecurityError as exc:
            problems.append(str(exc))
    return problems + _exclude.validate_exclude(exclude, str(level))


def check(
    pod: dict[str, Any], *, level: str, version: str = "latest", exclude: list[dict[str, Any]] | None = None
) -> list[Violation]:
    """The Pod Security checks the pod fails at this level and version, after `exclude`.

    Raises PodSecurityError for an invalid level, version or exclude entry (see `validate`).
    """
    version = version or "latest"
    if isinstance(level, str) and isinstance(version, str):
        level, implemented, functions = _implementations(level, version)
    else:  # not a valid level or version: raise as parse_level / parse_version do
        level, implemented, functions = _implementations.__wrapped__(level, version)
    pod = as_dict(pod)
    meta, spec = as_dict(pod.get("metadata")), as_dict(pod.get("spec"))
    pod_memo = pod_checks(meta, spec)
    if not exclude and functions <= pod_memo.passing:
        return []  # the walk found every check of this level passing
    listed, results = pod_memo.listed, pod_memo.results
    token = set_reading(spec, listed)
    try:
        failed = []
        for check_id, fn in implemented:
            result = results.get(fn, _NOT_RUN)
            if result is _NOT_RUN:
                result = results[fn] = fn(meta, spec)
            if result is not None:
                failed.append((check_id, result))
        if not failed and not exclude:
            return []
        images = {c.path: c.image for c in listed}
        violations = [
            Violation(check_id, result.reason, result.detail, tuple(result.errors), _images(result.errors, images))
            for check_id, result in failed
        ]
        if exclude:
            implementations = dict(implemented)
            violations = _exclude.apply(violations, exclude, meta, spec, implementations, level)
            violations = [replace(v, images=_images(list(v.fields), images)) for v in violations]
    finally:
        reset_reading(token)
    return violations


_NOT_RUN: Any = object()


@lru_cache(maxsize=256)
def _implementations(
    level: str, version: str
) -> tuple[str, tuple[tuple[str, CheckFn], ...], frozenset[CheckFn]]:
    """The level, the (id, implementation) of each check at this level and version, and the set of those
    implementations (raises PodSecurityError for an invalid one, which is then not kept)."""
    level = parse_level(level)
    implemented = tuple(checks_for(level, parse_version(version)))
    return level, implemented, frozenset(fn for _, fn in implemented)


def _images(errors: list[FieldError], images: dict[str, str]) -> tuple[str, ...]:
    found: list[str] = []
    for error in errors:
        container = _exclude.container_of(error.path)
        image = images.get(container, "") if container else ""
        if image and image not in found:
            found.append(image)
    return tuple(found)


def summary(violations: list[Violation]) -> str:
    """The failed checks as Pod Security admission words them: "reason (detail), reason (detail)"."""
    return ", ".join(v.message for v in violations)
