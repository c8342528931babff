"""The Rego engine behind one small interface: compile modules + data + one query, then evaluate inputs.

This is the only module that imports regopy. A Program is compiled once (a regopy bundle) and evaluated
from any thread: each thread keeps its own interpreter, all sharing the one compiled bundle.

Only regopy's public API is used (Interpreter, Bundle, Input, Output, LogLevel). The input is handed over
as a regopy.Input (`to_input` prepares the tree), which costs about half of parsing the same input as JSON
text (`set_input_term`). The engine stores a given string as the body of a JSON string literal, so strings
are passed escaped (quotes, backslashes, control characters); other characters are passed as they are,
which keeps `count`, `regex.match` and friends counting characters, where JSON text with `\\u` escapes
made them count the escapes.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Callable
from typing import Any

# google-re2 must be loaded before regopy: in the other order the process aborts (`free(): invalid pointer`)
# at the first RE2 compile, as the compiled Rego evaluator's `regex.match` does
import re2  # noqa: F401
import regopy

RESULT_VAR = "result__"
# what a failed evaluation says: the engine keeps no message for it (it would print one on standard output)
FAILED = "evaluation failed in the Rego engine (it gives no detail: e.g. a rule or object key given two values)"


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
    """Modules and data compiled for one query; `evaluate(value)` returns the query's value."""

    def __init__(self, modules: dict[str, str], data: dict[str, Any], query: str, *, capture_errors: bool = True) -> None:
        """Compile. The engine prints compile errors on the process's standard output; with capture_errors
        (the default) fd 1 is redirected while compiling to read them, which would also swallow what other
        threads print meanwhile, so callers that checked the modules already (isolate.check) pass False."""
        self.query = query
        # a plain `data.a.b` query runs as the bundle entrypoint `a/b`: about half the cost of a query
        path = re.fullmatch(r"data((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", query)
        self._entrypoint = path.group(1)[1:].replace(".", "/") if path else ""
        builder = regopy.Interpreter()
        if not capture_errors:  # nobody reads what it would print
            builder.log_level = regopy.LogLevel.NONE
        self._builder = builder  # the bundle may refer to state owned by the interpreter that built it

        def build() -> regopy.Bundle:
            for name, source in modules.items():
                builder.add_module(name, source)
            if data:
                builder.add_data_json(json.dumps(data))
            if self._entrypoint:
                return builder.build(None, [self._entrypoint])
            return builder.build(f"{RESULT_VAR} = {query}")

        printed = ""
        try:
            if capture_errors:
                bundle, printed = _capture_stdout(build)
            else:
                bundle = build()
        except regopy.RegoError as exc:  # parse errors, and a build that produced no bundle
            raise BackendError(_clean(_last_printed if capture_errors else "") or _clean(str(exc)) or "the module does not compile") from None
        if not bundle.ok():
            raise BackendError(_clean(printed) or "the module does not compile")
        self._bundle = bundle
        self._local = threading.local()

    def _interpreter(self) -> regopy.Interpreter:
        it = getattr(self._local, "interpreter", None)
        if it is None:
            it = regopy.Interpreter()
            # the engine prints evaluation errors on the process's standard output, where `lint --format json`
            # writes its report; the error still fails the query, and is reported as the rule's error
            it.log_level = regopy.LogLevel.NONE
            self._local.interpreter = it
        return it

    def evaluate(self, value: Any) -> Any:
        """The value the query binds for input `value` (JSON-like: dicts, lists, str, int, float, bool,
        None), or None when it is undefined. Raises BackendError."""
        it = self._interpreter()
        try:
            it.set_input(regopy.Input(to_input(value)))
        except regopy.RegoError as exc:
            raise BackendError(f"input rejected: {_clean(str(exc))}") from None
        try:
            if self._entrypoint:
                out = it.query_bundle_entrypoint(self._bundle, self._entrypoint)
            else:
                out = it.query_bundle(self._bundle)
        except regopy.RegoError as exc:
            raise BackendError(_clean(str(exc)) or FAILED) from None
        except ValueError as exc:  # regopy reads the output as JSON text, and the engine wrote it wrong
            raise BackendError(f"unreadable engine output: {exc}") from None
        if not out.ok():
            raise BackendError(_clean(str(out)) or FAILED)
        return _value(out)


_INT64 = (-(2**63), 2**63 - 1)


def _literal_body(text: str) -> str:
    """text as the body of a JSON string literal, the form the engine stores strings in."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text
    out = []
    for ch in text:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:  # control and other non-printable characters as JSON escapes (\n, \u007f, ...)
            out.append(json.dumps(ch)[1:-1])
    return "".join(out)


def to_input(value: Any) -> Any:
    """value as regopy.Input takes it: the same tree with each string (keys too) as the body of a JSON
    string literal, since the engine stores what it is given as that body. Raises BackendError for a value
    JSON cannot hold. Integers beyond 64 bits become floats."""
    t = type(value)
    if t is str:
        return _literal_body(value)
    if t is dict:
        out = {}
        for k, x in value.items():
            if type(k) is not str:
                raise BackendError(f"input object key {k!r} is not a string")
            out[_literal_body(k)] = to_input(x)
        return out
    if t is list or t is tuple:
        return [to_input(x) for x in value]
    if t is bool or t is float or value is None:
        return value
    if t is int:
        return value if _INT64[0] <= value <= _INT64[1] else float(value)
    if isinstance(value, str | int | float | dict | list):  # subclasses (an IntEnum, an OrderedDict)
        return to_input(json.loads(json.dumps(value)))
    raise BackendError(f"input value of type {t.__name__} is not JSON")


def _value(out: regopy.Output) -> Any:
    """The query's value in an output: the entrypoint's value, or the binding of RESULT_VAR."""
    if len(out) == 0:
        return None
    if len(out) > 1:
        raise BackendError("the query has more than one result")
    first = out[0]
    if RESULT_VAR in first.bindings:
        return first.bindings[RESULT_VAR]
    if first.bindings:  # a query's output without the result: undefined
        return None
    return first.expressions[0] if first.expressions else None


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


def version() -> str:
    return str(regopy.__version__)
