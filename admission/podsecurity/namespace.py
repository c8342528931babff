"""The Pod Security admission namespace labels, read as Kubernetes reads them.

`pod-security.kubernetes.io/<mode>` (mode enforce, audit or warn) names a level (privileged, baseline,
restricted) and `pod-security.kubernetes.io/<mode>-version` a version ("latest" or "v1.<minor>").
An invalid enforce level fails closed (restricted); invalid audit and warn levels fail open (privileged);
an invalid version means latest; each invalid label is reported. When warn is not set and enforce is set
to a stricter level than warn's, warn follows enforce (and its version, unless warn-version is set).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

PRIVILEGED = "privileged"
LABEL_PREFIX = "pod-security.kubernetes.io/"
MODES = ("enforce", "audit", "warn")
_LEVELS = ("privileged", "baseline", "restricted")
_VERSION = re.compile(r"^v1\.([0-9]|[1-9][0-9]*)$")


@dataclass(frozen=True)
class LevelVersion:
    level: str = PRIVILEGED
    version: str = "latest"

    def __str__(self) -> str:
        return f"{self.level}:{self.version}"


@dataclass(frozen=True)
class NamespacePolicy:
    enforce: LevelVersion = LevelVersion()
    audit: LevelVersion = LevelVersion()
    warn: LevelVersion = LevelVersion()
    errors: tuple[str, ...] = field(default=())


def _rank(level: str) -> int:
    return _LEVELS.index(level)


def policy_from_labels(labels: Any, defaults: NamespacePolicy | None = None) -> NamespacePolicy:
    """The levels and versions a namespace's labels ask for, on top of `defaults` (privileged:latest)."""
    policy = defaults or NamespacePolicy()
    if not isinstance(labels, dict) or not labels:
        return policy
    chosen = {mode: getattr(policy, mode) for mode in MODES}
    errors: list[str] = []
    enforce_set = False
    for mode in MODES:
        key = LABEL_PREFIX + mode
        if key in labels:
            value = labels[key]
            if value in _LEVELS:
                chosen[mode] = replace(chosen[mode], level=value)
                enforce_set = enforce_set or mode == "enforce"
            else:
                errors.append(
                    f"{key}: invalid value {value!r}: must be one of privileged, baseline, restricted"
                )
                fallback = "restricted" if mode == "enforce" else PRIVILEGED
                chosen[mode] = replace(chosen[mode], level=fallback)
        version_key = f"{key}-version"
        if version_key in labels:
            value = labels[version_key]
            if isinstance(value, str) and (value == "latest" or _VERSION.match(value)):
                chosen[mode] = replace(chosen[mode], version=value)
            else:
                errors.append(f'{version_key}: invalid value {value!r}: must be "latest" or "v1.x"')
                chosen[mode] = replace(chosen[mode], version="latest")
    warn_key = LABEL_PREFIX + "warn"
    if (
        warn_key not in labels
        and enforce_set
        and _rank(chosen["enforce"].level) > _rank(chosen["warn"].level)
    ):
        version = chosen["warn"].version if f"{warn_key}-version" in labels else chosen["enforce"].version
        chosen["warn"] = LevelVersion(chosen["enforce"].level, version)
    return NamespacePolicy(chosen["enforce"], chosen["audit"], chosen["warn"], tuple(errors))
