"""Policy regular expressions run on RE2 (admission.regex): linear time, Go's syntax, a clear error for
what RE2 cannot express (a load error for a literal in a policy, a rule error for a run-time pattern)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import re2
from hypothesis import given
from hypothesis import strategies as st

from admission import policyset, regex
from admission.engines import PolicyError
from admission.engines.yaml.variables import VariableError, Variables, literal_regex_error, search


def test_a_catastrophic_pattern_for_backtracking_engines_answers_false_through_re2(
        monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[Any] = []
    real = re2.compile

    def spy(pattern: str, options: Any = None) -> Any:
        result = real(pattern, options)
        compiled.append(result)
        return result

    regex._compile_cached.cache_clear()
    monkeypatch.setattr(re2, "compile", spy)
    assert search("regex_match('^(a+)+$', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!')", {}) is False
    assert search("regex_match('^(a+)+$', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')", {}) is True
    assert compiled and all(regex.is_re2(c) for c in compiled)
    regex._compile_cached.cache_clear()


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)", "(?!a)b", "(?<=a)b", "(", "a{2,1}", "x**"])
def test_patterns_re2_cannot_express_raise_a_clear_error(pattern: str) -> None:
    with pytest.raises(regex.RegexError, match="error parsing regexp"):
        regex.compile_regex(pattern)


def test_go_syntax_means_what_it_means_in_go() -> None:
    assert regex.search(r"a\z", "ba")  # Go's end of text
    assert regex.search(r"(?P<user>[a-z]+)@", "joe@x")
    assert regex.search(r"[[:digit:]]+", "x1")
    assert not regex.search(r"^a", "ba")


def test_replace_all_ignores_an_empty_match_right_after_a_match_as_go_does() -> None:
    assert regex.replace_all("a*", "baac", lambda m: "-") == "-b-c-"
    assert regex.replace_all("x*", "abc", lambda m: "-") == "-a-b-c-"
    assert regex.replace_all("^", "ab", lambda m: "-") == "-ab"
    assert search("regex_replace_all('a*', 'baac', '-')", {}) == "-b-c-"


@given(st.text(alphabet="abc.-é", max_size=20), st.text(alphabet="abc", min_size=1, max_size=3),
       st.text(alphabet="xyz", max_size=3))
def test_replacing_a_literal_pattern_is_str_replace(text: str, literal: str, replacement: str) -> None:
    assert regex.replace_all(re.escape(literal), text, lambda m: replacement) == text.replace(literal, replacement)


@given(st.text(alphabet="ab", max_size=12), st.sampled_from(["a+b", "^a*$", "(ab)+", "b?a{2}", "[ab]b$", "a|bb"]))
def test_simple_patterns_match_as_a_backtracking_engine_does(text: str, pattern: str) -> None:
    assert regex.search(pattern, text) == (re.search(pattern, text) is not None)


def test_a_pattern_from_a_variable_that_re2_cannot_compile_is_a_rule_error() -> None:
    variables = Variables({"pattern": r"(a)\1", "name": "aa"})
    with pytest.raises(VariableError, match="regex_match.*error parsing regexp"):
        variables.substitute("{{ regex_match(pattern, name) }}")


def test_literal_regex_error_finds_the_pattern_in_a_rule() -> None:
    rule = {"validate": {"deny": {"conditions": {"any": [
        {"key": "{{ regex_replace_all('(?=x)', name, '') }}", "operator": "Equals", "value": ""}]}}}}
    problem = literal_regex_error(rule)
    assert problem is not None and "(?=x)" in problem and "error parsing regexp" in problem
    assert literal_regex_error({"key": "{{ regex_match('^[a-z]+$', name) }}"}) is None
    assert literal_regex_error({"key": "{{ regex_match(pattern, name) }}"}) is None  # a variable: run time


def test_a_literal_pattern_re2_cannot_compile_is_a_load_error_naming_policy_and_line(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent("""\
        apiVersion: kyverno.io/v1
        kind: ClusterPolicy
        metadata:
          name: repeated-letters
        spec:
          rules:
          - name: ok
            match:
              any:
              - resources:
                  kinds: [Pod]
            validate:
              message: ok
              pattern:
                metadata:
                  name: "?*"
          - name: backreference
            match:
              any:
              - resources:
                  kinds: [Pod]
            validate:
              message: "no doubled letters"
              deny:
                conditions:
                  any:
                  - key: "{{ regex_match('^(a)\\\\1$', request.object.metadata.name) }}"
                    operator: Equals
                    value: true
        """))
    with pytest.raises(PolicyError) as info:
        policyset.load([path])
    text = str(info.value)
    assert f"{path}:17" in text
    assert "repeated-letters" in text and "backreference" in text and "error parsing regexp" in text


def test_a_run_time_pattern_re2_cannot_compile_is_a_rule_error(tmp_path: Path) -> None:
    from admission.results import Status
    from admission.review import Request

    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent("""\
        apiVersion: kyverno.io/v1
        kind: ClusterPolicy
        metadata:
          name: name-pattern
        spec:
          validationFailureAction: Enforce
          rules:
          - name: name-matches-annotation
            match:
              any:
              - resources:
                  kinds: [Pod]
            validate:
              message: "the name must match the pattern annotation"
              deny:
                conditions:
                  any:
                  - key: "{{ regex_match(request.object.metadata.annotations.pattern, request.object.metadata.name) }}"
                    operator: Equals
                    value: false
        """))
    engine = policyset.load([path])

    def pod(pattern: str) -> Request:
        return Request.for_object({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "aa", "namespace": "x", "annotations": {"pattern": pattern}}, "spec": {"containers": []}})

    assert [r.status for r in engine.results(pod("^a+$"), None)] == [Status.PASS]
    assert [r.status for r in engine.results(pod("^b+$"), None)] == [Status.FAIL]
    results = engine.results(pod(r"^(a)\1$"), None)
    assert [r.status for r in results] == [Status.ERROR]
    assert "error parsing regexp" in results[0].message


def test_find_all_has_gos_semantics() -> None:
    """Go's FindAllString: an empty match right after a match is skipped, the limit counts matches, and
    positions are characters (non-ASCII text)."""
    from admission.regex import compile_regex, find_all

    assert find_all(compile_regex("a*"), "baac") == ["", "aa", ""]
    assert find_all(compile_regex("a"), "aaa", 2) == ["a", "a"]
    assert find_all(compile_regex("a"), "aaa", 0) == []
    assert find_all(compile_regex("é+"), "xééyé") == ["éé", "é"]
    assert find_all(compile_regex("x"), "") == []
