"""TLS for `admission serve`: a certificate and key that are reloaded when their files change, without a
restart and without failing a request.

uvicorn builds each worker's `ssl.SSLContext` through `ssl_context_factory` (its documented hook, uvicorn
0.47+): `context_factory` takes uvicorn's own context and remembers it with its files. The app's lifespan
then polls the files (`watch`); when they change, the new pair is first loaded into a scratch context (a
certificate without its key, a rotation caught half-way, is skipped and retried), then loaded into the same
context object with `SSLContext.load_cert_chain`, on the event loop's thread, between handshakes. New
connections get the new certificate; connections already open keep theirs until they close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("admission.tls")

POLL_SECONDS = 1.0


class Reloadable:
    """An SSLContext and the certificate and key files it was loaded from."""

    def __init__(self, context: ssl.SSLContext, cert: str | Path, key: str | Path) -> None:
        self.context = context
        self.cert = Path(cert)
        self.key = Path(key)
        self.stamp = self._stamp()
        self.reloads = 0

    def _stamp(self) -> tuple[tuple[int, int, int], ...]:
        out = []
        for p in (self.cert, self.key):
            try:
                st = p.stat()
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                out.append((0, 0, 0))
        return tuple(out)

    def check(self) -> bool:
        """Reload when the files changed and hold a matching pair. Returns whether it reloaded."""
        stamp = self._stamp()
        if stamp == self.stamp:
            return False
        try:
            cert, key = self.cert.read_bytes(), self.key.read_bytes()
        except OSError as exc:
            log.warning("certificate files changed but cannot be read (%s); keeping the current ones", exc)
            return False
        with tempfile.TemporaryDirectory(prefix="admission-tls-") as folder:
            cert_path, key_path = Path(folder) / "tls.pem", Path(folder) / "tls-key.pem"
            for path, data in ((cert_path, cert), (key_path, key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            try:
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert_path, key_path)
            except (ssl.SSLError, ValueError, OSError) as exc:
                # mid-rotation (a new key, the old certificate) or broken: keep serving; look again next time
                log.info("certificate files changed but do not form a usable pair yet (%s); keeping the "
                         "current ones", exc)
                return False
            self.context.load_cert_chain(cert_path, key_path)  # the scratch load passed: this one does too
        self.stamp = stamp
        self.reloads += 1
        log.info("serving certificate reloaded", extra={"fields": {"cert": str(self.cert), "reloads": self.reloads}})
        return True

    async def watch(self, stop: asyncio.Event, every: float = POLL_SECONDS) -> None:
        """Check the files every `every` seconds until stop is set (on the event loop: see the module doc)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if not stop.is_set():
                try:
                    self.check()
                except Exception:  # reloading is best effort: the current certificate keeps serving
                    log.exception("reloading the serving certificate failed; keeping the current one")


_current: Reloadable | None = None


def current() -> Reloadable | None:
    """This worker's reloadable context, when uvicorn built it through context_factory."""
    return _current


def context_factory(config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's `ssl_context_factory`: its default context (uvicorn's TLS settings, ALPN), made reloadable."""
    global _current
    context = default()
    _current = Reloadable(context, config.ssl_certfile, config.ssl_keyfile)
    return context
