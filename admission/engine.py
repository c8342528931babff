"""The one flow every entry point uses: request -> matching rules -> results -> decision (+ patch).

The server, `lint`, `test` and `audit` all call Engine; only the server knows about HTTP.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from admission.decide import Decision, decide
from admission.engines import Context, Evaluator, PolicyInfo
from admission.patch import copy_document, diff
from admission.results import FailurePolicy, RuleResult, Status
from admission.review import Request
from admission.types import Object, PatchOperation

log = logging.getLogger("admission.engine")


@dataclass
class MutateOutcome:
    decision: Decision
    patch: list[PatchOperation]
    mutated: Object


@dataclass
class Engine:
    evaluators: list[Evaluator] = field(default_factory=list)

    def policies(self) -> list[PolicyInfo]:
        return [p for e in self.evaluators for p in e.policies()]

    def results(self, request: Request, ctx: Context | None = None) -> list[RuleResult]:
        """Every validating rule's result for the request."""
        ctx = ctx or Context()
        out: list[RuleResult] = []
        for evaluator in self.evaluators:
            try:
                out.extend(evaluator.validate(request, ctx))
            except Exception as exc:  # an engine bug must not take the request down: fail closed
                log.exception("evaluator %s crashed on %s", type(evaluator).__name__, request.uid)
                out.append(_crash(evaluator, exc))
        return out

    def validate(self, request: Request, ctx: Context | None = None) -> Decision:
        return decide(self.results(request, ctx))

    def mutate(self, request: Request, ctx: Context | None = None) -> MutateOutcome:
        """Apply every mutating rule in order, then the patch is the diff of original and result."""
        ctx = ctx or Context()
        original = request.object or {}
        obj = copy_document(original)
        results: list[RuleResult] = []
        for evaluator in self.evaluators:
            try:
                obj, rs = evaluator.mutate(request, obj, ctx)
                results.extend(rs)
            except Exception as exc:
                log.exception("evaluator %s crashed mutating %s", type(evaluator).__name__, request.uid)
                results.append(_crash(evaluator, exc))
        decision = decide(results)
        patch = diff(original, obj) if decision.allowed and request.object is not None else []
        return MutateOutcome(decision, patch, obj)


def _crash(evaluator: Evaluator, exc: Exception) -> RuleResult:
    return RuleResult(
        policy=type(evaluator).__name__,
        rule="",
        status=Status.ERROR,
        message=f"internal error: {type(exc).__name__}: {exc}",
        failure_policy=FailurePolicy.FAIL,
    )
