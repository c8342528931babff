"""Kyverno's `{{ }}` variables: the variable data of a request, JMESPath queries over it, substitution.

JMESPath expressions are parsed by the `jmespath` library (`jmespath.compile(expr).parsed`, its public
tree) and evaluated by this module, compiled once into closures, with the semantics of Kyverno's
go-jmespath fork: looking up a key that an object does not have is an error ("Unknown key"), not null.
The error stops at `||`, pipes, function arguments, comparisons, projections and filters, so
`{{ request.object.metadata.labels.app || '' }}` is '' and `{{ request.object.spec.containers[].name }}`
never fails, while `{{ request.object.metadata.labels.app }}` on an object without that label fails
substitution as Kyverno's does. A key present with value null is null, not an error (so
`{{ request.oldObject.metadata.name }}` on CREATE is null). Ordering compares numbers only (anything else
is null). Functions are Kyverno's and the standard ones (functions.py, through the library's documented
custom-function class); map, sort_by, min_by and max_by, which take an expression reference, are here.

Substitution (`Variables.substitute`) follows pkg/engine/variables: `\\{{ }}` stays literal, a string that
is exactly one variable becomes the value itself, embedded variables are formatted (strings as they are,
anything else as JSON), `{{@}}` is the current path in the resource, DELETE requests read
`request.object` from `request.oldObject`. `$(...)` references to other values of the same document
(`$(./../limits/memory)`, with an optional operator: `$(<=./../limits/memory)`) are resolved first, as
Kyverno does. Where Kyverno reads text as a template again, this module does not: a policy string is read
once (see "templates" below), a substituted value is never scanned for `{{ }}` again, and a nested
variable (`{{ f(`{{ labels }}`) }}`) puts its value into the outer expression as data, never as
expression text. So object data (a label value `{{ request.object.metadata.name }}`, quotes, backticks)
cannot change what a policy evaluates. `{{- x }}` is the same as `{{ x }}`.

Context entries (see context.py) are loaded lazily, as Kyverno's deferred loading does: an entry is
resolved the first time a query names it (in the policy's text, not in data put into the query).
"""

from __future__ import annotations

import csv
import json
import re
import warnings
import weakref
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

import jmespath
from jmespath import exceptions as jp_exceptions
from jmespath.parser import ParsedResult

from admission.engines.yaml.functions import FUNCTIONS, go_json
from admission.engines.yaml.images import ImageError, images_of
from admission.regex import RegexError, check_regex
from admission.review import Request


class VariableError(Exception):
    """A variable that cannot be resolved, or a JMESPath expression that is wrong or fails."""


class VariableNotFound(VariableError):
    """The query looked up a key that is not there (Kyverno's "Unknown key ... in path")."""

    def __init__(self, message: str, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class _NotFound(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


# ---------------------------------------------------------------------------------------------- JMESPath

# An expression is parsed once by the library (`jmespath.compile(expr).parsed`, its documented AST of
# dicts) and turned once into nested Python closures that evaluate it with Kyverno's semantics. Nothing
# of the library's interpreter is used: functions are called through the documented custom-function
# class (functions.KyvernoFunctions, `call_function`), except the four that take an expression
# reference (map, sort_by, min_by, max_by), which are evaluated here.

_Fn = Callable[[Any], Any]
_LOOKUP_ERRORS = (_NotFound, jp_exceptions.JMESPathError)


def is_false(value: Any) -> bool:
    """JMESPath falsiness: '', [], {}, null and false (0 is true)."""
    return value == "" or value == [] or value == {} or value is None or value is False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _equals(x: Any, y: Any) -> bool:
    # 0 and 1 are not false and true in JMESPath, though Python's == says so
    if _is_number(x) and x in (0, 1) and isinstance(y, bool):
        return False
    if _is_number(y) and y in (0, 1) and isinstance(x, bool):
        return False
    return bool(x == y)


_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "lt": lambda a, b: a < b, "gt": lambda a, b: a > b, "lte": lambda a, b: a <= b, "gte": lambda a, b: a >= b,
}

_TYPE_NAMES = {bool: "boolean", list: "array", dict: "object", int: "number", float: "number", str: "string",
               type(None): "null"}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), "unknown")


class ExpressionRef:
    """The value of `&expr`: the expression as a function of one element (a missing key in it is null)."""

    __slots__ = ("fn",)

    def __init__(self, fn: _Fn) -> None:
        self.fn = fn


def _expref_args(name: str, args: list[Any], *, expref_first: bool) -> tuple[list[Any], _Fn]:
    if len(args) != 2:
        raise jp_exceptions.ArityError(2, len(args), name)
    ref, array = (args[0], args[1]) if expref_first else (args[1], args[0])
    if not isinstance(ref, ExpressionRef):
        raise jp_exceptions.JMESPathTypeError(name, ref, _type_name(ref), ["expref"])
    if not isinstance(array, list):
        raise jp_exceptions.JMESPathTypeError(name, array, _type_name(array), ["array"])
    return array, ref.fn


