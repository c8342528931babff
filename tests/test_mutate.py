"""Kyverno mutations: patchStrategicMerge with anchors, patchesJson6902, foreach, through the engine."""

from __future__ import annotations

from typing import Any

import yaml

from admission.engine import Engine
from admission.engines import Context
from admission.engines.yaml import KyvernoEvaluator
from admission.engines.yaml.mutate import json6902, merge, strategic_merge
from admission.manifests import load_text
from admission.results import Status
from admission.review import Request


def pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "apps"},
            "spec": {"containers": [{"name": "app", "image": "nginx"}, {"name": "side", "image": "envoy"}], **spec}}


def evaluator(mutate: dict[str, Any], kinds: tuple[str, ...] = ("Pod",), **extra: Any) -> KyvernoEvaluator:
    doc = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "m"},
           "spec": {"rules": [{"name": "r", "match": {"any": [{"resources": {"kinds": list(kinds)}}]},
                               "mutate": mutate, **extra}]}}
    return KyvernoEvaluator.from_documents(load_text(yaml.safe_dump(doc), "m.yaml"))


def test_add_if_absent_adds_only_missing_keys() -> None:
    patch = {"metadata": {"labels": {"+(team)": "core", "+(app)": "web"}}}
    obj = pod()
    obj["metadata"]["labels"] = {"app": "mine"}
    out = strategic_merge(obj, patch)
    assert out["metadata"]["labels"] == {"app": "mine", "team": "core"}


def test_conditional_anchor_in_a_list_patches_matching_elements_by_name() -> None:
    patch = {"spec": {"containers": [{"(image)": "nginx*", "securityContext": {"runAsNonRoot": True}}]}}
    out = strategic_merge(pod(), patch)
    app, side = out["spec"]["containers"]
    assert app == {"name": "app", "image": "nginx", "securityContext": {"runAsNonRoot": True}}
    assert side == {"name": "side", "image": "envoy"}


def test_failed_map_condition_drops_the_whole_patch() -> None:
    patch = {"metadata": {"(name)": "other", "labels": {"x": "y"}}}
    assert strategic_merge(pod(), patch) == pod()


def test_global_anchor_gates_the_whole_patch() -> None:
    patch = {"metadata": {"annotations": {"+(safe-to-evict)": "true"}},
             "spec": {"volumes": [{"<(emptyDir)": {}}]}}
    without = pod(volumes=[{"name": "v", "hostPath": {"path": "/x"}}])
    assert strategic_merge(without, patch) == without
    with_empty = pod(volumes=[{"name": "v", "emptyDir": {}}])
    out = strategic_merge(with_empty, patch)
    assert out["metadata"]["annotations"] == {"safe-to-evict": "true"}
    assert out["spec"]["volumes"] == [{"name": "v", "emptyDir": {}}]


def test_merge_lists_by_key_replace_others_and_delete_on_null() -> None:
    base = {"spec": {"containers": [{"name": "a", "image": "x"}], "args": ["1"], "drop": "me"}}
    patch = {"spec": {"containers": [{"name": "a", "image": "y"}, {"name": "b", "image": "z"}],
                      "args": ["2"], "drop": None}}
    assert merge(base, patch) == {"spec": {"containers": [{"name": "a", "image": "y"}, {"name": "b", "image": "z"}],
                                           "args": ["2"]}}


def test_json6902_creates_parents_and_ignores_missing_removes() -> None:
    ops = "- op: add\n  path: /metadata/annotations/a\n  value: b\n- op: remove\n  path: /metadata/labels/none\n"
    out = json6902(pod(), ops)
    assert out["metadata"]["annotations"] == {"a": "b"}


def test_mutation_through_the_engine_returns_a_json_patch() -> None:
    ev = evaluator({"patchStrategicMerge": {"metadata": {"labels": {"+(owner)": "{{ request.userInfo.username }}"}}}})
    out = Engine([ev]).mutate(Request.for_object(pod(), user_info={"username": "alice"}))
    assert out.decision.allowed
    assert out.mutated["metadata"]["labels"] == {"owner": "alice"}
    assert out.patch == [{"op": "add", "path": "/metadata/labels", "value": {"owner": "alice"}}]
    [result] = out.decision.results
    assert (result.rule, result.status) == ("r", Status.PASS)
    assert result.message == "mutated Pod/web in namespace apps"


def test_no_change_is_a_skip() -> None:
    ev = evaluator({"patchStrategicMerge": {"metadata": {"name": "web"}}})
    obj, results = ev.mutate(Request.for_object(pod()), pod(), Context(report_skips=True))
    assert obj == pod()
    assert [(r.status, r.message) for r in results] == [(Status.SKIP, "no patches applied")]
    assert ev.mutate(Request.for_object(pod()), pod(), Context())[1] == []


