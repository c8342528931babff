"""HTTP benchmark: `admission serve` (TLS, 2 workers, built-in policies) beside a fixed-response server on the
same stack, driven in one run from a load generator on loopback with realistic Pod AdmissionReviews.

    python bench/http_bench.py [--duration 8] [--connections 16] [--rate 1000] [--loadgen auto|wrk|python]

Reports requests/s, p50 and p99 for each server, their throughput ratio, and p99 at a fixed 1,000 req/s.
Targets: our throughput >= 50% of the fixed-response server's; p99 <= 5 ms at 1,000 req/s.
Also runs ours on an empty policy set (`--no-empty` skips it), which prices the server apart from the policies.
The closed-loop load runs in rounds interleaved between the servers (`--rounds`), so that other work on a
shared machine weighs on each alike; it also reports the CPU each server's processes spent per request.
Bounded: 45 s of load with the defaults, never more than 60 s; loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import loadgen  # noqa: E402

HOST = "127.0.0.1"
NAMESPACES = ("team-a", "team-b", "payments", "search")
MAX_LOAD_SECONDS = 60.0


# --- realistic Pod AdmissionReviews -------------------------------------------------------------------------


def container(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "name": f"app-{i}",
        "image": f"registry.example.com/{rng.choice(['shop', 'core', 'data'])}/svc{i}:{rng.randint(1, 9)}."
                 f"{rng.randint(0, 30)}.{rng.randint(0, 9)}",
        "ports": [{"containerPort": 8080 + i, "name": f"http-{i}", "protocol": "TCP"}],
        "env": [{"name": f"VAR_{k}", "value": uuid.UUID(int=rng.getrandbits(128)).hex} for k in range(4)]
        + [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "resources": {"requests": {"cpu": f"{rng.choice([50, 100, 250])}m", "memory": f"{rng.choice([64, 128, 256])}Mi"},
                      "limits": {"cpu": "1", "memory": "512Mi"}},
        "volumeMounts": [{"name": "config", "mountPath": "/etc/app", "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080 + i}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080 + i}, "periodSeconds": 10},
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    }


def pod_review(rng: random.Random) -> dict[str, Any]:
    ns = rng.choice(NAMESPACES)
    name = f"web-{uuid.UUID(int=rng.getrandbits(128)).hex[:10]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns, "generateName": "web-",
            "labels": {"app": "web", "team": ns, "version": f"v{rng.randint(1, 5)}", "tier": "frontend",
                       "pod-template-hash": uuid.UUID(int=rng.getrandbits(128)).hex[:10]},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": str(uuid.uuid4()),
                                 "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "containers": [container(rng, i) for i in range(rng.randint(2, 4))],
            "initContainers": [{**container(rng, 9), "name": "init"}],
            "volumes": [{"name": "config", "configMap": {"name": "app-config"}}, {"name": "tmp", "emptyDir": {}}],
            "serviceAccountName": "web",
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "nodeSelector": {"kubernetes.io/os": "linux"},
        },
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.UUID(int=rng.getrandbits(128))),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": name, "namespace": ns, "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                         "uid": str(uuid.uuid4()), "groups": ["system:serviceaccounts", "system:authenticated"]},
            "object": pod, "oldObject": None, "dryRun": False,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"},
        },
    }


def network_policies() -> str:
    """Cluster state for the run: every benchmark namespace has a NetworkPolicy for app=web."""
    docs = [json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                        "metadata": {"name": "web", "namespace": ns},
                        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"]}})
            for ns in NAMESPACES]
    return "\n---\n".join(docs) + "\n"


# --- servers ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    ctx = loadgen.client_context()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server on port {port} exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as raw, ctx.wrap_socket(raw) as s:
                s.sendall(f"GET /readyz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except (OSError, ssl.SSLError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} not ready in {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


LIBRARY = REPO.parent / "shared" / "conformance" / "gatekeeper-library"
# the Gatekeeper library's templates for registries, container limits and labels, with constraints the
# benchmark's Pods pass (the common case)
LIBRARY_CONSTRAINTS = {
    "library/general/allowedrepos/template.yaml": ("K8sAllowedRepos", {"repos": ["registry.example.com/"]}),
    "library/general/containerlimits/template.yaml": ("K8sContainerLimits", {"cpu": "2", "memory": "1Gi"}),
    "library/general/requiredlabels/template.yaml": ("K8sRequiredLabels", {"labels": [{"key": "app"}, {"key": "team"}]}),
}


def gatekeeper_library_policies(library: Path, folder: Path) -> Path:
    """A policy folder with the library's templates (read from its checkout) and one constraint each."""
    folder.mkdir()
    for n, (template, (kind, parameters)) in enumerate(LIBRARY_CONSTRAINTS.items()):
        shutil.copy(library / template, folder / f"template-{n}.yaml")
        constraint = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
                      "metadata": {"name": f"bench-{kind.lower()}"},
                      "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}, "parameters": parameters}}
        (folder / f"constraint-{n}.yaml").write_text(json.dumps(constraint))
    return folder


