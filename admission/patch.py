"""The JSONPatch a mutation produces: the diff of the original and the mutated object."""

from __future__ import annotations

import copy
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


def copy_document(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars), several times quicker than copy.deepcopy;
    anything else in it is deep-copied as usual. Unlike deepcopy, a mapping reached twice is copied twice."""
    kind = type(value)
    if kind is dict:
        return {k: copy_document(v) for k, v in value.items()}
    if kind is list:
        return [copy_document(v) for v in value]
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    return copy.deepcopy(value)
