"""`admission lint`: check manifests against the policies offline, as the API server would on CREATE.

Every resource read is evaluated as a CREATE through the pipeline the server runs (Engine.review). The
linted objects together are the cluster state the policies see (so the NetworkPolicies and Namespaces
among them count), and mutating policies run first, as the API server calls mutating webhooks before
validating ones. An object whose apiVersion Kubernetes has removed is a finding (admission.removed);
documents that are not Kubernetes objects are reported as skipped.
Exit codes: 0 nothing enforced fails, 1 something does, 2 unusable input (files, YAML, policies, or no
Kubernetes resources at all).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, TypeVar

from admission import removed
from admission.decide import denies
from admission.engine import Engine, Phase
from admission.engines import Context, PolicyError
from admission.manifests import Document, Locator, ManifestError, find_files, load_file, load_text
from admission.objects import ObjectIdentity
from admission.results import RuleResult, Status
from admission.review import Request
from admission.state import ClusterState
from admission.types import Object

_T = TypeVar("_T")
_R = TypeVar("_R")

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2

STDIN = "<stdin>"

# API groups whose documents configure policy engines, their tests or other tools (kustomize): they are
# not cluster objects, so they are not linted as resources.
POLICY_GROUPS = (
    "kustomize.config.k8s.io/",
    "kyverno.io/",
    "cli.kyverno.io/",
    "templates.gatekeeper.sh/",
    "constraints.gatekeeper.sh/",
    "test.gatekeeper.sh/",
    "mutations.gatekeeper.sh/",
    "expansion.gatekeeper.sh/",
    "config.gatekeeper.sh/",
    "admission.dev/",
)

# Kinds that live outside namespaces; every other kind gets `default` when its manifest names none,
# as `kubectl apply` would do with the default context.
CLUSTER_SCOPED = frozenset({
    "APIService", "CertificateSigningRequest", "ClusterRole", "ClusterRoleBinding", "ComponentStatus",
    "CSIDriver", "CSINode", "CustomResourceDefinition", "FlowSchema", "IngressClass",
    "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding", "MutatingWebhookConfiguration",
    "Namespace", "Node", "PersistentVolume", "PodSecurityPolicy", "PriorityClass",
    "PriorityLevelConfiguration", "RuntimeClass", "SelfSubjectAccessReview", "SelfSubjectReview",
    "SelfSubjectRulesReview", "StorageClass", "SubjectAccessReview", "TokenReview",
    "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration",
    "VolumeAttachment", "ClusterIssuer",
})


@dataclass(frozen=True)
class Resource(ObjectIdentity):
    obj: Object
    file: str
    line: int

    @property
    def label(self) -> str:
        """How reports name the resource: `Kind ns/name` (or `Kind name` outside namespaces)."""
        ref = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {ref}"


@dataclass(frozen=True)
class Evaluation:
    """Every rule result for one resource: the removed-API check, mutating rules, validating rules."""

    resource: Resource
    results: list[RuleResult]


@dataclass(frozen=True)
class Finding:
    resource: Resource
    result: RuleResult
    # (line, column) of the field the rule failed on, where the source has it (see locate)
    region: tuple[int, int] | None = None

    @property
    def enforced(self) -> bool:
        return denies(self.result)


def is_lintable(obj: object) -> bool:
    """A Kubernetes object that is not itself a policy, a policy exception or a test."""
    if not isinstance(obj, dict) or not obj.get("kind") or not isinstance(obj.get("apiVersion"), str):
        return False
    return not str(obj["apiVersion"]).startswith(POLICY_GROUPS)


def with_namespace(obj: Object, default: str) -> Object:
    """The object, with `metadata.namespace` filled in when a namespaced kind has none (a shallow copy)."""
    kind = str(obj.get("kind") or "")
    meta = obj.get("metadata")
    cluster_scoped = kind in CLUSTER_SCOPED or kind.startswith("Cluster")  # ClusterRole, ClusterIssuer, ...
    if cluster_scoped or not default or (isinstance(meta, dict) and meta.get("namespace")):
        return obj
    out = dict(obj)
    out["metadata"] = {**(meta if isinstance(meta, dict) else {}), "namespace": default}
    return out


def collect(docs: Iterable[Document], default_namespace: str = "default") -> list[Resource]:
    return [
        Resource(with_namespace(d.obj, default_namespace), d.file, d.line)
        for d in docs
        if is_lintable(d.obj)
    ]


def skipped(docs: Iterable[Document]) -> list[str]:
    """Why each document that is not linted is left out, as `file:line: ...` notes."""
    notes: list[str] = []
    for d in docs:
        if is_lintable(d.obj):
            continue
        if isinstance(d.obj, dict) and d.obj.get("kind") and isinstance(d.obj.get("apiVersion"), str):
            why = f"{d.obj['apiVersion']} {d.obj['kind']} configures a tool (policies, tests, kustomize); not linted"
        else:
            if isinstance(d.obj, dict):
                missing = " and ".join(k for k in ("apiVersion", "kind")
                                       if not (d.obj.get(k) and isinstance(d.obj.get(k), str)))
                why = f"not a Kubernetes object (no {missing}); skipped"
            else:
                why = f"not a Kubernetes object (a {type(d.obj).__name__}, not a mapping); skipped"
        notes.append(f"{d.file}:{d.line}: {why}")
    return notes


def evaluate(
    engine: Engine, resources: list[Resource], *, mutate: bool = True, workers: int | None = None,
    state_objects: Iterable[Object] | None = None, progress: Callable[[int], None] | None = None,
) -> list[Evaluation]:
    """Evaluate each resource as a CREATE; the resources together (or `state_objects`) are the cluster state.

    Large inputs are split over worker processes forked after the policies and state are built (so
    nothing is loaded twice); `workers` overrides how many (1: in this process). `progress(n)` is told
    each time n more resources are done."""
    state = ClusterState(state_objects if state_objects is not None else (r.obj for r in resources))
    job = _Job(engine, resources, Context(state=state), Phase.ALL if mutate else Phase.VALIDATE)
    n = default_workers(len(resources)) if workers is None else max(1, workers)
    if n > 1:
        results = _parallel(job, n, progress)
        if results is not None:
            return [Evaluation(res, rs) for res, rs in zip(resources, results, strict=True)]
    evaluations = []
    for res in resources:
        evaluations.append(Evaluation(res, job.results_for(res)))
        if progress is not None:
            progress(1)
    return evaluations


# Below this many resources, forking workers costs more than it saves.
PARALLEL_MIN = 300


def default_workers(count: int) -> int:
    if count < PARALLEL_MIN or sys.platform != "linux":
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8, count // (PARALLEL_MIN // 2)))


@dataclass(frozen=True)
class _Job:
    engine: Engine
    resources: list[Resource]
    ctx: Context
    phases: Phase

    def results_for(self, res: Resource) -> list[RuleResult]:
        """The resource through the pipeline, as a CREATE: every mutating and validating rule's result,
        after a removed apiVersion's (the API server would not even take the object)."""
        results = self.engine.review(Request.for_object(res.obj), self.ctx, self.phases).results
        gone = removed.check(res.obj)
        return [gone, *results] if gone is not None else results


