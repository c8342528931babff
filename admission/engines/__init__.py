"""The evaluator interface every policy dialect implements.

An evaluator holds the compiled policies of one dialect and answers for a whole request at once (so a
backend can batch: the Rego engine converts the input once and queries every constraint in one go).
It never raises for a policy outcome: each rule evaluated yields a RuleResult, errors included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from admission.manifests import Document
from admission.results import RuleResult
from admission.review import Request
from admission.state import ClusterState
from admission.types import Object


@dataclass
class Context:
    """What evaluation may consult beyond the request: cluster state, and a deadline (time.monotonic())."""

    state: ClusterState = field(default_factory=ClusterState)
    deadline: float | None = None
    # `test` asks for the results of rules that did not apply too (Kyverno's skip); the server does not.
    report_skips: bool = False

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def check(self) -> None:
        """Raise DeadlineExceeded once the deadline has passed. Evaluators call it between rules and per element
        of their loops, so an evaluation past its deadline ends soon after and frees its thread; the rule's
        error handling turns the exception into an error result that follows its failurePolicy."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DeadlineExceeded("deadline exceeded")


class DeadlineExceeded(Exception):  # noqa: N818 - named for what happened, as TimeoutError is
    """Evaluation passed its Context's deadline (raised by Context.check)."""


# The operations an admission request can have, in the order webhook registrations list them.
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")


@dataclass(frozen=True)
class Target:
    """What one rule can apply to: a kind (with its subresource) and operations, in one phase. `*` stands
    for any. Webhook registrations are derived from these (admission.webhooks), so the API server sends
    exactly the requests some rule may act on."""

    phase: str  # "mutate" | "validate"
    group: str = "*"
    version: str = "*"
    kind: str = "*"
    subresource: str = ""  # "" the resource itself, "*" any subresource
    operations: tuple[str, ...] = ("CREATE", "UPDATE")


@dataclass(frozen=True)
class Skips:
    """Requests a policy never acts on, in the terms a webhook registration can express: a user, a group, a
    namespace named exactly. Each is a promise that every rule of the policy skips such a request (an
    exclusion of the rule itself), so a webhook serving only such policies may leave them out."""

    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    namespaces: frozenset[str] = frozenset()

    def __and__(self, other: Skips) -> Skips:
        return Skips(self.users & other.users, self.groups & other.groups, self.namespaces & other.namespaces)


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    dialect: str  # "kyverno" | "rego" | "gatekeeper"
    source: str  # file:line it was loaded from
    rules: tuple[str, ...] = ()
    mutates: bool = False
    validates: bool = True
    description: str = ""
    # (rule name as its results carry it, what the rule checks): one entry per rule reports can name
    rule_docs: tuple[tuple[str, str], ...] = ()
    targets: tuple[Target, ...] = ()
    # how policy reports classify its results (Kyverno's policies.kyverno.io/category and /severity); "" unknown
    category: str = ""
    severity: str = ""
    # how the webhook that sends this policy its requests is registered (admission.webhooks)
    failure_policy: str = "Fail"  # when the server cannot answer: Fail (deny) or Ignore (admit)
    timeout_seconds: int | None = None  # the API server's wait for an answer (None: the registration's default)
    skips: Skips = Skips()
    engine: str = ""  # which evaluator runs it, where a dialect has several (Rego: "regopy" or "compiled")


class Evaluator(Protocol):
    """One dialect's compiled policies."""

    def policies(self) -> list[PolicyInfo]: ...

    def validate(self, request: Request, ctx: Context) -> list[RuleResult]:
        """Results of every validating rule that applies to the request."""
        ...

    def mutate(self, request: Request, obj: Object, ctx: Context) -> tuple[Object, list[RuleResult]]:
        """Apply every mutating rule that applies, in order, to a copy of obj; return it with the results."""
        ...


class PolicyError(Exception):
    """A policy that cannot be loaded or compiled; the message names its file and line."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


N = TypeVar("N", bound="Named")


class Named(Protocol):
    """What a dialect's parsed policy exposes for the set's uniqueness check."""

    @property
    def kind(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def source(self) -> str: ...


def parse_each(docs: Iterable[Document], parse: Callable[[Document], N]) -> list[N]:
    """`parse` applied to each document of a dialect. A shape the dialect's checks did not foresee is still the
    policy's fault, reported at its place; a (kind, namespace, name) defined twice is an error naming both."""
    out: list[N] = []
    seen: dict[tuple[str, str, str], str] = {}
    for doc in docs:
        try:
            policy = parse(doc)
        except PolicyError:
            raise
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
            raise PolicyError(f"{doc.file}:{doc.line}", f"malformed policy ({type(exc).__name__}: {exc})") from None
        key = (policy.kind, policy.namespace, policy.name)
        if key in seen:
            raise PolicyError(policy.source, f"{policy.kind} {policy.name} is also defined at {seen[key]}")
        seen[key] = policy.source
        out.append(policy)
    return out
