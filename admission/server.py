"""The webhook server: `POST /validate`, `POST /mutate`, `GET /healthz`, `GET /readyz`, `GET /metrics`.

`create_app` builds the Starlette app (an Engine and a ClusterState may be injected, for tests);
`run` is `admission serve`: it checks the policies, prepares certificates, and starts uvicorn
(TLS 1.2+, uvloop/httptools, N workers). POST /validate and /mutate are a plain ASGI handler (the per-request
path is short); the other endpoints are Starlette routes. Evaluation runs under a deadline in a dedicated
thread, or inline when measured to be cheaper than the hand-off (admission.offload); past the deadline the
request is denied (fail closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from admission import logs, metrics
from admission.breakglass import NAME as BREAK_GLASS_NAME
from admission.breakglass import Switch
from admission.decide import Decision, break_glass
from admission.engine import Engine
from admission.engines import Context
from admission.offload import Offload
from admission.reload import Policies
from admission.review import Request, ReviewError, ReviewTooLarge, decode, dumps, encode
from admission.state import ClusterState, unavailable
from admission.types import PatchOperation

log = logging.getLogger("admission.server")

SETTINGS_ENV = "ADMISSION_SERVE_SETTINGS"


@dataclass
class Settings:
    """What each worker needs to build its app; passed to worker processes as JSON in the environment."""

    policies: list[str] = field(default_factory=list)
    max_body_bytes: int = 3 * 1024 * 1024
    timeout_seconds: float = 8.0
    cluster: bool = True
    state_paths: list[str] = field(default_factory=list)  # manifests to use as cluster state instead of a cluster
    watch_policies: bool = True
    log_level: str = "info"
    allow_empty: bool = False  # an empty policy set is an error unless asked for (--allow-empty)
    namespace: str = "admission"  # the server's own: where the break-glass ConfigMap lives
    kubeconfig: str = ""  # --kubeconfig / --context (admission.cluster chooses when both are empty)
    context: str = ""
    # serve --register: keep the webhook configurations in step with each loaded policy set
    register: bool = False
    register_url: str = ""
    register_service: str = ""  # NAMESPACE/NAME[:PORT]
    register_name: str = "admission"
    register_namespace_labels: list[str] = field(default_factory=list)  # KEY=VALUE: only these namespaces
    ca_bundle: str = ""  # the CA bundle file put into caBundle

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> Settings:
        raw = os.environ.get(SETTINGS_ENV)
        return cls(**json.loads(raw)) if raw else cls()


def policy_paths(given: list[str] | tuple[str, ...]) -> list[str]:
    from admission.policyset import builtin_policies

    return list(given) if given else [str(builtin_policies())]


def static_state(paths: list[str]) -> ClusterState:
    from admission.manifests import load_paths

    return ClusterState(d.obj for d in load_paths(paths) if isinstance(d.obj, dict))


def _error(message: str, code: int) -> JSONResponse:
    return JSONResponse({"error": message, "code": code}, status_code=code)


def _error_body(message: str, code: int) -> bytes:
    return dumps({"error": message, "code": code})


# The hot endpoints, answered by a plain ASGI callable (no Starlette routing, Request or Response objects).
REVIEW_PATHS = {"/validate": "validate", "/mutate": "mutate"}
JSON_HEADERS = [(b"content-type", b"application/json")]

# Requests with more headers than this, or more header bytes (names and values), are answered 431 before
# anything else is read. The API server sends about ten headers. (With httptools, uvicorn's parser holds the
# headers before the app sees them; `--http h11` also bounds them while parsing: h11_max_incomplete_event_size.)
MAX_HEADERS = 100
MAX_HEADER_BYTES = 16 * 1024


def header_problem(headers: list[tuple[bytes, bytes]]) -> str:
    """Why the request's headers are over the limits, or ""."""
    if len(headers) > MAX_HEADERS:
        return f"request has {len(headers)} headers, over the limit of {MAX_HEADERS}"
    size = sum(len(name) + len(value) for name, value in headers)
    if size > MAX_HEADER_BYTES:
        return f"request headers are {size} bytes, over the limit of {MAX_HEADER_BYTES}"
    return ""


async def send_json(send: Send, status: int, payload: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, *(extra or []), (b"content-length", b"%d" % len(payload))]})
    await send({"type": "http.response.body", "body": payload})

