"""The Kyverno engine's caches give the answers the uncached code gives.

Patterns planned once (match_pattern(static=True)), patchesJson6902 texts parsed once, the JSON-data copy,
the scalar verdict cache, and Pod Security checks shared within a request.
"""

from __future__ import annotations

import copy
import datetime
import json
from typing import Any

import pytest

from admission.engines import PolicyError
from admission.engines.yaml.mutate import parse_operations
from admission.engines.yaml.pattern import match_pattern
from admission.engines.yaml.values import _compare_value, compare_value
from admission.patch import copy_document
from admission.podsecurity import check, sharing
from tests.test_pattern import KYVERNO_CASES

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "labels": {"app": "web", "team-a": "x"}, "annotations": {"note": "y"}},
    "spec": {
        "hostNetwork": False,
        "containers": [
            {"name": "a", "image": "nginx:1.2", "securityContext": {"privileged": False},
             "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}},
            {"name": "b", "image": "nginx:latest", "securityContext": {"privileged": True}},
        ],
    },
}

PATTERNS: list[Any] = [
    {"spec": {"containers": [{"image": "!*:latest"}]}},
    {"spec": {"containers": [{"=(securityContext)": {"=(privileged)": "false"}}]}},
    {"spec": {"containers": [{"(name)": "a", "resources": {"requests": {"cpu": "<=200m", "memory": "?*"}}}]}},
    {"spec": {"X(hostPID)": "null", "=(hostNetwork)": False}},
    {"spec": {"^(containers)": [{"image": "nginx:*"}]}},
    {"spec": {"<(hostNetwork)": True, "containers": [{"name": "*"}]}},
    {"metadata": {"labels": {"team-*": "?*"}}},  # wildcard keys: rewritten per resource
    {"metadata": {"=(annotations)": {"note": "y"}, "labels": {"app": "web | api"}}},
    {"data": {True: "yes", 2: "two"}},
    {"spec": {"containers": [{"resources": {"limits": {"memory": "<=64Mi"}}}]}},
]


def _results(resource: Any, pattern: Any) -> tuple[Any, Any, Any]:
    plain = match_pattern(resource, pattern)
    first = match_pattern(resource, pattern, static=True)
    again = match_pattern(resource, pattern, static=True)  # from the kept plan
    return plain, first, again


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_planned_pattern_matches_as_the_pattern_does(pattern: Any) -> None:
    for resource in (POD, {"data": {"true": "yes", "2": "two"}}, {"spec": {}}, {"metadata": {"labels": {}}}):
        plain, first, again = _results(resource, pattern)
        assert first == plain
        assert again == plain


@pytest.mark.parametrize(("n", "pattern", "resource", "status"), KYVERNO_CASES,
                         ids=[f"kyverno-{c[0]}" for c in KYVERNO_CASES])
def test_planned_kyverno_cases(n: int, pattern: str, resource: str, status: str) -> None:
    p, r = json.loads(pattern), json.loads(resource)
    plain, first, again = _results(r, p)
    assert first == plain == again


def test_a_planned_pattern_does_not_leak_between_resources() -> None:
    pattern = {"metadata": {"labels": {"team-*": "x"}}}
    assert match_pattern(POD, pattern, static=True).status == "pass"
    other = {"metadata": {"labels": {"team-b": "z"}}}
    assert match_pattern(other, pattern, static=True).status == "fail"
    assert match_pattern(POD, pattern, static=True).status == "pass"


def test_parsed_operations_are_fresh_each_time() -> None:
    text = "- op: add\n  path: /spec/x\n  value: {cpu: 100m, n: 1, f: 1.5, b: true, z: null}\n"
    first = parse_operations(text)
    assert first == [{"op": "add", "path": "/spec/x", "value": {"cpu": "100m", "n": 1, "f": 1.5, "b": True, "z": None}}]
    first[0]["value"]["cpu"] = "changed"
    assert parse_operations(text)[0]["value"]["cpu"] == "100m"
    assert isinstance(parse_operations(text)[0]["value"]["n"], int)


def test_operations_json_cannot_hold_are_read_as_yaml_every_time() -> None:
    text = "- op: add\n  path: /metadata/annotations/at\n  value: 2024-01-02\n"
    assert parse_operations(text)[0]["value"] == datetime.date(2024, 1, 2)
    with pytest.raises(Exception):  # noqa: B017 - a YAML error, as yaml.safe_load raises it
        parse_operations("- op: [unclosed\n")


