"""The Rego engine behind one small interface: compile modules + data + one query, then evaluate inputs.

This is the only module that imports regopy. A Program is compiled once (a regopy bundle) and evaluated
from any thread: each thread keeps its own interpreter, all sharing the one compiled bundle.

The input is built value by value with the engine's input builder (`to_input`), which costs about half of
parsing the same input as JSON text (`set_input_term`, ~5-15 µs per JSON value). The builder keeps each
string as the body of a JSON string literal, so strings are passed escaped (quotes, backslashes, control
characters); other characters are passed as they are, which keeps `count`, `regex.match` and friends
counting characters, where JSON text with `\\u` escapes made them count the escapes.
"""

from __future__ import annotations

import ctypes
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
            # the engine prints evaluation errors on the process's standard output, where `lint --format json`
            # writes its report; the error still fails the query, and is reported as the rule's error
            rs.rego_set_log_level(it._impl, rs.LogLevel.NONE)
            self._local.interpreter = it
        return it

    def evaluate(self, value: Any) -> Any:
        """The value the query binds for input `value` (JSON-like: dicts, lists, str, int, float, bool,
        None), or None when it is undefined. Raises BackendError."""
        it = self._interpreter()
        handle = to_input(value)
        try:
            code = _lib.regoSetInput(it._impl, handle)
        finally:
            _lib.regoFreeInput(handle)
        if code:
            raise BackendError(f"input rejected: {_clean(rs.rego_get_error(it._impl))}")
        if self._entrypoint:
            out = rs.rego_bundle_query_entrypoint(it._impl, self._bundle, self._entrypoint)
        else:
            out = rs.rego_bundle_query(it._impl, self._bundle)
        if not out:
            raise BackendError(_clean(rs.rego_get_error(it._impl)) or FAILED)
        try:
            if not rs.rego_output_ok(out):
                raise BackendError(_clean(rs.rego_get_error(it._impl)) or FAILED)
            text = rs.rego_output_string(out)
        finally:
            rs.rego_free_output(out)
        return parse_output(text)


_lib = rs.rego
_push_str = _lib.regoInputString
_push_int = _lib.regoInputInt
_push_float = _lib.regoInputFloat
_push_bool = _lib.regoInputBoolean
_push_null = _lib.regoInputNull
_push_item = _lib.regoInputObjectItem
_push_object = _lib.regoInputObject
_push_array = _lib.regoInputArray
_INT64 = (-(2**63), 2**63 - 1)


def _literal_body(text: str) -> bytes:
    """text as the body of a JSON string literal, the form the builder stores strings in."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text.encode()
    out = []
    for ch in text:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:  # control and other non-printable characters as JSON escapes (\n, \u007f, ...)
            out.append(json.dumps(ch)[1:-1])
    return "".join(out).encode()


def to_input(value: Any) -> ctypes.c_void_p:
    """A new engine input holding value (free it with regoFreeInput). Raises BackendError for a value JSON
    cannot hold. Integers beyond 64 bits are passed as floats."""
    handle = _lib.regoNewInput()

    def push(v: Any) -> int:  # the engine's status codes, or-ed: 0 when every step succeeded
        t = type(v)
        if t is str:
            return int(_push_str(handle, _literal_body(v)))
        if t is dict:
            code = 0
            for k, x in v.items():
                if type(k) is not str:
                    raise BackendError(f"input object key {k!r} is not a string")
                code |= _push_str(handle, _literal_body(k)) | push(x) | _push_item(handle)
            return code | int(_push_object(handle, len(v)))
        if t is list or t is tuple:
            code = 0
            for x in v:
                code |= push(x)
            return code | int(_push_array(handle, len(v)))
        if t is bool:
            return int(_push_bool(handle, v))
        if t is int:
            if _INT64[0] <= v <= _INT64[1]:
                return int(_push_int(handle, v))
            return int(_push_float(handle, float(v)))
        if t is float:
            return int(_push_float(handle, v))
        if v is None:
            return int(_push_null(handle))
        if isinstance(v, str | int | float | dict | list):  # subclasses (an IntEnum, an OrderedDict)
            return push(json.loads(json.dumps(v)))
        raise BackendError(f"input value of type {t.__name__} is not JSON")

    try:
        code = push(value)
    except BaseException:
        _lib.regoFreeInput(handle)
        raise
    if code:
        _lib.regoFreeInput(handle)
        raise BackendError("the engine refused to build the input")
    return handle


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
