"""The Rego parser: every module of the Gatekeeper library, our policies and OPA's cases; the AST it gives for
the constructs that broke the token heuristics (issue 9); precedence; keywords in v0 and v1; errors with
file:line:col, also for Rego inside a ConstraintTemplate's YAML."""

from __future__ import annotations

from pathlib import Path

import pytest

from admission.engines.rego import ast
from admission.engines.rego.gatekeeper import parse_template
from admission.engines.rego.parser import RegoSyntaxError, parse_module, parse_query, parse_term
from admission.engines.rego.yamlpos import literal_block_origin
from admission.manifests import load_text
from tests.rego_corpus import gatekeeper_modules, opa_cases, policy_modules
from tests.rego_strategies import INPUT, OP, C, E, R, S, V


def _skip_if_absent(items: list | tuple) -> None:
    if not items:
        pytest.skip("external conformance suites not found at ../shared/conformance (not part of a fresh clone)")


def test_every_gatekeeper_library_module_parses_as_v0() -> None:
    sources = gatekeeper_modules()
    _skip_if_absent(sources)
    assert len(sources) >= 60
    for s in sources:
        module = parse_module(s.text, file=s.name)
        assert module.rules, s.name
        if any(r.body and not r.if_ for r in module.rules):
            assert not module.v1, s.name


def test_our_policies_parse() -> None:
    sources = policy_modules()
    assert sources
    for s in sources:
        assert parse_module(s.text, file=s.name).rules


def test_every_opa_case_module_query_and_input_term_parses() -> None:
    cases = opa_cases()
    _skip_if_absent(cases)
    modules = queries = templates = 0
    for case in cases:
        for text in case.modules:
            parse_module(text, file=f"{case.file.name}: {case.note}")
            modules += 1
            templates += '$"' in text or "$`" in text
        if case.query:
            assert parse_query(case.query)
            queries += 1
        if case.input_term:
            parse_term(case.input_term)
    assert modules > 1400 and queries > 1000
    assert templates > 40  # OPA 1.12's string interpolation, in both spellings


def test_opa_v1_cases_are_read_as_v1() -> None:
    cases = opa_cases()
    _skip_if_absent(cases)
    v1 = [parse_module(m).v1 for c in cases for m in c.modules if "$" not in m and " if " in m]
    assert v1 and all(v1)


# ------------------------------------------------------------------------------ issue 9 problem cases


def _rule(text: str, index: int = 0) -> ast.Rule:
    return parse_module(text).rules[index]


def test_comment_after_some_key_value_in() -> None:
    rule = _rule("package p\nimport future.keywords.in\ndeny[msg] {\n  some k, v in input.x  # a comment\n  v == 1\n  msg := k\n}\n")
    assert rule.body[0] == E(ast.SomeDecl((C(ast.MEMBER_3, V("k"), V("v"), INPUT("x")),)))
    assert rule.body[1] == E(OP("==", V("v"), S(1)))
    assert len(rule.body) == 3


def test_multi_line_every_header() -> None:
    rule = _rule("package p\nallow if {\n  every c in\n      input.containers {\n    c.ok\n  }\n}\n")
    (expr,) = rule.body
    assert expr.terms == ast.Every(None, V("c"), INPUT("containers"), (E(R("c", "ok")),))
    rule = _rule("package p\nallow if {\n  every k, v in input.labels\n  {\n    startswith(v, k)\n  }\n}\n")
    every = rule.body[0].terms
    assert isinstance(every, ast.Every) and every.key == V("k") and every.domain == INPUT("labels")


def test_a_package_split_over_two_files() -> None:
    a = parse_module("package lib.k8s\nname := input.review.object.metadata.name\n", file="a.rego")
    b = parse_module("package lib.k8s\nis_pod if input.review.kind.kind == \"Pod\"\n", file="b.rego")
    assert a.package == b.package == ast.Package(R("data", "lib", "k8s"))
    assert [r.head.name for r in a.rules + b.rules] == ["name", "is_pod"]


def test_self_qualified_call_and_ref() -> None:
    rule = _rule("package pkg\nf(x) := x + 1\np if { data.pkg.f(1) == 2; data.pkg.q[_] }\n", 1)
    assert rule.body[0].terms == OP("==", ast.Call(R("data", "pkg", "f"), (S(1),)), S(2))
    assert rule.body[1].terms == R("data", "pkg", "q", V("_"))


