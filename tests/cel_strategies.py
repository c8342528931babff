"""Hypothesis strategies for CEL trees (admission.engines.cel.syntax.ast): any tree the grammar can write
(`trees`), and trees of closed expressions that evaluate to values (`evaluable`); and `author_text`, the same
tree written as an author might (every operator parenthesised, other quotes, raw strings, hex numbers,
comments and line breaks), to read back and to compare with the printer's text under cel-cpp."""

from __future__ import annotations

import random

from hypothesis import strategies as st

from admission.engines.cel.syntax import ast as a

NAMES = st.sampled_from(["a", "b", "x", "_y", "object", "variables", "size", "has", "namespaces", "In", "nulls"])
FIELDS = st.sampled_from(["a", "spec", "namespace", "in", "true", "b-c", "x.y", "if", "_9"])
FUNCS = st.sampled_from(["f", "size", "has", "all", "map", "orValue", "contains"])
METHODS = st.sampled_from(["f", "size", "all", "map", "orValue", "contains", "if"])  # a reserved word names a method
TYPES = st.sampled_from(["T", "a.B", ".x.Y", "Object.spec"])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
BINARY_OPS = st.sampled_from(sorted(a.BINARY_PRECEDENCE))

literals = st.one_of(
    st.integers(-(2 ** 63), 2 ** 63 - 1).map(lambda v: a.Literal(a.INT, v)),
    st.integers(0, 2 ** 64 - 1).map(lambda v: a.Literal(a.UINT, v)),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: a.Literal(a.DOUBLE, v)),
    TEXT.map(lambda v: a.Literal(a.STRING, v)),
    st.binary(max_size=6).map(lambda v: a.Literal(a.BYTES, v)),
    st.booleans().map(lambda v: a.Literal(a.BOOL, v)),
    st.just(a.Literal(a.NULL, None)),
)
leaves = st.one_of(literals, st.builds(a.Ident, NAMES, st.booleans()))


def _extend(inner: st.SearchStrategy[a.Expr]) -> st.SearchStrategy[a.Expr]:
    small = st.lists(inner, max_size=3).map(tuple)
    return st.one_of(
        st.builds(a.Select, inner, FIELDS, st.booleans()),
        st.builds(a.Index, inner, inner, st.booleans()),
        st.builds(a.Call, FUNCS, small),
        st.builds(a.Call, METHODS, small, inner),
        st.builds(lambda f, args: a.Call(f, args, None, True), FUNCS, small),
        st.builds(a.Unary, st.sampled_from(["!", "-"]), inner),
        st.builds(a.Binary, BINARY_OPS, inner, inner),
        st.builds(a.Conditional, inner, inner, inner),
        st.lists(st.builds(a.Element, inner, st.booleans()), max_size=3).map(lambda xs: a.ListLit(tuple(xs))),
        st.lists(st.builds(a.Entry, inner, inner, st.booleans()), max_size=3).map(lambda xs: a.MapLit(tuple(xs))),
        st.builds(lambda t, fs: a.Struct(t, tuple(fs)), TYPES,
                  st.lists(st.builds(a.FieldInit, FIELDS, inner, st.booleans()), max_size=3)),
    )


trees = st.recursive(leaves, _extend, max_leaves=12)


# -- closed expressions that evaluate (most of the time: division by zero, overflow and the like are errors,
# which the differential test compares too) ---------------------------------------------------------------------

_ints = st.integers(-20, 20).map(lambda v: a.Literal(a.INT, v))
_strings = st.text(st.characters(blacklist_categories=("Cs",)), max_size=5).map(lambda v: a.Literal(a.STRING, v))
_bools = st.booleans().map(lambda v: a.Literal(a.BOOL, v))


def _int_ops(inner: st.SearchStrategy[a.Expr]) -> st.SearchStrategy[a.Expr]:
    return st.one_of(
        st.builds(a.Binary, st.sampled_from(["+", "-", "*", "/", "%"]), inner, inner),
        st.builds(a.Unary, st.just("-"), inner),
        st.builds(lambda s: a.Call("size", (s,)), _strings),
        st.builds(lambda c, x, y: a.Conditional(c, x, y), st.deferred(lambda: _bool_exprs), inner, inner),
        st.builds(lambda xs, i: a.Index(a.ListLit(tuple(a.Element(x) for x in xs)), a.Literal(a.INT, i)),
                  st.lists(inner, min_size=1, max_size=3), st.integers(0, 3)),
        st.builds(lambda x, d: a.Call("orValue", (d,), a.Index(a.MapLit((a.Entry(a.Literal(a.STRING, "k"), x),)),
                                                                 a.Literal(a.STRING, "k"), True)), inner, inner),
    )


_int_exprs = st.recursive(_ints, _int_ops, max_leaves=6)
_bool_exprs = st.recursive(_bools, lambda inner: st.one_of(
    st.builds(a.Binary, st.sampled_from(["&&", "||", "==", "!="]), inner, inner),
    st.builds(a.Unary, st.just("!"), inner),
    st.builds(a.Binary, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), _ints, _ints),
    st.builds(lambda x, xs: a.Binary("in", x, a.ListLit(tuple(a.Element(y) for y in xs))), _ints,
              st.lists(_ints, max_size=3)),
    st.builds(lambda k: a.Call("has", (a.Select(a.MapLit((a.Entry(a.Literal(a.STRING, "a"), k),)), "a"),)), _ints),
), max_leaves=5)
_string_exprs = st.recursive(_strings, lambda inner: st.one_of(
    st.builds(a.Binary, st.just("+"), inner, inner),
    st.builds(lambda i: a.Call("string", (i,)), _int_exprs),
    st.builds(lambda s, t: a.Call("startsWith", (t,), s), inner, _strings).map(
        lambda c: a.Conditional(c, a.Literal(a.STRING, "y"), a.Literal(a.STRING, "n"))),
), max_leaves=4)
evaluable = st.one_of(
    _int_exprs, _bool_exprs, _string_exprs,
    st.lists(st.one_of(_int_exprs, _string_exprs), max_size=3).map(lambda xs: a.ListLit(tuple(a.Element(x) for x in xs))),
    st.builds(lambda k, v: a.MapLit((a.Entry(k, v),)), _strings, _int_exprs),
    st.builds(lambda xs, body: a.Call("map", (a.Ident("v"), a.Binary("+", a.Ident("v"), body)),
                                      a.ListLit(tuple(a.Element(x) for x in xs))), st.lists(_ints, max_size=3), _ints),
)


