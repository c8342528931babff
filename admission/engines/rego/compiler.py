"""Rego compiled to Python closures over plain values: the hot path that needs no generic interpreter.

`compile_modules(modules)` reads a set of parsed modules (`ast.Module`, one package possibly over several
files) and returns a `Compiled`; `Compiled.query("data.pkg.rule", input, data)` evaluates a document.
A module that uses anything outside the supported subset raises `Unsupported(reason, pos)` here, at
compile time, never during evaluation: the caller then runs it on regopy (`try_compile`).

The stages, each a function over the whole module set, as in OPA's compiler:

0. `passes.rewrite_template_strings`: each `$"..."` as a call of `internal.template_string` over set
   comprehensions (OPA's `RewriteTemplateStrings`).
1. `rule_tree`: every rule placed at its path (package + name, ref heads with constant steps), with its
   kind (complete, partial set, partial object, function) and its module's imports; conflicting kinds are
   refused.
2. `compile_group`: each path's rules compiled to one evaluation, memoised per evaluation (a slot in
   `Ctx.memo`): a body is a chain of closures in continuation-passing style, `run(ctx, frame) -> stop`,
   where `frame` is a list of the body's variables (slots fixed at compile time, no environments built
   per binding). Expressions are ordered for safety (an expression waits until its inputs are bound, as
   OPA reorders), references with unbound keys enumerate, `=` unifies against patterns.
3. References into `data` are resolved at compile time against the rule tree: a rule's value, a package
   (materialised as an object when indexed by a computed key), or the base data given at evaluation.
4. Each body's expressions, once compiled and ordered, are also written out as straight-line Python where
   they can be (`_emit`, codegen.py): the closures stay for the rest, and a body is a chain of generated
   functions and closures over the same frame (`ADMISSION_REGO_CODEGEN=0`: closures only).
5. With `varying` (Gatekeeper: `input.parameters`), `_sharing` marks what reads the varying input; what does
   not is evaluated once per `Shared` by the evaluations that pass the same one (`_split` for rule bodies).

Semantics follow OPA: undefined is failure, a builtin's error makes its expression undefined (unless
`strict`), conflicts are errors (`EvalError`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from admission.engines.rego import ast, codegen
from admission.engines.rego import passes as ps
from admission.engines.rego.builtins import BUILTINS, RELATIONS, BuiltinError
from admission.engines.rego.values import UNDEFINED, EvalError, Set, check_key, equal, key, to_json

Frame = list[Any]
CODEGEN = os.environ.get("ADMISSION_REGO_CODEGEN", "1") != "0"  # bodies as generated Python (else closures)
Ev = Callable[["Ctx", Frame], Any]  # a ground term's value (or UNDEFINED)
Run = Callable[["Ctx", Frame], bool]  # a body step: True means stop (enough solutions)


class Unsupported(Exception):
    """The module set uses something the compiler does not implement (or that is an error OPA reports at
    compile time); the caller evaluates it with regopy instead."""

    def __init__(self, reason: str, pos: ast.Pos = ast.NOPOS, file: str = "") -> None:
        where = f"{file}:{pos.line}:{pos.col}: " if pos.line else ""
        super().__init__(f"{where}{reason}")
        self.reason = reason
        self.pos = pos
        self.file = file


class _NotReady(Exception):
    """An expression whose inputs are not all bound yet (the body orderer tries it later)."""

    def __init__(self, var: str) -> None:
        self.var = var


_UNSET: Any = object()
_NO_DEADLINE = float("inf")
_clock = time.monotonic


class DeadlineError(EvalError):
    """The evaluation passed its deadline (`Ctx.deadline`): OPA's cancellation, an error of the rule."""

    def __init__(self) -> None:
        super().__init__("eval_cancel_error", "deadline exceeded: the evaluation was stopped")


def expired() -> None:
    raise DeadlineError()


class Ctx:
    """One evaluation: input, base data, memoised rule values, the pinned clock; `with` makes a child."""

    __slots__ = ("input", "data", "memo", "strict", "overrides", "parent", "_now", "fmemo", "smemo", "sfmemo", "deadline")

    def __init__(self, input: Any, data: Any, nmemo: int, strict: bool = False, shared: Shared | None = None,
                 deadline: float | None = None) -> None:
        self.input = input
        self.data = data
        # time.monotonic() past which the evaluation stops (`expired`): every enumeration checks it as it starts,
        # so the work left unchecked is one pass over one collection; no deadline is +inf (one comparison)
        self.deadline = _NO_DEADLINE if deadline is None else deadline
        self.memo: list[Any] = [_UNSET] * nmemo
        self.strict = strict
        self.overrides: dict[tuple[str, ...], Any] = {}
        self.parent: Ctx | None = None
        self._now = 0
        self.fmemo: dict[Any, Any] = {}
        # the values of what does not read the varying part of the input (see `Shared`): this evaluation's own
        # memo unless evaluations share them
        if shared is None:
            self.smemo = self.memo
            self.sfmemo = self.fmemo
        else:
            self.smemo = shared.memo
            self.sfmemo = shared.fmemo

    def now_ns(self) -> int:
        root = self
        while root.parent is not None:
            root = root.parent
        if not root._now:
            root._now = time.time_ns()
        return root._now

    def child(self) -> Ctx:
        c = Ctx(self.input, self.data, len(self.memo), self.strict, None, self.deadline)  # nothing shared under `with`
        c.overrides = dict(self.overrides)
        c.parent = self
        return c


class Shared:
    """What evaluations of one compiled set share when they differ only in the varying part of the input
    (`compile_modules(..., varying=("parameters",))`: Gatekeeper's constraints of one template on one review):
    the values of the rules and functions that do not read it, and the solutions of a partial rule body's
    leading expressions that do not. The caller promises equal data and input elsewhere."""

    __slots__ = ("memo", "fmemo")

    def __init__(self, nmemo: int) -> None:
        self.memo: list[Any] = [_UNSET] * nmemo
        self.fmemo: dict[Any, Any] = {}


# ------------------------------------------------------------------------------------ value access


def lookup(v: Any, k: Any) -> Any:
    """v[k] as Rego reads it, or UNDEFINED."""
    t = type(v)
    if t is dict:
        if type(k) is bool or type(k) in (list, dict, Set):
            return UNDEFINED
        return v.get(k, UNDEFINED)
    if t is list:
        tk = type(k)
        if tk is int:
            return v[k] if 0 <= k < len(v) else UNDEFINED
        if tk is float and k.is_integer() and 0 <= k < len(v):
            return v[int(k)]
        return UNDEFINED
    if t is Set:
        return k if k in v else UNDEFINED
    return UNDEFINED


def items(v: Any) -> Iterable[tuple[Any, Any]]:
    """(key, value) pairs of a collection: index/element, key/value, member/member."""
    t = type(v)
    if t is dict:
        return v.items()
    if t is list:
        return enumerate(v)
    if t is Set:
        return ((x, x) for x in list(v))
    return ()


# ------------------------------------------------------------------------------------ the rule tree


SET, OBJECT, COMPLETE, FUNCTION = "set", "object", "complete", "function"
_OPERATORS = frozenset(ast.INFIX.values()) | {ast.MEMBER_2, ast.MEMBER_3}


@dataclass
class RuleInfo:
    rule: ast.Rule
    module: ast.Module
    kind: str
    key: ast.Term | None  # the key term of a partial rule (a ref head's last computed step included)


@dataclass
class Node:
    """A package or rule path in the tree of `data`'s virtual documents."""

    path: tuple[str, ...]
    children: dict[str, Node] = field(default_factory=dict)
    rules: list[RuleInfo] = field(default_factory=list)
    group: Group | None = None

    @property
    def kind(self) -> str:
        return self.rules[0].kind if self.rules else ""


def _scalar_str(t: ast.Term) -> str | None:
    return t.value if isinstance(t, ast.Scalar) and isinstance(t.value, str) else None


def package_path(m: ast.Module) -> tuple[str, ...]:
    out = []
    for step in m.package.path.path:
        s = _scalar_str(step)
        if s is None:
            raise Unsupported("a package path with a non-string step", m.package.pos, m.file)
        out.append(s)
    return tuple(out)


def _rule_path(m: ast.Module, r: ast.Rule) -> tuple[tuple[str, ...], ast.Term | None]:
    head = r.head
    if not isinstance(head.ref.head, ast.Var):
        raise Unsupported("a rule head that is not a name", r.pos, m.file)
    path = [head.ref.head.name]
    key = head.key
    steps = list(head.ref.path)
    if steps and key is None and _scalar_str(steps[-1]) is None and head.args is None:
        key = steps.pop()  # `a.b[x] := v`: the last computed step is the key
    for step in steps:
        s = _scalar_str(step)
        if s is None:
            raise Unsupported("a rule head reference with a computed step before its last", r.pos, m.file)
        path.append(s)
    return package_path(m) + tuple(path), key


def _kind(m: ast.Module, r: ast.Rule, key: ast.Term | None) -> str:
    head = r.head
    if head.args is not None:
        return FUNCTION
    if key is not None:
        if head.value is None and (head.contains or not m.v1):
            return SET
        return OBJECT  # v1's `p[k] if ...` without a value holds true
    return COMPLETE


def rule_tree(modules: list[ast.Module]) -> Node:
    """Stage 1: every rule at its path, kinds checked."""
    root = Node(())
    for m in modules:
        pkg = package_path(m)
        node = root
        for step in pkg:
            node = node.children.setdefault(step, Node(node.path + (step,)))
        for r in m.rules:
            path, key = _rule_path(m, r)
            kind = _kind(m, r, key)
            node = root
            for step in path:
                node = node.children.setdefault(step, Node(node.path + (step,)))
            if node.rules and node.kind != kind:
                raise Unsupported(f"rule {'.'.join(path)} is defined as both {node.kind} and {kind}", r.pos, m.file)
            node.rules.append(RuleInfo(r, m, kind, key))
    _check_tree(root)
    return root


def _check_tree(node: Node) -> None:
    for child in node.children.values():
        if child.rules and child.children:
            if child.kind != OBJECT and child.kind != COMPLETE:
                raise Unsupported(f"rule {'.'.join(child.path)} has rules below it", child.rules[0].rule.pos, child.rules[0].module.file)
            raise Unsupported(f"rules nested below rule {'.'.join(child.path)}", child.rules[0].rule.pos, child.rules[0].module.file)
        _check_tree(child)


# ------------------------------------------------------------------------------------ scopes


class Layout:
    """The slots of one frame (a rule body, a function body, a query)."""

    def __init__(self) -> None:
        self.n = 0

    def new(self) -> int:
        self.n += 1
        return self.n - 1


class Scope:
    """The variables of one body: those it declares or binds, resolved to slots of the frame's layout;
    comprehensions get a child scope on the same layout, seeing the outer body's variables."""

    def __init__(self, layout: Layout, parent: Scope | None, body_vars: set[str], declared: Iterable[str] = ()) -> None:
        self.layout = layout
        self.parent = parent
        self.body_vars = body_vars  # names occurring in this body (outside nested comprehensions)
        self.slots: dict[str, int] = {}
        self.bound: set[str] = set()
        self.assigned: set[str] = set()  # declared with `:=` (visible from that statement on)
        self.refs: dict[ast.Ref, int] = {}  # `xs[i]` enumerated here: the slot holding its value
        for name in declared:
            self.slots[name] = layout.new()

    def owner(self, name: str) -> Scope | None:
        """The scope a local name belongs to, or None for a name that is not local."""
        s: Scope | None = self
        while s is not None:
            if name in s.slots:
                return s
            s = s.parent
        # not declared: outermost body that mentions it owns it
        found = None
        s = self
        while s is not None:
            if name in s.body_vars:
                found = s
            s = s.parent
        return found

    def slot(self, name: str) -> int:
        s = self.owner(name) or self
        if name not in s.slots:
            s.slots[name] = self.layout.new()
        return s.slots[name]

    def is_bound(self, name: str) -> bool:
        s = self.owner(name) or self
        return name in s.bound

    def bind(self, name: str) -> None:
        s = self.owner(name) or self
        s.slot(name)
        s.bound.add(name)

    def snapshot(self) -> list[tuple[Scope, set[str], dict[ast.Ref, int]]]:
        out = []
        s: Scope | None = self
        while s is not None:
            out.append((s, set(s.bound), dict(s.refs)))
            s = s.parent
        return out

    @staticmethod
    def restore(snap: list[tuple[Scope, set[str], dict[ast.Ref, int]]]) -> None:
        for s, bound, refs in snap:
            s.bound = bound
            s.refs = refs

    def cached(self, ref: ast.Ref) -> int | None:
        s: Scope | None = self
        while s is not None:
            slot = s.refs.get(ref)
            if slot is not None:
                return slot
            s = s.parent
        return None


# ------------------------------------------------------------------------------------ AST helpers


_wild = [0]


def _fresh_wild() -> str:
    _wild[0] += 1
    return f"$_{_wild[0]}"


def rename_wildcards(t: Any) -> Any:
    """Each `_` as a distinct variable."""
    if isinstance(t, ast.Var):
        return replace(t, name=_fresh_wild()) if t.name == "_" else t
    if isinstance(t, ast.Scalar):
        return t
    if isinstance(t, ast.Ref):
        return replace(t, head=rename_wildcards(t.head), path=tuple(rename_wildcards(x) for x in t.path))
    if isinstance(t, ast.Array | ast.Set):
        return replace(t, items=tuple(rename_wildcards(x) for x in t.items))
    if isinstance(t, ast.Object):
        return replace(t, items=tuple((rename_wildcards(k), rename_wildcards(v)) for k, v in t.items))
    if isinstance(t, ast.ArrayCompr | ast.SetCompr):
        return replace(t, term=rename_wildcards(t.term), body=tuple(rename_wildcards(e) for e in t.body))
    if isinstance(t, ast.ObjectCompr):
        return replace(t, key=rename_wildcards(t.key), value=rename_wildcards(t.value), body=tuple(rename_wildcards(e) for e in t.body))
    if isinstance(t, ast.Call):
        return replace(t, args=tuple(rename_wildcards(x) for x in t.args))
    if isinstance(t, ast.Expr):
        return replace(t, terms=rename_wildcards(t.terms), with_=tuple(replace(w, value=rename_wildcards(w.value)) for w in t.with_))
    if isinstance(t, ast.SomeDecl):
        return replace(t, symbols=tuple(rename_wildcards(x) for x in t.symbols))
    if isinstance(t, ast.Rule):
        h = t.head
        head = replace(
            h,
            args=tuple(rename_wildcards(x) for x in h.args) if h.args is not None else None,
            key=rename_wildcards(h.key) if h.key is not None else None,
            value=rename_wildcards(h.value) if h.value is not None else None,
        )
        return replace(
            t, head=head, body=tuple(rename_wildcards(e) for e in t.body), else_=rename_wildcards(t.else_) if t.else_ is not None else None
        )
    if isinstance(t, ast.Every):
        return replace(
            t,
            key=rename_wildcards(t.key) if t.key is not None else None,
            value=rename_wildcards(t.value),
            domain=rename_wildcards(t.domain),
            body=tuple(rename_wildcards(e) for e in t.body),
        )
    return t


