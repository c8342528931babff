"""Micro-benchmark of the Rego engine: µs per request against 1 and against 20 Gatekeeper constraints.

    python bench/rego_micro.py [--requests 2000] [--threads 1]

Uses the Gatekeeper guardrails in policies/gatekeeper (allowed registries, container limits, required
labels): the 1-constraint set is the allowed-registries constraint; the 20-constraint set holds 20
constraints of those three templates (different names and parameters), all matching the request. The
request is a Pod with three containers, once compliant with every constraint (the common case) and once
violating every constraint (so messages are produced and parsed). Timed: RegoEvaluator.validate (match, one input conversion, one query, results).
Target (issue 3): 20 constraints cost at most about twice one.

Then the input conversion alone for a realistic running Pod and a Deployment (status, annotations,
managedFields): the whole review, without managedFields, and pruned to the paths the guardrail templates
read; each parsed as JSON text and built value by value. Both cost per JSON value (~5-15 µs parsed, about
half that built), so leaving out what no policy reads is what makes it cheaper.

Times are medians of wall-clock time; on a shared machine compare them within one run only.
"""

from __future__ import annotations

import argparse
import copy
import json
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


def _container(i: int) -> dict[str, Any]:
    return {
        "name": f"app{i}",
        "image": f"registry.example.com/team/app{i}:1.2.3",
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
        "env": [{"name": f"VAR_{k}", "value": f"value-{k}"} for k in range(8)],
        "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10, "failureThreshold": 3},
        "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": True}],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
    }


def _pod_spec() -> dict[str, Any]:
    return {
        "containers": [_container(i) for i in range(2)],
        "dnsPolicy": "ClusterFirst",
        "restartPolicy": "Always",
        "serviceAccountName": "default",
        "terminationGracePeriodSeconds": 30,
        "nodeName": "node-1",
        "tolerations": [
            {"effect": "NoExecute", "key": f"node.kubernetes.io/{k}", "operator": "Exists", "tolerationSeconds": 300}
            for k in ("not-ready", "unreachable")
        ],
        "volumes": [{"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
        ]}}],
    }


def _managed_fields(n: int) -> list[dict[str, Any]]:
    fields = {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {'k:{"name":"app0"}': {".": {}, "f:image": {}}}}}
    return [{"apiVersion": "v1", "fieldsType": "FieldsV1", "manager": f"m{i}", "operation": "Update", "fieldsV1": fields} for i in range(n)]


LABELS = {"app": "web", "team": "core", "app.kubernetes.io/name": "web", "pod-template-hash": "5d4f8b7c9"}
REAL_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {
        "name": "web-5d4f8b7c9-abcde", "namespace": "apps", "uid": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0",
        "resourceVersion": "123456", "creationTimestamp": "2024-01-01T00:00:00Z", "labels": LABELS,
        "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z", "prometheus.io/scrape": "true"},
        "ownerReferences": [{"apiVersion": "apps/v1", "controller": True, "kind": "ReplicaSet", "name": "web-5d4f8b7c9", "uid": "1b1c"}],
        "managedFields": _managed_fields(3),
    },
    "spec": _pod_spec(),
    "status": {
        "phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.1.0.5", "qosClass": "Burstable",
        "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": "2024-01-01T00:00:00Z"}
                       for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
        "containerStatuses": [{"name": f"app{i}", "image": f"registry.example.com/team/app{i}:1.2.3", "imageID": "sha256:" + "a" * 64,
                               "containerID": "containerd://" + "b" * 64, "ready": True, "restartCount": 0,
                               "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}} for i in range(2)],
    },
}
REAL_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {
        "name": "web", "namespace": "apps", "uid": "2b1c", "generation": 4, "labels": LABELS,
        "annotations": {"deployment.kubernetes.io/revision": "4", "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": LABELS}, "spec": {"template": {"spec": _pod_spec()}}}
        )},
        "managedFields": _managed_fields(3),
    },
    "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "web"}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
        "template": {"metadata": {"labels": LABELS}, "spec": _pod_spec()},
    },
    "status": {"availableReplicas": 3, "readyReplicas": 3, "replicas": 3, "observedGeneration": 4,
               "conditions": [{"type": t, "status": "True", "reason": "r", "lastTransitionTime": "2024-01-01T00:00:00Z"} for t in ("Available", "Progressing")]},
}


def conversion(rounds: int = 200) -> None:
    """The engine's input conversion for realistic reviews (whole, without managedFields, pruned to what the
    guardrail templates read): parsed as JSON text (set_input_term, which the engine used before) and built
    value by value (backend.to_input, what it uses now)."""
    import regopy

    from admission.engines.rego.backend import to_input
    from admission.engines.rego.gatekeeper import ConstraintSet, _review
    from admission.engines.rego.inventory import trim_review
    from admission.engines.rego.paths import prune

    paths = ConstraintSet.from_documents(constraint_docs(3), isolate=False).review_paths
    interpreter = regopy.Interpreter()

    def built(doc: dict[str, Any]) -> None:
        interpreter.set_input(regopy.Input(to_input(doc)))

    for name, obj in (("Pod", REAL_POD), ("Deployment", REAL_DEPLOYMENT)):
        request = Request.for_object(obj)
        forms = (
            ("whole review", _review(request)),
            ("without managedFields", trim_review(_review(request), False)),
            ("pruned to read paths", prune(trim_review(_review(request), False), paths)),
        )
        for label, review in forms:
            doc = {"review": review, "matched__": "c0"}
            text = json.dumps(doc)
            timings = []
            for convert in (lambda t=text: interpreter.set_input_term(t), lambda d=doc: built(d)):
                samples = []
                for _ in range(rounds):
                    s = time.perf_counter()
                    convert()
                    samples.append(time.perf_counter() - s)
                timings.append(statistics.median(samples) * 1e6)
            print(f"{name:<10} {label:<22} {len(text):6d} bytes  JSON text {timings[0]:7.0f} µs  built {timings[1]:7.0f} µs")


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
        ("guardrails, realistic running Pod (status, managedFields; 20: some labels missing)", REAL_POD, constraint_docs),
        ("guardrails, Pod violating every constraint", POD, constraint_docs),
        ("trivial Rego (engine overhead only), compliant Pod", GOOD_POD, trivial_docs),
    )
    for label, obj, docs in cases:
        print(label)
        one, _, _ = measure(1, args.requests, args.threads, obj, docs)
        twenty, _, _ = measure(20, args.requests, args.threads, obj, docs)
        print(f"ratio 20/1: {twenty / one:.2f} (target: at most about 2)")
    print("input conversion")
    conversion()


if __name__ == "__main__":
    main()