# -- the same tree as an author might write it -----------------------------------------------------------------


def author_text(e: a.Expr, seed: int) -> str:
    """Source for e, spelled differently from the printer's: every operator in parentheses, strings in single,
    double, triple or raw quotes, ints in hex, spaces, comments and line breaks between tokens."""
    rng = random.Random(seed)
    return _Author(rng).expr(e)


class _Author:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def gap(self) -> str:
        return self.rng.choice(["", " ", "  ", "\n", " // note\n", "\t"])

    def expr(self, e: a.Expr) -> str:
        g = self.gap
        if isinstance(e, a.Literal):
            return self.literal(e)
        if isinstance(e, a.Ident):
            return ("." if e.absolute else "") + e.name
        if isinstance(e, a.Select):
            return f"({self.expr(e.operand)}){g()}.{'?' if e.optional else ''}{_field(e.field)}"
        if isinstance(e, a.Index):
            return f"({self.expr(e.operand)})[{'?' if e.optional else ''}{g()}{self.expr(e.index)}{g()}]"
        if isinstance(e, a.Call):
            args = f",{g()}".join(self.expr(x) for x in e.args)
            head = f"({self.expr(e.target)}){g()}." if e.target is not None else "." if e.absolute else ""
            return f"{head}{e.function}({g()}{args}{g()})"
        if isinstance(e, a.Unary):
            return f"{e.op}{g()}({self.expr(e.operand)})"
        if isinstance(e, a.Binary):
            return f"({self.expr(e.left)}){g()}{e.op}{g() or ' '}({self.expr(e.right)})"
        if isinstance(e, a.Conditional):
            return f"({self.expr(e.cond)}){g()}?{g()}({self.expr(e.then)}){g()}:{g()}({self.expr(e.otherwise)})"
        comma = "," if self.rng.random() < 0.3 else ""
        if isinstance(e, a.ListLit):
            items = ", ".join(("?" if x.optional else "") + self.expr(x.value) for x in e.elements)
            return f"[{g()}{items}{comma if items else ''}{g()}]"
        if isinstance(e, a.MapLit):
            items = ", ".join(f"{'?' if x.optional else ''}{self.expr(x.key)}{g()}:{g()}{self.expr(x.value)}"
                              for x in e.entries)
            return f"{{{g()}{items}{comma if items else ''}{g()}}}"
        assert isinstance(e, a.Struct)
        items = ", ".join(f"{'?' if f.optional else ''}{_field(f.name)}:{g()}{self.expr(f.value)}" for f in e.fields)
        return f"{e.type_name}{{{items}{comma if items else ''}}}"

    def literal(self, e: a.Literal) -> str:
        v = e.value
        if e.kind == a.INT and isinstance(v, int):
            if v >= 0 and self.rng.random() < 0.3:
                return hex(v)
            return str(v)
        if e.kind == a.UINT:
            return (hex(v) if self.rng.random() < 0.3 else str(v)) + self.rng.choice("uU")  # type: ignore[arg-type]
        if e.kind == a.DOUBLE:
            return repr(v)
        if e.kind == a.BOOL:
            return "true" if v else "false"
        if e.kind == a.NULL:
            return "null"
        if e.kind == a.STRING and isinstance(v, str):
            return self.string(v)
        assert isinstance(v, bytes)
        return "b" + self.string("".join(chr(b) for b in v), as_bytes=True)

    def string(self, s: str, as_bytes: bool = False) -> str:
        choice = self.rng.randrange(4)
        plain = all(c.isprintable() and c not in "\\'\"" and (not as_bytes or ord(c) < 0x80) for c in s)
        if choice == 0 and plain:
            return self.rng.choice(["r", "R"]) + _raw(s, self.rng)
        quote = self.rng.choice(["'", '"', "'''", '"""'])
        body = "".join(_escape(c, as_bytes, self.rng) for c in s)
        return quote + body + quote


def _raw(s: str, rng: random.Random) -> str:
    q = rng.choice(["'", '"', "'''", '"""'])
    return q + s + q


def _escape(c: str, as_bytes: bool, rng: random.Random) -> str:
    code = ord(c)
    if as_bytes:
        if 0x20 <= code < 0x7F and c not in "\\'\"":
            return c
        return rng.choice([f"\\x{code:02x}", f"\\X{code:02X}", f"\\{code:03o}"])
    if c in "\\'\"":
        return "\\" + c
    if c.isprintable() and rng.random() < 0.5:
        return c
    if code < 0x100 and rng.random() < 0.5:
        return rng.choice([f"\\x{code:02x}", f"\\{code:03o}"])
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _field(name: str) -> str:
    return name if name.isascii() and name.isidentifier() and name not in ("in", "true", "false", "null") else f"`{name}`"