def term_vars(t: Any, out: set[str]) -> set[str]:
    """Variable names in t, not looking into comprehension bodies or `every` bodies."""
    if isinstance(t, ast.Var):
        out.add(t.name)
    elif isinstance(t, ast.Ref):
        term_vars(t.head, out)
        for x in t.path:
            term_vars(x, out)
    elif isinstance(t, ast.Array | ast.Set):
        for x in t.items:
            term_vars(x, out)
    elif isinstance(t, ast.Object):
        for k, v in t.items:
            term_vars(k, out)
            term_vars(v, out)
    elif isinstance(t, ast.Call):
        for x in t.args:
            term_vars(x, out)
    elif isinstance(t, ast.Expr):
        term_vars(t.terms, out)
        for w in t.with_:
            term_vars(w.value, out)
    elif isinstance(t, ast.SomeDecl):
        for x in t.symbols:
            term_vars(x, out)
    elif isinstance(t, ast.Every):
        term_vars(t.domain, out)
    return out


def body_vars(body: ast.Body) -> set[str]:
    out: set[str] = set()
    for e in body:
        term_vars(e, out)
    return out


def _declared(body: ast.Body) -> set[str]:
    """Names a body declares itself (`some x`, `x := ...`): local even if a rule has that name."""
    out: set[str] = set()
    for e in body:
        t = e.terms
        if isinstance(t, ast.SomeDecl):
            for s in t.symbols:
                if isinstance(s, ast.Call):
                    for a in s.args[:-1]:
                        term_vars(a, out)
                else:
                    term_vars(s, out)
        elif isinstance(t, ast.Call) and _call_name(t) == "assign":
            term_vars(t.args[0], out)
    return out


def _assigned(body: ast.Body) -> set[str]:
    out: set[str] = set()
    for e in body:
        t = e.terms
        if isinstance(t, ast.Call) and _call_name(t) == "assign":
            term_vars(t.args[0], out)
    return out


def _call_name(c: ast.Call) -> str:
    op = c.op
    if not isinstance(op.head, ast.Var):
        return ""
    parts = [op.head.name]
    for s in op.path:
        v = _scalar_str(s)
        if v is None:
            return ""
        parts.append(v)
    return ".".join(parts)


# ------------------------------------------------------------------------------------ groups


class Group:
    """The compiled rules at one path: `value(ctx)` (memoised) or, for functions, `call(ctx, args)`."""

    def __init__(self, node: Node, index: int) -> None:
        self.node = node
        self.index = index
        self.kind = node.kind
        self.path = node.path
        self.value: Callable[[Ctx], Any] = _not_compiled
        self.call: Callable[[Ctx, list[Any]], Any] = _not_compiled_call
        self.call1: Callable[[Ctx, Any], Any] = _not_compiled_call1  # `call` for a function of one argument
        self.arity = -1
        self.overridable = False
        self.pure = False  # a function reading neither input nor data: its calls are memoised across evaluations
        self.varies = True  # reads the varying part of the input (directly or through other rules): not shared


def _not_compiled(ctx: Ctx) -> Any:
    raise EvalError("internal_error", "rule evaluated before it was compiled")


def _not_compiled_call1(ctx: Ctx, arg: Any) -> Any:
    raise EvalError("internal_error", "function called before it was compiled")


def _not_compiled_call(ctx: Ctx, args: list[Any]) -> Any:
    raise EvalError("internal_error", "function called before it was compiled")


# ------------------------------------------------------------------------------------ the compiler


