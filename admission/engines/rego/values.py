"""Rego values over plain Python, for the compiled evaluator.

A Rego value is what JSON gives (None, bool, int, float, str, list, dict) plus `Set`. The input and the
data are used as they are: nothing is converted per request. Objects are dicts whose keys are scalars
(str, number, None); an object keyed by an array, an object, a set or a boolean is not representable here
and is an evaluation error (`EvalError`), never a silently different answer.

Rego's equality differs from Python's in two places, which `equal` and `key` handle: a boolean is not a
number (`true != 1`), and a set is a value. Numbers compare by value (`1 == 1.0`). The total order of OPA
(`compare`) puts null < boolean < number < string < array < object < set.

`UNDEFINED` is the one "no value" marker: a ref that does not resolve, a rule with no solution, a builtin
that failed in non-strict mode.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from typing import Any


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNDEFINED"

    def __bool__(self) -> bool:
        return False


UNDEFINED: Any = _Undefined()


class EvalError(Exception):
    """An evaluation error OPA reports as an error (a conflict, a type error in strict mode, ...). `code` is
    OPA's error code (`eval_conflict_error`, `eval_type_error`, `eval_builtin_error`, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# the code of the one EvalError that is not OPA's: a value the compiled evaluator cannot represent (an
# object keyed by a composite or a boolean); the caller evaluates that input with regopy instead
UNSUPPORTED_VALUE = "compiled_unsupported_value"

# hashable keys that follow Rego equality: booleans and composites are tagged, numbers and strings are
# themselves (Python already has 1 == 1.0 with equal hashes)
_TRUE = ("b", True)
_FALSE = ("b", False)


def key(v: Any) -> Any:
    """A hashable form of v, equal for values Rego calls equal."""
    t = type(v)
    if t is str or t is int or t is float or v is None:
        return v
    if t is bool:
        return _TRUE if v else _FALSE
    if t is list or t is tuple:
        return ("a", tuple([key(x) for x in v]))
    if t is dict:
        return ("o", frozenset([(key(k), key(x)) for k, x in v.items()]))
    if t is Set:
        return ("s", frozenset(v.m))
    raise TypeError(f"not a Rego value: {t.__name__}")


class Set:
    """A Rego set: its members by `key`. Iterates over the members."""

    __slots__ = ("m",)

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self.m: dict[Any, Any] = {key(x): x for x in items} if items != () else {}

    @classmethod
    def of_keys(cls, m: dict[Any, Any]) -> Set:
        s = cls.__new__(cls)
        s.m = m
        return s

    def add(self, x: Any) -> None:
        self.m[key(x)] = x

    def __contains__(self, x: Any) -> bool:
        return key(x) in self.m

    def __iter__(self) -> Iterator[Any]:
        return iter(self.m.values())

    def __len__(self) -> int:
        return len(self.m)

    def __eq__(self, other: object) -> bool:
        return type(other) is Set and self.m.keys() == other.m.keys()

    def __hash__(self) -> int:
        return hash(frozenset(self.m))

    def __repr__(self) -> str:
        return "Set(" + repr(sorted_values(self.m.values())) + ")"


def is_number(v: Any) -> bool:
    t = type(v)
    return t is int or t is float


def equal(a: Any, b: Any) -> bool:
    """Rego equality."""
    ta = type(a)
    tb = type(b)
    if ta is str:
        return tb is str and a == b
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if ta is dict or ta is list or ta is Set or tb is dict or tb is list or tb is Set or ta is tuple or tb is tuple:
        try:
            return key(a) == key(b)
        except TypeError:
            return False
    return a == b and (a is None) == (b is None)


_ORDER = {type(None): 0, bool: 1, int: 2, float: 2, str: 3, list: 4, tuple: 4, dict: 5, Set: 6}


def compare(a: Any, b: Any) -> int:
    """OPA's total order: -1, 0 or 1."""
    ra = _ORDER[type(a)]
    rb = _ORDER[type(b)]
    if ra != rb:
        return -1 if ra < rb else 1
    if ra <= 3:
        if a == b:
            return 0
        return -1 if a < b else 1
    if ra == 4:
        for x, y in zip(a, b, strict=False):
            c = compare(x, y)
            if c:
                return c
        return (len(a) > len(b)) - (len(a) < len(b))
    if ra == 5:
        ka = sorted_values(a.keys())
        kb = sorted_values(b.keys())
        for x, y in zip(ka, kb, strict=False):
            c = compare(x, y)
            if c:
                return c
            c = compare(a[x], b[y])
            if c:
                return c
        return (len(ka) > len(kb)) - (len(ka) < len(kb))
    return compare(sorted_values(a), sorted_values(b))


class _Key:
    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Key) -> bool:
        return compare(self.v, other.v) < 0


def sorted_values(values: Iterable[Any]) -> list[Any]:
    """values in OPA's order."""
    items = list(values)
    if all(type(x) is str for x in items):
        return sorted(items)
    return sorted(items, key=_Key)


def type_name(v: Any) -> str:
    t = type(v)
    if v is None:
        return "null"
    if t is bool:
        return "boolean"
    if t is int or t is float:
        return "number"
    if t is str:
        return "string"
    if t is list or t is tuple:
        return "array"
    if t is dict:
        return "object"
    if t is Set:
        return "set"
    return t.__name__


def to_json(v: Any) -> Any:
    """v as JSON: a set becomes its sorted members, a number keeps its value (an integral float an int)."""
    t = type(v)
    if t is Set:
        return [to_json(x) for x in sorted_values(v)]
    if t is dict:
        return {(k if type(k) is str else json_text(k)): to_json(x) for k, x in v.items()}
    if t is list or t is tuple:
        return [to_json(x) for x in v]
    if t is float and v.is_integer() and abs(v) < 2**63:
        return int(v)
    return v


def from_json(v: Any) -> Any:
    """A JSON value (as json.loads gives it) as a Rego value: itself."""
    return v


def number_text(v: int | float) -> str:
    """A number as OPA prints it: integers without a fraction, others in shortest form."""
    if type(v) is float:
        if v.is_integer() and abs(v) < 1e21:
            return str(int(v))
        if math.isinf(v) or math.isnan(v):
            return str(v)
        text = repr(v)
        if "e" in text:  # Go prints 1e-07 as 1e-07 and 1e+21 as 1e+21
            mant, _, exp = text.partition("e")
            sign = exp[0] if exp[0] in "+-" else "+"
            digits = exp.lstrip("+-").rjust(2, "0")
            return f"{mant}e{sign}{digits}"
        return text
    return str(v)


def json_text(v: Any) -> str:
    """v as OPA's JSON-ish text (sets as `{...}` sorted, `set()` when empty), as sprintf %v prints composites."""
    t = type(v)
    if t is str:
        return json.dumps(v, ensure_ascii=False)
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is int or t is float:
        return number_text(v)
    if t is list or t is tuple:
        return "[" + ", ".join(json_text(x) for x in v) + "]"
    if t is dict:
        return "{" + ", ".join(f"{json_text(k)}: {json_text(v[k])}" for k in sorted_values(v.keys())) + "}"
    if t is Set:
        if not v:
            return "set()"
        return "{" + ", ".join(json_text(x) for x in sorted_values(v)) + "}"
    raise TypeError(f"not a Rego value: {t.__name__}")


def check_key(k: Any) -> Any:
    """k as a dict key, or EvalError for a key this representation cannot hold (a composite or a boolean)."""
    t = type(k)
    if t is str or t is int or t is float or k is None:
        return k
    raise EvalError(UNSUPPORTED_VALUE, f"object key of type {type_name(k)} is not supported by the compiled evaluator")
