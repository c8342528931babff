"""The one place Kyverno's and Gatekeeper's CEL kinds meet the CEL core: compile an expression at load,
evaluate it in a request's scope.

A Scope holds what expressions see: `object`, `oldObject`, `request`, `namespaceObject`, `params` and
`variables` (each variable computed on first use, once per scope: a request binds its values once, and
every expression of the policy reads them from there), plus names a kind adds (`generator`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from admission.engines import PolicyError
from admission.review import Request
from admission.types import Object


class EvalError(Exception):
    """An expression failed at run time (a missing field, a type error, the cost budget...)."""


@dataclass(frozen=True)
class Expression:
    """One CEL expression as written, where it is (file:line), and its compiled program."""

    text: str
    where: str
    field: str  # where in the document, e.g. spec.validations[0].expression
    program: Any = None

    def describe(self) -> str:
        return f"{self.field}: {' '.join(self.text.split())}"


def compile_expression(text: str, where: str, field: str, names: tuple[str, ...] = ()) -> Expression:
    """Compile once; a syntax or type error is a PolicyError at `where` naming the field and expression.
    names: variables beyond the standard ones the expression may use."""
    from admission.engines.cel import kyverno_core

    if not isinstance(text, str) or not text.strip():
        raise PolicyError(where, f"{field}: an expression is required")
    try:
        program = kyverno_core.compile(text, names)
    except kyverno_core.CompileError as exc:
        raise PolicyError(where, f"{field}: {exc} (in {' '.join(text.split())!r})") from None
    return Expression(text, where, field, program)


@dataclass
class Scope:
    """What the expressions of one policy see on one request."""

    object: Object | None
    old_object: Object | None
    request: dict[str, Any]
    namespace_object: Object | None = None
    params: Any = None
    variables: tuple[tuple[str, Expression], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    deadline: float | None = None
    _bound: Any = field(default=None, init=False, repr=False)

    def evaluate(self, expression: Expression) -> Any:
        """The expression's value; EvalError when it fails."""
        from admission.engines.cel import kyverno_core

        if self._bound is None:
            self._bound = kyverno_core.bind(
                {"object": self.object, "oldObject": self.old_object, "request": self.request,
                 "namespaceObject": self.namespace_object, "params": self.params, **self.extra},
                self.variables, self.deadline)
        try:
            return kyverno_core.evaluate(expression.program, self._bound)
        except kyverno_core.EvaluationError as exc:
            raise EvalError(str(exc)) from None


def request_wire(request: Request) -> dict[str, Any]:
    """The `request` variable, as the API server gives it to admission policies."""
    wire = request.to_wire()
    wire.pop("object", None)
    wire.pop("oldObject", None)
    wire.setdefault("subResource", request.sub_resource)
    wire["requestKind"] = wire["kind"]
    wire["requestResource"] = wire.get("resource")
    wire["requestSubResource"] = request.sub_resource
    return wire


def namespace_object(namespace: str, labels_of: Callable[[str], dict[str, Any] | None], *,
                     cluster_scoped: bool = False) -> Object | None:
    """`namespaceObject`: the Namespace the request is in (null for cluster-scoped objects)."""
    if cluster_scoped or not namespace:
        return None
    labels = labels_of(namespace)
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": dict(labels or {})}}
