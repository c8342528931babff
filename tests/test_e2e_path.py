"""The README's whole path, run line by line against a real kube-apiserver: install, `admission certs init`,
`admission register --url`, `admission serve`, a Pod denied through the API server, both certificate
rotations while the API server keeps calling the webhooks (no failed request), `admission audit
--write-reports` and the report read back, `admission register --delete`.

The lines are read from the README block after `<!-- e2e-path -->`, so the README and this test cannot
disagree. `admission` lines run the installed `admission` command (the one next to this interpreter: what
`pip install -e .` made), with `KUBECONFIG` set to the test API server and `ADMISSION_HOME` to a scratch
folder. `kubectl` lines run through the Kubernetes client: each one this test knows is done as kubectl does
it, and a line it does not know fails the test. `pip install -e .` is not run again (this environment is that
install). So that two runs can share an API server, the text is changed in three ways only: port 8443 becomes
a free port, `demo` (the namespace, and the label key that names it) becomes a name of this run, and
`admission register` / `admission certs rotate` get `--name` of this run.

Runs when ADMISSION_E2E_KUBECONFIG names the kubeconfig of a disposable API server (../shared/apiserver/
starts one on loopback); skipped otherwise.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .serving import client_context, free_port

ENV = "ADMISSION_E2E_KUBECONFIG"
KUBECONFIG = os.environ.get(ENV, "")
needs_api_server = pytest.mark.skipif(not KUBECONFIG, reason=f"no API server for end-to-end tests: set {ENV} to its kubeconfig "
                                                      "(../shared/apiserver/up.sh starts one)")
ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- e2e-path -->"


def readme_path() -> list[str]:
    """The command lines of the README's path block, comments stripped."""
    text = (ROOT / "README.md").read_text()
    assert MARKER in text, "README.md lost its e2e-path block"
    block = re.search(r"```sh\n(.*?)```", text[text.index(MARKER):], re.S)
    assert block is not None
    lines = []
    for line in block.group(1).splitlines():
        command = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()  # a comment starts at " # "
        if command:
            lines.append(command)
    return lines


def test_the_readme_path_has_every_step() -> None:
    """Runs without an API server: the block names every step the issue asks the README to show."""
    lines = readme_path()
    firsts = [" ".join(shlex.split(line)[:3]) for line in lines]
    for step in ("pip install -e", "admission certs init", "admission register --url", "admission serve --host",
                 "kubectl run web", "admission certs rotate", "admission audit -n", "kubectl get policyreports"):
        assert any(f.startswith(step) for f in firsts), f"README path lacks {step!r}"
    assert any("--write-reports" in line for line in lines)


def flags(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """kubectl's arguments as positionals and flags (`-n X`, `--image=X`, `-f X`, `--server-side`)."""
    positional: list[str] = []
    named: dict[str, str] = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith("--") and "=" in a:
            key, value = a[2:].split("=", 1)
            named[key] = value
        elif a == "--server-side":
            named["server-side"] = "true"
        elif a.startswith("-"):
            named[a.lstrip("-")] = args[i + 1]
            i += 1
        else:
            positional.append(a)
        i += 1
    return positional, named


class Kubectl:
    """The kubectl lines of the path, as kubectl does them, through the Kubernetes client."""

    def __init__(self) -> None:
        from admission.audit import kube_api
        from admission.cluster import connect

        self.api = connect(KUBECONFIG).api
        self.dynamic = kube_api(KUBECONFIG)
        self.denied: list[str] = []
        self.reports: list[dict[str, Any]] = []

    def __call__(self, args: list[str]) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        core = client.CoreV1Api(self.api)
        positional, named = flags(args)
        match positional:
            case ["create", "namespace", name]:
                core.create_namespace({"metadata": {"name": name}})
            case ["create", "deployment", name]:
                image = named["image"]
                labels = {"app": name}
                container = image.rsplit("/", 1)[-1].split(":")[0].split("@")[0]
                client.AppsV1Api(self.api).create_namespaced_deployment(named["n"], {
                    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
                    "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": container, "image": image}]}}}})
            case ["label", "namespace", name, label]:
                key, value = label.split("=", 1)
                core.patch_namespace(name, {"metadata": {"labels": {key: value}}})
            case ["run", name]:
                body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"run": name}},
                        "spec": {"containers": [{"name": name, "image": named["image"]}]}}
                with pytest.raises(ApiException) as refused:
                    core.create_namespaced_pod(named["n"], body)
                assert refused.value.status == 403, refused.value
                self.denied.append(str(refused.value.body))
            case ["apply"] if named.get("server-side"):
                from .test_e2e_reports import install_crds

                assert (ROOT / named["f"]).resolve() == (ROOT / "deploy" / "crds").resolve(), named
                install_crds(self.dynamic)
            case ["get", "policyreports"]:
                found = client.CustomObjectsApi(self.api).list_namespaced_custom_object(
                    "wgpolicyk8s.io", "v1alpha2", named["n"], "policyreports")
                self.reports = found["items"]
            case _:
                raise AssertionError(f"the test does not know `kubectl {' '.join(args)}`: teach it, or change the README")