def _key_function(name: str, fn: _Fn, allowed: list[str]) -> _Fn:
    def key(element: Any) -> Any:
        result = fn(element)
        kind = _type_name(result)
        if kind not in allowed:
            raise jp_exceptions.JMESPathTypeError(name, result, kind, allowed)
        return result
    return key


def _fn_map(args: list[Any]) -> Any:
    array, fn = _expref_args("map", args, expref_first=True)
    return [fn(element) for element in array]


def _fn_sort_by(args: list[Any]) -> Any:
    array, fn = _expref_args("sort_by", args, expref_first=False)
    if not array:
        return array
    first = _type_name(fn(array[0]))
    if first not in ("number", "string"):
        raise jp_exceptions.JMESPathTypeError("sort_by", array[0], first, ["string", "number"])
    return sorted(array, key=_key_function("sort_by", fn, [first]))


def _fn_min_by(args: list[Any]) -> Any:
    array, fn = _expref_args("min_by", args, expref_first=False)
    return min(array, key=_key_function("min_by", fn, ["number", "string"])) if array else None


def _fn_max_by(args: list[Any]) -> Any:
    array, fn = _expref_args("max_by", args, expref_first=False)
    return max(array, key=_key_function("max_by", fn, ["number", "string"])) if array else None


# The functions whose arguments include an expression reference.
_EXPREF_FUNCTIONS: dict[str, Callable[[list[Any]], Any]] = {
    "map": _fn_map, "sort_by": _fn_sort_by, "min_by": _fn_min_by, "max_by": _fn_max_by,
}


def call_function(name: str, args: list[Any]) -> Any:
    """A JMESPath function call with evaluated arguments (JMESPathError subclasses for wrong ones)."""
    special = _EXPREF_FUNCTIONS.get(name)
    if special is not None:
        return special(args)
    for arg in args:
        if isinstance(arg, ExpressionRef):
            raise jp_exceptions.JMESPathTypeError(name, "&expression", "expref", ["any but expref"])
    return FUNCTIONS.call_function(name, args)


def _soft(fn: _Fn) -> _Fn:
    def soft(value: Any) -> Any:
        try:
            return fn(value)
        except _NotFound:
            return None
    return soft


# Compiled functions that never raise _NotFound (their missing keys are already None): _soft_compiled
# returns them as they are, without a try/except wrapper around every call.
_NEVER_MISSING: weakref.WeakSet[_Fn] = weakref.WeakSet()
_PATH_STEPS = ("field", "index", "current", "identity")


def _never_missing(fn: _Fn) -> _Fn:
    _NEVER_MISSING.add(fn)
    return fn


def _soft_compiled(node: Any) -> _Fn:
    """_soft(_compile(node)), with no wrapper where none is needed: a field, or a path of fields and
    indexes, reads a missing key as None directly (every later step then gives None, as the wrapper's
    early return does)."""
    kind = node["type"]
    if kind == "field":
        key = node["value"]

        def soft_field(value: Any) -> Any:
            return value.get(key) if isinstance(value, dict) else None
        return soft_field
    children = node.get("children") or []
    if kind in ("subexpression", "index_expression") and all(c["type"] in _PATH_STEPS for c in children):
        steps = [_soft_compiled(c) for c in children]

        def soft_path(value: Any) -> Any:
            for step in steps:
                value = step(value)
            return value
        return soft_path
    fn = _compile(node)
    return fn if fn in _NEVER_MISSING else _soft(fn)


