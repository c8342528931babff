"""The token passes before cel-cpp compiles: typed object literals as maps, variables inlined with cel.bind."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from admission.engines.cel import Definition, bind, compile_expression
from admission.engines.cel.tokens import inline_variables, object_literals, tokenize, variable_references


@given(st.text(alphabet="ab_1.{}():,? '\"\\\n+", max_size=40))
def test_tokens_cover_the_source_exactly(source: str) -> None:
    try:
        tokens = tokenize(source)
    except ValueError:
        return  # an unterminated string
    assert "".join(t.text for t in tokens) == source


def test_typed_literals_become_maps_and_strings_are_untouched() -> None:
    src = "Object{metadata: Object.metadata{labels: {'Object{a: 1}': 'x'}}}"
    out = object_literals(src, ("Object",))
    assert "'Object{a: 1}'" in out
    assert compile_expression(src, where="p:1", object_types=("Object",)).evaluate(bind({})) == {
        "metadata": {"labels": {"Object{a: 1}": "x"}}}


def test_commas_inside_calls_and_lists_are_not_field_separators() -> None:
    src = "Object{spec: Object.spec{args: ['a', 'b'].map(x, x + ','), n: [1, 2].max(), ?skip: optional.none()}}"
    assert compile_expression(src, where="p:1", object_types=("Object",)).evaluate(bind({})) == {
        "spec": {"args": ["a", "b,"][:1] + ["b,"] if False else ["a,", "b,"], "n": 2}}


def test_a_member_named_like_a_type_is_not_a_literal() -> None:
    assert object_literals("object.Object", ("Object",)) == "object.Object"


def test_variables_are_inlined_in_dependency_order_only_when_read() -> None:
    defs = [Definition("a", "object.x", "p:1"), Definition("b", "variables.a + 1", "p:2"),
            Definition("unused", "1 / 0", "p:3")]
    assert variable_references("variables.b * variables.b + object.variables") == ["b"]
    text = inline_variables("variables.b * 2", defs)
    assert "unused" not in text
    program = compile_expression("variables.b * 2", where="p:4", definitions=defs)
    assert program.evaluate(bind({"object": {"x": 4}})) == 10


def test_a_literal_built_from_variables() -> None:
    defs = [Definition("labels", "{'team': object.metadata.name}", "p:1")]
    src = "Object{metadata: Object.metadata{labels: variables.labels}}"
    program = compile_expression(src, where="p:2", definitions=defs, object_types=("Object",))
    assert program.evaluate(bind({"object": {"metadata": {"name": "web"}}})) == {"metadata": {"labels": {"team": "web"}}}