def start_servers(tmp: Path, workers: int, policies: list[str], procs: list[subprocess.Popen[bytes]],
                  empty: bool = True, fixed_starlette: bool = False, rego: bool = False,
                  library: Path | None = None) -> dict[str, int]:
    """Start the servers (appending them to procs, so the caller stops them whatever happens); wait until ready.

    "fixed" is the baseline, "admission" ours on `policies` (default: the built-in library) and, with `empty`,
    "admission-empty" ours on an empty policy set: the price of the server itself; with `rego`,
    "admission-rego" ours on the Gatekeeper guardrails (policies/gatekeeper: the same checks in Rego); with
    `library`, "admission-gk-library" ours on the Gatekeeper library's own templates for the same checks."""
    from admission.certs import ensure

    paths = ensure(tmp / "certs", "admission", "admission")
    state = tmp / "state.yaml"
    state.write_text(network_policies())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    tls = ["--cert", str(paths.cert), "--key", str(paths.key)]
    names = (["fixed", "admission"] + (["admission-empty"] if empty else []) + (["admission-rego"] if rego else [])
             + (["admission-gk-library"] if library else []))
    ports = {name: free_port() for name in names}

    def ours(name: str, policy_args: list[str]) -> list[str]:
        return [sys.executable, "-m", "admission", "serve", "--host", HOST, "--port", str(ports[name]), "--workers",
                str(workers), *tls, "--state", str(state), "--no-watch-policies", *policy_args]

    commands = {
        "fixed": [sys.executable, str(HERE / "fixed_server.py"), "--host", HOST, "--port", str(ports["fixed"]),
                  "--workers", str(workers), *tls, *(["--starlette"] if fixed_starlette else [])],
        "admission": ours("admission", [f"--policies={Path(p).resolve()}" for p in policies]),
    }
    if empty:
        (tmp / "no-policies").mkdir()
        commands["admission-empty"] = ours("admission-empty", [f"--policies={tmp / 'no-policies'}", "--allow-empty"])
    if rego:
        commands["admission-rego"] = ours("admission-rego", [f"--policies={REPO / 'policies' / 'gatekeeper'}"])
    if library:
        folder = gatekeeper_library_policies(library, tmp / "gatekeeper-library")
        commands["admission-gk-library"] = ours("admission-gk-library", [f"--policies={folder}"])
    logs = []
    for name, cmd in commands.items():
        log = tmp / f"{name}.log"
        with log.open("wb") as out:
            procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=str(tmp),
                                          start_new_session=True))
        logs.append(log)
    for port, proc, log in zip(ports.values(), procs, logs, strict=True):
        wait_ready(port, proc, log)
    return ports


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of every live process in a process group: a server and its workers (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ..., utime (12), stime (13)
            total += int(fields[11]) + int(fields[12])
    return total / tick


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


# --- load ---------------------------------------------------------------------------------------------------


WRK_SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i + 1
  return wrk.format(nil, "/validate", nil, bodies[(i % #bodies) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format('WRK_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"errors": %d, "non2xx": %d}\\n', summary.requests, summary.duration, latency:percentile(50),
    latency:percentile(99), summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, summary.errors.status))
end
"""


def find_wrk(install: bool) -> str | None:
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    print("installing wrk (apt-get) ...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=False, timeout=180)
    return shutil.which("wrk")


def wrk_throughput(wrk: str, port: int, bodies_file: Path, script: Path, connections: int, duration: float
                   ) -> dict[str, float]:
    env = {**os.environ, "BENCH_BODIES": str(bodies_file)}
    out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "-s", str(script),
                          f"https://{HOST}:{port}"], env=env, capture_output=True, text=True, timeout=duration + 30)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if line is None:
        raise SystemExit(f"wrk failed:\n{out.stdout}\n{out.stderr}")
    d = json.loads(line[len("WRK_JSON "):])
    return {"rps": d["requests"] / (d["duration_us"] / 1e6), "p50_ms": d["p50_us"] / 1000,
            "p99_ms": d["p99_us"] / 1000, "requests": d["requests"], "errors": d["errors"] + d["non2xx"],
            "seconds": d["duration_us"] / 1e6}


def python_throughput(port: int, bodies: list[bytes], connections: int, duration: float) -> dict[str, float]:
    r = loadgen.run(loadgen.closed_loop(HOST, port, "/validate", bodies, connections=connections,
                                        duration=duration))
    bad = sum(n for s, n in r.statuses.items() if s != 200)
    return {"rps": r.rps, "p50_ms": r.percentile(50) * 1000, "p99_ms": r.percentile(99) * 1000,
            "requests": len(r.latencies), "errors": r.errors + bad, "seconds": r.elapsed}


def combine(rounds: list[dict[str, float]], cpu_seconds: float) -> dict[str, Any]:
    """One server's closed-loop rounds as one result: req/s over all of them, the median round's p50 and p99."""
    requests = sum(r["requests"] for r in rounds)
    return {"rps": requests / sum(r["seconds"] for r in rounds), "requests": requests,
            "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
            "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
            "p99_ms_worst_round": max(r["p99_ms"] for r in rounds),
            "errors": sum(r["errors"] for r in rounds),
            # CPU the server spent per request: moved less than req/s by other work on a shared machine
            "cpu_us_per_request": cpu_seconds * 1e6 / max(1, requests),
            "rounds": rounds}


def python_fixed_rate(port: int, bodies: list[bytes], rate: float, duration: float) -> dict[str, float]:
    r = loadgen.run(loadgen.fixed_rate(HOST, port, "/validate", bodies, rate=rate, duration=duration))
    bad = sum(n for s, n in r.statuses.items() if s != 200)
    return {"rate": rate, "achieved_rps": r.rps, "p50_ms": r.percentile(50) * 1000,
            "p99_ms": r.percentile(99) * 1000, "requests": len(r.latencies), "errors": r.errors + bad,
            "unfinished": r.unfinished}


def check_answers(port: int, bodies: list[bytes]) -> dict[str, int]:
    """What our server decided on the benchmark's reviews (they are meant to be admitted)."""
    import httpx

    counts = {"allowed": 0, "denied": 0}
    with httpx.Client(verify=loadgen.client_context(), base_url=f"https://{HOST}:{port}") as c:
        for body in bodies[:20]:
            allowed = c.post("/validate", content=body).json()["response"]["allowed"]
            counts["allowed" if allowed else "denied"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of closed-loop load per server")
    parser.add_argument("--rounds", type=int, default=4,
                        help="closed-loop rounds per server, interleaved between the servers (each duration/rounds s)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=1000.0, help="fixed-rate mode: requests per second")
    parser.add_argument("--rate-duration", type=float, default=6.0, help="seconds of fixed-rate load per server")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto",
                        help="closed-loop load generator: wrk (installed with apt-get when missing) or Python")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    parser.add_argument("--policies", action="append", default=[],
                        help="policy file or folder for our server (repeatable; default: the built-in library)")
    parser.add_argument("--no-empty", action="store_true",
                        help="skip our server on an empty policy set (run by default: it prices the server itself)")
    parser.add_argument("--fixed-starlette", action="store_true",
                        help="the fixed server answers through Starlette routes (the baseline before our hot path "
                             "became plain ASGI; by default it answers through the same plain ASGI path as ours)")
    parser.add_argument("--gatekeeper", action="store_true",
                        help="also run ours on the Gatekeeper guardrails (policies/gatekeeper), the Rego path")
    parser.add_argument("--gatekeeper-library", action="store_true",
                        help="also run ours on the Gatekeeper library's templates for registries, container limits and "
                             "labels (read from ../shared/conformance/gatekeeper-library); five servers need shorter "
                             "durations, e.g. --duration 6 --rate-duration 4")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.gatekeeper_library and not LIBRARY.is_dir():
        parser.error(f"--gatekeeper-library needs the conformance suites beside the repository ({LIBRARY} is missing)")
    # Our server on the built-in policies runs last at the fixed rate: overloaded, it keeps working off its
    # backlog after the client gives up, which must not take CPU from the next server measured.
    servers = (["fixed"] + ([] if args.no_empty else ["admission-empty"]) + ["admission"]
               + (["admission-rego"] if args.gatekeeper else [])
               + (["admission-gk-library"] if args.gatekeeper_library else []))
    load_seconds = len(servers) * (args.duration + 1 + args.rate_duration)
    if args.rounds < 1 or args.duration / args.rounds < 1:
        parser.error("--rounds must be at least 1 and leave at least 1 s per round")
    if load_seconds > MAX_LOAD_SECONDS:
        parser.error(f"durations add up to {load_seconds:.0f}s of load; keep them within {MAX_LOAD_SECONDS:.0f}s")

    rng = random.Random(2024)
    bodies = [json.dumps(pod_review(rng), separators=(",", ":")).encode() for _ in range(64)]
    wrk = None if args.loadgen == "python" else find_wrk(not args.no_install)
    if args.loadgen == "wrk" and wrk is None:
        raise SystemExit("wrk is not installed (apt-get install wrk) and could not be installed")

    tmp = Path(tempfile.mkdtemp(prefix="admission-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        bodies_file = tmp / "bodies.jsonl"
        bodies_file.write_bytes(b"\n".join(bodies) + b"\n")
        script = tmp / "post.lua"
        script.write_text(WRK_SCRIPT)
        ports = start_servers(tmp, args.workers, args.policies, procs, empty=not args.no_empty,
                              fixed_starlette=args.fixed_starlette, rego=args.gatekeeper,
                              library=LIBRARY if args.gatekeeper_library else None)
        pgids = {name: proc.pid for name, proc in zip(ports, procs, strict=True)}  # each in its own session
        answers = check_answers(ports["admission"], bodies)
        if args.gatekeeper:
            results_rego_answers = check_answers(ports["admission-rego"], bodies)
        if args.gatekeeper_library:
            library_answers = check_answers(ports["admission-gk-library"], bodies)

        results: dict[str, Any] = {"loadgen": "wrk" if wrk else "python", "connections": args.connections,
                                   "policies": args.policies or ["built-in"], "servers": servers,
                                   "fixed_layout": "starlette" if args.fixed_starlette else "plain ASGI",
                                   "workers": args.workers, "review_bytes_avg": sum(map(len, bodies)) // len(bodies),
                                   "admission_answers": answers, "cpus": os.cpu_count(),
                                   "load_average_before": os.getloadavg()[0]}
        if args.gatekeeper:
            results["rego_answers"] = results_rego_answers
        if args.gatekeeper_library:
            results["library_answers"] = library_answers
        for name in servers:  # a short warm-up each
            python_throughput(ports[name], bodies, 4, 1.0)
        # Closed loop in interleaved rounds (fixed, ours, ours, fixed, ours, ...), so that other work on a
        # shared machine, which comes and goes, weighs on every server alike.
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        cpu = dict.fromkeys(servers, 0.0)
        for _ in range(args.rounds):
            for name in servers:
                before = group_cpu_seconds(pgids[name])
                if wrk:
                    rounds[name].append(wrk_throughput(wrk, ports[name], bodies_file, script, args.connections,
                                                       args.duration / args.rounds))
                else:
                    rounds[name].append(python_throughput(ports[name], bodies, args.connections,
                                                          args.duration / args.rounds))
                cpu[name] += group_cpu_seconds(pgids[name]) - before
        for name in servers:
            results[name] = combine(rounds[name], cpu[name])
        for name in servers:  # fixed rate: one server after the other, ours on the built-in library last
            results[name]["fixed_rate"] = python_fixed_rate(ports[name], bodies, args.rate, args.rate_duration)
        results["throughput_ratio"] = results["admission"]["rps"] / results["fixed"]["rps"]
        if "admission-empty" in results:
            results["throughput_ratio_empty"] = results["admission-empty"]["rps"] / results["fixed"]["rps"]
        results["load_average_after"] = os.getloadavg()[0]
    finally:
        stop(procs)
        shutil.rmtree(tmp, ignore_errors=True)

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)
    return 0


def report(r: dict[str, Any]) -> None:
    print(f"load generator: {r['loadgen']} ({r['connections']} connections), {r['workers']} workers per server, "
          f"{r['cpus']} CPUs shared by servers and load generator, reviews ~{r['review_bytes_avg']} bytes")
    print(f"1-minute load average before the run: {r['load_average_before']:.2f}, after: "
          f"{r['load_average_after']:.2f} (anything above ~1 beside the benchmark is other work on the machine)")
    print(f"fixed-response server: {r['fixed_layout']} POST endpoints")
    print(f"policies: {', '.join(r['policies'])}; our answers on the benchmark reviews: {r['admission_answers']}")
    if "rego_answers" in r:
        print(f"admission-rego: policies/gatekeeper; its answers on the benchmark reviews: {r['rego_answers']}")
    if "library_answers" in r:
        print("admission-gk-library: the Gatekeeper library's allowedrepos, containerlimits and requiredlabels; "
              f"its answers on the benchmark reviews: {r['library_answers']}")
    print(f"closed loop: {len(r['fixed']['rounds'])} interleaved rounds per server; p50/p99 of the median round")
    print(f"{'server':<17}{'req/s':>8}{'ratio':>7}{'p50 ms':>8}{'p99 ms':>8}{'errors':>7}{'CPU µs/req':>11}   "
          f"{'@rate':>6}{'got/s':>7}{'p50 ms':>8}{'p99 ms':>8}")
    for name in r["servers"]:
        s, f = r[name], r[name]["fixed_rate"]
        share = s["rps"] / r["fixed"]["rps"]
        print(f"{name:<17}{s['rps']:>8.0f}{share:>7.1%}{s['p50_ms']:>8.2f}{s['p99_ms']:>8.2f}{s['errors']:>7}"
              f"{s['cpu_us_per_request']:>11.0f}   "
              f"{f['rate']:>6.0f}{f['achieved_rps']:>7.0f}{f['p50_ms']:>8.2f}{f['p99_ms']:>8.2f}")
    ratio = r["throughput_ratio"]
    p99 = r["admission"]["fixed_rate"]["p99_ms"]
    cpu = {name: r[name]["cpu_us_per_request"] for name in r["servers"]}
    print("CPU per request relative to the fixed server (the throughput ratio a dedicated machine would show "
          "if the load generator cost nothing): " + ", ".join(
              f"{name} {cpu['fixed'] / cpu[name]:.1%}" for name in r["servers"] if name != "fixed"))
    for name in r["servers"]:
        if r[name]["fixed_rate"]["unfinished"]:
            print(f"{name}: {r[name]['fixed_rate']['unfinished']} requests still unanswered 10 s after the last "
                  "was sent (overloaded; its fixed-rate p99 counts only answered requests)")
    print(f"throughput ratio admission/fixed: {ratio:.1%} (target >= 50%: {'met' if ratio >= 0.5 else 'NOT met'})")
    print(f"admission p99 at {r['admission']['fixed_rate']['rate']:.0f} req/s: {p99:.2f} ms "
          f"(target <= 5 ms: {'met' if p99 <= 5 else 'NOT met'})")
    if "throughput_ratio_empty" in r:
        print(f"on an empty policy set (the server's own cost): {r['throughput_ratio_empty']:.1%} of the fixed "
              f"server, p99 at {r['admission-empty']['fixed_rate']['rate']:.0f} req/s "
              f"{r['admission-empty']['fixed_rate']['p99_ms']:.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
