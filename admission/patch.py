"""The JSONPatch a mutation produces: the diff of the original and the mutated object."""

from __future__ import annotations

import copy
from typing import Any, cast

import jsonpatch

from admission.types import Object, PatchOperation


class _OrderedDiff(jsonpatch.DiffBuilder):
    """jsonpatch's diff, walking a mapping's keys in the documents' order rather than as sets: set order
    follows string hashing, which Python randomises per process, so the same request would get its
    operations in a different order from one worker to the next."""

    def _compare_dicts(self, path: str, src: dict[str, Any], dst: dict[str, Any]) -> None:
        for key in src:
            if key not in dst:
                self._item_removed(path, str(key), src[key])
        for key in dst:
            if key not in src:
                self._item_added(path, str(key), dst[key])
        for key in src:
            if key in dst:
                self._compare_values(path, key, src[key], dst[key])


def diff(original: Object, mutated: Object) -> list[PatchOperation]:
    """RFC 6902 operations that turn original into mutated; empty when they are equal. The same two
    documents always give the same operations in the same order."""
    if original == mutated:
        return []
    builder = _OrderedDiff(original, mutated, jsonpatch.JsonPatch.json_dumper, pointer_cls=jsonpatch.JsonPointer)
    builder._compare_values("", None, original, mutated)
    return cast(list[PatchOperation], [op for op in builder.execute()])


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
