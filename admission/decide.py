"""Combine rule results into one admission decision: enforcement actions and failure policies live here only."""

from __future__ import annotations

from dataclasses import dataclass, field

from admission.results import Action, FailurePolicy, RuleResult, Status


@dataclass(frozen=True)
class Decision:
    allowed: bool
    message: str = ""
    warnings: list[str] = field(default_factory=list)
    results: list[RuleResult] = field(default_factory=list)

    @property
    def denials(self) -> list[RuleResult]:
        return [r for r in self.results if denies(r)]

    @property
    def code(self) -> int:
        """The HTTP status a denial answers with: the first denial's reason's (as the API server answers a
        ValidatingAdmissionPolicy's), else 403 Forbidden."""
        for r in self.denials:
            return REASON_CODES.get(r.reason, 403)
        return 403


REASON_CODES = {"Unauthorized": 401, "Forbidden": 403, "RequestEntityTooLarge": 413, "Invalid": 422}


def denies(r: RuleResult) -> bool:
    """Whether this result alone blocks the request."""
    if r.status == Status.FAIL:
        return r.action == Action.ENFORCE
    if r.status == Status.ERROR:
        return r.failure_policy == FailurePolicy.FAIL
    return False


def line(r: RuleResult) -> str:
    text = r.message or ("rule failed" if r.status == Status.FAIL else "")
    if r.status == Status.ERROR:
        text = f"error evaluating policy: {text}" if text else "error evaluating policy"
    return f"[{r.source}] {text}"


def decide(results: list[RuleResult]) -> Decision:
    denied = [r for r in results if denies(r)]
    warnings: list[str] = []
    for r in results:
        if r in denied:
            continue
        if r.status == Status.WARN:
            warnings.append(line(r))
        elif r.status == Status.FAIL and r.action in (Action.AUDIT, Action.WARN):
            warnings.append(line(r))
        elif r.status == Status.ERROR:  # failurePolicy Ignore: allowed, but say so
            warnings.append(line(r) + " (ignored: failurePolicy Ignore)")
    message = "\n".join(line(r) for r in denied)
    return Decision(allowed=not denied, message=message, warnings=warnings, results=list(results))


def break_glass(decision: Decision, note: str) -> Decision:
    """The break-glass override (admission.breakglass): a denied decision allowed, each denial it had returned
    as a warning that says so, ahead of the warnings it already had."""
    if decision.allowed:
        return decision
    denials = decision.message.splitlines() or ["[admission] denied"]
    warnings = [f"[break-glass] would deny: {d} ({note})" for d in denials]
    return Decision(True, "", [*warnings, *decision.warnings], decision.results)
