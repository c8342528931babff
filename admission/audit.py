"""`admission audit`: check what already runs in a cluster against the policies (a background scan).

The resources are listed through the Kubernetes API and evaluated as `lint` evaluates manifests, through
the same Engine, with the listed objects as the cluster state. Objects a controller owns (a Deployment's
ReplicaSets and Pods, a CronJob's Jobs) are left out by default: their controller is checked through its
pod template, so each problem is reported once, where it is fixed. Nothing listed is changed; with
`write_reports` the results are written as policy reports (admission.policyreport), one per namespace, by
server-side apply under our own field manager, and our reports of namespaces with nothing left to report
are deleted.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TextIO, TypeVar

from admission import policyreport
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
_T = TypeVar("_T")
# Told (resources evaluated, resources in all) as the audit goes; the CLI draws a progress bar with it.
Progress = Callable[[int, int], None]


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


def kube_api(kubeconfig: str | None = None, context: str | None = None) -> Any:
    """A dynamic client for the cluster admission.cluster chooses (--kubeconfig/--context, $KUBECONFIG,
    in-cluster, ~/.kube/config). Raises ClusterError (one line) when there is none or it cannot be reached."""
    from kubernetes import dynamic

    # one attempt per call: an unreachable API server is reported at once, not after urllib3's retries
    cluster = connect(kubeconfig, context, retries=0)
    try:
        return dynamic.DynamicClient(cluster.api)  # reads the API server's discovery
    except Exception as exc:
        raise ClusterError(f"cannot reach the Kubernetes API server at {cluster.host}: {one_line(exc)}") from None


def kube_lister(api: Any = None) -> Lister:
    """A Lister over a dynamic client (by default kube_api()'s)."""
    api = api if api is not None else kube_api()

    def list_objects(api_version: str, kind: str, namespace: str) -> list[Object]:
        try:
            resource = api.resources.get(api_version=api_version, kind=kind)
            listing: Any = resource.get(namespace=namespace or None)
        except Exception as exc:  # the client raises many types; each becomes one clear message
            raise ClusterError(f"cannot list {api_version}/{kind}: {one_line(exc)}") from None
        return [item for item in listing.to_dict().get("items") or []]

    return list_objects


class ReportStore(Protocol):
    """Where policy reports of one format are kept: the cluster (KubeReportStore), or a test's dict."""

    def existing(self) -> dict[str, Object]:
        """Our reports now stored, by namespace ("" = the cluster-scoped one)."""
        ...

    def apply(self, doc: Object) -> str:
        """Create or update a report (server-side apply); returns its resourceVersion."""
        ...

    def delete(self, namespace: str) -> None: ...


RETRIES = 5  # attempts at an API call answered 429 (the API server's flow control, a CRD not ready yet)


def _retrying(call: Callable[[], _T], sleep: Callable[[float], None] = time.sleep) -> _T:
    """call(), again after the Retry-After the API server asks for (at most 5 s) while it answers 429."""
    for attempt in range(RETRIES):
        try:
            return call()
        except Exception as exc:
            if getattr(exc, "status", None) != 429 or attempt == RETRIES - 1:
                raise
            headers = getattr(exc, "headers", None) or {}
            try:
                delay = float(headers.get("Retry-After") or 1)
            except (TypeError, ValueError):
                delay = 1.0
            sleep(min(max(delay, 0.1), 5.0))
    raise AssertionError("unreachable")


class KubeReportStore:
    """Our reports in the cluster, through the dynamic client."""

    def __init__(self, api: Any, form: policyreport.Format) -> None:
        self.api = api
        self.form = form
        self.kinds: dict[bool, Any] = {}
        for scoped, kind in ((True, form.kind), (False, form.cluster_kind)):
            try:
                self.kinds[scoped] = api.resources.get(api_version=form.api_version, kind=kind)
            except Exception as exc:
                raise ClusterError(f"the cluster does not serve {form.api_version} {kind} ({one_line(exc, 120)}): "
                                   f"install its CustomResourceDefinition (deploy/crds/) or choose another "
                                   f"--report-format") from None

    def existing(self) -> dict[str, Object]:
        selector = "=".join(policyreport.MANAGED_BY)
        found: dict[str, Object] = {}
        for resource in self.kinds.values():
            try:
                items = _retrying(functools.partial(resource.get, label_selector=selector)).to_dict().get("items") or []
            except Exception as exc:
                raise ClusterError(f"cannot list {self.form.api_version} {resource.kind}: {one_line(exc)}") from None
            for item in items:
                meta = item.get("metadata") or {}
                if meta.get("name") == policyreport.REPORT_NAME:
                    found[str(meta.get("namespace") or "")] = item
        return found

    def apply(self, doc: Object) -> str:
        namespace = str(doc["metadata"].get("namespace") or "")
        try:
            out = _retrying(lambda: self.api.server_side_apply(
                self.kinds[bool(namespace)], body=doc, namespace=namespace or None,
                field_manager=policyreport.FIELD_MANAGER, force_conflicts=True))
        except Exception as exc:
            raise ClusterError(f"cannot write {doc['kind']} {namespace + '/' if namespace else ''}"
                               f"{doc['metadata']['name']}: {one_line(exc)}") from None
        return str(out.metadata.resourceVersion)

    def delete(self, namespace: str) -> None:
        try:
            _retrying(lambda: self.api.delete(self.kinds[bool(namespace)], name=policyreport.REPORT_NAME,
                                              namespace=namespace or None))
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                raise ClusterError(f"cannot delete the stale report of {namespace or 'the cluster'}: "
                                   f"{one_line(exc)}") from None


@dataclass(frozen=True)
class Written:
    applied: int  # created or changed
    unchanged: int
    deleted: int


def write_reports(store: ReportStore, reports: list[Object], previous: dict[str, Object], *,
                  namespace: str = "") -> Written:
    """Apply the reports and delete our stale ones: reports of namespaces this audit covered and found
    nothing in (with `namespace`, only that namespace's report is touched, the cluster-scoped one not at all)."""
    applied = unchanged = deleted = 0
    fresh = set()
    for doc in reports:
        ns = str(doc["metadata"].get("namespace") or "")
        fresh.add(ns)
        before = str(((previous.get(ns) or {}).get("metadata") or {}).get("resourceVersion") or "")
        if store.apply(doc) == before and before:
            unchanged += 1
        else:
            applied += 1
    for ns in previous:
        if ns in fresh or (namespace and ns != namespace):
            continue
        store.delete(ns)
        deleted += 1
    return Written(applied, unchanged, deleted)


def render_reports(out: TextIO, reports: list[Object]) -> None:
    """`-o policyreport`: the reports as YAML documents, ready for `kubectl apply -f -`."""
    import yaml

    out.write(yaml.safe_dump_all(reports, sort_keys=False) if reports else "")


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
    write: bool = False,
    report_format: str = policyreport.DEFAULT_FORMAT,
    max_results: int = policyreport.MAX_RESULTS,
    store: ReportStore | None = None,
    api: Any = None,
    progress: Progress | None = None,
    kubeconfig: str | None = None,
    context: str | None = None,
) -> int:
    """`admission audit`: print the results in `fmt` (lint's formats, or "policyreport"), and with `write`
    also write them to the cluster as reports. `progress(done, total)` is told how far evaluation is."""
    from admission import report

    err = err or sys.stderr
    if report_format not in policyreport.FORMATS:
        err.write(f"error: unknown report format {report_format!r} (choose from {', '.join(policyreport.FORMATS)})\n")
        return EXIT_USAGE
    if max_results < 1:
        err.write("error: --max-results must be at least 1\n")
        return EXIT_USAGE
    try:
        wanted = [parse_kind(k) for k in kinds] if kinds else list(DEFAULT_KINDS)
        engine = load_engine(policies, allow_empty=allow_empty)
        if lister is None or (write and store is None):
            api = api if api is not None else kube_api(kubeconfig, context)
        objects = fetch(lister or kube_lister(api), wanted, namespace)
        if write and store is None:
            store = KubeReportStore(api, policyreport.FORMATS[report_format])
        previous = store.existing() if store is not None and write else {}
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
    evaluations = evaluate(engine, resources, mutate=False, state_objects=objects,
                           progress=_counter(progress, len(resources)) if progress else None)
    found = findings(evaluations)
    reports: list[Object] = []
    if write or fmt == "policyreport":
        reports = policyreport.build(evaluations, engine.policies(), report_format, previous=previous,
                                     max_results=max_results)
        if namespace:  # the cluster-scoped objects listed alongside are not this audit's to report
            reports = [r for r in reports if r["metadata"].get("namespace") == namespace]
    if fmt == "policyreport":
        render_reports(out, reports)
    else:
        report.FORMATS[fmt](out, evaluations, found, engine)
    if write and store is not None:
        try:
            written = write_reports(store, reports, previous, namespace=namespace)
        except ClusterError as exc:
            err.write(f"error: {exc}\n")
            return EXIT_USAGE
        form = policyreport.FORMATS[report_format]
        err.write(f"reports ({form.api_version} {form.kind}/{form.cluster_kind}): {written.applied} written, "
                  f"{written.unchanged} unchanged, {written.deleted} stale deleted\n")
    return EXIT_FINDINGS if any(f.enforced for f in found) else EXIT_OK


def _counter(progress: Progress, total: int) -> Callable[[int], None]:
    done = 0
    progress(0, total)

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress(done, total)

    return advance
