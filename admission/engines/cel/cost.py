"""An approximation of the API server's CEL cost limits, for a runtime that tracks no cost.

cel-go charges every evaluation step and stops an expression past its limit; the API server allows 1,000,000
per expression (PerCallLimit) and 10,000,000 per policy evaluation (RuntimeCELCostBudget). cel-cpp's Python API
exposes no such tracking and cannot be interrupted, so we bound the cost before running an expression:

    estimate = terms × N × L^(degree - 1)    (terms when degree is 0)

- degree: the deepest nesting of comprehensions (all, exists, exists_one, map, filter, and the list functions
  that walk a list: sum, min, max, indexOf, lastIndexOf, isSorted, join) in the expression's source;
- terms: the number of such comprehensions and calls plus one;
- N: the number of values in the bound input (every scalar, list and map of object, oldObject, params, ...),
  counted from its JSON text (separators and brackets: a comma inside a string counts too, so N errs high);
- L: the longest list or map in the bound input (found only for expressions that nest comprehensions).

An expression walking the object once costs about N per walk; one nesting comprehensions over disjoint parts of
the object (containers, then their ports) stays near N × L; one crossing a long list with itself costs N × L and
is refused where cel-go would stop it. The estimate is an upper bound for the usual shapes, not cel-go's count:
an expression may be refused here that cel-go completes (a documented difference), never the other way round
for inputs larger than the limits allow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from admission.engines.cel.expr import Activation, Program

PER_EXPRESSION_LIMIT = 1_000_000
PER_POLICY_BUDGET = 10_000_000

_WALKERS = ("all", "exists", "exists_one", "map", "filter", "sum", "min", "max", "indexOf", "lastIndexOf",
            "isSorted", "join")


def static_shape(source: str) -> tuple[int, int]:
    """(degree, terms) of an expression's source, ignoring string literals."""
    depth_stack: list[bool] = []  # one entry per open parenthesis: is it a walker's call?
    degree = 0
    terms = 1
    i = 0
    n = len(source)
    while i < n:
        ch = source[i]
        if ch in "'\"":
            i = _skip_string(source, i)
            continue
        if ch == "(":
            name = _name_before(source, i)
            walker = name in _WALKERS and _is_member_call(source, i - len(name))
            if walker:
                terms += 1
            depth_stack.append(walker)
            degree = max(degree, sum(depth_stack))
        elif ch == ")" and depth_stack:
            depth_stack.pop()
        i += 1
    return degree, terms


def _skip_string(source: str, i: int) -> int:
    quote = source[i]
    if source.startswith(quote * 3, i):
        end = source.find(quote * 3, i + 3)
        return len(source) if end < 0 else end + 3
    j = i + 1
    while j < len(source):
        if source[j] == "\\":
            j += 2
            continue
        if source[j] == quote:
            return j + 1
        j += 1
    return j


def _name_before(source: str, i: int) -> str:
    j = i
    while j > 0 and (source[j - 1].isalnum() or source[j - 1] == "_"):
        j -= 1
    return source[j:i]


def _is_member_call(source: str, start: int) -> bool:
    j = start - 1
    while j >= 0 and source[j].isspace():
        j -= 1
    return j >= 0 and source[j] == "."


def input_size(values: Mapping[str, Any]) -> int:
    """N: about how many values the input holds (at C speed, from its JSON text; never fewer than it holds)."""
    text = orjson.dumps(values, default=_opaque)
    return text.count(b",") + text.count(b"{") + text.count(b"[") + 1


def _opaque(value: Any) -> None:
    return None  # a library value (a protobuf message) counts as one value


def widest(values: Mapping[str, Any]) -> int:
    """L: the longest list or map in the input."""
    longest = 0
    stack: list[Any] = list(values.values())
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            longest = max(longest, len(v))
            stack.extend(v.values())
        elif isinstance(v, list):
            longest = max(longest, len(v))
            stack.extend(v)
    return longest


def estimate(program: Program, activation: Activation) -> int:
    if program.cost_degree == 0:
        return program.cost_terms
    n = max(activation.size, 1)
    if program.cost_degree == 1:
        return program.cost_terms * n
    return int(program.cost_terms * n * max(activation.widest, 1) ** (program.cost_degree - 1))
