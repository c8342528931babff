"""The JSONPatch a mutation produces: the diff of the original and the mutated object."""

from __future__ import annotations

from typing import Any, cast

import jsonpatch

from admission.types import Object, PatchOperation


def diff(original: Object, mutated: Object) -> list[PatchOperation]:
    """RFC 6902 operations that turn original into mutated; empty when they are equal."""
    if original == mutated:
        return []
    ops = jsonpatch.make_patch(original, mutated).patch
    return cast(list[PatchOperation], ops)


def apply(obj: Object, ops: list[dict[str, Any]]) -> Object:
    """Apply RFC 6902 operations to a copy of obj."""
    return cast(Object, jsonpatch.apply_patch(obj, ops, in_place=False))
