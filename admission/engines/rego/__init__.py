"""Rego policies: Gatekeeper ConstraintTemplates + constraints, and plain OPA modules, on one backend."""

from admission.engines.rego.evaluator import RegoEvaluator

__all__ = ["RegoEvaluator"]
