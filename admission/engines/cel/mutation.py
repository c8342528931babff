"""Applying a MutatingAdmissionPolicy's mutations to an object.

ApplyConfiguration: the expression's value (an `Object{...}` literal, read as a map) is merged into the object
as server-side apply merges an apply configuration, with the merge keys of the built-in types:
- maps (structs and map fields) are merged key by key, recursively;
- the lists that Kubernetes declares `listType=map` (containers, initContainers, volumes, env, volumeMounts,
  ports, ...: MAP_LISTS) merge item by item on their keys; items with a new key are appended in the order
  given;
- `listType=set` lists (finalizers) take the union;
- every other list is atomic: the apply configuration's list replaces the object's;
- a null value removes the field.
The API server finds list types in the resource's OpenAPI schema; for custom resources and kinds not listed
here every list is atomic, as for a schema-less object.

JSONPatch: the expression's value is a list of `JSONPatch{op, path, value, from}` (read as maps), applied in
order with RFC 6902 semantics (admission.patch), as the API server's JSON Patch library applies them: a `test`
that fails leaves the object as it was (the patch is not applied, and it is not an error); `replace` of a
missing member adds it; errors are worded as the API server words them (`JSON Patch: ...`).
"""

from __future__ import annotations

from typing import Any, cast

from admission.patch import PatchError, apply_operation, copy_document, parse_pointer
from admission.types import Object

# field name -> the key fields of its items (listType=map in the built-in types' schemas)
MAP_LISTS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "volumes": ("name",),
    "env": ("name",),
    "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",),
    "ports": ("containerPort", "protocol"),
    "imagePullSecrets": ("name",),
    "hostAliases": ("ip",),
    "resourceClaims": ("name",),
    "schedulingGates": ("name",),
    "readinessGates": ("conditionType",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
    "conditions": ("type",),
    "ownerReferences": ("uid",),
}
SET_LISTS = frozenset({"finalizers"})
# defaults the API server fills in for a missing key field before merging
_KEY_DEFAULTS = {"protocol": "TCP"}


class MutationError(ValueError):
    """A mutation's value that cannot be applied (not an object, a bad patch)."""


def apply_configuration(obj: Object, config: Any) -> Object:
    if not isinstance(config, dict):
        raise MutationError(f"an ApplyConfiguration expression must give an Object, not {type(config).__name__}")
    merged = _merge(obj, config, "")
    if not isinstance(merged, dict):
        raise MutationError("an ApplyConfiguration must leave an object")
    return merged


def _merge(base: Any, config: Any, field: str) -> Any:
    if isinstance(config, dict):
        out = dict(base) if isinstance(base, dict) else {}
        for key, value in config.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = _merge(out.get(key), value, str(key))
        return out
    if isinstance(config, list):
        config = [_plain(v) for v in config]
        if field in MAP_LISTS and isinstance(base, list) and all(isinstance(v, dict) for v in [*base, *config]):
            return _merge_keyed(base, config, MAP_LISTS[field])
        if field in SET_LISTS and isinstance(base, list):
            return [*base, *(v for v in config if v not in base)]
        return config
    return _plain(config)


def _key(item: dict[str, Any], keys: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(item.get(k, _KEY_DEFAULTS.get(k)) for k in keys)


def _merge_keyed(base: list[Any], config: list[Any], keys: tuple[str, ...]) -> list[Any]:
    out = list(base)
    index = {_key(item, keys): i for i, item in enumerate(out)}
    for item in config:
        k = _key(item, keys)
        if k in index:
            out[index[k]] = _merge(out[index[k]], item, "")
        else:
            index[k] = len(out)
            out.append(_merge(None, item, ""))
    return out


def _plain(value: Any) -> Any:
    """A value as JSON holds it: whole floats (CEL doubles that were JSON integers) become ints."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def json_patch(obj: Object, patches: Any) -> Object:
    if not isinstance(patches, list):
        raise MutationError(f"a JSONPatch expression must give a list of JSONPatch, not {type(patches).__name__}")
    ops: list[dict[str, Any]] = []
    for p in patches:
        if not isinstance(p, dict) or not isinstance(p.get("op"), str) or not isinstance(p.get("path"), str):
            raise MutationError(f"not a JSONPatch (op and path are required): {p!r}")
        unknown = set(p) - {"op", "path", "value", "from"}
        if unknown:
            raise MutationError(f"JSONPatch has no field {sorted(unknown)[0]!r}")
        ops.append({k: _plain(v) for k, v in p.items()})
    doc: Any = copy_document(obj)
    for op in ops:
        kind, path = op["op"], op["path"]
        try:
            tokens = parse_pointer(path)
        except PatchError as e:
            raise MutationError(f"JSON Patch: {e}") from None
        parent = _container(doc, tokens[:-1]) if tokens else doc
        if parent is _MISSING and kind in _MISSING_PARENT:
            raise MutationError(_MISSING_PARENT[kind].format(path=path))
        if kind == "test":
            try:
                doc = apply_operation(doc, op)
            except PatchError:
                return obj  # a test that fails: the API server leaves the object as it was, and no error
            continue
        if isinstance(parent, dict) and tokens and tokens[-1] not in parent:
            if kind == "replace":  # the API server's JSON Patch replaces a missing member by adding it
                op = {**op, "op": "add"}
            elif kind == "remove":
                raise MutationError(f"JSON Patch: error in remove for path: '{path}': Unable to remove nonexistent "
                                    f"key: {tokens[-1]}: missing value")
        try:
            doc = apply_operation(doc, op)
        except PatchError as e:
            raise MutationError(f"JSON Patch: {e}") from None
    if not isinstance(doc, dict):
        raise MutationError("a JSONPatch must leave an object")
    return cast(Object, doc)


# the API server's JSON Patch (evanphx/json-patch) when the parent of the path is missing
_MISSING_PARENT = {
    "add": 'JSON Patch: add operation does not apply: doc is missing path: "{path}": missing value',
    "replace": 'JSON Patch: replace operation does not apply: doc is missing path: "{path}": missing value',
    "remove": 'JSON Patch: remove operation does not apply: doc is missing path: "{path}": missing value',
    "test": "JSON Patch: test operation does not apply: is missing path: {path}: missing value",
}
_MISSING = object()


def _container(doc: Any, tokens: list[str]) -> Any:
    """What the pointer's tokens lead to (_MISSING when they lead nowhere)."""
    for token in tokens:
        if isinstance(doc, dict) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list) and token.isdigit() and int(token) < len(doc):
            doc = doc[int(token)]
        else:
            return _MISSING
    return doc