class Load:
    """Dry-run Pod creations through the API server in a loop (it calls both webhooks for them), each of which
    must be denied by our server with its message: an unanswered call fails closed with another message."""

    def __init__(self, api: Any, namespace: str) -> None:
        self.api, self.namespace = api, namespace
        self.sent = 0
        self.failed: list[str] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(2)]

    def run(self) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        core = client.CoreV1Api(self.api)
        while not self.stop.is_set():
            self.sent += 1
            body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"load-{self.sent}"},
                    "spec": {"containers": [{"name": "app", "image": "nginx"}]}}
            try:
                core.create_namespaced_pod(self.namespace, body, dry_run="All")
                self.failed.append("a violating Pod was admitted")
            except ApiException as exc:
                if exc.status != 403 or "[disallow-latest-tag]" not in str(exc.body):
                    self.failed.append(f"{exc.status}: {exc.body}")
            except Exception as exc:  # every kind of failure counts
                self.failed.append(f"{type(exc).__name__}: {exc}")

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def dry_run_reviews(port: int, home: Path, endpoint: str) -> float:
    """Dry-run decisions the server has answered on an endpoint (its /metrics)."""
    import http.client

    conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(home / "certs" / "ca.pem"))
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return sum(float(m.group(1)) for m in re.finditer(
        r'^admission_dry_run_reviews_total\{[^}]*endpoint="' + endpoint + r'"[^}]*\} (\S+)', text, re.M))


