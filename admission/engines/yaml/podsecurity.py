"""The Kyverno dialect's `validate.podSecurity` subrule: Pod Security Standards checks for a pod.

`check(pod, level=..., version=..., exclude=...)` takes a Pod or a workload's pod template (a mapping with
`metadata` and `spec`) and returns its violations; `summary(violations)` words them as Pod Security
admission does. The checks themselves live in `admission.podsecurity`, one module per level.
"""

from __future__ import annotations

from admission.podsecurity import (
    FieldError,
    PodSecurityError,
    Violation,
    check,
    control_name,
    summary,
    validate,
)

__all__ = ["FieldError", "PodSecurityError", "Violation", "check", "control_name", "summary", "validate"]
