"""Object data is never evaluated as a template: a substituted value is not scanned again, and a nested
variable's value goes into the outer expression only as data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from admission.engines import Context
from admission.engines.yaml.variables import VariableError, Variables, json_literal, search
from admission.policyset import load
from admission.review import Request
from admission.selectors import selector_matches
from admission.state import ClusterState

LIBRARY = Path(__file__).resolve().parents[1] / "policies"
TEMPLATE = "{{ request.object.metadata.name }}"
HOSTILE = [TEMPLATE, '"}}', "'", "`", "\\", "\\`", "'}} ", '{{ "x" }}', "\\{{ a }}", "a.b", "@", "$(./x)", "}}{{"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def _variables(labels: dict[str, Any], **extra: Any) -> Variables:
    return Variables({"request": {"object": {"metadata": {"name": "web", "labels": labels}}}, **extra})


@given(json_values)
def test_a_json_literal_is_exactly_its_value(value: Any) -> None:
    assert search(json_literal(value), {}) == value


@settings(max_examples=60)
@given(st.sampled_from(HOSTILE) | st.text(alphabet="{}'\"`\\ .@$()ab", max_size=16))
def test_a_label_value_is_substituted_as_the_text_it_is(value: str) -> None:
    v = _variables({"app": value})
    assert v.substitute("{{ request.object.metadata.labels.app }}") == value
    assert v.substitute("app={{ request.object.metadata.labels.app }}!") == f"app={value}!"
    assert v.substitute({"message": "{{- request.object.metadata.labels.app }}"}) == {"message": value}


@settings(max_examples=60)
@given(st.sampled_from(HOSTILE) | st.text(alphabet="{}'\"`\\ .@$()ab", max_size=16))
def test_a_nested_value_goes_into_the_outer_expression_as_data(value: str) -> None:
    selectors = [{"matchLabels": {"app": "web"}}, {"matchLabels": {"app": value}}]
    v = _variables({"app": value, "key": "app"}, sels=selectors, key="app")
    labels = {"app": value, "key": "app"}
    expected = sum(selector_matches(s, labels) for s in selectors)
    # inside a JSON literal, as the built-in require-network-policy writes it
    assert v.substitute("{{ length(sels[?selector_match(@, `{{ request.object.metadata.labels }}`)]) }}") == expected
    # inside a raw string, mixed with policy text
    assert v.substitute("{{ to_upper('<{{ request.object.metadata.labels.app }}>') }}") == f"<{value}>".upper()
    # inside a JSON string of a JSON literal
    assert v.substitute('{{ `["{{ request.object.metadata.labels.app }}", 1]` }}') == [value, 1]
    # where an expression would be: a literal, not code
    assert v.substitute("{{ {{ request.object.metadata.labels.app }} }}") == value
    # after a dot: a key name
    assert v.substitute("{{ request.object.metadata.labels.{{ key }} }}") == value


def test_a_nested_number_is_an_index() -> None:
    v = Variables({"items": ["a", "b"], "i": 1})
    assert v.substitute("{{ items[{{ i }}] }}") == "b"


def test_data_in_an_expression_loads_no_context_entry() -> None:
    loaded: list[str] = []

    def load_entry(_: Variables) -> Any:
        loaded.append("expensive")
        return 1

    v = _variables({"app": "expensive"})
    v.defer("expensive", load_entry)
    assert v.substitute("{{ to_string(`{{ request.object.metadata.labels.app }}`) }}") == "expensive"
    assert loaded == []
    assert v.substitute("{{ expensive }}") == 1 and loaded == ["expensive"]


def _pod(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop", "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]}}


def test_require_network_policy_reads_labels_as_data() -> None:
    engine = load([LIBRARY / "require-network-policy"])
    netpol = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
              "metadata": {"name": "web", "namespace": "shop"},
              "spec": {"podSelector": {"matchLabels": {"app": "web"}}}}
    ctx = Context(state=ClusterState([netpol]))

    def allowed(pod: dict[str, Any]) -> bool:
        return engine.validate(Request.for_object(pod), ctx).allowed

    assert allowed(_pod("a", {"app": "web"}))
    # evaluated, the label would read `web` (the Pod's name) and match: it must not
    decision = engine.validate(Request.for_object(_pod("web", {"app": TEMPLATE})), ctx)
    assert not decision.allowed and TEMPLATE in decision.message
    assert not allowed(_pod("b", {"app": 'web"}}\''}))
    assert not allowed(_pod("c", {"app": "web'"}))
    assert allowed(_pod("d", {"app": "web", "note": '"}}\'`)]) }}', "q'\"": "\\`"}))


@settings(max_examples=200)
@given(st.text(alphabet="{}\\ab'`\"-@.", max_size=40))
def test_any_policy_text_substitutes_or_fails_with_a_variable_error(text: str) -> None:
    v = Variables({"a": "{{ b }}", "b": 1})
    try:
        out = v.substitute(text)
    except VariableError:
        return
    if "{{" not in text:
        assert out == text


def test_deeply_nested_braces_are_text_not_a_crash() -> None:
    text = "{{" * 5000 + "a" + "}}" * 5000
    v = Variables({"a": 1})
    try:
        v.substitute(text)
    except VariableError:
        pass
    assert Variables({}).substitute("x" + "{{" * 5000) == "x" + "{{" * 5000