def test_mutate_foreach_patches_each_element() -> None:
    ev = evaluator({"foreach": [{"list": "request.object.spec.containers",
                                 "patchStrategicMerge": {"spec": {"containers": [
                                     {"name": "{{ element.name }}", "imagePullPolicy": "Always"}]}}}]})
    obj, [result] = ev.mutate(Request.for_object(pod()), pod(), Context())
    assert result.status == Status.PASS
    assert [c.get("imagePullPolicy") for c in obj["spec"]["containers"]] == ["Always", "Always"]


def test_mutate_foreach_json_patch_with_element_index() -> None:
    ev = evaluator({"foreach": [{"list": "request.object.spec.containers",
                                 "patchesJson6902": "- op: add\n  path: /spec/containers/{{elementIndex}}/tty\n"
                                                    "  value: true\n"}]})
    obj, [result] = ev.mutate(Request.for_object(pod()), pod(), Context())
    assert [c.get("tty") for c in obj["spec"]["containers"]] == [True, True]


def test_mutations_are_autogenerated_for_workloads() -> None:
    ev = evaluator({"patchStrategicMerge": {"metadata": {"labels": {"+(mutated)": "yes"}}}})
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "apps"},
                  "spec": {"template": {"metadata": {"labels": {"app": "d"}}, "spec": pod()["spec"]}}}
    obj, [result] = ev.mutate(Request.for_object(deployment), deployment, Context())
    assert result.rule == "autogen-r"
    assert obj["spec"]["template"]["metadata"]["labels"] == {"app": "d", "mutated": "yes"}


def test_mutation_results_feed_later_rules() -> None:
    doc = {"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "m"}, "spec": {"rules": [
        {"name": "one", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
         "mutate": {"patchStrategicMerge": {"metadata": {"labels": {"step": "1"}}}}},
        {"name": "two", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
         "mutate": {"patchStrategicMerge": {"metadata": {"labels": {
             "copy": "{{ request.object.metadata.labels.step }}"}}}}}]}}
    ev = KyvernoEvaluator.from_documents(load_text(yaml.safe_dump(doc), "m.yaml"))
    obj, results = ev.mutate(Request.for_object(pod()), pod(), Context())
    assert obj["metadata"]["labels"] == {"step": "1", "copy": "1"}
    assert [r.status for r in results] == [Status.PASS, Status.PASS]


def test_json6902_negative_indices_create_lists() -> None:
    ops = [{"op": "add", "path": "/spec/affinity/terms/-1/match/-1", "value": {"key": "zone"}}]
    out = json6902(pod(), ops)
    assert out["spec"]["affinity"] == {"terms": [{"match": [{"key": "zone"}]}]}
    more = json6902(out, [{"op": "add", "path": "/spec/affinity/terms/0/match/-1", "value": {"key": "rack"}}])
    assert more["spec"]["affinity"]["terms"][0]["match"] == [{"key": "zone"}, {"key": "rack"}]
    last = json6902(pod(), [{"op": "remove", "path": "/spec/containers/-1"}])
    assert [c["name"] for c in last["spec"]["containers"]] == ["app"]


def test_new_list_elements_come_first_as_kustomize_merges_them() -> None:
    base = {"containers": [{"name": "app", "image": "x"}]}
    patch = {"containers": [{"name": "sidecar", "image": "y"}]}
    assert [c["name"] for c in merge(base, patch)["containers"]] == ["sidecar", "app"]


def test_preprocess_nested_condition_with_add_anchor_and_wildcard_name() -> None:
    from admission.engines.yaml.mutate import preprocess

    resource = {"spec": {"volumes": [{"emptyDir": {}, "name": "vol02"}, {"hostPath": {"path": "/x"}, "name": "h"}]}}
    patch = {"spec": {"volumes": [{"(emptyDir)": {"+(sizeLimit)": "20Mi"}, "name": "*"}]}}
    assert preprocess(resource, patch) == {"spec": {"volumes": [{"name": "vol02", "emptyDir": {"sizeLimit": "20Mi"}}]}}
    # `?` matches one character: hello2 and hello3, not hello
    containers = {"containers": [{"name": "hello"}, {"name": "hello2"}, {"name": "hello3"}]}
    out = preprocess(containers, {"containers": [{"(name)": "hello?", "image": "busybox:1"}]})
    assert out == {"containers": [{"image": "busybox:1", "name": "hello2"}, {"image": "busybox:1", "name": "hello3"}]}