def test_an_expression_continued_on_the_next_line() -> None:
    text = "package p\nviolation[{\"msg\": msg}] {\n  count(input.x) >\n    3\n  msg := concat(\", \", [\n    \"a\",\n    \"b\",\n  ])\n}\n"
    rule = _rule(text)
    assert rule.body[0].terms == OP(">", C("count", INPUT("x")), S(3))
    assert rule.body[1].terms == OP(":=", V("msg"), C("concat", S(", "), ast.Array((S("a"), S("b")))))
    # an operator at the start of the next line continues the expression too, as in OPA
    body = parse_query("x := 1\n  + 2")
    assert body == (E(OP(":=", V("x"), OP("+", S(1), S(2)))),)


def test_with_modifiers() -> None:
    (expr,) = parse_query("data.p.allow with input as {\"a\": 1} with data.q.r as [1] with count as f")
    assert expr.terms == R("data", "p", "allow")
    assert expr.with_ == (
        ast.With(R("input"), ast.Object(((S("a"), S(1)),))),
        ast.With(R("data", "q", "r"), ast.Array((S(1),))),
        ast.With(R("count"), V("f")),
    )


def test_a_comprehension_stays_where_it_is_written() -> None:
    rule = _rule("package p\nimport rego.v1\ndeny contains m if {\n  some c in input.cs\n  bad := {k | some k in c.keys; not ok(k)}\n  count(bad) > 0\n  m := \"x\"\n}\n")
    compr = rule.body[1].terms.args[1]
    assert isinstance(compr, ast.SetCompr) and compr.body[0].terms == ast.SomeDecl((C(ast.MEMBER_2, V("k"), R("c", "keys")),))
    assert rule.body[1].terms.args[0] == V("bad")


# ------------------------------------------------------------------------------ grammar


@pytest.mark.parametrize(("text", "tree"), [
    ("1 + 2 * 3", OP("+", S(1), OP("*", S(2), S(3)))),
    ("1 - 2 - 3", OP("-", OP("-", S(1), S(2)), S(3))),
    ("a | b & c", OP("|", V("a"), OP("&", V("b"), V("c")))),
    ("a == b | c", OP("==", V("a"), OP("|", V("b"), V("c")))),
    ("a + 1 < b * 2", OP("<", OP("+", V("a"), S(1)), OP("*", V("b"), S(2)))),
    ("x in xs == y", C(ast.MEMBER_2, V("x"), OP("==", V("xs"), V("y")))),
    ("(1 + 2) * 3", OP("*", OP("+", S(1), S(2)), S(3))),
    ("x - -1", OP("-", V("x"), S(-1))),
    ("[1, 2][0]", R(ast.Array((S(1), S(2))), S(0))),
    ("f(x).y[0]", R(C("f", V("x")), "y", S(0))),
    ("regex.match(`a\\d`, s)", C("regex.match", S("a\\d"), V("s"))),
    ("set()", ast.Set(())),
    ("{1, \"a\"}", ast.Set((S(1), S("a")))),
    ("{}", ast.Object(())),
    ("\"\\u00e9\\n\\\"\"", S("é\n\"")),
    ("[x | x := 1]", ast.ArrayCompr(V("x"), (E(OP(":=", V("x"), S(1))),))),
    ("{k: v | some k, v in o}", ast.ObjectCompr(V("k"), V("v"), (E(ast.SomeDecl((C(ast.MEMBER_3, V("k"), V("v"), V("o")),))),))),
    ("1.5e3", S(1500.0)),
    ("true", S(True)),
])
def test_terms(text: str, tree: ast.Term) -> None:
    assert parse_term(text) == tree


def test_true_and_one_are_different_scalars() -> None:
    assert parse_term("true") != parse_term("1")
    assert parse_term("1") == parse_term("1.0")


def test_whitespace_ends_a_ref() -> None:
    body = parse_query("x := y\n[a] = z")
    assert body == (E(OP(":=", V("x"), V("y"))), E(OP("=", ast.Array((V("a"),)), V("z"))))


