"""Applying one mutation of a MutatingPolicy (as a MutatingAdmissionPolicy's) to the object.

- `JSONPatch`: the expression gives a list of JSONPatch{op, path, value} (maps here), applied in order
  with RFC 6902 semantics (admission.patch.apply); an empty list changes nothing.
- `ApplyConfiguration`: the expression gives an Object{...} (a map here) merged into the object as
  server-side apply merges an apply configuration: maps merge key by key, a list of maps that all carry a
  `name` merges item by item on it (containers, volumes, env, ...), other lists and scalars replace.
"""

from __future__ import annotations

from typing import Any

from admission.patch import PatchError, apply, copy_document
from admission.types import Object


def _plain(value: Any) -> Any:
    """A library value as a plain structure (a message's fields as a map)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    fields = getattr(value, "ListFields", None)
    if callable(fields):
        return {f.name: _plain(v) for f, v in fields()}
    return value


def apply_mutation(patch_type: str, obj: Object, value: Any) -> Object:
    """The object after one mutation's value. Raises ValueError/TypeError for a value of the wrong shape."""
    value = _plain(value)
    if patch_type == "JSONPatch":
        if value is None:
            return obj
        if not isinstance(value, list):
            raise TypeError(f"a JSONPatch expression must give a list of JSONPatch, not {type(value).__name__}")
        ops = []
        for op in value:
            if not isinstance(op, dict) or not op.get("op") or "path" not in op:
                raise ValueError(f"not a JSONPatch operation: {op!r}")
            ops.append(op)
        if not ops:
            return obj
        try:
            return apply(obj, ops)
        except PatchError as exc:
            raise ValueError(str(exc)) from None
    if patch_type == "ApplyConfiguration":
        if not isinstance(value, dict):
            raise TypeError(f"an ApplyConfiguration expression must give an Object, not {type(value).__name__}")
        merged = merge(copy_document(obj), value)
        if not isinstance(merged, dict):
            raise TypeError("an apply configuration must merge into an object")
        return merged
    raise ValueError(f"unknown patchType {patch_type!r}")


def merge(base: Any, patch: Any) -> Any:
    """patch merged into base (see the module's docstring); base is modified where it is a map."""
    if isinstance(patch, dict) and isinstance(base, dict):
        for key, value in patch.items():
            base[key] = merge(base[key], value) if key in base else copy_document(value)
        return base
    if isinstance(patch, list) and isinstance(base, list) and _named(patch) and _named(base):
        out = list(base)
        index = {item["name"]: i for i, item in enumerate(out)}
        for item in patch:
            if item["name"] in index:
                out[index[item["name"]]] = merge(out[index[item["name"]]], item)
            else:
                out.append(copy_document(item))
        return out
    return copy_document(patch)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items)
