"""Which evaluator each Rego policy runs on is visible: `admission test -v` prints it per Gatekeeper template
and Rego module (for regopy, why the compiler declined), and the server exports it as the gauge
`admission_policy_engine{policy,dialect,engine}`."""

from __future__ import annotations

import io
from pathlib import Path

from prometheus_client import REGISTRY

from admission.reload import Policies
from admission.testing import run

COMPILED_REGO = """package k8snolatest
violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  endswith(c.image, ":latest")
  msg := sprintf("container %v uses latest", [c.name])
}
"""
# http.send is outside the compiler's subset: this template runs on regopy (never called for a Pod here)
REGOPY_REGO = """package k8sremote
violation[{"msg": "remote says no"}] {
  input.review.object.kind == "Secret"
  resp := http.send({"method": "get", "url": input.parameters.url})
  resp.status_code == 403
}
"""


def _template(name: str, kind: str, rego: str) -> str:
    body = "\n".join("        " + line for line in rego.splitlines())
    return f"""apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: {name}
spec:
  crd:
    spec:
      names:
        kind: {kind}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
{body}
"""


def _constraint(kind: str, name: str) -> str:
    return f"""apiVersion: constraints.gatekeeper.sh/v1beta1
kind: {kind}
metadata:
  name: {name}
spec:
  match:
    kinds:
      - apiGroups: [""]
        kinds: ["Pod"]
  parameters:
    url: "https://example.invalid/"
"""


POD = """apiVersion: v1
kind: Pod
metadata:
  name: p
  namespace: default
spec:
  containers:
    - name: app
      image: "nginx:latest"
"""


def _suite(tmp: Path) -> Path:
    (tmp / "nolatest.yaml").write_text(_template("k8snolatest", "K8sNoLatest", COMPILED_REGO))
    (tmp / "remote.yaml").write_text(_template("k8sremote", "K8sRemote", REGOPY_REGO))
    (tmp / "c1.yaml").write_text(_constraint("K8sNoLatest", "no-latest"))
    (tmp / "c2.yaml").write_text(_constraint("K8sRemote", "remote"))
    (tmp / "pod.yaml").write_text(POD)
    (tmp / "suite.yaml").write_text("""apiVersion: test.gatekeeper.sh/v1alpha1
kind: Suite
tests:
  - name: no-latest
    template: nolatest.yaml
    constraint: c1.yaml
    cases:
      - name: latest
        object: pod.yaml
        assertions:
          - violations: 1
  - name: remote
    template: remote.yaml
    constraint: c2.yaml
    cases:
      - name: pod
        object: pod.yaml
        assertions:
          - violations: no
""")
    return tmp


def test_admission_test_verbose_prints_each_templates_route(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run([str(_suite(tmp_path))], out, verbose=True) == 0
    lines = [line for line in out.getvalue().splitlines() if line.startswith("engine ")]
    assert len(lines) == 2, out.getvalue()
    nolatest = next(line for line in lines if "k8snolatest" in line)
    remote = next(line for line in lines if "k8sremote" in line)
    assert nolatest.endswith(": compiled")
    assert ": regopy (" in remote and "http.send" in remote  # the construct the compiler declined


def test_admission_test_without_verbose_prints_no_routes(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run([str(_suite(tmp_path))], out) == 0
    assert "engine " not in out.getvalue()


PLAIN = """package admission.nolatest
import rego.v1
deny contains msg if {
  some c in input.request.object.spec.containers
  endswith(c.image, ":latest")
  msg := "latest"
}
"""
PLAIN_REMOTE = """package admission.remote
import rego.v1
deny contains "remote says no" if {
  input.request.kind.kind == "Secret"
  http.send({"method": "get", "url": "https://example.invalid/"}).status_code == 403
}
"""


def _module_routes(tmp_path: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "pod.yaml").write_text(POD)
    (tmp_path / "t.test.yaml").write_text(f"""apiVersion: admission.dev/v1
kind: PolicyTest
policies: {sorted(files)}
resources: [pod.yaml]
results:
  - policy: admission.nolatest
    rule: deny
    resources: [p]
    kind: Pod
    result: fail
""")
    out = io.StringIO()
    run([str(tmp_path)], out, verbose=True)
    return [line for line in out.getvalue().splitlines() if line.startswith("engine ")]


def test_plain_rego_module_route_is_printed(tmp_path: Path) -> None:
    [line] = _module_routes(tmp_path, {"policy.rego": PLAIN})
    assert "Rego module admission.nolatest" in line and line.endswith(": compiled")


def test_plain_rego_modules_the_compiler_declines_say_why(tmp_path: Path) -> None:
    # the modules of a set are compiled together (they may import each other): one outside the subset
    # keeps the set on regopy, and the reason names it
    lines = _module_routes(tmp_path, {"policy.rego": PLAIN, "remote.rego": PLAIN_REMOTE})
    assert len(lines) == 2
    assert all(": regopy (" in line and "http.send" in line and "remote.rego" in line for line in lines)


def _gauge(policy: str, dialect: str, engine: str) -> float | None:
    return REGISTRY.get_sample_value("admission_policy_engine", {"policy": policy, "dialect": dialect, "engine": engine})


def test_the_engine_gauge_follows_the_loaded_set(tmp_path: Path) -> None:
    suite = _suite(tmp_path)
    policies = tmp_path / "policies"
    policies.mkdir()
    for f in ("nolatest.yaml", "remote.yaml", "c1.yaml", "c2.yaml"):
        (policies / f).write_text((suite / f).read_text())
    holder = Policies([policies])
    assert holder.load(), holder.error
    assert _gauge("no-latest", "gatekeeper", "compiled") == 1
    assert _gauge("remote", "gatekeeper", "regopy") == 1
    (policies / "c2.yaml").unlink()
    (policies / "remote.yaml").unlink()
    assert holder.load(), holder.error
    assert _gauge("no-latest", "gatekeeper", "compiled") == 1
    assert _gauge("remote", "gatekeeper", "regopy") == 0  # no longer loaded
