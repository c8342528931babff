"""Hypothesis strategies for random but valid Rego: modules (as ASTs) that regopy can evaluate, and inputs for them.

`modules_and_inputs()` draws `(module, input)`: a module `package gen` of complete rules (with defaults and
`else`), multi-value rules, single-value object rules and functions, whose bodies use `some ... in`, `every`,
`not`, comprehensions, membership, builtins (count, startswith, endswith, contains, sprintf, lower, upper,
concat, max, sum, abs, object.get), template strings (`$"..."`), arithmetic and comparisons over an input of a fixed shape:

    {"n": int, "m": int, "s": str, "xs": [int], "names": [str], "labels": {str: str}}

Every variable is bound before it is read and rules only read rules drawn before them, so the module is safe
and free of recursion; values of the same rule never conflict (complete rules have one body or an `else`
chain). Division only by non-zero literals. Names are fresh (`r0`, `f1`, `v2`), never keywords.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from admission.engines.rego import ast

PACKAGE = "gen"
WORDS = ("a", "b", "ab", "ba", "x-y", "A", "", "abc", "z")


def V(name: str) -> ast.Var:
    return ast.Var(name)


def S(value: Any) -> ast.Scalar:
    return ast.Scalar(value)


def R(head: str | ast.Term, *path: str | ast.Term) -> ast.Ref:
    h = V(head) if isinstance(head, str) else head
    return ast.Ref(h, tuple(S(p) if isinstance(p, str) else p for p in path))


def C(name: str, *args: ast.Term) -> ast.Call:
    head, *rest = name.split(".")
    return ast.Call(R(head, *rest), args)


def OP(op: str, a: ast.Term, b: ast.Term) -> ast.Call:
    return C(ast.INFIX[op], a, b)


def E(term: ast.Term | ast.SomeDecl | ast.Every, negated: bool = False) -> ast.Expr:
    return ast.Expr(term, negated)


def INPUT(*path: str) -> ast.Term:
    return R("input", *path) if path else V("input")  # a bare root name is a Var, as the parser gives it


@dataclass
class _Scope:
    """Variables bound so far in a body, by type ("int", "str")."""

    ints: list[str] = field(default_factory=list)
    strs: list[str] = field(default_factory=list)
    counter: list[int] = field(default_factory=lambda: [0])

    def fresh(self) -> str:
        self.counter[0] += 1
        return f"v{self.counter[0]}"

    def child(self) -> _Scope:
        return _Scope(list(self.ints), list(self.strs), self.counter)


@dataclass
class _Rules:
    """Rules drawn so far that bodies may read: name -> type ("int", "str", "bool", "set_int", "obj")."""

    values: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)  # f(int) -> type


@st.composite
def int_terms(draw: st.DrawFn, scope: _Scope, rules: _Rules, depth: int = 0) -> ast.Term:
    choices = ["lit", "input"]
    if scope.ints:
        choices += ["var", "var"]
    if depth < 2:
        choices += ["arith", "count", "builtin"]
    int_rules = [n for n, t in rules.values.items() if t == "int"]
    if int_rules:
        choices.append("rule")
    int_funcs = [n for n, t in rules.functions.items() if t == "int"]
    if int_funcs and depth < 2:
        choices.append("func")
    kind = draw(st.sampled_from(choices))
    if kind == "lit":
        return S(draw(st.integers(-5, 20)))
    if kind == "input":
        return INPUT(draw(st.sampled_from(["n", "m"])))
    if kind == "var":
        return V(draw(st.sampled_from(scope.ints)))
    if kind == "rule":
        name = draw(st.sampled_from(int_rules))
        return draw(st.sampled_from([V(name), R("data", PACKAGE, name)]))
    if kind == "func":
        name = draw(st.sampled_from(int_funcs))
        arg = draw(int_terms(scope, rules, depth + 1))
        return ast.Call(draw(st.sampled_from([R(name), R("data", PACKAGE, name)])), (arg,))
    if kind == "count":
        return C("count", draw(st.sampled_from([INPUT("xs"), INPUT("names"), INPUT("labels"), INPUT("s")])))
    if kind == "builtin":
        which = draw(st.sampled_from(["abs", "max", "sum", "get"]))
        if which == "abs":
            return C("abs", draw(int_terms(scope, rules, depth + 1)))
        if which == "get":
            return C("object.get", INPUT(), S("n"), S(0))
        # max of an empty array is undefined: fine, the statement fails
        return C(which, INPUT("xs"))
    op = draw(st.sampled_from(["+", "-", "*", "%", "/"]))
    lhs = draw(int_terms(scope, rules, depth + 1))
    if op in ("%", "/"):
        rhs: ast.Term = S(draw(st.sampled_from([1, 2, 3, 7])))
        if op == "/":  # an exact quotient, so that the value stays an integer
            lhs = OP("*", lhs, rhs)
    else:
        rhs = draw(int_terms(scope, rules, depth + 1))
    return OP(op, lhs, rhs)


@st.composite
def str_terms(draw: st.DrawFn, scope: _Scope, rules: _Rules, depth: int = 0) -> ast.Term:
    choices = ["lit", "input"]
    if scope.strs:
        choices += ["var", "var"]
    if depth < 2:
        choices += ["sprintf", "case", "concat", "template"]
    str_rules = [n for n, t in rules.values.items() if t == "str"]
    if str_rules:
        choices.append("rule")
    kind = draw(st.sampled_from(choices))
    if kind == "lit":
        return S(draw(st.sampled_from(WORDS)))
    if kind == "input":
        return INPUT("s")
    if kind == "var":
        return V(draw(st.sampled_from(scope.strs)))
    if kind == "rule":
        return V(draw(st.sampled_from(str_rules)))
    if kind == "case":
        return C(draw(st.sampled_from(["lower", "upper"])), draw(str_terms(scope, rules, depth + 1)))
    if kind == "concat":
        return C("concat", S(draw(st.sampled_from(["", "-", ", "]))), INPUT("names"))
    if kind == "template":
        # OPA 1.12's `$"..."`: literal parts with braces, quotes and escapes, and template expressions of any
        # value (strings, numbers, collections, an undefined input path)
        # (no control character or non-ASCII letter: regopy 1.5's upper/lower turn "\n" into "\N" and leave "é")
        literal = st.sampled_from(["", "a", " ", "{", "}", '"q"', "\\", "x{y}"])
        expression = st.one_of(
            st.deferred(lambda: str_terms(scope, rules, depth + 1)),
            st.deferred(lambda: int_terms(scope, rules, depth + 1)),
            st.sampled_from([INPUT("xs"), INPUT("labels"), INPUT("names"), INPUT("missing"), S(None), S(True), S(1.5)]),
        )
        parts: list[str | ast.Expr] = []
        for _ in range(draw(st.integers(0, 3))):
            text = draw(literal)
            if text:
                parts.append(text)
            parts.append(E(draw(expression)))
        if draw(st.booleans()):
            parts.append(draw(literal) or "z")
        return ast.TemplateString(tuple(parts))
    # arguments of one type: regopy 1.5 quotes the strings of a mixed array (`sprintf("%v-%v", [1, lower("A")])`
    # gives `1-"a"`, and an output that is not JSON)
    # and plain arguments (a nested call's string result comes out quoted too)
    if draw(st.booleans()):
        element = st.one_of(st.integers(-5, 20).map(S), st.just(INPUT("n")), st.sampled_from([V(n) for n in scope.ints] or [INPUT("m")]))
    else:
        element = st.one_of(st.sampled_from(WORDS[:-3]).map(S), st.just(INPUT("s")), st.sampled_from([V(n) for n in scope.strs] or [INPUT("s")]))
    args = draw(st.lists(element, min_size=1, max_size=3))
    fmt = "-".join("%v" for _ in args)
    return C("sprintf", S(fmt), ast.Array(tuple(args)))


@st.composite
def tests(draw: st.DrawFn, kind: str, scope: _Scope, rules: _Rules) -> ast.Term:
    """A condition that binds nothing: a comparison, a string test or a membership test."""
    if kind == "compare":
        op = draw(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]))
        return OP(op, draw(int_terms(scope, rules)), draw(int_terms(scope, rules)))
    if kind == "str_test":
        fn = draw(st.sampled_from(["startswith", "endswith", "contains"]))
        return C(fn, draw(str_terms(scope, rules)), draw(str_terms(scope, rules)))
    if draw(st.booleans()):
        return C(ast.MEMBER_2, draw(int_terms(scope, rules)), INPUT("xs"))
    return C(ast.MEMBER_2, draw(str_terms(scope, rules)), INPUT("names"))


@st.composite
def statements(draw: st.DrawFn, scope: _Scope, rules: _Rules, depth: int = 0, in_comprehension: bool = False) -> list[ast.Expr]:
    """One or two statements that keep the body safe, binding variables into `scope`. In a comprehension's
    body after its first statement no `some k, v in xs`: regopy 1.5 refuses it there ("Invalid collection")."""
    kinds = ["assign_int", "assign_str", "compare", "str_test", "some_in", "member", "not"]
    if not in_comprehension:
        kinds.append("some_kv")
    if depth < 1:
        kinds += ["every", "compr_array", "compr_set", "compr_object", "unify"]
    bool_rules = [n for n, t in rules.values.items() if t == "bool"]
    if bool_rules:
        kinds.append("rule_test")
    set_rules = [n for n, t in rules.values.items() if t == "set_int"]
    if set_rules:
        kinds.append("set_member")
    kind = draw(st.sampled_from(kinds))
    if kind == "assign_int":
        name = scope.fresh()
        expr = E(OP(":=", V(name), draw(int_terms(scope, rules))))
        scope.ints.append(name)
        return [expr]
    if kind == "assign_str":
        name = scope.fresh()
        expr = E(OP(":=", V(name), draw(str_terms(scope, rules))))
        scope.strs.append(name)
        return [expr]
    if kind == "unify":
        name = scope.fresh()
        expr = E(OP("=", V(name), draw(int_terms(scope, rules))))
        scope.ints.append(name)
        return [expr]
    if kind in ("compare", "str_test"):
        return [E(draw(tests(kind, scope, rules)))]
    if kind == "some_in":
        name = scope.fresh()
        coll = draw(st.sampled_from(["xs", "names"]))
        expr = E(ast.SomeDecl((C(ast.MEMBER_2, V(name), INPUT(coll)),)))
        (scope.ints if coll == "xs" else scope.strs).append(name)
        return [expr]
    if kind == "some_kv":
        k, v = scope.fresh(), scope.fresh()
        expr = E(ast.SomeDecl((C(ast.MEMBER_3, V(k), V(v), INPUT("labels")),)))
        scope.strs.extend([k, v])
        return [expr]
    if kind == "member":
        return [E(draw(tests(kind, scope, rules)))]
    if kind == "not":
        return [E(draw(tests(draw(st.sampled_from(["compare", "str_test", "member"])), scope, rules)), True)]
    if kind == "every":
        inner = scope.child()
        if draw(st.booleans()):
            x = inner.fresh()
            inner.ints.append(x)
            body = (E(OP(draw(st.sampled_from([">", "<=", "!="])), V(x), draw(int_terms(inner, rules)))),)
            return [E(ast.Every(None, V(x), INPUT("xs"), body))]
        k, v = inner.fresh(), inner.fresh()
        inner.strs.extend([k, v])
        body = (E(C(draw(st.sampled_from(["startswith", "contains"])), V(v), draw(str_terms(inner, rules)))),)
        return [E(ast.Every(V(k), V(v), INPUT("labels"), body))]
    if kind in ("compr_array", "compr_set"):
        inner = scope.child()
        x = inner.fresh()
        inner.ints.append(x)
        body = (E(ast.SomeDecl((C(ast.MEMBER_2, V(x), INPUT("xs")),))), *draw(statements(inner, rules, depth + 1, True)))
        value = draw(int_terms(inner, rules, 1))
        name = scope.fresh()
        compr: ast.Term = ast.ArrayCompr(value, body) if kind == "compr_array" else ast.SetCompr(value, body)
        stmt = E(OP(":=", V(name), compr))
        total = scope.fresh()
        scope.ints.append(total)
        return [stmt, E(OP(":=", V(total), C("count", V(name))))]
    if kind == "compr_object":
        inner = scope.child()
        k, v = inner.fresh(), inner.fresh()
        inner.strs.extend([k, v])
        value = draw(str_terms(inner.child(), rules, 1))  # reads k, v and outer variables: one value per key
        body = (E(ast.SomeDecl((C(ast.MEMBER_3, V(k), V(v), INPUT("labels")),))), *draw(statements(inner, rules, depth + 1, True)))
        name = scope.fresh()
        stmt = E(OP(":=", V(name), ast.ObjectCompr(V(k), value, body)))
        key = draw(str_terms(scope, rules))
        got = scope.fresh()
        scope.strs.append(got)
        return [stmt, E(OP(":=", V(got), C("object.get", V(name), key, S(""))))]
    if kind == "rule_test":
        return [E(V(draw(st.sampled_from(bool_rules))), draw(st.booleans()))]
    # set_member
    return [E(C(ast.MEMBER_2, draw(int_terms(scope, rules)), V(draw(st.sampled_from(set_rules)))))]


@st.composite
def bodies(draw: st.DrawFn, rules: _Rules, scope: _Scope | None = None) -> tuple[ast.Body, _Scope]:
    scope = scope or _Scope()
    out: list[ast.Expr] = []
    for _ in range(draw(st.integers(1, 4))):
        out.extend(draw(statements(scope, rules)))
    return tuple(out), scope


def _plain(term: ast.Term, body: ast.Body, scope: _Scope) -> tuple[ast.Term, ast.Body]:
    """A head's key or value as regopy accepts it: an operator expression is bound to a variable in the
    body first (regopy 1.5 refuses `p contains a - b`, OPA does not)."""
    if isinstance(term, ast.Call) and term.op.head in (V(n) for n in ast.INFIX.values()):
        name = scope.fresh()
        return V(name), (*body, E(OP(":=", V(name), term)))
    return term, body


def _head(name: str, **kw: Any) -> ast.Head:
    return ast.Head(R(name), **kw)


@st.composite
def rules_of(draw: st.DrawFn, index: int, rules: _Rules) -> list[ast.Rule]:
    name = f"r{index}"
    kind = draw(st.sampled_from(["bool", "int", "str", "set", "object", "function", "else", "constant"]))
    if kind == "bool":
        body, _ = draw(bodies(rules))
        out = [ast.Rule(_head(name), body)]
        if draw(st.booleans()):
            out.insert(0, ast.Rule(_head(name, value=S(False), assign=True), (), default=True))
        rules.values[name] = "bool"
        return out
    if kind in ("int", "str"):
        body, _ = draw(bodies(rules))
        # the value reads no variable of the body: a body with several solutions gives one value
        value = draw(int_terms(_Scope(), rules) if kind == "int" else str_terms(_Scope(), rules))
        value, body = _plain(value, body, _Scope(counter=[100]))
        out = [ast.Rule(_head(name, value=value, assign=True), body)]
        if draw(st.booleans()):
            out.insert(0, ast.Rule(_head(name, value=S(0 if kind == "int" else "none"), assign=True), (), default=True))
        rules.values[name] = kind
        return out
    if kind == "constant":
        value = draw(st.sampled_from([S(1), S("c"), ast.Array((S(1), S(2))), ast.Object(((S("k"), S("v")),)), ast.Set((S(3),))]))
        return [ast.Rule(_head(name, value=value, assign=draw(st.booleans())), ())]
    if kind == "set":
        out = []
        for _ in range(draw(st.integers(1, 2))):
            body, scope = draw(bodies(rules))
            key, body = _plain(draw(int_terms(scope, rules)), body, scope)
            out.append(ast.Rule(_head(name, key=key, contains=True), body))
        rules.values[name] = "set_int"
        return out
    if kind == "object":
        scope = _Scope()
        k, v = scope.fresh(), scope.fresh()
        scope.strs.extend([k, v])
        first = E(ast.SomeDecl((C(ast.MEMBER_3, V(k), V(v), INPUT("labels")),)))
        value = draw(str_terms(scope.child(), rules))  # reads only k and v: one value per key
        body, _ = draw(bodies(rules, scope))
        value, body = _plain(value, body, scope)
        return [ast.Rule(_head(name, key=V(k), value=value, assign=True), (first, *body))]
    if kind == "function":
        fname = f"f{index}"
        scope = _Scope()
        x = scope.fresh()
        scope.ints.append(x)
        value = draw(int_terms(scope.child(), rules))  # reads only the argument: one value per call
        body, _ = draw(bodies(rules, scope))
        rules.functions[fname] = "int"
        value, body = _plain(value, body, scope)
        return [ast.Rule(ast.Head(R(fname), args=(V(x),), value=value, assign=True), body)]
    # else chain: conditions on the input, each with its own value
    body, _ = draw(bodies(rules))
    else_body, _ = draw(bodies(rules))
    last = ast.Rule(_head(name, value=S(3), assign=True), ())
    mid = ast.Rule(_head(name, value=S(2), assign=True), else_body, else_=last if draw(st.booleans()) else None)
    rules.values[name] = "int" if mid.else_ is not None else rules.values.get(name, "")
    if not rules.values[name]:
        del rules.values[name]
    return [ast.Rule(_head(name, value=S(1), assign=True), body, else_=mid)]


@st.composite
def modules(draw: st.DrawFn, max_rules: int = 6) -> ast.Module:
    rules = _Rules()
    out: list[ast.Rule] = []
    for i in range(draw(st.integers(1, max_rules))):
        out.extend(draw(rules_of(i, rules)))
    return ast.Module(ast.Package(R("data", PACKAGE)), (), tuple(out))


def inputs() -> st.SearchStrategy[dict[str, Any]]:
    word = st.sampled_from(WORDS)
    return st.fixed_dictionaries({
        "n": st.integers(-10, 10),
        "m": st.integers(0, 5),
        "s": word,
        "xs": st.lists(st.integers(-3, 12), max_size=5),
        "names": st.lists(word, max_size=4),
        "labels": st.dictionaries(word, word, max_size=4),
    })


def modules_and_inputs() -> st.SearchStrategy[tuple[ast.Module, dict[str, Any]]]:
    return st.tuples(modules(), inputs())