class Compiler:
    def __init__(self, modules: list[ast.Module], varying: tuple[str, ...] | None = None) -> None:
        fresh = ps.Fresh()
        modules = [ps.rewrite_template_strings(m, fresh) for m in modules]  # the first stage, as in OPA
        self.modules = modules
        self.root = rule_tree(modules)
        self.groups: list[Group] = []
        self.with_data_paths: set[tuple[str, ...]] = set()
        self._index(self.root)
        self.nmemo = len(self.groups)  # memo slots: one per group, then those `new_slot` hands out
        self.varying = varying  # the input path whose value differs between evaluations sharing a `Shared`
        self.module: ast.Module | None = None
        self.pkg: tuple[str, ...] = ()
        self.aliases: dict[str, ast.Ref] = {}
        self.rule_names: set[str] = set()
        self._in_with = False  # compiling an expression under `with`: no enumerated values reused
        self.codegen = CODEGEN
        # the enumerations `prepare` sets up, in order: (scope, prefix ref or None, its closure, slot, vslot)
        self._enum_log: list[tuple[Scope, ast.Ref | None, Ev, int, int]] = []

    def _index(self, node: Node) -> None:
        if node.rules:
            node.group = Group(node, len(self.groups))
            self.groups.append(node.group)
        for child in node.children.values():
            self._index(child)

    def unsupported(self, reason: str, pos: ast.Pos = ast.NOPOS) -> Unsupported:
        return Unsupported(reason, pos, self.module.file if self.module else "")

    # -- module context

    def enter(self, m: ast.Module) -> None:
        self.module = m
        self.pkg = package_path(m)
        self.aliases = {}
        for imp in m.imports:
            head = imp.path.head
            if not isinstance(head, ast.Var):
                raise self.unsupported("an import that is not a reference", imp.pos)
            if head.name in ("future", "rego"):
                continue
            if head.name not in ("data", "input"):
                raise self.unsupported(f"import of {head.name}", imp.pos)
            name = imp.alias
            if name is None:
                if imp.path.path:
                    last = _scalar_str(imp.path.path[-1])
                    if last is None:
                        raise self.unsupported("an import with a computed step", imp.pos)
                    name = last
                else:
                    name = head.name
            self.aliases[name] = imp.path
        node = self._node(self.pkg)
        self.rule_names = set(node.children) if node else set()

    def _node(self, path: tuple[str, ...]) -> Node | None:
        node = self.root
        for s in path:
            nxt = node.children.get(s)
            if nxt is None:
                return None
            node = nxt
        return node

    def new_slot(self) -> int:
        self.nmemo += 1
        return self.nmemo - 1

    def compile(self) -> Compiled:
        self._purity()
        self._sharing()
        for g in self.groups:
            self.compile_group(g)
        return Compiled(self)

    # -- purity: functions whose value depends on their arguments alone

    def _purity(self) -> None:
        """Mark each function that reads neither input nor data (directly or through the functions it calls)
        and uses no `with` or clock: its calls with scalar arguments are memoised for the compiled set's
        life (canonical units, suffix tables), not per evaluation."""
        funcs = [g for g in self.groups if g.kind == FUNCTION]
        reads: dict[int, set[int] | None] = {}  # group index -> functions it calls, None when impure
        for g in funcs:
            calls: set[int] | None = set()
            for info in g.node.rules:
                self.enter(info.module)
                if not self._pure_walk(info.rule, calls):  # type: ignore[arg-type]
                    calls = None
                    break
            reads[g.index] = calls
        changed = True
        while changed:  # a function calling an impure one is impure
            changed = False
            for gi, calls in reads.items():
                if calls is not None and any(reads.get(c, None) is None for c in calls):
                    reads[gi] = None
                    changed = True
        for g in funcs:
            g.pure = reads[g.index] is not None

    def _pure_walk(self, t: Any, calls: set[int]) -> bool:
        if isinstance(t, ast.Var):
            if t.name in ("input", "data"):
                return False
            if t.name in self.aliases:
                return False
            if t.name in self.rule_names:
                node = self._node(self.pkg + (t.name,))
                return node is not None and node.group is not None and node.group.kind == FUNCTION and self._note(node.group, calls)
            return True
        if isinstance(t, ast.Call):
            name = _call_name(t)
            group = self._function(t.op)
            if group is not None:
                if not self._note(group, calls):
                    return False
            elif name.startswith("data.") or name.split(".")[0] in self.aliases:
                return False
            else:
                b = BUILTINS.get(name)
                if b is not None and b.ctx:
                    return False
            return all(self._pure_walk(a, calls) for a in t.args)
        if isinstance(t, ast.Expr):
            if t.with_:
                return False
            return self._pure_walk(t.terms, calls)
        if isinstance(t, ast.Rule):
            h = t.head
            parts: list[Any] = [*(h.args or ()), h.key, h.value, *t.body, t.else_]
            return all(self._pure_walk(x, calls) for x in parts if x is not None)
        if isinstance(t, ast.Ref):
            return self._pure_walk(t.head, calls) and all(self._pure_walk(x, calls) for x in t.path)
        if isinstance(t, ast.Array | ast.Set):
            return all(self._pure_walk(x, calls) for x in t.items)
        if isinstance(t, ast.Object):
            return all(self._pure_walk(k, calls) and self._pure_walk(v, calls) for k, v in t.items)
        if isinstance(t, ast.ArrayCompr | ast.SetCompr):
            return self._pure_walk(t.term, calls) and all(self._pure_walk(e, calls) for e in t.body)
        if isinstance(t, ast.ObjectCompr):
            return self._pure_walk(t.key, calls) and self._pure_walk(t.value, calls) and all(self._pure_walk(e, calls) for e in t.body)
        if isinstance(t, ast.SomeDecl):
            return all(self._pure_walk(x, calls) for x in t.symbols)
        if isinstance(t, ast.Every):
            parts = [t.key, t.value, t.domain, *t.body]
            return all(self._pure_walk(x, calls) for x in parts if x is not None)
        return True

    @staticmethod
    def _note(group: Group, calls: set[int]) -> bool:
        if group.kind != FUNCTION:
            return False
        calls.add(group.index)
        return True

    # -- sharing: what does not read the varying part of the input

    def _sharing(self) -> None:
        """Mark each group that reads `input.<varying>` (directly, through the whole input or a computed key,
        under `with`, or through another group that does): the others are evaluated once per `Shared`. An
        over-approximation: anything unclear counts as varying."""
        if self.varying is None:
            return
        deps: dict[int, set[int]] = {}
        direct: dict[int, bool] = {}
        for g in self.groups:
            calls: set[int] = set()
            d = False
            for info in g.node.rules:
                self.enter(info.module)
                d = self._vary_walk(info.rule, calls) or d
            deps[g.index] = calls
            direct[g.index] = d
        varies = {i for i, d in direct.items() if d}
        changed = True
        while changed:
            changed = False
            for i, calls in deps.items():
                if i not in varies and calls & varies:
                    varies.add(i)
                    changed = True
        for g in self.groups:
            g.varies = g.index in varies

    def varies(self, t: Any) -> bool:
        """Whether t (an expression, rule or term of the current module) reads the varying part of the input."""
        if self.varying is None:
            return True
        calls: set[int] = set()
        if self._vary_walk(t, calls):
            return True
        return any(self.groups[i].varies for i in calls)

    def _vary_walk(self, t: Any, groups: set[int]) -> bool:
        """True when t reads the varying input directly; the groups it reads are added to `groups`."""
        if isinstance(t, ast.Var):
            return self._vary_ref(ast.Ref(t, (), t.pos), groups)
        if isinstance(t, ast.Ref):
            found = False
            for x in t.path:
                found = self._vary_walk(x, groups) or found
            if isinstance(t.head, ast.Var):
                return self._vary_ref(t, groups) or found
            return self._vary_walk(t.head, groups) or found
        if isinstance(t, ast.Call):
            found = False
            group = self._function(t.op)
            if group is not None:
                groups.add(group.index)
            elif _call_name(t).startswith("data.") or _call_name(t).split(".")[0] in self.aliases:
                found = self._vary_ref(t.op, groups)
            for a in t.args:
                found = self._vary_walk(a, groups) or found
            return found
        if isinstance(t, ast.Expr):
            if t.with_:
                return True
            return self._vary_walk(t.terms, groups)
        parts: list[Any]
        if isinstance(t, ast.Rule):
            h = t.head
            parts = [*(h.args or ()), h.key, h.value, *h.ref.path, *t.body, t.else_]
        elif isinstance(t, ast.Array | ast.Set):
            parts = list(t.items)
        elif isinstance(t, ast.Object):
            parts = [x for kv in t.items for x in kv]
        elif isinstance(t, ast.ArrayCompr | ast.SetCompr):
            parts = [t.term, *t.body]
        elif isinstance(t, ast.ObjectCompr):
            parts = [t.key, t.value, *t.body]
        elif isinstance(t, ast.SomeDecl):
            parts = list(t.symbols)
        elif isinstance(t, ast.Every):
            parts = [t.key, t.value, t.domain, *t.body]
        else:
            return False
        found = False
        for x in parts:
            if x is not None:
                found = self._vary_walk(x, groups) or found
        return found

    def _vary_ref(self, ref: ast.Ref, groups: set[int]) -> bool:
        """A reference with a name at its head: into the input (varying when it may reach the varying path),
        into data (the groups it may read), or a local variable."""
        assert isinstance(ref.head, ast.Var) and self.varying is not None
        name = ref.head.name
        if name not in ("input", "data") and name not in self.aliases and name not in self.rule_names:
            return False  # a local variable
        ref = self._resolve(ref)
        if not isinstance(ref.head, ast.Var):
            return True
        path = ref.path
        if ref.head.name == "input":
            for i, want in enumerate(self.varying):
                if i >= len(path):
                    return True  # the input or a part of it holding the varying path
                key_s = _scalar_str(path[i])
                if key_s is None:
                    return not isinstance(path[i], ast.Scalar)  # a computed key may be the varying one
                if key_s != want:
                    return False
            return True
        if ref.head.name != "data":
            return True
        node = self.root
        for step in path:
            if node.group is not None:
                break
            s = _scalar_str(step)
            if s is None:
                if isinstance(step, ast.Scalar):
                    return False
                self._all_groups(node, groups)  # a computed key into a package: any rule below
                return False
            nxt = node.children.get(s)
            if nxt is None:
                return False  # base data, the same for every evaluation sharing
            node = nxt
        self._all_groups(node, groups)
        return False

    def _all_groups(self, node: Node, groups: set[int]) -> None:
        if node.group is not None:
            groups.add(node.group.index)
        for c in node.children.values():
            self._all_groups(c, groups)

    # -- rules

    def compile_group(self, g: Group) -> None:
        infos = g.node.rules
        self.enter(infos[0].module)
        if g.kind == FUNCTION:
            self._compile_function(g)
            return
        bodies: list[Callable[..., Any]] = []
        fixed: list[Callable[..., Any]] = []  # a varying partial rule's bodies that do not vary: shared
        default: Callable[[Ctx], Any] | None = None
        has_default = False
        for info in infos:
            if info.module is not self.module:
                self.enter(info.module)
            r = info.rule
            if r.default:
                if has_default:
                    raise self.unsupported("more than one default for a rule", r.pos)
                has_default = True
                default = self._default(r.head.value)
                continue
            body = self._compile_rule(g, info)
            if g.varies and g.kind != COMPLETE and self.varying is not None and not self.varies(r):
                fixed.append(body)
            else:
                bodies.append(body)
        index = g.index
        kind = g.kind
        path = g.path
        shared = not g.varies  # the value lives in the shared memo
        fixed_slot = self.new_slot() if fixed else -1

        if kind == COMPLETE:

            def value(ctx: Ctx) -> Any:
                memo = ctx.smemo if shared else ctx.memo
                v = memo[index]
                if v is not _UNSET:
                    return v
                if ctx.overrides:
                    ov = _overridden(ctx, path)
                    if ov is not _UNSET:
                        memo[index] = ov
                        return ov
                out = UNDEFINED
                for b in bodies:
                    x = b(ctx)
                    if x is UNDEFINED:
                        continue
                    if out is UNDEFINED:
                        out = x
                    elif not equal(out, x):
                        raise EvalError("eval_conflict_error", "complete rules must not produce multiple outputs")
                if out is UNDEFINED and default is not None:
                    out = default(ctx)
                memo[index] = out
                return out

        elif kind == SET:

            def value(ctx: Ctx) -> Any:
                memo = ctx.smemo if shared else ctx.memo
                v = memo[index]
                if v is not _UNSET:
                    return v
                if ctx.overrides:
                    ov = _overridden(ctx, path)
                    if ov is not _UNSET:
                        memo[index] = ov
                        return ov
                if fixed:
                    part = ctx.smemo[fixed_slot]
                    if part is _UNSET:
                        part = Set()
                        for b in fixed:
                            b(ctx, part)
                        ctx.smemo[fixed_slot] = part
                    acc = Set.of_keys(dict(part.m)) if bodies else part
                else:
                    acc = Set()
                for b in bodies:
                    b(ctx, acc)
                memo[index] = acc
                return acc

        else:

            def value(ctx: Ctx) -> Any:
                memo = ctx.smemo if shared else ctx.memo
                v = memo[index]
                if v is not _UNSET:
                    return v
                if ctx.overrides:
                    ov = _overridden(ctx, path)
                    if ov is not _UNSET:
                        memo[index] = ov
                        return ov
                acc: dict[Any, Any]
                if fixed:
                    part = ctx.smemo[fixed_slot]
                    if part is _UNSET:
                        part = {}
                        for b in fixed:
                            b(ctx, part)
                        ctx.smemo[fixed_slot] = part
                    acc = dict(part) if bodies else part
                else:
                    acc = {}
                for b in bodies:
                    b(ctx, acc)
                memo[index] = acc
                return acc

        g.value = value

    def _default(self, t: ast.Term | None) -> Callable[[Ctx], Any]:
        """A default value (a closed term: a constant, or a comprehension over data)."""
        if t is None:
            return lambda ctx: True
        if _is_constant(t):
            v = self._constant(t)
            return lambda ctx: v
        scope = Scope(Layout(), None, set())
        try:
            ev = self.term(t, scope)
        except _NotReady as exc:
            raise self.unsupported(f"a default value with variable {exc.var}", getattr(t, "pos", ast.NOPOS)) from None
        n = scope.layout.n
        return lambda ctx: ev(ctx, [None] * n)

    def _constant(self, t: ast.Term) -> Any:
        scope = Scope(Layout(), None, set())
        try:
            ev = self.term(t, scope)
        except _NotReady as exc:
            raise self.unsupported(f"a default value with variable {exc.var}", getattr(t, "pos", ast.NOPOS)) from None
        try:
            return ev(Ctx(None, {}, 0), [])
        except EvalError as exc:
            raise self.unsupported(f"a constant that does not evaluate: {exc}", getattr(t, "pos", ast.NOPOS)) from None

    def _compile_rule(self, g: Group, info: RuleInfo) -> Callable[..., Any]:
        """One rule (with its else chain) as a function of the context (and the accumulator for partial
        rules)."""
        r = rename_wildcards(info.rule)
        kind = g.kind
        if kind == SET:
            key = rename_wildcards(info.key)
            return self._partial(r, key, None)
        if kind == OBJECT:
            key = rename_wildcards(info.key)
            return self._partial(r, key, r.head.value if r.head.value is not None else ast.Scalar(True))
        chain = []
        cur: ast.Rule | None = r
        while cur is not None:
            chain.append(self._complete(cur))
            cur = cur.else_
        if len(chain) == 1:
            return chain[0]

        def with_else(ctx: Ctx) -> Any:
            for c in chain:
                v = c(ctx)
                if v is not UNDEFINED:
                    return v
            return UNDEFINED

        return with_else

    def _body_scope(self, body: ast.Body, extra: Iterable[ast.Term] = (), declared: Iterable[str] = ()) -> Scope:
        names = body_vars(body)
        for t in extra:
            term_vars(t, names)
        scope = Scope(Layout(), None, self._locals(names), declared)
        scope.assigned = _assigned(body)
        return scope

    def _locals(self, names: set[str]) -> set[str]:
        return {n for n in names if not self._is_global(n)}

    def _is_global(self, name: str) -> bool:
        return name in ("input", "data") or name in self.aliases or name in self.rule_names

    def _complete(self, r: ast.Rule) -> Callable[[Ctx], Any]:
        value_t = r.head.value
        scope = self._body_scope(r.body, [value_t] if value_t is not None else [], _declared(r.body))
        # the values found go to a list in the evaluation's own frame (never in a list shared by the compiled
        # rule: concurrent evaluations would take each other's values)
        bslot = scope.layout.new()
        if value_t is None:
            const: Any = True
            is_const = True
        else:
            is_const = _is_constant(value_t)
            const = self._constant(value_t) if is_const else None

        if is_const:

            def final(ctx: Ctx, f: Frame) -> bool:
                f[bslot].append(const)
                return True

            run = self.body(r.body, scope, final)
        else:
            holder: list[Ev] = []

            def final(ctx: Ctx, f: Frame) -> bool:
                v = holder[0](ctx, f)
                if v is not UNDEFINED:
                    f[bslot].append(v)
                return False

            def after(scope: Scope) -> list[Callable[[Run], Run]]:
                pre = self.prepare(value_t, scope)
                holder.append(self.term(value_t, scope))
                return pre

            run = self.body(r.body, scope, final, after)
        nslots = scope.layout.n

        def evaluate(ctx: Ctx) -> Any:
            f: Frame = [None] * nslots
            found: list[Any] = []
            f[bslot] = found
            run(ctx, f)
            if not found:
                return UNDEFINED
            v = found[0]
            for x in found[1:]:
                if not equal(v, x):
                    raise EvalError("eval_conflict_error", "complete rules must not produce multiple outputs")
            return v

        return evaluate

    def _partial(self, r: ast.Rule, key_t: ast.Term, value_t: ast.Term | None) -> Callable[[Ctx, Any], None]:
        if r.else_ is not None:
            raise self.unsupported("else on a partial rule", r.pos)
        extra = [key_t] + ([value_t] if value_t is not None else [])
        scope = self._body_scope(r.body, extra, _declared(r.body))
        holder: list[Any] = []
        aslot = scope.layout.new()  # the set or object being built, in the evaluation's own frame

        if value_t is None:

            def final(ctx: Ctx, f: Frame) -> bool:
                k = holder[0](ctx, f)
                if k is not UNDEFINED:
                    f[aslot].add(k)
                return False

            def after(scope: Scope) -> list[Callable[[Run], Run]]:
                pre = self.prepare(key_t, scope)
                holder.append(self.term(key_t, scope))
                return pre

        else:

            def final(ctx: Ctx, f: Frame) -> bool:
                k = holder[0](ctx, f)
                if k is UNDEFINED:
                    return False
                v = holder[1](ctx, f)
                if v is UNDEFINED:
                    return False
                acc = f[aslot]
                k = check_key(k)
                old = acc.get(k, _UNSET)
                if old is not _UNSET and not equal(old, v):
                    raise EvalError("eval_conflict_error", "object keys must be unique")
                acc[k] = v
                return False

            def after(scope: Scope) -> list[Callable[[Run], Run]]:
                pre = self.prepare(key_t, scope) + self.prepare(value_t, scope)
                holder.append(self.term(key_t, scope))
                holder.append(self.term(value_t, scope))
                return pre

        acc_slot = aslot  # a head written out as code adds to the same accumulator
        enumerates: list[bool] = []

        def counted(scope: Scope) -> list[Callable[[Run], Run]]:
            pre = after(scope)
            enumerates.append(bool(pre))
            return pre

        def head_ops(scope: Scope) -> list[codegen.Op] | None:
            if enumerates and enumerates[0]:
                return None  # the head enumerates: keep the closure
            key_w = self._emit_term(key_t, scope)
            if value_t is None:

                def add(gen: codegen.Gen) -> None:
                    k = key_w(gen)
                    gen.line(f"f[{acc_slot}].add({k})")

                return [add]
            value_w = self._emit_term(value_t, scope)

            def put(gen: codegen.Gen) -> None:
                k = key_w(gen)
                v = value_w(gen)
                gen.line(f"_put(f[{acc_slot}], {k}, {v})")

            return [put]

        written: list[bool] = []
        run = self.body(r.body, scope, final, counted, share=True, head=head_ops, head_written=written, acc_slot=acc_slot)
        nslots = scope.layout.n

        def evaluate(ctx: Ctx, acc: Any) -> None:
            f: Frame = [None] * nslots
            f[aslot] = acc
            run(ctx, f)

        return evaluate

    def _compile_function(self, g: Group) -> None:
        generic: list[Callable[[Ctx, list[Any]], Any]] = []
        index: dict[Any, list[Callable[[Ctx, list[Any]], Any]]] = {}
        arity = -1
        default: Any = UNDEFINED
        for info in g.node.rules:
            if info.module is not self.module:
                self.enter(info.module)
            r = info.rule
            args = r.head.args or ()
            if r.default:
                default = self._constant(r.head.value) if r.head.value is not None else True
            if arity >= 0 and len(args) != arity:
                raise self.unsupported(f"function {'.'.join(g.path)} defined with different numbers of arguments", r.pos)
            arity = len(args)
            if r.default:
                continue
            body = self._function_body(rename_wildcards(r))
            first = args[0] if args else None
            if isinstance(first, ast.Scalar) and not isinstance(first.value, bool):
                index.setdefault(key(first.value), []).append(body)  # `f("E") := ...`: found by its argument
            else:
                generic.append(body)
        g.arity = arity
        bodies = generic + [b for bs in index.values() for b in bs]
        gi = g.index

        def run_bodies(ctx: Ctx, args: list[Any], bodies: list[Callable[[Ctx, list[Any]], Any]]) -> Any:
            out = UNDEFINED
            for b in bodies:
                v = b(ctx, args)
                if v is UNDEFINED:
                    continue
                if out is UNDEFINED:
                    out = v
                elif not equal(out, v):
                    raise EvalError("eval_conflict_error", "functions must not produce multiple outputs for same inputs")
            return default if out is UNDEFINED else out

        pure = g.pure
        varies = g.varies  # else its calls are memoised in the shared memo (`Shared`)
        shared: dict[Any, Any] = {}  # a pure function's values, for the compiled set's life

        def call(ctx: Ctx, args: list[Any]) -> Any:
            # memoised when every argument is a string or a number (cheap to key): per evaluation, as OPA
            # caches calls with the same arguments, or for good when the function is pure
            if len(args) == 1:
                a0 = args[0]
                t0 = type(a0)
                if t0 is dict or t0 is list:  # a part of the input, by identity within this evaluation
                    k1 = (gi, id(a0))
                    fmemo = ctx.fmemo if varies else ctx.sfmemo
                    hit1 = fmemo.get(k1, _UNSET)
                    if hit1 is not _UNSET and hit1[0] is a0:
                        return hit1[1]
                    v1 = run_bodies(ctx, args, generic if index else bodies)
                    fmemo[k1] = (a0, v1)
                    return v1
            memo_key: Any = None
            scalar = True
            for a in args:
                t = type(a)
                if t is not str and t is not int and t is not float:
                    scalar = False
                    break
            if scalar:
                memo_key = (gi, *args)
                if pure and not ctx.strict:  # this function's own cache: keyed by the argument(s) alone
                    hit = shared.get(args[0] if len(args) == 1 else tuple(args), _UNSET)
                else:
                    hit = (ctx.fmemo if varies else ctx.sfmemo).get(memo_key, _UNSET)
                if hit is not _UNSET:
                    return hit
            else:
                # composite arguments (a container of the input) by identity, within this evaluation; the
                # entry keeps the arguments alive so that no identity is reused while it stands
                id_key = (gi, *[a if type(a) in (str, int, float) else id(a) for a in args])
                hit = (ctx.fmemo if varies else ctx.sfmemo).get(id_key, _UNSET)
                if hit is not _UNSET and all(x is y for x, y in zip(hit[0], args, strict=True)):
                    return hit[1]
            if index and args:
                a0 = args[0]
                t0 = type(a0)
                if t0 is str or t0 is int or t0 is float or a0 is None:
                    chosen = index.get(a0, ())
                    v = run_bodies(ctx, args, generic + list(chosen) if chosen else generic)
                else:
                    v = run_bodies(ctx, args, bodies)
            else:
                v = run_bodies(ctx, args, bodies)
            if not scalar:
                (ctx.fmemo if varies else ctx.sfmemo)[id_key] = (args, v)
            elif memo_key is not None:
                if pure and not ctx.strict:
                    if len(shared) >= 4096:  # bounded: values from requests are unbounded
                        shared.clear()
                    shared[args[0] if len(args) == 1 else tuple(args)] = v
                else:
                    (ctx.fmemo if varies else ctx.sfmemo)[memo_key] = v
            return v

        g.call = call

        def call1(ctx: Ctx, a0: Any) -> Any:
            # `call` of one argument, its memo hits answered before a list of arguments is built (a lib's
            # helpers are called per container and field: most calls of a review are hits)
            t0 = type(a0)
            if t0 is str or t0 is int or t0 is float:
                if pure and not ctx.strict:
                    hit = shared.get(a0, _UNSET)
                    if hit is not _UNSET:
                        return hit
            elif t0 is dict or t0 is list:
                hit1 = (ctx.fmemo if varies else ctx.sfmemo).get((gi, id(a0)), _UNSET)
                if hit1 is not _UNSET and hit1[0] is a0:
                    return hit1[1]
            return call(ctx, [a0])

        g.call1 = call1

    def _function_body(self, r: ast.Rule) -> Callable[[Ctx, list[Any]], Any]:
        chain = []
        cur: ast.Rule | None = r
        params = r.head.args or ()
        while cur is not None:
            chain.append(self._function_clause(cur, params))
            cur = cur.else_
        if len(chain) == 1:
            return chain[0]

        def with_else(ctx: Ctx, args: list[Any]) -> Any:
            for c in chain:
                v = c(ctx, args)
                if v is not UNDEFINED:
                    return v
            return UNDEFINED

        return with_else

    def _function_clause(self, r: ast.Rule, params: tuple[ast.Term, ...]) -> Callable[[Ctx, list[Any]], Any]:
        value_t = r.head.value
        extra = list(params) + ([value_t] if value_t is not None else [])
        param_names: set[str] = set()
        for p in params:
            term_vars(p, param_names)
        scope = self._body_scope(r.body, extra, _declared(r.body) | param_names)
        # parameters are bound by unification with the arguments: a parameter that is a variable binds it
        arg_slots: list[tuple[int, int]] = []  # (argument index, slot) for plain variables
        patterns: list[tuple[int, ast.Term]] = []
        for i, p in enumerate(params):
            if isinstance(p, ast.Var):
                if scope.is_bound(p.name):  # the same name twice: compare
                    patterns.append((i, p))
                else:
                    arg_slots.append((i, scope.slot(p.name)))
                    scope.bind(p.name)
            else:
                patterns.append((i, p))
        bslot = scope.layout.new()  # the values found, in the evaluation's own frame (see _complete)
        holder: list[Ev] = []

        first_only = value_t is None or _is_constant(value_t)  # one value: the first solution decides

        def final(ctx: Ctx, f: Frame) -> bool:
            v = holder[0](ctx, f) if holder else True
            if v is not UNDEFINED:
                f[bslot].append(v)
                return first_only
            return False

        def after(scope: Scope) -> list[Callable[[Run], Run]]:
            if value_t is None:
                return []
            pre = self.prepare(value_t, scope)
            holder.append(self.term(value_t, scope))
            return pre

        box_slot = bslot  # a head written out as code appends to the same list of values found
        enumerates: list[bool] = []

        def counted(scope: Scope) -> list[Callable[[Run], Run]]:
            pre = after(scope)
            enumerates.append(bool(pre))
            return pre

        def head_ops(scope: Scope) -> list[codegen.Op] | None:
            if enumerates and enumerates[0]:
                return None
            value_w = self._emit_term(value_t, scope) if value_t is not None else None

            def found(gen: codegen.Gen) -> None:
                v = value_w(gen) if value_w is not None else "True"
                gen.line(f"f[{box_slot}].append({v})")
                if first_only:
                    gen.line("return True")

            return [found]

        written: list[bool] = []
        body_run = self.body(r.body, scope, final, counted, head=head_ops, head_written=written) if not patterns else None
        if patterns:
            # unify the pattern parameters first, then the body
            steps: list[ast.Expr] = []
            for i, p in patterns:
                steps.append(ast.Expr(ast.Call(ast.Ref(ast.Var("eq")), (p, ast.Var(f"$arg{i}"))), pos=r.pos))
                scope.slots[f"$arg{i}"] = scope.layout.new()
                scope.bound.add(f"$arg{i}")
                scope.body_vars.add(f"$arg{i}")
            body_run = self.body(tuple(steps) + tuple(r.body), scope, final, counted, head=head_ops, head_written=written)
            for i, _p in patterns:
                arg_slots.append((i, scope.slots[f"$arg{i}"]))
        nslots = scope.layout.n
        assert body_run is not None
        run = body_run


        def evaluate(ctx: Ctx, args: list[Any]) -> Any:
            f: Frame = [None] * nslots
            for i, s in arg_slots:
                f[s] = args[i]
            found: list[Any] = []
            f[bslot] = found
            run(ctx, f)
            if not found:
                return UNDEFINED
            v = found[0]
            for x in found[1:]:
                if not equal(v, x):
                    raise EvalError("eval_conflict_error", "functions must not produce multiple outputs for same inputs")
            return v

        return evaluate

    # -- bodies

    def body(
        self,
        exprs: ast.Body,
        scope: Scope,
        final: Run,
        after: Callable[[Scope], Any] | None = None,
        share: bool = False,
        head: Callable[[Scope], list[codegen.Op] | None] | None = None,
        head_written: list[bool] | None = None,
        acc_slot: int = -1,
    ) -> Run:
        """A body as one run function ending in `final`, expressions ordered so each runs once its inputs
        are bound. `after(scope)` is called with all the body's bindings in place (to compile the head).

        `share` (a partial rule's body, all of whose solutions are wanted): see `_split`. `head(scope)` gives
        ops writing out the head (into the accumulator at frame slot `acc_slot`) instead of `final`; whether
        they were used is appended to `head_written`."""
        pending = list(exprs)
        compiled: list[Callable[[Run], Run]] = []
        emitted: list[list[codegen.Op] | None] = []  # each expression written out as code, or None
        order: list[ast.Expr] = []
        binds: list[set[str]] = []  # the names each expression binds
        while pending:
            waiting: _NotReady | None = None
            for i, e in enumerate(pending):
                snap = scope.snapshot()
                before = {n for _s, bound, _r in snap for n in bound}
                mark = len(self._enum_log)
                try:
                    build = self.expr(e, scope)
                except _NotReady as exc:
                    Scope.restore(snap)
                    del self._enum_log[mark:]
                    waiting = waiting or exc
                    continue
                enums = [x for x in self._enum_log[mark:] if x[0] is scope]
                del self._enum_log[mark:]
                compiled.append(build)
                emitted.append(self._emit(e, scope, before, enums, build) if self.codegen else None)
                order.append(e)
                binds.append(_bound_names(scope) - before)
                del pending[i]
                waiting = None
                break
            if waiting is not None:
                raise self.unsupported(f"var {waiting.var.lstrip('$')} is unsafe", pending[0].pos)
        run = final
        if after is not None:
            try:
                run = _chain(after(scope) or [], final)
            except _NotReady as exc:
                raise self.unsupported(f"var {exc.var.lstrip('$')} is unsafe (in the rule head)", ast.NOPOS) from None

        where = f"{self.module.file if self.module else 'query'}:{exprs[0].pos.line if exprs else 0}"
        tail: list[codegen.Op] = []
        if head is not None and self.codegen:
            hops = head(scope)
            if hops is not None:
                tail, run = hops, _false
        if head_written is not None:
            head_written.append(bool(tail))

        def assemble(indices: list[int], k: Run, end: list[codegen.Op] | None = None) -> Run:
            """The expressions at `indices` (in that order), then the ops `end`, then k: runs of written-out
            expressions as one generated function each, the others as their closures."""
            segment: list[codegen.Op] = list(end or [])
            for i in reversed(indices):
                ops = emitted[i]
                if ops is None:
                    if segment:
                        k = codegen.function(segment, None if k is _false else k, _ENV, where)
                        segment = []
                    k = compiled[i](k)
                else:
                    segment = ops + segment
            if segment:
                k = codegen.function(segment, None if k is _false else k, _ENV, where)
            return k

        everything = list(range(len(compiled)))
        if share and self.varying is not None:
            shared = self._split(order, binds)
            if shared:
                first = [i for i in everything if i in shared]
                rest = [i for i in everything if i not in shared]
                reordered = any(i not in shared for i in range(max(shared)))
                return _shared_solutions(
                    lambda k: assemble(first, k), assemble(rest, run, tail), assemble(everything, run, tail), reordered,
                    self.new_slot(), acc_slot,
                )
        return assemble(everything, run, tail)

    # -- bodies written out as Python (codegen.py)

    def _emit(self, e: ast.Expr, scope: Scope, before: set[str], enums: list[Any], build: Callable[[Run], Run]) -> list[codegen.Op] | None:
        """Ops writing out expression e, just compiled to `build` (the scope holds its bindings now; `before`
        the names bound before it, `enums` the enumerations its references set up), or None to keep the
        closure. Each op does what the closure does, in the same order: the enumerations, then the test,
        binding or iteration."""
        if e.with_:
            return None
        t = e.terms
        if e.negated and not enums:
            op = self._emit_not(e, scope)
            if op is not None:
                return [op]
        if e.negated or isinstance(t, ast.Every):
            if enums:
                return None
            # binds nothing outside and continues at most once: the closure as one test
            holds = build(_true)
            return [lambda gen: gen.line(f"if not {gen.const(holds, 'n')}(ctx, f): {gen.fail()}")]
        ops: list[codegen.Op] = []
        for _scope, prefix, coll, slot, vslot in enums:
            if prefix is None:
                return None
            ops.append(self._emit_enum(prefix, coll, slot, vslot, scope))
        if isinstance(t, ast.SomeDecl):
            op = self._emit_some(t, scope, before)
            if op is None or enums:
                return None
            return [op] if op is not _NOOP else []
        if isinstance(t, ast.Call):
            name = _call_name(t)
            if name in ("assign", "eq") and len(t.args) == 2:
                op = self._emit_unify(t.args[0], t.args[1], scope, before)
                if op is None:
                    return None
                return ops + [op]
            if name and len(t.args) >= 1 and self._has_output(t, name):
                return None
        value = self._emit_term(t, scope)

        def truth(gen: codegen.Gen) -> None:
            v = value(gen)
            gen.line(f"if {v} is False: {gen.fail()}")

        return ops + [truth]

    def _emit_not(self, e: ast.Expr, scope: Scope) -> codegen.Op | None:
        """`not <test>` whose test binds and enumerates nothing (`_not` with `_plain_term`): the guards, then
        the test in a one-pass loop that its failures leave."""
        inner_e = replace(e, negated=False)
        t = inner_e.terms
        if isinstance(t, ast.SomeDecl | ast.Every) or not self._ground(t, scope) or _has_comprehension(t):
            return None
        if isinstance(t, ast.Call) and (_call_name(t) in ("assign", "eq") or self._has_output(t, _call_name(t))):
            return None
        guards = []
        if isinstance(t, ast.Call) and _call_name(t) not in _OPERATORS:
            for a in t.args:
                if isinstance(a, ast.Ref) and a.path and self._ground(a, scope):
                    guards.append(self._emit_term(a, scope))
        value = self._emit_term(t, scope)

        def op(gen: codegen.Gen) -> None:
            for g in guards:
                g(gen)
            held = gen.name("held")
            gen.line(f"{held} = False")
            state = gen.block()
            gen.open_loop("for _ in _ONCE:")
            v = value(gen)
            gen.line(f"{held} = {v} is not False")
            gen.end(state)
            gen.line(f"if {held}: {gen.fail()}")

        return op

    def _emit_enum(self, prefix: ast.Ref, coll: Ev, slot: int, vslot: int, scope: Scope) -> codegen.Op:
        value = self._emit_ref_simple(prefix, scope)
        if value is None:
            value = _emit_closure(coll)

        def op(gen: codegen.Gen) -> None:
            c = value(gen)
            it, k, x = gen.name("it"), gen.name("k"), gen.name("x")
            gen.line(f"if type({c}) is list: {it} = enumerate({c})")
            gen.line(f"elif type({c}) is dict: {it} = list({c}.items())")
            gen.line(f"elif type({c}) is _Set: {it} = [({x}, {x}) for {x} in list({c})]")
            gen.line(f"else: {gen.fail()}")
            gen.line("if _clock() > ctx.deadline: _expired()")
            gen.open_loop(f"for {k}, {x} in {it}:")
            gen.line(f"f[{slot}] = {k}; f[{vslot}] = {x}")
            gen.forget(f"f[{slot}]")
            gen.forget(f"f[{vslot}]")

        return op

    def _emit_some(self, t: ast.SomeDecl, scope: Scope, before: set[str]) -> codegen.Op | None:
        calls = [s for s in t.symbols if not isinstance(s, ast.Var)]
        if not calls:
            return _NOOP  # `some x`: a declaration
        if len(calls) != 1 or not isinstance(calls[0], ast.Call):
            return None
        c = calls[0]
        name = _call_name(c)
        if name == ast.MEMBER_2:
            k, v, dom = None, c.args[0], c.args[1]
        elif name == ast.MEMBER_3:
            k, v, dom = c.args[0], c.args[1], c.args[2]
        else:
            return None
        names = [x for x in (k, v) if x is not None]
        if not all(isinstance(x, ast.Var) and self._is_local(x.name, scope) and x.name not in before for x in names):
            return None
        if len({x.name for x in names}) != len(names):  # type: ignore[union-attr]
            return None
        if term_vars(dom, set()) - before & {n for n in term_vars(dom, set()) if self._is_local(n, scope)}:
            return None  # the domain enumerates: keep the closure
        coll = self._emit_term(dom, scope)
        kslot = scope.slot(k.name) if isinstance(k, ast.Var) else -1
        vslot = scope.slot(v.name)  # type: ignore[union-attr]

        def op(gen: codegen.Gen) -> None:
            col = coll(gen, check=False)
            kk, vv = gen.name("k"), gen.name("x")
            gen.line("if _clock() > ctx.deadline: _expired()")
            gen.open_loop(f"for {kk}, {vv} in _items({col}):")
            if kslot >= 0:
                gen.line(f"f[{kslot}] = {kk}")
                gen.forget(f"f[{kslot}]")
            gen.line(f"f[{vslot}] = {vv}")
            gen.forget(f"f[{vslot}]")

        return op

    def _emit_unify(self, a: ast.Term, b: ast.Term, scope: Scope, before: set[str]) -> codegen.Op | None:
        for rel in (a, b):
            if isinstance(rel, ast.Call) and _call_name(rel) in RELATIONS:
                return None

        def unbound_var(x: ast.Term) -> bool:
            return isinstance(x, ast.Var) and self._is_local(x.name, scope) and x.name not in before

        if unbound_var(a) and not unbound_var(b):
            var, val_t = a, b
        elif unbound_var(b) and not unbound_var(a):
            var, val_t = b, a
        elif self._before_ground(a, scope, before) and self._before_ground(b, scope, before):
            first, second = self._emit_term(b, scope), self._emit_term(a, scope)

            def same(gen: codegen.Gen) -> None:
                x = first(gen)
                y = second(gen)
                gen.line(f"if not _equal({x}, {y}): {gen.fail()}")

            return same
        else:
            return None
        assert isinstance(var, ast.Var)
        if var.name in term_vars(val_t, set()) or not self._ground(val_t, scope):
            return None
        value = self._emit_term(val_t, scope)
        slot = scope.slot(var.name)

        def bind(gen: codegen.Gen) -> None:
            v = value(gen)
            gen.line(f"f[{slot}] = {v}")
            gen.forget(f"f[{slot}]")

        return bind

    def _before_ground(self, t: ast.Term, scope: Scope, before: set[str]) -> bool:
        """t's variables were all bound before the expression (no enumeration, no binding)."""
        if _has_comprehension(t):
            return False
        return all(n in before or not self._is_local(n, scope) for n in term_vars(t, set()))

    def _emit_term(self, t: Any, scope: Scope) -> Callable[..., str]:
        """A writer of t's value: `w(gen)` writes the lines computing it (failing the solution when it is
        undefined, unless check=False) and returns a Python expression for it."""
        if isinstance(t, ast.Scalar):
            v = t.value
            return lambda gen, check=True: gen.const(v)
        if isinstance(t, ast.Var) and self._is_local(t.name, scope):
            slot = scope.slot(t.name)
            return lambda gen, check=True: f"f[{slot}]"
        if isinstance(t, ast.Ref):
            w = self._emit_ref_simple(t, scope)
            if w is not None:
                return w
        if isinstance(t, ast.Call):
            w = self._emit_call(t, scope)
            if w is not None:
                return w
        if isinstance(t, ast.Object) and not _is_constant(t):
            keys = [_scalar_str(k) for k, _v in t.items]
            if all(k is not None for k in keys) and len(set(keys)) == len(keys):
                # constant string keys, each once: no key to check, no conflict possible
                vals = [self._emit_term(v, scope) for _k, v in t.items]
                return lambda gen, check=True: "{" + "".join(f"{k!r}: {w(gen)}, " for k, w in zip(keys, vals, strict=True)) + "}"
        if isinstance(t, ast.Array) and not _is_constant(t):
            elems = [self._emit_term(x, scope) for x in t.items]
            return lambda gen, check=True: "[" + "".join(f"{el(gen)}, " for el in elems) + "]"
        return _emit_closure(self.term(t, scope))

    def _emit_ref_simple(self, ref: ast.Ref, scope: Scope) -> Callable[..., str] | None:
        """A reference from a local variable, an enumerated element or the input, through constant string
        steps or bound variables, read step by step; None for anything else."""
        path = list(ref.path)
        base: str | None = None
        if not self._in_with:
            for n in range(len(path), 0, -1):
                slot = scope.cached(ast.Ref(ref.head, tuple(path[:n])))
                if slot is not None:
                    base, path = f"f[{slot}]", path[n:]
                    break
        if base is None:
            head = ref.head
            if not isinstance(head, ast.Var):
                return None
            if self._is_local(head.name, scope):
                if not scope.is_bound(head.name):
                    return None
                base = f"f[{scope.slot(head.name)}]"
            else:
                resolved = self._resolve(ref)
                if not isinstance(resolved.head, ast.Var) or resolved.head.name != "input":
                    return None
                base, path = "ctx.input", list(resolved.path)
        keys: list[tuple[str, Any]] = []  # ("s", string) or ("v", slot) or ("c", scalar)
        for step in path:
            st = _scalar_str(step)
            if st is not None:
                keys.append(("s", st))
            elif isinstance(step, ast.Var) and self._is_local(step.name, scope) and scope.is_bound(step.name):
                keys.append(("v", scope.slot(step.name)))
            elif isinstance(step, ast.Scalar):
                keys.append(("c", step.value))
            else:
                return None
        start = base

        skeys = tuple(keys)

        def read(gen: codegen.Gen, check: bool = True) -> str:
            if start != "ctx.input" and not keys:
                return start  # a bound variable: never undefined
            # the longest prefix read before on this path
            n = len(skeys)
            while n > 0 and (start, skeys[:n]) not in gen.reads:
                n -= 1
            if n:
                cur, known = gen.reads[(start, skeys[:n])]
            else:
                cur, known = start, start != "ctx.input"
            for i in range(n, len(skeys)):
                kind, k = skeys[i]
                v = gen.name()
                if kind == "s":
                    gen.line(f"{v} = {cur}.get({k!r}, U) if type({cur}) is dict else _lookup({cur}, {k!r})")
                else:
                    key = f"f[{k}]" if kind == "v" else gen.const(k)
                    gen.line(f"{v} = _lookup({cur}, {key})")
                cur, known = v, False
                gen.reads[(start, skeys[: i + 1])] = (cur, False)
            if check and not known:
                if cur == "ctx.input":
                    v = gen.name()
                    gen.line(f"{v} = ctx.input")
                    cur = v
                gen.line(f"if {cur} is U: {gen.fail()}")
                gen.reads[(start, skeys)] = (cur, True)
            return cur

        return read

    def _emit_call(self, t: ast.Call, scope: Scope) -> Callable[..., str] | None:
        name = _call_name(t)
        group = self._function(t.op)
        args = [self._emit_term(a, scope) for a in t.args]
        if group is not None:
            g = group

            def user(gen: codegen.Gen, check: bool = True) -> str:
                vals = [a(gen) for a in args]
                v = gen.name()
                if len(vals) == 1:
                    gen.line(f"{v} = {gen.const(g, 'g')}.call1(ctx, {vals[0]})")
                else:
                    gen.line(f"{v} = {gen.const(g, 'g')}.call(ctx, [{', '.join(vals)}])")
                if check:
                    gen.line(f"if {v} is U: {gen.fail()}")
                return v

            return user
        if name in ("assign", "eq", "print") or name.startswith("data.") or not name:
            return None
        if isinstance(t.op.head, ast.Var) and t.op.head.name in self.aliases:
            return None
        bi = BUILTINS.get(name)
        if bi is None or bi.ctx or len(args) != bi.arity:
            return None
        fn = bi.fn

        def builtin(gen: codegen.Gen, check: bool = True) -> str:
            vals = [a(gen) for a in args]
            v = gen.name()
            gen.line("try:")
            gen.line(f"    {v} = {gen.const(fn, 'b')}({', '.join(vals)})")
            gen.line("except _BuiltinError:")
            gen.line("    if ctx.strict: raise")
            gen.line(f"    {gen.fail()}")
            if check:
                gen.line(f"if {v} is U: {gen.fail()}")
            return v

        return builtin

    def _split(self, order: list[ast.Expr], binds: list[set[str]]) -> set[int]:
        """The expressions of a partial rule's body (in evaluation order) whose solutions can be computed once
        per `Shared`: those that read neither the varying input nor a name bound by an expression that does.
        Moving one before a varying expression changes nothing but which error comes first, and
        `_shared_solutions` then evaluates the body in its own order. An assignment of a call's value (a
        message, say) whose name no shared expression reads stays where it is: it filters nothing, and
        computing it ahead would do it for solutions that the varying expressions drop."""
        tainted: set[str] = set()
        shared: list[int] = []
        reads: dict[int, set[str]] = {}
        for i, e in enumerate(order):
            names = {t.name for t in ps.walk_terms(e) if isinstance(t, ast.Var)}
            reads[i] = names
            if self.varies(e) or names & tainted:
                tainted |= binds[i]
            else:
                shared.append(i)
        keep = set(shared)
        for i in reversed(shared):
            t = order[i].terms
            if isinstance(t, ast.Call) and _call_name(t) == "assign" and isinstance(t.args[1], ast.Call) and not order[i].negated:
                if not any(binds[i] & reads[j] for j in keep if j > i):
                    keep.discard(i)
        return keep

    def expr(self, e: ast.Expr, scope: Scope) -> Callable[[Run], Run]:
        """Compile one expression; returns a builder taking the continuation."""
        if e.with_:
            return self._with(e, scope)
        if e.negated:
            return self._not(e, scope)
        t = e.terms
        if isinstance(t, ast.SomeDecl):
            return self._some(t, scope, e.pos)
        if isinstance(t, ast.Every):
            return self._every(t, scope)
        if isinstance(t, ast.Call):
            name = _call_name(t)
            if name in ("assign", "eq") and len(t.args) == 2:
                return self._unify_expr(t.args[0], t.args[1], scope, name == "assign", e.pos)
            if name and len(t.args) >= 1 and self._has_output(t, name):
                return self._call_output(t, name, scope)
        pre = self.prepare(t, scope)
        fused = self._fused_test(t, scope)
        if fused is not None:
            test = fused

            def build_fused(k: Run) -> Run:
                def run(ctx: Ctx, f: Frame) -> bool:
                    return test(ctx, f) and k(ctx, f)

                return _chain(pre, run)

            return build_fused
        ev = self.term(t, scope)

        def build(k: Run) -> Run:
            def run(ctx: Ctx, f: Frame) -> bool:
                v = ev(ctx, f)
                if v is UNDEFINED or v is False:
                    return False
                return k(ctx, f)

            return _chain(pre, run)

        return build

    def _fused_test(self, t: Any, scope: Scope) -> Callable[[Ctx, Frame], bool] | None:
        """A comparison or a two-argument built-in as one test (no intermediate closure for the call)."""
        if not isinstance(t, ast.Call) or len(t.args) != 2 or self._function(t.op) is not None:
            return None
        name = _call_name(t)
        bi = BUILTINS.get(name)
        if bi is None or bi.ctx or bi.arity != 2:
            return None
        fn = bi.fn
        a1, a2 = (self.term(a, scope) for a in t.args)
        if isinstance(t.args[1], ast.Scalar) and name in ("equal", "neq") and isinstance(t.args[1].value, str):
            c = t.args[1].value
            want = name == "equal"

            def str_cmp(ctx: Ctx, f: Frame) -> bool:
                x = a1(ctx, f)
                if x is UNDEFINED:
                    return False
                return (type(x) is str and x == c) is want

            return str_cmp

        def test(ctx: Ctx, f: Frame) -> bool:
            x = a1(ctx, f)
            if x is UNDEFINED:
                return False
            y = a2(ctx, f)
            if y is UNDEFINED:
                return False
            try:
                v = fn(x, y)
            except BuiltinError:
                if ctx.strict:
                    raise
                return False
            return v is not False and v is not UNDEFINED

        return test

    def _has_output(self, t: ast.Call, name: str) -> bool:
        if name in ("assign", "eq", "internal.member_2", "internal.member_3", "print"):
            return False
        target = self._function(t.op)
        if target is not None:
            return target.arity >= 0 and len(t.args) == target.arity + 1 or (
                target.arity < 0 and len(t.args) == len(target.node.rules[0].rule.head.args or ()) + 1
            )
        if name in RELATIONS:
            return len(t.args) == 2
        b = BUILTINS.get(name)
        if b is None and name not in self.rule_names and not name.startswith("data.") and name.split(".")[0] not in self.aliases:
            raise self.unsupported(f"built-in {name} is not implemented by the compiler", t.pos)
        return b is not None and len(t.args) == b.arity + 1

    def _call_output(self, t: ast.Call, name: str, scope: Scope) -> Callable[[Run], Run]:
        inner = ast.Call(t.op, t.args[:-1], t.pos)
        if name in RELATIONS:
            return self._relation(inner, t.args[-1], scope)
        return self._unify_expr(t.args[-1], inner, scope, False, t.pos)

    def _relation(self, call: ast.Call, out: ast.Term, scope: Scope) -> Callable[[Run], Run]:
        """A built-in with several results (`walk`): each result unified with `out` in turn."""
        fn = RELATIONS[_call_name(call)]
        pre = self.prepare(call, scope)
        if not self._ground(call, scope):
            raise _NotReady(_first_unbound(call, scope, self) or "?")
        evs = [self.term(a, scope) for a in call.args]
        pre += self.prepare(out, scope)
        match = self.pattern(out, scope)

        def build(k: Run) -> Run:
            def run(ctx: Ctx, f: Frame) -> bool:
                args = [ev(ctx, f) for ev in evs]
                if any(a is UNDEFINED for a in args):
                    return False
                for r in fn(*args):
                    if match(ctx, f, r) and k(ctx, f):
                        return True
                return False

            return _chain(pre, run)

        return build

    # -- enumeration of references with unbound keys

    def prepare(self, t: Any, scope: Scope) -> list[Callable[[Run], Run]]:
        """Steps that bind the unbound variables t's references enumerate (left to right, inner first)."""
        steps: list[Callable[[Run], Run]] = []
        self._prepare(t, scope, steps)
        return steps

    def _prepare(self, t: Any, scope: Scope, steps: list[Callable[[Run], Run]]) -> None:
        if isinstance(t, ast.Ref):
            self._prepare(t.head, scope, steps)
            for i, step in enumerate(t.path):
                if isinstance(step, ast.Var) and self._is_local(step.name, scope) and not scope.is_bound(step.name):
                    prefix = ast.Ref(t.head, t.path[:i], t.pos)
                    self._prepare_path(prefix, scope, steps)
                    coll = self.term(prefix, scope)
                    slot = scope.slot(step.name)
                    scope.bind(step.name)
                    vslot = scope.layout.new()  # the element: `xs[i]` later reads it from here
                    if not self._in_with:
                        scope.refs[ast.Ref(t.head, t.path[: i + 1])] = vslot
                    steps.append(_enum_keys(coll, slot, vslot))
                    self._enum_log.append((scope, prefix, coll, slot, vslot))
                elif isinstance(step, ast.Array | ast.Object) and not self._ground(step, scope):
                    # a composite key pattern (`s[[x, y]]`): enumerate the keys and match them
                    prefix = ast.Ref(t.head, t.path[:i], t.pos)
                    self._prepare_path(prefix, scope, steps)
                    coll = self.term(prefix, scope)
                    steps.append(_enum_match(coll, self.pattern(step, scope)))
                    self._enum_log.append((scope, None, coll, -1, -1))  # not written out
                elif not isinstance(step, ast.Scalar):
                    self._prepare(step, scope, steps)
        elif isinstance(t, ast.Array | ast.Set):
            for x in t.items:
                self._prepare(x, scope, steps)
        elif isinstance(t, ast.Object):
            for k, v in t.items:
                self._prepare(k, scope, steps)
                self._prepare(v, scope, steps)
        elif isinstance(t, ast.Call):
            for x in t.args:
                self._prepare(x, scope, steps)

    def _prepare_path(self, ref: ast.Ref, scope: Scope, steps: list[Callable[[Run], Run]]) -> None:
        self._prepare(ref.head, scope, steps)
        for step in ref.path:
            if not isinstance(step, ast.Scalar):
                self._prepare(step, scope, steps)

    def _is_local(self, name: str, scope: Scope) -> bool:
        if scope.owner(name) is not None:
            return True
        return not self._is_global(name)

    # -- unification

    def _unify_expr(self, a: ast.Term, b: ast.Term, scope: Scope, declare: bool, pos: ast.Pos) -> Callable[[Run], Run]:
        for rel, out in ((b, a), (a, b)):
            if isinstance(rel, ast.Call) and _call_name(rel) in RELATIONS:  # `[path, value] := walk(x)`
                return self._relation(rel, out, scope)
        if declare:
            for n in sorted(term_vars(a, set())):
                if scope.owner(n) is scope and scope.is_bound(n):
                    raise self.unsupported(f"var {n} assigned above (a compile error in OPA)", pos)
        a_ground = self._ground(a, scope)
        b_ground = self._ground(b, scope)
        pre: list[Callable[[Run], Run]] = []
        if not a_ground and not b_ground:
            # one side may become ground after enumerating its references
            pre_b = self.prepare(b, scope)
            if self._ground(b, scope):
                pre = pre_b
                b_ground = True
            else:
                pre_a = self.prepare(a, scope)
                pre = pre_b + pre_a
                a_ground = self._ground(a, scope)
                if not a_ground:
                    if isinstance(a, ast.Array) and isinstance(b, ast.Array) and len(a.items) == len(b.items):
                        builders = [self._unify_expr(x, y, scope, declare, pos) for x, y in zip(a.items, b.items, strict=True)]
                        return _compose(pre, builders)
                    if isinstance(a, ast.Object) and isinstance(b, ast.Object) and len(a.items) == len(b.items):
                        pairs = self._object_pairs(a, b, scope)
                        if pairs is not None:
                            builders = [self._unify_expr(x, y, scope, declare, pos) for x, y in pairs]
                            return _compose(pre, builders)
                    raise _NotReady(_first_unbound(a, scope, self) or _first_unbound(b, scope, self) or "?")
        if a_ground and not b_ground:
            a, b = b, a
        # b is ground (or made so by pre); a is a pattern
        if not pre:
            pre = self.prepare(b, scope)
        val = self.term(b, scope)
        pre_a = self.prepare(a, scope)  # references in a with unbound keys enumerate
        pre = pre + pre_a
        if self._ground(a, scope):
            other = self.term(a, scope)

            def build(k: Run) -> Run:
                def run(ctx: Ctx, f: Frame) -> bool:
                    x = val(ctx, f)
                    if x is UNDEFINED:
                        return False
                    y = other(ctx, f)
                    if y is UNDEFINED or not equal(x, y):
                        return False
                    return k(ctx, f)

                return _chain(pre, run)

            return build
        match = self.pattern(a, scope)

        def build2(k: Run) -> Run:
            def run(ctx: Ctx, f: Frame) -> bool:
                x = val(ctx, f)
                if x is UNDEFINED or not match(ctx, f, x):
                    return False
                return k(ctx, f)

            return _chain(pre, run)

        return build2

    def _object_pairs(self, a: ast.Object, b: ast.Object, scope: Scope) -> list[tuple[ast.Term, ast.Term]] | None:
        try:
            ka = [(key(self._constant(k)), v) for k, v in a.items]
            kb = {key(self._constant(k)): v for k, v in b.items}
        except Unsupported:
            return None
        out = []
        for k, v in ka:
            if k not in kb:
                return None
            out.append((v, kb[k]))
        return out

    def _ground(self, t: Any, scope: Scope) -> bool:
        return _first_unbound(t, scope, self) is None

    def pattern(self, t: ast.Term, scope: Scope) -> Callable[[Ctx, Frame, Any], bool]:
        """A matcher binding t's unbound variables to the parts of a value (and checking the rest)."""
        if isinstance(t, ast.Var) and self._is_local(t.name, scope) and not scope.is_bound(t.name):
            slot = scope.slot(t.name)
            scope.bind(t.name)

            def bind(ctx: Ctx, f: Frame, v: Any) -> bool:
                f[slot] = v
                return True

            return bind
        if isinstance(t, ast.Array) and not self._ground(t, scope):
            subs = [self.pattern(x, scope) for x in t.items]
            n = len(subs)

            def arr(ctx: Ctx, f: Frame, v: Any) -> bool:
                if type(v) is not list or len(v) != n:
                    return False
                for m, x in zip(subs, v, strict=True):
                    if not m(ctx, f, x):
                        return False
                return True

            return arr
        if isinstance(t, ast.Object) and not self._ground(t, scope):
            pairs = []
            for k, x in t.items:
                if not self._ground(k, scope):
                    raise self.unsupported("an object pattern with a variable key", t.pos)
                pairs.append((self.term(k, scope), self.pattern(x, scope)))
            n = len(pairs)

            def obj(ctx: Ctx, f: Frame, v: Any) -> bool:
                if type(v) is not dict or len(v) != n:
                    return False
                for kev, m in pairs:
                    kk = kev(ctx, f)
                    x = lookup(v, kk)
                    if x is UNDEFINED or not m(ctx, f, x):
                        return False
                return True

            return obj
        if not self._ground(t, scope):
            var = _first_unbound(t, scope, self)
            raise _NotReady(var or "?")
        ev = self.term(t, scope)

        def same(ctx: Ctx, f: Frame, v: Any) -> bool:
            x = ev(ctx, f)
            return x is not UNDEFINED and equal(x, v)

        return same

    # -- some, every, not, with

    def _some(self, t: ast.SomeDecl, scope: Scope, pos: ast.Pos) -> Callable[[Run], Run]:
        builders: list[Callable[[Run], Run]] = []
        for s in t.symbols:
            if isinstance(s, ast.Var):
                continue  # `some x`: a declaration (made local when the scope was built)
            if not isinstance(s, ast.Call):
                raise self.unsupported("a `some` declaration of a non-variable", pos)
            name = _call_name(s)
            if name == ast.MEMBER_2:
                builders.append(self._some_in(None, s.args[0], s.args[1], scope))
            elif name == ast.MEMBER_3:
                builders.append(self._some_in(s.args[0], s.args[1], s.args[2], scope))
            else:
                raise self.unsupported("a `some` declaration that is not `x in xs`", pos)
        return _compose([], builders)

    def _some_in(self, k: ast.Term | None, v: ast.Term, dom: ast.Term, scope: Scope) -> Callable[[Run], Run]:
        pre = self.prepare(dom, scope)
        if not self._ground(dom, scope):
            raise _NotReady(_first_unbound(dom, scope, self) or "?")
        coll = self.term(dom, scope)
        km = self.pattern(k, scope) if k is not None else None
        vm = self.pattern(v, scope)

        def build(kont: Run) -> Run:
            def run(ctx: Ctx, f: Frame) -> bool:
                if _clock() > ctx.deadline:
                    expired()
                c = coll(ctx, f)
                for kk, vv in items(c):
                    if km is not None and not km(ctx, f, kk):
                        continue
                    if not vm(ctx, f, vv):
                        continue
                    if kont(ctx, f):
                        return True
                return False

            return _chain(pre, run)

        return build

    def _every(self, t: ast.Every, scope: Scope) -> Callable[[Run], Run]:
        pre = self.prepare(t.domain, scope)
        if not self._ground(t.domain, scope):
            raise _NotReady(_first_unbound(t.domain, scope, self) or "?")
        coll = self.term(t.domain, scope)
        declared: set[str] = set()
        if t.key is not None:
            term_vars(t.key, declared)
        term_vars(t.value, declared)
        names = body_vars(t.body) | declared
        child = Scope(scope.layout, scope, self._locals(names) - self._outer_names(scope, declared), declared | _declared(t.body))
        km = self.pattern(t.key, child) if t.key is not None else None
        vm = self.pattern(t.value, child)

        def found(ctx: Ctx, f: Frame) -> bool:
            return True

        inner = self.body(t.body, child, found)

        def build(kont: Run) -> Run:
            def run(ctx: Ctx, f: Frame) -> bool:
                if _clock() > ctx.deadline:
                    expired()
                c = coll(ctx, f)
                tc = type(c)
                if tc is not dict and tc is not list and tc is not Set:
                    return False
                for kk, vv in items(c):
                    if km is not None and not km(ctx, f, kk):
                        return False
                    if not vm(ctx, f, vv):
                        return False
                    if not inner(ctx, f):
                        return False
                return kont(ctx, f)

            return _chain(pre, run)

        return build

    def _outer_names(self, scope: Scope, shadowed: set[str]) -> set[str]:
        """Names an inner body shares with the enclosing bodies (declared there, or mentioned there)."""
        out: set[str] = set()
        s: Scope | None = scope
        while s is not None:
            out |= set(s.slots) | s.body_vars
            s = s.parent
        return out - shadowed

    def _not(self, e: ast.Expr, scope: Scope) -> Callable[[Run], Run]:
        inner_e = replace(e, negated=False)
        names = term_vars(inner_e, set())
        for n in names:
            if self._is_local(n, scope) and not scope.is_bound(n) and not n.startswith("$_"):
                # a variable the negation would bind: wait for the rest of the body to bind it
                if n in scope.body_vars and self._bound_elsewhere(n, scope):
                    raise _NotReady(n)
        snap = scope.snapshot()
        child = Scope(scope.layout, scope, set())

        def found(ctx: Ctx, f: Frame) -> bool:
            return True

        simple = self._plain_term(inner_e, child)
        if simple is not None:
            inner = simple
        else:
            inner = self.expr(inner_e, child)(found)
        Scope.restore(snap)
        # a named call's arguments that are references are evaluated before the negation, as OPA's compiler
        # rewrites them (`not f(params.ranges)` fails when params.ranges is undefined); operators keep
        # theirs inside (`not input.x == "a"` holds when input.x is undefined)
        guards: list[Ev] = []
        t = inner_e.terms
        if isinstance(t, ast.Call) and _call_name(t) not in _OPERATORS:
            for a in t.args:
                if isinstance(a, ast.Ref) and a.path and self._ground(a, scope):
                    guards.append(self.term(a, scope))

        def build(k: Run) -> Run:
            if guards:

                def guarded(ctx: Ctx, f: Frame) -> bool:
                    for g in guards:
                        if g(ctx, f) is UNDEFINED:
                            return False
                    if inner(ctx, f):
                        return False
                    return k(ctx, f)

                return guarded

            def run(ctx: Ctx, f: Frame) -> bool:
                if inner(ctx, f):
                    return False
                return k(ctx, f)

            return run

        return build

    def _bound_elsewhere(self, name: str, scope: Scope) -> bool:
        return True

    def _plain_term(self, e: ast.Expr, scope: Scope) -> Run | None:
        """An expression that binds nothing and enumerates nothing, as one test (for `not`)."""
        t = e.terms
        if e.with_ or e.negated or isinstance(t, ast.SomeDecl | ast.Every):
            return None
        if isinstance(t, ast.Call) and _call_name(t) in ("assign", "eq"):
            return None
        if not self._ground(t, scope) or _has_comprehension(t):
            return None
        if isinstance(t, ast.Call) and self._has_output(t, _call_name(t)):
            return None
        fused = self._fused_test(t, scope)
        if fused is not None:
            return fused
        ev = self.term(t, scope)

        def test(ctx: Ctx, f: Frame) -> bool:
            v = ev(ctx, f)
            return v is not UNDEFINED and v is not False

        return test

    def _with(self, e: ast.Expr, scope: Scope) -> Callable[[Run], Run]:
        mods: list[tuple[str, tuple[str, ...], Ev]] = []
        for w in e.with_:
            target = w.target
            if not isinstance(target.head, ast.Var) or target.head.name not in ("input", "data"):
                raise self.unsupported("`with` on something other than input or data", w.pos)
            path = []
            for s in target.path:
                v = _scalar_str(s)
                if v is None:
                    raise self.unsupported("`with` on a computed path", w.pos)
                path.append(v)
            if target.head.name == "data":
                node = self._node(tuple(path))
                if node is not None and _has_functions(node):
                    raise self.unsupported("`with` replacing functions", w.pos)
                if node is None:
                    prefix = self.root
                    for step in path:
                        nxt = prefix.children.get(step)
                        if nxt is None:
                            break
                        prefix = nxt
                    if prefix.group is not None and prefix.group.kind == FUNCTION:
                        raise self.unsupported("`with` replacing functions", w.pos)
            if not self._ground(w.value, scope):
                raise _NotReady(_first_unbound(w.value, scope, self) or "?")
            mods.append((target.head.name, tuple(path), self.term(w.value, scope)))
        inner_e = replace(e, with_=())
        was, self._in_with = self._in_with, True
        try:
            build_inner = self.expr(inner_e, scope)
        finally:
            self._in_with = was

        def back(ctx: Ctx, f: Frame) -> bool:
            return False  # replaced per continuation below

        def build(k: Run) -> Run:
            def resume(ctx: Ctx, f: Frame) -> bool:
                assert ctx.parent is not None
                return k(ctx.parent, f)

            inner = build_inner(resume)

            def run(ctx: Ctx, f: Frame) -> bool:
                child = ctx.child()
                for root, path, ev in mods:
                    v = ev(ctx, f)
                    if v is UNDEFINED:
                        return False
                    if root == "input":
                        child.input = _set_path(child.input, path, v)
                    else:
                        child.overrides[path] = v
                return inner(child, f)

            return run

        del back
        return build

    # -- terms (ground)

    def term(self, t: Any, scope: Scope) -> Ev:
        """t's value, for a t whose variables are all bound."""
        if isinstance(t, ast.Scalar):
            v = t.value
            if (type(v) is float and (v != v or v in (float("inf"), float("-inf")))) or (type(v) is int and abs(v) > 2**1023):
                raise self.unsupported(f"number {t.text or v} is beyond a float's range", t.pos)
            return lambda ctx, f: v
        if isinstance(t, ast.Var):
            return self._var(t, scope)
        if isinstance(t, ast.Ref):
            return self._ref(t, scope)
        if isinstance(t, ast.Array):
            evs = [self.term(x, scope) for x in t.items]
            if all(_is_constant(x) for x in t.items):
                const = [ev(None, []) for ev in evs]  # type: ignore[arg-type]
                return lambda ctx, f: const

            def array(ctx: Ctx, f: Frame) -> Any:
                out = []
                for ev in evs:
                    v = ev(ctx, f)
                    if v is UNDEFINED:
                        return UNDEFINED
                    out.append(v)
                return out

            return array
        if isinstance(t, ast.Set):
            evs = [self.term(x, scope) for x in t.items]

            def set_(ctx: Ctx, f: Frame) -> Any:
                out = Set()
                for ev in evs:
                    v = ev(ctx, f)
                    if v is UNDEFINED:
                        return UNDEFINED
                    out.add(v)
                return out

            return set_
        if isinstance(t, ast.Object):
            for k, _v in t.items:
                if isinstance(k, ast.Array | ast.Object | ast.Set | ast.ArrayCompr | ast.SetCompr | ast.ObjectCompr) or (
                    isinstance(k, ast.Scalar) and isinstance(k.value, bool)
                ):
                    raise self.unsupported("an object key that is not a string, number or null", t.pos)
            pairs = [(self.term(k, scope), self.term(v, scope)) for k, v in t.items]

            def obj(ctx: Ctx, f: Frame) -> Any:
                out: dict[Any, Any] = {}
                for kev, vev in pairs:
                    k = kev(ctx, f)
                    if k is UNDEFINED:
                        return UNDEFINED
                    v = vev(ctx, f)
                    if v is UNDEFINED:
                        return UNDEFINED
                    k = check_key(k)
                    if k in out and not equal(out[k], v):
                        raise EvalError("eval_conflict_error", "object keys must be unique")
                    out[k] = v
                return out

            return obj
        if isinstance(t, ast.ArrayCompr | ast.SetCompr | ast.ObjectCompr):
            return self._comprehension(t, scope)
        if isinstance(t, ast.Call):
            return self._call(t, scope)
        raise self.unsupported(f"term {type(t).__name__}", getattr(t, "pos", ast.NOPOS))

    def _var(self, t: ast.Var, scope: Scope) -> Ev:
        name = t.name
        if self._is_local(name, scope):
            if not scope.is_bound(name):
                raise _NotReady(name)
            slot = scope.slot(name)
            return lambda ctx, f: f[slot]
        if name == "input":
            return lambda ctx, f: ctx.input
        if name == "data":
            return self._data_ref((), [], t.pos)
        return self._ref(ast.Ref(t, (), t.pos), scope)

    def _resolve(self, ref: ast.Ref) -> ast.Ref:
        """A ref with its head resolved: an import alias or a rule of the package becomes `data....`."""
        head = ref.head
        if isinstance(head, ast.Var):
            name = head.name
            if name in self.aliases:
                target = self.aliases[name]
                return ast.Ref(target.head, target.path + ref.path, ref.pos)
            if name in self.rule_names and name not in ("input", "data"):
                pkg = tuple(ast.Scalar(s) for s in self.pkg)
                return ast.Ref(ast.Var("data"), pkg + (ast.Scalar(name),) + ref.path, ref.pos)
        return ref

    def _ref(self, ref: ast.Ref, scope: Scope) -> Ev:
        if not self._in_with:
            # the longest prefix an enumeration holds already (`container := input.spec.containers[_]`)
            for n in range(len(ref.path), 0, -1):
                slot = scope.cached(ast.Ref(ref.head, ref.path[:n]))
                if slot is not None:
                    return self._steps(_slot_reader(slot), ref.path[n:], scope)
        head = ref.head
        if isinstance(head, ast.Var) and self._is_local(head.name, scope):
            base = self._var(head, scope)
            return self._steps(base, ref.path, scope)
        if isinstance(head, ast.Var):
            ref = self._resolve(ref)
            head = ref.head
            if not isinstance(head, ast.Var):
                raise self.unsupported("an import of a non-reference", ref.pos)
            if head.name == "input":
                return self._steps(lambda ctx, f: ctx.input, ref.path, scope)
            if head.name == "data":
                static: list[str] = []
                rest = list(ref.path)
                while rest and _scalar_str(rest[0]) is not None:
                    static.append(_scalar_str(rest.pop(0)))  # type: ignore[arg-type]
                return self._data_ref(tuple(static), rest, ref.pos, scope)
            raise self.unsupported(f"reference to {head.name}", ref.pos)
        base = self.term(head, scope)
        return self._steps(base, ref.path, scope)

    def _steps(self, base: Ev, path: Iterable[ast.Term], scope: Scope | None) -> Ev:
        path = list(path)
        if not path:
            return base
        statics = [_scalar_str(s) for s in path]
        if all(s is not None for s in statics):
            keys = tuple(statics)
            if len(keys) == 1:
                k0 = keys[0]

                def get1(ctx: Ctx, f: Frame) -> Any:
                    v = base(ctx, f)
                    if type(v) is dict:
                        return v.get(k0, UNDEFINED)
                    return lookup(v, k0)

                return get1

            def getn(ctx: Ctx, f: Frame) -> Any:
                v = base(ctx, f)
                for k in keys:
                    if type(v) is dict:
                        v = v.get(k, UNDEFINED)
                    else:
                        v = lookup(v, k)
                        if v is UNDEFINED:
                            return v
                return v

            return getn
        assert scope is not None
        evs = [self.term(s, scope) for s in path]

        def get(ctx: Ctx, f: Frame) -> Any:
            v = base(ctx, f)
            for ev in evs:
                if v is UNDEFINED:
                    return v
                k = ev(ctx, f)
                if k is UNDEFINED:
                    return k
                v = lookup(v, k)
            return v

        return get

    def _data_ref(self, static: tuple[str, ...], rest: list[ast.Term], pos: ast.Pos, scope: Scope | None = None) -> Ev:
        """`data.<static>` then `rest`: a rule's value, a package materialised, or the base data."""
        node: Node | None = self.root
        i = 0
        while node is not None and i < len(static):
            if node.group is not None:
                break
            node = node.children.get(static[i])
            i += 1
        tail: list[ast.Term] = [ast.Scalar(s) for s in static[i:]] + rest
        if node is not None and node.group is None and rest and isinstance(rest[0], ast.Scalar) and not isinstance(rest[0].value, str):
            raise self.unsupported("a number or boolean key into a package", pos)
        if node is None:  # no rule at or below: base data
            base = self._base(static)
            return self._base_steps(base, rest, scope)
        if node.group is not None:
            g = node.group
            if g.kind == FUNCTION:
                if g.node.rules[0].rule.head.args or tail:
                    raise self.unsupported(f"function {'.'.join(g.path)} used as a value", pos)
                return lambda ctx, f: g.call(ctx, [])  # a function of no arguments, named without `()`
            value = g
            return self._steps(lambda ctx, f: value.value(ctx), tail, scope)
        # a package: materialise it (rules under it and the base data at its path)
        pkg_node = node

        def doc(ctx: Ctx, f: Frame) -> Any:
            return self._materialise(pkg_node, ctx)

        return self._steps(doc, tail, scope)

    def _base_steps(self, base: Ev, path: list[ast.Term], scope: Scope | None) -> Ev:
        """Steps into base data: as `_steps`, but a number finds an object's key spelled as that number, as
        in OPA's store (the JSON it was given has only string keys)."""
        if all(_scalar_str(s) is not None for s in path):
            return self._steps(base, path, scope)
        assert scope is not None
        evs = [self.term(s, scope) for s in path]

        def get(ctx: Ctx, f: Frame) -> Any:
            v = base(ctx, f)
            for ev in evs:
                if v is UNDEFINED:
                    return v
                k = ev(ctx, f)
                if k is UNDEFINED:
                    return k
                if type(v) is dict and type(k) in (int, float) and k not in v:
                    v = v.get(str(k), UNDEFINED)
                else:
                    v = lookup(v, k)
            return v

        return get

    def _base(self, path: tuple[str, ...]) -> Ev:
        keys = path

        def base(ctx: Ctx, f: Frame) -> Any:
            if ctx.overrides:
                return _base_overridden(ctx, keys)
            v = ctx.data
            for k in keys:
                if type(v) is not dict:
                    return UNDEFINED
                v = v.get(k, UNDEFINED)
            return v

        return base

    def _materialise(self, node: Node, ctx: Ctx) -> Any:
        if ctx.overrides:
            ov = _overridden(ctx, node.path)
            if ov is not _UNSET:
                return ov
        v = ctx.data
        for k in node.path:
            if type(v) is not dict:
                v = UNDEFINED
                break
            v = v.get(k, UNDEFINED)
        out: dict[Any, Any] = dict(v) if type(v) is dict else {}
        if ctx.overrides:
            for p, x in ctx.overrides.items():
                if len(p) == len(node.path) + 1 and p[: len(node.path)] == node.path:
                    out[p[-1]] = x
        for name, child in node.children.items():
            if child.group is not None:
                if child.group.kind == FUNCTION:
                    continue
                if name in out:  # the base document wins, as in OPA's evaluation of a package
                    continue
                x = child.group.value(ctx)
                if x is not UNDEFINED:
                    out[name] = x
            else:
                x = self._materialise(child, ctx)
                if x != {} or name not in out:
                    out[name] = x
        return out

    # -- calls

    def _function(self, op: ast.Ref) -> Group | None:
        ref = self._resolve(op)
        head = ref.head
        if not isinstance(head, ast.Var) or head.name != "data":
            return None
        path = []
        for s in ref.path:
            v = _scalar_str(s)
            if v is None:
                return None
            path.append(v)
        node = self._node(tuple(path))
        if node is None or node.group is None or node.group.kind != FUNCTION:
            return None
        return node.group

    def _call(self, t: ast.Call, scope: Scope) -> Ev:
        name = _call_name(t)
        evs = [self.term(a, scope) for a in t.args]
        group = self._function(t.op)
        if group is not None:
            nparams = len(group.node.rules[0].rule.head.args or ())
            if len(evs) != nparams:
                raise self.unsupported(f"function {name} called with {len(evs)} arguments, takes {nparams}", t.pos)
            return _user_call(group, evs)
        if name in ("assign", "eq"):
            a, b = evs

            def eq(ctx: Ctx, f: Frame) -> Any:
                x = a(ctx, f)
                if x is UNDEFINED:
                    return x
                y = b(ctx, f)
                if y is UNDEFINED:
                    return y
                return equal(x, y)

            return eq
        if name == "print":
            return lambda ctx, f: True
        if name.startswith("data.") or (isinstance(t.op.head, ast.Var) and t.op.head.name in self.aliases):
            raise self.unsupported(f"call of {name}, which is not a function", t.pos)
        bi = BUILTINS.get(name)
        if bi is None:
            raise self.unsupported(f"built-in {name or '?'} is not implemented by the compiler", t.pos)
        if len(evs) != bi.arity:
            raise self.unsupported(f"{name} takes {bi.arity} arguments, given {len(evs)}", t.pos)
        fn = bi.fn
        if bi.ctx:

            def with_ctx(ctx: Ctx, f: Frame) -> Any:
                try:
                    return fn(ctx)
                except BuiltinError:
                    if ctx.strict:
                        raise
                    return UNDEFINED

            return with_ctx
        if len(evs) == 1:
            (a1,) = evs

            def call1(ctx: Ctx, f: Frame) -> Any:
                x = a1(ctx, f)
                if x is UNDEFINED:
                    return x
                try:
                    return fn(x)
                except BuiltinError:
                    if ctx.strict:
                        raise
                    return UNDEFINED

            return call1
        if len(evs) == 2:
            a1, a2 = evs

            def call2(ctx: Ctx, f: Frame) -> Any:
                x = a1(ctx, f)
                if x is UNDEFINED:
                    return x
                y = a2(ctx, f)
                if y is UNDEFINED:
                    return y
                try:
                    return fn(x, y)
                except BuiltinError:
                    if ctx.strict:
                        raise
                    return UNDEFINED

            return call2

        if len(evs) == 3:
            a1, a2, a3 = evs

            def call3(ctx: Ctx, f: Frame) -> Any:
                x = a1(ctx, f)
                if x is UNDEFINED:
                    return x
                y = a2(ctx, f)
                if y is UNDEFINED:
                    return y
                z = a3(ctx, f)
                if z is UNDEFINED:
                    return z
                try:
                    return fn(x, y, z)
                except BuiltinError:
                    if ctx.strict:
                        raise
                    return UNDEFINED

            return call3

        def calln(ctx: Ctx, f: Frame) -> Any:
            args = []
            for ev in evs:
                v = ev(ctx, f)
                if v is UNDEFINED:
                    return v
                args.append(v)
            try:
                return fn(*args)
            except BuiltinError:
                if ctx.strict:
                    raise
                return UNDEFINED

        return calln

    # -- comprehensions

    def _comprehension(self, t: ast.ArrayCompr | ast.SetCompr | ast.ObjectCompr, scope: Scope) -> Ev:
        heads: list[ast.Term] = [t.key, t.value] if isinstance(t, ast.ObjectCompr) else [t.term]
        names = body_vars(t.body)
        for h in heads:
            term_vars(h, names)
        declared = _declared(t.body)
        outer = self._outer_names(scope, declared)
        # the comprehension reads the outer variables it names; they must be bound first, except one the
        # outer body declares with `:=` later on, which the comprehension does not see yet
        shadow = set()
        for n in sorted(names & outer):
            owner = scope.owner(n)
            if self._is_local(n, scope) and not scope.is_bound(n) and owner is not None:
                if n in owner.assigned:
                    shadow.add(n)
                    continue
                raise _NotReady(n)
        child = Scope(scope.layout, scope, self._locals(names) - (outer - shadow), declared | shadow)
        child.assigned = _assigned(t.body)
        holder: list[Ev] = []
        aslot = child.layout.new()  # the collection being built, in the frame of the evaluation (see compr)

        if isinstance(t, ast.ArrayCompr):

            def final(ctx: Ctx, f: Frame) -> bool:
                v = holder[0](ctx, f)
                if v is not UNDEFINED:
                    f[aslot].append(v)
                return False

        elif isinstance(t, ast.SetCompr):

            def final(ctx: Ctx, f: Frame) -> bool:
                v = holder[0](ctx, f)
                if v is not UNDEFINED:
                    f[aslot].add(v)
                return False

        else:

            def final(ctx: Ctx, f: Frame) -> bool:
                k = holder[0](ctx, f)
                v = holder[1](ctx, f)
                if k is UNDEFINED or v is UNDEFINED:
                    return False
                acc = f[aslot]
                k = check_key(k)
                if k in acc and not equal(acc[k], v):
                    raise EvalError("eval_conflict_error", "object keys must be unique")
                acc[k] = v
                return False

        def after(s: Scope) -> list[Callable[[Run], Run]]:
            pre = []
            for h in heads:
                pre += self.prepare(h, s)
                holder.append(self.term(h, s))
            return pre

        run = self.body(t.body, child, final, after)
        make: Callable[[], Any] = list if isinstance(t, ast.ArrayCompr) else Set if isinstance(t, ast.SetCompr) else dict

        def compr(ctx: Ctx, f: Frame) -> Any:
            # the frame is this evaluation's own: concurrent evaluations never share a collection
            acc = make()
            outer = f[aslot]
            f[aslot] = acc
            try:
                run(ctx, f)
            finally:
                f[aslot] = outer
            return acc

        return compr