def _compile(node: Any) -> _Fn:
    """One node of the parsed tree as a function of the current value. A missing key raises _NotFound
    (Kyverno's "Unknown key"); the node types that stop it (||, pipes, function arguments, comparisons,
    projections, filters, multi-selects) read it as null."""
    kind = node["type"]
    children = node.get("children") or []
    if kind == "field":
        key = node["value"]

        def field(value: Any) -> Any:
            if isinstance(value, dict):
                if key in value:
                    return value[key]
                raise _NotFound(key)
            return None
        return field
    if kind in ("subexpression", "index_expression"):
        steps = [_compile(c) for c in children]

        def chain(value: Any) -> Any:
            for step in steps:
                value = step(value)
            return value
        return _never_missing(chain) if all(st in _NEVER_MISSING for st in steps) else chain
    if kind in ("current", "identity"):
        return _never_missing(lambda value: value)
    if kind == "literal":
        literal = node["value"]
        return _never_missing(lambda value: literal)
    if kind == "index":
        index = node["value"]

        def at(value: Any) -> Any:
            if not isinstance(value, list):
                return None
            try:
                return value[index]
            except IndexError:
                return None
        return _never_missing(at)
    if kind == "slice":
        bounds = slice(*children)
        return _never_missing(lambda value: value[bounds] if isinstance(value, list) else None)
    if kind == "expref":
        ref = ExpressionRef(_soft_compiled(children[0]))
        return _never_missing(lambda value: ref)
    if kind == "comparator":
        op = node["value"]
        literal_side = [i for i, c in enumerate(children) if c["type"] == "literal" and type(c["value"]) is str]
        if op in ("eq", "ne") and literal_side:
            # `tag == 'latest'`: equality with a string is plain ==
            text = children[literal_side[0]]["value"]
            other = _soft_compiled(children[1 - literal_side[0]])
            if op == "eq":
                return _never_missing(lambda value: other(value) == text)
            return _never_missing(lambda value: not other(value) == text)
        left_fn, right_fn = _soft_compiled(children[0]), _soft_compiled(children[1])
        if op in ("eq", "ne"):
            negate = op == "ne"
            return _never_missing(lambda value: _equals(left_fn(value), right_fn(value)) != negate)
        order = _ORDERING[op]

        def compare(value: Any) -> Any:
            left, right = left_fn(value), right_fn(value)
            # ordering compares numbers only (go-jmespath); anything else is null
            if not (_is_number(left) and _is_number(right)):
                return None
            return order(left, right)
        return _never_missing(compare)
    if kind == "function_expression":
        name = node["value"]
        args_fns = [_soft_compiled(c) for c in children]
        if name == "length" and len(args_fns) == 1 and "_func_length" not in vars(type(FUNCTIONS)):
            arg_fn = args_fns[0]

            def length(value: Any) -> Any:
                arg = arg_fn(value)
                if type(arg) in (str, list, dict):  # what the signature check lets through
                    return len(arg)
                return call_function(name, [arg])  # its error
            return length
        special = _EXPREF_FUNCTIONS.get(name)
        if special is None and any(c["type"] == "expref" for c in children):
            return lambda value: call_function(name, [f(value) for f in args_fns])  # its type error
        call: Callable[[list[Any]], Any] = (
            special if special is not None else lambda args: FUNCTIONS.call_function(name, args))
        return lambda value: call([f(value) for f in args_fns])
    if kind in ("filter_projection", "flatten", "value_projection", "projection"):
        base_fn = _compile(children[0])
        strict_base = kind != "projection"
        soft_base = _soft_compiled(children[0])

        def base_of(value: Any) -> Any:
            if not strict_base:
                return soft_base(value)
            try:
                return base_fn(value)
            except _LOOKUP_ERRORS:
                return None
        if kind == "flatten":
            def flatten(value: Any) -> Any:
                base = base_of(value)
                if not isinstance(base, list):
                    return None
                merged: list[Any] = []
                for element in base:
                    if isinstance(element, list):
                        merged.extend(element)
                    else:
                        merged.append(element)
                return merged
            return _never_missing(flatten)
        right_fn = _soft_compiled(children[1])
        if kind == "filter_projection":
            condition_fn = _soft_compiled(children[2])

            def filtered(value: Any) -> Any:
                base = base_of(value)
                if not isinstance(base, list):
                    return None
                collected = []
                for element in base:
                    if not is_false(condition_fn(element)):
                        current = right_fn(element)
                        if current is not None:
                            collected.append(current)
                return collected
            return _never_missing(filtered)
        of_values = kind == "value_projection"

        def projected(value: Any) -> Any:
            base = base_of(value)
            if of_values:
                if not isinstance(base, dict):
                    return None
                elements: Any = base.values()
            elif isinstance(base, list):
                elements = base
            else:
                return None
            collected = []
            for element in elements:
                current = right_fn(element)
                if current is not None:
                    collected.append(current)
            return collected
        return _never_missing(projected)
    if kind == "key_val_pair":
        return _compile(children[0])
    if kind == "multi_select_dict":
        pairs = [(c["value"], _soft_compiled(c)) for c in children]
        return _never_missing(lambda value: None if value is None else {k: f(value) for k, f in pairs})
    if kind == "multi_select_list":
        items = [_soft_compiled(c) for c in children]
        return _never_missing(lambda value: None if value is None else [f(value) for f in items])
    if kind == "or_expression":
        first, second = _soft_compiled(children[0]), _soft_compiled(children[1])

        def either(value: Any) -> Any:
            matched = first(value)
            return second(value) if is_false(matched) else matched
        return _never_missing(either)
    if kind == "and_expression":
        first, then = _soft_compiled(children[0]), _compile(children[1])

        def both(value: Any) -> Any:
            matched = first(value)
            return matched if is_false(matched) else then(value)
        return _never_missing(both) if then in _NEVER_MISSING else both
    if kind == "not_expression":
        inner = _soft_compiled(children[0])

        def negated(value: Any) -> Any:
            original = inner(value)
            if _is_number(original) and original == 0:
                return False
            return is_false(original)
        return _never_missing(negated)
    if kind == "pipe":
        stages = [_soft_compiled(c) for c in children]

        def piped(value: Any) -> Any:
            for stage in stages:
                value = stage(value)
            return value
        return _never_missing(piped)
    raise VariableError(f"unsupported JMESPath expression node {kind!r}")


@lru_cache(maxsize=4096)
def compiled(expr: str) -> _Fn:
    """The expression as a function of the data (compile_expr's errors raise here too)."""
    parsed = compile_expr(expr).parsed
    try:
        return _compile(parsed)
    except RecursionError:
        raise VariableError(f"incorrect query {expr.strip()}: expression nested too deeply") from None