_FORKED_JOB: _Job | None = None  # what forked workers evaluate (inherited, never pickled)


def _chunk(bounds: tuple[int, int]) -> list[list[RuleResult]]:
    job = _FORKED_JOB
    assert job is not None
    return [job.results_for(res) for res in job.resources[bounds[0]:bounds[1]]]


def _parallel(job: _Job, workers: int, progress: Callable[[int], None] | None = None
              ) -> list[list[RuleResult]] | None:
    """Results in order, computed by forked workers; None when processes cannot be used here."""
    global _FORKED_JOB
    count = len(job.resources)
    size = max(1, -(-count // (workers * 4)))
    chunks = [(i, min(count, i + size)) for i in range(0, count, size)]
    _FORKED_JOB = job
    try:
        parts = _fork_map(_chunk, chunks, workers, (lambda part: progress(len(part))) if progress else None)
    finally:
        _FORKED_JOB = None
    return None if parts is None else [rs for part in parts for rs in part]


def _fork_map(fn: Callable[[_T], _R], items: list[_T], workers: int,
              done: Callable[[_R], None] | None = None) -> list[_R] | None:
    """fn over items in forked worker processes, in order; None when processes cannot be used here or
    a worker died (a pool that lost a worker reports it instead of waiting for ever). `done` is called
    with each result as it arrives."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            results = []
            for result in pool.map(fn, items):
                results.append(result)
                if done is not None:
                    done(result)
            return results
    except (OSError, BrokenProcessPool):
        return None


# Below this much YAML, parsing in worker processes costs more than it saves.
PARALLEL_BYTES = 1_000_000


def read(paths: list[str], workers: int | None = None, texts: dict[str, str] | None = None) -> list[Document]:
    """Documents from files, folders and `-` (stdin), in order; a large input is parsed by forked
    workers, file by file. Raises ManifestError for the first file that cannot be read or parsed.
    The text read from stdin is kept in `texts` (to locate fields in it later)."""
    sources: list[Path | None] = []  # None stands for stdin
    for p in paths:
        if p == "-":
            sources.append(None)
        elif not Path(p).exists():
            raise ManifestError(p, 0, "no such file or folder")
        else:
            sources.extend(find_files(Path(p)))
    files = [f for f in sources if f is not None]
    parsed: dict[Path, list[Document]] = {}
    if workers is None:
        size = sum(f.stat().st_size for f in files)
        workers = default_workers(PARALLEL_MIN if size >= PARALLEL_BYTES and len(files) > 1 else 0)
    if workers > 1:
        parsed = _parse_parallel(files, workers) or {}
    docs: list[Document] = []
    for source in sources:
        if source is None:
            text = sys.stdin.read()
            if texts is not None:
                texts[STDIN] = text
            docs.extend(load_text(text, STDIN))
        else:
            docs.extend(parsed[source] if source in parsed else load_file(source))
    return docs


def _parse(file: Path) -> tuple[list[Document], tuple[str, int, str] | None]:
    try:
        return load_file(file), None
    except ManifestError as exc:  # sent back as plain values: the exception does not pickle
        return [], (exc.file, exc.line, exc.message)


def _parse_parallel(files: list[Path], workers: int) -> dict[Path, list[Document]] | None:
    results = _fork_map(_parse, files, workers)
    if results is None:
        return None
    out: dict[Path, list[Document]] = {}
    for file, (docs, error) in zip(files, results, strict=True):
        if error is not None:
            raise ManifestError(*error)
        out[file] = docs
    return out


def findings(evaluations: list[Evaluation]) -> list[Finding]:
    return [
        Finding(e.resource, r)
        for e in evaluations
        for r in e.results
        if r.status in (Status.FAIL, Status.WARN, Status.ERROR)
    ]


def locate(found: list[Finding], texts: dict[str, str] | None = None) -> list[Finding]:
    """The findings with the region of the field each failed on (its key's line and column), where the
    result names the field and the source has it (else its nearest ancestor there, else the object)."""
    locator = Locator(texts)
    out: list[Finding] = []
    for f in found:
        region = None
        if f.resource.line and f.result.path:
            region = locator.locate(f.resource.file, f.resource.line, f.result.path)
        out.append(Finding(f.resource, f.result, region))
    return out


def load_engine(policies: list[str], *, allow_empty: bool = False) -> Engine:
    from admission.policyset import builtin_policies, load

    return load(policies or [builtin_policies()], allow_empty=allow_empty, offline=True)


def run(
    paths: list[str],
    policies: list[str],
    fmt: str,
    out: TextIO,
    *,
    err: TextIO | None = None,
    default_namespace: str = "default",
    mutate: bool = True,
    workers: int | None = None,
    allow_empty: bool = False,
    allow_no_resources: bool = False,
) -> int:
    """Lint manifests under paths (files, folders, `-` for stdin) and write a report in fmt to out. Input
    without any Kubernetes resource is a usage error, unless `allow_no_resources` (then an empty report)."""
    from admission import report

    err = err or sys.stderr
    if fmt not in report.FORMATS:
        err.write(f"error: unknown format {fmt!r} (choose from {', '.join(report.FORMATS)})\n")
        return EXIT_USAGE
    missing = [p for p in paths if p != "-" and not Path(p).exists()]
    if missing:
        err.write(f"error: no such file or folder: {', '.join(missing)}\n")
        return EXIT_USAGE
    texts: dict[str, str] = {}
    try:
        docs = read(paths, workers, texts)
    except ManifestError as exc:
        err.write(f"error: {exc}\n")
        return EXIT_USAGE
    resources = collect(docs, default_namespace)
    notes = skipped(docs)
    if not resources and not allow_no_resources:
        for note in notes:
            err.write(f"note: {note}\n")
        err.write(f"error: no Kubernetes resources found in {', '.join(paths)}"
                  f"{f' ({len(docs)} documents, none a resource to lint)' if docs else ''}\n")
        return EXIT_USAGE
    try:
        engine = load_engine(policies, allow_empty=allow_empty)
    except (PolicyError, ManifestError) as exc:
        err.write(f"error: cannot load policies: {exc}\n")
        return EXIT_USAGE
    evaluations = evaluate(engine, resources, mutate=mutate, workers=workers)
    found = locate(findings(evaluations), texts)
    report.FORMATS[fmt](out, evaluations, found, engine, notes)
    return EXIT_FINDINGS if any(f.enforced for f in found) else EXIT_OK