async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refusing (413) one over the limit: by Content-Length first, then while streaming."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                size = int(value)
            except ValueError:
                raise ReviewError(f"invalid Content-Length header {value.decode('latin-1')!r}") from None
            if size > limit:
                raise ReviewError(f"request body is {size} bytes, over the limit of {limit}", 413)
            break
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise ReviewError(f"request body is over the limit of {limit} bytes", 413)
        if not message.get("more_body", False):
            if not chunks:
                return bytes(chunk)
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


class Webhook:
    """The per-worker server state and the request handlers."""

    def __init__(self, settings: Settings, policies: Policies, state: ClusterState) -> None:
        self.settings = settings
        self.policies = policies
        self.state = state
        self.offload = Offload()
        # the break-glass ConfigMap is read from here (None: from `state`, e.g. --state manifests)
        self.glass_state: ClusterState | None = None
        self.break_glass = Switch(self._read_break_glass, on_change=metrics.set_break_glass)

    def _read_break_glass(self) -> Any:
        return (self.glass_state or self.state).get("ConfigMap", BREAK_GLASS_NAME, namespace=self.settings.namespace)

    def override(self, endpoint: str, req: Request, decision: Decision) -> Decision:
        """A denial answered as warnings while the break-glass switch is on; logged loudly and counted."""
        if decision.allowed:
            return decision
        glass = self.break_glass.current()
        if glass is None:
            return decision
        metrics.record_break_glass(endpoint)
        log.warning("BREAK-GLASS: allowed a request the policies deny", extra={"fields": {
            "endpoint": endpoint, "uid": logs.bounded(req.uid), "kind": logs.bounded(req.kind.kind),
            "namespace": logs.bounded(req.namespace), "name": logs.bounded(req.name),
            "operation": req.operation, "user": logs.bounded(req.user_info.get("username") or ""),
            "dryRun": req.dry_run, "denied": [logs.bounded(r.source) for r in decision.denials][:logs.MAX_FAILING],
            **glass.fields()}})
        return break_glass(decision, glass.describe())

    async def serve(self, endpoint: str, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI handler of POST /validate and /mutate: always a JSON answer, a 500 without details on a bug."""
        start = time.perf_counter()
        try:
            status, payload = await self.review(endpoint, scope, receive, start)
        except Exception as exc:
            log.error("unhandled error on POST /%s: %s: %s", endpoint, type(exc).__name__, exc, exc_info=exc)
            metrics.record_request(endpoint, 500, time.perf_counter() - start)
            status, payload = 500, _error_body("internal server error", 500)
        await send_json(send, status, payload)

    async def review(self, endpoint: str, scope: Scope, receive: Receive, start: float) -> tuple[int, bytes]:
        try:
            body = await read_body(scope, receive, self.settings.max_body_bytes)
            req = decode(body)
        except ReviewTooLarge as exc:
            return self.too_large(endpoint, exc, start)
        except ReviewError as exc:
            metrics.record_request(endpoint, exc.status_code, time.perf_counter() - start)
            return exc.status_code, _error_body(exc.message, exc.status_code)
        except ClientDisconnect:
            metrics.record_request(endpoint, 499, time.perf_counter() - start)
            return 400, _error_body("client disconnected", 400)
        engine = self.policies.engine
        if engine is None:
            metrics.record_request(endpoint, 503, time.perf_counter() - start)
            return 503, _error_body("policies are not loaded yet", 503)
        decision, patch = await self.evaluate(endpoint, engine, req, len(body))
        decision = self.override(endpoint, req, decision)
        wire = encode(req, allowed=decision.allowed, message=decision.message, warnings=decision.warnings, patch=patch,
                      code=decision.code)
        payload = dumps(wire)
        elapsed = time.perf_counter() - start
        metrics.record_decision(endpoint, decision.allowed, decision.results, req.dry_run)
        metrics.record_request(endpoint, 200, elapsed)
        logs.log_decision(endpoint, req, decision, elapsed * 1000, len(patch) if endpoint == "mutate" else None)
        return 200, payload

    def too_large(self, endpoint: str, exc: ReviewTooLarge, start: float) -> tuple[int, bytes]:
        """A review over the value bound, answered without evaluating: by the endpoint's failure policy, as
        the API server would if the webhook could not answer (validating: Fail, mutating: Ignore)."""
        req = exc.request
        if endpoint == "mutate":
            decision = Decision(True, warnings=[f"[admission] not mutated: {exc.message}"])
        else:
            decision = self.override(endpoint, req, Decision(False, f"[admission] {exc.message}; denied (fail closed)"))
        wire = encode(req, allowed=decision.allowed, message=decision.message, warnings=decision.warnings,
                      code=decision.code)
        elapsed = time.perf_counter() - start
        metrics.record_decision(endpoint, decision.allowed, decision.results, req.dry_run)
        metrics.record_request(endpoint, 200, elapsed)
        logs.log_decision(endpoint, req, decision, elapsed * 1000, 0 if endpoint == "mutate" else None)
        return 200, dumps(wire)

    async def evaluate(self, endpoint: str, engine: Engine, req: Request, size: int = 0
                       ) -> tuple[Decision, list[PatchOperation]]:
        """Evaluate under the deadline (see admission.offload); past it, or on an internal error, deny (fail closed)."""
        timeout = self.settings.timeout_seconds
        deadline = time.monotonic() + timeout
        ctx = Context(state=self.state, deadline=deadline)
        key = (self.policies.generation, id(engine), endpoint)
        try:
            if endpoint == "mutate":
                outcome = await self.offload.run(functools.partial(engine.mutate, req, ctx), deadline,
                                                 size=size, key=key)
                return outcome.decision, outcome.patch
            decision = await self.offload.run(functools.partial(engine.validate, req, ctx), deadline,
                                              size=size, key=key)
            return decision, []
        except TimeoutError:
            metrics.DEADLINES.labels(endpoint).inc()
            log.warning("evaluation of %s passed the %.3gs deadline; denied", req.uid, timeout)
            return Decision(False, f"[admission] policy evaluation did not finish within {timeout:g}s; "
                                   "denied (fail closed)"), []
        except Exception:  # Engine turns evaluator crashes into results; this is a bug elsewhere: fail closed
            log.exception("internal error evaluating %s", req.uid)
            return Decision(False, "[admission] internal error evaluating policies; denied (fail closed)"), []

    async def healthz(self, _request: HttpRequest) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(self, _request: HttpRequest) -> Response:
        engine = self.policies.engine
        body: dict[str, Any] = {
            "ready": engine is not None,
            "policies": len(engine.policies()) if engine is not None else 0,
            "generation": self.policies.generation,
            "clusterState": "available" if self.state.available else f"unavailable: {self.state.reason}",
            # this worker's evaluations so far: on the event loop (measured cheap) or in the evaluation thread
            "evaluations": {"inline": self.offload.inline_runs, "thread": self.offload.thread_runs},
        }
        if self.policies.error:
            body["lastReloadError"] = self.policies.error
        glass = self.break_glass.current()
        body["breakGlass"] = glass.describe() if glass is not None else "off"
        return JSONResponse(body, status_code=200 if engine is not None else 503)

    async def metrics(self, _request: HttpRequest) -> Response:
        self.break_glass.current()  # admission_break_glass_active follows the switch even with no denials
        data, content_type = await asyncio.to_thread(metrics.render)
        return Response(data, headers={"Content-Type": content_type})


async def _http_error(_request: HttpRequest, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(str(exc.detail), exc.status_code)


async def _internal_error(request: HttpRequest, exc: Exception) -> Response:
    log.error("unhandled error on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc,
              exc_info=exc)
    return _error("internal server error", 500)


class App:
    """The ASGI app: POST /validate and /mutate go straight to the webhook, everything else to Starlette."""

    def __init__(self, webhook: Webhook, starlette: Starlette) -> None:
        self.webhook = webhook
        self.starlette = starlette

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = header_problem(scope["headers"])
            if problem:
                await send_json(send, 431, _error_body(problem, 431), [(b"connection", b"close")])
                return
            endpoint = REVIEW_PATHS.get(scope["path"])
            if endpoint is not None:
                if scope["method"] == "POST":
                    await self.webhook.serve(endpoint, scope, receive, send)
                else:
                    await send_json(send, 405, _error_body("Method Not Allowed", 405), [(b"allow", b"POST")])
                return
        await self.starlette(scope, receive, send)


def create_app(settings: Settings | None = None, *, engine: Engine | None = None,
               state: ClusterState | None = None) -> App:
    """The app. With `engine`, that policy set is used as is (no files, no reload)."""
    settings = settings or Settings()
    policies = Policies(policy_paths(settings.policies), engine=engine, allow_empty=settings.allow_empty)
    registration = registrar(settings) if settings.register else None
    if registration is not None:
        policies.on_load.append(registration)
    webhook = Webhook(settings, policies, state or unavailable("cluster state not initialised"))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks: list[asyncio.Task[Any]] = []
        closers: list[Callable[[], None]] = []
        if state is None:
            webhook.state = await asyncio.to_thread(_cluster_state, settings, closers)
            webhook.glass_state = await asyncio.to_thread(_break_glass_state, settings, closers)
        if engine is None:
            # Load before serving: a worker that cannot load its policies fails to start, so uvicorn's rolling
            # restart on SIGHUP (several workers) keeps the old workers and their last good set.
            if not await asyncio.to_thread(policies.load):
                raise RuntimeError(f"cannot load policies: {policies.error}")
            if settings.watch_policies:
                tasks.append(asyncio.create_task(policies.watch(stop)))
            _on_sighup(policies)
        tasks.append(asyncio.create_task(_flush_metrics(stop)))
        from admission import tls

        reloadable = tls.current()
        if reloadable is not None:
            tasks.append(asyncio.create_task(reloadable.watch(stop)))
        if registration is not None and settings.ca_bundle:
            tasks.append(asyncio.create_task(_follow_ca_bundle(Path(settings.ca_bundle), policies, registration, stop)))
        try:
            yield
        finally:
            stop.set()
            webhook.offload.close()
            metrics.flush()
            for close in closers:
                close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    routes = [
        Route("/healthz", webhook.healthz, methods=["GET"]),
        Route("/readyz", webhook.readyz, methods=["GET"]),
        Route("/metrics", webhook.metrics, methods=["GET"]),
    ]
    handlers: dict[Any, Callable[[HttpRequest, Exception], Awaitable[Response]]] = {
        HTTPException: _http_error, Exception: _internal_error,
    }
    return App(webhook, Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers))


def registrar(settings: Settings) -> Callable[[list[Any]], object]:
    from admission.register import Registrar
    from admission.webhooks import Registration, check_url, parse_label, parse_service

    reg = Registration(name=settings.register_name, url=check_url(settings.register_url) if settings.register_url
                       else "", service=parse_service(settings.register_service) if settings.register_service else None,
                       namespace_labels=tuple(parse_label(t) for t in settings.register_namespace_labels))
    return Registrar(reg, settings.kubeconfig or None, settings.context or None, ca_file=settings.ca_bundle)


def _file_stamp(path: Path) -> tuple[int, int, int]:
    try:
        st = path.stat()  # follows a Secret volume's symlinks to the current file
    except OSError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


async def _follow_ca_bundle(path: Path, policies: Policies, register: Callable[[list[Any]], object],
                            stop: asyncio.Event, every: float = 1.0) -> None:
    """serve --register: when the CA bundle file changes (a renewed Secret, `admission certs rotate --ca`),
    register again with the current policy set, so caBundle follows the CA without waiting for a policy
    reload. The registrar reads the file itself and applies only what changed."""
    stamp = _file_stamp(path)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        current = _file_stamp(path)
        if stop.is_set() or current == stamp or policies.engine is None:
            continue
        stamp = current
        log.info("CA bundle changed: registering the webhooks again", extra={"fields": {"ca_bundle": str(path)}})
        try:
            await asyncio.to_thread(register, policies.engine.policies())
        except Exception:  # the registrar logs its own failures; this must never stop the server
            log.exception("re-registering after a CA bundle change failed")


async def _flush_metrics(stop: asyncio.Event, every: float = 1.0) -> None:
    """Rule results are tallied in memory (admission.metrics); add them to the counters every second."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        metrics.flush()


def _on_sighup(policies: Policies) -> None:
    """SIGHUP reloads the policies (with several workers, uvicorn's supervisor restarts them instead)."""
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError, AttributeError):
        loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(asyncio.to_thread(policies.load)))


