"""The server's current policy set, reloaded when its files change (or on SIGHUP) while keeping the last good one.

A broken file is logged with its file and line and changes nothing: requests keep being answered by the set
that loaded last, and /readyz stays ready. So does a reload that finds no policy at all (a folder emptied or
a ConfigMap mount swapped mid-way), unless the server was started with --allow-empty.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from admission import metrics
from admission.engine import Engine
from admission.engines import PolicyError, PolicyInfo
from admission.manifests import ManifestError
from admission.policyset import load

log = logging.getLogger("admission.reload")

Loader = Callable[[list[Path]], Engine]


class Policies:
    """Holds the Engine in use. `engine` is swapped whole, so a request sees one consistent set."""

    def __init__(self, paths: Iterable[str | Path], loader: Loader | None = None, engine: Engine | None = None,
                 *, allow_empty: bool = False) -> None:
        self.paths = [Path(p) for p in paths]
        self.loader: Loader = loader or functools.partial(load, allow_empty=allow_empty)
        self.engine: Engine | None = engine
        self.error: str = ""
        self.loaded_at: float = time.time() if engine is not None else 0.0
        self.generation = 1 if engine is not None else 0
        if engine is not None:
            metrics.record_policies(engine.policies())
        # called with each newly loaded set's PolicyInfo (serve --register: admission.register.Registrar)
        self.on_load: list[Callable[[list[PolicyInfo]], object]] = []

    @property
    def ready(self) -> bool:
        return self.engine is not None

    def load(self) -> bool:
        """Load the policy files; on failure log why (file:line) and keep the set in use."""
        try:
            engine = self.loader(self.paths)
        except (PolicyError, ManifestError) as exc:
            return self._failed(str(exc))
        except Exception as exc:  # a loader bug must not stop the server: keep serving the last good set
            log.exception("policy load crashed")
            return self._failed(f"internal error loading policies: {type(exc).__name__}: {exc}")
        self.engine = engine
        self.error = ""
        self.loaded_at = time.time()
        self.generation += 1
        metrics.RELOADS.labels("ok").inc()
        metrics.record_policies(engine.policies())
        log.info("policies loaded", extra={"fields": {
            "policies": len(engine.policies()), "generation": self.generation,
            "paths": [str(p) for p in self.paths],
        }})
        for hook in self.on_load:
            try:
                hook(engine.policies())
            except Exception:  # a hook must not undo a good load
                log.exception("after-load hook failed")
        return True

    def _failed(self, message: str) -> bool:
        self.error = message
        metrics.RELOADS.labels("error").inc()
        kept = "keeping the last good policy set" if self.engine is not None else "no policy set loaded yet"
        log.error("policy load failed: %s (%s)", message, kept, extra={"fields": {"error": message}})
        return False

    async def watch(self, stop: asyncio.Event, *, debounce_ms: int = 300) -> None:
        """Reload whenever a file under the policy paths changes, until stop is set."""
        import watchfiles

        roots, files = _watch_targets(self.paths)
        if not roots:
            return

        folders = [r.resolve() for r in self.paths if r.is_dir()]

        def relevant(_change: watchfiles.Change, path: str) -> bool:
            p = Path(path).resolve()
            # a folder: any change inside it (ConfigMap mounts swap a `..data` symlink, which shows here too)
            return p in files or any(p == r or r in p.parents for r in folders)

        try:
            async for _changes in watchfiles.awatch(
                *roots, watch_filter=relevant, stop_event=stop, debounce=debounce_ms, step=50,
                recursive=True, ignore_permission_denied=True,
            ):
                await asyncio.to_thread(self.load)
        except Exception:  # watching is a convenience: SIGHUP still reloads
            log.exception("watching policy files failed; reload with SIGHUP")


def _watch_targets(paths: list[Path]) -> tuple[list[Path], set[Path]]:
    """Folders to watch: each policy folder, and the parent of each policy file (editors replace files)."""
    roots: list[Path] = []
    files: set[Path] = set()
    for p in paths:
        if p.is_dir():
            roots.append(p.resolve())
        elif p.exists():
            files.add(p.resolve())
            roots.append(p.resolve().parent)
    unique: list[Path] = []
    for r in roots:
        if r not in unique:
            unique.append(r)
    return unique, files
