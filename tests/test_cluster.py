"""Which cluster `serve`, `audit` and `register` talk to: --kubeconfig/--context, $KUBECONFIG, in-cluster, default."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from admission.cli import main
from admission.cluster import ClusterError, connect

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters:
  - {name: one, cluster: {server: "https://127.0.0.1:%(one)d", insecure-skip-tls-verify: true}}
  - {name: two, cluster: {server: "https://127.0.0.1:%(two)d", insecure-skip-tls-verify: true}}
users: [{name: u, user: {token: secret-token}}]
contexts:
  - {name: first, context: {cluster: one, user: u}}
  - {name: second, context: {cluster: two, user: u}}
current-context: first
"""


@pytest.fixture(autouse=True)
def no_ambient_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Neither this machine's kubeconfig nor a Pod's service account may leak into these tests."""
    import kubernetes.config  # noqa: F401  (it reads KUBECONFIG once, when first imported)

    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def kubeconfig(path: Path, one: int = 1001, two: int = 1002) -> Path:
    path.write_text(KUBECONFIG % {"one": one, "two": two})
    return path


def test_explicit_kubeconfig_uses_its_current_context(tmp_path: Path) -> None:
    cluster = connect(str(kubeconfig(tmp_path / "cfg")))
    assert cluster.host == "https://127.0.0.1:1001"
    assert cluster.api.configuration.auth_settings()["BearerToken"]["value"] == "Bearer secret-token"
    assert str(tmp_path / "cfg") in cluster.how


def test_context_picks_another_cluster(tmp_path: Path) -> None:
    cluster = connect(str(kubeconfig(tmp_path / "cfg")), "second")
    assert cluster.host == "https://127.0.0.1:1002" and "context second" in cluster.how


def test_context_alone_applies_to_the_kubeconfig_environment_variable(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / "cfg")))
    assert connect(None, "second").host == "https://127.0.0.1:1002"
    assert connect().host == "https://127.0.0.1:1001"


def test_two_connections_do_not_share_a_configuration(tmp_path: Path) -> None:
    cfg = str(kubeconfig(tmp_path / "cfg"))
    a, b = connect(cfg, "first"), connect(cfg, "second")
    assert a.api.configuration.host != b.api.configuration.host


def test_default_kubeconfig_in_the_home_folder(tmp_path: Path) -> None:
    (tmp_path / "home" / ".kube").mkdir(parents=True)
    kubeconfig(tmp_path / "home" / ".kube" / "config", one=2001)
    assert connect().host == "https://127.0.0.1:2001"


def test_no_cluster_at_all_says_what_was_tried() -> None:
    with pytest.raises(ClusterError, match=r"not running in a Pod, no \$KUBECONFIG, no .*pass --kubeconfig"):
        connect()


@pytest.mark.parametrize(("content", "context", "expected"), [
    (None, None, "does not exist"),
    ("garbage: [", None, "kubeconfig unusable"),
    (KUBECONFIG % {"one": 1, "two": 2}, "third", r"kubeconfig unusable: .* \(context third\): .*third"),
])
def test_an_unusable_kubeconfig_is_an_error_not_a_fallback(tmp_path: Path, content: str | None, context: str | None,
                                                           expected: str) -> None:
    (tmp_path / "home" / ".kube").mkdir(parents=True)
    kubeconfig(tmp_path / "home" / ".kube" / "config")  # a usable default that must not be taken instead
    path = tmp_path / "cfg"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ClusterError, match=expected):
        connect(str(path), context)


def test_retries_can_be_turned_off(tmp_path: Path) -> None:
    assert connect(str(kubeconfig(tmp_path / "cfg")), retries=0).api.configuration.retries == 0


@pytest.mark.parametrize("command", ["serve", "audit"])
def test_the_commands_take_kubeconfig_and_context(command: str) -> None:
    options = {opt for p in main.commands[command].params for opt in getattr(p, "opts", [])}
    assert {"--kubeconfig", "--context"} <= options


def test_audit_reaches_the_cluster_the_context_names(tmp_path: Path) -> None:
    """Through the real client: the chosen context's port is the one audit fails to reach."""
    import socket

    with socket.socket() as s:  # a free port, closed again: connections to it are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = kubeconfig(tmp_path / "cfg", one=1, two=port)
    result = CliRunner().invoke(main, ["audit", "--kubeconfig", str(cfg), "--context", "second"])
    assert result.exit_code == 2
    assert f"127.0.0.1:{port}" in result.output


def test_serve_refuses_to_start_with_an_unusable_kubeconfig(tmp_path: Path) -> None:
    from admission.server import run

    err = io.StringIO()
    import contextlib

    with contextlib.redirect_stderr(err):
        code = run(kubeconfig=str(tmp_path / "missing"), certs_dir=str(tmp_path / "certs"), log_level="error")
    assert code == 2
    assert "does not exist" in err.getvalue()


@pytest.mark.parametrize(("args", "message"), [
    ({"register": True}, "--register needs access to the cluster: no Kubernetes cluster configured"),
    ({"register": True, "register_url": "http://127.0.0.1:1"}, "--url"),
    ({"register": True, "insecure_http": True}, "needs TLS"),
])
def test_serve_register_refuses_what_cannot_work(tmp_path: Path, args: dict[str, object], message: str) -> None:
    import contextlib

    from admission.server import run

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = run(certs_dir=str(tmp_path / "certs"), log_level="error", **args)  # type: ignore[arg-type]
    assert code == 2
    assert message in err.getvalue()
