"""What the kyverno CLI's `Test` format adds for CEL policy kinds (used by admission.testing.kyverno).

A result for a ValidatingPolicy, MutatingPolicy, GeneratingPolicy, ValidatingAdmissionPolicy or
MutatingAdmissionPolicy carries a flag (`isValidatingPolicy: true`, ...) and no rule. The CLI reads field
names regardless of case (one upstream file spells `isMUtatingPolicy`), so flags are looked up that way.
Such a result counts once per (policy, resource); one naming no resources counts once, and holds when
every resource of its kind the policy gave a result for has the expected one.
"""

from __future__ import annotations

from typing import Any

FLAGS = ("isvalidatingpolicy", "ismutatingpolicy", "isgeneratingpolicy", "isvalidatingadmissionpolicy",
         "ismutatingadmissionpolicy", "isimagevalidatingpolicy", "isdeletingpolicy")


def cel_flag(expected: dict[str, Any]) -> str:
    """The CEL kind flag a result sets (lowercase), or "" for a ClusterPolicy/Policy result."""
    for key, value in expected.items():
        if str(key).lower() in FLAGS and value is True:
            return str(key).lower()
    return ""


def field(expected: dict[str, Any], name: str) -> Any:
    """A field of a result, its name compared regardless of case (as the CLI decodes it)."""
    if name in expected:
        return expected[name]
    lower = name.lower()
    for key, value in expected.items():
        if str(key).lower() == lower:
            return value
    return None
