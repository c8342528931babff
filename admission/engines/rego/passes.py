"""Named AST transforms: what a module needs before regopy evaluates it, each pass one reason.

Two kinds. Placement (both evaluation paths need them): `relocate` moves a module to another package and
rewrites reference prefixes (a Gatekeeper constraint's copy of its template reads its parameters from
`data`), `rename_functions` gives functions module-unique names. Work-arounds (regopy only), each for a
defect of regopy 1.5.2 pinned by a test in tests/test_rego_passes.py that shows the defect on the raw module
and the right answer after the pass:

- `hoist_call_args`: `f(xs[_])` does not compile ("Invalid bracket argument") and `some i; f(xs[i])` yields
  nothing: the indexed reference is bound first, `__hoistN := xs[_]; f(__hoistN)` (non-negated statements
  only, where this is the same query).
- `guard_negated_args`: `not f(a.b)` with `a.b` undefined is true on regopy; OPA evaluates the argument
  before the negation (its compiler hoists it) and the statement fails: `_ = a.b; not f(a.b)`.
- `iterate_with_some`: `x := xs[_]` followed by `obj[x]` aborts the process: `some x in xs`.
- `pairs_as_lookups`: `some k, v in xs` in a comprehension body does not compile ("Invalid collection"):
  `some k; v := xs[k]`.
- `every_as_count`: a negated statement in an `every` body never fails it (`every c in cs { not c.x }` is
  true whatever `cs` holds): `__everyN := cs; count({k | some k; c := __everyN[k]; not c.x}) == count(__everyN)`.
- `hoist_with_values`: `with input as input.request` aborts the process and `with input.a as input.b` is
  ignored: the value is bound first, as OPA's compiler does (`__withN := input.request; p with input as __withN`).
- `clean_sprintf_args`: sprintf prints a string that reached it through a variable or a function argument
  (`g := "abc"; sprintf("%v", [g])`) with its JSON quotes, unescaped, and the engine's output is then not
  JSON: each argument goes through `substring(a, 0, -1)` first, in a helper added to the module.
- `quote_verbs`: sprintf prints `%q` literally and consumes no argument: a literal format's `%q` becomes `"%v"`
  (Go's quoting for strings without characters to escape).
- `sort_sets`: `sort` of a set returns a set, OPA's an array: `sort([v | some v in s])`.
- `hoist_paren_statements`: a statement printed starting with `(` after a line ending in a reference is read
  as a call of that reference: the parenthesised operand is bound first.

A compiler stage (the compiled path; regopy reads template strings itself): `rewrite_template_strings`, as OPA's
`RewriteTemplateStrings`.

For speed only: `partial_sets_as_comprehensions` (`p contains x if body` as `p := {x | body}`, which regopy
evaluates 20-40% faster when the body iterates), applied by callers to packages no other module extends.

`regopy_passes` runs the work-arounds in order; each pass returns a new tree (the nodes are frozen).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace

from admission.engines.rego.ast import (
    INFIX,
    MEMBER_2,
    MEMBER_3,
    Array,
    ArrayCompr,
    Body,
    Call,
    Every,
    Expr,
    Head,
    Module,
    Object,
    ObjectCompr,
    Package,
    Ref,
    Rule,
    Scalar,
    Set,
    SetCompr,
    SomeDecl,
    TemplateString,
    Term,
    Var,
    With,
)

OPERATORS = frozenset(INFIX.values()) | {MEMBER_2, MEMBER_3}

# ------------------------------------------------------------------------------------------ helpers


def call_name(c: Call) -> str:
    """`count`, `regex.match`, `data.lib.f` for a call's op."""
    parts = [c.op.head.name] if isinstance(c.op.head, Var) else ["?"]
    parts += [p.value if isinstance(p, Scalar) and isinstance(p.value, str) else "?" for p in c.op.path]
    return ".".join(parts)


def is_function_call(t: Term) -> bool:
    return isinstance(t, Call) and call_name(t) not in OPERATORS


def ref(*names: str) -> Ref:
    """`ref("data", "a", "b")` is `data.a.b`."""
    return Ref(Var(names[0]), tuple(Scalar(n) for n in names[1:]))


def ref_names(r: Ref) -> tuple[str, ...] | None:
    """A ref's head and constant string keys (`data.a["b"]` -> ("data", "a", "b")) up to the first other key;
    None when the head is not a variable."""
    if not isinstance(r.head, Var):
        return None
    out = [r.head.name]
    for p in r.path:
        if isinstance(p, Scalar) and isinstance(p.value, str):
            out.append(p.value)
        else:
            break
    return tuple(out)


def _assign(var: Var, value: Term) -> Expr:
    return Expr(Call(Ref(Var("assign")), (var, value)))


def _eq(left: Term, right: Term) -> Expr:
    return Expr(Call(Ref(Var("eq")), (left, right)))


