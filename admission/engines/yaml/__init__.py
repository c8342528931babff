"""The Kyverno dialect: ClusterPolicy and Policy documents evaluated natively.

The evaluator is imported on first use so that the dialect's helper modules (values, pattern, ...) can be
imported on their own, e.g. by admission.match.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from admission.engines.yaml.evaluator import KyvernoContext, KyvernoEvaluator

__all__ = ["KyvernoContext", "KyvernoEvaluator"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from admission.engines.yaml import evaluator

        return getattr(evaluator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
