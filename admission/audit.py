"""`admission audit`: check what already runs in a cluster against the policies (a background scan).

The resources are listed through the Kubernetes API and evaluated as `lint` evaluates manifests, through
the same Engine, with the listed objects as the cluster state. Objects a controller owns (a Deployment's
ReplicaSets and Pods, a CronJob's Jobs) are left out by default: their controller is checked through its
pod template, so each problem is reported once, where it is fixed. Nothing is mutated or written.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from admission.cluster import ClusterError, connect, one_line
from admission.engines import PolicyError
from admission.lint import EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Resource, evaluate, findings, load_engine
from admission.manifests import ManifestError
from admission.types import Object

# (apiVersion, kind) listed by default: the workloads and the objects policies commonly read.
DEFAULT_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "Namespace"),
    ("v1", "Pod"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "ReplicaSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("v1", "Service"),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
)

# Lists every object of (apiVersion, kind), in one namespace or ("") all of them.
Lister = Callable[[str, str, str], list[Object]]


def parse_kind(text: str) -> tuple[str, str]:
    """`apps/v1/Deployment`, `v1/Pod` or a bare kind among the defaults."""
    api_version, _, kind = text.rpartition("/")
    if api_version:
        return api_version, kind
    for av, k in DEFAULT_KINDS:
        if k.lower() == text.lower():
            return av, k
    raise ValueError(f"unknown kind {text!r}: write it as apiVersion/Kind, e.g. apps/v1/Deployment")


def is_owned(obj: Object) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(isinstance(r, dict) and r.get("controller") for r in refs)


def fetch(lister: Lister, kinds: Iterable[tuple[str, str]], namespace: str = "") -> list[Object]:
    objects: list[Object] = []
    for api_version, kind in kinds:
        ns = "" if kind == "Namespace" else namespace
        for obj in lister(api_version, kind, ns):
            objects.append({**obj, "apiVersion": obj.get("apiVersion") or api_version, "kind": kind})
    return objects


def kube_lister(kubeconfig: str | None = None, context: str | None = None) -> Lister:
    """A Lister over the cluster admission.cluster chooses (--kubeconfig/--context, $KUBECONFIG, in-cluster,
    ~/.kube/config). Raises ClusterError (one line) when there is none or it cannot be reached."""
    from kubernetes import dynamic

    # one attempt per call: an unreachable API server is reported at once, not after urllib3's retries
    cluster = connect(kubeconfig, context, retries=0)
    try:
        api = dynamic.DynamicClient(cluster.api)  # reads the API server's discovery
    except Exception as exc:
        raise ClusterError(f"cannot reach the Kubernetes API server at {cluster.host}: {one_line(exc)}") from None

    def list_objects(api_version: str, kind: str, namespace: str) -> list[Object]:
        try:
            resource = api.resources.get(api_version=api_version, kind=kind)
            listing: Any = resource.get(namespace=namespace or None)
        except Exception as exc:  # the client raises many types; each becomes one clear message
            raise ClusterError(f"cannot list {api_version}/{kind}: {one_line(exc)}") from None
        return [item for item in listing.to_dict().get("items") or []]

    return list_objects


def run(
    policies: list[str],
    fmt: str,
    out: TextIO,
    *,
    kinds: list[str] | None = None,
    namespace: str = "",
    include_owned: bool = False,
    lister: Lister | None = None,
    err: TextIO | None = None,
    allow_empty: bool = False,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> int:
    from admission import report

    err = err or sys.stderr
    try:
        wanted = [parse_kind(k) for k in kinds] if kinds else list(DEFAULT_KINDS)
        engine = load_engine(policies, allow_empty=allow_empty)
        objects = fetch(lister or kube_lister(kubeconfig, context), wanted, namespace)
    except (ValueError, ClusterError) as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    except (PolicyError, ManifestError) as exc:
        err.write(f"error: cannot load policies: {exc}\n")
        return EXIT_USAGE
    resources = [
        Resource(obj, "cluster", 0)
        for obj in objects
        if include_owned or not is_owned(obj)
    ]
    # The state is every listed object, owned ones included: a NetworkPolicy is state whoever owns it.
    evaluations = evaluate(engine, resources, mutate=False, state_objects=objects)
    found = findings(evaluations)
    report.FORMATS[fmt](out, evaluations, found, engine)
    return EXIT_FINDINGS if any(f.enforced for f in found) else EXIT_OK