class Fresh:
    """Fresh variable names `__<stem><n>`, unique within one run of the passes."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def __call__(self, stem: str) -> Var:
        return Var(f"__{stem}{next(self._n)}")


def map_term(t: Term, body_fn: Callable[[Body], Body], term_fn: Callable[[Term], Term] | None = None) -> Term:
    """t rebuilt bottom-up: body_fn applied to each nested body (comprehensions), term_fn (if given) to each
    term after its parts."""
    out: Term
    if isinstance(t, Ref):
        out = replace(t, head=map_term(t.head, body_fn, term_fn), path=tuple(map_term(p, body_fn, term_fn) for p in t.path))
    elif isinstance(t, Array):
        out = replace(t, items=tuple(map_term(x, body_fn, term_fn) for x in t.items))
    elif isinstance(t, Set):
        out = replace(t, items=tuple(map_term(x, body_fn, term_fn) for x in t.items))
    elif isinstance(t, Object):
        out = replace(t, items=tuple((map_term(k, body_fn, term_fn), map_term(v, body_fn, term_fn)) for k, v in t.items))
    elif isinstance(t, ArrayCompr | SetCompr):
        out = replace(t, term=map_term(t.term, body_fn, term_fn), body=map_body(t.body, body_fn, term_fn))
    elif isinstance(t, ObjectCompr):
        out = replace(t, key=map_term(t.key, body_fn, term_fn), value=map_term(t.value, body_fn, term_fn),
                      body=map_body(t.body, body_fn, term_fn))
    elif isinstance(t, Call):
        op = map_term(t.op, body_fn, term_fn)
        out = replace(t, op=op if isinstance(op, Ref) else t.op, args=tuple(map_term(a, body_fn, term_fn) for a in t.args))
    elif isinstance(t, TemplateString):
        # a template expression is one expression (no statements can be added to it): its terms are mapped
        out = replace(t, parts=tuple(p if isinstance(p, str) else map_expr(p, body_fn, term_fn) for p in t.parts))
    else:
        out = t
    return term_fn(out) if term_fn is not None else out


def map_expr(e: Expr, body_fn: Callable[[Body], Body], term_fn: Callable[[Term], Term] | None = None) -> Expr:
    inner = e.terms
    new: Term | SomeDecl | Every
    if isinstance(inner, SomeDecl):
        new = replace(inner, symbols=tuple(map_term(s, body_fn, term_fn) for s in inner.symbols))
    elif isinstance(inner, Every):
        new = replace(
            inner,
            key=map_term(inner.key, body_fn, term_fn) if inner.key is not None else None,
            value=map_term(inner.value, body_fn, term_fn),
            domain=map_term(inner.domain, body_fn, term_fn),
            body=map_body(inner.body, body_fn, term_fn),
        )
    else:
        new = map_term(inner, body_fn, term_fn)
    withs = tuple(replace(w, value=map_term(w.value, body_fn, term_fn)) for w in e.with_)
    return replace(e, terms=new, with_=withs)


def map_body(body: Body, body_fn: Callable[[Body], Body], term_fn: Callable[[Term], Term] | None = None) -> Body:
    """body with its nested bodies mapped first, then body_fn applied to it."""
    return body_fn(tuple(map_expr(e, body_fn, term_fn) for e in body))


def map_rule(r: Rule, body_fn: Callable[[Body], Body], term_fn: Callable[[Term], Term] | None = None) -> Rule:
    h = r.head

    def opt(t: Term | None) -> Term | None:
        return map_term(t, body_fn, term_fn) if t is not None else None

    head_ref = map_term(h.ref, body_fn, term_fn)
    head = replace(
        h,
        ref=head_ref if isinstance(head_ref, Ref) else h.ref,
        args=tuple(map_term(a, body_fn, term_fn) for a in h.args) if h.args is not None else None,
        key=opt(h.key),
        value=opt(h.value),
    )
    return replace(r, head=head, body=map_body(r.body, body_fn, term_fn),
                   else_=map_rule(r.else_, body_fn, term_fn) if r.else_ is not None else None)


def map_module(m: Module, body_fn: Callable[[Body], Body], term_fn: Callable[[Term], Term] | None = None) -> Module:
    return replace(m, rules=tuple(map_rule(r, body_fn, term_fn) for r in m.rules))


def walk_terms(node: object) -> Iterator[Term]:
    """Every term in a node (module, rule, body, expression or term), nested ones included."""
    stack: list[object] = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, tuple):
            stack.extend(n)
        elif isinstance(n, Module):
            stack.extend(n.rules)
            stack.extend(i.path for i in n.imports)
        elif isinstance(n, Rule):
            stack.extend((n.head, n.body))
            if n.else_ is not None:
                stack.append(n.else_)
        elif isinstance(n, Head):
            stack.append(n.ref)
            stack.extend(x for x in (n.args, n.key, n.value) if x is not None)
        elif isinstance(n, Expr):
            stack.extend((n.terms, n.with_))
        elif isinstance(n, With):
            stack.extend((n.target, n.value))
        elif isinstance(n, SomeDecl):
            stack.extend(n.symbols)
        elif isinstance(n, Every):
            stack.extend(x for x in (n.key, n.value, n.domain, n.body) if x is not None)
        elif isinstance(n, Ref):
            yield n
            stack.append(n.head)
            stack.extend(n.path)
        elif isinstance(n, Array | Set):
            yield n
            stack.extend(n.items)
        elif isinstance(n, Object):
            yield n
            for k, v in n.items:
                stack.extend((k, v))
        elif isinstance(n, ArrayCompr | SetCompr):
            yield n
            stack.extend((n.term, n.body))
        elif isinstance(n, ObjectCompr):
            yield n
            stack.extend((n.key, n.value, n.body))
        elif isinstance(n, Call):
            yield n
            stack.append(n.op)
            stack.extend(n.args)
        elif isinstance(n, TemplateString):
            yield n
            stack.extend(p for p in n.parts if not isinstance(p, str))
        elif isinstance(n, Scalar | Var):
            yield n


def _shallow_terms(t: Term) -> Iterator[Term]:
    """t and the terms inside it, not descending into comprehensions (their bodies are queries of their own)."""
    yield t
    if isinstance(t, Ref):
        yield from _shallow_terms(t.head)
        for p in t.path:
            yield from _shallow_terms(p)
    elif isinstance(t, Array | Set):
        for x in t.items:
            yield from _shallow_terms(x)
    elif isinstance(t, Object):
        for k, v in t.items:
            yield from _shallow_terms(k)
            yield from _shallow_terms(v)
    elif isinstance(t, Call):
        for a in t.args:
            yield from _shallow_terms(a)


def _replace_shallow(t: Term, old: Term, new: Term) -> Term:
    """t with the (identical) subterm `old` replaced by `new`, outside comprehensions."""
    if t is old:
        return new
    if isinstance(t, Ref):
        head = _replace_shallow(t.head, old, new)
        return replace(t, head=head, path=tuple(_replace_shallow(p, old, new) for p in t.path))
    if isinstance(t, Array | Set):
        return replace(t, items=tuple(_replace_shallow(x, old, new) for x in t.items))
    if isinstance(t, Object):
        return replace(t, items=tuple((_replace_shallow(k, old, new), _replace_shallow(v, old, new)) for k, v in t.items))
    if isinstance(t, Call):
        return replace(t, args=tuple(_replace_shallow(a, old, new) for a in t.args))
    return t


def _expr_terms(e: Expr) -> list[Term]:
    if isinstance(e.terms, SomeDecl):
        return list(e.terms.symbols)
    if isinstance(e.terms, Every):
        return [e.terms.domain]
    return [e.terms]


# ------------------------------------------------------------------------------------- work-arounds


def _var_index_prefix(r: Ref) -> Ref | None:
    """For `xs[_].a`, `xs[i]`: the ref up to and including its first variable index; None without one."""
    for n, p in enumerate(r.path):
        if isinstance(p, Var):
            return replace(r, path=r.path[: n + 1])
    return None


def hoist_call_args(m: Module, fresh: Fresh | None = None) -> Module:
    """`f(xs[_].a)` becomes `__hoistN := xs[_]; f(__hoistN.a)` (see the module docstring)."""
    fresh = fresh or Fresh()

    def body_fn(body: Body) -> Body:
        out: list[Expr] = []
        for e in body:
            if e.negated or isinstance(e.terms, SomeDecl | Every):
                out.append(e)
                continue
            term = e.terms
            hoisted: list[Expr] = []
            for _ in range(100):
                found = _find_indexed_arg(term)
                if found is None:
                    break
                whole, prefix = found
                var = fresh("hoist")
                hoisted.append(_assign(var, prefix))
                term = _replace_shallow(term, whole, Ref(var, whole.path[len(prefix.path) :]) if len(whole.path) > len(prefix.path) else var)
            out.extend(hoisted)
            out.append(replace(e, terms=term) if hoisted else e)
        return tuple(out)

    return map_module(m, body_fn)


def _find_indexed_arg(t: Term) -> tuple[Ref, Ref] | None:
    """The first reference with a variable index inside a function call's arguments (outside
    comprehensions), and its prefix up to that index."""
    for c in _shallow_terms(t):
        if not is_function_call(c):
            continue
        assert isinstance(c, Call)
        for a in c.args:
            for r in _shallow_terms(a):
                if isinstance(r, Ref):
                    prefix = _var_index_prefix(r)
                    if prefix is not None:
                        return r, prefix
    return None


def _plain_path(t: Term) -> bool:
    """`a.b`, `input.x[0]`: a variable with at least one constant key, nothing else."""
    return (
        isinstance(t, Ref) and isinstance(t.head, Var) and bool(t.path)
        and all(isinstance(p, Scalar) and isinstance(p.value, str | int) for p in t.path)
    )


def guard_negated_args(m: Module) -> Module:
    """`not f(a.b)` becomes `_ = a.b; not f(a.b)` (see the module docstring)."""

    def body_fn(body: Body) -> Body:
        out: list[Expr] = []
        for e in body:
            if e.negated and not isinstance(e.terms, SomeDecl | Every):
                seen: list[Term] = []
                for c in _shallow_terms(e.terms):
                    if is_function_call(c):
                        assert isinstance(c, Call)
                        for a in c.args:
                            if _plain_path(a) and a not in seen:
                                seen.append(a)
                out.extend(_eq(Var("_"), a) for a in seen)
            out.append(e)
        return tuple(out)

    return map_module(m, body_fn)


def iterate_with_some(m: Module) -> Module:
    """`x := xs[_]` becomes `some x in xs` (see the module docstring)."""

    def body_fn(body: Body) -> Body:
        out: list[Expr] = []
        for e in body:
            t = e.terms
            if (
                not e.negated and not e.with_ and isinstance(t, Call) and call_name(t) == "assign"
                and isinstance(t.args[0], Var) and t.args[0].name != "_"
                and isinstance(t.args[1], Ref) and t.args[1].path
                and isinstance(t.args[1].path[-1], Var) and t.args[1].path[-1].name == "_"
            ):
                xs = t.args[1]
                domain: Term = replace(xs, path=xs.path[:-1]) if len(xs.path) > 1 else xs.head
                out.append(replace(e, terms=SomeDecl((Call(Ref(Var(MEMBER_2)), (t.args[0], domain)),))))
                continue
            out.append(e)
        return tuple(out)

    return map_module(m, body_fn)


def _member_parts(s: SomeDecl) -> tuple[Term | None, Term, Term] | None:
    """(key, value, domain) for `some k, v in xs` / `some v in xs`; None for `some x, y` declarations."""
    if len(s.symbols) != 1 or not isinstance(s.symbols[0], Call):
        return None
    c = s.symbols[0]
    name = call_name(c)
    if name == MEMBER_3:
        return c.args[0], c.args[1], c.args[2]
    if name == MEMBER_2:
        return None, c.args[0], c.args[1]
    return None


def _pairs_in_body(body: Body, fresh: Fresh) -> Body:
    out: list[Expr] = []
    for e in body:
        parts = _member_parts(e.terms) if isinstance(e.terms, SomeDecl) else None
        if parts is None or parts[0] is None:
            out.append(e)
            continue
        key, value, domain = parts
        if not isinstance(domain, Var | Ref) or (isinstance(domain, Ref) and _var_index_prefix(domain) is not None):
            holder = fresh("pairs")
            out.append(_assign(holder, domain))
            domain = holder
        if not isinstance(key, Var) or key.name == "_":
            key = fresh("key")
        out.append(replace(e, terms=SomeDecl((key,))))
        lookup = Ref(domain, (key,)) if isinstance(domain, Var) else replace(domain, path=(*domain.path, key))
        if isinstance(value, Var) and value.name == "_":
            out.append(_eq(Var("_"), lookup))
        elif isinstance(value, Var):
            out.append(_assign(value, lookup))
        else:  # a pattern: unify
            out.append(_eq(value, lookup))
    return tuple(out)


def pairs_as_lookups(m: Module, fresh: Fresh | None = None) -> Module:
    """`some k, v in xs` becomes `some k; v := xs[k]` (see the module docstring), in every body: partial set
    rules may become comprehensions."""
    fresh = fresh or Fresh()
    return map_module(m, lambda body: _pairs_in_body(body, fresh))


def _has_negation(body: Body) -> bool:
    for e in body:
        if e.negated:
            return True
        if isinstance(e.terms, Every) and _has_negation(e.terms.body):
            return True
        for t in walk_terms(e):
            if isinstance(t, ArrayCompr | SetCompr | ObjectCompr) and _has_negation(t.body):
                return True
    return False


def _rename_vars(body: Body, names: dict[str, Var]) -> Body:
    def term_fn(t: Term) -> Term:
        return names[t.name] if isinstance(t, Var) and t.name in names else t

    return map_body(body, lambda b: b, term_fn)


def every_as_count(m: Module, fresh: Fresh | None = None) -> Module:
    """`every k, v in xs { body }` with a negation in its body becomes
    `__everyN := xs; count({k | some k; v := __everyN[k]; body}) == count(__everyN)`: the keys whose body
    holds are all the keys (see the module docstring)."""
    fresh = fresh or Fresh()

    def body_fn(body: Body) -> Body:
        out: list[Expr] = []
        for e in body:
            ev = e.terms
            if not isinstance(ev, Every) or not _has_negation(ev.body):
                out.append(e)
                continue
            holder, key, value = fresh("every"), fresh("everyk"), fresh("everyv")
            names: dict[str, Var] = {}
            if isinstance(ev.key, Var) and ev.key.name != "_":
                names[ev.key.name] = key
            if isinstance(ev.value, Var) and ev.value.name != "_":
                names[ev.value.name] = value
            inner = _rename_vars(ev.body, names)
            lookup: Expr = _assign(value, Ref(holder, (key,)))
            if not isinstance(ev.value, Var):  # a pattern: unify the element with it
                lookup = _eq(ev.value, Ref(holder, (key,)))
            compr = SetCompr(key, (Expr(SomeDecl((key,))), lookup, *inner))
            count = Ref(Var("count"))
            test = Call(Ref(Var("equal")), (Call(count, (compr,)), Call(count, (holder,))))
            out.append(_assign(holder, ev.domain))
            out.append(replace(e, terms=test))
        return tuple(out)

    return map_module(m, body_fn)


def hoist_with_values(m: Module, fresh: Fresh | None = None) -> Module:
    """`p with input as input.request` becomes `__withN := input.request; p with input as __withN` (see the
    module docstring)."""
    fresh = fresh or Fresh()

    def body_fn(body: Body) -> Body:
        out: list[Expr] = []
        for e in body:
            withs: list[With] = []
            for w in e.with_:
                if isinstance(w.value, Var | Scalar):
                    withs.append(w)
                    continue
                var = fresh("with")
                out.append(_assign(var, w.value))
                withs.append(replace(w, value=var))
            out.append(replace(e, with_=tuple(withs)) if e.with_ else e)
        return tuple(out)

    return map_module(m, body_fn)


def quote_verbs(m: Module) -> Module:
    """In a literal sprintf format, `%q` becomes `"%v"` (see the module docstring)."""

    def term_fn(t: Term) -> Term:
        if isinstance(t, Call) and call_name(t) == "sprintf" and t.args and isinstance(t.args[0], Scalar):
            f = t.args[0]
            if isinstance(f.value, str) and "%q" in f.value.replace("%%", ""):
                text = _requote(f.value)
                return replace(t, args=(Scalar(text, pos=f.pos), *t.args[1:]))
        return t

    return map_module(m, lambda b: b, term_fn)


def _requote(fmt: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(fmt):
        if fmt.startswith("%%", i):
            out.append("%%")
            i += 2
        elif fmt.startswith("%q", i):
            out.append('"%v"')
            i += 2
        else:
            out.append(fmt[i])
            i += 1
    return "".join(out)


SPRINTF_HELPERS = """package helpers