def _true(ctx: Ctx, f: Frame) -> bool:
    return True


def _false(ctx: Ctx, f: Frame) -> bool:
    return False


def _put(acc: dict[Any, Any], k: Any, v: Any) -> None:
    """A partial object rule's key and value added to its accumulator (written-out heads)."""
    k = check_key(k)
    old = acc.get(k, _UNSET)
    if old is not _UNSET and not equal(old, v):
        raise EvalError("eval_conflict_error", "object keys must be unique")
    acc[k] = v


def _noop(gen: codegen.Gen) -> None:
    pass


_NOOP: codegen.Op = _noop


def _emit_closure(ev: Ev) -> Callable[..., str]:
    """A writer calling a compiled term's closure (what is not written out: comprehensions, data, ...)."""

    def call(gen: codegen.Gen, check: bool = True) -> str:
        v = gen.name()
        gen.line(f"{v} = {gen.const(ev, 'e')}(ctx, f)")
        if check:
            gen.line(f"if {v} is U: {gen.fail()}")
        return v

    return call


def _bound_names(scope: Scope) -> set[str]:
    out: set[str] = set()
    s: Scope | None = scope
    while s is not None:
        out |= s.bound
        s = s.parent
    return out


def _has_comprehension(t: Any) -> bool:
    if isinstance(t, ast.ArrayCompr | ast.SetCompr | ast.ObjectCompr):
        return True
    if isinstance(t, ast.Ref):
        return _has_comprehension(t.head) or any(_has_comprehension(x) for x in t.path)
    if isinstance(t, ast.Array | ast.Set):
        return any(_has_comprehension(x) for x in t.items)
    if isinstance(t, ast.Object):
        return any(_has_comprehension(k) or _has_comprehension(v) for k, v in t.items)
    if isinstance(t, ast.Call):
        return any(_has_comprehension(x) for x in t.args)
    return False