def test_keywords_in_v0_without_imports_are_names() -> None:
    module = parse_module("package p\nin := 1\nevery[x] { x := 2 }\nq { contains(\"ab\", \"a\") }\n")
    assert [r.head.name for r in module.rules] == ["in", "every", "q"]
    assert not module.v1
    with pytest.raises(RegoSyntaxError):
        parse_module("package p\nin := 1\n", v1=True)


def test_future_keyword_imports() -> None:
    module = parse_module("package p\nimport future.keywords.in\nimport future.keywords.if\np if { 1 in [1] }\n", v1=False)
    assert module.rules[0].body[0].terms == C(ast.MEMBER_2, S(1), ast.Array((S(1),)))
    with pytest.raises(RegoSyntaxError):
        parse_module("package p\np if { true }\n", v1=False)


def test_rule_heads() -> None:
    m = parse_module(
        "package p\n"
        "default allow := false\n"
        "s[x] { x := 1 }\n"
        "o[k] = v { k := \"a\"; v := 1 }\n"
        "a.b.c := 1\n"
        "f(x) = y { y := x } { y := 2 * x }\n"
        "g(\"a\", _)\n"
        "e = 1 { false } else = 2 { true } else := 3\n",
    )
    default, s, o, refhead, f1, f2, g, e = m.rules
    assert default.default and default.head.value == S(False) and default.head.assign
    assert s.head.key == V("x") and s.head.value is None and s.head.ref == R("s")
    assert o.head.key == V("k") and o.head.value == V("v")
    assert refhead.head.ref == R("a", "b", "c") and refhead.head.value == S(1) and refhead.body == ()
    assert f1.head == f2.head and f1.head.args == (V("x"),) and len(f2.body) == 1
    assert g.head.value == S(True) and g.head.args == (S("a"), V("_"))
    assert e.else_ is not None and e.else_.head.value == S(2) and e.else_.else_ is not None and e.else_.else_.head.value == S(3)
    v1 = parse_module("package p\nq contains x if some x in input.xs\nr[x] if x := input.k\nt.u[k] contains 1 if k := 2\n")
    q, r, t = v1.rules
    assert q.head.key == V("x") and q.head.value is None
    assert r.head.key == V("x") and r.head.value == S(True)  # v1: a single-value rule r[x] = true
    assert t.head.ref == R("t", "u", V("k")) and t.head.key == S(1)
    assert s.head == ast.Head(R("s"), key=V("x"), contains=True)  # `contains` is spelling only


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(("text", "line", "col", "fragment"), [
    ("package p\n\np {\n  x := 1\n", 5, 1, "expected `}` to close the rule body opened at 3:3"),
    ("package p\np := = 1\n", 2, 6, "unexpected `=`"),
    ("package p\np if { x := [1, 2 }\n", 2, 19, "in the array opened at 2:13"),
    ("package p\np if { f(1, 2 }\n", 2, 15, "in the call opened at 2:9"),
    ("package p\np if { x := \"abc }\n", 2, 13, "unterminated string"),
    ("package p\np if { x := 1 y := 2 }\n", 2, 15, "expected a new line or `;`"),
    ("p := 1\n", 1, 1, "expected `package`"),
    ("package p\np { }\n", 2, 5, "empty rule body"),
    ("package p\np if { x := 01 }\n", 2, 13, "leading zero"),
    ("package p\np if { x := -y }\n", 2, 14, "a number after `-`"),
    ("package p\nimport foo.bar\n", 2, 8, "must begin with data, input, future or rego"),
    ("package p\np if { not some x }\n", 2, 8, "`not some"),
    ("package p\ndefault p := input.x\n", 2, 1, "cannot contain a reference"),
    ("package p\np if { x := \"\\q\" }\n", 2, 13, "invalid string"),
    ("package p\np if { x := 1 ~ 2 }\n", 2, 15, "unexpected character '~'"),
    ("package p\np := 1\nimport data.x\n", 3, 1, "`import` must come before"),
    ("package p\nr contains x { x := 1 }\n", 2, 14, "`if` is required"),
    ("package p\np := $\"a{x y}b\"\n", 2, 12, "expected `}` to end the template expression opened at 2:10"),
    ("package p\np := $\"a{x\"\n", 2, 11, "unterminated string"),
    ("package p\np := $\"a{x}\n", 2, 11, "unterminated template string"),
    ("package p\np := $\"a{}b\"\n", 2, 10, "empty template expression"),
    ("package p\np := $\"a{x := 1}b\"\n", 2, 12, "not an assignment"),
    ("package p\np := $\"a{not x}b\"\n", 2, 10, "keyword `not` in a template expression"),
    ("package p\np := $\"a\\qb\"\n", 2, 6, "invalid escape sequence in template string"),
    ("package p\np := $`a{x`\n", 2, 11, "unterminated raw string"),
    ("package p\np := $\"a{[x}b\"\n", 2, 12, "in the array opened at 2:10"),
    ("package p\np := $x\n", 2, 6, "unexpected character '$'"),
])
def test_syntax_errors(text: str, line: int, col: int, fragment: str) -> None:
    with pytest.raises(RegoSyntaxError) as info:
        parse_module(text, file="f.rego", v1=True if "contains" in text else None)
    err = info.value
    assert (err.line, err.col) == (line, col), str(err)
    assert fragment in str(err)
    assert str(err).startswith(f"f.rego:{line}:{col}: ")


