"""Gatekeeper ConstraintTemplates' `K8sNativeValidation` (CEL) code, and which code entry runs.

A template's target may carry a `K8sNativeValidation` code entry beside (or instead of) its Rego:
`source.variables[]` (name, expression) and `source.validations[]` (expression with message or
messageExpression), in the Kubernetes CEL of ValidatingAdmissionPolicy. Gatekeeper binds
`variables.params` to the constraint's `spec.parameters` and `variables.anyObject` to the object (the old
object on DELETE), beside `object`, `oldObject`, `request` and `namespaceObject`.

The engine choice (`admission test --engine cel|rego|auto`, ENGINE) picks the entry where a template has
both: `auto` (the default) and `cel` run the CEL, `rego` the Rego; a template with one entry runs that one. `split` sorts the Gatekeeper
documents of a policy set accordingly; constraints follow their template.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from admission.engines import Context, PolicyError, PolicyInfo
from admission.engines.cel.kyverno_eval import (
    EvalError,
    Expression,
    Scope,
    compile_expression,
    namespace_object,
    request_wire,
    scope_reads,
)
from admission.engines.yaml import schema
from admission.engines.yaml.cel import message_of
from admission.manifests import Document
from admission.results import Action, FailurePolicy, RuleResult, Status
from admission.review import Request
from admission.state import StateUnavailable
from admission.types import Object

TARGET = "admission.k8s.gatekeeper.sh"
CEL_ENGINE = "K8sNativeValidation"
ENGINES = ("auto", "cel", "rego")

# Which code entry runs where a template has both (see the module's docstring).
ENGINE: ContextVar[str] = ContextVar("gatekeeper_engine", default="auto")


@contextlib.contextmanager
def engine(choice: str) -> Iterator[None]:
    """Run the block with this engine choice (auto, cel or rego)."""
    if choice not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {choice!r}")
    token = ENGINE.set(choice)
    try:
        yield
    finally:
        ENGINE.reset(token)


def _is_template(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == "ConstraintTemplate" and str(
        obj.get("apiVersion", "")).startswith("templates.gatekeeper.sh/")


def _is_constraint(obj: Any) -> bool:
    return isinstance(obj, dict) and str(obj.get("apiVersion", "")).startswith("constraints.gatekeeper.sh/")


def _targets(obj: dict[str, Any]) -> list[dict[str, Any]]:
    targets = (obj.get("spec") or {}).get("targets") or []
    return [t for t in targets if isinstance(t, dict) and t.get("target", TARGET) == TARGET]


def cel_source(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The source of a template's K8sNativeValidation code entry, or None."""
    for target in _targets(obj):
        for code in target.get("code") or []:
            if isinstance(code, dict) and code.get("engine") == CEL_ENGINE:
                source = code.get("source")
                return source if isinstance(source, dict) else {}
    return None


def has_rego(obj: dict[str, Any]) -> bool:
    for target in _targets(obj):
        if isinstance(target.get("rego"), str) and target["rego"].strip():
            return True
        for code in target.get("code") or []:
            if isinstance(code, dict) and str(code.get("engine", "")).lower() == "rego":
                return True
    return False


def template_kind(obj: dict[str, Any]) -> str:
    return str((((obj.get("spec") or {}).get("crd") or {}).get("spec") or {}).get("names", {}).get("kind") or "")


def runs_cel(obj: dict[str, Any], choice: str | None = None) -> bool:
    """Whether a template's CEL entry runs under the engine choice (ENGINE when None)."""
    choice = choice or ENGINE.get()
    if cel_source(obj) is None:
        return False
    return choice in ("auto", "cel") or not has_rego(obj)


def split(docs: list[Document], choice: str | None = None) -> tuple[list[Document], list[Document]]:
    """(documents for the Rego engine, documents for the CEL engine): templates whose CEL runs, and the
    constraints of their kinds, go to CEL; the rest to Rego."""
    choice = choice or ENGINE.get()
    cel_kinds = {template_kind(d.obj) for d in docs if _is_template(d.obj) and runs_cel(d.obj, choice)}
    rego: list[Document] = []
    cel: list[Document] = []
    for d in docs:
        if _is_template(d.obj):
            (cel if template_kind(d.obj) in cel_kinds else rego).append(d)
        elif _is_constraint(d.obj) and str(d.obj.get("kind") or "") in cel_kinds:
            cel.append(d)
        else:
            rego.append(d)
    return rego, cel