def _slot_reader(slot: int) -> Ev:
    return lambda ctx, f: f[slot]


def _user_call(group: Group, evs: list[Ev]) -> Ev:
    if len(evs) == 1:
        (e1,) = evs

        def user1(ctx: Ctx, f: Frame) -> Any:
            x = e1(ctx, f)
            if x is UNDEFINED:
                return x
            return group.call1(ctx, x)

        return user1
    if len(evs) == 2:
        e1, e2 = evs

        def user2(ctx: Ctx, f: Frame) -> Any:
            x = e1(ctx, f)
            if x is UNDEFINED:
                return x
            y = e2(ctx, f)
            if y is UNDEFINED:
                return y
            return group.call(ctx, [x, y])

        return user2

    def user(ctx: Ctx, f: Frame) -> Any:
        args = []
        for ev in evs:
            v = ev(ctx, f)
            if v is UNDEFINED:
                return UNDEFINED
            args.append(v)
        return group.call(ctx, args)

    return user


def _has_functions(node: Node) -> bool:
    if node.group is not None and node.group.kind == FUNCTION:
        return True
    return any(_has_functions(c) for c in node.children.values())


def _set_path(doc: Any, path: tuple[str, ...], v: Any) -> Any:
    if not path:
        return v
    out = dict(doc) if type(doc) is dict else {}
    out[path[0]] = _set_path(out.get(path[0]), path[1:], v)
    return out


