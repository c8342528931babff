"""A string that is one `{{ expr }}` resolves straight to the query's value, exactly as the general
substitution gives it (values, missing keys, errors, DELETE requests, paths in messages)."""

from __future__ import annotations

from typing import Any

import pytest

from admission.engines.yaml.variables import VariableError, Variables, _whole_variable

DATA: dict[str, Any] = {"request": {"object": {"metadata": {"name": "web", "labels": {"app": "a"}}},
                                    "oldObject": {"metadata": {"name": "old"}}}, "n": 3, "list": [1, 2]}

TEXTS = [
    "{{ request.object.metadata.name }}", "{{request.object.metadata.labels}}", "{{ n }}", "{{ list }}",
    "{{- n }}", "{{ missing }}", "{{ missing.deep }}", "{{ length(n) }}", "{{ ]bad[ }}", "{{ @ }}",
    " {{ n }}", "{{ n }} ", "x{{ n }}", "{{ n }}{{ n }}", "\\{{ n }}", "{{ n }} $(x)", "$(./x)",
    "{{ to_string(`{{ n }}`) }}", "plain", "", "{{}}", "{{ request.object.metadata.name }}-{{ n }}",
]


def _outcome(fn: Any) -> Any:
    try:
        return ("value", fn())
    except VariableError as exc:
        return ("error", type(exc).__name__, str(exc))


@pytest.mark.parametrize("operation", ["CREATE", "DELETE"])
@pytest.mark.parametrize("text", TEXTS)
def test_whole_variables_resolve_as_the_general_path(text: str, operation: str) -> None:
    for path in ((), ("spec", "validate", "deny")):
        fast = Variables(dict(DATA), operation=operation)
        general = Variables(dict(DATA), operation=operation)
        assert _outcome(lambda: fast.substitute(text, path)) == _outcome(  # noqa: B023
            lambda: general._substitute(text, path, text, ()))  # noqa: B023


def test_only_a_lone_variable_takes_the_short_path() -> None:
    assert _whole_variable("{{ a.b }}") == "a.b"
    assert _whole_variable("{{- a }}") == "a"
    for text in (" {{ a }}", "x{{ a }}", "{{ a }}{{ b }}", "{{ @ }}", "{{ a }} $(b)", "a", "`{{ a }}`"):
        assert _whole_variable(text) is None
