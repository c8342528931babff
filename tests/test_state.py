import pytest

from admission.state import ClusterState, StateUnavailable, unavailable

NP = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "np", "namespace": "a"}}
NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"team": "x"}}}


def test_list_by_kind_and_namespace():
    s = ClusterState([NP, NS])
    assert s.list("NetworkPolicy", namespace="a") == [NP]
    assert s.list("NetworkPolicy", namespace="b") == []
    assert s.list("NetworkPolicy", api_version="networking.k8s.io/v1") == [NP]
    assert s.get("Namespace", "a") == NS
    assert s.namespace_labels("a") == {"team": "x"}
    assert s.namespace_labels("zzz") is None


def test_replace_and_remove():
    s = ClusterState([NP])
    s.replace("networking.k8s.io/v1", "NetworkPolicy", [])
    assert s.list("NetworkPolicy") == []
    s.put(NP)
    s.remove(NP)
    assert s.objects() == []


def test_unavailable_state_raises_with_reason():
    s = unavailable("no cluster configured")
    with pytest.raises(StateUnavailable, match="no cluster configured"):
        s.list("NetworkPolicy", namespace="a")
    assert s.namespace_labels("a") is None
