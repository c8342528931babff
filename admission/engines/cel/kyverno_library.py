"""Kyverno's CEL library, where this engine implements it: `generator.Apply(namespace, objects)`.

A GeneratingPolicy's `generate[].expression` calls `generator.Apply(namespace, [objects])` to name the
resources to create in a namespace. Evaluation records them (collecting()) and the call returns true; the
webhook creates nothing (Kyverno creates them in the background, after admission): `test` compares them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from cel_expr_python import cel

from admission.engines.cel.expr import Library, Overload
from admission.types import Object

_COLLECTED: ContextVar[list[Object] | None] = ContextVar("generated", default=None)


@contextlib.contextmanager
def collecting(into: list[Object]) -> Iterator[None]:
    """Evaluate generate expressions inside: what generator.Apply names is appended to `into`."""
    token = _COLLECTED.set(into)
    try:
        yield
    finally:
        _COLLECTED.reset(token)


def _apply(_generator: Any, namespace: str, objects: list[Any]) -> bool:
    into = _COLLECTED.get()
    if into is None:
        raise RuntimeError("generator.Apply is only available to a GeneratingPolicy's generate expressions")
    for obj in objects:
        if not isinstance(obj, dict):
            raise TypeError(f"generator.Apply: each object must be a map, not {type(obj).__name__}")
        made = dict(obj)
        meta = dict(made.get("metadata") or {})
        if namespace:
            meta["namespace"] = namespace
        made["metadata"] = meta
        into.append(made)
    return True


GENERATOR = Library("kyverno.generator", (
    Overload("Apply", "kyverno_generator_apply", cel.Type.BOOL,
             (cel.Type.DYN, cel.Type.STRING, cel.Type.List(cel.Type.DYN)), True, _apply),
))

# The value bound to `generator` (its methods are the library's).
GENERATOR_VALUE: dict[str, Any] = {}

KYVERNO_LIBRARIES: tuple[Library, ...] = (GENERATOR,)
