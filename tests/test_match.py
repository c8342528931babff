"""Kyverno match/exclude semantics (pkg/engine/utils/match.go, pkg/utils/match)."""

from __future__ import annotations

from typing import Any

import pytest

from admission.match import Subject, block_excludes, block_matches, parse_kind_selector, rule_applies


def pod(name: str = "web", namespace: str = "apps", labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = labels
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {}}


def subject(obj: dict[str, Any] | None = None, **kw: Any) -> Subject:
    obj = obj or pod()
    api = str(obj["apiVersion"])
    group, _, version = api.rpartition("/")
    return Subject(group=group, version=version, kind=str(obj["kind"]), resource=obj, **kw)


def kinds(*ks: str) -> dict[str, Any]:
    return {"any": [{"resources": {"kinds": list(ks)}}]}


@pytest.mark.parametrize(("selector", "parsed"), [
    ("Pod", ("*", "*", "Pod", "")),
    ("v1/Pod", ("*", "v1", "Pod", "")),
    ("apps/v1/Deployment", ("apps", "v1", "Deployment", "")),
    ("Pod/exec", ("*", "*", "Pod", "exec")),
    ("v1/Pod/exec", ("*", "v1", "Pod", "exec")),
    ("*/*", ("*", "*", "*", "*")),
    ("networking.k8s.io/v1/Ingress", ("networking.k8s.io", "v1", "Ingress", "")),
])
def test_kind_selectors_parse_like_kyverno(selector: str, parsed: tuple[str, str, str, str]) -> None:
    assert parse_kind_selector(selector) == parsed


@pytest.mark.parametrize(("selector", "matches"), [
    ("Pod", True), ("v1/Pod", True), ("*", True), ("Po*", True), ("Deployment", False),
    ("apps/v1/Pod", False), ("v2/Pod", False), ("Pod/exec", False),
])
def test_kinds(selector: str, matches: bool) -> None:
    assert block_matches(kinds(selector), subject()) is matches


def test_subresource_kind_matches_only_that_subresource() -> None:
    s = subject(sub_resource="exec", operation="CONNECT")
    assert block_matches(kinds("Pod/exec"), s)
    assert not block_matches(kinds("Pod"), s)
    # Kyverno keeps matching Pod rules on ephemeralcontainers
    assert block_matches(kinds("Pod"), subject(sub_resource="ephemeralcontainers"))


def test_group_version_kind_for_workloads() -> None:
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "x"}}
    assert block_matches(kinds("apps/v1/Deployment"), subject(dep))
    assert not block_matches(kinds("batch/v1/Deployment"), subject(dep))


def test_names_namespaces_and_operations_with_wildcards() -> None:
    block = {"any": [{"resources": {"kinds": ["Pod"], "names": ["web-*"], "namespaces": ["prod-?"],
                                    "operations": ["CREATE", "UPDATE"]}}]}
    assert block_matches(block, subject(pod("web-1", "prod-a")))
    assert not block_matches(block, subject(pod("api-1", "prod-a")))
    assert not block_matches(block, subject(pod("web-1", "prod-ab")))
    assert not block_matches(block, subject(pod("web-1", "prod-a"), operation="DELETE"))
    assert block_matches({"resources": {"kinds": ["Pod"], "name": "w*"}}, subject())


def test_namespace_kind_matches_namespaces_by_its_own_name() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    assert block_matches({"any": [{"resources": {"kinds": ["Namespace"], "namespaces": ["team-*"]}}]}, subject(ns))


def test_label_selector_with_wildcards_and_expressions() -> None:
    s = subject(pod(labels={"app": "web", "tier": "front"}))
    sel = {"any": [{"resources": {"kinds": ["Pod"], "selector": {"matchLabels": {"app": "w*"}}}}]}
    assert block_matches(sel, s)
    sel_expr = {"any": [{"resources": {"kinds": ["Pod"], "selector": {
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["back"]}]}}}]}
    assert not block_matches(sel_expr, s)
    assert not block_matches({"any": [{"resources": {"selector": {"matchLabels": {"app": "db"}}}}]}, s)