def _overridden(ctx: Ctx, path: tuple[str, ...]) -> Any:
    """The value `with data...` gives path, if an override covers it (else _UNSET)."""
    for p, v in ctx.overrides.items():
        if path[: len(p)] == p:
            x = v
            for k in path[len(p) :]:
                x = lookup(x, k)
            return x
    return _UNSET


def _base_overridden(ctx: Ctx, keys: tuple[str, ...]) -> Any:
    ov = _overridden(ctx, keys)
    if ov is not _UNSET:
        return ov
    v = ctx.data
    for k in keys:
        if type(v) is not dict:
            return UNDEFINED
        v = v.get(k, UNDEFINED)
    # overrides below this path replace parts of the base document
    for p, x in ctx.overrides.items():
        if p[: len(keys)] == keys and len(p) > len(keys):
            v = _set_path(v if type(v) is dict else {}, p[len(keys) :], x)
    return v


def _is_constant(t: Any) -> bool:
    if isinstance(t, ast.Scalar):
        return True
    if isinstance(t, ast.Array | ast.Set):
        return all(_is_constant(x) for x in t.items)
    if isinstance(t, ast.Object):
        return all(_is_constant(k) and _is_constant(v) for k, v in t.items)
    return False


def _first_unbound(t: Any, scope: Scope, comp: Compiler) -> str | None:
    names: set[str] = set()
    term_vars(t, names)
    for n in sorted(names):
        if comp._is_local(n, scope) and not scope.is_bound(n):
            return n
    # comprehensions read outer variables: those must be bound too
    return _compr_unbound(t, scope, comp)