__sprintf_arg(a) := substring(a, 0, -1) if {
    is_string(a)
} else := a

__sprintf(f, args) := sprintf(f, [__sprintf_arg(a) | some a in args])
"""


def clean_sprintf_args(m: Module) -> Module:
    """`sprintf(f, args)` becomes `__sprintf(f, args)`, a helper added to the module that passes each string
    argument through a builtin first (see the module docstring). The helper is a function, so an undefined
    argument leaves the call undefined, as OPA's sprintf."""
    hit = False

    def term_fn(t: Term) -> Term:
        nonlocal hit
        if isinstance(t, Call) and call_name(t) == "sprintf" and len(t.args) == 2:
            hit = True
            return replace(t, op=Ref(Var("__sprintf", pos=t.op.pos), pos=t.op.pos))
        return t

    out = map_module(m, lambda b: b, term_fn)
    if not hit:
        return m
    from admission.engines.rego.parser import parse_module

    helpers = parse_module(SPRINTF_HELPERS, file="(sprintf helpers)")
    return replace(out, rules=(*out.rules, *helpers.rules))


def sort_sets(m: Module, fresh: Fresh | None = None) -> Module:
    """`sort(x)` becomes `sort([v | some v in x])` (see the module docstring)."""
    fresh = fresh or Fresh()

    def term_fn(t: Term) -> Term:
        if isinstance(t, Call) and call_name(t) == "sort" and len(t.args) == 1 and not isinstance(t.args[0], Array | ArrayCompr):
            v = fresh("sorted")
            member = Call(Ref(Var(MEMBER_2)), (v, t.args[0]))
            return replace(t, args=(ArrayCompr(v, (Expr(SomeDecl((member,))),)),))
        return t

    return map_module(m, lambda b: b, term_fn)


