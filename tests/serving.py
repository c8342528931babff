"""Run the real `admission serve` on a loopback port, and post to it over verified HTTPS (for the rotation
and end-to-end tests)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client_context(bundle: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(bundle))
    ctx.check_hostname = True
    return ctx


@contextlib.contextmanager
def serve(home: Path, *args: str, port: int | None = None, env: dict[str, str] | None = None,
          timeout: float = 60.0) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`admission serve --host 127.0.0.1 --port PORT ARGS` with ADMISSION_HOME=home, until ready (200 on
    /readyz, verified against the generated CA); stopped (SIGTERM, then SIGKILL) on exit."""
    port = port or free_port()
    log = open(home / f"serve-{port}.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "admission", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        env={**os.environ, "ADMISSION_HOME": str(home), **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"admission serve exited {proc.returncode}: "
                                   f"{(home / f'serve-{port}.log').read_text()[-3000:]}")
            try:
                bundle = home / "certs" / "ca.pem"
                conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(bundle), timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
                conn.close()
            except (OSError, ssl.SSLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"admission serve not ready after {timeout}s: "
                                   f"{(home / f'serve-{port}.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def review(uid: str) -> bytes:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "team"},
           "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1.0"}]}}
    return json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"}, "operation": "CREATE",
        "namespace": "team", "name": "web", "userInfo": {"username": "alice"}, "object": pod}}).encode()


@dataclass
class Poster:
    """Posts reviews to /validate until stopped, as the API server does: each request on a new connection
    (`fresh`) or on one kept alive, trusting the CA bundle file as it is at each connection. Counts answers
    and failures, and the serving certificates seen (SHA-256 of the DER)."""

    port: int
    bundle: Path
    fresh: bool = True
    sent: int = 0
    failed: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def _connect(self) -> http.client.HTTPSConnection:
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=client_context(self.bundle), timeout=10)
        conn.connect()
        assert conn.sock is not None
        der = conn.sock.getpeercert(binary_form=True)  # type: ignore[attr-defined]
        digest = hashlib.sha256(der or b"").hexdigest()
        self.seen[digest] = self.seen.get(digest, 0) + 1
        return conn

    def run(self) -> None:
        conn: http.client.HTTPSConnection | None = None
        while not self.stop.is_set():
            self.sent += 1
            try:
                if conn is None or self.fresh:
                    conn = self._connect()
                conn.request("POST", "/validate", body=review(str(self.sent)),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                body: Any = json.loads(resp.read())
                if resp.status != 200 or body["response"]["uid"] != str(self.sent):
                    self.failed.append(f"{resp.status}: {body}")
            except Exception as exc:  # every kind of failure counts
                self.failed.append(f"{type(exc).__name__}: {exc}")
                conn = None
            if self.fresh and conn is not None:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def start(self) -> Poster:
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(30)


def fingerprint(cert_file: Path) -> str:
    der = ssl.PEM_cert_to_DER_cert(cert_file.read_text())
    return hashlib.sha256(der).hexdigest()


def wait_for(predicate: Any, timeout: float = 20.0, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())