def _compr_unbound(t: Any, scope: Scope, comp: Compiler) -> str | None:
    found: list[str] = []

    def visit(x: Any) -> None:
        if isinstance(x, ast.ArrayCompr | ast.SetCompr | ast.ObjectCompr):
            names = body_vars(x.body)
            heads = [x.key, x.value] if isinstance(x, ast.ObjectCompr) else [x.term]
            for h in heads:
                term_vars(h, names)
            declared = _declared(x.body)
            for n in sorted(names - declared):
                owner = scope.owner(n)
                if owner is not None and comp._is_local(n, scope) and not scope.is_bound(n) and n not in owner.assigned:
                    found.append(n)
        elif isinstance(x, ast.Ref):
            visit(x.head)
            for s in x.path:
                visit(s)
        elif isinstance(x, ast.Array | ast.Set):
            for s in x.items:
                visit(s)
        elif isinstance(x, ast.Object):
            for k, v in x.items:
                visit(k)
                visit(v)
        elif isinstance(x, ast.Call):
            for s in x.args:
                visit(s)

    visit(t)
    return found[0] if found else None


def _enum_keys(coll: Ev, slot: int, vslot: int) -> Callable[[Run], Run]:
    def build(k: Run) -> Run:
        def run(ctx: Ctx, f: Frame) -> bool:
            if _clock() > ctx.deadline:
                expired()
            c = coll(ctx, f)
            t = type(c)
            if t is list:
                for i, x in enumerate(c):
                    f[slot] = i
                    f[vslot] = x
                    if k(ctx, f):
                        return True
            elif t is dict:
                for kk, x in list(c.items()):
                    f[slot] = kk
                    f[vslot] = x
                    if k(ctx, f):
                        return True
            elif t is Set:
                for x in list(c):
                    f[slot] = x
                    f[vslot] = x
                    if k(ctx, f):
                        return True
            return False

        return run

    return build