def hoist_paren_statements(m: Module, fresh: Fresh | None = None) -> Module:
    """A statement `(a + b) > c` (an operator whose left operand is printed in parentheses) becomes
    `__parenN := a + b; __parenN > c` (see the module docstring). Only non-negated statements: `not` comes
    first on a negated one."""
    fresh = fresh or Fresh()

    def body_fn(body: Body) -> Body:
        out: list[Expr] = []
        for e in body:
            t = e.terms
            if not e.negated and isinstance(t, Call) and call_name(t) in INFIX.values() and t.args:
                left = t.args[0]
                if isinstance(left, Call) and call_name(left) in OPERATORS and _binds_looser_or_same(left, t):
                    var = fresh("paren")
                    out.append(_assign(var, left))
                    out.append(replace(e, terms=replace(t, args=(var, *t.args[1:]))))
                    continue
            out.append(e)
        return tuple(out)

    return map_module(m, body_fn)


# binding strength as the parser and printer read it (a tighter operand needs no parentheses)
_STRENGTH = {"assign": -1, "eq": -1, MEMBER_2: 0, MEMBER_3: 0, "equal": 1, "neq": 1, "lt": 1, "lte": 1, "gt": 1, "gte": 1,
             "or": 2, "and": 3, "plus": 4, "minus": 4, "mul": 5, "div": 5, "rem": 5}


