"""Certificates rotated under a running server: new connections get the new certificate, and a client
posting continuously across the rotation sees no failed request (real server, HTTPS on loopback)."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from admission import certs, tls
from admission.cli import main

from .serving import Poster, fingerprint, serve, wait_for


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADMISSION_HOME", str(tmp_path))
    # no cluster: `certs rotate --ca` must not patch a webhook configuration of whatever cluster this
    # machine's kubeconfig names
    import kubernetes.config  # noqa: F401  (it reads KUBECONFIG once, when first imported)

    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    result = CliRunner().invoke(main, ["certs", "init"])
    assert result.exit_code == 0, result.output
    return tmp_path


def test_rotation_under_load_fails_no_request(home: Path) -> None:
    folder = home / "certs"
    with serve(home, "--no-cluster", "--no-watch-policies", "--log-level", "warning") as (port, _proc):
        fresh = Poster(port, folder / "ca.pem", fresh=True).start()
        kept = Poster(port, folder / "ca.pem", fresh=False).start()
        try:
            time.sleep(1.0)
            first = fingerprint(folder / "tls.pem")
            # 1. a new serving certificate from the same CA
            certs.rotate(folder)
            second = fingerprint(folder / "tls.pem")
            assert second != first
            assert wait_for(lambda: second in fresh.seen), "new connections never got the new certificate"
            # 2. a new CA: the bundle holds both while the serving certificate changes over
            certs.rotate(folder, ca=True, before_serving=lambda _bundle: time.sleep(0.5))
            third = fingerprint(folder / "tls.pem")
            assert wait_for(lambda: third in fresh.seen), "new connections never got the new CA's certificate"
            time.sleep(1.0)
        finally:
            fresh.finish()
            kept.finish()
    print(f"rotation under load: {fresh.sent} requests on new connections, {kept.sent} on one kept-alive "
          f"connection; failed {len(fresh.failed)} + {len(kept.failed)}; certificates seen {len(fresh.seen)}")
    assert fresh.failed == [] and kept.failed == []
    assert fresh.sent > 20 and kept.sent > 20
    assert {first, second, third} <= set(fresh.seen)
    assert set(kept.seen) == {first}  # a connection already open keeps the certificate it started with


def test_a_half_written_pair_is_skipped_until_it_matches(home: Path) -> None:
    folder = home / "certs"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "tls.pem", folder / "tls-key.pem")
    live = tls.Reloadable(context, folder / "tls.pem", folder / "tls-key.pem")
    old_cert = (folder / "tls.pem").read_bytes()
    certs.rotate(folder)
    new_cert = (folder / "tls.pem").read_bytes()
    (folder / "tls.pem").write_bytes(old_cert)  # the new key with the old certificate: a rotation half-way
    assert live.check() is False and live.reloads == 0
    (folder / "tls.pem").write_bytes(new_cert)
    assert live.check() is True and live.reloads == 1
    assert live.check() is False  # unchanged since


def test_certs_commands(home: Path) -> None:
    import json

    runner = CliRunner()
    shown = json.loads(runner.invoke(main, ["certs", "show", "-o", "json"]).output)
    assert shown["certsDir"] == str(home / "certs")
    assert shown["serving"]["signedByCurrentCA"] and len(shown["caBundle"]["certificates"]) == 1
    assert "127.0.0.1" in shown["serving"]["ipAddresses"] and "admission.admission.svc" in shown["serving"]["dnsNames"]
    result = runner.invoke(main, ["certs", "rotate", "--if-due"])
    assert result.exit_code == 0 and "nothing due" in result.output
    result = runner.invoke(main, ["certs", "rotate", "--ca", "--wait", "0"])
    assert result.exit_code == 0, result.output
    assert "caBundle not patched: no Kubernetes cluster configured" in result.output
    after = json.loads(runner.invoke(main, ["certs", "show", "-o", "json"]).output)
    assert len(after["caBundle"]["certificates"]) == 2  # the new CA first, the old one kept for the overlap
    assert after["caBundle"]["certificates"][1]["sha256"] == shown["caBundle"]["certificates"][0]["sha256"]
    assert after["serving"]["dnsNames"] == shown["serving"]["dnsNames"] and after["serving"]["signedByCurrentCA"]
    assert "previous (kept for the overlap)" in runner.invoke(main, ["certs", "show"]).output
    assert runner.invoke(main, ["certs", "show", "--ca-file"]).output.strip() == str(home / "certs" / "ca.pem")


def test_the_replaced_ca_leaves_the_bundle_after_the_overlap(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    folder = home / "certs"
    published: list[bytes] = []
    certs.rotate(folder, ca=True, before_serving=published.append)
    assert len(certs.describe(folder)["caBundle"]["certificates"]) == 2
    certs.rotate(folder, before_serving=published.append)  # same CA, within the overlap: no new bundle
    assert len(published) == 1
    certs.rotate(folder, overlap=dt.timedelta(0), before_serving=published.append)  # past it: dropped
    assert len(certs.describe(folder)["caBundle"]["certificates"]) == 1
    assert len(published) == 2 and published[1] == (folder / "ca.pem").read_bytes()


def test_rotate_without_certificates_says_to_init(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMISSION_HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["certs", "rotate"])
    assert result.exit_code == 2 and "admission certs init" in result.output


def test_certs_dir_is_under_admission_home_not_the_working_directory(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ADMISSION_HOME", str(tmp_path / "home"))
    assert certs.certs_dir() == tmp_path / "home" / "certs"
    assert certs.certs_dir("other") == tmp_path / "home" / "other"
    assert certs.certs_dir(str(tmp_path / "abs")) == tmp_path / "abs"
    monkeypatch.delenv("ADMISSION_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert certs.certs_dir() == tmp_path / "data" / "admission" / "certs"
