"""The CEL AST: one typed, frozen tree per expression, with the source offset of every node.

The node kinds follow cel-spec's grammar (langdef "Syntax"): literals, identifiers, field selection, indexing,
calls (global `f(x)` and member `x.f(y)`), unary and binary operators, the conditional, and the list, map and
message (typed object) literals, each with cel's optional syntax (`a.?f`, `a[?i]`, `[?x]`, `{?k: v}`,
`T{?f: v}`). Macros (`has`, `all`, `exists`, `exists_one`, `map`, `filter`, `cel.bind`, ...) stay calls, as
written: cel-cpp expands them when it compiles the printed source.

Nodes compare by structure: `pos` (the 0-based offset of the node's first character in the expression) is
left out of equality, so that the parse -> print -> parse round trip can assert `==`. Passes build new trees
(`dataclasses.replace`) and never edit one in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

# literal kinds, as cel names their types
INT, UINT, DOUBLE, STRING, BYTES, BOOL, NULL = "int", "uint", "double", "string", "bytes", "bool", "null_type"

# binary operators by precedence, loosest first (cel-spec's table; the conditional is looser still)
BINARY_PRECEDENCE: dict[str, int] = {
    "||": 2, "&&": 3,
    "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "in": 4,
    "+": 5, "-": 5,
    "*": 6, "/": 6, "%": 6,
}
CONDITIONAL, UNARY, MEMBER = 1, 7, 8


def _pos() -> int:
    return field(default=-1, compare=False, repr=False)


@dataclass(frozen=True)
class Literal:
    """int, uint, double, string, bytes, bool or null. `kind` keeps `1`, `1u` and `1.0` apart (and `true`
    from `1`: Python has True == 1)."""

    kind: str
    value: int | float | str | bytes | bool | None
    pos: int = _pos()


@dataclass(frozen=True)
class Ident:
    """A name: a variable, or the first part of a qualified name. `absolute` for a leading dot (`.a`)."""

    name: str
    absolute: bool = False
    pos: int = _pos()


@dataclass(frozen=True)
class Select:
    """`operand.field`, or `operand.?field` (optional)."""

    operand: Expr
    field: str
    optional: bool = False
    pos: int = _pos()


@dataclass(frozen=True)
class Index:
    """`operand[index]`, or `operand[?index]` (optional)."""

    operand: Expr
    index: Expr
    optional: bool = False
    pos: int = _pos()


@dataclass(frozen=True)
class Call:
    """`function(args)`, or `target.function(args)` (a member call). Macros are calls too."""

    function: str
    args: tuple[Expr, ...] = ()
    target: Expr | None = None
    absolute: bool = False  # `.f(x)`
    pos: int = _pos()


@dataclass(frozen=True)
class Unary:
    """`!x` or `-x`."""

    op: str
    operand: Expr
    pos: int = _pos()


@dataclass(frozen=True)
class Binary:
    """`left op right`, op one of BINARY_PRECEDENCE."""

    op: str
    left: Expr
    right: Expr
    pos: int = _pos()


@dataclass(frozen=True)
class Conditional:
    """`cond ? then : otherwise`."""

    cond: Expr
    then: Expr
    otherwise: Expr
    pos: int = _pos()


@dataclass(frozen=True)
class Element:
    """An item of a list literal; `[?x]` (optional) adds it only when the optional x has a value."""

    value: Expr
    optional: bool = False


@dataclass(frozen=True)
class ListLit:
    elements: tuple[Element, ...] = ()
    pos: int = _pos()


@dataclass(frozen=True)
class Entry:
    """An entry of a map literal; `{?k: v}` (optional) adds it only when the optional v has a value."""

    key: Expr
    value: Expr
    optional: bool = False


@dataclass(frozen=True)
class MapLit:
    entries: tuple[Entry, ...] = ()
    pos: int = _pos()


@dataclass(frozen=True)
class FieldInit:
    """A field of a message literal; `T{?f: v}` (optional) sets it only when the optional v has a value."""

    name: str
    value: Expr
    optional: bool = False


@dataclass(frozen=True)
class Struct:
    """A message (typed object) literal `A.B{f: v}`: `type_name` is the dotted name as written (a leading dot
    kept)."""

    type_name: str
    fields: tuple[FieldInit, ...] = ()
    pos: int = _pos()

    @property
    def root(self) -> str:
        """The first part of the type's name (`Object` of `Object.spec.template`)."""
        return self.type_name.lstrip(".").split(".", 1)[0]


Expr = Union[Literal, Ident, Select, Index, Call, Unary, Binary, Conditional, ListLit, MapLit, Struct]  # noqa: UP007


def precedence(e: Expr) -> int:
    """How tightly the node binds when printed (higher binds tighter)."""
    if isinstance(e, Conditional):
        return CONDITIONAL
    if isinstance(e, Binary):
        return BINARY_PRECEDENCE[e.op]
    if isinstance(e, Unary):
        return UNARY
    return MEMBER


def children(e: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of a node, in source order."""
    if isinstance(e, Select):
        return (e.operand,)
    if isinstance(e, Index):
        return (e.operand, e.index)
    if isinstance(e, Call):
        return ((e.target,) if e.target is not None else ()) + e.args
    if isinstance(e, Unary):
        return (e.operand,)
    if isinstance(e, Binary):
        return (e.left, e.right)
    if isinstance(e, Conditional):
        return (e.cond, e.then, e.otherwise)
    if isinstance(e, ListLit):
        return tuple(el.value for el in e.elements)
    if isinstance(e, MapLit):
        return tuple(x for en in e.entries for x in (en.key, en.value))
    if isinstance(e, Struct):
        return tuple(f.value for f in e.fields)
    return ()


def line_col(source: str, offset: int) -> tuple[int, int]:
    """The 1-based line and column of an offset in the expression's source."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    start = source.rfind("\n", 0, offset) + 1
    return line, offset - start + 1
