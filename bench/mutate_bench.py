"""Mutation of a big Pod: a 2,000-container Pod review through `/mutate` of the real HTTPS server and in-process.

    python bench/mutate_bench.py [--containers 2000] [--repeat 5] [--no-server] [--json]

Each container has a few env vars, a port and a securityContext and no resources, so the built-in
`add-default-resources` policy patches every one of them (a foreach of JSON patches, one per container),
and the answer carries one JSON Patch operation per container. A 1-container Pod of the same shape is the
reference: the ratio per container shows whether the cost grows linearly with the Pod.

Prints, side by side, the best and median seconds per request of
- Engine.mutate in-process (the built-in policies, as `admission serve` loads them), with the review decoded;
- Engine.validate in-process on the same review;
- POST /mutate to `admission serve` (TLS, 1 worker, built-in policies) from a client on loopback: decoding,
  evaluation, patch, base64 and the answer.
Target: under 1 s per /mutate request for 2,000 containers.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import http_bench  # noqa: E402
import loadgen  # noqa: E402

NAMESPACE = "team-a"


def container(i: int) -> dict[str, Any]:
    return {
        "name": f"app-{i}",
        "image": f"registry.example.com/shop/svc{i % 50}:1.{i % 7}",
        "env": [{"name": f"VAR_{k}", "value": f"value-{i}-{k}"} for k in range(3)],
        "ports": [{"containerPort": 8000 + i % 1000, "protocol": "TCP"}],
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    }


def review(containers: int) -> dict[str, Any]:
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"big-{containers}", "namespace": NAMESPACE, "labels": {"app": "web", "team": "a"}},
        "spec": {"containers": [container(i) for i in range(containers)],
                 "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}},
    }
    return {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": f"00000000-0000-0000-0000-{containers:012d}",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": pod["metadata"]["name"], "namespace": NAMESPACE, "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": pod, "oldObject": None, "dryRun": False,
        },
    }


def timings(fn: Any, repeat: int) -> dict[str, float]:
    fn()  # warm-up: caches, first-use compilation
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return {"best": min(seconds), "median": statistics.median(seconds)}


def in_process(bodies: dict[int, bytes], repeat: int) -> dict[int, dict[str, Any]]:
    from admission import policyset
    from admission.engines import Context
    from admission.review import decode
    from admission.state import ClusterState

    engine = policyset.load([policyset.builtin_policies()])
    state = ClusterState([json.loads(doc) for doc in http_bench.network_policies().split("\n---\n")])
    out: dict[int, dict[str, Any]] = {}
    for n, body in bodies.items():
        outcome = engine.mutate(decode(body), Context(state=state))
        out[n] = {
            "mutate": timings(lambda: engine.mutate(decode(body), Context(state=state)), repeat),  # noqa: B023
            "validate": timings(lambda: engine.validate(decode(body), Context(state=state)), repeat),  # noqa: B023
            "patch_operations": len(outcome.patch),
        }
    return out


def over_https(bodies: dict[int, bytes], repeat: int) -> dict[int, dict[str, Any]]:
    import httpx

    from admission.certs import ensure

    tmp = Path(tempfile.mkdtemp(prefix="admission-mutate-bench-"))
    paths = ensure(tmp / "certs", "admission", "admission")
    state = tmp / "state.yaml"
    state.write_text(http_bench.network_policies())
    port = http_bench.free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    cmd = [sys.executable, "-m", "admission", "serve", "--host", http_bench.HOST, "--port", str(port),
           "--workers", "1", "--cert", str(paths.cert), "--key", str(paths.key), "--state", str(state),
           "--no-watch-policies"]
    procs: list[subprocess.Popen[bytes]] = []
    log = tmp / "server.log"
    out: dict[int, dict[str, Any]] = {}
    try:
        with log.open("wb") as sink:
            procs.append(subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=str(tmp),
                                          start_new_session=True))
        http_bench.wait_ready(port, procs[0], log)
        with httpx.Client(verify=loadgen.client_context(), base_url=f"https://{http_bench.HOST}:{port}",
                          timeout=60) as client:
            for n, body in bodies.items():
                answer = client.post("/mutate", content=body).json()["response"]
                patch = json.loads(base64.b64decode(answer["patch"])) if answer.get("patch") else []
                out[n] = {
                    "mutate": timings(lambda: client.post("/mutate", content=body).raise_for_status(),  # noqa: B023
                                      repeat),
                    "allowed": answer["allowed"], "patch_operations": len(patch),
                }
    finally:
        http_bench.stop(procs)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per case (after one warm-up)")
    parser.add_argument("--no-server", action="store_true", help="in-process only")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    sizes = (1, args.containers)
    bodies = {n: json.dumps(review(n), separators=(",", ":")).encode() for n in sizes}
    results: dict[str, Any] = {"containers": list(sizes), "review_bytes": {n: len(b) for n, b in bodies.items()},
                               "in_process": in_process(bodies, args.repeat)}
    if not args.no_server:
        results["https"] = over_https(bodies, args.repeat)
    if args.json:
        print(json.dumps(results, indent=1))
        return 0

    small, big = sizes
    print(f"review: {small} container = {len(bodies[small]):,} bytes, {big} containers = {len(bodies[big]):,} bytes")
    print(f"{'':<28} {f'{small} container':>14} {f'{big} containers':>16} {'ratio':>8} {'per container':>14}")
    rows = [("Engine.mutate (in-process)", results["in_process"], "mutate"),
            ("Engine.validate (in-process)", results["in_process"], "validate")]
    if "https" in results:
        rows.append(("POST /mutate (HTTPS)", results["https"], "mutate"))
    for label, table, key in rows:
        a, b = table[small][key]["median"], table[big][key]["median"]
        print(f"{label:<28} {a * 1000:>11.2f} ms {b * 1000:>13.1f} ms {b / a:>7.0f}x {b / big * 1e6:>11.0f} µs")
    ops = results["in_process"][big]["patch_operations"]
    print(f"patch operations for {big} containers: {ops} in-process"
          + (f", {results['https'][big]['patch_operations']} over HTTPS (allowed: {results['https'][big]['allowed']})"
             if "https" in results else ""))
    if "https" in results:
        verdict = "met" if results["https"][big]["mutate"]["median"] < 1.0 else "NOT met"
        print(f"target: under 1 s per /mutate request for {big} containers: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
