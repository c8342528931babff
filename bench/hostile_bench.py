"""Hostile requests against the real HTTPS server: each answer's status and how long it took.

    python bench/hostile_bench.py [--timeout 2] [--client-timeout 60]

Starts `admission serve` (TLS, 1 worker, the built-in library plus one policy with a catastrophic regex,
`--timeout` seconds per evaluation) on loopback and sends, one at a time on fresh connections:

  (a) a Pod review with a field nested 1,000 levels deep, to /validate and /mutate: 400 at decode;
  (b) a Pod review with a lone surrogate (`\\ud800`) in a label: 400 at decode;
  (c) a Pod whose `app` label is 30 `a`s and a `!`, checked by `regex_match('^(a+)+$', ...)`: exponential
      backtracking for a backtracking regex engine, linear time for RE2. The answer should come by the
      deadline (`--timeout`) at the latest;
  (d) an ordinary Pod review right after (c): the server still answers.

Bounded: each request waits at most `--client-timeout` seconds; the whole run stays under a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
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

REGEX_POLICY = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: app-label-regex}
spec:
  validationFailureAction: Enforce
  rules:
  - name: app-label
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "label app must be a run of a's"
      deny:
        conditions:
          any:
          - key: "{{ regex_match('^(a+)+$', request.object.metadata.labels.app) }}"
            operator: Equals
            value: false
"""


def review_with_label(rng: random.Random, value: str) -> dict[str, Any]:
    review = http_bench.pod_review(rng)
    review["request"]["object"]["metadata"]["labels"]["app"] = value
    return review


def cases(rng: random.Random) -> list[tuple[str, str, bytes]]:
    nested = json.dumps(http_bench.pod_review(rng)).encode().replace(
        b'"spec": {', b'"spec": {"x": ' + b"[" * 1000 + b"]" * 1000 + b", ", 1)
    surrogate = json.dumps(review_with_label(rng, "web\ud800")).encode()  # ensure_ascii: written as \\ud800
    regex = json.dumps(review_with_label(rng, "a" * 30 + "!")).encode()
    ordinary = json.dumps(http_bench.pod_review(rng)).encode()
    return [
        ("(a) 1,000 nested arrays", "/validate", nested),
        ("(a) 1,000 nested arrays", "/mutate", nested),
        ("(b) lone surrogate", "/validate", surrogate),
        ("(c) regex '^(a+)+$' on 'a'*30+'!'", "/validate", regex),
        ("(d) ordinary review after (c)", "/validate", ordinary),
    ]


async def send(port: int, path: str, body: bytes, client_timeout: float) -> tuple[int | str, float, str]:
    start = time.perf_counter()
    try:
        conn = await asyncio.wait_for(loadgen.Connection.open(http_bench.HOST, port, loadgen.client_context()), 10)
    except TimeoutError:
        return "no answer", time.perf_counter() - start, "could not connect within 10 s"
    try:
        try:
            raw = loadgen.build_request(http_bench.HOST, path, body)
            conn.writer.write(raw)
            head = await asyncio.wait_for(conn.reader.readuntil(b"\r\n\r\n"), client_timeout)
            status = int(head[9:12])
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            payload = await asyncio.wait_for(conn.reader.readexactly(length), client_timeout)
        finally:
            conn.writer.close()
    except TimeoutError:
        return "no answer", time.perf_counter() - start, f"none within {client_timeout:g} s"
    return status, time.perf_counter() - start, summary(payload)


def summary(payload: bytes) -> str:
    doc = json.loads(payload)
    if "error" in doc:
        return str(doc["error"])[:90]
    response = doc["response"]
    message = (response.get("status") or {}).get("message", "")
    rules = sorted(set(re.findall(r"^\[([^\]]+)\]", message, re.MULTILINE)))
    return f"{'allowed' if response['allowed'] else 'denied'} by {', '.join(rules) or 'no rule'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=2.0, help="the server's --timeout (seconds)")
    parser.add_argument("--client-timeout", type=float, default=60.0, help="how long to wait for each answer")
    args = parser.parse_args(argv)

    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="hostile-bench-") as name:
        tmp = Path(name)
        regex_dir = tmp / "regex"
        regex_dir.mkdir()
        (regex_dir / "policy.yaml").write_text(REGEX_POLICY)
        from admission.certs import ensure

        paths = ensure(tmp / "certs", "admission", "admission")
        state = tmp / "state.yaml"
        state.write_text(http_bench.network_policies())
        port = http_bench.free_port()
        log = tmp / "server.log"
        cmd = [sys.executable, "-m", "admission", "serve", "--host", http_bench.HOST, "--port", str(port),
               "--cert", str(paths.cert), "--key", str(paths.key), "--state", str(state), "--no-watch-policies",
               "--timeout", f"{args.timeout:g}", f"--policies={REPO / 'policies'}", f"--policies={regex_dir}"]
        with log.open("wb") as out:
            procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=str(tmp),
                                          start_new_session=True))
        try:
            http_bench.wait_ready(port, procs[0], log)
            print(f"admission serve --timeout {args.timeout:g} (built-in library + regex policy), one request each:")
            print(f"{'case':38} {'path':10} {'status':>9} {'seconds':>8}  answer")
            for label, path, body in cases(random.Random(7)):
                status, seconds, text = asyncio.run(send(port, path, body, args.client_timeout))
                print(f"{label:38} {path:10} {status!s:>9} {seconds:8.3f}  {text}")
        finally:
            http_bench.stop(procs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
