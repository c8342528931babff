"""The one place Kyverno's and Gatekeeper's CEL kinds meet the CEL core: compile an expression at load,
evaluate it in a request's scope.

A Scope holds what expressions see (`object`, `oldObject`, `request`, `namespaceObject`, `params`, names a
kind adds such as `generator`, and the policy's `variables`), bound once per level of the variables'
dependencies (see Scope).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from dataclasses import field as dc_field
from typing import Any

from admission.engines import Context, PolicyError
from admission.engines.cel import expr as core
from admission.engines.cel.cost import PER_POLICY_BUDGET
from admission.engines.cel.syntax import passes
from admission.engines.cel.syntax.ast import Expr
from admission.prune import Paths
from admission.review import Request
from admission.types import Object

EvalError = core.EvalError  # an expression failed at run time (a missing field, a type error, a limit...)


@dataclass(frozen=True)
class Expression:
    """One CEL expression as written, where it is (file:line), its compiled program, and the policy
    variables it reads (`variables.<name>`)."""

    text: str
    where: str
    field: str  # where in the document, e.g. spec.validations[0].expression
    program: core.Program
    reads: tuple[str, ...] = ()
    # the tree as compiled, after the cel-go compatibility passes (what an expression reading it inlines)
    tree: Expr | None = dc_field(default=None, repr=False, compare=False)
    # the variables it reads are compiled into it (cel.bind), so it needs only the request's binding
    inlined: bool = False

    def describe(self) -> str:
        return f"{self.field}: {' '.join(self.text.split())}"


Definitions = tuple[tuple[str, Expression], ...]


def compile_expression(text: str, where: str, field: str, names: tuple[str, ...] = (),
                       object_types: tuple[str, ...] = (), definitions: Definitions = (),
                       template: str = "") -> Expression:
    """Compile once; a syntax or type error is a PolicyError at `where` naming the field and expression.
    names: variables beyond the Kubernetes ones the expression may read (e.g. `generator`); object_types:
    the typed object literals it may build (`Object{...}`, `JSONPatch{...}`: mutations); definitions: the
    policy's variables declared before it (read as `variables.<name>`); template: read a workload's pod
    template rather than a Pod (passes.pod_template_paths: the bodies generated for pod controllers).

    The passes, in order: pod_template_paths, typed_literals_as_dyn and declared_variables_present (what the
    expression needs to compile as cel-go compiles it), then presence_chains and lenient_or_value (to
    evaluate as cel-go does; dropped where the checker refuses the result), then the variables it reads
    inlined (dropped where that is too deep for cel-cpp's parser: Scope computes them first)."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyError(where, f"{field}: an expression is required")
    declared = tuple(name for name, _ in definitions)
    variables = (*core.KUBERNETES_VARIABLES, *names)
    try:
        tree = core.parse_expression(text, where=where)
        if template:
            tree = passes.pod_template_paths(tree, template)
        tree = passes.declared_variables_present(passes.typed_literals_as_dyn(tree, object_types), declared)
        program = core.compile_expression(text, where=where, variables=variables, libraries=libraries(),
                                          object_types=object_types, tree=tree)
    except core.LoadError as exc:
        problem = exc.problem
        raise PolicyError(where, f"{field}: {' '.join(text.split())}: {problem}{_unsupported(problem)}") from None
    reads = tuple(n for n in passes.variable_references(tree) if n in declared)
    compatible = passes.lenient_or_value(passes.presence_chains(tree))
    if compatible is not tree:
        try:
            program = core.compile_expression(text, where=where, variables=variables, libraries=libraries(),
                                              object_types=object_types, tree=compatible)
            tree = compatible
        except core.LoadError:
            pass  # a rewrite the checker refuses (typed operands): the expression as written
    inlined = False
    if reads:
        # the variables it reads compiled into it, so that it needs no binding of their values; where that
        # is too deep for the parser (dozens of chained variables), they are computed first (Scope)
        defs = [core.Definition(name, d.text, d.where, d.tree) for name, d in definitions]
        try:
            program = core.compile_expression(text, where=where, variables=variables, libraries=libraries(),
                                              object_types=object_types, definitions=defs, tree=tree)
            inlined = True
        except core.LoadError:
            pass
    return Expression(text, where, field, program, reads, tree, inlined)


# Kyverno's CEL libraries this engine does not implement (they read the cluster, the network or registries
# at evaluation time), by the name an expression calls them with.
UNSUPPORTED_LIBRARIES = {
    "resource": "Kyverno's resource library (resource.Get/List/Post: reading the cluster at evaluation time)",
    "http": "Kyverno's http library (http.Get/Post: calling services at evaluation time)",
    "globalContext": "Kyverno's globalContext library",
    "image": "Kyverno's image library (image(): parsing image references)",
    "imagedata": "Kyverno's imagedata library (reading registries at evaluation time)",
    "x509": "Kyverno's x509 library",
    "random": "Kyverno's random library",
    "yaml": "Kyverno's yaml library",
    "json": "Kyverno's json library",
    "time": "Kyverno's time library",
}


def _unsupported(problem: str) -> str:
    """A note naming the Kyverno library an undeclared reference belongs to, or ""."""
    for name, what in UNSUPPORTED_LIBRARIES.items():
        if f"undeclared reference to '{name}'" in problem:
            return f"; {what} is not supported"
    return ""


def libraries() -> tuple[core.Library, ...]:
    """The Kubernetes CEL libraries and Kyverno's (admission.engines.cel.kyverno_library)."""
    from admission.engines.cel.expr import default_libraries
    from admission.engines.cel.kyverno_library import KYVERNO_LIBRARIES

    return (*default_libraries(), *KYVERNO_LIBRARIES)


@dataclass
class Scope:
    """What the expressions of one policy see on one request: `object`, `oldObject`, `request`,
    `namespaceObject`, `params`, names a kind adds (`generator`), and the policy's `variables`.

    An expression that reads variables usually has them compiled in (compile_expression), and reads the
    request as bound once. Where that was too deep to compile, the variables are computed on first need,
    in rounds: those that read no other variable from the request as bound, then those that read only
    computed ones from one more binding, and so on; so the request is bound once per level of the
    variables' dependencies, never once per expression. A variable whose expression fails is left out,
    and an expression that reads it fails with its error."""

    object: Object | None
    old_object: Object | None
    request: dict[str, Any]
    namespace_object: Object | None = None
    params: Any = None
    variables: tuple[tuple[str, Expression], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    deadline: float | None = None
    # what the policy's expressions can read of object and oldObject (core.read_paths): only that is bound;
    # None binds them whole
    reads: Mapping[str, Paths | None] | None = None
    _bound: core.Activation | None = field(default=None, init=False, repr=False)  # with the variables' values
    _request: core.Activation | None = field(default=None, init=False, repr=False)  # without them
    _failed: dict[str, str] = field(default_factory=dict, init=False, repr=False)
    # the API server's per-policy cost budget: every expression of the policy evaluated on this request
    _budget: core.Budget = field(default_factory=lambda: core.Budget(PER_POLICY_BUDGET), init=False, repr=False)

    def _values(self, variables: dict[str, Any]) -> dict[str, Any]:
        return {"object": self.object, "oldObject": self.old_object, "request": self.request,
                "namespaceObject": self.namespace_object, "params": self.params, "variables": variables,
                "authorizer": None, **self.extra}

    def bound(self) -> core.Activation:
        if self._bound is None:
            values: dict[str, Any] = {}
            if self._request is None:
                self._request = core.bind(self._values(values), self.reads)
            bound = self._request
            pending = list(self.variables)
            while pending:
                done = set(values) | set(self._failed)
                ready = [(n, e) for n, e in pending if all(r in done for r in e.reads)] or pending[:1]
                for name, expr in ready:
                    why = next((self._failed[r] for r in expr.reads if r in self._failed), "")
                    if why:
                        self._failed[name] = why
                        continue
                    try:
                        values[name] = expr.program.evaluate(bound, deadline=self.deadline, budget=self._budget)
                    except core.EvalError as exc:
                        self._failed[name] = f"variable {name!r}: {exc}"
                pending = [p for p in pending if p not in ready]
                if values:
                    bound = core.bind(self._values(dict(values)), self.reads)
            self._bound = bound
        return self._bound

    def evaluate(self, expression: Expression) -> Any:
        """The expression's value; EvalError when it fails."""
        if not expression.reads or expression.inlined:
            if self._request is None:
                self._request = self._bound or core.bind(self._values({}), self.reads)
            return expression.program.evaluate(self._request, deadline=self.deadline, budget=self._budget)
        bound = self.bound()
        for name in expression.reads:
            if name in self._failed:
                raise EvalError(self._failed[name])
        return expression.program.evaluate(bound, deadline=self.deadline, budget=self._budget)

    def rebind(self, **changes: Any) -> Scope:
        """A new scope with some values changed (the object after a mutation, an extra name), charging the
        same per-policy budget."""
        scope = replace(self, **changes)
        scope._budget = self._budget
        return scope


def scope_reads(holder: Any, variables: tuple[tuple[str, Expression], ...]) -> dict[str, Paths | None]:
    """What the expressions of a policy (found anywhere in `holder`) can read of the request's objects, for
    its Scope's binding. The variables' own expressions count only when some expression reads a variable
    without having it compiled in: only then does Scope compute the variables (on that same binding)."""
    var_programs = [e.program for _, e in variables]
    own = {id(p) for p in var_programs}
    users = [x for x in core.held(holder) if isinstance(x, Expression) and id(x.program) not in own]
    computed = any(e.reads and not e.inlined for e in users)
    return core.read_paths(holder, exclude=() if computed else var_programs)


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
