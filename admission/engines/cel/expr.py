"""Compiling and evaluating one CEL expression: the core every CEL kind is built on.

The implementation is Google's cel-cpp through `cel-expr-python` (bench/cel_spike.py says why): expressions
are parsed and type checked once, at load (`compile_expression`); a syntax or type error is a load error
`file:line: expression: problem`. Per request, the variables are bound once (`bind` → Activation) and every
expression of every policy reads that one binding (`Program.evaluate`): converting a Pod into CEL values costs
about ten times one evaluation, so it must not be redone per expression.

Values in and out are plain Python: dict, list, str, int, float, bool, None (and datetime/timedelta for
timestamps and durations). Library values without a JSON form (a Kubernetes quantity, a URL, an IP) are
protobuf messages of our own descriptor pool (admission.engines.cel.library); they come out as such.

Libraries (`Library`): named groups of function declarations with their implementations, added to an
environment by name. The Kubernetes libraries are in admission.engines.cel.library; other dialects (Kyverno's
helpers) add their own Library objects and pass them to compile_expression.

Limits: cel-cpp exposes no cost tracking through its Python API and cannot be interrupted, so the API server's
cost limits are approximated (admission.engines.cel.cost): a static estimate per expression from the size of
the bound input, checked before the expression runs, charged to a per-policy Budget; and the request deadline
is checked before every expression. Exceeding either is an EvalError, a rule error that follows the policy's
failurePolicy.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from cel_expr_python import cel
from cel_expr_python.ext import ext_bindings, ext_encoders, ext_math, ext_optional, ext_strings

from admission.engines import PolicyError
from admission.engines.cel import syntax
from admission.engines.cel.goerrors import cel_go
from admission.engines.cel.syntax import passes
from admission.engines.cel.syntax.ast import Expr
from admission.engines.cel.syntax.reads import ROOTS, reads, union
from admission.prune import Paths, prune

# The variables a Kubernetes admission expression may read (ValidatingAdmissionPolicy, MutatingAdmissionPolicy,
# matchConditions). `variables` holds the policy's own variables by name; `authorizer` answers RBAC checks.
KUBERNETES_VARIABLES = ("object", "oldObject", "request", "params", "namespaceObject", "variables", "authorizer")


class LoadError(PolicyError):
    """An expression that does not compile: `file:line: expression: problem`."""

    def __init__(self, where: str, expression: str, problem: str) -> None:
        super().__init__(where, f"{_shorten(expression)}: {problem}")
        self.expression = expression
        self.problem = problem


@dataclass(frozen=True)
class Definition:
    """A named expression other expressions read as `variables.<name>` (a policy's `variables`): its source as
    written, where it is (file:line), and its tree when a caller has parsed (and rewritten) it already."""

    name: str
    source: str
    where: str
    tree: Expr | None = field(default=None, compare=False, repr=False)

    def parsed(self) -> Expr:
        return self.tree if self.tree is not None else parse_expression(self.source, where=self.where)


class EvalError(Exception):
    """An expression that failed at run time (no such key, overflow, a limit exceeded, ...): a rule error."""


@dataclass(frozen=True)
class Overload:
    """One overload of a CEL function: `function` (a global name such as `quantity` or `format.named`, or a
    method name when `member`), a unique `id`, the cel_expr_python Types of its result and parameters (the
    receiver first for a method), and its implementation on the arguments' values (plain Python values, or
    messages of admission.engines.cel.messages). An implementation that raises makes an evaluation error."""

    function: str
    id: str
    result: Any
    params: tuple[Any, ...]
    member: bool
    impl: Callable[..., Any]


@dataclass(frozen=True)
class Library:
    """A named group of CEL function overloads, added to an environment by name."""

    name: str
    overloads: tuple[Overload, ...]


# The standard extensions cel-go's Kubernetes environment enables: strings (split, join, lowerAscii, replace,
# substring, trim, indexOf, format, ...), optional types (`?.`, `?[`, optional.of, orValue, hasValue), math,
# cel.bind, base64.
_STANDARD_EXTENSIONS: tuple[Callable[[], Any], ...] = (
    ext_strings.ExtStrings,
    ext_optional.ExtOptional,
    ext_math.ExtMath,
    ext_bindings.ExtBindings,
    ext_encoders.ExtEncoders,
)

_envs: dict[tuple[tuple[str, ...], tuple[str, ...]], Any] = {}
_envs_lock = threading.Lock()


def environment(variables: tuple[str, ...], libraries: Sequence[Library]) -> Any:
    """cel-cpp's environment (shared, built once) with these variables (of any type), the standard extensions
    and the libraries: what compiles printed sources."""
    from admission.engines.cel.messages import descriptor_pool

    key = (variables, tuple(lib.name for lib in libraries))
    with _envs_lock:
        env = _envs.get(key)
        if env is None:
            extension, decls, impls = _functions([o for lib in libraries for o in lib.overloads])
            env = cel.NewEnv(descriptor_pool(), variables={v: cel.Type.DYN for v in variables},
                             extensions=[*(make() for make in _STANDARD_EXTENSIONS), extension], functions=decls,
                             function_impls=impls)
            _envs[key] = env
        return env


def _functions(overloads: Sequence[Overload]) -> tuple[Any, list[Any], dict[str, Callable[..., Any]]]:
    """The overloads as cel-cpp takes them: an extension (declarations with their implementations), plus
    declarations and implementations given apart for the functions that need a dispatcher.

    cel-cpp's runtime tells overloads apart by the kinds of their arguments only (every message type is one
    kind), so overloads that the checker separates by message type (Quantity's and Semver's `isGreaterThan`)
    share one runtime implementation: the first of them gets a dispatcher that picks by the arguments' types,
    and the others are declared without one."""
    by_function: dict[str, list[Overload]] = {}
    for o in overloads:
        by_function.setdefault(o.function, []).append(o)
    plain: list[Any] = []
    dispatched: list[Any] = []
    impls: dict[str, Callable[..., Any]] = {}
    for name, group in by_function.items():
        by_runtime: dict[tuple[bool, tuple[str, ...]], list[Overload]] = {}
        for o in group:
            by_runtime.setdefault((o.member, tuple(_runtime_kind(p) for p in o.params)), []).append(o)
        if all(len(g) == 1 for g in by_runtime.values()):
            plain.append(cel.FunctionDecl(name, [cel.Overload(o.id, o.result, list(o.params), is_member=o.member,
                                                              impl=o.impl) for o in group]))
            continue
        dispatched.append(cel.FunctionDecl(name, [cel.Overload(o.id, o.result, list(o.params), is_member=o.member)
                                                  for o in group]))
        for g in by_runtime.values():
            impls[g[0].id] = g[0].impl if len(g) == 1 else _dispatcher(g)
    return cel.CelExtension("admission", plain), dispatched, impls


def _runtime_kind(t: Any) -> str:
    if t.is_message():
        return "message"
    name = str(t.name())
    return name.split("(", 1)[0]


def _dispatcher(group: Sequence[Overload]) -> Callable[..., Any]:
    choices = [(tuple(str(p.name()) if p.is_message() else "" for p in o.params), o.impl) for o in group]

    def dispatch(*args: Any) -> Any:
        for names, impl in choices:
            if all(not n or getattr(getattr(a, "DESCRIPTOR", None), "full_name", None) == n
                   for n, a in zip(names, args, strict=False)):
                return impl(*args)
        raise TypeError("no matching overload")

    return dispatch


def default_libraries() -> tuple[Library, ...]:
    """The Kubernetes CEL libraries (quantity, url, ip/cidr, semver, format, lists, regex, jsonpatch, ...)."""
    from admission.engines.cel.library import KUBERNETES_LIBRARIES

    return KUBERNETES_LIBRARIES


@dataclass(frozen=True)
class Activation:
    """The variables of one evaluation, bound once (converted into CEL values) and shared by every expression."""

    values: Mapping[str, Any]
    bound: Any = field(repr=False, compare=False)
    # the size of the bound input (admission.engines.cel.cost): about how many values it holds
    size: int = 0
    # the longest list or map in it, found when an expression nesting comprehensions first asks
    _widest: list[int] = field(default_factory=list, repr=False, compare=False)
    # the values as given, when the objects were bound pruned (`bind` with reads)
    given: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    def whole(self) -> Activation:
        """This binding with the objects whole: for an expression the reads did not count (a variable
        evaluated on its own to say which one failed)."""
        return self if self.given is None else bind(self.given)

    @property
    def widest(self) -> int:
        if not self._widest:
            from admission.engines.cel.cost import widest

            self._widest.append(widest(self.values))
        return self._widest[0]


# ADMISSION_CEL_PRUNE=0 binds the request's objects whole (for comparing; the answers are the same)
PRUNE = os.environ.get("ADMISSION_CEL_PRUNE", "1") != "0"


def bind(values: Mapping[str, Any], reads: Mapping[str, Paths | None] | None = None) -> Activation:
    """Bind plain Python values (JSON-like) to variable names, once per request. With `reads` (what every
    expression evaluated on this binding can read of `object` and `oldObject`: `read_paths`), those two hold
    only that (admission.prune), so that cel-cpp converts only what can be read."""
    from admission.engines.cel.cost import input_size

    given = values
    values = dict(values)
    if reads is not None and PRUNE:
        for root in ROOTS:
            if values.get(root) is not None:
                values[root] = prune(values[root], reads.get(root, {}))
    env = environment(KUBERNETES_VARIABLES, ())
    return Activation(values=values, bound=env.Activation(dict(values)), size=input_size(values),
                      given=given if reads is not None and PRUNE else None)


def held(*holders: Any) -> Iterator[Any]:
    """Every dataclass instance found in `holders` (compiled policies: dataclasses, tuples, lists, dicts), at
    any depth: how the Programs of a policy are found whatever field holds them."""
    seen: set[int] = set()
    stack: list[Any] = list(holders)
    while stack:
        x = stack.pop()
        if id(x) in seen or x is None or isinstance(x, str | bytes | int | float | bool):
            continue
        seen.add(id(x))
        if isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list | tuple | set | frozenset):
            stack.extend(x)
        elif is_dataclass(x) and not isinstance(x, type):
            yield x
            stack.extend(getattr(x, f.name) for f in fields(x))


def read_paths(*holders: Any, exclude: Iterable[Program] = ()) -> dict[str, Paths | None]:
    """What the Programs in `holders` (`held`) but those in `exclude` can read of the request's objects,
    together: the `reads` for `bind`."""
    skip = {id(p) for p in exclude}
    return union(p.reads for p in held(*holders) if isinstance(p, Program) and id(p) not in skip)


@dataclass(frozen=True)
class Program:
    """One compiled expression: where it was written, its source, and how costly it can be per input size."""

    source: str
    where: str
    compiled: Any = field(repr=False, compare=False)
    # the static cost shape: how many nested comprehensions, and how many function calls (admission.engines.cel.cost)
    cost_degree: int = 0
    cost_terms: int = 1
    # what it can read of `object` and `oldObject` (admission.engines.cel.syntax.reads)
    reads: Mapping[str, Paths | None] = field(default_factory=dict, repr=False, compare=False)

    def evaluate(self, activation: Activation, *, deadline: float | None = None,
                 budget: Budget | None = None) -> Any:
        """The value of the expression for the bound variables, as plain Python. Raises EvalError when evaluation
        fails, the estimated cost exceeds the per-expression limit or the budget, or the deadline (time.monotonic())
        has passed."""
        from admission.engines.cel.cost import PER_EXPRESSION_LIMIT, estimate

        if deadline is not None and time.monotonic() > deadline:
            raise EvalError("deadline exceeded")
        cost = estimate(self, activation)
        if cost > PER_EXPRESSION_LIMIT:
            raise EvalError(f"operation cancelled: actual cost limit exceeded (estimated cost {cost} for an input of "
                            f"size {activation.size}, per-expression limit {PER_EXPRESSION_LIMIT})")
        if budget is not None:
            budget.charge(cost)
        try:
            value = self.compiled.eval(activation.bound)
        except RuntimeError as e:  # evaluation errors the runtime raises rather than returns
            raise EvalError(_problem(str(e))) from None
        if value.type() == cel.Type.ERROR:
            raise EvalError(_problem(str(value.value())))
        try:
            return value.plain_value()
        except (TypeError, SystemError):  # an optional (or a list holding one): cel-expr-python has no Python form
            raise EvalError(f"the expression's value ({value.type()}) has no JSON form") from None


@dataclass
class Budget:
    """A per-policy cost budget (the API server's runtime budget for one policy evaluation): each expression
    evaluated charges its estimated cost; exceeding the total is an EvalError."""

    limit: int
    spent: int = 0

    def charge(self, cost: int) -> None:
        self.spent += cost
        if self.spent > self.limit:
            raise EvalError(f"validation failed due to running out of cost budget, no further validation rules will "
                            f"be run (estimated cost {self.spent}, per-policy budget {self.limit})")


def parse_expression(source: str, *, where: str) -> Expr:
    """The tree of an expression as written. Raises LoadError `where: expression: line:col: Syntax error: ...`
    (the line and column inside the expression) for one that is not CEL."""
    if not isinstance(source, str) or not source.strip():
        raise LoadError(where, str(source), "an expression is required")
    try:
        return syntax.parse(source)
    except syntax.CelSyntaxError as e:
        raise LoadError(where, source, syntax.syntax_problem(source, e)) from None


def compile_expression(source: str, *, where: str, variables: Iterable[str] = KUBERNETES_VARIABLES,
                       libraries: Sequence[Library] | None = None, definitions: Sequence[Definition] | None = None,
                       object_types: Collection[str] = (), tree: Expr | None = None) -> Program:
    """Parse and type check an expression once. `where` (file:line) is named by errors; `variables` are the
    names the expression may read (each of any type); `libraries` default to the Kubernetes CEL libraries.

    `definitions` are the policy's variables, read as `variables.<name>` (each compiled on its own first, so
    that its errors name its own place); when given, reading a name they do not define is an error.
    `object_types` are the root type names of typed object literals (`Object`, `JSONPatch`:
    MutatingAdmissionPolicy), read as maps. `tree` is the expression's tree when the caller has parsed and
    rewritten it already (the Kyverno kinds' passes); errors quote `source`, what the author wrote.

    The tree goes through the passes (admission.engines.cel.syntax.passes: inline_variables, object_literals),
    is printed, and cel-cpp compiles the printed source. Raises LoadError on a syntax or type error, an
    unknown variable or function, or an empty expression."""
    from admission.engines.cel.cost import static_shape

    if tree is None:
        tree = parse_expression(source, where=where)
    libs = default_libraries() if libraries is None else tuple(libraries)
    env = environment(tuple(sorted(set(variables))), libs)
    alone = passes.object_literals(tree, object_types)
    compiled = _compile(env, alone, source, where, positions=True)
    composed = alone
    if definitions is not None:
        defined = {d.name for d in definitions}
        unknown = [n for n in passes.variable_references(tree) if n not in defined]
        if unknown:
            known = ", ".join(sorted(defined)) or "none"
            raise LoadError(where, source, f"undeclared reference to 'variables.{unknown[0]}' (the variables defined "
                                           f"before it: {known})")
        inlined = passes.inline_variables(tree, [(d.name, d.parsed()) for d in definitions])
        if inlined is not tree:
            composed = passes.object_literals(inlined, object_types)
            compiled = _compile(env, composed, source, where, positions=False)
    degree, terms = static_shape(composed)
    return Program(source=source, where=where, compiled=compiled, cost_degree=degree, cost_terms=terms,
                   reads=reads(composed))


def _compile(env: Any, tree: Expr, source: str, where: str, *, positions: bool) -> Any:
    """cel-cpp's program for the printed tree. A problem it reports at a line and column of the printed source
    is reported at the line and column of the node the author wrote there (positions), or without one (where
    the tree holds code from elsewhere: inlined variables)."""
    printed = syntax.print_with_spans(tree)
    try:
        return env.compile(printed.text)
    except RuntimeError as e:
        problem = _problem(str(e))
        head, sep, rest = problem.partition(": ")
        line, colon, col = head.partition(":")
        if sep and colon and line.isdigit() and col.isdigit():
            problem = rest
            if positions:
                offset = _offset(printed.text, int(line), int(col))
                origin = printed.origin(offset)
                if origin >= 0:
                    problem = "{}:{}: {}".format(*syntax.line_col(source, origin), rest)
        raise LoadError(where, source, problem) from None


def _offset(text: str, line: int, col: int) -> int:
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
    return start + col - 1


def _problem(message: str) -> str:
    """cel-cpp's status text without its status-code wrapper: `INVALID_ARGUMENT: ERROR: <input>:1:3: ...`."""
    text = message.strip()
    for prefix in ("INVALID_ARGUMENT: ", "UNKNOWN: ", "NOT_FOUND: ", "OUT_OF_RANGE: ", "UNIMPLEMENTED: ", "CANCELLED: ",
                   "FAILED_PRECONDITION: ", "INTERNAL: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    if text.endswith("]") and " [" in text:
        text = text[: text.rindex(" [")]
    text = text.replace("ERROR: <input>:", "")
    if text.startswith("Key not found in map : "):  # cel-go's wording, which messages and tests quote
        text = "no such key: " + text[len("Key not found in map : "):].strip('"')
    text = " ".join(line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("|"))
    return cel_go(text)


def _shorten(expression: str, limit: int = 120) -> str:
    one = " ".join(expression.split())
    return one if len(one) <= limit else one[: limit - 3] + "..."