@lru_cache(maxsize=4096)
def compile_expr(expr: str) -> ParsedResult:
    """Parse a JMESPath expression once. Raises VariableError for a syntax error."""
    text = expr.strip()
    if not text:
        raise VariableError("invalid query (empty JMESPath expression)")
    try:
        with warnings.catch_warnings():
            # `foo` (a bare word in backticks) is a string literal for Kyverno too: no deprecation noise
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            return jmespath.compile(text)
    except jp_exceptions.JMESPathError as exc:
        raise VariableError(f"incorrect query {text}: {_one_line(exc)}") from None


def search(expr: str, data: Any, *, strict: bool = False) -> Any:
    """Evaluate a JMESPath expression on data with Kyverno's functions. A missing key gives None, or
    with strict=True raises VariableNotFound; every other failure raises VariableError."""
    fn = compiled(expr) if len(expr) <= 4096 else compiled.__wrapped__(expr)
    try:
        return fn(data)
    except _NotFound as exc:
        if strict:
            raise VariableNotFound(f'JMESPath query failed: Unknown key "{exc.key}" in path', exc.key) from None
        return None
    except jp_exceptions.JMESPathError as exc:
        raise VariableError(f"JMESPath query failed: {_one_line(exc)}") from None
    except (TypeError, ValueError, ArithmeticError, RecursionError) as exc:
        raise VariableError(f"JMESPath query {expr.strip()} failed: {exc}") from None


def check_expression(expr: str) -> None:
    """Compile an expression and check that every function it calls exists. Raises VariableError."""
    parsed = compile_expr(expr)
    for name in _function_names(parsed.parsed):
        if name not in FUNCTIONS.FUNCTION_TABLE:
            raise VariableError(f"unknown JMESPath function {name}() in {expr.strip()}")


# Kyverno's functions whose first argument is a regular expression (compiled with RE2: admission.regex).
_REGEX_FUNCTIONS = frozenset({"regex_match", "regex_replace_all", "regex_replace_all_literal"})


def literal_regex_error(document: Any) -> str | None:
    """The first regular expression written as a literal in a `{{ }}` expression of a policy document
    (`regex_match('^(a|b)$', ...)`) that RE2 cannot compile, as a message; None when all compile.
    A pattern that comes from a variable is checked when the rule runs (a rule error then)."""
    for text in _strings(document):
        if "{{" not in text:
            continue
        for _, _, expr, _ in _scan(text):  # the innermost variables: an outer one is not known before
            try:
                parsed = compile_expr(expr).parsed
            except VariableError:
                continue  # not an expression yet (it has a nested variable) or a syntax error for run time
            for pattern in _literal_regexes(parsed):
                try:
                    check_regex(pattern)
                except RegexError as exc:
                    return f"{{{{ {expr} }}}}: {exc}"
    return None


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _literal_regexes(node: Any) -> Iterable[str]:
    if not isinstance(node, dict):
        return
    children = node.get("children") or []
    if node.get("type") == "function_expression" and node.get("value") in _REGEX_FUNCTIONS and children:
        first = children[0]
        if first.get("type") == "literal" and isinstance(first.get("value"), str):
            yield first["value"]
    for child in children:
        yield from _literal_regexes(child)