def _binds_looser_or_same(inner: Call, outer: Call) -> bool:
    return _STRENGTH.get(call_name(inner), 9) < _STRENGTH.get(call_name(outer), 9)


def regopy_passes(m: Module, fresh: Fresh | None = None) -> Module:
    """Every work-around, in the order they depend on each other."""
    fresh = fresh or Fresh()
    m = hoist_with_values(m, fresh)
    m = every_as_count(m, fresh)
    m = hoist_call_args(m, fresh)
    m = guard_negated_args(m)
    m = iterate_with_some(m)
    m = pairs_as_lookups(m, fresh)
    m = quote_verbs(m)
    m = clean_sprintf_args(m)
    m = sort_sets(m, fresh)
    m = hoist_paren_statements(m, fresh)
    return m


# ---------------------------------------------------------------------------------------- placement


def package_name(m: Module) -> str:
    names = ref_names(m.package.path)
    return ".".join(names[1:]) if names else ""


def _bare(r: Ref) -> str:
    return r.head.name if isinstance(r.head, Var) and not r.path else ""


def relocate(m: Module, package: str | None = None, renames: dict[str, str] | None = None,
             keep_with: frozenset[str] = frozenset()) -> Module:
    """m in `package` (dotted, without `data.`), with each reference starting with a key of `renames`
    (`input.parameters`) starting with its value instead (`data.gkparams.c0`). The longest key wins; a
    reference to the module's own package (`data.<old>.f`) follows it to the new one. Imports and `with`
    targets are references too, except a bare root named in `keep_with` (`with input as x` keeps replacing
    the input)."""
    renames = dict(renames or {})
    old = package_name(m)
    if package is not None and old and old != package:
        renames.setdefault(f"data.{old}", f"data.{package}")
    table = sorted(((tuple(k.split(".")), tuple(v.split("."))) for k, v in renames.items()), key=lambda kv: -len(kv[0]))

    def rename(r: Ref) -> Ref:
        names = ref_names(r)
        if names is None:
            return r
        for key, value in table:
            if len(key) == 1 and len(names) > 1 and key[0] not in ("data",):
                # a bare root (`input`) renames only where it is read whole or by a computed key:
                # `input.other` keeps reading the input (it is what `with input as x` replaces)
                continue
            if names[: len(key)] == key:
                return Ref(Var(value[0], pos=r.head.pos), (*(Scalar(v) for v in value[1:]), *r.path[len(key) - 1 :]), pos=r.pos)
        return r

    bare = {key[0] for key, _ in table if len(key) == 1}

    def reloc(t: Term) -> Term:
        # a reference is renamed as a whole before its parts (its head is not a bare variable here)
        if isinstance(t, Ref):
            r = rename(t) if isinstance(t.head, Var) else replace(t, head=reloc(t.head))
            return replace(r, path=tuple(reloc(p) for p in r.path))
        if isinstance(t, Var):
            if t.name in bare:
                r = rename(Ref(t, pos=t.pos))
                return r.head if not r.path else r
            return t
        if isinstance(t, Call):
            return replace(t, op=rename(t.op), args=tuple(reloc(a) for a in t.args))
        if isinstance(t, Array | Set):
            return replace(t, items=tuple(reloc(x) for x in t.items))
        if isinstance(t, Object):
            return replace(t, items=tuple((reloc(k), reloc(v)) for k, v in t.items))
        if isinstance(t, ArrayCompr | SetCompr):
            return replace(t, term=reloc(t.term), body=reloc_body(t.body))
        if isinstance(t, ObjectCompr):
            return replace(t, key=reloc(t.key), value=reloc(t.value), body=reloc_body(t.body))
        if isinstance(t, TemplateString):
            return replace(t, parts=tuple(p if isinstance(p, str) else reloc_expr(p) for p in t.parts))
        return t

    def reloc_expr(e: Expr) -> Expr:
        inner = e.terms
        new: Term | SomeDecl | Every
        if isinstance(inner, SomeDecl):
            new = replace(inner, symbols=tuple(reloc(x) for x in inner.symbols))
        elif isinstance(inner, Every):
            new = replace(inner, domain=reloc(inner.domain), body=reloc_body(inner.body))
        else:
            new = reloc(inner)
        withs = tuple(replace(w, target=w.target if _bare(w.target) in keep_with else rename(w.target), value=reloc(w.value))
                      for w in e.with_)
        return replace(e, terms=new, with_=withs)

    def reloc_body(body: Body) -> Body:
        return tuple(reloc_expr(e) for e in body)

    def reloc_rule(r: Rule) -> Rule:
        h = r.head
        head = replace(
            h,
            args=tuple(reloc(a) for a in h.args) if h.args is not None else None,
            key=reloc(h.key) if h.key is not None else None,
            value=reloc(h.value) if h.value is not None else None,
        )
        return replace(r, head=head, body=reloc_body(r.body), else_=reloc_rule(r.else_) if r.else_ is not None else None)

    out = replace(m, rules=tuple(reloc_rule(r) for r in m.rules))
    imports = tuple(replace(i, path=rename(i.path)) for i in out.imports)
    pkg = out.package if package is None else Package(ref("data", *package.split(".")), pos=m.package.pos)
    return replace(out, package=pkg, imports=imports)


