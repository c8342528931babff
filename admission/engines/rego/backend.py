"""The Rego engine behind one small interface: compile modules + data + one query, then evaluate inputs.

This is the only module that imports regopy. A Program is compiled once (a regopy bundle) and evaluated
from any thread: each thread keeps its own interpreter, all sharing the one compiled bundle.
The input is passed as JSON text (`set_input_term`): regopy's `set_input(dict)` mishandles backslashes.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import regopy
from regopy import rego_shared as rs

RESULT_VAR = "result__"


class BackendError(Exception):
    """The engine refused a module, or failed evaluating it; the message is the engine's, trimmed."""


def _clean(message: str) -> str:
    """regopy's error text, without its AST dumps: `file:line:col: message` for compile errors."""
    m = re.search(r"errormsg\s+\d+:(.*?)\)\n", message, re.S)
    if m:
        return m.group(1).strip()
    found: list[str] = []
    lines = message.splitlines()
    for i, ln in enumerate(lines):
        loc = re.match(r"-- (\S+:\d+:\d+)", ln)
        if loc and i > 0:
            what = lines[i - 1].strip()
            found.append(f"{loc.group(1)}: {what}")
    if found:
        return "; ".join(dict.fromkeys(found))
    kept = [ln.strip() for ln in lines if ln.strip() and not set(ln.strip()) <= set("~-")]
    return " ".join(kept[:6]).strip()


class Program:
    """Modules and data compiled for one query; `evaluate(input_json)` returns the query's value."""

    def __init__(self, modules: dict[str, str], data: dict[str, Any], query: str, *, capture_errors: bool = True) -> None:
        """Compile. The engine prints compile errors on the process's standard output; with capture_errors
        (the default) fd 1 is redirected while compiling to read them, which would also swallow what other
        threads print meanwhile, so callers that checked the modules already (isolate.check) pass False."""
        self.query = query
        # a plain `data.a.b` query runs as the bundle entrypoint `a/b`: about half the cost of a query
        path = re.fullmatch(r"data((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", query)
        self._entrypoint = path.group(1)[1:].replace(".", "/") if path else ""
        builder = regopy.Interpreter()
        self._builder = builder  # the bundle may refer to state owned by the interpreter that built it
        def build() -> Any:
            for name, source in modules.items():
                builder.add_module(name, source)
            if data:
                builder.add_data_json(json.dumps(data))
            if self._entrypoint:
                rs.rego_add_entrypoint(builder._impl, self._entrypoint)
            else:
                rs.rego_set_query(builder._impl, f"{RESULT_VAR} = {query}")
            return rs.rego_build(builder._impl)

        try:
            impl, printed = _capture_stdout(build) if capture_errors else (build(), "")
        except Exception as exc:  # regopy raises RegoError (and plain exceptions) for parse errors
            raise BackendError(_clean(_last_printed) or _clean(str(exc))) from None
        if not impl or not rs.rego_bundle_ok(impl):
            message = rs.rego_get_error(builder._impl) or printed
            if impl:
                rs.rego_free_bundle(impl)
            raise BackendError(_clean(message) or "the module does not compile")
        self._bundle = impl
        self._local = threading.local()

    def __del__(self) -> None:
        impl = getattr(self, "_bundle", None)
        if impl:
            rs.rego_free_bundle(impl)
            self._bundle = None

    def _interpreter(self) -> regopy.Interpreter:
        it = getattr(self._local, "interpreter", None)
        if it is None:
            it = regopy.Interpreter()
            self._local.interpreter = it
        return it

    def evaluate(self, input_json: str) -> Any:
        """The value the query binds, or None when it is undefined. Raises BackendError."""
        it = self._interpreter()
        try:
            rs.rego_set_input_term(it._impl, input_json)
        except regopy.RegoError as exc:
            raise BackendError(f"input rejected: {_clean(str(exc))}") from None
        if self._entrypoint:
            out = rs.rego_bundle_query_entrypoint(it._impl, self._bundle, self._entrypoint)
        else:
            out = rs.rego_bundle_query(it._impl, self._bundle)
        if not out:
            raise BackendError(_clean(rs.rego_get_error(it._impl)) or "query failed")
        try:
            if not rs.rego_output_ok(out):
                raise BackendError(_clean(rs.rego_get_error(it._impl)) or "query failed")
            text = rs.rego_output_string(out)
        finally:
            rs.rego_free_output(out)
        return parse_output(text)


_STDOUT_LOCK = threading.Lock()
_last_printed = ""


def _capture_stdout(fn: Callable[[], Any]) -> tuple[Any, str]:
    """Run fn with file descriptor 1 captured: the native library prints compile errors there."""
    with _STDOUT_LOCK, tempfile.TemporaryFile() as tmp:
        try:
            import sys

            sys.stdout.flush()
        except Exception:  # pragma: no cover - a closed stdout
            pass
        saved = os.dup(1)
        try:
            os.dup2(tmp.fileno(), 1)
            result = fn()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            global _last_printed
            _last_printed = tmp.read().decode("utf-8", "replace")
        return result, _last_printed


def parse_output(text: str) -> Any:
    text = text.strip()
    if text == "undefined" or not text:
        return None
    if text.startswith("(error") or text.startswith("<error"):
        raise BackendError(_clean(text) or "evaluation error")
    try:
        doc = json.loads(text)
    except ValueError:
        raise BackendError(f"unreadable engine output: {text[:200]}") from None
    results = doc if isinstance(doc, list) else [doc]
    if not results:
        return None
    if len(results) > 1:
        raise BackendError("the query has more than one result")
    first = results[0]
    if "bindings" not in first:  # an entrypoint's output: the value alone
        expressions = first.get("expressions") or []
        return expressions[0] if expressions else None
    return (first.get("bindings") or {}).get(RESULT_VAR)


def version() -> str:
    return str(regopy.__version__)