# ---- the CEL engine's templates and constraints ------------------------------------------------------

# Gatekeeper's own variables, before the template's: the constraint's parameters and the object under
# review (the old one on DELETE).
ANY_OBJECT = 'has(request.operation) && request.operation == "DELETE" && oldObject != null ? oldObject : object'


@dataclass(frozen=True)
class CelTemplate:
    name: str
    kind: str
    source: str  # file:line
    variables: tuple[tuple[str, Expression], ...]
    validations: tuple[tuple[Expression, str, Expression | None], ...]


@dataclass(frozen=True)
class CelConstraint:
    kind: str
    name: str
    template: CelTemplate
    match: dict[str, Any]
    parameters: Any
    action: Action
    source: str


def _expression(doc: Document, text: Any, path: tuple[str | int, ...],
                definitions: tuple[tuple[str, Expression], ...]) -> Expression:
    field = schema.format_path(path)
    if not isinstance(text, str) or not text.strip():
        raise PolicyError(f"{doc.file}:{doc.line}", f"{field}: an expression is required")
    try:
        return compile_expression(text, f"{doc.file}:{doc.line}", field, definitions=definitions)
    except PolicyError as exc:
        raise PolicyError(f"{doc.file}:{schema.line_of(doc, path)}", exc.message) from None


def parse_template(doc: Document) -> CelTemplate:
    obj = doc.obj
    where = f"{doc.file}:{doc.line}"
    name = str((obj.get("metadata") or {}).get("name") or "")
    kind = template_kind(obj)
    if not name or not kind:
        raise PolicyError(where, "ConstraintTemplate needs metadata.name and spec.crd.spec.names.kind")
    source = cel_source(obj)
    if source is None:
        raise PolicyError(where, f"ConstraintTemplate {name} has no {CEL_ENGINE} code")
    t_index, c_index = next((ti, ci) for ti, t in enumerate((obj.get("spec") or {}).get("targets") or [])
                            if isinstance(t, dict) for ci, c in enumerate(t.get("code") or [])
                            if isinstance(c, dict) and c.get("engine") == CEL_ENGINE)
    base: tuple[str | int, ...] = ("spec", "targets", t_index, "code", c_index, "source")
    unknown = [k for k in source if k not in ("variables", "validations", "matchConditions", "failurePolicy")]
    if unknown:
        hint = schema.did_you_mean(str(unknown[0]), ["variables", "validations"])
        raise PolicyError(f"{doc.file}:{schema.line_of(doc, (*base, str(unknown[0])))}",
                          f"{schema.format_path((*base, str(unknown[0])))}: unknown field{hint}")
    if source.get("matchConditions"):
        raise PolicyError(where, f"{schema.format_path((*base, 'matchConditions'))}: matchConditions in a "
                                 "template's CEL code are not supported")
    params = compile_expression("params", where, "params")
    variables: list[tuple[str, Expression]] = [
        ("params", params),
        ("anyObject", compile_expression(ANY_OBJECT, where, "anyObject", definitions=(("params", params),))),
    ]
    for i, v in enumerate(source.get("variables") or []):
        if not isinstance(v, dict) or not v.get("name"):
            raise PolicyError(where, f"{schema.format_path((*base, 'variables', i))}: a variable needs a name")
        variables.append((str(v["name"]), _expression(doc, v.get("expression"), (*base, "variables", i, "expression"),
                                                      tuple(variables))))
    validations: list[tuple[Expression, str, Expression | None]] = []
    for i, v in enumerate(source.get("validations") or []):
        if not isinstance(v, dict):
            raise PolicyError(where, f"{schema.format_path((*base, 'validations', i))}: must be a mapping")
        expr = _expression(doc, v.get("expression"), (*base, "validations", i, "expression"), tuple(variables))
        message_expr = None
        if v.get("messageExpression"):
            message_expr = _expression(doc, v["messageExpression"], (*base, "validations", i, "messageExpression"),
                                       tuple(variables))
        validations.append((expr, str(v.get("message") or ""), message_expr))
    if not validations:
        raise PolicyError(where, f"ConstraintTemplate {name}: its {CEL_ENGINE} code has no validations")
    return CelTemplate(name, kind, where, tuple(variables), tuple(validations))


