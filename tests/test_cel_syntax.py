"""The CEL front end (admission.engines.cel.syntax): the parser on every literal form, operator and the optional
syntax; syntax errors with their line and column; the printer's round trip on the conformance suites'
expressions and on generated trees; and, with cel-cpp as the oracle, that the printed source means what the
source it was parsed from means."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admission.engines.cel import LoadError, compile_expression
from admission.engines.cel.expr import KUBERNETES_VARIABLES, default_libraries, environment
from admission.engines.cel.syntax import CelSyntaxError, parse, print_expr, syntax_problem
from admission.engines.cel.syntax import ast as a
from tests.cel_corpus import conformance_expressions, own_expressions
from tests.cel_strategies import author_text, evaluable, trees


def lit(kind: str, value: Any) -> a.Literal:
    return a.Literal(kind, value)


# -- literals -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("0", a.INT, 0), ("42", a.INT, 42), ("0x1F", a.INT, 31), ("-0x10", a.INT, -16),
    ("-9223372036854775808", a.INT, -(2 ** 63)), ("9223372036854775807", a.INT, 2 ** 63 - 1),
    ("1u", a.UINT, 1), ("0xFFu", a.UINT, 255), ("18446744073709551615U", a.UINT, 2 ** 64 - 1),
    ("1.5", a.DOUBLE, 1.5), ("1e3", a.DOUBLE, 1000.0), ("2.5E-2", a.DOUBLE, 0.025), (".5", a.DOUBLE, 0.5),
    ("-1.5e+2", a.DOUBLE, -150.0),
    ('"a\\"b"', a.STRING, 'a"b'), ("'it''s'", None, None), ("'x\\n\\t'", a.STRING, "x\n\t"),
    ('"""two\nlines"""', a.STRING, "two\nlines"), ("'''it's'''", a.STRING, "it's"),
    ('r"\\d+"', a.STRING, "\\d+"), ("R'\\n'", a.STRING, "\\n"), ('r"""a\\"""', a.STRING, "a\\"),
    ('"\\u00e9\\U0001F600"', a.STRING, "é😀"), ('"\\x41\\101\\a\\v\\?\\`"', a.STRING, "AA\a\v?`"),
    ('b"abc"', a.BYTES, b"abc"), ('b"\\xff\\377"', a.BYTES, b"\xff\xff"), ('B"ÿ"', a.BYTES, "ÿ".encode()),
    ("br'\\x'", a.BYTES, b"\\x"), ("true", a.BOOL, True), ("false", a.BOOL, False), ("null", a.NULL, None),
])
def test_literals(text: str, kind: str | None, value: Any) -> None:
    if kind is None:  # two adjacent strings are not one
        with pytest.raises(CelSyntaxError):
            parse(text)
        return
    tree = parse(text)
    assert tree == lit(kind, value) and type(tree.value) is type(value)  # type: ignore[union-attr]


@pytest.mark.parametrize("text", ["9223372036854775808", "18446744073709551616u", "1e999", '"\\q"', '"\\uD800"',
                                  "b'\\u00e9'", '"\\x4"', '"\\400"', '"open', "'''open", 'r"a\nb"', '"a\nb"'])
def test_bad_literals_are_syntax_errors(text: str) -> None:
    with pytest.raises(CelSyntaxError):
        parse(text)


# -- operators and members ------------------------------------------------------------------------------------


def test_precedence_and_associativity() -> None:
    x, y, z = a.Ident("x"), a.Ident("y"), a.Ident("z")
    assert parse("x || y && z") == a.Binary("||", x, a.Binary("&&", y, z))
    assert parse("x - y - z") == a.Binary("-", a.Binary("-", x, y), z)
    assert parse("x + y * z") == a.Binary("+", x, a.Binary("*", y, z))
    assert parse("x in y == z") == a.Binary("==", a.Binary("in", x, y), z)
    assert parse("x ? y : z ? x : y") == a.Conditional(x, y, a.Conditional(z, x, y))
    assert parse("!!x") == a.Unary("!", a.Unary("!", x))
    assert parse("-x.y") == a.Unary("-", a.Select(x, "y"))
    assert parse("- 1") == lit(a.INT, -1) and parse("--1") == a.Unary("-", lit(a.INT, -1))
    assert parse("x-1") == a.Binary("-", x, lit(a.INT, 1))
    with pytest.raises(CelSyntaxError):
        parse("x ? y ? z : x : y")  # the middle of a conditional is no conditional (cel's grammar)
    with pytest.raises(CelSyntaxError):
        parse("!-x")


def test_members_calls_and_the_optional_syntax() -> None:
    x = a.Ident("x")
    assert parse("x.?y[?0].orValue(1)") == a.Call("orValue", (lit(a.INT, 1),), a.Index(
        a.Select(x, "y", optional=True), lit(a.INT, 0), optional=True))
    assert parse("[?x, 1,]") == a.ListLit((a.Element(x, True), a.Element(lit(a.INT, 1))))
    assert parse("{?'k': x}") == a.MapLit((a.Entry(lit(a.STRING, "k"), x, True),))
    assert parse(".f(x)") == a.Call("f", (x,), None, absolute=True)
    assert parse(".x.y") == a.Select(a.Ident("x", absolute=True), "y")
    assert parse("object.metadata.namespace") == a.Select(a.Select(a.Ident("object"), "metadata"), "namespace")
    assert parse("x.`b-c`") == a.Select(x, "b-c")
    assert parse("Object{spec: Object.spec{?replicas: 3}}") == a.Struct("Object", (a.FieldInit(
        "spec", a.Struct("Object.spec", (a.FieldInit("replicas", lit(a.INT, 3), True),))),))
    assert parse("x.all(c, c > 0) // comment") == a.Call("all", (a.Ident("c"), a.Binary(">", a.Ident("c"),
                                                                                      lit(a.INT, 0))), x)


@pytest.mark.parametrize(("text", "where"), [
    ("object.spec +", "1:14: Syntax error"), ("a &&\n  (b ||", "2:8: Syntax error"), ("x = 1", "1:3:"),
    ("if(x)", "1:1: Syntax error: reserved identifier: if"), ("f(x,)", "1:5:"), ("a.b.", "1:5:"),
    ("[1, 2", "1:6:"), ("a # b", "1:3:"), ("", "1:1:"), ("x.?f()", "1:5:"),
])
def test_syntax_errors_name_the_line_and_column_inside_the_expression(text: str, where: str) -> None:
    with pytest.raises(CelSyntaxError) as info:
        parse(text)
    assert syntax_problem(text, info.value).startswith(where)


def test_a_syntax_error_is_a_load_error_with_file_line_and_the_column_in_the_expression() -> None:
    with pytest.raises(LoadError, match=r"^p\.yaml:9: has\(a\) && \(b: 1:13: Syntax error"):
        compile_expression("has(a) && (b", where="p.yaml:9")


def test_problems_cel_cpp_finds_are_placed_in_what_the_author_wrote() -> None:
    # printed as `1 + obj.x`: cel-cpp's column is in the printed text, the error's in the author's
    with pytest.raises(LoadError, match=r": 2:4: undeclared reference to 'obj\.x'"):
        compile_expression("(1) +\n   obj.x", where="p.yaml:1")


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(CelSyntaxError, match="nested"):
        parse("(" * 500 + "1" + ")" * 500)


# -- round trips -----------------------------------------------------------------------------------------------


def _round_trip(text: str) -> None:
    tree = parse(text)
    printed = print_expr(tree)
    assert parse(printed) == tree, printed
    assert print_expr(parse(printed)) == printed


def test_every_conformance_expression_round_trips() -> None:
    sources = conformance_expressions()
    if not sources:
        pytest.skip("the conformance suites are not checked out beside the repository (../shared/conformance)")
    assert len(sources) > 300
    for source in sources:
        _round_trip(source.text)


def test_every_expression_of_our_policies_and_tests_round_trips() -> None:
    for source in own_expressions():
        _round_trip(source.text)


def test_cel_cpp_compiles_the_printed_conformance_expressions_as_it_compiles_them_as_written() -> None:
    sources = conformance_expressions()
    if not sources:
        pytest.skip("the conformance suites are not checked out beside the repository (../shared/conformance)")
    from admission.engines.cel.kyverno_eval import libraries

    env = environment((*KUBERNETES_VARIABLES, "generator"), libraries())
    for source in sources:
        printed = print_expr(parse(source.text))
        assert _compiles(env, source.text) == _compiles(env, printed), (source.name, printed)


def _compiles(env: Any, text: str) -> bool:
    try:
        env.compile(text)
    except RuntimeError:
        return False
    return True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_parse_of_print_is_the_identity(tree: a.Expr) -> None:
    assert parse(print_expr(tree)) == tree


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees, st.integers(0, 2 ** 32))
def test_author_spellings_parse_to_the_same_tree(tree: a.Expr, seed: int) -> None:
    assert parse(author_text(tree, seed)) == tree


def _outcome(env: Any, text: str) -> tuple[str, Any]:
    from cel_expr_python import cel

    try:
        program = env.compile(text)
    except RuntimeError:
        return ("compile error", None)
    try:
        value = program.eval(env.Activation({}))
    except RuntimeError as e:
        return ("error", str(e))
    if value.type() == cel.Type.ERROR:
        return ("error", str(value.value()))
    return (str(value.type()), repr(value.plain_value()))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evaluable, st.integers(0, 2 ** 32))
def test_cel_cpp_evaluates_the_printed_source_as_the_source_it_was_parsed_from(tree: a.Expr, seed: int) -> None:
    env = environment(KUBERNETES_VARIABLES, default_libraries())
    written = author_text(tree, seed)
    assert parse(written) == tree
    assert _outcome(env, print_expr(tree)) == _outcome(env, written), written
