"""The Kyverno dialect: ClusterPolicy and Policy documents evaluated natively."""

from admission.engines.yaml.evaluator import KyvernoContext, KyvernoEvaluator

__all__ = ["KyvernoContext", "KyvernoEvaluator"]
