"""A recursive-descent parser for CEL's grammar (cel-spec langdef "Syntax", with the optional syntax and the
backquoted field names of cel-go's and cel-cpp's grammar):

    Expr           = ConditionalOr ["?" ConditionalOr ":" Expr]
    ConditionalOr  = [ConditionalOr "||"] ConditionalAnd
    ConditionalAnd = [ConditionalAnd "&&"] Relation
    Relation       = [Relation Relop] Addition            Relop = < <= >= > == != in
    Addition       = [Addition ("+" | "-")] Multiplication
    Multiplication = [Multiplication ("*" | "/" | "%")] Unary
    Unary          = Member | "!" {"!"} Member | "-" {"-"} Member
    Member         = Primary | Member "." ["?"] SELECTOR | Member "." IDENT "(" [ExprList] ")"
                   | Member "[" ["?"] Expr "]"
    Primary        = ["."] IDENT ["(" [ExprList] ")"] | "(" Expr ")"
                   | "[" [ListInits] [","] "]" | "{" [MapInits] [","] "}"
                   | ["."] IDENT {"." IDENT} "{" [FieldInits] [","] "}" | ["-"] LITERAL

The binary levels are parsed by precedence climbing (one loop for all of them). A reserved word is not an
identifier (it may name a field: `object.metadata.namespace`). Errors are CelSyntaxError with the offset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from admission.engines.cel.syntax import ast as a
from admission.engines.cel.syntax.lexer import (
    BYTES,
    DOUBLE,
    EOF,
    ESC_IDENT,
    IDENT,
    INT,
    RESERVED,
    STRING,
    UINT,
    CelSyntaxError,
    Token,
    string_value,
    tokenize,
)

MAX_DEPTH = 100  # nested expressions (in parentheses, arguments, literals); cel-spec asks for 32 at least
T = TypeVar("T")
_INT_MIN, _INT_MAX, _UINT_MAX = -(2 ** 63), 2 ** 63 - 1, 2 ** 64 - 1


def parse(source: str) -> a.Expr:
    """The AST of one CEL expression. Raises CelSyntaxError (with the offset of the problem)."""
    parser = _Parser(source)
    try:
        return parser.parse()
    except RecursionError:  # MAX_DEPTH keeps well below Python's limit; this is the backstop
        raise CelSyntaxError(parser.toks[min(parser.i, len(parser.toks) - 1)].pos,
                             "Syntax error: expression nested too deeply") from None


class _Parser:
    __slots__ = ("toks", "i", "depth")

    def __init__(self, source: str) -> None:
        self.toks = tokenize(source)
        self.i = 0
        self.depth = 0

    def parse(self) -> a.Expr:
        if self.toks[0].kind == EOF:
            raise CelSyntaxError(0, "Syntax error: an expression is required")
        e = self.expr()
        t = self.toks[self.i]
        if t.kind != EOF:
            raise self.error(t, "extraneous input")
        return e

    # -- helpers ----------------------------------------------------------------------------------------------

    def error(self, t: Token, problem: str) -> CelSyntaxError:
        shown = "<EOF>" if t.kind == EOF else t.text
        return CelSyntaxError(t.pos, f"Syntax error: {problem} '{shown}'")

    def take(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def expect(self, kind: str) -> Token:
        t = self.toks[self.i]
        if t.kind != kind:
            raise self.error(t, f"expected '{kind}', found")
        self.i += 1
        return t

    # -- expressions ------------------------------------------------------------------------------------------

    def expr(self) -> a.Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise CelSyntaxError(self.toks[self.i].pos, f"Syntax error: expression nested more than {MAX_DEPTH} "
                                                         "levels deep")
        cond = self.binary(2)
        t = self.toks[self.i]
        if t.kind == "?":
            self.i += 1
            then = self.binary(2)
            self.expect(":")
            cond = a.Conditional(cond, then, self.expr(), pos=t.pos)
        self.depth -= 1
        return cond

    def binary(self, min_prec: int) -> a.Expr:
        left = self.unary()
        prec_of = a.BINARY_PRECEDENCE
        while True:
            t = self.toks[self.i]
            prec = prec_of.get(t.kind)
            if prec is None or prec < min_prec:
                return left
            self.i += 1
            left = a.Binary(t.kind, left, self.binary(prec + 1), pos=t.pos)

    def unary(self) -> a.Expr:
        t = self.toks[self.i]
        if t.kind not in ("!", "-"):
            return self.member()
        ops: list[Token] = []
        while True:
            u = self.toks[self.i]
            if u.kind != t.kind or (u.kind == "-" and self.toks[self.i + 1].kind in (INT, DOUBLE)):
                break  # `-1` is a negative literal
            ops.append(u)
            self.i += 1
        e = self.member()
        for op in reversed(ops):
            e = a.Unary(op.kind, e, pos=op.pos)
        return e

    def member(self) -> a.Expr:
        e = self.primary()
        toks = self.toks
        while True:
            t = toks[self.i]
            if t.kind == ".":
                self.i += 1
                optional = toks[self.i].kind == "?"
                if optional:
                    self.i += 1
                name = self.take()
                if name.kind == IDENT and not optional and toks[self.i].kind == "(":
                    self.i += 1
                    e = a.Call(name.text, self.args(), e, pos=name.pos)
                elif name.kind in (IDENT, ESC_IDENT):
                    e = a.Select(e, _field_name(name), optional, pos=name.pos)
                else:
                    raise self.error(name, "expected a field name after '.', found")
            elif t.kind == "[":
                self.i += 1
                optional = toks[self.i].kind == "?"
                if optional:
                    self.i += 1
                index = self.expr()
                self.expect("]")
                e = a.Index(e, index, optional, pos=t.pos)
            else:
                return e

    def primary(self) -> a.Expr:
        t = self.take()
        k = t.kind
        if k in (INT, UINT, DOUBLE):
            return _number(t, False, t.pos)
        if k == "-" and self.toks[self.i].kind in (INT, DOUBLE):
            return _number(self.take(), True, t.pos)
        if k in (STRING, BYTES):
            return a.Literal(a.STRING if k == STRING else a.BYTES, string_value(t), pos=t.pos)
        if k in ("true", "false"):
            return a.Literal(a.BOOL, k == "true", pos=t.pos)
        if k == "null":
            return a.Literal(a.NULL, None, pos=t.pos)
        if k == IDENT:
            return self.name(t, False, t.pos)
        if k == "." and self.toks[self.i].kind == IDENT:
            return self.name(self.take(), True, t.pos)
        if k == "(":
            e = self.expr()
            self.expect(")")
            return e
        if k == "[":
            return a.ListLit(tuple(self.items("]", self.element)), pos=t.pos)
        if k == "{":
            return a.MapLit(tuple(self.items("}", self.entry)), pos=t.pos)
        raise self.error(t, "mismatched input")

    def name(self, t: Token, absolute: bool, pos: int) -> a.Expr:
        """An identifier, a global call, or a message literal's type name."""
        if t.text in RESERVED:
            raise CelSyntaxError(t.pos, f"Syntax error: reserved identifier: {t.text}")
        toks = self.toks
        if toks[self.i].kind == "(":
            self.i += 1
            return a.Call(t.text, self.args(), None, absolute, pos=pos)
        j = self.i
        names = [t.text]
        while toks[j].kind == "." and toks[j + 1].kind == IDENT:
            names.append(toks[j + 1].text)
            j += 2
        if toks[j].kind == "{":
            self.i = j + 1
            return a.Struct("." * absolute + ".".join(names), tuple(self.items("}", self.field_init)), pos=pos)
        return a.Ident(t.text, absolute, pos=pos)

    def args(self) -> tuple[a.Expr, ...]:
        """Call arguments after `(`, through `)`."""
        if self.toks[self.i].kind == ")":
            self.i += 1
            return ()
        out = [self.expr()]
        while self.toks[self.i].kind == ",":
            self.i += 1
            out.append(self.expr())
        self.expect(")")
        return tuple(out)

    def items(self, close: str, item: Callable[[], T]) -> list[T]:
        """Comma-separated items (a trailing comma allowed) after an opening bracket, through `close`."""
        out: list[T] = []
        toks = self.toks
        while toks[self.i].kind != close:
            out.append(item())
            if toks[self.i].kind == ",":
                self.i += 1
            elif toks[self.i].kind != close:
                raise self.error(toks[self.i], f"expected ',' or '{close}', found")
        self.i += 1
        return out

    def optional(self) -> bool:
        if self.toks[self.i].kind == "?":
            self.i += 1
            return True
        return False

    def element(self) -> a.Element:
        optional = self.optional()
        return a.Element(self.expr(), optional)

    def entry(self) -> a.Entry:
        optional = self.optional()
        key = self.expr()
        self.expect(":")
        return a.Entry(key, self.expr(), optional)

    def field_init(self) -> a.FieldInit:
        optional = self.optional()
        name = self.take()
        if name.kind not in (IDENT, ESC_IDENT):
            raise self.error(name, "expected a field name, found")
        self.expect(":")
        return a.FieldInit(_field_name(name), self.expr(), optional)


def _field_name(t: Token) -> str:
    return t.text[1:-1] if t.kind == ESC_IDENT else t.text


def _number(t: Token, negative: bool, pos: int) -> a.Literal:
    text = t.text
    if t.kind == DOUBLE:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise CelSyntaxError(pos, f"Syntax error: invalid double literal {text}")
        return a.Literal(a.DOUBLE, -value if negative else value, pos=pos)
    digits = text[:-1] if t.kind == UINT else text
    number = int(digits[2:], 16) if digits.startswith("0x") else int(digits)
    if t.kind == UINT:
        if number > _UINT_MAX:
            raise CelSyntaxError(pos, f"Syntax error: invalid uint literal {text}")
        return a.Literal(a.UINT, number, pos=pos)
    number = -number if negative else number
    if not _INT_MIN <= number <= _INT_MAX:
        raise CelSyntaxError(pos, f"Syntax error: invalid int literal {'-' * negative}{text}")
    return a.Literal(a.INT, number, pos=pos)