def test_annotations_match_with_wildcards() -> None:
    s = subject(pod(annotations={"team.io/owner": "alice"}))
    assert block_matches({"any": [{"resources": {"annotations": {"team.io/*": "a*"}}}]}, s)
    assert not block_matches({"any": [{"resources": {"annotations": {"team.io/*": "bob"}}}]}, s)


def test_namespace_selector_uses_namespace_labels() -> None:
    block = {"any": [{"resources": {"kinds": ["Pod"], "namespaceSelector": {"matchLabels": {"env": "prod"}}}}]}
    assert block_matches(block, subject(namespace_labels={"env": "prod"}))
    assert not block_matches(block, subject(namespace_labels={"env": "dev"}))
    assert not block_matches(block, subject())


def test_any_needs_one_filter_all_needs_every_filter() -> None:
    s = subject()
    assert block_matches({"any": [{"resources": {"kinds": ["Service"]}}, {"resources": {"kinds": ["Pod"]}}]}, s)
    assert not block_matches({"all": [{"resources": {"kinds": ["Service"]}}, {"resources": {"kinds": ["Pod"]}}]}, s)
    assert block_matches({"all": [{"resources": {"kinds": ["Pod"]}}, {"resources": {"namespaces": ["apps"]}}]}, s)


def test_empty_match_filter_matches_nothing() -> None:
    assert not block_matches({"any": [{"resources": {}}]}, subject())
    assert not block_matches({}, subject())


def test_user_filters() -> None:
    block = {"any": [{"resources": {"kinds": ["Pod"]},
                      "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": "build"}]}]}
    assert block_matches(block, subject(username="system:serviceaccount:build:ci"))
    assert not block_matches(block, subject(username="alice"))
    groups = {"any": [{"resources": {"kinds": ["Pod"]}, "subjects": [{"kind": "Group", "name": "dev*"}]}]}
    assert block_matches(groups, subject(username="bob", groups=("developers",)))
    roles = {"any": [{"resources": {"kinds": ["Pod"]}, "clusterRoles": ["cluster-admin"]}]}
    assert block_matches(roles, subject(username="root", cluster_roles=("cluster-admin",)))
    assert not block_matches(roles, subject(username="root", cluster_roles=("view",)))
    # Without any request user information (offline), Kyverno ignores user filters in match
    assert block_matches(roles, subject())


def test_legacy_top_level_block() -> None:
    block = {"resources": {"kinds": ["Pod"]}, "subjects": [{"kind": "User", "name": "alice"}]}
    assert block_matches(block, subject(username="alice"))
    assert not block_matches(block, subject(username="bob"))


def test_exclude_any_all_and_legacy() -> None:
    s = subject(pod(namespace="kube-system"))
    assert block_excludes({"any": [{"resources": {"namespaces": ["kube-*"]}}, {"resources": {"names": ["x"]}}]}, s)
    assert not block_excludes({"all": [{"resources": {"namespaces": ["kube-*"]}},
                                       {"resources": {"names": ["x"]}}]}, s)
    assert block_excludes({"all": [{"resources": {"namespaces": ["kube-*"]}}, {"resources": {"kinds": ["Pod"]}}]}, s)
    assert block_excludes({"resources": {"namespaces": ["kube-system"]}}, s)
    assert not block_excludes({"any": [{"resources": {}}]}, s)
    assert not block_excludes(None, s)


def test_exclude_by_user_applies_even_offline() -> None:
    s = subject(username="system:serviceaccount:kube-system:replicaset-controller")
    block = {"any": [{"subjects": [{"kind": "ServiceAccount", "name": "replicaset-controller",
                                    "namespace": "kube-system"}]}]}
    assert block_excludes(block, s)


def test_namespaced_policy_only_sees_its_namespace() -> None:
    match = kinds("Pod")
    assert rule_applies(match, None, subject(pod(namespace="apps")), policy_namespace="apps")
    assert not rule_applies(match, None, subject(pod(namespace="other")), policy_namespace="apps")
    assert not rule_applies(match, {"any": [{"resources": {"names": ["web"]}}]}, subject())
