"""ClusterPolicy/Policy rules written in CEL: `validate.cel` and `celPreconditions`.

`validate.cel` holds `expressions[]` (expression, message or messageExpression) and optional
`variables[]` (name + expression, read as `variables.<name>`); `celPreconditions[]` (name + expression)
make the rule apply only where all hold. Expressions see `object`, `oldObject`, `request`,
`namespaceObject` and `variables`, as in a ValidatingAdmissionPolicy; they are compiled once, when the
policy loads (admission.engines.cel.kyverno_eval), and a rule generated for pod controllers gets its own
compiled copy, its trees rewritten to read the template's pod (Rule.template; the pass
admission.engines.cel.syntax.passes.pod_template_paths).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from admission.engines import Context
from admission.engines.cel.kyverno_eval import (
    EvalError,
    Expression,
    Scope,
    compile_expression,
    namespace_object,
    scope_reads,
)
from admission.prune import Paths
from admission.types import Object


@dataclass(frozen=True)
class CelRule:
    preconditions: tuple[tuple[str, Expression], ...] = ()
    variables: tuple[tuple[str, Expression], ...] = ()
    # (expression, static message, messageExpression)
    expressions: tuple[tuple[Expression, str, Expression | None], ...] = ()
    validates: bool = False
    # what its expressions can read of the objects (bound per request, the rest left out)
    # (computed, never given: a copy with other expressions computes its own)
    reads: Mapping[str, Paths | None] | None = field(default=None, init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "reads", scope_reads((self.preconditions, self.variables, self.expressions), self.variables))


def compile_rule(spec: dict[str, Any], where: str, path: str, template: str = "") -> CelRule | None:
    """The CEL of a rule (None when it has none). Raises PolicyError for an expression that does not compile.
    template: for a rule generated for pod controllers, the pod template its expressions read ("template",
    "jobTemplate": admission.engines.cel.syntax.passes.pod_template_paths)."""
    preconditions = tuple(
        (str(p.get("name") or ""), compile_expression(str(p.get("expression") or ""), where,
                                                      f"{path}.celPreconditions[{i}].expression",
                                                      template=template))
        for i, p in enumerate(spec.get("celPreconditions") or []) if isinstance(p, dict))
    cel = (spec.get("validate") or {}).get("cel") if isinstance(spec.get("validate"), dict) else None
    if cel is None and not preconditions:
        return None
    variables: list[tuple[str, Expression]] = []
    expressions: list[tuple[Expression, str, Expression | None]] = []
    if isinstance(cel, dict):
        base = f"{path}.validate.cel"
        for i, v in enumerate(cel.get("variables") or []):
            if isinstance(v, dict):
                variables.append((str(v.get("name") or ""), compile_expression(
                    str(v.get("expression") or ""), where, f"{base}.variables[{i}].expression",
                    definitions=tuple(variables), template=template)))
        for i, e in enumerate(cel.get("expressions") or []):
            if not isinstance(e, dict):
                continue
            expr = compile_expression(str(e.get("expression") or ""), where, f"{base}.expressions[{i}].expression",
                                      definitions=tuple(variables), template=template)
            message_expr = None
            if e.get("messageExpression"):
                message_expr = compile_expression(str(e["messageExpression"]), where,
                                                  f"{base}.expressions[{i}].messageExpression",
                                                  definitions=tuple(variables), template=template)
            expressions.append((expr, str(e.get("message") or ""), message_expr))
    return CelRule(preconditions, tuple(variables), tuple(expressions), validates=cel is not None)


def scope_for(rule: CelRule, variables: Any, obj: Object | None, ctx: Context) -> Scope:
    """The scope of a rule's expressions: the request as the Kyverno variables hold it (with the object
    mutations have produced so far), and the namespace the resource is in."""
    wire = dict(variables.data.get("request") or {})
    old = wire.pop("oldObject", None)
    wire.pop("object", None)
    wire.setdefault("requestKind", wire.get("kind"))
    wire.setdefault("requestResource", wire.get("resource"))
    subject = obj if obj is not None else (old or {})
    ns = str(wire.get("namespace") or (subject.get("metadata") or {}).get("namespace") or "")
    return Scope(obj, old, wire, namespace_object(ns, ctx, cluster_scoped=subject.get("kind") == "Namespace"),
                 variables=rule.variables, deadline=ctx.deadline, reads=rule.reads)


def preconditions_hold(rule: CelRule, scope: Scope) -> tuple[bool, str]:
    """Whether every celPrecondition holds, and if not, which one did not. Raises EvalError."""
    for name, expr in rule.preconditions:
        value = scope.evaluate(expr)
        if value is not True:
            if value is not False:
                raise EvalError(f"celPrecondition {name!r} returned {type(value).__name__}, not a bool")
            return False, f"celPrecondition {name!r} is false"
    return True, ""


def failures(rule: CelRule, scope: Scope) -> list[str]:
    """The messages of the expressions that do not hold (empty: the rule passes). Raises EvalError."""
    out: list[str] = []
    for expr, message, message_expr in rule.expressions:
        value = scope.evaluate(expr)
        if value is True:
            continue
        if value is not False:
            raise EvalError(f"{expr.describe()} returned {type(value).__name__}, not a bool")
        out.append(message_of(scope, expr, message, message_expr))
    return out


def message_of(scope: Scope, expr: Expression, message: str, message_expr: Expression | None) -> str:
    """A failed validation's message: messageExpression's value when it gives a non-empty string, else the
    message, else the API server's `failed expression: <expression>`."""
    if message_expr is not None:
        try:
            value = scope.evaluate(message_expr)
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())
        except EvalError:
            pass
    if message:
        return " ".join(message.split())
    return f"failed expression: {' '.join(expr.text.split())}"
