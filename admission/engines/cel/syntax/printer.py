"""An AST back to CEL source that cel-cpp (and cel-go) read as the same tree: parentheses only where
precedence needs them, strings double quoted with escapes, and each node's place in the printed text recorded
(`Printed.origin`) so that a problem cel-cpp reports at a column of the printed source can be reported at the
column of what the author wrote.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from admission.engines.cel.syntax import ast as a
from admission.engines.cel.syntax.lexer import KEYWORDS

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b",
            "\f": "\\f", "\v": "\\v"}


@dataclass(frozen=True)
class Printed:
    """Printed source, and for each node that came from parsed source: (offset in the printed text, offset in
    the source), in printed order."""

    text: str
    spans: tuple[tuple[int, int], ...] = ()

    def origin(self, offset: int) -> int:
        """The source offset of the node printed at or just before `offset` of the printed text (-1: none)."""
        i = bisect_right(self.spans, (offset, 1 << 62)) - 1
        return self.spans[i][1] if i >= 0 else -1


def print_expr(e: a.Expr) -> str:
    """CEL source for the tree (parse(print_expr(e)) == e)."""
    return _Printer().run(e).text


def print_with_spans(e: a.Expr) -> Printed:
    return _Printer().run(e)


class _Printer:
    __slots__ = ("out", "length", "spans")

    def __init__(self) -> None:
        self.out: list[str] = []
        self.length = 0
        self.spans: list[tuple[int, int]] = []

    def run(self, e: a.Expr) -> Printed:
        self.expr(e)
        return Printed("".join(self.out), tuple(self.spans))

    def w(self, text: str) -> None:
        self.out.append(text)
        self.length += len(text)

    def sub(self, e: a.Expr, parens: bool) -> None:
        if parens:
            self.w("(")
            self.expr(e)
            self.w(")")
        else:
            self.expr(e)

    def operand(self, e: a.Expr) -> None:
        """The operand of a selection, index or member call: a member-level expression."""
        self.sub(e, a.precedence(e) < a.MEMBER)

    def expr(self, e: a.Expr) -> None:
        if e.pos >= 0:
            self.spans.append((self.length, e.pos))
        if isinstance(e, a.Literal):
            self.w(literal(e))
        elif isinstance(e, a.Ident):
            self.w("." + e.name if e.absolute else e.name)
        elif isinstance(e, a.Select):
            self.operand(e.operand)
            self.w((".?" if e.optional else ".") + field_name(e.field))
        elif isinstance(e, a.Index):
            self.operand(e.operand)
            self.w("[?" if e.optional else "[")
            self.expr(e.index)
            self.w("]")
        elif isinstance(e, a.Call):
            if e.target is not None:
                self.operand(e.target)
                self.w(".")
            elif e.absolute:
                self.w(".")
            self.w(e.function + "(")
            self.join(e.args)
            self.w(")")
        elif isinstance(e, a.Unary):
            self.unary(e)
        elif isinstance(e, a.Binary):
            prec = a.BINARY_PRECEDENCE[e.op]
            self.sub(e.left, a.precedence(e.left) < prec)
            self.w(f" {e.op} ")
            self.sub(e.right, a.precedence(e.right) <= prec)
        elif isinstance(e, a.Conditional):
            self.sub(e.cond, isinstance(e.cond, a.Conditional))
            self.w(" ? ")
            self.sub(e.then, isinstance(e.then, a.Conditional))
            self.w(" : ")
            self.expr(e.otherwise)
        elif isinstance(e, a.ListLit):
            self.w("[")
            for i, el in enumerate(e.elements):
                self.w(", ?" if i and el.optional else ", " if i else "?" if el.optional else "")
                self.expr(el.value)
            self.w("]")
        elif isinstance(e, a.MapLit):
            self.w("{")
            for i, en in enumerate(e.entries):
                self.w(", ?" if i and en.optional else ", " if i else "?" if en.optional else "")
                self.expr(en.key)
                self.w(": ")
                self.expr(en.value)
            self.w("}")
        elif isinstance(e, a.Struct):
            self.w(e.type_name + "{")
            for i, f in enumerate(e.fields):
                self.w(", " if i else "")
                self.w(("?" if f.optional else "") + field_name(f.name) + ": ")
                self.expr(f.value)
            self.w("}")
        else:  # pragma: no cover - the Expr union is closed
            raise TypeError(f"not a CEL node: {e!r}")

    def unary(self, e: a.Unary) -> None:
        self.w(e.op)
        inner = e.operand
        if isinstance(inner, a.Unary) and inner.op == e.op:
            self.expr(inner)  # `!!x`, `--x`
        elif e.op == "-" and _starts_with_number(inner):
            self.sub(inner, True)  # `-(1)`, `-(1.f)`: `-1` is a literal of its own
        else:
            self.operand(inner)

    def join(self, items: tuple[a.Expr, ...]) -> None:
        for i, x in enumerate(items):
            if i:
                self.w(", ")
            self.expr(x)


def _starts_with_number(e: a.Expr) -> bool:
    """Whether e prints starting with a number that is not negative (so that a `-` before it would be read as
    the number's sign)."""
    while True:
        if isinstance(e, (a.Select, a.Index)):
            e = e.operand
        elif isinstance(e, a.Call) and e.target is not None:
            e = e.target
        else:
            break
    return isinstance(e, a.Literal) and e.kind in (a.INT, a.DOUBLE) and not _negative(e)


def _negative(lit: a.Literal) -> bool:
    v = lit.value
    return isinstance(v, (int, float)) and (v < 0 or (v == 0 and str(v).startswith("-")))


def field_name(name: str) -> str:
    """A field name as written after `.` or in a message literal (backquoted unless a plain identifier)."""
    return name if name.isascii() and name.isidentifier() and name not in KEYWORDS else f"`{name}`"


def literal(e: a.Literal) -> str:
    v = e.value
    if e.kind == a.INT:
        return str(v)
    if e.kind == a.UINT:
        return f"{v!s}u"
    if e.kind == a.DOUBLE:
        return repr(float(v))  # type: ignore[arg-type]
    if e.kind == a.BOOL:
        return "true" if v else "false"
    if e.kind == a.NULL:
        return "null"
    if e.kind == a.STRING:
        return quote(str(v))
    assert isinstance(v, bytes)
    return 'b"' + "".join(chr(b) if 0x20 <= b < 0x7F and chr(b) not in '\\"' else
                          _ESCAPES.get(chr(b), f"\\x{b:02x}") for b in v) + '"'


def quote(s: str) -> str:
    """A string literal for s, double quoted."""
    return '"' + "".join(_ESCAPES.get(c, c if c >= " " and c != "\x7f" else f"\\x{ord(c):02x}") for c in s) + '"'
