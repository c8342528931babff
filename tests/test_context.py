"""Kyverno rule `context` entries resolved against cluster state (admission.engines.yaml.context)."""

from __future__ import annotations

from typing import Any

import pytest

from admission.engines.yaml.context import api_get, load_context, parse_label_selector, selector_accepts
from admission.engines.yaml.variables import VariableError, VariableNotFound, Variables
from admission.review import Request
from admission.state import ClusterState, unavailable


def obj(api_version: str, kind: str, name: str, namespace: str = "", **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if "labels" in extra:
        meta["labels"] = extra.pop("labels")
    return {"apiVersion": api_version, "kind": kind, "metadata": meta, **extra}


STATE = ClusterState([
    obj("v1", "Namespace", "team-a", labels={"env": "prod"}),
    obj("v1", "ConfigMap", "settings", "team-a", data={"registry": "registry.example.com", "max": "3"}),
    obj("v1", "ConfigMap", "global", "default", data={"mode": "strict"}),
    obj("v1", "Pod", "p2", "team-a", labels={"app": "web"}),
    obj("v1", "Pod", "p1", "team-a", labels={"app": "db"}),
    obj("v1", "Pod", "other", "team-b", labels={"app": "web"}),
    obj("networking.k8s.io/v1", "NetworkPolicy", "default-deny", "team-a", spec={"podSelector": {}}),
    obj("apps/v1", "Deployment", "web", "team-a", spec={"replicas": 2}),
    obj("example.com/v1", "Widget", "w1", "team-a"),
])


def variables(namespace: str = "team-a") -> Variables:
    pod = obj("v1", "Pod", "new", namespace, labels={"app": "web"}, spec={"containers": [
        {"name": "c", "image": "nginx"}]})
    return Variables.for_request(Request.for_object(pod))


# ---------------------------------------------------------------------------------------------- variable

def test_variable_entries_resolve_in_order_and_see_earlier_ones() -> None:
    v = variables()
    load_context([
        {"name": "base", "variable": {"value": {"n": 2, "who": "{{ request.object.metadata.name }}"}}},
        {"name": "doubled", "variable": {"jmesPath": "multiply(base.n, `2`)"}},
        {"name": "picked", "variable": {"value": [1, 2, 3], "jmesPath": "[1]"}},
        {"name": "fallback", "variable": {"jmesPath": "request.object.metadata.labels.missing", "default": "none"}},
        {"name": "nulled", "variable": {"jmesPath": "request.oldObject", "default": "was-null"}},
    ], v, STATE)
    assert v.query("base") == {"n": 2, "who": "new"}
    assert v.query("doubled") == 4
    assert v.query("picked") == 2
    assert v.query("fallback") == "none"
    assert v.query("nulled") == "was-null"


def test_variable_without_value_or_default_is_an_error() -> None:
    v = variables()
    load_context([
        {"name": "gone", "variable": {"jmesPath": "request.object.metadata.labels.missing"}},
        {"name": "nothing", "variable": {"jmesPath": "request.oldObject"}},
    ], v, STATE)
    with pytest.raises(VariableError, match="Unknown key"):
        v.query("gone")
    with pytest.raises(VariableError, match="evaluated to nil"):
        v.query("nothing")


def test_variable_jmespath_may_contain_variables() -> None:
    v = variables()
    load_context([
        {"name": "key", "variable": {"value": "app"}},
        {"name": "label", "variable": {"jmesPath": "request.object.metadata.labels.{{ key }}"}},
    ], v, STATE)
    assert v.substitute("{{ label }}") == "web"


# ---------------------------------------------------------------------------------------------- configMap

def test_config_map_entry_exposes_data_and_metadata() -> None:
    v = variables()
    load_context([{"name": "cfg", "configMap": {"name": "settings", "namespace": "{{ request.namespace }}"}}],
                 v, STATE)
    assert v.query("cfg.data.registry") == "registry.example.com"
    assert v.query("cfg.metadata.name") == "settings"
    assert v.substitute("max {{ cfg.data.max }}") == "max 3"


def test_config_map_namespace_defaults_to_default() -> None:
    v = variables()
    load_context([{"name": "g", "configMap": {"name": "global"}}], v, STATE)
    assert v.query("g.data.mode") == "strict"


def test_missing_config_map_is_an_error() -> None:
    v = variables()
    load_context([{"name": "cfg", "configMap": {"name": "nope", "namespace": "team-a"}}], v, STATE)
    with pytest.raises(VariableError, match='configmaps "nope" not found'):
        v.query("cfg.data")


def test_namespaced_policy_cannot_read_other_namespaces() -> None:
    v = variables()
    load_context([{"name": "cfg", "configMap": {"name": "global", "namespace": "default"}}], v, STATE,
                 policy_namespace="team-a")
    with pytest.raises(VariableError, match="different from policy namespace"):
        v.query("cfg")


# ---------------------------------------------------------------------------------------------- apiCall

def test_api_call_list_in_namespace() -> None:
    v = variables()
    load_context([
        {"name": "pods", "apiCall": {"urlPath": "/api/v1/namespaces/{{ request.namespace }}/pods"}},
        {"name": "names", "apiCall": {"urlPath": "/api/v1/namespaces/{{ request.namespace }}/pods",
                                      "jmesPath": "items[].metadata.name"}},
        {"name": "count", "apiCall": {"urlPath": "/api/v1/namespaces/team-a/pods",
                                      "jmesPath": "length(items)"}},
    ], v, STATE)
    pods = v.query("pods")
    assert pods["kind"] == "PodList" and pods["apiVersion"] == "v1"
    assert [p["metadata"]["name"] for p in pods["items"]] == ["p1", "p2"]
    assert v.query("names") == ["p1", "p2"]
    assert v.query("count") == 2


def test_api_call_network_policies_and_single_objects() -> None:
    v = variables()
    load_context([
        {"name": "netpols", "apiCall": {
            "urlPath": "/apis/networking.k8s.io/v1/namespaces/{{request.namespace}}/networkpolicies",
            "jmesPath": "items[?selector_match(spec.podSelector, `{\"app\": \"web\"}`)].metadata.name"}},
        {"name": "ns", "apiCall": {"urlPath": "/api/v1/namespaces/{{request.namespace}}"}},
        {"name": "deploy", "apiCall": {"urlPath": "/apis/apps/v1/namespaces/team-a/deployments/web",
                                       "jmesPath": "spec.replicas"}},
        {"name": "allpods", "apiCall": {"urlPath": "/api/v1/pods", "jmesPath": "items[].metadata.name"}},
        {"name": "widgets", "apiCall": {"urlPath": "/apis/example.com/v1/namespaces/team-a/widgets",
                                        "jmesPath": "items[].metadata.name"}},
    ], v, STATE)
    assert v.query("netpols") == ["default-deny"]
    assert v.query("ns.metadata.labels.env") == "prod"
    assert v.query("deploy") == 2
    assert v.query("allpods") == ["p1", "p2", "other"]
    assert v.query("widgets") == ["w1"]


def test_api_call_label_selector() -> None:
    listed = api_get("/api/v1/pods?labelSelector=app%3Dweb", STATE)
    assert [p["metadata"]["name"] for p in listed["items"]] == ["p2", "other"]
    listed = api_get("/api/v1/namespaces/team-a/pods?labelSelector=app+in+(db,cache)", STATE)
    assert [p["metadata"]["name"] for p in listed["items"]] == ["p1"]


def test_label_selector_strings() -> None:
    reqs = parse_label_selector("app=web,tier!=db,env in (a,b),!legacy,team")
    assert selector_accepts(reqs, {"app": "web", "env": "a", "team": "x"})
    assert not selector_accepts(reqs, {"app": "web", "env": "a", "team": "x", "legacy": "1"})
    assert not selector_accepts(reqs, {"app": "web", "env": "c", "team": "x"})
    assert not selector_accepts(reqs, {"app": "web", "env": "a", "team": "x", "tier": "db"})


def test_api_call_default_applies_when_the_call_fails() -> None:
    v = variables()
    load_context([
        {"name": "missing", "apiCall": {"urlPath": "/api/v1/namespaces/team-a/pods/nope",
                                        "jmesPath": "metadata.name", "default": "fallback"}},
        {"name": "unknown", "apiCall": {"urlPath": "/apis/nothing.io/v1/things", "default": []}},
        {"name": "fails", "apiCall": {"urlPath": "/api/v1/namespaces/team-a/pods/nope"}},
    ], v, STATE)
    assert v.query("missing") == "fallback"
    assert v.query("unknown") == []
    with pytest.raises(VariableError, match='pods "nope" not found'):
        v.query("fails")


def test_api_call_jmespath_error_is_reported() -> None:
    v = variables()
    load_context([{"name": "bad", "apiCall": {"urlPath": "/api/v1/namespaces/team-a/pods",
                                              "jmesPath": "items[0].metadata.missing"}}], v, STATE)
    with pytest.raises(VariableError, match="failed to apply JMESPath"):
        v.query("bad")


def test_no_cluster_state_is_an_error_even_with_a_default() -> None:
    v = variables()
    state = unavailable("no cluster configured")
    load_context([
        {"name": "pods", "apiCall": {"urlPath": "/api/v1/namespaces/team-a/pods", "default": []}},
        {"name": "cfg", "configMap": {"name": "settings"}},
    ], v, state)
    with pytest.raises(VariableError, match="no cluster state.*no cluster configured"):
        v.query("pods")
    with pytest.raises(VariableError, match="no cluster state"):
        v.substitute("{{ cfg.data }}")


def test_unused_entries_are_never_loaded() -> None:
    v = variables()
    load_context([{"name": "pods", "apiCall": {"urlPath": "/api/v1/namespaces/team-a/pods"}}], v,
                 unavailable("no cluster configured"))
    assert v.substitute("{{ request.operation }}") == "CREATE"


def test_eager_loading_raises_at_once() -> None:
    v = variables()
    with pytest.raises(VariableError, match="no cluster state"):
        load_context([{"name": "pods", "apiCall": {"urlPath": "/api/v1/pods"}}], v,
                     unavailable("none"), deferred=False)


def test_skipped_entries_keep_supplied_values() -> None:
    v = variables()
    v.set("pods", {"items": ["from-values"]})
    load_context([{"name": "pods", "apiCall": {"urlPath": "/api/v1/pods"}}], v, unavailable("none"),
                 skip={"pods"})
    assert v.query("pods.items") == ["from-values"]


# ---------------------------------------------------------------------------------------------- imageRegistry, errors

def test_image_registry_needs_supplied_data() -> None:
    v = variables()
    load_context([{"name": "img", "imageRegistry": {"reference": "{{ images.containers.c.reference }}"}}],
                 v, STATE)
    with pytest.raises(VariableError, match="no image registry data"):
        v.query("img")
    v2 = variables()
    load_context([{"name": "img", "imageRegistry": {"reference": "{{ images.containers.c.reference }}",
                                                    "jmesPath": "configData.config.User"}}],
                 v2, STATE, image_data={"docker.io/nginx:latest": {"configData": {"config": {"User": "root"}}}})
    assert v2.query("img") == "root"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([{"variable": {"value": 1}}], "has no name"),
        (["nope"], "must be an object"),
        ([{"name": "x"}], "missing ConfigMap|APICall|ImageRegistry|Variable"),
        ([{"name": "x", "globalReference": {"name": "g"}}], "not supported"),
    ],
)
def test_malformed_entries(entries: list[Any], message: str) -> None:
    with pytest.raises(VariableError, match=message.replace("|", r"\|")):
        load_context(entries, variables(), STATE)


def test_missing_context_variable_is_not_found() -> None:
    v = variables()
    load_context([{"name": "known", "variable": {"value": 1}}], v, STATE)
    with pytest.raises(VariableNotFound):
        v.substitute("{{ unknown }}")
