"""validate.pattern and validate.anyPattern matching, with Kyverno's anchors and its pass/fail/skip rules.

Learned from Kyverno's pkg/engine/validate/validate.go, pkg/engine/anchor/*, pkg/engine/wildcards and
pkg/engine/handlers/validation/validate_resource.go. In short:

- a map pattern is matched in two phases: first its anchors `(k)`, `=(k)`, `X(k)`, `^(k)` in key order,
  then its other keys, `<(k)` global anchors and keys whose values hold anchors first;
- a failing conditional `(k)` (or a missing key under it) makes that map "skipped"; a skipped list
  element is left out, and a list (or map) where nothing applied is skipped as a whole, up to the root:
  the rule is then skipped;
- a failing global anchor `<(k)` is a skip too;
- `X(k)` fails when the key is present (even null); `=(k)` applies only when the key is present;
  `^(k)` needs, for each map in its list, one element of the resource list that matches it;
- in a list pattern, the first element (a map) must be matched by every element of the resource list;
- a scalar pattern applied to a resource list must be matched by every element;
- `"*"` means "present and not null".

A failure with no path (Kyverno's "anchor key missing" case, or a list-of-lists length mismatch) is an
`error` result in Kyverno, and here.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from admission.engines.yaml.values import compare_value, contains_wildcard, go_sprint, wildcard_match

Status = Literal["pass", "fail", "skip", "error"]


@dataclass(frozen=True)
class PatternResult:
    status: Status
    path: str = ""
    message: str = ""
    # anyPattern only: the result of each pattern tried, in order (stops at the first pass).
    attempts: tuple[PatternResult, ...] = ()


# --- anchors ---------------------------------------------------------------------------------------

_ANCHOR = re.compile(r"([+<=X^])?\((.+)\)")

CONDITION, GLOBAL, NEGATION, ADD, EQUALITY, EXISTENCE = "", "<", "X", "+", "=", "^"


def parse_anchor(key: Any) -> tuple[str, str] | None:
    """(modifier, key) of an anchored map key such as "=(name)", or None for a plain key."""
    if not isinstance(key, str):
        return None
    return _parse_anchor(key) if len(key) <= 256 else _parse_anchor.__wrapped__(key)


@lru_cache(maxsize=8192)
def _parse_anchor(key: str) -> tuple[str, str] | None:
    m = _ANCHOR.fullmatch(key.strip())
    if m is None:
        return None
    return m[1] or CONDITION, m[2]


def _anchor_type(key: Any) -> str | None:
    a = parse_anchor(key)
    return None if a is None else a[0]


_PHASE_ONE = {CONDITION, EXISTENCE, EQUALITY, NEGATION}
_VALIDATE_ANCHORS = _PHASE_ONE | {GLOBAL}


def pattern_errors(pattern: Any, path: str = "/") -> list[str]:
    """Load-time checks Kyverno applies to a validate pattern: only (), =(), X(), ^(), <() anchors,
    and ^() holds a non-empty list. Returns "path: problem" strings (empty when the pattern is fine)."""
    problems: list[str] = []
    if isinstance(pattern, dict):
        for key, value in pattern.items():
            key_path = f"{path.rstrip('/')}/{key}"
            anchor = _anchor_type(str(key))
            if anchor is not None and anchor not in _VALIDATE_ANCHORS:
                problems.append(f"{key_path}: unsupported anchor {key} in a validate pattern")
            if anchor == EXISTENCE and not (isinstance(value, list) and value):
                problems.append(f"{key_path}: existence anchor should have a non-empty list value")
            problems.extend(pattern_errors(value, key_path))
    elif isinstance(pattern, list):
        for i, item in enumerate(pattern):
            problems.extend(pattern_errors(item, f"{path.rstrip('/')}/{i}/"))
    elif not (pattern is None or isinstance(pattern, str | int | float | bool)):
        problems.append(f"{path}: pattern contains unknown type {type(pattern).__name__}")
    return problems


# --- errors ----------------------------------------------------------------------------------------

_PLAIN, _COND, _GLOBAL, _NEG, _SKIP = "plain", "conditional", "global", "negation", "skipped"
_COND_MSG = "conditional anchor mismatch"
_GLOBAL_MSG = "global anchor mismatch"
_NEG_MSG = "negation anchor matched in resource"


@dataclass(frozen=True)
class _Err:
    kind: str
    message: str

    @property
    def skips(self) -> bool:
        # Kyverno: a conditional or global anchor error, or any error that carries one's text
        return self.kind in (_COND, _GLOBAL) or _COND_MSG in self.message or _GLOBAL_MSG in self.message

    @property
    def negation(self) -> bool:
        if self.kind in (_COND, _GLOBAL):
            return False
        return self.kind == _NEG or _NEG_MSG in self.message


def _combined(errors: list[_Err]) -> _Err:
    return _Err(_SKIP, "; ".join(e.message for e in errors))


_Outcome = tuple[str, _Err | None]
_OK: _Outcome = ("", None)


@dataclass(frozen=True)
class _Plan:
    """How a map pattern is matched, whatever the resource: its phase-one anchors in key order, its
    other keys in Kyverno's order, and the (), ^(), X() keys noted for the "anchor key missing" case."""

    anchors: tuple[tuple[str, Any], ...]
    others: tuple[tuple[str, Any], ...]
    noted: tuple[tuple[str, str], ...]  # (key, bare key)
    has_metadata: bool  # labels/annotations wildcards depend on the resource: no plan then


