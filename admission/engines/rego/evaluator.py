"""RegoEvaluator: the Evaluator for Gatekeeper constraints and plain OPA modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from admission.engines import Context, PolicyInfo
from admission.engines.rego.gatekeeper import ConstraintSet, results_for
from admission.engines.rego.modules import ModuleSet
from admission.manifests import Document
from admission.results import RuleResult
from admission.review import Request
from admission.state import StateUnavailable
from admission.types import Object


class RegoEvaluator:
    def __init__(self, constraints: ConstraintSet, modules: ModuleSet) -> None:
        self.constraints = constraints
        self.modules = modules

    @classmethod
    def from_sources(cls, gatekeeper_docs: list[Document], rego_files: list[Path], *, isolate: bool = True) -> RegoEvaluator:
        """Compile once: raises PolicyError (file:line and why) for a policy that does not compile or that
        fails the separate-process check."""
        return cls(
            ConstraintSet.from_documents(gatekeeper_docs, isolate=isolate),
            ModuleSet.from_files(rego_files, isolate=isolate),
        )

    def policies(self) -> list[PolicyInfo]:
        return self.constraints.policies() + self.modules.policies()

    def validate(self, request: Request, ctx: Context) -> list[RuleResult]:
        results: list[RuleResult] = []
        if self.constraints.constraints:
            state = ctx.state

            def objects() -> list[Object] | None:  # read only when a matched template uses data.inventory
                return state.objects() if state.available else None

            def namespace_labels(ns: str) -> dict[str, Any] | None:
                try:
                    return state.namespace_labels(ns)
                except StateUnavailable:
                    return None

            results.extend(results_for(*self.constraints.evaluate(request, objects, namespace_labels, ctx.deadline)))
        results.extend(self.modules.validate(request, ctx.deadline))
        return results

    def mutate(self, request: Request, obj: Object, ctx: Context) -> tuple[Object, list[RuleResult]]:
        """Gatekeeper constraints never mutate; plain modules' `patch` rules do."""
        return self.modules.mutate(request, obj, ctx.deadline)
