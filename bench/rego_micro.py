"""Micro-benchmark of the Rego engine: µs per request against 1 and against 20 Gatekeeper constraints.

    python bench/rego_micro.py [--requests 2000] [--threads 1]

Uses the Gatekeeper guardrails in policies/gatekeeper (allowed registries, container limits, required
labels): the 1-constraint set is the allowed-registries constraint; the 20-constraint set holds 20
constraints of those three templates (different names and parameters), all matching the request. The
request is a Pod with three containers, once compliant with every constraint (the common case) and once
violating every constraint (so messages are produced and parsed). Timed: RegoEvaluator.validate (match, one input conversion, one query, results).
Target (issue 3): 20 constraints cost at most about twice one.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from admission.engines import Context  # noqa: E402
from admission.engines.rego import RegoEvaluator  # noqa: E402
from admission.manifests import Document, load_file  # noqa: E402
from admission.review import Request  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "policies" / "gatekeeper"
# violates every constraint (messages are produced, formatted and parsed)
POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "bench", "namespace": "apps", "labels": {"app": "bench"}},
    "spec": {
        "containers": [
            {"name": f"c{i}", "image": f"docker.io/library/app{i}:1", "resources": {"limits": {"cpu": "1"}}}
            for i in range(3)
        ]
    },
}
# passes every constraint: the common case in production
GOOD_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "bench",
        "namespace": "apps",
        "labels": {"app": "bench", "team": "core", "app.kubernetes.io/name": "bench", **{f"label-{i}": "x" for i in range(20)}},
    },
    "spec": {
        "containers": [
            {
                "name": f"c{i}",
                "image": f"registry.example.com/app{i}:1",
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}},
            }
            for i in range(3)
        ]
    },
}


TRIVIAL_TEMPLATE: dict[str, Any] = {
    "apiVersion": "templates.gatekeeper.sh/v1",
    "kind": "ConstraintTemplate",
    "metadata": {"name": "benchtrivial"},
    "spec": {
        "crd": {"spec": {"names": {"kind": "BenchTrivial"}}},
        "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": 'package benchtrivial\n\nviolation[{"msg": "never"}] {\n  input.review.object.kind == input.parameters.kind\n}\n'}],
    },
}


def trivial_docs(count: int) -> list[Document]:
    """Constraints whose Rego does almost nothing: what the engine costs per constraint beyond the Rego."""
    docs = [Document(TRIVIAL_TEMPLATE, "bench", 1)]
    for i in range(count):
        obj = {
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": "BenchTrivial",
            "metadata": {"name": f"trivial-{i}"},
            "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}, "parameters": {"kind": f"Nothing{i}"}},
        }
        docs.append(Document(obj, "bench", 1, i))
    return docs


def constraint_docs(count: int) -> list[Document]:
    docs: list[Document] = []
    folders = ["allowed-registries", "container-limits", "required-labels"]
    for folder in folders:
        docs.extend(load_file(ROOT / folder / "template.yaml"))
    for i in range(count):
        folder = folders[i % 3]
        base = load_file(ROOT / folder / "constraint.yaml")[0]
        obj = copy.deepcopy(base.obj)
        obj["metadata"]["name"] = f"{obj['metadata']['name']}-{i}"
        obj["spec"]["match"] = {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}
        if folder == "allowed-registries":
            obj["spec"]["parameters"]["registries"] = [f"registry{i}.example.com/", "registry.example.com/"]
        elif folder == "required-labels":
            obj["spec"]["parameters"]["labels"] = [{"key": f"label-{i}", "allowedRegex": ""}]
        docs.append(Document(obj, base.file, base.line, i))
    return docs


def measure(
    count: int, requests: int, threads: int, obj: dict[str, Any], docs: Any = constraint_docs
) -> tuple[float, float, int]:
    t0 = time.perf_counter()
    ev = RegoEvaluator.from_sources(docs(count), [])
    load_s = time.perf_counter() - t0
    request = Request.for_object(obj)
    ctx = Context()
    violations = len(ev.validate(request, ctx))
    for _ in range(50):  # warm up every thread's interpreter path
        ev.validate(request, ctx)
    per_thread = max(requests // threads, 1)
    samples: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        local: list[float] = []
        for _ in range(per_thread):
            s = time.perf_counter()
            ev.validate(request, ctx)
            local.append(time.perf_counter() - s)
        with lock:
            samples.extend(local)

    start = time.perf_counter()
    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    wall = time.perf_counter() - start
    median_us = statistics.median(samples) * 1e6
    throughput_us = wall / len(samples) * 1e6
    print(
        f"{count:>2} constraint(s): median {median_us:8.0f} µs/request, wall {throughput_us:8.0f} µs/request "
        f"over {len(samples)} requests on {threads} thread(s); {violations} violations per request; load {load_s:.2f} s"
    )
    return median_us, throughput_us, violations


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    cases = (
        ("guardrails, compliant Pod", GOOD_POD, constraint_docs),
        ("guardrails, Pod violating every constraint", POD, constraint_docs),
        ("trivial Rego (engine overhead only), compliant Pod", GOOD_POD, trivial_docs),
    )
    for label, obj, docs in cases:
        print(label)
        one, _, _ = measure(1, args.requests, args.threads, obj, docs)
        twenty, _, _ = measure(20, args.requests, args.threads, obj, docs)
        print(f"ratio 20/1: {twenty / one:.2f} (target: at most about 2)")


if __name__ == "__main__":
    main()
