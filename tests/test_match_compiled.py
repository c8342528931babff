"""RuleMatcher (match/exclude read once per rule) and block_kinds (the kind index) agree with rule_applies."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from admission.match import RuleMatcher, Subject, block_kinds, rule_applies


def obj(kind: str = "Pod", api: str = "v1", name: str = "web", namespace: str = "apps",
        labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels is not None:
        meta["labels"] = labels
    if annotations is not None:
        meta["annotations"] = annotations
    return {"apiVersion": api, "kind": kind, "metadata": meta}


def subject(o: dict[str, Any], **kw: Any) -> Subject:
    group, _, version = str(o["apiVersion"]).rpartition("/")
    return Subject(group=group, version=version, kind=str(o["kind"]), resource=o, **kw)


SUBJECTS = [
    subject(obj()),
    subject(obj(labels={"app": "web", "tier": "front"}, annotations={"team": "a"}), operation="UPDATE"),
    subject(obj(namespace="kube-system")),
    subject(obj("Deployment", "apps/v1", name="api")),
    subject(obj(name="db"), sub_resource="exec", operation="CONNECT"),
    subject(obj(name="dbg"), sub_resource="ephemeralcontainers"),
    subject(obj("Namespace", name="apps", namespace="")),
    subject(obj(), username="system:serviceaccount:apps:ci", groups=("system:authenticated",)),
    subject(obj(), namespace_labels={"env": "prod"}),
    Subject(group="", version="v1", kind="Pod", resource={}),
]

FILTERS: list[Any] = [
    {"resources": {"kinds": ["Pod"]}},
    {"resources": {"kinds": ["v1/Pod", "apps/v1/Deployment"], "operations": ["CREATE"]}},
    {"resources": {"kinds": ["Pod/exec"]}},
    {"resources": {"kinds": ["Po*"], "names": ["w*", "db"]}},
    {"resources": {"kinds": ["*"], "name": "api"}},
    {"resources": {"namespaces": ["kube-*", "apps"]}},
    {"resources": {"kinds": ["Pod"], "selector": {"matchLabels": {"app": "web"}}}},
    {"resources": {"kinds": ["Pod"], "selector": {"matchLabels": {"ti*": "fr?nt"}}}},
    {"resources": {"kinds": ["Pod"], "annotations": {"team": "*"}}},
    {"resources": {"kinds": ["Pod", "Namespace"], "namespaceSelector": {"matchLabels": {"env": "prod"}}}},
    {"resources": {"kinds": ["Pod"]}, "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "apps"}]},
    {"resources": {"kinds": ["Pod"]}, "roles": ["admin"]},
    {"subjects": [{"kind": "Group", "name": "system:*"}]},
    {"resources": {}},
    {"resources": {"kinds": 5}},  # malformed: an error at match time, both ways
    {"resources": {"kinds": ["Pod"], "annotations": ["not", "a", "map"]}},  # malformed
    "not a filter",
]


def blocks() -> list[Any]:
    out: list[Any] = [{}, None]
    for f in FILTERS:
        out.append({"any": [f]})
        out.append({"all": [f]})
        if isinstance(f, dict):
            out.append(dict(f))  # the legacy form
    for a, b in itertools.combinations(FILTERS[:8], 2):
        out.append({"any": [a, b]})
        out.append({"all": [a, b]})
    out.append({"all": ["only", "strings"]})
    out.append({"any": 7})  # malformed
    return out


def outcome(fn: Any) -> Any:
    try:
        return fn()
    except Exception as exc:
        return type(exc)


@pytest.mark.parametrize("exclude", [None, {"any": [{"resources": {"namespaces": ["kube-system"]}}]},
                                     {"all": [{"resources": {"kinds": ["Pod"]}}, {"resources": {"names": ["db*"]}}]},
                                     {"all": []}, {"any": 7}])
def test_rule_matcher_agrees_with_rule_applies(exclude: Any) -> None:
    compared = 0
    for match in blocks():
        if match is None:
            continue
        matcher = RuleMatcher(match, exclude)
        for s in SUBJECTS:
            for ns in ("", "apps"):
                expected = outcome(lambda: rule_applies(match, exclude, s, policy_namespace=ns))  # noqa: B023
                got = outcome(lambda: matcher.applies(s, policy_namespace=ns))  # noqa: B023
                assert got == expected, (match, exclude, s, ns)
                compared += 1
    assert compared > 1000


def test_block_kinds_names_every_kind_a_block_can_select() -> None:
    assert block_kinds({"any": [{"resources": {"kinds": ["Pod", "apps/v1/Deployment", "Pod/exec"]}}]}) == {
        "Pod", "Deployment"}
    assert block_kinds({"resources": {"kinds": ["v1/Pod"]}}) == {"Pod"}
    # a filter without kinds, a wildcard kind, or an unreadable block: any kind
    assert block_kinds({"any": [{"resources": {"kinds": ["Pod"]}}, {"resources": {"namespaces": ["a"]}}]}) is None
    assert block_kinds({"any": [{"resources": {"kinds": ["Po*"]}}]}) is None
    assert block_kinds({"any": 7}) is None


def test_block_kinds_never_leaves_out_a_rule_that_matches() -> None:
    for match in blocks():
        if match is None:
            continue
        kinds = block_kinds(match)
        if kinds is None:
            continue
        for s in SUBJECTS:
            if s.kind not in kinds:
                assert outcome(lambda: rule_applies(match, None, s)) is False, (match, s)  # noqa: B023
