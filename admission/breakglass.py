"""Break-glass: one switch that turns enforcement into audit for every policy at once, for an emergency (a
policy blocking a rollback, a dependency down that makes rules fail closed).

The switch is a ConfigMap named NAME in the server's namespace (`admission serve --namespace`), which the
server watches (or reads from `--state` manifests):

    apiVersion: v1
    kind: ConfigMap
    metadata: {name: admission-break-glass, namespace: admission}
    data:
      enabled: "true"
      owner: oncall-alice                 # who pulled it (required)
      reason: INC-1234 registry outage    # why (required)
      expires: "2026-12-06T06:00:00Z"     # until when (required; a date alone means through that day, UTC)

While it is on, a request the policies deny is allowed: each denial comes back as a warning
(`[break-glass] would deny: ...`), is logged at warning level with the owner, reason and expiry, and is counted
(admission_break_glass_overrides_total; admission_break_glass_active is 1). A switch without an owner, reason
or expiry, or past its expiry, is ignored (enforcement goes on) and logged; so is one whose `enabled` is not
"true". Turning it off is deleting the ConfigMap or setting `enabled: "false"`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from admission.types import Object

NAME = "admission-break-glass"
log = logging.getLogger("admission.breakglass")


class BreakGlassError(ValueError):
    """The switch is set but cannot be honoured (an owner, reason or expiry missing or malformed)."""


@dataclass(frozen=True)
class BreakGlass:
    owner: str
    reason: str
    expires: dt.datetime
    source: str  # namespace/name of the ConfigMap

    def expired(self, now: dt.datetime) -> bool:
        return now >= self.expires

    def describe(self) -> str:
        return f"break-glass by {self.owner} until {self.expires.isoformat()}: {self.reason}"

    def fields(self) -> dict[str, str]:
        return {"breakGlassOwner": self.owner, "breakGlassReason": self.reason,
                "breakGlassExpires": self.expires.isoformat(), "breakGlassSource": self.source}


def parse_expiry(value: Any) -> dt.datetime:
    """An RFC 3339 time, or a date (valid through that day, UTC)."""
    if not isinstance(value, str) or not value.strip():
        raise BreakGlassError("data.expires is required: say until when enforcement is off")
    text = value.strip()
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BreakGlassError(f"data.expires {value!r} is not an RFC 3339 date or time") from None
    if len(text) == 10:
        when += dt.timedelta(days=1)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def parse(obj: Object) -> BreakGlass | None:
    """The switch a ConfigMap sets: None when it is off, BreakGlassError when it is on but incomplete."""
    meta = obj.get("metadata") or {}
    source = f"{meta.get('namespace') or ''}/{meta.get('name') or ''}"
    data = obj.get("data") or {}
    if not isinstance(data, dict):
        raise BreakGlassError(f"{source}: data must be a mapping")
    enabled = str(data.get("enabled") or "").strip().lower()
    if enabled in ("", "false"):
        return None
    if enabled != "true":
        raise BreakGlassError(f"{source}: data.enabled must be \"true\" or \"false\", not {data.get('enabled')!r}")
    for key, what in (("owner", "who turned enforcement off"), ("reason", "why")):
        if not str(data.get(key) or "").strip():
            raise BreakGlassError(f"{source}: data.{key} is required ({what})")
    try:
        expires = parse_expiry(data.get("expires"))
    except BreakGlassError as exc:
        raise BreakGlassError(f"{source}: {exc}") from None
    return BreakGlass(str(data["owner"]).strip(), str(data["reason"]).strip(), expires, source)


class Switch:
    """The break-glass state as the server sees it: `current()` reads the ConfigMap (through `read`), and
    logs each change of state once (on, off, expired, invalid)."""

    def __init__(self, read: Callable[[], Object | None], now: Callable[[], dt.datetime] | None = None,
                 on_change: Callable[[bool], None] | None = None) -> None:
        self.read = read
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.on_change = on_change
        self._lock = threading.Lock()
        self._seen: tuple[str, str] = ("off", "")  # (state, detail) last logged

    def current(self) -> BreakGlass | None:
        """The switch when it is on and in force, else None."""
        try:
            obj = self.read()
        except Exception as exc:  # the watch not synced yet, or no cluster: the switch cannot be on
            obj = None
            state: tuple[str, str] = ("unknown", str(exc))
        else:
            state = ("off", "")
        glass = None
        if obj is not None:
            try:
                glass = parse(obj)
            except BreakGlassError as exc:
                state = ("invalid", str(exc))
            else:
                if glass is not None and glass.expired(self.now()):
                    state = ("expired", glass.describe())
                    glass = None
                elif glass is not None:
                    state = ("on", glass.describe())
        self._changed(state, glass)
        return glass

    def _changed(self, state: tuple[str, str], glass: BreakGlass | None) -> None:
        with self._lock:
            if state == self._seen:
                return
            before, self._seen = self._seen, state
        kind, detail = state
        if kind == "on" and glass is not None:
            log.warning("BREAK-GLASS ON: every denial is answered as a warning until it expires or is turned off",
                        extra={"fields": glass.fields()})
        elif kind == "expired":
            log.warning("break-glass switch has expired and is ignored: policies are enforced",
                        extra={"fields": {"detail": detail}})
        elif kind == "invalid":
            log.error("break-glass switch is ignored: %s; policies are enforced", detail)
        elif before[0] == "on":
            log.warning("break-glass off: policies are enforced again")
        if self.on_change is not None and (kind == "on") != (before[0] == "on"):
            self.on_change(kind == "on")
