"""The one pipeline every entry point uses: review -> match -> mutate -> validate -> decide (+ patch).

`Engine.review` runs it for one Request. The server's `/mutate` runs the mutate phase and `/validate` the
validate phase (through `Engine.mutate` and `Engine.validate`); `lint`, `test` (all three runners) and
`audit` run both phases in one call, so that no surface can disagree with another about what the
policies say. Offline surfaces build their Requests with `Request.for_object`; only the server knows about
HTTP. Matching happens inside each evaluator; `decide` turns the results into the decision.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from dataclasses import dataclass, field
from functools import cached_property

from admission.decide import Decision, decide
from admission.engines import Context, Evaluator, PolicyInfo
from admission.patch import copy_document, diff
from admission.results import FailurePolicy, RuleResult, Status
from admission.review import Request
from admission.types import Object, PatchOperation

log = logging.getLogger("admission.engine")


class Phase(enum.Flag):
    """Which phases of the pipeline to run."""

    MUTATE = enum.auto()
    VALIDATE = enum.auto()
    ALL = MUTATE | VALIDATE


@dataclass
class Review:
    """What the pipeline made of one request."""

    request: Request  # as validated: its object is the mutated one
    decision: Decision  # over every result of the phases run
    mutated: Object | None  # the object after the mutate phase (the request's own when nothing mutated)
    mutate_results: list[RuleResult] = field(default_factory=list)
    validate_results: list[RuleResult] = field(default_factory=list)
    # the object as each mutating policy left it (only with Engine.review(per_policy=True))
    after: dict[str, Object] = field(default_factory=dict)
    original: Object | None = None  # the request's object as it came
    mutate_allowed: bool = True  # whether the mutate phase alone allows the request

    @property
    def results(self) -> list[RuleResult]:
        return [*self.mutate_results, *self.validate_results]

    @cached_property
    def patch(self) -> list[PatchOperation]:
        """The JSONPatch from the request's object to the mutated one (computed on first use)."""
        if self.original is None or self.mutated is None or not self.mutate_allowed:
            return []
        return diff(self.original, self.mutated)


# The server's /mutate answer: kept as a name for callers that used it.
MutateOutcome = Review


@dataclass
class Engine:
    evaluators: list[Evaluator] = field(default_factory=list)
    _steps: list[Engine] | None = field(default=None, init=False, repr=False, compare=False)
    _mutates: bool | None = field(default=None, init=False, repr=False, compare=False)

    def policies(self) -> list[PolicyInfo]:
        return [p for e in self.evaluators for p in e.policies()]

    @property
    def mutates(self) -> bool:
        """Whether any policy has mutating rules (else the mutate phase is skipped)."""
        if self._mutates is None:
            self._mutates = any(p.mutates for p in self.policies())
        return self._mutates

    # -- the pipeline -------------------------------------------------------------------------------

    def review(self, request: Request, ctx: Context | None = None, phases: Phase = Phase.ALL, *,
               per_policy: bool = False) -> Review:
        """Run the phases asked for on one request: mutate (each mutating rule in order on the result of
        the previous ones), then validate the mutated object, then decide over every result.

        per_policy: mutate one Kyverno policy at a time and keep each one's result in Review.after (the
        kyverno CLI compares patchedResources per policy)."""
        ctx = ctx or Context()
        original = request.object
        mutated = original
        mutate_results: list[RuleResult] = []
        after: dict[str, Object] = {}
        mutate_decision: Decision | None = None
        if Phase.MUTATE in phases and original is not None and (self.mutates or per_policy):
            if per_policy:
                mutated = original
                for step in self.steps():
                    mutated, rs = step._mutate(dataclasses.replace(request, object=mutated), mutated, ctx)
                    mutate_results.extend(rs)
                    for info in step.policies():
                        after[info.name] = mutated
            else:
                mutated, mutate_results = self._mutate(request, original, ctx)
            mutate_decision = decide(mutate_results)
        validated = request
        if mutated is not original and mutated != original:
            validated = dataclasses.replace(request, object=mutated)
        validate_results = self._validate(validated, ctx) if Phase.VALIDATE in phases else []
        if mutate_decision is not None and not validate_results:
            decision = mutate_decision
        else:
            decision = decide([*mutate_results, *validate_results])
        mutate_allowed = mutate_decision is None or mutate_decision.allowed
        return Review(validated, decision, mutated, mutate_results, validate_results, after, original, mutate_allowed)

    def validate(self, request: Request, ctx: Context | None = None) -> Decision:
        """The validate phase alone (the server's /validate)."""
        return self.review(request, ctx, Phase.VALIDATE).decision

    def mutate(self, request: Request, ctx: Context | None = None) -> Review:
        """The mutate phase alone, with its patch (the server's /mutate)."""
        outcome = self.review(request, ctx, Phase.MUTATE)
        outcome.patch  # noqa: B018 - computed here, inside the deadline the caller runs this under
        return outcome

    def results(self, request: Request, ctx: Context | None = None) -> list[RuleResult]:
        """Every validating rule's result for the request (the validate phase's results)."""
        return self.review(request, ctx, Phase.VALIDATE).validate_results

    def steps(self) -> list[Engine]:
        """The engine split into one Engine per mutating Kyverno policy, of either Kyverno dialect (other
        evaluators stay whole)."""
        if self._steps is None:
            from admission.engines.yaml import KyvernoEvaluator

            steps: list[Engine] = []
            for evaluator in self.evaluators:
                if isinstance(evaluator, KyvernoEvaluator):
                    steps.extend(Engine([KyvernoEvaluator([p])]) for p in evaluator.compiled if p.mutates)
                elif hasattr(evaluator, "per_policy"):  # another dialect that mutates one policy at a time
                    steps.extend(Engine([e]) for e in evaluator.per_policy())
                else:
                    steps.append(Engine([evaluator]))
            self._steps = steps
        return self._steps

    def _validate(self, request: Request, ctx: Context) -> list[RuleResult]:
        out: list[RuleResult] = []
        for evaluator in self.evaluators:
            try:
                out.extend(evaluator.validate(request, ctx))
            except Exception as exc:  # an engine bug must not take the request down: fail closed
                log.exception("evaluator %s crashed on %s", type(evaluator).__name__, request.uid)
                out.append(_crash(evaluator, exc))
        return out

    def _mutate(self, request: Request, original: Object, ctx: Context) -> tuple[Object, list[RuleResult]]:
        obj = copy_document(original)
        results: list[RuleResult] = []
        for evaluator in self.evaluators:
            try:
                obj, rs = evaluator.mutate(request, obj, ctx)
                results.extend(rs)
            except Exception as exc:
                log.exception("evaluator %s crashed mutating %s", type(evaluator).__name__, request.uid)
                results.append(_crash(evaluator, exc))
        return obj, results


def _crash(evaluator: Evaluator, exc: Exception) -> RuleResult:
    return RuleResult(
        policy=type(evaluator).__name__,
        rule="",
        status=Status.ERROR,
        message=f"internal error: {type(exc).__name__}: {exc}",
        failure_policy=FailurePolicy.FAIL,
    )