def test_copy_document_is_deep_and_keeps_other_types() -> None:
    doc = {"a": [{"b": 1, "c": [1.5, True, None, "s"]}], "when": datetime.date(2024, 1, 2), "t": (1, 2)}
    copied = copy_document(doc)
    assert copied == doc
    copied["a"][0]["c"].append("more")
    copied["a"][0]["b"] = 2
    assert doc["a"][0] == {"b": 1, "c": [1.5, True, None, "s"]}
    assert copied["when"] == doc["when"]
    assert copy_document(copy.deepcopy(POD)) == POD


@pytest.mark.parametrize("pattern", ["1", "true", "?*", "*", "<=2", ">1", "!1", "1-3", "100m", "<=64Mi", "a | b", ""])
@pytest.mark.parametrize("value", [1, 1.0, True, False, 0, None, "1", "true", "2", "64Mi", "a", ""])
def test_cached_scalar_verdicts_tell_1_true_and_1_0_apart(pattern: str, value: Any) -> None:
    assert compare_value(pattern, value) is _compare_value(pattern, value)
    assert compare_value(pattern, value) is _compare_value(pattern, value)  # again, from the cache


def _pod(privileged: bool) -> dict[str, Any]:
    sc = {"privileged": privileged, "allowPrivilegeEscalation": False, "runAsNonRoot": True,
          "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    return {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "x", "securityContext": sc}]}}


def test_shared_pod_security_checks_answer_as_unshared_ones() -> None:
    good, bad = _pod(False), _pod(True)
    unshared = {(name, level): check(pod, level=level)
                for name, pod in (("good", good), ("bad", bad)) for level in ("baseline", "restricted")}
    assert unshared[("good", "restricted")] == []
    assert [v.check for v in unshared[("bad", "restricted")]] == ["privileged"]
    with sharing():
        for (name, level), expected in unshared.items():
            pod = good if name == "good" else bad
            assert check(pod, level=level) == expected
            assert check(pod, level=level) == expected
        # a different pod object is checked afresh, even with the same content as one checked before
        assert check(copy.deepcopy(bad), level="baseline") == unshared[("bad", "baseline")]


# -- the evaluator's per-kind rule index -------------------------------------------------------------


def _evaluator(rules: list[dict[str, Any]]) -> Any:
    import yaml

    from admission.engines.yaml import KyvernoEvaluator
    from admission.manifests import load_text

    doc = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "p"},
           "spec": {"validationFailureAction": "Enforce", "rules": rules}}
    return KyvernoEvaluator.from_documents(load_text(yaml.safe_dump(doc), "p.yaml"))


def _deny(name: str, match: Any) -> dict[str, Any]:
    return {"name": name, "match": match, "validate": {"message": name, "deny": {}}}


def test_the_kind_index_skips_only_rules_that_cannot_match() -> None:
    from admission.engines import Context
    from admission.review import Request

    ev = _evaluator([
        _deny("pods", {"any": [{"resources": {"kinds": ["Pod"]}}]}),
        _deny("services", {"any": [{"resources": {"kinds": ["v1/Service"]}}]}),
        _deny("everything", {"any": [{"resources": {"kinds": ["*"]}}]}),
        _deny("by-namespace", {"any": [{"resources": {"namespaces": ["apps"]}}]}),
    ])
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "apps"}}
    for obj, expected in ((POD | {"metadata": {"name": "web", "namespace": "apps"}},
                           ["pods", "everything", "by-namespace"]),
                          (service, ["services", "everything", "by-namespace"])):
        results = ev.validate(Request.for_object(obj), Context(report_skips=True))
        assert [r.rule for r in results] == expected
        assert all(r.status.value == "fail" for r in results)
    # a malformed match never reaches the index: it is refused when the policy loads
    with pytest.raises(PolicyError, match=r"resources\.names: must be a list, not an integer"):
        _evaluator([_deny("malformed", {"any": [{"resources": {"kinds": ["*"], "names": 5}}]})])


def test_long_request_strings_are_compared_but_not_kept() -> None:
    from admission.engines.yaml.values import _compare_scalars

    long_value = "x" * 5000
    before = _compare_scalars.cache_info().currsize
    assert compare_value("?*", long_value) is True
    assert compare_value("x*y", long_value) is False
    assert compare_value("<=1Gi", "1" * 300) is False
    assert _compare_scalars.cache_info().currsize == before