def _function_names(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        if node.get("type") == "function_expression":
            yield node["value"]
        for child in node.get("children", []):
            yield from _function_names(child)


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


# ---------------------------------------------------------------------------------------------- substitution

# '{{...}}' at the start of a string or after any character but '\' (pkg/engine/variables/regex).
_VARIABLE = re.compile(r"(^|[^\\])(\{\{(?:\{[^{}]*\}|[^{}])*\}\})")
_SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
# '$(...)' at the start or after any character but '\'; and an escaped '\$(...)'.
_REFERENCE = re.compile(r"^\$\(.[^ ]*\)|[^\\]\$\(.[^ ]*\)")
_ESCAPED_REFERENCE = re.compile(r"\\\$\(.[^ )]*\)")
_ANCHOR = re.compile(r"^(?:\(|=\(|\^\(|\+\(|X\(|<\()(.+)\)$")


def find_variables(text: str) -> list[str]:
    """The `{{...}}` expressions (without braces) written in a string, nested ones included."""
    found: list[str] = []
    while True:
        matches = list(_VARIABLE.finditer(text))
        if not matches:
            return found
        for m in matches:
            found.append(_strip_braces(m.group(2))[0])
        text = _VARIABLE.sub(lambda m: m.group(1) + "x", text)


# (prefix, `{{...}}`, expression, shallow) of each variable of a string, as _VARIABLE finds them.
_Found = tuple[str, str, str, bool]


def _scan(text: str) -> list[_Found]:
    return [(m.group(1), m.group(2), *_strip_braces(m.group(2))) for m in _VARIABLE.finditer(text)]


@lru_cache(maxsize=4096)
def _scan_policy_text(text: str) -> tuple[_Found, ...]:
    """_scan of a string as written in a policy (the same few strings, request after request), or as a
    nested variable left it (a query with the Pod's labels in it: the same for every Pod of a workload)."""
    return tuple(_scan(text))


@lru_cache(maxsize=4096)
def _whole_variable(text: str) -> str | None:
    """The expression of a string that is one `{{ expr }}` and nothing else (no `$(...)` reference, not
    `{{@}}`), else None."""
    if "$(" in text or "{{" not in text:
        return None
    found = _scan_policy_text(text)
    if len(found) != 1:
        return None
    prefix, whole, expr, _ = found[0]
    if prefix or whole != text or expr == "@":
        return None
    return expr


@lru_cache(maxsize=4096)
def _mentions(name: str, query: str) -> bool:
    """Whether a query names a variable (so a deferred context entry of that name must load first)."""
    return re.search(r"(?:\A|\Z|\s|[^.0-9A-Za-z])" + re.escape(name) + r"\b", query) is not None


def _strip_braces(v: str) -> tuple[str, bool]:
    inner = v.replace("{{", "").replace("}}", "").strip()
    if inner.startswith("-"):
        return inner[1:].strip(), True
    return inner, False


def service_account(username: str) -> tuple[str, str]:
    """(name, namespace) from a username, exactly as Kyverno's AddServiceAccount derives them."""
    rest = username[len(_SERVICE_ACCOUNT_PREFIX):] if len(username) > len(_SERVICE_ACCOUNT_PREFIX) else ""
    groups = rest.split(":")
    if len(groups) >= 2:
        return groups[1], groups[0]
    return "", ""


def pointer_to_jmespath(parts: Iterable[str | int]) -> str:
    out = ""
    for part in parts:
        text = str(part)
        if text.isdigit():
            out += f"[{text}]"
            continue
        if out:
            out += "."
        out += text if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) else go_json(text)
    return out


# Returned by a deferred loader whose variable stays unset (Kyverno adds no `images` for a Service).
UNSET: Any = object()


class _Deferred:
    """A context entry that is loaded the first time a query mentions its name."""

    def __init__(self, name: str, load: Callable[[Variables], Any]) -> None:
        self.name = name
        self.load = load
        self.loaded = False
        self.value: Any = None
        self.error: VariableError | None = None


