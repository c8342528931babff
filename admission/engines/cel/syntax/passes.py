"""The rewrites the Kubernetes and Kyverno environments need before cel-cpp compiles an expression, each a named
pass from tree to tree (never an edit of text), each with its own tests (tests/test_cel_passes.py).

For MutatingAdmissionPolicy (and Kyverno's MutatingPolicy):
- `object_literals`: typed object literals `Object{spec: Object.spec{replicas: 3}}`, `JSONPatch{op: "add"}`
  (whose types cel-go derives from the object's schema) become map literals `{"spec": {"replicas": 3}}`;
- `typed_literals_as_dyn`: such a literal wrapped in `dyn(...)`, as cel-go's message types accept null
  (`cond ? JSONPatch{...} : null`) where a map does not.

For a policy's `variables`:
- `variable_references`: the names an expression reads as `variables.<name>`;
- `inline_variables`: `variables.name` becomes a `cel.bind` of the variable's own expression around the
  expression that reads it, so that a policy's variables need no second binding of the request;
- `declared_variables_present`: `has(variables.name)` is true for a declared variable (cel-go's lazy map).

Where cel-go (Kubernetes, Kyverno, Gatekeeper) and cel-cpp (ours) differ and policies rely on cel-go:
- `presence_chains`: `has(a.b.c.d)` is false when `a.b` is absent (cel-go qualifies the path "if present";
  cel-cpp fails with "no such key"): tested along the path, `has(a.b) && has(a.b.c) && has(a.b.c.d)`;
- `lenient_or_value`: `x.orValue(d)` gives x back when x is not an optional (cel-go's reading).

For Kyverno's pod-controller auto-generation:
- `pod_template_paths`: `object.spec` reads the template's pod (`object.spec.template.spec`, or under a
  CronJob's `spec.jobTemplate.spec.template`), `object.metadata` its metadata (but `object.metadata.namespace`
  stays the workload's own), and the same for `oldObject`.

Names bound by comprehensions (`x.all(object, ...)`) and by `cel.bind` shadow the variables the passes
rewrite, as they do when the expression runs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from admission.engines.cel.syntax import ast as a

# comprehension macros (cel-spec, cel-go's ext "two-variable comprehensions" and lists) -> how many leading
# arguments name the iteration variables (by argument count; default one)
_ONE_VAR = frozenset({"map", "filter", "sortBy"})
_ONE_OR_TWO = frozenset({"all", "exists", "exists_one", "existsOne"})
_TWO_VARS = frozenset({"transformList", "transformMap", "transformMapEntry"})

T = TypeVar("T", a.Element, a.Entry, a.FieldInit)
Rewrite = Callable[[a.Expr, frozenset[str]], "a.Expr | None"]


def binders(call: a.Call) -> tuple[int, int]:
    """(how many leading arguments of the call are names it binds, the first argument they are bound in):
    (0, 0) for a call that is no comprehension."""
    if call.target is None or not call.args or not all(isinstance(x, a.Ident) for x in call.args[:1]):
        return 0, 0
    f, n = call.function, len(call.args)
    if f == "bind" and call.target == a.Ident("cel") and n == 3:
        return 1, 2  # cel.bind(name, init, body): the name is bound in body only
    if f in _ONE_VAR and n in (2, 3):
        return 1, 1
    if f in _ONE_OR_TWO and n in (2, 3):
        return n - 1, n - 1
    if f in _TWO_VARS and n in (3, 4) and isinstance(call.args[1], a.Ident):
        return 2, 2
    return 0, 0


def rewrite(e: a.Expr, fn: Rewrite, bound: frozenset[str] = frozenset()) -> a.Expr:
    """Top down: fn(node, names bound here) gives a node's replacement (not visited further) or None (the
    node is kept and its children visited). Unchanged subtrees are the same objects."""
    new = fn(e, bound)
    if new is not None:
        return new
    if isinstance(e, (a.Literal, a.Ident)):
        return e
    if isinstance(e, a.Select):
        operand = rewrite(e.operand, fn, bound)
        return e if operand is e.operand else replace(e, operand=operand)
    if isinstance(e, a.Index):
        operand, index = rewrite(e.operand, fn, bound), rewrite(e.index, fn, bound)
        return e if operand is e.operand and index is e.index else replace(e, operand=operand, index=index)
    if isinstance(e, a.Call):
        target = rewrite(e.target, fn, bound) if e.target is not None else None
        count, scope_from = binders(e)
        inner = bound | {x.name for x in e.args[:count] if isinstance(x, a.Ident)} if count else bound
        args = tuple(x if i < count else rewrite(x, fn, inner if i >= scope_from else bound)
                     for i, x in enumerate(e.args))
        if target is e.target and all(x is y for x, y in zip(args, e.args, strict=True)):
            return e
        return replace(e, target=target, args=args)
    if isinstance(e, a.Unary):
        operand = rewrite(e.operand, fn, bound)
        return e if operand is e.operand else replace(e, operand=operand)
    if isinstance(e, a.Binary):
        left, right = rewrite(e.left, fn, bound), rewrite(e.right, fn, bound)
        return e if left is e.left and right is e.right else replace(e, left=left, right=right)
    if isinstance(e, a.Conditional):
        cond, then, otherwise = (rewrite(e.cond, fn, bound), rewrite(e.then, fn, bound),
                                 rewrite(e.otherwise, fn, bound))
        if cond is e.cond and then is e.then and otherwise is e.otherwise:
            return e
        return replace(e, cond=cond, then=then, otherwise=otherwise)
    if isinstance(e, a.ListLit):
        elements = tuple(_same(el, value=rewrite(el.value, fn, bound)) for el in e.elements)
        return e if all(x is y for x, y in zip(elements, e.elements, strict=True)) else replace(e, elements=elements)
    if isinstance(e, a.MapLit):
        entries = tuple(_same(en, key=rewrite(en.key, fn, bound), value=rewrite(en.value, fn, bound))
                        for en in e.entries)
        return e if all(x is y for x, y in zip(entries, e.entries, strict=True)) else replace(e, entries=entries)
    if isinstance(e, a.Struct):
        fields = tuple(_same(f, value=rewrite(f.value, fn, bound)) for f in e.fields)
        return e if all(x is y for x, y in zip(fields, e.fields, strict=True)) else replace(e, fields=fields)
    raise TypeError(f"not a CEL node: {e!r}")  # pragma: no cover


def _same(item: T, **parts: Any) -> T:
    """item with the given parts, or item itself where every part is the one it has."""
    if all(getattr(item, k) is v for k, v in parts.items()):
        return item
    return replace(item, **parts)


def _free(e: a.Expr, name: str, bound: frozenset[str]) -> bool:
    """Whether e is the identifier `name` and means the variable of that name (not a comprehension's)."""
    return isinstance(e, a.Ident) and e.name == name and not e.absolute and name not in bound


def _has_arg(e: a.Expr) -> a.Expr | None:
    """The argument of a `has(...)` macro call, or None."""
    if isinstance(e, a.Call) and e.function == "has" and e.target is None and len(e.args) == 1 and not e.absolute:
        return e.args[0]
    return None


# -- typed object literals --------------------------------------------------------------------------------------


def object_literals(e: a.Expr, type_names: Collection[str]) -> a.Expr:
    """Message literals whose type's first name is one of type_names, as map literals keyed by field name."""
    if not type_names:
        return e

    def fn(node: a.Expr, bound: frozenset[str]) -> a.Expr | None:
        if isinstance(node, a.Struct) and node.root in type_names:
            return a.MapLit(tuple(a.Entry(a.Literal(a.STRING, f.name, pos=node.pos), object_literals(f.value, type_names),
                                          f.optional) for f in node.fields), pos=node.pos)
        return None

    return rewrite(e, fn)


def typed_literals_as_dyn(e: a.Expr, type_names: Collection[str]) -> a.Expr:
    """Each outermost message literal of the given root type names wrapped in `dyn(...)`."""
    if not type_names:
        return e

    def fn(node: a.Expr, bound: frozenset[str]) -> a.Expr | None:
        if isinstance(node, a.Struct) and node.root in type_names:
            return a.Call("dyn", (node,), pos=node.pos)
        return None

    return rewrite(e, fn)


# -- a policy's variables ---------------------------------------------------------------------------------------


def _variable(node: a.Expr, bound: frozenset[str]) -> str:
    """The name of `variables.<name>` or `variables.?<name>` (the policy's variables), or ""."""
    if isinstance(node, a.Select) and _free(node.operand, "variables", bound):
        return node.field
    return ""


def variable_references(e: a.Expr) -> list[str]:
    """The names read as `variables.<name>`, in order of first use."""
    names: list[str] = []

    def fn(node: a.Expr, bound: frozenset[str]) -> a.Expr | None:
        name = _variable(node, bound)
        if name and name not in names:
            names.append(name)
        return None

    rewrite(e, fn)
    return names


def bound_name(name: str) -> str:
    """The identifier the value of the policy variable `name` is bound to by inline_variables."""
    return f"__variables_{name}__"


def declared_variables_present(e: a.Expr, declared: Collection[str]) -> a.Expr:
    """`has(variables.name)` as `true` for a declared variable (in cel-go the policy's `variables` holds every
    declared name, also where computing one fails: it is lazy)."""
    if not declared:
        return e

    def fn(node: a.Expr, bound: frozenset[str]) -> a.Expr | None:
        arg = _has_arg(node)
        if isinstance(arg, a.Select) and not arg.optional and _variable(arg, bound) in declared:
            return a.Literal(a.BOOL, True, pos=node.pos)
        return None

    return rewrite(e, fn)


def _bind_variables(e: a.Expr, names: Collection[str]) -> a.Expr:
    """`variables.name` (of the given names) read from the identifier inline_variables binds."""

    def fn(node: a.Expr, bound: frozenset[str]) -> a.Expr | None:
        arg = _has_arg(node)
        if arg is not None and isinstance(arg, a.Select) and not arg.optional and _variable(arg, bound) in names:
            return a.Literal(a.BOOL, True, pos=node.pos)
        name = _variable(node, bound)
        if name in names:
            value = a.Ident(bound_name(name), pos=node.pos)
            if isinstance(node, a.Select) and node.optional:
                return a.Call("of", (value,), a.Ident("optional"), pos=node.pos)
            return value
        return None

    return rewrite(e, fn)


def inline_variables(e: a.Expr, definitions: Sequence[tuple[str, a.Expr]]) -> a.Expr:
    """The expression with every variable it reads (directly or through other variables) bound around it
    with cel.bind, in the order of the definitions; variables it does not read are left out."""
    trees = dict(definitions)
    needed: set[str] = set()
    pending = [n for n in variable_references(e) if n in trees]
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending.extend(n for n in variable_references(trees[name]) if n in trees and n not in needed)
    if not needed:
        return e
    body = _bind_variables(e, needed)
    for name, tree in reversed([(n, t) for n, t in definitions if n in needed]):
        body = a.Call("bind", (a.Ident(bound_name(name)), _bind_variables(tree, needed), body), a.Ident("cel"))
    return body


# -- cel-go's readings ------------------------------------------------------------------------------------------


def _path(e: a.Expr) -> list[a.Expr] | None:
    """The prefixes of a plain dotted path `a.b.c` (an identifier, then selections): [a, a.b, a.b.c]."""
    chain: list[a.Expr] = []
    node = e
    while isinstance(node, a.Select) and not node.optional:
        chain.append(node)
        node = node.operand
    if not isinstance(node, a.Ident):
        return None
    chain.append(node)
    return chain[::-1]


def presence_chains(e: a.Expr) -> a.Expr:
    """Every `has()` of a dotted path of two or more selections tested along the path, as cel-go computes it:
    `has(a.b.c.d)` -> `has(a.b) && has(a.b.c) && has(a.b.c.d)`."""

    def fn(node: a.Expr, bound: frozenset[str]) -> a.Expr | None:
        arg = _has_arg(node)
        path = _path(arg) if arg is not None else None
        if path is None or len(path) < 3:
            return None
        tests: a.Expr = a.Call("has", (path[1],), pos=node.pos)
        for step in path[2:]:
            tests = a.Binary("&&", tests, a.Call("has", (step,), pos=node.pos), pos=node.pos)
        return tests

    return rewrite(e, fn)


def _surely_optional(e: a.Expr) -> bool:
    """Whether a receiver is an optional for sure: a path through `.?` or `[?]`, or an `optional.*` value,
    `or`/`optMap`/`optFlatMap` of one."""
    node: a.Expr | None = e
    while node is not None:
        if isinstance(node, (a.Select, a.Index)):
            if node.optional:
                return True
            node = node.operand
        elif isinstance(node, a.Call) and node.target is not None:
            if node.target == a.Ident("optional") or node.function in ("or", "optMap", "optFlatMap"):
                return True
            node = node.target
        else:
            return False
    return False


def lenient_or_value(e: a.Expr) -> a.Expr:
    """`x.orValue(d)` as cel-go evaluates it: x itself when x is not an optional.

    cel-cpp has no `orValue` overload for a receiver that is not an optional (and none can be added: its
    optional library owns the name); Kyverno's pod-security policies rely on cel-go's reading
    (`container.securityContext.capabilities.add.orValue([])`, a list). Each such call becomes
    `cel.bind(v, x, type(v) == type(optional.none()) ? v.orValue(d) : v)`, the same value for an optional
    receiver and the receiver itself for any other. Receivers that are optionals for sure are left alone."""
    count = [0]

    def fn(node: a.Expr, bound: frozenset[str]) -> a.Expr | None:
        if not (isinstance(node, a.Call) and node.function == "orValue" and node.target is not None
                and len(node.args) == 1) or _surely_optional(node.target):
            return None
        receiver = rewrite(node.target, fn, bound)
        default = rewrite(node.args[0], fn, bound)
        v = a.Ident(f"__orv{count[0]}__")
        count[0] += 1
        none_type = a.Call("type", (a.Call("none", (), a.Ident("optional")),))
        test = a.Binary("==", a.Call("type", (v,)), none_type)
        pick = a.Conditional(test, a.Call("orValue", (default,), v, pos=node.pos), v)
        return a.Call("bind", (v, receiver, pick), a.Ident("cel"), pos=node.pos)

    return rewrite(e, fn)


# -- Kyverno's pod-controller auto-generation ---------------------------------------------------------------

TEMPLATE_PATHS: dict[str, dict[str, tuple[str, ...]]] = {
    "template": {"spec": ("spec", "template", "spec"), "metadata": ("spec", "template", "metadata")},
    "jobTemplate": {"spec": ("spec", "jobTemplate", "spec", "template", "spec"),
                    "metadata": ("spec", "jobTemplate", "spec", "template", "metadata")},
}


def pod_template_paths(e: a.Expr, template: str) -> a.Expr:
    """An expression written for a Pod, reading the pod of a workload's template instead (template:
    "template" for spec.template, "jobTemplate" for a CronJob's spec.jobTemplate.spec.template)."""
    paths = TEMPLATE_PATHS[template]

    def root(node: a.Expr, bound: frozenset[str]) -> bool:
        return _free(node, "object", bound) or _free(node, "oldObject", bound)

    def fn(node: a.Expr, bound: frozenset[str]) -> a.Expr | None:
        if not isinstance(node, a.Select):
            return None
        inner = node.operand
        if node.field == "namespace" and isinstance(inner, a.Select) and inner.field == "metadata" and \
                root(inner.operand, bound):
            return node  # the workload's own namespace
        if node.field in paths and root(inner, bound):
            out: a.Expr = inner
            for step in paths[node.field]:
                out = a.Select(out, step, node.optional, pos=node.pos)
            return out
        return None

    return rewrite(e, fn)
