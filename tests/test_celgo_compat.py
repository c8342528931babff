"""The cel-go readings kept where cel-cpp differs (the passes presence_chains and lenient_or_value of
admission.engines.cel.syntax.passes), checked against what cel-go computes, written here in Python, on
generated inputs."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from admission.engines.cel.kyverno_eval import Scope, compile_expression

KEYS = st.sampled_from(["a", "b", "c"])
LEAVES = st.one_of(st.integers(-3, 3), st.text(alphabet="xy", max_size=2), st.lists(st.integers(0, 2), max_size=2))
TREES = st.recursive(LEAVES, lambda inner: st.dictionaries(KEYS, inner, max_size=3), max_leaves=8)


def present(value: Any, path: list[str]) -> bool | None:
    """cel-go's has(object.p1...pn): false when an intermediate map lacks a key; None (an error) when a
    step is not a map."""
    for i, key in enumerate(path):
        if not isinstance(value, dict):
            return None
        if key not in value:
            return False
        if i == len(path) - 1:
            return True
        value = value[key]
    return True


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, TREES, max_size=3), st.lists(KEYS, min_size=1, max_size=4))
def test_has_on_a_path_is_false_at_the_first_missing_step(obj: dict[str, Any], path: list[str]) -> None:
    expected = present(obj, path)
    expr = compile_expression(f"has(object.{'.'.join(path)})", "t:1", "e")
    try:
        got: bool | None = Scope(obj, None, {}).evaluate(expr)
    except Exception:
        got = None
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(TREES, st.integers(0, 3))
def test_or_value_gives_a_value_that_is_not_optional_back(value: Any, default: int) -> None:
    obj = {"v": value}
    scope = Scope(obj, None, {})
    assert scope.evaluate(compile_expression(f"object.v.orValue({default})", "t:1", "e")) == value
    assert scope.evaluate(compile_expression(f"object.?w.orValue({default})", "t:1", "e")) == default
    assert scope.evaluate(compile_expression(f"object.?v.orValue({default})", "t:1", "e")) == value
