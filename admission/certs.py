"""Development certificates for the webhook: a CA and a serving certificate signed by it (ECDSA P-256).

`ensure(...)` is what `admission serve` calls when no --cert/--key is given: the first start creates
`ca.pem`, `ca-key.pem`, `tls.pem` and `tls-key.pem` under the certs folder; later starts reuse them, and
regenerate the serving certificate when its names do not cover the ones asked for or it expires soon (the CA
too when it expires soon). Files it did not create itself are never overwritten. Keys are written 0600.
`ca.pem` is a bundle: the current CA first, then a replaced CA for OVERLAP after the new one started
(`rotate(..., ca=True)`), so clients that trust the bundle accept certificates of either meanwhile.

    python -m admission.certs --service admission --namespace admission [--dir certs] [--ca-bundle]

(the same as `admission certs init`; `admission certs rotate` and `show` are the other commands). `home()` is
where relative certificate folders live: `$ADMISSION_HOME`, else `~/.local/share/admission`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import ipaddress
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_NAME = "admission webhook development CA"
CA_DAYS = 3650
SERVING_DAYS = 825
RENEW_BEFORE = dt.timedelta(days=30)  # the renewal window: renew what expires sooner than this
OVERLAP = dt.timedelta(days=7)  # a replaced CA stays in ca.pem (the caBundle) this long after the new one starts

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.pem", "ca-key.pem", "tls.pem", "tls-key.pem"


HOME_ENV = "ADMISSION_HOME"


def home() -> Path:
    """Where admission keeps its files: `$ADMISSION_HOME`, else `$XDG_DATA_HOME/admission` (by default
    `~/.local/share/admission`). Never the working directory."""
    given = os.environ.get(HOME_ENV)
    if given:
        return Path(given).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "admission"


def certs_dir(given: str | Path | None = None) -> Path:
    """`--certs-dir`: absolute as given; relative (or left out: `certs`) under home()."""
    path = Path(given).expanduser() if given else Path("certs")
    return path if path.is_absolute() else home() / path


class CertError(Exception):
    """Certificates that cannot be used or created; the message says which file and why."""


@dataclass(frozen=True)
class CertPaths:
    cert: Path
    key: Path
    ca: Path | None  # the CA bundle to put in the webhook's caBundle (None for user-supplied certificates)
    created: bool = False


def service_names(service: str, namespace: str) -> list[str]:
    """The DNS names the API server may use to reach the webhook Service."""
    names = ["localhost"]
    if service:
        names.append(service)
        if namespace:
            names += [f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]
    return names


IP_NAMES = ("127.0.0.1", "::1")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write(path: Path, data: bytes, *, private: bool) -> None:
    """Write a file atomically; private keys are created 0600 and never readable by others, even briefly."""
    tmp = path.with_name(path.name + ".tmp")
    mode = 0o600 if private else 0o644
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _new_ca(days: int = CA_DAYS) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _new_serving(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, dns: list[str],
                 days: int = SERVING_DAYS, ips: tuple[str, ...] = IP_NAMES
                 ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[-1])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=days), ca.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def _load_bundle(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in file order (ca.pem: the current CA first, then replaced ones)."""
    try:
        found = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CertError(f"{path}: not a readable PEM certificate bundle ({exc})") from None
    return found


