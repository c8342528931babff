"""Kubernetes label selectors (matchLabels + matchExpressions), shared by every dialect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, Any] | None) -> bool:
    """Whether a LabelSelector selects an object with these labels. An empty selector selects everything;
    a None selector selects nothing (as in the API: a missing selector is not the empty one)."""
    if selector is None:
        return False
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if key not in labels or str(labels[key]) != str(value):
            return False
    for expr in selector.get("matchExpressions") or []:
        key = expr.get("key")
        op = str(expr.get("operator") or "")
        values = [str(v) for v in (expr.get("values") or [])]
        present = key in labels
        if op == "In":
            if not present or str(labels[key]) not in values:
                return False
        elif op == "NotIn":
            if present and str(labels[key]) in values:
                return False
        elif op == "Exists":
            if not present:
                return False
        elif op == "DoesNotExist":
            if present:
                return False
        else:
            raise ValueError(f"unknown label selector operator {op!r}")
    return True
