"""Benchmark `admission lint` on generated Deployments: wall time and peak memory of the real command.

    python bench/lint_bench.py [--count 2000] [--files 20] [--runs 3] [--policies PATH]...

Writes `count` realistic Deployments (plus one NetworkPolicy per namespace) to a temporary folder,
runs `python -m admission lint` on it under `/usr/bin/time -v` (when present) `runs` times, and prints
the wall time and peak resident memory of each run, then an in-process breakdown (YAML loading, policy
loading, evaluation). Target (issue 2): 2,000 Deployments in at most 2 s on the built-in policies.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NAMESPACES = ("shop", "payments", "search", "identity")
TARGET_SECONDS = 2.0


def deployment(i: int) -> dict:
    ns = NAMESPACES[i % len(NAMESPACES)]
    name = f"svc-{i:04d}"
    # Most are compliant; every 5th uses a public image, every 7th has no resources, every 11th `latest`.
    image = f"registry.example.com/team/{name}:1.{i % 13}.{i % 7}"
    if i % 5 == 0:
        image = f"nginx:1.{i % 25}"
    if i % 11 == 0:
        image = f"registry.example.com/team/{name}:latest"
    resources = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    container: dict = {
        "name": "app",
        "image": image,
        "ports": [{"containerPort": 8080, "name": "http"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10},
        "securityContext": {
            "allowPrivilegeEscalation": False, "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if i % 7 != 0:
        container["resources"] = resources
    containers = [container]
    if i % 3 == 0:
        containers.append({
            "name": "proxy", "image": "registry.example.com/platform/proxy:2.4.1",
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            "securityContext": {
                "allowPrivilegeEscalation": False, "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        })
    labels = {"app": name, "tier": "backend" if i % 2 else "frontend"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": containers, "serviceAccountName": name},
            },
        },
    }


def network_policy(ns: str) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "backend", "namespace": ns},
        "spec": {"podSelector": {"matchLabels": {"tier": "backend"}}, "policyTypes": ["Ingress"]},
    }


def generate(folder: Path, count: int, files: int) -> int:
    """Write count Deployments over `files` files (and the NetworkPolicies first); return bytes written."""
    size = 0
    netpols = folder / "00-network-policies.yaml"
    netpols.write_text(yaml.safe_dump_all([network_policy(ns) for ns in NAMESPACES], sort_keys=False))
    size += netpols.stat().st_size
    per_file = max(1, -(-count // files))
    for f in range(files):
        docs = [deployment(i) for i in range(f * per_file, min(count, (f + 1) * per_file))]
        if not docs:
            break
        path = folder / f"deployments-{f:03d}.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        size += path.stat().st_size
    return size


def timed_run(folder: Path, policies: list[str]) -> tuple[float, int | None, float | None, int]:
    """Wall seconds, peak RSS in KiB and CPU seconds (None without /usr/bin/time), and the exit code."""
    cmd = [sys.executable, "-m", "admission", "lint", str(folder), "--format", "json"]
    for p in policies:
        cmd += ["--policies", p]
    gnu_time = shutil.which("time") if os.path.exists("/usr/bin/time") else None
    if gnu_time:
        cmd = ["/usr/bin/time", "-v", *cmd]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    peak = None
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if m:
        peak = int(m.group(1))
    cpu = None
    times = re.findall(r"(?:User|System) time \(seconds\): ([0-9.]+)", proc.stderr)
    if times:
        cpu = sum(float(t) for t in times)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"lint failed with exit code {proc.returncode}:\n{proc.stderr[-2000:]}")
    return wall, peak, cpu, proc.returncode


def breakdown(folder: Path, policies: list[str]) -> dict[str, float]:
    from admission.lint import collect, evaluate, findings, load_engine
    from admission.manifests import load_paths

    t0 = time.perf_counter()
    resources = collect(load_paths([folder]))
    t1 = time.perf_counter()
    engine = load_engine(policies)
    t2 = time.perf_counter()
    evaluations = evaluate(engine, resources)
    found = findings(evaluations)
    t3 = time.perf_counter()
    return {
        "resources": len(resources), "findings": len(found), "yaml_s": t1 - t0, "policies_s": t2 - t1,
        "evaluate_s": t3 - t2, "per_resource_ms": (t3 - t2) / max(1, len(resources)) * 1000,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--policies", action="append", default=[])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lint-bench-") as tmp:
        folder = Path(tmp)
        size = generate(folder, args.count, args.files)
        print(f"generated {args.count} Deployments in {args.files} files ({size / 1e6:.1f} MB)")
        walls = []
        for n in range(args.runs):
            wall, peak, cpu, code = timed_run(folder, args.policies)
            walls.append(wall)
            mem = f"{peak / 1024:.0f} MiB" if peak is not None else "n/a (no /usr/bin/time)"
            cpu_text = f"{cpu:.2f} s" if cpu is not None else "n/a"
            print(f"run {n + 1}: wall {wall:.2f} s, CPU (user+sys, all processes) {cpu_text}, "
                  f"peak RSS {mem}, exit {code}")
        best = min(walls)
        b = breakdown(folder, args.policies)
        print(
            f"in-process: {b['resources']:.0f} resources, {b['findings']:.0f} findings; YAML {b['yaml_s']:.2f} s, "
            f"policies {b['policies_s']:.2f} s, evaluation {b['evaluate_s']:.2f} s "
            f"({b['per_resource_ms']:.2f} ms per resource)"
        )
        verdict = "meets" if best <= TARGET_SECONDS else "misses"
        print(f"best wall {best:.2f} s {verdict} the {TARGET_SECONDS:.0f} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