class Variables:
    """The variable data one rule evaluation sees (Kyverno's JSON context)."""

    def __init__(self, data: dict[str, Any] | None = None, *, operation: str = "") -> None:
        self._data: dict[str, Any] = data if data is not None else {}
        self._pending: list[_Deferred] = []
        self._loading: list[_Deferred] | None = None
        self.operation = operation

    @classmethod
    def for_request(cls, request: Request, extra: dict[str, Any] | None = None) -> Variables:
        wire = request.to_wire()
        username = str((request.user_info or {}).get("username") or "")
        sa_name, sa_namespace = service_account(username)
        data: dict[str, Any] = {
            "request": wire,
            "serviceAccountName": sa_name,
            "serviceAccountNamespace": sa_namespace,
        }
        variables = cls(data, operation=request.operation)
        subject = request.resource_object

        def load_images(_: Variables) -> Any:
            try:
                images = images_of(subject)
            except ImageError as exc:
                raise VariableError(f"failed to extract images: {exc}") from None
            return images or UNSET

        variables.defer("images", load_images)
        for name, value in (extra or {}).items():
            variables.set(name, value)
        return variables

    # -- data

    @property
    def data(self) -> dict[str, Any]:
        return self._data

    def set(self, name: str, value: Any) -> None:
        """Add or replace a variable; a dotted name (`a.b`, or `"a.b".c` to quote a dot) nests."""
        self._assign(_split_name(name), value)
        self._pending = [d for d in self._pending if d.name != name]
        if name == "request.operation" and isinstance(value, str):
            self.operation = value

    def _assign(self, parts: list[str], value: Any) -> None:
        target = self._data
        for part in parts[:-1]:
            nxt = target.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
            else:
                nxt = dict(nxt)
            target[part] = nxt
            target = nxt
        target[parts[-1]] = value

    def defer(self, name: str, load: Callable[[Variables], Any]) -> None:
        """Register a variable computed on first use: load(variables) returns its value (UNSET: leave it
        unset) or raises VariableError, which then surfaces from every query that names the variable."""
        self._pending.append(_Deferred(name, load))

    def child(self, **values: Any) -> Variables:
        """A copy for a nested scope (foreach elements): changes to it do not reach this one."""
        copy = Variables(dict(self._data), operation=self.operation)
        copy._pending = list(self._pending)
        for name, value in values.items():
            copy.set(name, value)
        return copy

    def for_element(self, element: Any, index: int, nesting: int = 0) -> Variables:
        """The scope of one foreach element, named as Kyverno names them: element and elementIndex, and
        element<N>/elementIndex<N> for the foreach nesting level N (0 for the outermost)."""
        return self.child(**{"element": element, f"element{nesting}": element,
                             "elementIndex": index, f"elementIndex{nesting}": index})

    # -- queries

    def _load_matching(self, query: str) -> None:
        # While an entry loads, only the entries declared before it may load (as in Kyverno).
        mentions = _mentions if len(query) <= 2048 else _mentions.__wrapped__
        candidates = [d for d in (self._pending if self._loading is None else self._loading)
                      if mentions(d.name, query)]
        for deferred in candidates:
            if deferred not in self._pending:
                continue  # loaded meanwhile (by an entry that needed it)
            if not deferred.loaded:
                saved = self._loading
                self._loading = self._pending[: self._pending.index(deferred)]
                try:
                    deferred.value = deferred.load(self)
                except VariableError as exc:
                    deferred.error = exc
                finally:
                    self._loading = saved
                deferred.loaded = True
            if deferred.error is not None:
                raise VariableError(str(deferred.error))
            self._pending.remove(deferred)
            if deferred.value is not UNSET:
                self._assign(_split_name(deferred.name), deferred.value)

    def query(self, expr: str, *, strict: bool = False, names_from: str | None = None) -> Any:
        """Evaluate a JMESPath expression over the variables. A missing key gives None, or raises
        VariableNotFound with strict=True; syntax and function errors raise VariableError. Deferred
        context entries named in `names_from` (the policy's text of the expression; default: expr) load
        first, so data in an expression never loads one."""
        if self._pending:
            self._load_matching(expr if names_from is None else names_from)
        return search(expr, self._data, strict=strict)

    # -- substitution

    def substitute(self, value: Any, path: tuple[str | int, ...] = ()) -> Any:
        """Replace `$(...)` references, then `{{ }}` variables, in every string (and key) of a JSON
        document. `path` is where the document sits in the rule (only `{{@}}` uses it).
        Raises VariableError as Kyverno's does."""
        if type(value) is str and len(value) <= 4096:
            expr = _whole_variable(value)
            if expr is not None:  # "{{ expr }}" and nothing else: its value, as _substitute_string gives it
                return self._resolve(expr, path)
        return self._substitute(value, path, value, ())

    def _resolve(self, variable: str, path: tuple[str | int, ...]) -> Any:
        if self.operation == "DELETE":
            variable = variable.replace("request.object", "request.oldObject")
        try:
            return self.query(variable, strict=True)
        except VariableNotFound as exc:
            raise VariableNotFound(
                f"failed to resolve {variable} at path {_pointer(path)}: {exc}", exc.key) from None
        except VariableError as exc:
            raise VariableError(f"failed to resolve {variable} at path {_pointer(path)}: {exc}") from None

    def _substitute(self, value: Any, path: tuple[str | int, ...], root: Any, at: tuple[str, ...]) -> Any:
        # `path` is the rule path (for {{@}}); `at` the path inside the document (for $(...) references)
        if isinstance(value, str):
            if "$(" in value:
                value = _resolve_references(value, root, at)
            return self._substitute_string(value, path)
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                new_key: Any = key
                if isinstance(key, str) and ("{{" in key or "$(" in key):
                    new_key = self._substitute_string(_resolve_references(key, root, (*at, key)), path)
                out[new_key if isinstance(new_key, str) else go_json(new_key)] = self._substitute(
                    item, (*path, key), root, (*at, str(key)))
            return out
        if isinstance(value, list):
            return [self._substitute(item, (*path, i), root, (*at, str(i))) for i, item in enumerate(value)]
        return value

    def _substitute_string(self, value: str, path: tuple[str | int, ...]) -> Any:
        if "{{" not in value:
            return value
        pieces = _template(value)
        if len(pieces) == 1 and isinstance(pieces[0], _Var):
            return self._evaluate(pieces[0], path)  # a string that is one variable: its value
        out: list[str] = []
        for piece in pieces:
            out.append(piece if isinstance(piece, str) else _text_of(self._evaluate(piece, path)))
        return "".join(out)

    def _evaluate(self, var: _Var, path: tuple[str | int, ...]) -> Any:
        """The value of one variable: its nested variables first, their values put in as data."""
        delete = self.operation == "DELETE"
        parts: list[str | _Data] = []
        for part in var.parts:
            if isinstance(part, str):
                parts.append(part.replace("request.object", "request.oldObject") if delete else part)
            else:
                parts.append(_Data(self._evaluate(part, path)))
        policy_text = "".join(p for p in parts if isinstance(p, str))
        nested = any(isinstance(p, _Data) for p in parts)
        variable = (_fill(tuple(parts)) if nested else policy_text).strip()
        if variable.startswith("-"):  # `{{- x }}`: as `{{ x }}` (a value is never scanned again anyway)
            variable = variable[1:].strip()
        if variable == "@":
            variable = self._current_path(path)
        try:
            resolved = self.query(variable, strict=True, names_from=policy_text)
        except VariableNotFound as exc:
            raise VariableNotFound(
                f"failed to resolve {variable} at path {_pointer(path)}: {exc}", exc.key) from None
        except VariableError as exc:
            raise VariableError(f"failed to resolve {variable} at path {_pointer(path)}: {exc}") from None
        return resolved

    def _current_path(self, path: tuple[str | int, ...]) -> str:
        parts = [str(p) for p in path]
        if "foreach" in parts:
            parts = parts[parts.index("foreach") + 1:]
        parts = parts[2:] if len(parts) > 2 else []
        try:
            prefix = ["target"] if self.query("target", strict=True) is not None else ["request", "object"]
        except VariableError:
            prefix = ["request", "object"]
        return pointer_to_jmespath([*prefix, *parts])


