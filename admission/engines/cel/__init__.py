"""The CEL dialect: Kubernetes ValidatingAdmissionPolicy and MutatingAdmissionPolicy, on cel-cpp.

admission.engines.cel.expr is the core other CEL kinds build on: compile_expression (once, at load), bind (once
per request) and Program.evaluate; admission.engines.cel.library holds the Kubernetes CEL libraries.
"""

from admission.engines.cel.expr import (
    KUBERNETES_VARIABLES,
    Activation,
    Budget,
    Definition,
    EvalError,
    Library,
    LoadError,
    Program,
    bind,
    compile_expression,
)
from admission.engines.cel.kubernetes import kubernetes_activation, kubernetes_values

__all__ = [
    "KUBERNETES_VARIABLES",
    "Activation",
    "Budget",
    "Definition",
    "EvalError",
    "Library",
    "LoadError",
    "Program",
    "bind",
    "compile_expression",
    "kubernetes_activation",
    "kubernetes_values",
]