def wait_ready(port: int, home: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    import http.client
    import ssl

    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"admission serve exited {proc.returncode}: {log.read_text()[-3000:]}"
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=client_context(home / "certs" / "ca.pem"),
                                               timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except (OSError, ssl.SSLError):
            pass
        assert time.monotonic() < deadline, f"admission serve not ready after {timeout}s: {log.read_text()[-3000:]}"
        time.sleep(0.2)


@pytest.fixture
def run() -> Iterator[str]:
    name = f"admission-e2e-path-{uuid.uuid4().hex[:8]}"
    yield name
    from kubernetes import client

    from admission.cluster import connect

    api = connect(KUBECONFIG).api
    admission = client.AdmissionregistrationV1Api(api)
    for delete in (admission.delete_validating_webhook_configuration, admission.delete_mutating_webhook_configuration):
        try:
            delete(name)
        except client.exceptions.ApiException as exc:
            if exc.status != 404:
                raise
    for delete in (lambda: client.AppsV1Api(api).delete_collection_namespaced_deployment(name),
                   lambda: client.CustomObjectsApi(api).delete_collection_namespaced_custom_object(
                       "wgpolicyk8s.io", "v1alpha2", name, "policyreports"),
                   lambda: client.CoreV1Api(api).delete_namespace(name)):  # stays Terminating on a bare API server
        try:
            delete()
        except client.exceptions.ApiException as exc:
            if exc.status != 404:
                raise


@needs_api_server
def test_the_readme_path_against_the_api_server(run: str, tmp_path: Path) -> None:
    command = shutil.which("admission", path=str(Path(sys.executable).parent))
    assert command, "no `admission` command next to the interpreter: is the package installed (pip install -e .)?"
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "KUBECONFIG": KUBECONFIG, "ADMISSION_HOME": str(home)}
    port = free_port()
    kubectl = Kubectl()
    server: subprocess.Popen[bytes] | None = None
    log = tmp_path / "serve.log"
    rotations: list[tuple[str, Load]] = []
    outputs: dict[str, str] = {}
    lines = [line.replace("8443", str(port)).replace("demo", run) for line in readme_path()]
    try:
        for line in lines:
            args = shlex.split(line.rstrip("&").strip())
            if args[:3] == ["pip", "install", "-e"]:
                continue  # this environment is that install; the `admission` command is checked above
            if args[0] == "kubectl":
                kubectl(args[1:])
                continue
            assert args[0] == "admission", line
            if args[1:2] == ["register"] or args[1:3] == ["certs", "rotate"]:
                args += ["--name", run]
            argv = [command, *args[1:]]
            if line.endswith("&"):
                assert args[1] == "serve", line
                server = subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT)
                wait_ready(port, home, server, log)
                continue
            if args[1:3] == ["certs", "rotate"]:
                # while the API server keeps calling the webhooks for the opted-in namespace
                assert server is not None and kubectl.denied, "the path rotates before serving and denying"
                before = dry_run_reviews(port, home, "mutate")
                with Load(kubectl.api, run) as load:
                    time.sleep(2)
                    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
                    time.sleep(3)
                assert done.returncode == 0, done.stdout + done.stderr
                rotations.append((line, load))
                print(f"{line}: {load.sent} dry-run creations through the API server, {len(load.failed)} failed")
                assert load.failed == [], load.failed[:5]
                assert load.sent > 10
                # every creation reached the mutating webhook too (the server counts them on /mutate); one
                # that failed there would have passed unnoticed, its failurePolicy being Ignore
                time.sleep(1.5)
                assert dry_run_reviews(port, home, "mutate") - before >= load.sent - 2  # 2 may be in flight
                outputs[line] = done.stdout + done.stderr
                continue
            done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
            expected = 1 if args[1] == "audit" else 0  # the audit finds failures, and says so in its code
            assert done.returncode == expected, f"{line}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
            outputs[line] = done.stdout + done.stderr
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)

    # the Pod was refused by the API server, on our webhook's word
    [message] = kubectl.denied
    assert re.search(r'admission webhook \\"[^"\\]+\\" denied the request', message), message
    assert "[disallow-latest-tag]" in message
    # the CA rotation patched caBundle in both configurations
    [ca] = [text for line, text in outputs.items() if "--ca" in line]
    assert f"ValidatingWebhookConfiguration/{run}: caBundle patched" in ca
    assert f"MutatingWebhookConfiguration/{run}: caBundle patched" in ca
    assert len(rotations) == 2
    # the report, read back, holds the Deployment that was there before the webhook
    [report] = kubectl.reports
    assert report["metadata"]["name"] == "admission-audit"
    assert report["summary"]["fail"] > 0
    failing = {(r["policy"], r["resources"][0]["kind"], r["resources"][0]["name"])
               for r in report["results"] if r["result"] == "fail"}
    assert ("disallow-latest-tag", "Deployment", "web") in failing
    # and `register --delete` removed both configurations
    from kubernetes import client

    admission = client.AdmissionregistrationV1Api(kubectl.api)
    for read in (admission.read_validating_webhook_configuration, admission.read_mutating_webhook_configuration):
        with pytest.raises(client.exceptions.ApiException, match="Not Found"):
            read(run)