def _cluster_state(settings: Settings, closers: list[Callable[[], None]]) -> ClusterState:
    if settings.state_paths:
        return static_state(settings.state_paths)
    if not settings.cluster:
        return unavailable("cluster state disabled (--no-cluster)")
    from admission.cluster import ClusterError, connect
    from admission.watch import (
        ClusterWatch,
        admission_policy_param_kinds,
        gatekeeper_sync_kinds,
        kube_resources,
        namespace_fetcher,
        synced_resources,
    )

    try:
        cluster = connect(settings.kubeconfig or None, settings.context or None)
    except ClusterError as exc:
        return unavailable(str(exc))
    resources = kube_resources(cluster.api)
    resources += synced_resources(gatekeeper_sync_kinds(settings.policies), skip=[r.kind for r in resources],
                                  api_client=cluster.api)
    resources += synced_resources(admission_policy_param_kinds(settings.policies), skip=[r.kind for r in resources],
                                  api_client=cluster.api)
    watch = ClusterWatch(resources)
    # a namespace the watch has not seen yet is read from the API server, never taken as unlabelled
    watch.state.fetch_namespace = namespace_fetcher(cluster.api)
    watch.start()
    closers.append(watch.close)
    return watch.state


def _break_glass_state(settings: Settings, closers: list[Callable[[], None]]) -> ClusterState | None:
    """A watch of the break-glass ConfigMap in the server's namespace; None to read it from the cluster state
    (--state manifests, or no cluster at all)."""
    if settings.state_paths or not settings.cluster:
        return None
    from admission.cluster import ClusterError, connect
    from admission.watch import ClusterWatch, configmap_resource

    try:
        cluster = connect(settings.kubeconfig or None, settings.context or None)
    except ClusterError:
        return None
    watch = ClusterWatch([configmap_resource(cluster.api, settings.namespace, BREAK_GLASS_NAME)])
    watch.start()
    closers.append(watch.close)
    return watch.state


