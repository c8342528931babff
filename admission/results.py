"""Rule results are values: every rule evaluated yields one, errors included."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    WARN = "warn"
    ERROR = "error"
    SKIP = "skip"


class Action(StrEnum):
    """What a failing rule does to the request."""

    ENFORCE = "Enforce"  # deny
    AUDIT = "Audit"  # allow, report as a warning
    WARN = "Warn"  # allow, report as a warning (Gatekeeper's warn)
    DRYRUN = "DryRun"  # allow, report nowhere in the response (Gatekeeper's dryrun); logged and counted


class FailurePolicy(StrEnum):
    FAIL = "Fail"
    IGNORE = "Ignore"


@dataclass(frozen=True)
class RuleResult:
    policy: str
    rule: str
    status: Status
    message: str = ""
    action: Action = Action.ENFORCE
    failure_policy: FailurePolicy = FailurePolicy.FAIL
    # the field the rule failed on, as a JSON pointer into the object (`/spec/containers/0/image`), when known
    path: str = ""
    # the HTTP status reason a denial by this result answers with (a ValidatingAdmissionPolicy validation's
    # `reason`: Invalid, Forbidden, Unauthorized, RequestEntityTooLarge); empty: Forbidden
    reason: str = ""

    @property
    def source(self) -> str:
        """How a message names where it came from: `policy/rule`, or the constraint name alone."""
        return f"{self.policy}/{self.rule}" if self.rule and self.rule != self.policy else self.policy


def parse_action(value: object, default: Action = Action.ENFORCE) -> Action:
    """Kyverno's validationFailureAction / failureAction and Gatekeeper's enforcementAction, case-insensitively."""
    if not isinstance(value, str) or not value:
        return default
    v = value.strip().lower()
    if v in ("enforce", "deny"):
        return Action.ENFORCE
    if v == "audit":
        return Action.AUDIT
    if v == "warn":
        return Action.WARN
    if v == "dryrun":
        return Action.DRYRUN
    return default


def parse_failure_policy(value: object, default: FailurePolicy = FailurePolicy.FAIL) -> FailurePolicy:
    if isinstance(value, str) and value.strip().lower() == "ignore":
        return FailurePolicy.IGNORE
    if isinstance(value, str) and value.strip().lower() == "fail":
        return FailurePolicy.FAIL
    return default