def resolve_imports(m: Module) -> Module:
    """Each use of an import's name replaced by the reference it names (`import data.lib.x as y`: `y.f(a)` is
    `data.lib.x.f(a)`), and the imports dropped, so that the passes after this one (relocate,
    rename_functions, the input analysis) see every reference whole. `future.keywords` and `rego.v1` imports
    mean nothing in v1 and go too."""
    table: dict[str, Ref] = {}
    for i in m.imports:
        names = ref_names(i.path)
        if not names or names[0] not in ("data", "input") or len(names) != len(i.path.path) + 1:
            continue
        table[i.alias or names[-1]] = i.path
    if not table:
        return replace(m, imports=())

    def expand(t: Term) -> Term:
        if isinstance(t, Var) and t.name in table:
            target = table[t.name]
            return target.head if not target.path else replace(target, pos=t.pos)
        if isinstance(t, Ref) and isinstance(t.head, Ref):  # an alias at the head of a reference
            return replace(t, head=t.head.head, path=(*t.head.path, *t.path))
        if isinstance(t, Call) and isinstance(t.op.head, Var) and t.op.head.name in table:
            target = table[t.op.head.name]
            return replace(t, op=replace(target, path=(*target.path, *t.op.path), pos=t.op.pos))
        return t

    def body_fn(body: Body) -> Body:
        out = []
        for e in body:
            if e.with_:
                withs = []
                for w in e.with_:
                    target = expand(w.target)
                    if isinstance(target, Var):
                        target = Ref(target)
                    assert isinstance(target, Ref)
                    withs.append(replace(w, target=target))
                e = replace(e, with_=tuple(withs))
            out.append(e)
        return tuple(out)

    return replace(map_module(m, body_fn, expand), imports=())


