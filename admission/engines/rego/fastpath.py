"""The compiled path for Gatekeeper templates: what the engine plugs in where it would ask regopy.

`compile_template(modules)` compiles a ConstraintTemplate's Rego (its module and libs, parsed) once; the
result's `violations(review, parameters, inventory, shared)` evaluates `violation` over the plain input, with no
conversion of the request; the constraints of one template on one review pass the same `shared()`, so what
does not read `input.parameters` is evaluated once for all of them. A template the compiler does not cover comes back as `Unsupported` with the
reason, and runs on regopy; `Route` says which, for `admission test -v` and the metrics.

An evaluation can still decline (`Declined`): a value the compiled evaluator cannot represent (an object
keyed by an array, say). The caller then evaluates that request on regopy; every other evaluation error is
the rule's error, as on regopy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from admission.engines.rego import ast
from admission.engines.rego.compiler import Compiled, Ctx, Shared, Unsupported, try_compile
from admission.engines.rego.values import UNDEFINED, UNSUPPORTED_VALUE, EvalError, Set, to_json

COMPILED = "compiled"
REGOPY = "regopy"


@dataclass(frozen=True)
class Route:
    """Which evaluator a template runs on, and why not the compiled one."""

    engine: str  # COMPILED or REGOPY
    reason: str = ""

    def __str__(self) -> str:
        return self.engine if not self.reason else f"{self.engine} ({self.reason})"


class Declined(Exception):
    """This evaluation needs regopy (a value the compiled evaluator cannot hold); the message says why."""


@dataclass(frozen=True)
class Violation:
    msg: Any
    details: Any = None


class CompiledTemplate:
    """A template's Rego, compiled: `violations(...)` per request."""

    route = Route(COMPILED)

    def __init__(self, compiled: Compiled, package: str) -> None:
        self._compiled = compiled
        self._violation = compiled.document(f"data.{package}.violation")
        self._nmemo = compiled.nmemo
        self.package = package

    def shared(self) -> Shared:
        """What the constraints of this template share on one review (with the same inventory): the rules
        and rule-body prefixes that do not read `input.parameters`, evaluated once."""
        return self._compiled.shared()

    def violations(self, review: Any, parameters: Any, inventory: Any = None, shared: Shared | None = None,
                   deadline: float | None = None) -> list[Violation]:
        """The violations for one request (`input.review`, `input.parameters`, `data.inventory`). Raises
        EvalError (the rule's error; DeadlineError past `deadline`) or Declined. Calls given the same `shared`
        must have the same review and inventory."""
        ctx = Ctx({"review": review, "parameters": parameters}, {"inventory": inventory} if inventory is not None else {},
                  self._nmemo, False, shared, deadline)
        try:
            out = self._violation(ctx)
        except EvalError as exc:
            if exc.code == UNSUPPORTED_VALUE:
                raise Declined(exc.message) from None
            raise
        except RecursionError:
            raise EvalError("eval_recursion_error", "the evaluation nests too deeply") from None
        if out is UNDEFINED:
            return []
        items = out if type(out) is Set else [out]
        found = []
        for v in items:
            if type(v) is dict:
                found.append(Violation(to_json(v.get("msg")), to_json(v["details"]) if "details" in v else None))
            else:
                found.append(Violation(to_json(v)))
        return found


def package_of(module: ast.Module) -> str:
    return ".".join(str(s.value) for s in module.package.path.path if isinstance(s, ast.Scalar))


def compile_template(modules: list[ast.Module]) -> CompiledTemplate | Unsupported:
    """The template's modules (its Rego first, then its libs) compiled, or why they run on regopy."""
    if not modules:
        return Unsupported("no Rego")
    result = try_compile(modules, varying=("parameters",))
    if isinstance(result, Unsupported):
        return result
    return CompiledTemplate(result, package_of(modules[0]))


def route_of(result: CompiledTemplate | Unsupported) -> Route:
    if isinstance(result, Unsupported):
        return Route(REGOPY, str(result))
    return result.route