def test_offsets_shift_every_position_and_error() -> None:
    module = parse_module("package p\n\nq := 1\n", line_offset=10, col_offset=4)
    assert module.rules[0].pos == ast.Pos(13, 5)
    with pytest.raises(RegoSyntaxError) as info:
        parse_module("package p\nq := =\n", file="t.yaml", line_offset=10, col_offset=4)
    assert str(info.value).startswith("t.yaml:12:10: ")


TEMPLATE = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8sbroken
spec:
  crd:
    spec:
      names:
        kind: K8sBroken
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sbroken

        violation[{"msg": msg}] {
          msg := concat(", ", [
            "a"
          )
        }
"""


def test_a_syntax_error_in_a_template_names_the_yaml_line(tmp_path: Path) -> None:
    """Loaded through the engine's loader, which parses the template's Rego where it starts in the YAML (the
    block's indentation from literal_block_origin): the error names the YAML file's line and column."""
    path = tmp_path / "broken.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    (doc,) = load_text(TEMPLATE, str(path))
    with pytest.raises(RegoSyntaxError) as info:
        parse_template(doc)
    err = info.value
    line = TEMPLATE.splitlines()[err.line - 1]
    assert (err.line, err.col) == (18, 11) and line[err.col - 1] == ")"
    assert "in the array opened at 16:31" in str(err) and TEMPLATE.splitlines()[15][30] == "["
    assert str(err).startswith(f"{path}:18:11: ")


def test_literal_block_origin() -> None:
    text = "a:\n  rego: |-\n\n      x\n  b: 1\n  libs:\n    - |\n      y\n"
    assert literal_block_origin(text, 2) == (2, 6)
    assert literal_block_origin(text, 7) == (7, 6)
    assert literal_block_origin(text, 5) is None
    assert literal_block_origin("a: >\n  folded\n", 1) is None


# ------------------------------------------------------------------------------ template strings (OPA 1.12)


def test_template_strings() -> None:
    m = parse_module(
        'package p\n'
        'a := $"x{input.a with input as {"a": 1}}y{ {1} }\\{z\\n\\u00e9}"\n'
        'b := $`multi\n{1 + 2} \\{raw\\n`\n'
        'c := $"{$"{a}"}"\n'
        'd := 1\n'
    )
    a, b, c, d = (r.head.value for r in m.rules)
    W = ast.With(R("input"), ast.Object(((S("a"), S(1)),)))
    assert a == ast.TemplateString(("x", ast.Expr(R("input", "a"), with_=(W,)), "y", ast.Expr(ast.Set((S(1),))), "{z\né}"))
    assert isinstance(b, ast.TemplateString) and b.raw
    assert b.parts[0] == "multi\n" and b.parts[2] == " {raw\\n"  # in $`...` only \{ is an escape
    assert b.parts[1] == ast.Expr(ast.Call(ast.Ref(V("plus")), (S(1), S(2))))
    assert c == ast.TemplateString((ast.Expr(ast.TemplateString((ast.Expr(V("a")),))),))
    assert m.rules[3].pos == ast.Pos(6, 1)  # the raw template string's newline counts
    assert d == S(1)
