"""In-process micro-benchmark of the Kyverno-dialect engine over the built-in policy library.

    python bench/engine_bench.py [--seconds 1.5] [--profile CASE [--mutate]] [--dump]

Loads every built-in policy (policies/, the same set `admission serve` loads by default) and times
Engine.validate and Engine.mutate (µs per request, best of a few rounds) for:

- pod-ok:      a compliant Pod with 3 containers (restricted-compliant, requests/limits, allowed registry),
               selected by a NetworkPolicy in its namespace;
- pod-bad:     a Pod with 3 containers violating most rules (privileged, latest tag, public registry,
               no resources, no NetworkPolicy selecting it);
- deploy-ok:   a compliant Deployment (the autogen rules check its Pod template);
- deploy-bad:  the non-compliant Pod's template in a Deployment.
- configmap:   a ConfigMap, which no built-in rule matches (what every request pays regardless).

Each case is timed (CPU time of this process, best of 5 rounds, so other load on a shared machine counts
less) for about --seconds per operation: the whole run takes about 15 s. `--profile CASE` prints a cProfile
of validate (or mutate) on one case instead; `--dump` prints every result, decision and patch as JSON, to
check that an optimisation changed no verdict or message (diff the dumps of two versions; ADMISSION_POLICIES
points both at the same policies).
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from admission import policyset  # noqa: E402
from admission.engine import Engine  # noqa: E402
from admission.engines import Context  # noqa: E402
from admission.review import Request, decode  # noqa: E402
from admission.state import ClusterState  # noqa: E402

NAMESPACE = "apps"
LABELS = {"app": "bench", "tier": "web"}


def good_container(i: int) -> dict[str, Any]:
    return {
        "name": f"c{i}",
        "image": f"registry.example.com/team/app{i}:1.{i}",
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }


def bad_container(i: int) -> dict[str, Any]:
    return {
        "name": f"c{i}",
        "image": f"nginx{i}" if i % 2 else f"docker.io/library/app{i}:latest",
        "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
    }


def pod(containers: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bench", "namespace": NAMESPACE, "labels": labels},
        "spec": {"containers": containers},
    }


def deployment(template: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "bench", "namespace": NAMESPACE, "labels": dict(template["metadata"]["labels"])},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": dict(template["metadata"]["labels"])},
            "template": {"metadata": {"labels": template["metadata"]["labels"]}, "spec": template["spec"]},
        },
    }


def review(obj: dict[str, Any]) -> dict[str, Any]:
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    kind = obj["kind"]
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "00000000-0000-0000-0000-000000000001",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
            "name": obj["metadata"]["name"],
            "namespace": NAMESPACE,
            "operation": "CREATE",
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
        },
    }


def cases() -> dict[str, Request]:
    ok = pod([good_container(i) for i in range(3)], dict(LABELS))
    bad = pod([bad_container(i) for i in range(3)], {"app": "other"})
    out = {}
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bench", "namespace": NAMESPACE},
                 "data": {f"key{i}": "value" * 10 for i in range(10)}}
    for name, obj in (("pod-ok", ok), ("pod-bad", bad), ("deploy-ok", deployment(ok)), ("deploy-bad", deployment(bad)),
                      ("configmap", configmap)):
        out[name] = decode(json.dumps(review(copy.deepcopy(obj))).encode())
    return out


def context() -> Context:
    netpol = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {"podSelector": {"matchLabels": {"tier": "web"}}, "policyTypes": ["Ingress"]},
    }
    return Context(state=ClusterState([netpol]))


def timed(fn: Any, seconds: float, rounds: int = 5) -> float:
    """µs of CPU time per call (this process's, so other load on the machine counts less): the best of
    `rounds` rounds, about `seconds` in all."""
    fn()  # warm up caches
    n, start = 0, time.process_time()
    while time.process_time() - start < 0.05:
        fn()
        n += 1
    per_round = max(1, int(n * (seconds / rounds) / 0.05))
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(per_round):
            fn()
        best = min(best, (time.process_time() - start) / per_round)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.5, help="time per case and operation (default 1.5)")
    parser.add_argument("--profile", metavar="CASE", help="profile validate on one case instead")
    parser.add_argument("--mutate", action="store_true", help="with --profile: profile mutate instead")
    parser.add_argument("--dump", action="store_true", help="print every result and patch as JSON (to compare runs)")
    args = parser.parse_args()

    engine: Engine = policyset.load([policyset.builtin_policies()])
    ctx = context()
    requests = cases()
    if args.dump:
        out = {}
        for name, request in requests.items():
            decision = engine.validate(request, ctx)
            mutated = engine.mutate(request, ctx)
            out[name] = {
                "validate": [[r.policy, r.rule, str(r.status), r.message] for r in decision.results],
                "allowed": decision.allowed,
                "message": decision.message,
                "mutate": [[r.policy, r.rule, str(r.status), r.message] for r in mutated.decision.results],
                "patch": mutated.patch,
            }
        print(json.dumps(out, indent=1, sort_keys=True))
        return
    if args.profile:
        request = requests[args.profile]
        op = (lambda: engine.mutate(request, ctx)) if args.mutate else (lambda: engine.validate(request, ctx))
        op()
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(300):
            op()
        prof.disable()
        pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
        return
    print(f"{'case':<12} {'validate µs':>12} {'mutate µs':>10}  verdict")
    for name, request in requests.items():
        decision = engine.validate(request, ctx)
        v = timed(lambda: engine.validate(request, ctx), args.seconds)  # noqa: B023
        m = timed(lambda: engine.mutate(request, ctx), args.seconds)  # noqa: B023
        verdict = "allowed" if decision.allowed else "denied"
        print(f"{name:<12} {v:>12.0f} {m:>10.0f}  {verdict}")


if __name__ == "__main__":
    main()
