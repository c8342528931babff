"""An approximation of the API server's CEL cost limits, for a runtime that tracks no cost.

cel-go charges every evaluation step and stops an expression past its limit; the API server allows 1,000,000
per expression (PerCallLimit) and 10,000,000 per policy evaluation (RuntimeCELCostBudget). cel-cpp's Python API
exposes no such tracking and cannot be interrupted, so we bound the cost before running an expression:

    estimate = terms × N × L^(degree - 1)    (terms when degree is 0)

- degree: the deepest nesting of comprehensions (all, exists, exists_one, map, filter, and the list functions
  that walk a list: sum, min, max, indexOf, lastIndexOf, isSorted, join) in the expression's tree (after the
  policy's variables are inlined);
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

from admission.engines.cel.syntax.ast import Call, Expr, children

if TYPE_CHECKING:
    from admission.engines.cel.expr import Activation, Program

PER_EXPRESSION_LIMIT = 1_000_000
PER_POLICY_BUDGET = 10_000_000

_WALKERS = ("all", "exists", "exists_one", "map", "filter", "sum", "min", "max", "indexOf", "lastIndexOf",
            "isSorted", "join")


def static_shape(tree: Expr) -> tuple[int, int]:
    """(degree, terms) of an expression's tree: how deeply walker calls (`x.all(...)`, `x.sum()`, ...) nest in
    one another's arguments, and how many there are plus one. A call on a walker's result (`x.map(f).all(p)`)
    follows it rather than nesting in it."""
    terms = 1
    degree = 0
    stack: list[tuple[Expr, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Call) and node.target is not None and node.function in _WALKERS:
            terms += 1
            stack.append((node.target, depth))
            depth += 1
            degree = max(degree, depth)
            stack.extend((arg, depth) for arg in node.args)
        else:
            stack.extend((child, depth) for child in children(node))
    return degree, terms


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
