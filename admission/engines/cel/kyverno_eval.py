"""The one place Kyverno's and Gatekeeper's CEL kinds meet the CEL core: compile an expression at load,
evaluate it in a request's scope.

A Scope holds what expressions see: `object`, `oldObject`, `request`, `namespaceObject`, `params` and
`variables` (each variable computed on first use, once per scope: a request binds its values once, and
every expression of the policy reads them from there), plus names a kind adds (`generator`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from admission.engines import Context, PolicyError
from admission.engines.cel import expr as core
from admission.engines.cel.cost import PER_POLICY_BUDGET
from admission.review import Request
from admission.types import Object

EvalError = core.EvalError  # an expression failed at run time (a missing field, a type error, a limit...)


@dataclass(frozen=True)
class Expression:
    """One CEL expression as written, where it is (file:line), and its compiled program."""

    text: str
    where: str
    field: str  # where in the document, e.g. spec.validations[0].expression
    program: core.Program

    def describe(self) -> str:
        return f"{self.field}: {' '.join(self.text.split())}"


def compile_expression(text: str, where: str, field: str, names: tuple[str, ...] = (),
                       object_types: tuple[str, ...] = ()) -> Expression:
    """Compile once; a syntax or type error is a PolicyError at `where` naming the field and expression.
    names: variables beyond the Kubernetes ones the expression may read (e.g. `generator`); object_types:
    the typed object literals it may build (`Object{...}`, `JSONPatch{...}`: mutations)."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyError(where, f"{field}: an expression is required")
    from admission.engines.cel.celgo_compat import lenient_or_value, presence_chains, typed_literals_as_dyn

    source = typed_literals_as_dyn(text, object_types)  # `cond ? JSONPatch{...} : null` (celgo_compat)
    variables = (*core.KUBERNETES_VARIABLES, *names)
    try:
        program = core.compile_expression(source, where=where, variables=variables, libraries=libraries(),
                                          object_types=object_types)
    except core.LoadError as exc:
        raise PolicyError(where, f"{field}: {' '.join(text.split())}: {exc.problem}") from None
    compatible = lenient_or_value(presence_chains(source))  # as cel-go reads these (celgo_compat)
    if compatible != source:
        try:
            program = core.compile_expression(compatible, where=where, variables=variables, libraries=libraries(),
                                              object_types=object_types)
        except core.LoadError:
            pass  # a rewrite the checker refuses (typed operands): the expression as written
    return Expression(text, where, field, program)


def libraries() -> tuple[core.Library, ...]:
    """The Kubernetes CEL libraries and Kyverno's (admission.engines.cel.kyverno_library)."""
    from admission.engines.cel.expr import default_libraries
    from admission.engines.cel.kyverno_library import KYVERNO_LIBRARIES

    return (*default_libraries(), *KYVERNO_LIBRARIES)


@dataclass
class Scope:
    """What the expressions of one policy see on one request. The variables are computed in order, on
    first use of the scope, each seeing those before it; a variable whose expression fails makes the
    expressions that read it fail with its error."""

    object: Object | None
    old_object: Object | None
    request: dict[str, Any]
    namespace_object: Object | None = None
    params: Any = None
    variables: tuple[tuple[str, Expression], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    deadline: float | None = None
    _bound: core.Activation | None = field(default=None, init=False, repr=False)
    # the API server's per-policy cost budget: every expression of the policy evaluated on this request
    _budget: core.Budget = field(default_factory=lambda: core.Budget(PER_POLICY_BUDGET), init=False, repr=False)
    _failed: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def _values(self, variables: dict[str, Any]) -> dict[str, Any]:
        return {"object": self.object, "oldObject": self.old_object, "request": self.request,
                "namespaceObject": self.namespace_object, "params": self.params, "variables": variables,
                "authorizer": None, **self.extra}

    def bound(self) -> core.Activation:
        if self._bound is None:
            values: dict[str, Any] = {}
            for name, expr in self.variables:
                failed = self._failed_in(expr, values)
                if failed:
                    self._failed[name] = failed
                    continue
                try:
                    values[name] = expr.program.evaluate(core.bind(self._values(values)), deadline=self.deadline,
                                                         budget=self._budget)
                except core.EvalError as exc:
                    self._failed[name] = f"variable {name!r}: {exc}"
            self._bound = core.bind(self._values(values))
        return self._bound

    def _failed_in(self, expr: Expression, values: dict[str, Any]) -> str:
        for name, why in self._failed.items():
            if re.search(rf"\bvariables\s*\.\s*{re.escape(name)}\b", expr.text):
                return why
        return ""

    def evaluate(self, expression: Expression) -> Any:
        """The expression's value; EvalError when it fails."""
        bound = self.bound()
        if self._failed:
            why = self._failed_in(expression, {})
            if why:
                raise EvalError(why)
        return expression.program.evaluate(bound, deadline=self.deadline, budget=self._budget)

    def rebind(self, **changes: Any) -> Scope:
        """A new scope with some values changed (the object after a mutation, an extra name), charging the
        same per-policy budget."""
        scope = replace(self, **changes)
        scope._budget = self._budget
        return scope


def request_wire(request: Request) -> dict[str, Any]:
    """The `request` variable, as the API server gives it to admission policies (the core's)."""
    from admission.engines.cel.kubernetes import request_variable

    return request_variable(request)


def namespace_object(namespace: str, ctx: Context, *, cluster_scoped: bool = False) -> Object | None:
    """`namespaceObject`: the Namespace the request is in, null for a cluster-scoped object.

    The kyverno CLI's values file gives its labels (KyvernoContext.namespace_labels); else the cluster state
    holds it; a namespace the state does not hold exists all the same (the object is in it), without labels.
    Without cluster state it is null, so that an expression reading it fails (an error that follows the
    failure policy) rather than reading labels that are not there."""
    if cluster_scoped or not namespace:
        return None
    given = getattr(ctx, "namespace_labels", None)  # the kyverno CLI's values file (KyvernoContext)
    if isinstance(given, dict) and namespace in given:
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": namespace, "labels": dict(given[namespace])}}
    if not ctx.state.available:
        return None
    found = ctx.state.get("Namespace", namespace)
    if found is not None:
        return found
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {}}}