def defined_functions(m: Module) -> set[str]:
    return {r.head.name for r in m.rules if r.head.args is not None and not r.head.ref.path}


def rename_functions(modules: dict[str, Module], suffix_of: Callable[[str], str]) -> dict[str, Module]:
    """Functions get names unique to their package (`f` in package `a.b` -> `f__<suffix>`), calls of them
    follow, qualified (`data.a.b.f`) or not. regopy aborts compiling two packages that define functions of
    one name with different arities."""
    by_package: dict[str, set[str]] = {}
    for m in modules.values():
        by_package.setdefault(package_name(m), set()).update(defined_functions(m))
    full: dict[tuple[str, ...], str] = {}
    for pkg, names in by_package.items():
        for n in names:
            full[("data", *pkg.split("."), n)] = f"{n}__{suffix_of(pkg)}"
    out: dict[str, Module] = {}
    for file, m in modules.items():
        pkg = package_name(m)
        own = by_package.get(pkg, set())
        aliases = _import_aliases(m)

        def term_fn(t: Term, own: set[str] = own, pkg: str = pkg, aliases: dict[str, tuple[str, ...]] = aliases) -> Term:
            if not isinstance(t, Call):
                return t
            names = ref_names(t.op)
            if names is None or len(names) != len(t.op.path) + 1:
                return t
            if len(names) == 1 and names[0] in own:
                return replace(t, op=Ref(Var(f"{names[0]}__{suffix_of(pkg)}", pos=t.op.head.pos)))
            path = aliases.get(names[0], ()) + names[1:] if names[0] in aliases else names
            new = full.get(path)
            if new is not None:
                return replace(t, op=replace(t.op, path=(*t.op.path[:-1], Scalar(new))))
            return t

        renamed = map_module(m, lambda b: b, term_fn)
        rules = tuple(
            replace(r, head=replace(r.head, ref=Ref(Var(f"{r.head.name}__{suffix_of(pkg)}", pos=r.head.ref.head.pos))))
            if r.head.args is not None and not r.head.ref.path else r
            for r in renamed.rules
        )
        out[file] = replace(renamed, rules=tuple(_rename_else(r) for r in rules))
    return out