def _bundle_pem(current: x509.Certificate, previous: list[x509.Certificate], overlap: dt.timedelta) -> bytes:
    """The current CA, then each replaced CA still within the overlap after the current one started (and
    not expired): clients that trust the bundle accept certificates of either during a rotation."""
    now = _now()
    keep = [current] + [
        c for c in previous
        if c.fingerprint(hashes.SHA256()) != current.fingerprint(hashes.SHA256())
        and c.not_valid_after_utc > now and current.not_valid_before_utc + overlap > now
    ]
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in keep)


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise CertError(f"{path}: not a readable PEM certificate ({exc})") from None


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertError(f"{path}: not a readable unencrypted PEM private key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CertError(f"{path}: expected an ECDSA key")
    return key


def sans_of(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    """The DNS names and IP addresses a certificate is valid for."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return set(ext.get_values_for_type(x509.DNSName)), {str(ip) for ip in ext.get_values_for_type(x509.IPAddress)}


def _expiring(cert: x509.Certificate, renew_before: dt.timedelta | None = None) -> bool:
    return cert.not_valid_after_utc - (RENEW_BEFORE if renew_before is None else renew_before) < _now()


def _signed_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def _ours(ca_path: Path) -> bool:
    """Whether an existing CA file is one this module generated (the only kind it may replace)."""
    names = _load_cert(ca_path).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return bool(names) and names[0].value == CA_NAME


def ensure(certs_dir: str | Path, service: str = "admission", namespace: str = "admission") -> CertPaths:
    """Reuse or create the development CA and serving certificate under certs_dir."""
    folder = Path(certs_dir)
    ca_path, ca_key_path = folder / CA_CERT, folder / CA_KEY
    tls_path, tls_key_path = folder / TLS_CERT, folder / TLS_KEY
    dns = service_names(service, namespace)
    existing = [p for p in (ca_path, ca_key_path, tls_path, tls_key_path) if p.exists()]
    if existing and not ca_path.exists():
        raise CertError(
            f"{existing[0]} exists but {ca_path} does not: these are not certificates admission generated; "
            "pass them with --cert/--key or remove them"
        )
    if ca_path.exists() and not _ours(ca_path):
        raise CertError(f"{ca_path} was not generated by admission; pass your certificates with --cert/--key")
    folder.mkdir(parents=True, exist_ok=True)

    created = False
    ca: x509.Certificate | None = None
    ca_key: ec.EllipticCurvePrivateKey | None = None
    previous: list[x509.Certificate] = []
    if ca_path.exists() and ca_key_path.exists():
        previous = _load_bundle(ca_path)
        ca, ca_key = previous[0], _load_key(ca_key_path)
        if _expiring(ca) or ca.public_key() != ca_key.public_key():
            ca = ca_key = None
    if ca is None or ca_key is None:
        ca, ca_key = _new_ca()
        _write(ca_key_path, _key_pem(ca_key), private=True)
        _write(ca_path, _bundle_pem(ca, previous, OVERLAP), private=False)
        created = True

    fresh = created or not (tls_path.exists() and tls_key_path.exists())
    if not fresh:
        cert, key = _load_cert(tls_path), _load_key(tls_key_path)
        names, ips = sans_of(cert)
        fresh = (
            not set(dns) <= names
            or not set(IP_NAMES) <= ips
            or _expiring(cert)
            or not _signed_by(cert, ca)
            or cert.public_key() != key.public_key()
        )
    if fresh:
        cert, key = _new_serving(ca, ca_key, dns)
        _write(tls_key_path, _key_pem(key), private=True)
        _write(tls_path, cert.public_bytes(serialization.Encoding.PEM), private=False)
        created = True
    return CertPaths(tls_path, tls_key_path, ca_path, created)


@dataclass(frozen=True)
class Rotated:
    ca: bool  # a new CA (ca.pem now holds it first, then the CA it replaced)
    serving: bool  # a new serving certificate and key
    bundle: bytes  # ca.pem as written (the caBundle)


def _existing(folder: Path) -> tuple[list[x509.Certificate], ec.EllipticCurvePrivateKey, x509.Certificate]:
    for name in (CA_CERT, CA_KEY, TLS_CERT, TLS_KEY):
        if not (folder / name).exists():
            raise CertError(f"{folder / name} does not exist; run `admission certs init` first")
    if not _ours(folder / CA_CERT):
        raise CertError(f"{folder / CA_CERT} was not generated by admission; rotate your own certificates yourself")
    bundle = _load_bundle(folder / CA_CERT)
    ca_key = _load_key(folder / CA_KEY)
    if bundle[0].public_key() != ca_key.public_key():
        raise CertError(f"{folder / CA_KEY} does not belong to the first certificate of {folder / CA_CERT}")
    return bundle, ca_key, _load_cert(folder / TLS_CERT)


def due(certs_dir: str | Path, renew_before: dt.timedelta | None = None) -> tuple[bool, bool]:
    """(CA due, serving certificate due): inside the renewal window, or not signed by the current CA."""
    bundle, _, serving = _existing(Path(certs_dir))
    ca_due = _expiring(bundle[0], renew_before)
    return ca_due, ca_due or _expiring(serving, renew_before) or not _signed_by(serving, bundle[0])


def rotate(certs_dir: str | Path, *, ca: bool = False, ca_days: int = CA_DAYS, days: int = SERVING_DAYS,
           overlap: dt.timedelta = OVERLAP, before_serving: Callable[[bytes], None] | None = None) -> Rotated:
    """A new serving key and certificate (same names), and with `ca` a new CA first.

    Every file is replaced atomically. A new CA goes first into ca.pem, the CA it replaces stays after it
    for `overlap`; `before_serving(bundle)` is then called (to put the bundle into the webhook
    configurations and let the API server see it; also when a replaced CA leaves the bundle) before the
    serving certificate signed by the new CA is written, so a client trusting the bundle accepts the old and the new certificate throughout. A running
    server picks up the new files for new connections (admission.tls)."""
    folder = Path(certs_dir)
    bundle, ca_key, serving = _existing(folder)
    current = bundle[0]
    if ca:
        current, ca_key = _new_ca(ca_days)
        _write(folder / CA_KEY, _key_pem(ca_key), private=True)
    pem = _bundle_pem(current, bundle, overlap)
    changed = pem != (folder / CA_CERT).read_bytes()  # a new CA, or a replaced one past the overlap
    _write(folder / CA_CERT, pem, private=False)
    if changed and before_serving is not None:
        before_serving(pem)
    dns, ips = sans_of(serving)
    order = ["localhost"] + sorted((n for n in dns if n != "localhost"), key=len)  # the longest is the CN
    cert, key = _new_serving(current, ca_key, order, days, tuple(sorted(ips, key=_ip_order)) or IP_NAMES)
    _write(folder / TLS_KEY, _key_pem(key), private=True)
    _write(folder / TLS_CERT, cert.public_bytes(serialization.Encoding.PEM), private=False)
    return Rotated(ca, True, pem)


def _ip_order(ip: str) -> tuple[int, str]:
    return (0 if ip in IP_NAMES else 1, ip)


def describe(certs_dir: str | Path) -> dict[str, Any]:
    """What `admission certs show` prints: each certificate's names, validity and whether it is due."""
    folder = Path(certs_dir)
    bundle, _, serving = _existing(folder)
    now = _now()

    def info(c: x509.Certificate) -> dict[str, Any]:
        names = c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return {"subject": str(names[0].value) if names else "", "notBefore": c.not_valid_before_utc.isoformat(),
                "notAfter": c.not_valid_after_utc.isoformat(), "daysLeft": (c.not_valid_after_utc - now).days,
                "renewalDue": _expiring(c), "sha256": c.fingerprint(hashes.SHA256()).hex()}

    dns, ips = sans_of(serving)
    return {
        "certsDir": str(folder),
        "serving": {**info(serving), "file": str(folder / TLS_CERT), "dnsNames": sorted(dns), "ipAddresses": sorted(ips),
                    "signedByCurrentCA": _signed_by(serving, bundle[0])},
        "caBundle": {"file": str(folder / CA_CERT), "certificates": [info(c) for c in bundle]},
        "renewBeforeDays": RENEW_BEFORE.days, "overlapDays": OVERLAP.days,
    }


def check_user_certs(cert: str | Path, key: str | Path) -> CertPaths:
    """User-supplied certificate and key: check they are readable; never write them."""
    cert_path, key_path = Path(cert), Path(key)
    for p in (cert_path, key_path):
        if not p.is_file():
            raise CertError(f"{p}: no such file")
    _load_cert(cert_path)
    try:
        serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertError(f"{key_path}: not a readable unencrypted PEM private key ({exc})") from None
    return CertPaths(cert_path, key_path, None, False)


def ca_bundle_b64(ca_path: str | Path) -> str:
    """The CA bundle as the webhook configuration's caBundle field wants it (base64 of the PEM)."""
    return base64.b64encode(Path(ca_path).read_bytes()).decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m admission.certs", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where to write them (default: $ADMISSION_HOME/certs; a relative "
                                                     "folder is under $ADMISSION_HOME too)")
    parser.add_argument("--service", default="admission")
    parser.add_argument("--namespace", default="admission")
    parser.add_argument("--ca-bundle", action="store_true", help="print the base64 caBundle for the webhook config")
    args = parser.parse_args(argv)
    try:
        paths = ensure(certs_dir(args.dir), args.service, args.namespace)
    except CertError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.ca_bundle:
        assert paths.ca is not None
        print(ca_bundle_b64(paths.ca))
        return 0
    state = "created" if paths.created else "reused"
    print(f"{state}: certificate {paths.cert}, key {paths.key}, CA bundle {paths.ca}")
    print(f"names: {', '.join(service_names(args.service, args.namespace) + list(IP_NAMES))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
