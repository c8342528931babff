"""The Rego AST: one typed tree for every module, v0 or v1, with a source position on every node.

Modelled on OPA's `v1/ast` (Module -> Package, Imports, Rules -> Head, Body -> Expr -> Term), so that OPA's
documentation and its compiler stages read across. Nodes are frozen dataclasses: passes build new trees
(`dataclasses.replace`) instead of editing in place, and equal trees compare equal (positions excluded), which
is what the parse -> print -> parse round trip asserts.

Operators are calls, as in OPA: `a == b` is `Call(Ref(Var("equal")), (a, b))`; `x := v` and `x = v` are
`Call` of `assign` and `eq`; `x in xs` is `internal.member_2`, `k, v in xs` `internal.member_3`. The table
`INFIX` maps each operator to its call name.

Contract for the passes: only this module defines node types; a pass that needs more information adds a
field here (with a default) rather than a side table keyed by node identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pos:
    """1-based line and column in the source text the module was parsed from."""

    line: int
    col: int


NOPOS = Pos(0, 0)


def _pos() -> Pos:
    return field(default=NOPOS, compare=False, repr=False)


# ---------------------------------------------------------------------------------------------- terms


@dataclass(frozen=True)
class Scalar:
    """null, true/false, a number or a string. `text` keeps a number's source spelling (exact for printing and
    for big or decimal numbers); strings keep `raw=True` when written with backquotes."""

    value: None | bool | int | float | str
    text: str | None = field(default=None, compare=False)
    raw: bool = field(default=False, compare=False)
    pos: Pos = _pos()
    # the value's JSON type, so that equality keeps `true` apart from `1` (Python has True == 1); `1` and `1.0`
    # are the same number, as in OPA
    kind: str = field(init=False, repr=False, default="")

    def __post_init__(self) -> None:
        v = self.value
        kind = "null" if v is None else "boolean" if isinstance(v, bool) else "string" if isinstance(v, str) else "number"
        object.__setattr__(self, "kind", kind)


@dataclass(frozen=True)
class Var:
    """A variable or a root name (`input`, `data`, a rule, an import alias). `_` is a fresh wildcard each time."""

    name: str
    pos: Pos = _pos()


@dataclass(frozen=True)
class Ref:
    """`head.a[b]["c"]`: `head` is a Var (or a Call/Array/Object/comprehension for `f(x).y`, `[1][0]`); a dotted
    step is a string Scalar, a bracket step any term."""

    head: Term
    path: tuple[Term, ...] = ()
    pos: Pos = _pos()


@dataclass(frozen=True)
class Array:
    items: tuple[Term, ...]
    pos: Pos = _pos()


@dataclass(frozen=True)
class Object:
    items: tuple[tuple[Term, Term], ...]
    pos: Pos = _pos()


@dataclass(frozen=True)
class Set:
    """`{a, b}`; the empty set is written `set()`."""

    items: tuple[Term, ...]
    pos: Pos = _pos()


@dataclass(frozen=True)
class ArrayCompr:
    term: Term
    body: Body
    pos: Pos = _pos()


@dataclass(frozen=True)
class SetCompr:
    term: Term
    body: Body
    pos: Pos = _pos()


@dataclass(frozen=True)
class ObjectCompr:
    key: Term
    value: Term
    body: Body
    pos: Pos = _pos()


@dataclass(frozen=True)
class Call:
    """A call of a built-in or user function, or an operator. `op` is the function's name as a Ref
    (`Ref(Var("count"))`, `Ref(Var("data"), ("lib", "f"))`)."""

    op: Ref
    args: tuple[Term, ...]
    pos: Pos = _pos()


@dataclass(frozen=True)
class TemplateString:
    """`$"text {expr} text"` (OPA 1.12's string interpolation; `$`...`` across lines, `raw`): literal parts
    (str) and template expressions, each an `Expr` (a term, possibly with `with` modifiers). An expression
    with no value renders as `<undefined>`, one with more than one value is an error, a string renders as
    itself and any other value as `sprintf("%v")` does. OPA's compiler stage `RewriteTemplateStrings`
    turns it into `internal.template_string([part, {v | v = expr}, ...])`; `passes.rewrite_template_strings`
    is ours."""

    parts: tuple[str | Expr, ...]
    raw: bool = field(default=False, compare=False)
    pos: Pos = _pos()


Term = Scalar | Var | Ref | Array | Object | Set | ArrayCompr | SetCompr | ObjectCompr | Call | TemplateString

# operator -> call name, as OPA names them; binding strength from loosest to tightest is (as OPA's parser)
# `=`/`:=` < `in` < comparisons < `|` < `&` < `+ -` < `* / %`
INFIX: dict[str, str] = {
    ":=": "assign",
    "=": "eq",
    "|": "or",
    "&": "and",
    "==": "equal",
    "!=": "neq",
    "<": "lt",
    "<=": "lte",
    ">": "gt",
    ">=": "gte",
    "+": "plus",
    "-": "minus",
    "*": "mul",
    "/": "div",
    "%": "rem",
}
MEMBER_2 = "internal.member_2"  # `x in xs`
MEMBER_3 = "internal.member_3"  # `k, v in xs`
TEMPLATE_STRING = "internal.template_string"  # a template string, rewritten (as OPA's compiler does)


# ------------------------------------------------------------------------------------- expressions


@dataclass(frozen=True)
class With:
    """`with target as value`; `target` is a Ref rooted at `input` or `data` (or a function name)."""

    target: Ref
    value: Term
    pos: Pos = _pos()


@dataclass(frozen=True)
class SomeDecl:
    """`some x, y` (each a Var) or `some x in xs` / `some k, v in xs` (one member Call)."""

    symbols: tuple[Term, ...]
    pos: Pos = _pos()


@dataclass(frozen=True)
class Every:
    """`every k, v in domain { body }` (`key` is None for `every v in domain`)."""

    key: Term | None
    value: Term
    domain: Term
    body: Body
    pos: Pos = _pos()


@dataclass(frozen=True)
class Expr:
    """One statement of a body: a term (`input.x`, a call, an assignment), a `some` declaration or `every`,
    possibly negated (`not`) and with `with` modifiers."""

    terms: Term | SomeDecl | Every
    negated: bool = False
    with_: tuple[With, ...] = ()
    pos: Pos = _pos()


Body = tuple[Expr, ...]


# ------------------------------------------------------------------------------------ rules, module


@dataclass(frozen=True)
class Head:
    """A rule's head. `ref` names the rule (`Ref(Var("deny"))`, or `a.b.c` for a ref head); `args` is set for
    functions; `key` for partial rules (`p contains key` / v0 `p[key]`, and `p[key] = value` objects); `value`
    for complete rules and functions (None means `true`); `assign` is True for `:=`."""

    ref: Ref
    args: tuple[Term, ...] | None = None
    key: Term | None = None
    value: Term | None = None
    assign: bool = False
    # written with `contains` rather than v0's `p[x]` (both are multi-value rules: `key` set, `value` None); a
    # spelling like `Rule.if_`, so not compared
    contains: bool = field(default=False, compare=False)
    pos: Pos = _pos()

    @property
    def name(self) -> str:
        head = self.ref.head
        return head.name if isinstance(head, Var) else ""


@dataclass(frozen=True)
class Rule:
    """`default`, a head and a body (an empty body is `true`); `else_` chains `else = v { ... }` clauses. `if_`
    records whether the source wrote `if` (the printer always writes v1)."""

    head: Head
    body: Body = ()
    default: bool = False
    else_: Rule | None = None
    if_: bool = field(default=False, compare=False)
    pos: Pos = _pos()


@dataclass(frozen=True)
class Import:
    """`import data.lib.x as y`, `import input`, `import future.keywords.in`, `import rego.v1`."""

    path: Ref
    alias: str | None = None
    pos: Pos = _pos()


@dataclass(frozen=True)
class Comment:
    text: str  # without the leading '#'
    pos: Pos = _pos()


@dataclass(frozen=True)
class Package:
    path: Ref  # `data.a.b` for `package a.b`
    pos: Pos = _pos()


@dataclass(frozen=True)
class Module:
    package: Package
    imports: tuple[Import, ...] = ()
    rules: tuple[Rule, ...] = ()
    comments: tuple[Comment, ...] = field(default=(), compare=False)
    v1: bool = field(default=True, compare=False)  # parsed as Rego v1 (or v0 with `import rego.v1`)
    file: str = field(default="", compare=False)