def app_from_env() -> App:
    """The factory uvicorn calls in each worker process."""
    # Evaluation runs in a thread beside the event loop; hand the GIL over sooner than the default 5 ms so an
    # evaluation that finished is not kept waiting behind the loop's work (and vice versa).
    sys.setswitchinterval(float(os.environ.get("ADMISSION_SWITCH_INTERVAL", "0.0005")))
    return create_app(Settings.from_env())


# --- admission serve ----------------------------------------------------------------------------------------


def run(*, host: str = "0.0.0.0", port: int = 8443, workers: int = 1, policies: tuple[str, ...] = (),
        cert: str | None = None, key: str | None = None, certs_dir: str | None = None, service: str = "admission",
        namespace: str = "admission", max_body_bytes: int = 3 * 1024 * 1024, timeout_seconds: float = 8.0,
        insecure_http: bool = False, cluster: bool = True, state_paths: tuple[str, ...] = (),
        log_level: str = "info", watch_policies: bool = True, keep_alive_timeout: int = 5,
        max_connections: int = 1000, http: str = "httptools", allow_empty: bool = False,
        kubeconfig: str | None = None, context: str | None = None, register: bool = False,
        register_url: str = "", webhook_name: str = "admission", ca_bundle: str | None = None,
        namespace_labels: tuple[str, ...] = ()) -> int:
    """`admission serve`. Returns the exit code: 0 after a clean shutdown, 2 for unusable options or policies."""
    logs.configure(log_level)
    if workers < 1 or max_body_bytes < 1 or timeout_seconds <= 0 or keep_alive_timeout < 1 or max_connections < 1:
        return _usage("--workers, --max-body-bytes, --timeout, --keep-alive-timeout and --max-connections must be "
                      "positive")
    if http not in ("httptools", "h11"):
        return _usage("--http must be httptools or h11")
    if bool(cert) != bool(key):
        return _usage("--cert and --key go together")

    settings = Settings(policies=policy_paths(policies), max_body_bytes=max_body_bytes,
                        timeout_seconds=timeout_seconds, cluster=cluster, state_paths=list(state_paths),
                        watch_policies=watch_policies, log_level=log_level, allow_empty=allow_empty,
                        kubeconfig=kubeconfig or "", context=context or "", namespace=namespace)
    if register:
        from admission.webhooks import RegistrationError, check_url, parse_label

        settings.register, settings.register_name = True, webhook_name
        settings.register_namespace_labels = list(namespace_labels)
        try:
            settings.register_url = check_url(register_url) if register_url else ""
            for text in namespace_labels:
                parse_label(text)
        except RegistrationError as exc:
            return _usage(str(exc))
        settings.register_service = "" if register_url else f"{namespace}/{service}"
        if insecure_http:
            return _usage("--register needs TLS: the API server calls webhooks over HTTPS only")
        if cert and not ca_bundle:
            return _usage("--register with --cert/--key needs --ca-bundle (the CA that signed --cert)")
        from admission.cluster import ClusterError, connect

        try:
            connect(kubeconfig, context)
        except ClusterError as exc:
            return _usage(f"--register needs access to the cluster: {exc}")
    checked = Policies(settings.policies, allow_empty=allow_empty)
    if not checked.load():
        return _usage(f"cannot load policies: {checked.error}")
    if state_paths:
        try:
            static_state(list(state_paths))
        except Exception as exc:
            return _usage(f"cannot read --state: {exc}")

    ssl: dict[str, Any] = {}
    if not insecure_http:
        from admission import certs, tls

        try:
            paths = (certs.check_user_certs(cert, key) if cert and key
                     else certs.ensure(certs.certs_dir(certs_dir), service, namespace))
        except certs.CertError as exc:
            return _usage(str(exc))
        # reloaded when the files change (admission.tls): `admission certs rotate` or a renewed Secret
        ssl = {"ssl_certfile": str(paths.cert), "ssl_keyfile": str(paths.key), "ssl_context_factory": tls.context_factory}
        if register:
            settings.ca_bundle = str(Path(ca_bundle).resolve()) if ca_bundle else str(paths.ca)
        if paths.ca is not None:
            what = "created" if paths.created else "reusing"
            print(f"admission: {what} serving certificate {paths.cert}; CA bundle for the webhook's caBundle: "
                  f"{paths.ca}", file=sys.stderr, flush=True)

    if not state_paths:
        problem = _announce_cluster(cluster, kubeconfig, context)
        if problem:
            return _usage(problem)

    multiproc_dir = ""
    if workers > 1 and not os.environ.get(metrics.MULTIPROC_ENV):
        multiproc_dir = tempfile.mkdtemp(prefix="admission-metrics-")
        os.environ[metrics.MULTIPROC_ENV] = multiproc_dir
    os.environ[SETTINGS_ENV] = settings.to_env()

    import uvicorn

    log.info("starting", extra={"fields": {
        "host": host, "port": port, "workers": workers, "tls": not insecure_http,
        "policies": len(checked.engine.policies()) if checked.engine else 0, "paths": settings.policies,
    }})
    # Connection limits (README, "Behaviour under failure"): an idle keep-alive connection is closed after
    # `keep_alive_timeout` seconds; past `max_connections` open connections (or requests in progress) per
    # worker, uvicorn answers 503 at once. h11 also bounds the header block while parsing; httptools does not,
    # and the app answers 431 past MAX_HEADERS / MAX_HEADER_BYTES (see header_problem).
    limits: dict[str, Any] = {"timeout_keep_alive": keep_alive_timeout, "limit_concurrency": max_connections}
    if http == "h11":
        limits["h11_max_incomplete_event_size"] = MAX_HEADER_BYTES + 8 * 1024  # headers plus the request line
    try:
        uvicorn.run(
            "admission.server:app_from_env", factory=True, host=host, port=port, workers=workers,
            loop="uvloop", http=http, log_config=logs.uvicorn_log_config(log_level), access_log=False,
            server_header=False, timeout_graceful_shutdown=10, **limits, **ssl,
        )
    finally:
        if multiproc_dir:
            shutil.rmtree(multiproc_dir, ignore_errors=True)
    return 0


def _announce_cluster(cluster: bool, kubeconfig: str | None = None, context: str | None = None) -> str:
    """Say once, at start, whether rules that need cluster state will have it. Returns why a cluster asked
    for by --kubeconfig/--context cannot be used (then the server does not start), else ""."""
    if not cluster:
        log.warning("no cluster: --no-cluster given; rules that need cluster state error and follow their "
                    "failure policy")
        return ""
    from admission.watch import detect_cluster

    configured, how = detect_cluster(kubeconfig, context)
    if configured:
        log.info("watching cluster state (NetworkPolicies, Namespaces) via %s", how)
    elif kubeconfig or context:
        return how
    else:
        log.warning("no cluster: %s; rules that need cluster state error and follow their failure policy", how)
    return ""


def _usage(message: str) -> int:
    print(f"admission serve: {message}", file=sys.stderr)
    return 2