# ---------------------------------------------------------------------------------------------- templates

# A string of a policy is read once into a template: its literal text and its `{{ }}` variables, each
# variable made of its expression text and the variables nested in it. Substitution evaluates the
# variables and joins the pieces; what a variable gives is data and is never read as a template again: a
# label value `{{ request.object.metadata.name }}` stays that text. A nested variable's value goes into
# the outer expression as data too (a JSON literal, a quoted name after a `.`, the text of a quoted
# string), never as expression text, so no value can change what the outer expression does.


class _Var:
    """One `{{ ... }}` of a template: its parts, expression text and nested variables in order."""

    __slots__ = ("parts",)

    def __init__(self, parts: tuple[str | _Var, ...]) -> None:
        self.parts = parts


_Template = tuple["str | _Var", ...]


_MAX_NESTING = 16


def _parse_variable(text: str, start: int, depth: int = 0) -> tuple[_Var, int] | None:
    """The variable whose `{{` is at start, and the index after its `}}`; None if it does not close as
    _VARIABLE reads variables (single `{...}` inside, no lone braces) or nests deeper than _MAX_NESTING."""
    if depth > _MAX_NESTING:
        return None
    parts: list[str | _Var] = []
    buf: list[str] = []
    j = start + 2
    n = len(text)
    while j < n:
        c = text[j]
        if c == "{":
            if text.startswith("{{", j) and text[j - 1] != "\\":
                nested = _parse_variable(text, j, depth + 1)
                if nested is None:
                    return None
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(nested[0])
                j = nested[1]
                continue
            close = text.find("}", j + 1)
            if close == -1 or "{" in text[j + 1:close]:
                return None
            buf.append(text[j:close + 1])
            j = close + 1
            continue
        if c == "}":
            if not text.startswith("}}", j):
                return None
            if buf:
                parts.append("".join(buf))
            return _Var(tuple(parts)), j + 2
        buf.append(c)
        j += 1
    return None


def _parse_template(text: str) -> _Template:
    pieces: list[str | _Var] = []
    buf: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        at = text.find("{{", i)
        if at == -1:
            buf.append(text[i:])
            break
        if at > 0 and text[at - 1] == "\\":
            buf.append(text[i:at - 1] + "{{")  # an escaped `\{{` is the literal text `{{`
            i = at + 2
            continue
        parsed = _parse_variable(text, at)
        if parsed is None:
            buf.append(text[i:at + 1])
            i = at + 1
            continue
        buf.append(text[i:at])
        if buf and any(buf):
            pieces.append("".join(buf))
        buf = []
        pieces.append(parsed[0])
        i = parsed[1]
    if any(buf):
        pieces.append("".join(buf))
    return tuple(pieces)


_cached_template = lru_cache(maxsize=4096)(_parse_template)


def _template(text: str) -> _Template:
    return _cached_template(text) if len(text) <= 2048 else _parse_template(text)


def _text_of(value: Any) -> str:
    return value if isinstance(value, str) else go_json(value)


def json_literal(value: Any) -> str:
    """A JMESPath JSON literal (`...`) whose value is exactly `value`."""
    return "`" + go_json(value).replace("`", "\\`") + "`"


class _Data:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def _fill(parts: tuple[str | _Data, ...]) -> str:
    """An expression from its policy text and the values of its nested variables, each value as data."""
    plan = _plan(tuple(p if isinstance(p, str) else None for p in parts))
    values = [p.value for p in parts if isinstance(p, _Data)]
    out: list[str] = []
    for op in plan:
        if isinstance(op, str):
            out.append(op)
        elif op[0] == "slot":
            value = values[op[2]]
            if isinstance(value, int) and not isinstance(value, bool):
                out.append(str(value))  # an index or a number: digits, nothing else
            elif op[1]:  # after a `.`: a key, as a quoted name
                out.append(json.dumps(_text_of(value), ensure_ascii=False))
            else:
                out.append(json_literal(value))
        else:
            _, quote, items, closed = op
            text = _quoted(quote, [_Data(values[i]) if isinstance(i, int) else i for i in items])
            out.append(text if closed else text[:-1])
    return "".join(out)


