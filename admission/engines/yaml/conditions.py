"""preconditions and validate.deny.conditions: the any/all block, the legacy list, and every operator.

Learned from Kyverno's pkg/engine/variables/evaluate.go and pkg/engine/variables/operator/*.go.
Conditions reach Kyverno's operators after a JSON round trip, so a number is a float64 there: here any
Python int or float is treated alike. Operator names are matched case-insensitively, as Kyverno does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from admission.engines.yaml.values import (
    IN_RANGE,
    compare_value,
    deep_equal,
    go_parse_float,
    go_parse_int,
    go_sprint,
    is_number,
    parse_duration_ns,
    parse_quantity,
    parse_semver,
    string_operator,
    wildcard_match,
)

Substitute = Callable[[Any], Any]

_SECOND = 1_000_000_000


def evaluate_conditions(conditions: Any, substitute: Substitute) -> tuple[bool, str]:
    """(holds, message). The message is Kyverno's: when the conditions hold, the messages of the
    conditions that held; when they do not, those of the conditions that failed ("; "-joined).

    None (no conditions) holds. A dict is an any/all block (both may be given: at least one of `any`
    and every one of `all`; other fields are ignored, as Kyverno's decoder ignores them); a list is the
    legacy form (all must hold). Errors from `substitute` propagate; an unknown operator or a malformed
    condition is a ValueError."""
    if conditions is None:
        return True, ""
    if isinstance(conditions, dict):
        return _any_all(conditions, substitute)
    if isinstance(conditions, list):
        return _legacy(conditions, substitute)
    raise ValueError(
        f"invalid conditions: expected a map with any/all or a list, found {type(conditions).__name__}"
    )


def _join(messages: list[str], sep: str) -> str:
    return sep.join(m for m in messages if m)


def _any_all(block: dict[str, Any], substitute: Substitute) -> tuple[bool, str]:
    any_conditions, all_conditions = block.get("any"), block.get("all")
    for name, group in (("any", any_conditions), ("all", all_conditions)):
        if group is not None and not isinstance(group, list):
            raise ValueError(f"invalid conditions: '{name}' must be a list")
    true_messages: list[str] = []
    false_messages: list[str] = []
    any_result = all_result = True
    if any_conditions is not None:
        any_result = False
        for condition in any_conditions:
            held, message = evaluate_condition(condition, substitute)
            if held:
                any_result = True
                true_messages.append(message)
                break
            false_messages.append(message)
    for condition in all_conditions or []:
        held, message = evaluate_condition(condition, substitute)
        if not held:
            all_result = False
            false_messages.append(message)
            break
        true_messages.append(message)
    if any_result and all_result:
        return True, _join(true_messages, "; ")
    return False, _join(false_messages, "; ")


def _legacy(conditions: list[Any], substitute: Substitute) -> tuple[bool, str]:
    true_messages = []
    for condition in conditions:
        held, message = evaluate_condition(condition, substitute)
        if not held:
            return False, message
        true_messages.append(message)
    return True, _join(true_messages, ";")


def evaluate_condition(condition: Any, substitute: Substitute) -> tuple[bool, str]:
    """One {key, operator, value, message} condition: (holds, its message)."""
    if not isinstance(condition, dict):
        raise ValueError(
            f"invalid condition: expected a map with key/operator/value, found {type(condition).__name__}"
        )
    operator = condition.get("operator")
    if not isinstance(operator, str) or operator.lower() not in _OPERATORS:
        raise ValueError(
            f"unknown condition operator {operator!r}; expected one of {', '.join(OPERATOR_NAMES)}"
        )
    key = substitute(condition.get("key"))
    value = substitute(condition.get("value"))
    message = condition.get("message") or ""
    return _OPERATORS[operator.lower()](key, value), str(message)


# --- Equals / NotEquals ------------------------------------------------------------------------


def _durations(key: Any, value: Any) -> tuple[int, int] | None:
    """Kyverno's parseDuration: at least one side a duration string (not "0"); the other a duration
    string or a number of seconds (truncated to whole seconds, as Go's conversion does)."""

    def as_duration(v: Any) -> int | None:
        if isinstance(v, str) and v != "0":
            return parse_duration_ns(v)
        return None

    k, v = as_duration(key), as_duration(value)
    if k is None and v is None:
        return None

    def as_seconds(x: Any) -> int | None:
        if is_number(x) and math.isfinite(x):
            return int(x) * _SECOND
        return None

    k = k if k is not None else as_seconds(key)
    v = v if v is not None else as_seconds(value)
    if k is None or v is None:
        return None
    return k, v


def _equals(key: Any, value: Any) -> bool:
    if isinstance(key, bool):
        return isinstance(value, bool) and key == value
    if is_number(key):
        return _number_equals(key, value)
    if isinstance(key, str):
        durations = _durations(key, value)
        if durations is not None:
            return durations[0] == durations[1]
        key_quantity = parse_quantity(key)
        if key_quantity is not None and isinstance(value, str):
            value_quantity = parse_quantity(value)
            return value_quantity is not None and key_quantity == value_quantity
        return isinstance(value, str) and wildcard_match(value, key)
    if isinstance(key, dict | list):
        return type(value) is type(key) and deep_equal(key, value)
    return False  # null keys compare equal to nothing


def _number_equals(key: float, value: Any) -> bool:
    key = float(key)
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return key == math.trunc(key) and int(key) == value
    if isinstance(value, float):
        return key == value
    if isinstance(value, str):
        f = go_parse_float(value)
        return f is not None and f == key
    return False


def _not_equals(key: Any, value: Any) -> bool:
    if isinstance(key, bool):
        return not (isinstance(value, bool) and key == value)
    if is_number(key):
        return not _number_equals(key, value)
    if isinstance(key, str):
        durations = _durations(key, value)
        if durations is not None:
            return durations[0] != durations[1]
        key_quantity = parse_quantity(key)
        if key_quantity is not None and isinstance(value, str) and value != "":
            value_quantity = parse_quantity(value)
            return value_quantity is None or key_quantity != value_quantity
        if isinstance(value, str):
            return not wildcard_match(value, key)
        return True
    if isinstance(key, dict | list):
        return not (type(value) is type(key) and deep_equal(key, value))
    return False  # Kyverno's handler rejects a null key: the condition does not hold


# --- In / NotIn / AnyIn / AllIn / AnyNotIn / AllNotIn ---------------------------------------------


def _string_key(key: Any) -> str | None:
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or is_number(key):
        return go_sprint(key)
    return None


def _either_matches(a: str, b: str) -> bool:
    return wildcard_match(a, b) or wildcard_match(b, a)


def _json_string_list(text: str) -> list[str] | None:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if parsed is None:
        return []
    if isinstance(parsed, list) and all(isinstance(x, str) for x in parsed):
        return parsed
    return None


def _in_range(key: str, value: str) -> bool:
    return compare_value(value, key)


def _key_in(key: str, value: Any, legacy: bool) -> bool | None:
    """Is a single key in value? None where Kyverno finds the value's type invalid."""
    if isinstance(value, list):
        return any(_either_matches(go_sprint(v), key) for v in value)
    if isinstance(value, str):
        if wildcard_match(value, key):
            return True
        if not legacy and string_operator(value) == IN_RANGE:
            return _in_range(key, value)
        if legacy:
            items = _json_string_list(value)
            return None if items is None else key in items
        items = _json_or_single(value)
        return None if items is None else key in items
    return None


def _json_or_single(value: str) -> list[str] | None:
    try:
        json.loads(value)
    except ValueError:
        return [value]
    return _json_string_list(value)


def _key_list(key: list[Any], legacy: bool) -> list[str]:
    if legacy:
        if not all(isinstance(k, str) for k in key):
            raise ValueError("In/NotIn: a list key must hold only strings")
        return list(key)
    return [go_sprint(k) for k in key]


def _in(key: Any, value: Any) -> bool:
    single = _string_key(key)
    if single is not None:
        return _key_in(single, value, legacy=True) is True
    if isinstance(key, list):
        keys = _key_list(key, legacy=True)
        values = _legacy_value_set(keys, value)
        return values is not None and all(k in values for k in keys)
    return False


def _not_in(key: Any, value: Any) -> bool:
    single = _string_key(key)
    if single is not None:
        found = _key_in(single, value, legacy=True)
        return found is False
    if isinstance(key, list):
        keys = _key_list(key, legacy=True)
        if len(keys) == 1 and keys[0] == value:
            return True  # Kyverno's NotIn answers true here (its set check ignores the negation)
        values = _legacy_value_set(keys, value)
        return values is not None and any(k not in values for k in keys)
    return False


def _legacy_value_set(keys: list[str], value: Any) -> list[str] | None:
    if isinstance(value, list):
        if not all(isinstance(v, str) for v in value):
            return None
        return value
    if isinstance(value, str):
        if len(keys) == 1 and keys[0] == value:
            return [value]
        return _json_string_list(value)
    return None


def _set_values(keys: list[str], value: Any) -> tuple[str, list[str]] | None:
    """The values a key set is compared with: ("range", [pattern]) or ("list", items); None if invalid."""
    if isinstance(value, list):
        return "list", [go_sprint(v) for v in value]
    if isinstance(value, bool) or is_number(value):
        return "list", [go_sprint(value)]
    if isinstance(value, str):
        if len(keys) == 1 and keys[0] == value:
            return "same", [value]
        if string_operator(value) == IN_RANGE:
            return "range", [value]
        items = _json_or_single(value)
        return None if items is None else ("list", items)
    return None


def _matches_any(k: str, values: list[str]) -> bool:
    # a string always matches itself as a wildcard pattern: an exact entry answers without the patterns
    return k in values or any(_either_matches(k, v) for v in values)


def _any_in(key: Any, value: Any) -> bool:
    single = _string_key(key)
    if single is not None:
        return _key_in(single, value, legacy=False) is True
    if not isinstance(key, list):
        return False
    keys = _key_list(key, legacy=False)
    found = _set_values(keys, value)
    if found is None:
        return False
    kind, values = found
    if kind == "same":
        return True
    if kind == "range":
        return any(_in_range(k, values[0]) for k in keys)
    return any(_matches_any(k, values) for k in keys)


def _any_not_in(key: Any, value: Any) -> bool:
    single = _string_key(key)
    if single is not None:
        return _key_in(single, value, legacy=False) is False
    if not isinstance(key, list):
        return False
    keys = _key_list(key, legacy=False)
    found = _set_values(keys, value)
    if found is None:
        return False
    kind, values = found
    if kind == "same":
        return False
    if kind == "range":
        not_range = values[0].replace("-", "!-", 1)
        return any(_in_range(k, not_range) for k in keys)
    return any(not _matches_any(k, values) for k in keys)


def _all_in(key: Any, value: Any) -> bool:
    single = _string_key(key)
    if single is not None:
        return _key_in(single, value, legacy=False) is True
    if not isinstance(key, list):
        return False
    keys = _key_list(key, legacy=False)
    if isinstance(value, bool) or is_number(value):
        return False  # Kyverno's AllIn takes a list or a string only
    found = _set_values(keys, value)
    if found is None:
        return False
    kind, values = found
    if kind == "same":
        return True
    if kind == "range":
        return all(_in_range(k, values[0]) for k in keys)
    return all(_matches_any(k, values) for k in keys)


def _all_not_in(key: Any, value: Any) -> bool:
    single = _string_key(key)
    if single is not None:
        return _key_in(single, value, legacy=False) is False
    if not isinstance(key, list):
        return False
    keys = _key_list(key, legacy=False)
    if isinstance(value, bool) or is_number(value):
        return False
    found = _set_values(keys, value)
    if found is None:
        return False
    kind, values = found
    if kind == "same":
        return False
    if kind == "range":
        return not any(_in_range(k, values[0]) for k in keys)
    return not any(_matches_any(k, values) for k in keys)


# --- GreaterThan / LessThan and friends -----------------------------------------------------------


def _ordered(op: str, a: Any, b: Any) -> bool:
    if op == "greaterthanorequals":
        return bool(a >= b)
    if op == "greaterthan":
        return bool(a > b)
    if op == "lessthanorequals":
        return bool(a <= b)
    return bool(a < b)


def _numeric(op: str) -> Callable[[Any, Any], bool]:
    def compare_number_key(key: float, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if is_number(value):
            return _ordered(op, float(key), float(value))
        if isinstance(value, str):
            durations = _durations(key, value)
            if durations is not None:
                return _ordered(op, durations[0], durations[1])
            f = go_parse_float(value)
            if f is not None:
                return _ordered(op, float(key), f)
        return False

    def evaluate(key: Any, value: Any) -> bool:
        if isinstance(key, bool):
            return False
        if is_number(key):
            return compare_number_key(key, value)
        if not isinstance(key, str):
            return False
        durations = _durations(key, value)
        if durations is not None:
            return _ordered(op, durations[0], durations[1])
        key_quantity = parse_quantity(key)
        if key_quantity is not None and isinstance(value, str):
            value_quantity = parse_quantity(value)
            if value_quantity is not None:
                return _ordered(op, key_quantity, value_quantity)
        f = go_parse_float(key)
        if f is not None:
            return compare_number_key(f, value)
        i = go_parse_int(key)
        if i is not None:
            return compare_number_key(i, value)
        key_version = parse_semver(key)
        if key_version is not None:
            value_version = parse_semver(value) if isinstance(value, str) else None
            if value_version is None:
                return False
            return _ordered(op, key_version.compare(value_version), 0)
        return False

    return evaluate


def _duration_operator(op: str) -> Callable[[Any, Any], bool]:
    """The deprecated Duration* operators: numbers are seconds, strings must be Go durations."""

    def as_duration(v: Any, key_side: bool) -> int | None:
        if isinstance(v, bool):
            return None
        if is_number(v):
            return int(v) * _SECOND if math.isfinite(v) else None
        if isinstance(v, str):
            return parse_duration_ns(v)
        return None

    def evaluate(key: Any, value: Any) -> bool:
        k = as_duration(key, True)
        v = as_duration(value, False)
        if k is None or v is None:
            return False
        return _ordered(op, k, v)

    return evaluate


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "equal": _equals,
    "equals": _equals,
    "notequal": _not_equals,
    "notequals": _not_equals,
    "in": _in,
    "anyin": _any_in,
    "allin": _all_in,
    "notin": _not_in,
    "anynotin": _any_not_in,
    "allnotin": _all_not_in,
    "greaterthanorequals": _numeric("greaterthanorequals"),
    "greaterthan": _numeric("greaterthan"),
    "lessthanorequals": _numeric("lessthanorequals"),
    "lessthan": _numeric("lessthan"),
    "durationgreaterthanorequals": _duration_operator("greaterthanorequals"),
    "durationgreaterthan": _duration_operator("greaterthan"),
    "durationlessthanorequals": _duration_operator("lessthanorequals"),
    "durationlessthan": _duration_operator("lessthan"),
}

OPERATOR_NAMES = (
    "Equals",
    "NotEquals",
    "In",
    "AnyIn",
    "AllIn",
    "NotIn",
    "AnyNotIn",
    "AllNotIn",
    "GreaterThanOrEquals",
    "GreaterThan",
    "LessThanOrEquals",
    "LessThan",
    "DurationGreaterThanOrEquals",
    "DurationGreaterThan",
    "DurationLessThanOrEquals",
    "DurationLessThan",
    "Equal",
    "NotEqual",
)
