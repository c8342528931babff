"""Check policies in a separate process before this one uses them.

A defect of the native Rego engine can crash the whole process (a segmentation fault, not an exception).
So each policy is compiled and evaluated on a sample input in a child process first: a crash there names
the policy that caused it, and the server never loads it. Results are cached per process by content.

Protocol: the parent writes a JSON list of units to the child's stdin; the child prints one line per unit,
`START <i>` before and `OK <i>` or `ERR <i> <json message>` after checking it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Unit:
    """One policy: the modules it needs, its data, the query the server will run, and a sample input."""

    name: str
    modules: dict[str, str]
    query: str
    sample_input: str  # JSON
    data: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        text = json.dumps([self.modules, self.query, self.sample_input, self.data], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


_cache: dict[str, str | None] = {}
TIMEOUT_SECONDS = 120.0


def check(units: list[Unit]) -> dict[str, str | None]:
    """unit name -> None when the unit compiled and evaluated, else why not (crashes included)."""
    out: dict[str, str | None] = {}
    todo = []
    for u in units:
        k = u.key()
        if k in _cache:
            out[u.name] = _cache[k]
        else:
            todo.append(u)
    while todo:
        done = _run_child(todo)
        for u, result in zip(todo, done, strict=False):
            _cache[u.key()] = result
            out[u.name] = result
        todo = todo[len(done) :]
    return out


def _run_child(units: list[Unit]) -> list[str | None]:
    """Results for a prefix of units: all of them, or up to and including the one that crashed the child."""
    payload = json.dumps([u.__dict__ for u in units])
    env = dict(os.environ)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "admission.engines.rego.isolate"],
            input=payload,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            env=env,
            cwd=_package_root(),
        )
        stdout, code = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or ""
        stdout = raw.decode() if isinstance(raw, bytes) else raw
        code = -signal.SIGKILL
    results: dict[int, str | None] = {}
    started: int | None = None
    for line in stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            continue
        i = int(parts[1])
        if parts[0] == "START":
            started = i
        elif parts[0] == "OK":
            results[i] = None
        elif parts[0] == "ERR":
            results[i] = json.loads(parts[2]) if len(parts) > 2 else "error"
    if len(results) == len(units):
        return [results[i] for i in range(len(units))]
    culprit = started if started is not None and started not in results else len(results)
    why = _describe(code)
    out: list[str | None] = [results.get(i) for i in range(culprit)]
    out.append(f"checking this policy in a separate process {why}: the Rego engine cannot run it safely")
    return out


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"crashed the engine ({signal.Signals(-code).name})"
        except ValueError:
            return f"crashed the engine (signal {-code})"
    return f"failed (exit status {code})"


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _child() -> None:
    from admission.engines.rego.backend import BackendError, Program

    units = json.loads(sys.stdin.read())
    out = sys.stdout
    for i, u in enumerate(units):
        out.write(f"START {i}\n")
        out.flush()
        try:
            program = Program(u["modules"], u.get("data") or {}, u["query"])
            program.evaluate(json.loads(u["sample_input"]))
            out.write(f"OK {i}\n")
        except BackendError as exc:
            out.write(f"ERR {i} {json.dumps(str(exc))}\n")
        except Exception as exc:  # anything else is a failed check, not a crashed child
            out.write(f"ERR {i} {json.dumps(f'{type(exc).__name__}: {exc}')}\n")
        out.flush()


if __name__ == "__main__":
    _child()