@lru_cache(maxsize=1024)
def _plan(shape: tuple[str | None, ...]) -> tuple[Any, ...]:
    """How _fill puts values into an expression whose policy text is `shape` (None: a nested variable's
    value): text as it is; ("slot", after_dot, n) for a value in the expression itself; ("region", quote,
    items, closed) for a quoted literal or name that holds values (items: its text pieces and value
    numbers). Computed once per expression shape."""
    plan: list[Any] = []
    text: list[str] = []
    quote = ""  # the quote of the literal or quoted name being read: ', ` or "
    region: list[str | int] = []
    slot = 0
    for part in shape:
        if part is None:
            if quote:
                region.append(slot)
            else:
                plan.append("".join(text))
                text = []
                after_dot = "".join(p for p in plan if isinstance(p, str)).rstrip().endswith(".")
                plan.append(("slot", after_dot, slot))
            slot += 1
            continue
        i = 0
        while i < len(part):
            c = part[i]
            if not quote:
                if c in "'`\"":
                    quote, region = c, []
                else:
                    text.append(c)
            elif c == "\\" and i + 1 < len(part):
                region.append(part[i:i + 2])
                i += 1
            elif c == quote:
                if any(isinstance(r, int) for r in region):
                    plan.append("".join(text))
                    text = []
                    plan.append(("region", quote, tuple(region), True))
                else:
                    text.append(quote + "".join(r for r in region if isinstance(r, str)) + quote)
                quote = ""
            else:
                region.append(c)
            i += 1
    if quote:  # unterminated: the parser reports it
        plan.append("".join(text))
        text = []
        plan.append(("region", quote, tuple(region), False))
    plan.append("".join(text))
    return tuple(p for p in plan if p != "")


def _quoted(quote: str, region: list[str | _Data]) -> str:
    """A quoted literal or name of an expression, with the nested variables' values in it as data."""
    if not any(isinstance(p, _Data) for p in region):
        return quote + "".join(p for p in region if isinstance(p, str)) + quote
    if quote == "'":  # a raw string: its text, the values' text in it, as one JSON literal
        return json_literal("".join(_text_of(p.value) if isinstance(p, _Data) else ("'" if p == "\\'" else p)
                                    for p in region))
    if quote == '"':  # a quoted name: the values' text JSON-escaped in it
        return '"' + "".join(json.dumps(_text_of(p.value), ensure_ascii=False)[1:-1] if isinstance(p, _Data)
                             else p for p in region) + '"'
    # a JSON literal
    if len(region) == 1:
        only = region[0]
        assert isinstance(only, _Data)
        return json_literal(only.value)
    text: list[str] = []
    in_string = False
    for p in region:
        if isinstance(p, _Data):
            piece = json.dumps(_text_of(p.value), ensure_ascii=False)[1:-1] if in_string else go_json(p.value)
            text.append(piece.replace("`", "\\`"))
            continue
        text.append(p)
        if p == '"':
            in_string = not in_string
    return "`" + "".join(text) + "`"


# ---------------------------------------------------------------------------------------------- references

def _resolve_references(text: str, root: Any, path: tuple[str, ...]) -> str:
    if "$(" not in text:
        return text
    here = "/" + "/".join(path)
    for m in list(_REFERENCE.finditer(text)):
        whole = m.group(0)
        initial = whole.startswith("$(")
        reference = whole if initial else whole[1:]
        resolved = _resolve_reference(root, reference, here)
        if not isinstance(resolved, str):
            raise VariableError(f"NotResolvedReferenceErr,reference {reference} not resolved at path {here}")
        text = text.replace(whole, ("" if initial else whole[0]) + resolved, 1)
    for m in list(_ESCAPED_REFERENCE.finditer(text)):
        text = text.replace(m.group(0), m.group(0)[1:])
    return text


def _resolve_reference(root: Any, reference: str, here: str) -> Any:
    inner = reference.strip("$()")
    operator = next((op for op in (">=", "<=", ">", "<", "!") if len(inner) >= 2 and inner.startswith(op)), "")
    inner = inner[len(operator):]
    if not inner:
        raise VariableError("expected path, found empty reference")
    target = inner if inner.startswith("/") else _join_path(here, inner)
    value = _value_at(root, target)
    if value is None:
        raise VariableError(f"got nil resolved variable {reference} at path {here}")
    if not operator:
        return value
    if isinstance(value, str):
        return operator + value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise VariableError(f"incorrect expression: operator {operator} does not match with value {value}")
    return operator + (str(value) if isinstance(value, int) else f"{value:f}")


def _join_path(base: str, relative: str) -> str:
    parts: list[str] = []
    for part in (base + "/" + relative).split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def _value_at(root: Any, target: str) -> Any:
    """The value at a slash path of a document, matching keys with their anchors removed."""
    node = root
    for part in [p for p in target.split("/") if p]:
        if isinstance(node, dict):
            match = [k for k in node if isinstance(k, str) and _strip_anchor(k) == part]
            if not match:
                return None
            node = node[match[0]]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _strip_anchor(key: str) -> str:
    m = _ANCHOR.match(key)
    return m.group(1) if m else key


def _pointer(path: tuple[str | int, ...]) -> str:
    return "/" + "/".join(str(p) for p in path) if path else ""


def _split_name(name: str) -> list[str]:
    if '"' in name:
        parts = next(csv.reader([name], delimiter="."))
    else:
        parts = name.split(".")
    if not parts or any(p == "" for p in parts):
        raise VariableError(f"invalid variable name {name!r}")
    return parts