def _enum_match(coll: Ev, match: Callable[[Ctx, Frame, Any], bool]) -> Callable[[Run], Run]:
    def build(k: Run) -> Run:
        def run(ctx: Ctx, f: Frame) -> bool:
            if _clock() > ctx.deadline:
                expired()
            c = coll(ctx, f)
            keys = list(c) if type(c) in (dict, Set) else range(len(c)) if type(c) is list else ()
            for kk in keys:
                if match(ctx, f, kk) and k(ctx, f):
                    return True
            return False

        return run

    return build


_FAILED: Any = object()


_ENV: dict[str, Any] = {}  # the generated functions' globals (filled in below, once the helpers exist)


def _shared_solutions(first: Callable[[Run], Run], rest: Run, whole: Run, reordered: bool, slot: int, acc_slot: int = -1) -> Run:
    """A body split by `Compiler._split`: the solutions of the `first` expressions (the frame as they leave
    it) are kept in the shared memo at `slot`, and `rest` (the others, in their order) runs from each of them.
    An evaluation that shares nothing runs `whole`, the body in its own order. When `first` holds expressions
    moved ahead of others (`reordered`) and computing them raises, the body runs in its own order too, so
    that only the error the body's own order meets is raised. The accumulator at `acc_slot` (if any) is the
    evaluation's own."""
    # the solutions are collected in the shared memo's own slot while `first` runs (never in a list held by
    # this closure, which every thread evaluating the compiled set would share); Rego has no recursion, so
    # one evaluation never re-enters the body while it solves it
    def keep(ctx: Ctx, f: Frame) -> bool:
        ctx.smemo[slot].append(f[:])
        return False

    solve = first(keep)

    def run(ctx: Ctx, f: Frame) -> bool:
        smemo = ctx.smemo
        if smemo is ctx.memo:
            return whole(ctx, f)
        sols = smemo[slot]
        if sols is _UNSET:
            sols = smemo[slot] = []
            try:
                solve(ctx, f)
            except Exception:
                smemo[slot] = _UNSET
                if not reordered:
                    raise
                sols = _FAILED
            smemo[slot] = sols
        if sols is _FAILED:
            acc = f[acc_slot] if acc_slot >= 0 else None
            f[:] = [None] * len(f)
            if acc_slot >= 0:
                f[acc_slot] = acc
            return whole(ctx, f)
        if acc_slot >= 0:
            acc = f[acc_slot]
            for sol in sols:
                f[:] = sol
                f[acc_slot] = acc
                if rest(ctx, f):
                    return True
            return False
        for sol in sols:
            f[:] = sol
            if rest(ctx, f):
                return True
        return False

    return run


def _chain(pre: list[Callable[[Run], Run]], run: Run) -> Run:
    for build in reversed(pre):
        run = build(run)
    return run


def _compose(pre: list[Callable[[Run], Run]], builders: list[Callable[[Run], Run]]) -> Callable[[Run], Run]:
    def build(k: Run) -> Run:
        run = k
        for b in reversed(builders):
            run = b(run)
        return _chain(pre, run)

    return build


# ------------------------------------------------------------------------------------ the result


class Compiled:
    """A compiled module set. `query("data.a.b", input, data)` evaluates one document; `query_body` runs a
    query body (the OPA test cases' form) and returns its solutions."""

    def __init__(self, compiler: Compiler) -> None:
        self._compiler = compiler
        self._nmemo = compiler.nmemo
        self._queries: dict[str, Ev] = {}

    def document(self, ref: str) -> Callable[[Ctx], Any]:
        ev = self._queries.get(ref)
        if ev is None:
            parts = ref.split(".")
            if parts[0] != "data":
                raise Unsupported(f"query {ref!r} is not a reference into data")
            comp = self._compiler
            node = comp._node(tuple(parts[1:]))
            if node is not None and node.group is not None and node.group.kind != FUNCTION:
                return node.group.value  # a rule's value: no closure in between
            comp.module = None
            comp.aliases = {}
            comp.rule_names = set()
            ev = comp._data_ref(tuple(parts[1:]), [], ast.NOPOS)
            self._queries[ref] = ev
        evf = ev
        return lambda ctx: evf(ctx, [])

    def context(self, input: Any, data: Any = None, *, strict: bool = False, shared: Shared | None = None,
                deadline: float | None = None) -> Ctx:
        """An evaluation's context; evaluations given the same `shared` (from `shared()`) must differ only in
        the input's varying path (`compile_modules(..., varying=...)`). Past `deadline` (time.monotonic())
        evaluating raises DeadlineError."""
        return Ctx(input, data if data is not None else {}, self._nmemo, strict, shared, deadline)

    def shared(self) -> Shared:
        return Shared(self._nmemo)

    @property
    def nmemo(self) -> int:
        """The memo slots of an evaluation (`Ctx(input, data, nmemo, strict, shared)` is `context(...)`)."""
        return self._nmemo

    def query(self, ref: str, input: Any = UNDEFINED, data: Any = None, *, strict: bool = False) -> Any:
        """The value of `data.<path>` (a Rego value; `values.to_json` for JSON), or UNDEFINED."""
        doc = self.document(ref)
        return doc(self.context(input, data, strict=strict))

    def query_body(
        self, body: ast.Body, input: Any = UNDEFINED, data: Any = None, *, strict: bool = False, package: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """The solutions of a query body: one dict per solution, from each named variable to its value."""
        comp = self._compiler
        comp.module = None
        comp.aliases = {}
        comp.pkg = package
        node = comp._node(package)
        comp.rule_names = set(node.children) if node and package else set()
        fresh = ps.Fresh()
        body = ps.map_body(body, lambda b: b, lambda t: ps.rewrite_template_term(t, fresh))
        body = tuple(rename_wildcards(e) for e in body)
        names = body_vars(body)
        scope = Scope(Layout(), None, comp._locals(names), _declared(body))
        out: list[dict[str, Any]] = []
        slots: list[tuple[str, int]] = []

        def final(ctx: Ctx, f: Frame) -> bool:
            out.append({n: f[s] for n, s in slots})
            return False

        def after(s: Scope) -> None:
            for n in sorted(s.bound):
                if not n.startswith("$"):
                    slots.append((n, s.slot(n)))

        run = comp.body(body, scope, final, after)
        ctx = self.context(input, data, strict=strict)
        run(ctx, [None] * scope.layout.n)
        return out


def compile_modules(modules: list[ast.Module], varying: tuple[str, ...] | None = None) -> Compiled:
    """Compile a module set; raises Unsupported for what the compiler does not cover. `varying` names the
    input path in which evaluations sharing a `Shared` differ (Gatekeeper: `("parameters",)`); what does
    not read it is evaluated once per `Shared`."""
    return Compiler(modules, varying).compile()


def try_compile(modules: list[ast.Module], varying: tuple[str, ...] | None = None) -> Compiled | Unsupported:
    """The compiled module set, or the reason it runs on regopy instead."""
    try:
        return compile_modules(modules, varying)
    except Unsupported as exc:
        return exc
    except RecursionError:
        return Unsupported("the modules nest too deeply for the compiler")


def result_json(v: Any) -> Any:
    """A query's value as JSON (sets as sorted arrays), None for undefined."""
    return None if v is UNDEFINED else to_json(v)


_ENV.update({"_clock": _clock, "_expired": expired, "_put": _put, "_ONCE": (None,), "U": UNDEFINED, "_lookup": lookup, "_items": items, "_Set": Set, "_equal": equal, "_BuiltinError": BuiltinError})
