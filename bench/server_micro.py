"""In-process cost of the server's per-request path, without HTTP or TLS: the ASGI app is called directly.

    python bench/server_micro.py [--requests 4000] [--concurrency 16] [--policies PATH]

Prints CPU µs per request (process time, so other work on a shared machine matters less than for wall time)
for the fixed-response app and for ours on an empty policy set (and on PATH, or the built-in library), then
the cost of each step on its own: decoding the review, encoding the answer, metrics, the decision log line.
The reviews are bench/http_bench.py's realistic Pods (~5.5 KB).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import logging
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import fixed_server  # noqa: E402
import http_bench  # noqa: E402

from admission import logs, metrics  # noqa: E402
from admission.engine import Engine  # noqa: E402
from admission.server import Settings, create_app  # noqa: E402
from admission.state import ClusterState  # noqa: E402


def scope(path: str, body: bytes) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "https",
            "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
            "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8443)}


async def drive(app: Any, bodies: list[bytes], requests: int, concurrency: int, path: str) -> tuple[float, float]:
    """(CPU µs, wall µs) per request, `concurrency` requests in flight."""
    statuses: dict[int, int] = {}

    async def one(i: int) -> None:
        body = bodies[i % len(bodies)]
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.sleep(3600)
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses[message["status"]] = statuses.get(message["status"], 0) + 1

        await app(scope(path, body), receive, send)

    async def lane(k: int) -> None:
        for i in range(k, requests, concurrency):
            await one(i)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(lane(k) for k in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if set(statuses) != {200}:
        raise SystemExit(f"unexpected statuses {statuses}")
    return cpu / requests * 1e6, wall / requests * 1e6


def per_call(fn: Callable[[], object], n: int = 2000) -> float:
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n * 1e6


def steps(bodies: list[bytes]) -> dict[str, float]:
    from admission.decide import decide
    from admission.review import decode, dumps, encode

    body = bodies[0]
    req = decode(body)
    decision = decide([])
    wire = encode(req, allowed=True)
    logs.decision_stream = io.StringIO()
    out = {
        "json.loads (stdlib)": per_call(lambda: json.loads(body)),
        "review.decode (orjson + checks)": per_call(lambda: decode(body)),
        "encode + dumps answer": per_call(lambda: dumps(encode(req, allowed=True))),
        "json.dumps answer (stdlib)": per_call(lambda: json.dumps(wire, separators=(",", ":")).encode()),
        "metrics (request + decision)": per_call(lambda: (metrics.record_request("validate", 200, 0.001),
                                                          metrics.record_decision("validate", True, []))),
        "decision log line": per_call(lambda: logs.log_decision("validate", req, decision, 1.0)),
    }
    logs.decision_stream = None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--policies", action="append", default=[])
    args = parser.parse_args(argv)
    import uvloop

    from admission.policyset import builtin_policies, load

    rng = random.Random(2024)
    bodies = [json.dumps(http_bench.pod_review(rng), separators=(",", ":")).encode() for _ in range(64)]
    state = ClusterState(json.loads(doc) for doc in http_bench.network_policies().split("\n---\n"))
    logs.decision_stream = io.StringIO()  # the line is built and written, to memory
    logging.getLogger(logs.DECISION_LOGGER).setLevel(logging.INFO)  # as `admission serve` logs
    apps: dict[str, Any] = {
        "fixed-response": fixed_server.app(),
        "ours, empty policy set": create_app(Settings(), engine=Engine(), state=state),
    }
    paths = args.policies or [str(builtin_policies())]
    apps[f"ours, {', '.join(Path(p).name for p in paths)}"] = create_app(Settings(), engine=load(paths), state=state)
    print(f"{args.requests} requests per app, {args.concurrency} in flight, reviews ~"
          f"{sum(map(len, bodies)) // len(bodies)} bytes")
    print(f"{'app':<40}{'CPU µs/req':>12}{'wall µs/req':>12}")
    for name, app in apps.items():
        uvloop.run(drive(app, bodies, min(200, args.requests), args.concurrency, "/validate"))  # warm-up
        cpu, wall = uvloop.run(drive(app, bodies, args.requests, args.concurrency, "/validate"))
        print(f"{name:<40}{cpu:>12.1f}{wall:>12.1f}")
        inner = getattr(getattr(app, "webhook", None), "offload", None)
        if inner is not None:
            print(f"{'':<4}evaluations inline: {inner.inline_runs}, in the evaluation thread: {inner.thread_runs}")
    logs.decision_stream = None
    print("\nsteps, CPU µs per call:")
    for name, us in steps(bodies).items():
        print(f"  {name:<38}{us:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