def parse_constraint(doc: Document, templates: dict[str, CelTemplate]) -> CelConstraint:
    from admission.engines.rego.gatekeeper import constraint_action  # one reading of Gatekeeper's actions

    obj = doc.obj
    where = f"{doc.file}:{doc.line}"
    kind = str(obj.get("kind") or "")
    name = str((obj.get("metadata") or {}).get("name") or "")
    if not name:
        raise PolicyError(where, f"{kind} constraint has no metadata.name")
    template = templates.get(kind)
    if template is None:
        raise PolicyError(where, f"constraint {name}: no ConstraintTemplate defines kind {kind}")
    schema.validate(doc, "Constraint")
    spec = obj.get("spec") or {}
    match = spec.get("match") or {}
    if not isinstance(match, dict):
        raise PolicyError(where, f"constraint {name}: spec.match must be a mapping")
    return CelConstraint(kind, name, template, match, spec.get("parameters"), constraint_action(spec), where)


class GatekeeperCelEvaluator:
    """Constraints whose template's CEL code runs (see split)."""

    def __init__(self, constraints: list[CelConstraint]) -> None:
        self.constraints = constraints
        # per template: what its expressions can read of the objects (bound per request, the rest left out)
        self._reads = {c.template.name: scope_reads(c.template, c.template.variables) for c in constraints}

    @classmethod
    def from_documents(cls, docs: list[Document]) -> GatekeeperCelEvaluator:
        templates: dict[str, CelTemplate] = {}
        for d in docs:
            if _is_template(d.obj):
                t = parse_template(d)
                if t.kind in templates and templates[t.kind].name != t.name:
                    raise PolicyError(t.source, f"kind {t.kind} is also defined by template "
                                                f"{templates[t.kind].name} ({templates[t.kind].source})")
                templates[t.kind] = t
        constraints: list[CelConstraint] = []
        seen: set[tuple[str, str]] = set()
        for d in docs:
            if _is_constraint(d.obj):
                c = parse_constraint(d, templates)
                if (c.kind, c.name) in seen:
                    raise PolicyError(c.source, f"constraint {c.kind}/{c.name} is defined twice")
                seen.add((c.kind, c.name))
                constraints.append(c)
        return cls(constraints)

    def policies(self) -> list[PolicyInfo]:
        from admission.engines.rego.gatekeeper import constraint_targets

        return [
            PolicyInfo(c.name, "gatekeeper", c.source, (c.kind,),
                       description=f"Gatekeeper constraint {c.kind}/{c.name} (CEL)",
                       rule_docs=(("", f"Gatekeeper constraint {c.kind}/{c.name} (template {c.template.name}, CEL)"),),
                       targets=constraint_targets(c.match))
            for c in self.constraints
        ]

    def validate(self, request: Request, ctx: Context) -> list[RuleResult]:
        from admission.engines.rego.match import constraint_matches

        state = ctx.state

        def labels(ns: str) -> dict[str, Any] | None:
            try:
                return state.namespace_labels(ns)
            except StateUnavailable:
                return None

        out: list[RuleResult] = []
        for c in self.constraints:
            if not constraint_matches(c.match, request, labels)[0]:
                continue
            if ctx.expired():  # each expression checks the deadline too (Scope)
                out.append(RuleResult(c.name, "", Status.ERROR, "deadline exceeded", c.action, FailurePolicy.FAIL))
                continue
            ns = request.namespace or str((request.resource_object.get("metadata") or {}).get("namespace") or "")
            scope = Scope(request.object, request.old_object, request_wire(request),
                          namespace_object(ns, ctx), variables=c.template.variables,
                          # a constraint without parameters gives an empty map, as Gatekeeper binds it
                          params=c.parameters if c.parameters is not None else {},
                          deadline=ctx.deadline, reads=self._reads[c.template.name])
            for expr, message, message_expr in c.template.validations:
                try:
                    value = scope.evaluate(expr)
                except EvalError as exc:
                    out.append(RuleResult(c.name, "", Status.ERROR, f"{expr.describe()}: {exc}", c.action,
                                          FailurePolicy.FAIL))
                    continue
                if value is True:
                    continue
                if value is not False:
                    out.append(RuleResult(c.name, "", Status.ERROR, f"{expr.describe()} returned "
                                          f"{type(value).__name__}, not a bool", c.action, FailurePolicy.FAIL))
                    continue
                out.append(RuleResult(c.name, "", Status.FAIL, message_of(scope, expr, message, message_expr),
                                      c.action))
        return out

    def mutate(self, request: Request, obj: Object, ctx: Context) -> tuple[Object, list[RuleResult]]:
        return obj, []  # constraints never mutate