def _noted(raw: dict[Any, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(
        (key, a[1]) for key in raw if isinstance(key, str)
        and (a := parse_anchor(key)) is not None and a[0] in (CONDITION, EXISTENCE, NEGATION)
    )


def _plan(raw: dict[Any, Any]) -> _Plan:
    noted = _noted(raw)
    pattern = raw if all(isinstance(k, str) for k in raw) else {_key_text(k): v for k, v in raw.items()}
    anchors = {k: v for k, v in pattern.items() if _anchor_type(k) in _PHASE_ONE}
    others = {k: v for k, v in pattern.items() if k not in anchors}
    return _Plan(
        anchors=tuple((k, anchors[k]) for k in sorted(anchors)),
        others=tuple((k, others[k]) for k in _ordered_keys(others)),
        noted=noted,
        has_metadata=_find_tag("metadata", pattern) is not None,
    )


# Plans of policy patterns, by id (the pattern is kept, so the id stays its own). Only patterns that are
# never changed are planned here: those of loaded policies (see match_pattern's `static`).
_PLANS: dict[int, tuple[dict[Any, Any], _Plan]] = {}
_MAX_PLANS = 4096


def _planned(pattern: dict[Any, Any]) -> _Plan:
    hit = _PLANS.get(id(pattern))
    if hit is not None and hit[0] is pattern:
        return hit[1]
    plan = _plan(pattern)
    if len(_PLANS) >= _MAX_PLANS:
        _PLANS.clear()
    _PLANS[id(pattern)] = (pattern, plan)
    return plan


class _Matcher:
    def __init__(self, static: bool = False) -> None:
        # for each (), ^() and X() key seen in the pattern: was it ever found in the resource?
        self.anchor_keys: dict[str, bool] = {}
        self.static = static

    def keys_are_missing(self) -> bool:
        return any(not found and _anchor_type(k) != NEGATION for k, found in self.anchor_keys.items())

    def note_anchor_keys(self, pattern: dict[str, Any], resource: dict[str, Any],
                         noted: tuple[tuple[str, str], ...] | None = None) -> None:
        if noted is None:
            noted = _planned(pattern).noted if self.static else _noted(pattern)
        for key, bare in noted:
            if self.anchor_keys.get(key):
                continue
            self.anchor_keys[key] = bare in resource

    # -- element ------------------------------------------------------------------------------

    def element(self, resource: Any, pattern: Any, path: str) -> _Outcome:
        if isinstance(pattern, dict):
            if not isinstance(resource, dict):
                return path, _Err(
                    _PLAIN,
                    f"pattern and resource have different structures. Path: {path}. "
                    f"Expected map, found {_type_name(resource)}",
                )
            if self.static:
                plan = _planned(pattern)
                self.note_anchor_keys(pattern, resource, plan.noted)
                if not plan.has_metadata:
                    return self._map(resource, plan, path)
            else:
                self.note_anchor_keys(pattern, resource)
            return self.map(resource, pattern, path)
        if isinstance(pattern, list):
            if not isinstance(resource, list):
                return path, _Err(
                    _PLAIN,
                    f"validation rule failed at path {path}, resource does not satisfy the expected overlay pattern",
                )
            return self.array(resource, pattern, path)
        if pattern is None or isinstance(pattern, str | int | float | bool):
            values = resource if isinstance(resource, list) else [resource]
            for value in values:
                if not compare_value(pattern, value):
                    return path, _Err(
                        _PLAIN,
                        f"resource value '{go_sprint(resource)}' does not match '{go_sprint(pattern)}' at path {path}",
                    )
            return _OK
        return path, _Err(_PLAIN, f"failed at '{path}', pattern contains unknown type")

    # -- map ----------------------------------------------------------------------------------

    def map(self, resource: dict[str, Any], pattern: dict[str, Any], path: str) -> _Outcome:
        plan = _planned(pattern) if self.static else None
        if plan is None or plan.has_metadata:
            if not all(isinstance(k, str) for k in pattern):
                pattern = {_key_text(k): v for k, v in pattern.items()}  # YAML may give true:, 1:, null: keys
            expanded = _expand_metadata_wildcards(pattern, resource)
            if expanded is not pattern:
                # a map made for this resource: plan it (and what it holds) afresh
                saved, self.static = self.static, False
                try:
                    return self._map(resource, _plan(expanded), path)
                finally:
                    self.static = saved
            plan = _plan(pattern)
        return self._map(resource, plan, path)

    def _map(self, resource: dict[str, Any], plan: _Plan, path: str) -> _Outcome:
        skip_errors: list[_Err] = []
        applied = 0
        for key, value in plan.anchors:
            err_path, err = self.handle(key, value, resource, path)
            if err is None:
                applied += 1
                continue
            if err.skips:
                skip_errors.append(err)
                continue
            if not any(e.kind != _SKIP for e in skip_errors):
                return err_path, err
        if skip_errors and (applied == 0 or any(e.kind != _SKIP for e in skip_errors)):
            return path, _combined(skip_errors)

        for key, value in plan.others:
            err_path, err = self.handle(key, value, resource, path)
            if err is not None:
                return err_path, err
        return _OK

    def handle(self, key: str, pattern: Any, resource: dict[str, Any], path: str) -> _Outcome:
        a = parse_anchor(key)
        kind = a[0] if a is not None else None
        if a is None or kind == ADD:
            return self.plain_key(key, pattern, resource, path)
        name = a[1]
        current = f"{path}{name}/"
        present = name in resource
        if kind == CONDITION:
            if not present:
                return current, _Err(
                    _COND, f"{_COND_MSG}: conditional anchor key doesn't exist in the resource"
                )
            err_path, err = self.element(resource[name], pattern, current)
            if err is not None:
                return err_path, _Err(_COND, f"{_COND_MSG}: {err.message}")
            return _OK
        if kind == GLOBAL:
            if not present:
                return _OK
            err_path, err = self.element(resource[name], pattern, current)
            if err is not None:
                return err_path, _Err(_GLOBAL, f"{_GLOBAL_MSG}: {err.message}")
            return _OK
        if kind == EQUALITY:
            if not present:
                return _OK
            return self.element(resource[name], pattern, current)
        if kind == NEGATION:
            if present:
                return current, _Err(_NEG, f"{_NEG_MSG}: {current} is not allowed")
            return _OK
        # existence
        if not present:
            return _OK
        return self.existence(resource[name], pattern, current)

    def plain_key(self, key: str, pattern: Any, resource: dict[str, Any], path: str) -> _Outcome:
        value = resource.get(key)
        if isinstance(pattern, str) and pattern == "*":
            if value is not None:
                return _OK
            return path, _Err(_PLAIN, f"{path}/{key} not found")
        return self.element(value, pattern, f"{path}{key}/")

    def existence(self, value: Any, pattern: Any, path: str) -> _Outcome:
        if not isinstance(value, list):
            return path, _Err(
                _PLAIN,
                f"invalid resource type {_type_name(value)}: Existence ^ () anchor can be used only on list/array type resource",
            )
        if not isinstance(pattern, list):
            return path, _Err(
                _PLAIN, "invalid pattern type: Pattern has to be of list to compare against resource"
            )
        for item in pattern:
            if not isinstance(item, dict):
                return path, _Err(
                    _PLAIN,
                    "invalid pattern type: Pattern has to be of type map to compare against items in resource",
                )
            if not any(self.element(r, item, f"{path}{i}/")[1] is None for i, r in enumerate(value)):
                return path, _Err(_PLAIN, f"existence anchor validation failed at path {path}")
        return _OK

    # -- list ---------------------------------------------------------------------------------

    def array(self, resource: list[Any], pattern: list[Any], path: str) -> _Outcome:
        if not pattern:
            return path, _Err(_PLAIN, "pattern Array empty")
        first = pattern[0]
        if isinstance(first, dict):
            return self.each(resource, [first] * len(resource), path)
        if first is None or isinstance(first, str | int | float | bool):
            return self.element(resource, first, path)
        if len(resource) < len(pattern):
            return "", _Err(
                _PLAIN,
                f"validate Array failed, array length mismatch, resource Array len is {len(resource)} "
                f"and pattern Array len is {len(pattern)}",
            )
        return self.each(resource, pattern, path)

    def each(self, resource: list[Any], patterns: list[Any], path: str) -> _Outcome:
        applied = 0
        skip_errors: list[_Err] = []
        for i, item in enumerate(patterns):
            err_path, err = self.element(resource[i], item, f"{path}{i}/")
            if err is None:
                applied += 1
            elif err.skips:
                skip_errors.append(err)
            else:
                return err_path, err
        if applied == 0 and skip_errors:
            return path, _combined(skip_errors)
        return _OK


def _key_text(key: Any) -> str:
    """A map key as it reads once YAML is turned into JSON, as Kyverno receives policies."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def _type_name(v: Any) -> str:
    if v is None:
        return "<nil>"
    return {dict: "map", list: "array", str: "string", bool: "bool", int: "int64", float: "float64"}.get(
        type(v), type(v).__name__
    )


def _has_nested_anchors(pattern: Any) -> bool:
    if isinstance(pattern, dict):
        return any(_anchor_type(k) in _VALIDATE_ANCHORS for k in pattern) or any(
            _has_nested_anchors(v) for v in pattern.values()
        )
    if isinstance(pattern, list):
        return any(_has_nested_anchors(v) for v in pattern)
    return False


def _ordered_keys(pattern: dict[str, Any]) -> list[str]:
    """Kyverno's order for non-anchor keys: global anchors and keys holding anchors first (each pushed
    to the front in sorted order, so they end up reversed), then the rest in sorted order."""
    keys: deque[str] = deque()
    for key in sorted(pattern):
        if _anchor_type(key) == GLOBAL or _has_nested_anchors(pattern[key]):
            keys.appendleft(key)
        else:
            keys.append(key)
    return list(keys)


# --- wildcard keys in metadata.labels / metadata.annotations --------------------------------------


def _find_tag(tag: str, mapping: dict[str, Any]) -> str | None:
    for key in mapping:
        if key == tag:
            return key
        a = parse_anchor(key)
        if a is not None and a[1] == tag:
            return key
    return None


def _string_map(tag: str, data: Any) -> tuple[str, dict[str, str]] | None:
    if not isinstance(data, dict):
        return None
    key = _find_tag(tag, data)
    if key is None or not isinstance(data[key], dict):
        return None
    return key, {k: v for k, v in data[key].items() if isinstance(v, str)}


def _expand_metadata_wildcards(pattern: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    """Kyverno replaces wildcard keys of pattern labels/annotations by the resource key they match
    (anchors kept); the expanded map keeps only string-valued entries, as Kyverno's does."""
    meta_key = _find_tag("metadata", pattern)
    if meta_key is None or not isinstance(pattern[meta_key], dict) or resource.get("metadata") is None:
        return pattern
    metadata = dict(pattern[meta_key])
    changed = False
    for tag in ("labels", "annotations"):
        found = _string_map(tag, metadata)
        theirs = _string_map(tag, resource["metadata"])
        if found is None or theirs is None:
            continue
        tag_key, ours = found
        expanded: dict[str, Any] = {}
        for key, value in ours.items():
            if not contains_wildcard(key):
                expanded[key] = value
                continue
            a = parse_anchor(key)
            bare = a[1] if a is not None else key
            match = next((k for k in sorted(theirs[1]) if wildcard_match(bare, k)), bare)
            expanded[f"{a[0]}({match})" if a is not None else match] = value
        metadata[tag_key] = expanded
        changed = True
    if not changed:
        return pattern
    return {**pattern, meta_key: metadata}


# --- entry points ----------------------------------------------------------------------------------


# --- the pass check: a pattern compiled once into closures ----------------------------------------
#
# Most resources pass. A policy pattern is compiled once into nested closures that answer only "does
# this resource pass?" (every key handled without an error, exactly as _Matcher decides it), with the
# anchors parsed and the maps planned ahead. False means "not known to pass": _Matcher then works out
# the verdict, its path and message, so a failure, skip or error is reported exactly as before.

_Check = Callable[[Any], bool]


def _never(resource: Any) -> bool:
    return False


def _compile(pattern: Any) -> _Check:
    if isinstance(pattern, dict):
        return _compile_map(pattern)
    if isinstance(pattern, list):
        return _compile_list(pattern)
    if pattern is None or isinstance(pattern, str | int | float | bool):
        def scalar(resource: Any) -> bool:
            if isinstance(resource, list):
                return all(compare_value(pattern, value) for value in resource)
            return compare_value(pattern, resource)
        return scalar
    return _never


def _plain_metadata(pattern: dict[str, Any]) -> bool:
    """Whether _expand_metadata_wildcards leaves this map as it is, whatever the resource: its labels and
    annotations (if any) have no wildcard keys and only string values."""
    meta_key = _find_tag("metadata", pattern)
    if meta_key is None or not isinstance(pattern[meta_key], dict):
        return True
    for tag in ("labels", "annotations"):
        key = _find_tag(tag, pattern[meta_key])
        if key is None or not isinstance(pattern[meta_key][key], dict):
            continue
        tagged = pattern[meta_key][key]
        if any(not isinstance(v, str) or contains_wildcard(k) for k, v in tagged.items()):
            return False
    return True


def _compile_map(raw: dict[Any, Any]) -> _Check:
    pattern = raw if all(isinstance(k, str) for k in raw) else {_key_text(k): v for k, v in raw.items()}
    if not _plain_metadata(pattern):
        return _never
    plan = _plan(pattern)
    checks = tuple(_compile_key(key, value) for key, value in (*plan.anchors, *plan.others))

    def check_map(resource: Any) -> bool:
        if not isinstance(resource, dict):
            return False
        for check in checks:
            if not check(resource):
                return False
        return True
    return check_map


def _compile_key(key: str, pattern: Any) -> _Check:
    """Whether _Matcher.handle(key, pattern, resource) gives no error (resource is a map)."""
    a = parse_anchor(key)
    if a is None or a[0] == ADD:
        if isinstance(pattern, str) and pattern == "*":
            return lambda resource: resource.get(key) is not None
        value_check = _compile(pattern)
        return lambda resource: value_check(resource.get(key))
    kind, name = a
    if kind == NEGATION:
        return lambda resource: name not in resource
    if kind == EXISTENCE:
        if not isinstance(pattern, list) or not all(isinstance(item, dict) for item in pattern):
            return lambda resource: name not in resource
        items = tuple(_compile(item) for item in pattern)

        def exists(resource: Any) -> bool:
            if name not in resource:
                return True
            values = resource[name]
            return isinstance(values, list) and all(any(item(v) for v in values) for item in items)
        return exists
    inner = _compile(pattern)
    if kind == CONDITION:
        return lambda resource: name in resource and inner(resource[name])
    return lambda resource: name not in resource or inner(resource[name])  # global, equality


def _compile_list(pattern: list[Any]) -> _Check:
    if not pattern:
        return _never
    first = pattern[0]
    if isinstance(first, dict):
        each = _compile(first)
        return lambda resource: isinstance(resource, list) and all(each(r) for r in resource)
    if first is None or isinstance(first, str | int | float | bool):
        scalar = _compile(first)
        return lambda resource: isinstance(resource, list) and scalar(resource)
    items = tuple(_compile(p) for p in pattern)

    def pairwise(resource: Any) -> bool:
        if not isinstance(resource, list) or len(resource) < len(items):
            return False
        return all(item(resource[i]) for i, item in enumerate(items))
    return pairwise


# Pass checks of policy patterns, by id (the pattern is kept, so the id stays its own).
_CHECKS: dict[int, tuple[Any, _Check]] = {}


def _passes(resource: Any, pattern: Any) -> bool:
    hit = _CHECKS.get(id(pattern))
    if hit is None or hit[0] is not pattern:
        try:
            check = _compile(pattern)
        except RecursionError:  # too deep to compile: the matcher decides
            check = _never
        if len(_CHECKS) >= _MAX_PLANS:
            _CHECKS.clear()
        hit = _CHECKS[id(pattern)] = (pattern, check)
    try:
        return hit[1](resource)
    except RecursionError:
        return False


_PASS = PatternResult("pass")


def match_pattern(resource: Any, pattern: Any, *, static: bool = False) -> PatternResult:
    """Kyverno's validate.pattern verdict for one resource (validate.MatchPattern + its caller).

    static=True: the pattern is part of a loaded policy and never changes, so how each of its maps is
    matched is worked out once and kept (not for patterns built per request, e.g. after substitution)."""
    if static and _passes(resource, pattern):
        return _PASS
    matcher = _Matcher(static)
    err_path, err = matcher.element(resource, pattern, "/")
    if err is None:
        return PatternResult("pass")
    if err.skips:
        return PatternResult("skip", "", err.message)
    if err.negation:
        return PatternResult("fail" if err_path else "error", err_path, err.message)
    if matcher.keys_are_missing():
        return PatternResult("error", "", err.message)
    return PatternResult("fail" if err_path else "error", err_path, err.message)


def match_any_pattern(resource: Any, patterns: Any) -> PatternResult:
    """validate.anyPattern: pass if one pattern passes; skip if every one that did not pass skipped;
    else fail (an `error` of one pattern counts as a failure, as in Kyverno)."""
    if not isinstance(patterns, list):
        return PatternResult("error", "", "failed to deserialize anyPattern, expected type array")
    attempts: list[PatternResult] = []
    for p in patterns:
        result = match_pattern(resource, p)
        attempts.append(result)
        if result.status == "pass":
            return PatternResult("pass", attempts=tuple(attempts))
    failed = [r for r in attempts if r.status in ("fail", "error")]
    if failed:
        return PatternResult("fail", failed[0].path, failed[0].message, tuple(attempts))
    if attempts:
        return PatternResult("skip", "", attempts[0].message, tuple(attempts))
    return PatternResult("pass")


def failure_message(rule: str, message: str, result: PatternResult, any_pattern: bool = False) -> str:
    """The text Kyverno reports for a failed (or errored) pattern / anyPattern rule.

    `message` is the rule's validate.message with variables already substituted."""
    if any_pattern:
        parts = []
        for i, r in enumerate(result.attempts):
            if r.status == "fail":
                parts.append(f"rule {rule}[{i}] failed at path {r.path}")
            elif r.status == "error":
                parts.append(f"rule {rule}[{i}] failed: {r.message}")
        detail = " ".join(parts)
        if not message:
            return f"validation error: {detail}"
        return (
            f"validation error: {message} {detail}"
            if message.endswith(".")
            else f"validation error: {message}. {detail}"
        )
    if not message:
        if result.path:
            return f"validation error: rule {rule} failed at path {result.path}"
        return f"validation error: rule {rule} execution error: {result.message}"
    text = message if message.endswith(".") else message + "."
    if result.path:
        return f"validation error: {text} rule {rule} failed at path {result.path}"
    return f"validation error: {text} rule {rule} execution error: {result.message}"