def _rename_else(r: Rule) -> Rule:
    """An else clause names the rule it belongs to as its head does."""
    if r.else_ is None:
        return r
    return replace(r, else_=_rename_else(replace(r.else_, head=replace(r.else_.head, ref=r.head.ref))))


def _import_aliases(m: Module) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for i in m.imports:
        names = ref_names(i.path)
        if names and names[0] == "data" and len(names) == len(i.path.path) + 1:
            out[i.alias or names[-1]] = names
    return out


# -------------------------------------------------------------------------------------------- speed


def partial_sets_as_comprehensions(m: Module, fresh: Fresh | None = None) -> Module:
    """`p contains x if body` becomes `p := {x | body}` (several bodies: helper rules joined with `|`) for
    each name whose every definition in m has that shape and one of whose bodies iterates. The caller
    guarantees no other module extends m's package."""
    fresh = fresh or Fresh()
    defs: dict[str, list[Rule]] = {}
    for r in m.rules:
        defs.setdefault(r.head.name if not r.head.ref.path else "", []).append(r)
    chosen = {
        name for name, rules in defs.items()
        if name and all(_is_partial_set(r, m.v1) for r in rules) and any(_iterates(r.body) for r in rules)
    }
    if not chosen:
        return m
    rules_out: list[Rule] = []
    tails: list[Rule] = []
    for name in [n for n in defs if n in chosen]:
        found = defs[name]
        helpers = [name] if len(found) == 1 else [f"__set_{name}_{n + 1}" for n in range(len(found))]
        for r, helper in zip(found, helpers, strict=True):
            assert r.head.key is not None
            rules_out.append(Rule(Head(Ref(Var(helper)), value=SetCompr(r.head.key, r.body), assign=True), pos=r.pos))
        if len(found) > 1:
            union: Term = Var(helpers[0])
            for h in helpers[1:]:
                union = Call(Ref(Var("or")), (union, Var(h)))
            tails.append(Rule(Head(Ref(Var(name)), value=union, assign=True)))
    kept = [r for r in m.rules if r.head.ref.path or r.head.name not in chosen]
    return replace(m, rules=(*kept, *rules_out, *tails))


def _is_partial_set(r: Rule, v1: bool) -> bool:
    h = r.head
    return (
        (h.contains or not v1) and not r.default and r.else_ is None and h.args is None and not h.ref.path and h.key is not None
        and h.value is None and bool(r.body)
    )


def _iterates(body: Body) -> bool:
    for t in walk_terms(body):
        if isinstance(t, Var) and t.name == "_":
            return True
    return any(isinstance(e.terms, SomeDecl | Every) for e in body)



def rewrite_template_strings(m: Module, fresh: Fresh | None = None) -> Module:
    """Each template string `$"a{x}b"` as OPA's compiler rewrites it: `internal.template_string(["a", {v | v = x},
    "b"])`, each template expression a set comprehension over the enclosing scope (its `with` modifiers kept),
    so that no value is the empty set (`<undefined>`) and more than one an error of the built-in."""
    fresh = fresh or Fresh()
    return map_module(m, lambda b: b, lambda t: rewrite_template_term(t, fresh))


def rewrite_template_term(t: Term, fresh: Fresh) -> Term:
    """One term of rewrite_template_strings (its parts rewritten already: map_term goes bottom-up)."""
    if not isinstance(t, TemplateString):
        return t
    items: list[Term] = []
    for p in t.parts:
        if isinstance(p, str):
            items.append(Scalar(p, pos=t.pos))
            continue
        assert not isinstance(p.terms, SomeDecl | Every)
        v = fresh("tpl")
        eq = Call(Ref(Var("eq", pos=p.pos), pos=p.pos), (v, p.terms), pos=p.pos)
        items.append(SetCompr(v, (Expr(eq, False, p.with_, p.pos),), pos=p.pos))
    op = Ref(Var("internal", pos=t.pos), (Scalar("template_string", pos=t.pos),), pos=t.pos)
    return Call(op, (Array(tuple(items), pos=t.pos),), pos=t.pos)
