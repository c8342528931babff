"""Kyverno mutations: patchStrategicMerge (with its anchors) and patchesJson6902.

patchStrategicMerge is first pre-processed against the resource as Kyverno does:
- `+(key)` adds the key only when the resource lacks it;
- `(key)` conditions: in a mapping, a failed condition drops the whole patch; in a list of mappings the
  element is applied to each resource element that satisfies it (matched by `name`);
- `<(key)` global conditions: if no element satisfies one, the whole patch is dropped;
then anchors are removed and the result merged into the resource (mappings merge, `null` deletes a key,
lists of mappings merge by their key such as `name` or `mountPath`, other lists are replaced).
A mutation that changes nothing is a skip ("no patches applied").
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import yaml

from admission.engines.yaml.policy import anchor_of
from admission.patch import apply_operation, copy_document, format_pointer, parse_pointer
from admission.results import Status
from admission.types import Object

if TYPE_CHECKING:
    from admission.engines.yaml.evaluator import Outcome

CONDITION, GLOBAL, ADD = "(", "<(", "+("


class ConditionFailed(Exception):
    """A conditional anchor did not match."""


class GlobalConditionFailed(Exception):
    """A global anchor did not match."""


def mutate_resource(spec: dict[str, Any], variables: Any, obj: Object, *, in_place: bool = False) -> Outcome:
    """Apply a rule's (or foreach entry's) patch to obj. in_place: obj is the caller's own working copy,
    which patchesJson6902 may change in place (a foreach applies every element's patch to one copy, not
    to a copy per element); the outcome's status is then PASS whenever an operation ran, and its object
    the working copy. A strategic merge never changes obj."""
    from admission.engines.yaml.evaluator import Outcome

    try:
        psm = spec.get("patchStrategicMerge")
        ops = spec.get("patchesJson6902")
        psm = variables.substitute(copy.deepcopy(psm)) if psm is not None else None
        ops = _substitute_operations(ops, variables) if ops is not None else None
    except Exception as exc:
        return Outcome(Status.ERROR, f"variable substitution failed: {exc}")
    try:
        if psm is not None:
            patched = strategic_merge(obj, psm)
        elif ops:
            if in_place:
                patched, ran = json6902_in_place(obj, ops)
                if not ran:
                    return Outcome(Status.SKIP, "no patches applied", patched)
                return Outcome(Status.PASS, "resource patched", patched)
            patched = json6902(obj, ops)
        else:
            return Outcome(Status.ERROR, "empty mutate rule")
    except Exception as exc:
        return Outcome(Status.ERROR, f"failed to patch resource: {exc}")
    if patched == obj:
        return Outcome(Status.SKIP, "no patches applied", obj)
    return Outcome(Status.PASS, "resource patched", patched)


# -- patchesJson6902 --------------------------------------------------------------------------------


def json6902(obj: Object, ops: Any) -> Object:
    """RFC 6902 operations (a YAML/JSON string or a list) with Kyverno's options: negative array indices
    count from the end, an add creates missing parents, a remove of a missing path does nothing.
    obj is left as it is: the operations apply to a copy."""
    doc, _ = json6902_in_place(copy_document(obj), ops)
    return doc


def json6902_in_place(doc: Any, ops: Any) -> tuple[Any, bool]:
    """json6902 on doc itself (changed in place; the root is returned, a new one if an operation replaced
    it), and whether any operation ran (a remove of a missing path does not). Values added are copies."""
    if isinstance(ops, str):
        ops = parse_operations(ops)
    if not isinstance(ops, list):
        raise ValueError("patchesJson6902 must be a list of operations")
    ran = False
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ValueError(f"invalid JSON Patch operation: {json.dumps(op, default=str)}")
        parts = parse_pointer(str(op["path"]))
        if op["op"] == "add":
            _ensure_parents(doc, parts)
        parts = _resolve_negative(doc, parts, final_add=op["op"] == "add")
        if op["op"] == "remove" and not _exists(doc, parts):
            continue
        doc = apply_operation(doc, dict(op, path=format_pointer(parts)))
        ran = True
    return doc, ran


def _substitute_operations(ops: Any, variables: Any) -> Any:
    """patchesJson6902 with its variables substituted. Kyverno substitutes in the text, then parses it;
    a foreach's text differs per element (`{{elementIndex}}` in the paths), and parsing YAML per element
    costs milliseconds. So when every variable of the text is inside a string of its parsed operations,
    the text is parsed once and the variables substituted in those strings, provided each string comes out
    a plain JSON pointer (`/` and letters, digits, `._~-`): such a string reads back the same from the
    substituted text, so the operations are those Kyverno's order would give. Anything else takes the
    text path."""
    if isinstance(ops, str) and "{{" in ops:
        template = _template(ops)
        if template is not None:
            parsed = json.loads(template)
            try:
                if _substitute_pointers(parsed, variables):
                    return parsed
            except Exception:
                pass  # the text path reports the error
    return variables.substitute(ops)


_POINTER = re.compile(r"/[A-Za-z0-9._~/-]*")


@lru_cache(maxsize=256)
def _template(text: str) -> str | None:
    """The operations text parsed (as JSON) when all its variables are inside strings of the result."""
    try:
        parsed = yaml.safe_load(text)
        kept = json.dumps(parsed)
    except Exception:
        return None
    if not isinstance(parsed, list) or json.loads(kept) != parsed:
        return None
    found = 0
    stack: list[Any] = [parsed]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if any("{{" in str(k) for k in node):
                return None
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            found += node.count("{{")
    return kept if found == text.count("{{") else None


def _substitute_pointers(node: Any, variables: Any) -> bool:
    """Substitute the variables of node's strings in place; False when one does not give a pointer."""
    stack: list[Any] = [node]
    while stack:
        current = stack.pop()
        items = current.items() if isinstance(current, dict) else enumerate(current)
        for key, value in list(items):
            if isinstance(value, dict | list):
                stack.append(value)
            elif isinstance(value, str) and "{{" in value:
                out = variables.substitute(value)
                if not isinstance(out, str) or not _POINTER.fullmatch(out):
                    return False
                current[key] = out
    return True


def parse_operations(text: str) -> Any:
    """patchesJson6902 text as YAML (JSON is YAML), a fresh structure each call. The same texts come back
    request after request (a foreach entry's, per element index), so each is parsed once and kept as JSON."""
    if len(text) > 16384:  # not kept: texts this long are not a policy's own
        return yaml.safe_load(text)
    kept = _as_json(text)
    return json.loads(kept) if kept is not None else yaml.safe_load(text)


@lru_cache(maxsize=1024)
def _as_json(text: str) -> str | None:
    """The parsed text as JSON, or None when JSON would not give it back as YAML read it (dates, ...)."""
    parsed = yaml.safe_load(text)
    try:
        kept = json.dumps(parsed)
    except (TypeError, ValueError):
        return None
    return kept if json.loads(kept) == parsed else None


def _index(part: str) -> int | None:
    try:
        return int(part)
    except ValueError:
        return None


def _resolve_negative(doc: Any, parts: list[str], *, final_add: bool) -> list[str]:
    out: list[str] = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(doc, list):
            idx = _index(part)
            if idx is not None and idx < 0:
                idx += len(doc) + (1 if last and final_add else 0)
                part = str(max(idx, 0))
            if not last:
                j = _index(part)
                doc = doc[j] if j is not None and 0 <= j < len(doc) else None
        elif isinstance(doc, dict) and not last:
            doc = doc.get(part)
        out.append(part)
    return out


def _exists(doc: Any, parts: list[str]) -> bool:
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and _index(part) is not None and 0 <= int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return False
    return True


def _container_for(part: str) -> Any:
    return [] if part == "-" or _index(part) is not None else {}


def _ensure_parents(doc: Any, parts: list[str]) -> None:
    for i, part in enumerate(parts[:-1]):
        nxt = parts[i + 1]
        if isinstance(doc, dict):
            if doc.get(part) is None:
                doc[part] = _container_for(nxt)
            doc = doc[part]
        elif isinstance(doc, list):
            idx = len(doc) if part == "-" else _index(part)
            if idx is None:
                return
            if idx < 0:
                idx += len(doc)
            if idx == len(doc) or (not doc and idx <= 0):
                doc.append(_container_for(nxt))
                idx = len(doc) - 1
            if not 0 <= idx < len(doc):
                return
            doc = doc[idx]
        else:
            return


# -- patchStrategicMerge ------------------------------------------------------------------------------


def strategic_merge(obj: Object, patch: Any) -> Object:
    try:
        patch = preprocess(obj, patch)
    except (ConditionFailed, GlobalConditionFailed):
        patch = {}
    merged = merge(obj, patch)
    result: Object = merged if isinstance(merged, dict) else obj
    return result


def preprocess(obj: Object, patch: Any) -> Any:
    """The patch with its anchors resolved against obj (a new structure). Raises ConditionFailed or
    GlobalConditionFailed when a condition outside a list does not hold: then nothing is patched."""
    patch = copy.deepcopy(patch)
    _walk(patch, obj)
    if isinstance(patch, dict):
        _delete_condition_elements(patch)
    return patch


def _kind(key: Any) -> str | None:
    a = anchor_of(str(key))
    return a[0] if a else None


def _is_condition(key: Any) -> bool:
    return _kind(key) in (CONDITION, GLOBAL)


def _walk(pattern: Any, resource: Any) -> None:
    if isinstance(pattern, dict):
        _walk_map(pattern, resource)
    elif isinstance(pattern, list) and pattern and isinstance(pattern[0], dict):
        _walk_list_of_maps(pattern, resource)


def _walk_map(pattern: dict[str, Any], resource: Any) -> None:
    _handle_add_if_absent(pattern, resource)
    _check_conditions(pattern, resource)
    for key in list(pattern):
        if _kind(key) is None:
            value = resource.get(key) if isinstance(resource, dict) else None
            _walk(pattern[key], value)


def _handle_add_if_absent(pattern: Any, resource: Any) -> int:
    if not isinstance(pattern, dict):
        return 0
    keys = [k for k in pattern if _kind(k) == ADD]
    for key in keys:
        bare = anchor_of(key)[1]  # type: ignore[index]
        value = pattern.pop(key)
        if not (isinstance(resource, dict) and bare in resource):
            pattern[bare] = value
    return len(keys)


def _check_conditions(pattern: dict[str, Any], resource: Any) -> None:
    for which, error in ((GLOBAL, GlobalConditionFailed), (CONDITION, ConditionFailed)):
        for key in [k for k in pattern if _kind(k) == which]:
            bare = anchor_of(key)[1]  # type: ignore[index]
            if not isinstance(resource, dict) or bare not in resource:
                raise error(f"could not find {bare!r} in the resource")
            if _handle_add_if_absent(pattern[key], resource[bare]) > 0:
                continue
            if not _condition_holds(pattern[key], resource[bare]):
                raise error(f"condition {key} not met")


def _condition_holds(pattern: Any, value: Any) -> bool:
    from admission.engines.yaml.pattern import match_pattern

    return match_pattern(value, pattern).status == "pass"


def _has_anchors(node: Any, wanted: Callable[[str | None], bool]) -> bool:
    if isinstance(node, dict):
        for key, value in node.items():
            if _kind(key) is not None and wanted(_kind(key)):
                return True
            if value is not None and _has_anchors(value, wanted):
                return True
        return False
    if isinstance(node, list):
        return any(_has_anchors(e, wanted) for e in node)
    if isinstance(node, str):
        return _is_condition(node)
    return False


def _any_anchor(kind: str | None) -> bool:
    return kind in (CONDITION, GLOBAL, ADD)


def _walk_list_of_maps(pattern: list[Any], resource: Any) -> None:
    elements = resource if isinstance(resource, list) else []
    for element in list(pattern):
        if not _has_anchors(element, _any_anchor):
            continue
        has_global = _has_anchors(element, lambda k: k == GLOBAL)
        global_passed = False
        last_global: GlobalConditionFailed | None = None
        candidate = copy.deepcopy(element)
        for r in elements:
            try:
                _walk(candidate, r)
            except ConditionFailed:
                continue
            except GlobalConditionFailed as exc:
                last_global = exc
                continue
            if has_global:
                global_passed = True
            else:
                _add_named(pattern, candidate, r)
        if resource is None:
            try:
                _walk(candidate, None)
                if has_global:
                    global_passed = True
            except ConditionFailed:
                continue
        if not global_passed and last_global is not None:
            raise last_global


def _add_named(pattern: list[Any], candidate: Any, resource_element: Any) -> None:
    """A satisfied conditional element becomes a patch element for that resource element, by name."""
    name = resource_element.get("name") if isinstance(resource_element, dict) else None
    if not name:
        return
    node = copy.deepcopy(candidate)
    if _delete_anchors(node, True, False):
        return
    if isinstance(node, dict):
        node["name"] = name
        pattern.append(node)


def _delete_condition_elements(pattern: dict[str, Any]) -> None:
    for key in list(pattern):
        if _delete_anchors(pattern[key], _is_condition(key), False):
            del pattern[key]


def _delete_anchors(node: Any, delete_scalar: bool, traverse: bool) -> bool:
    """Remove anchors; True when the node held only anchors and must go from the patch."""
    if isinstance(node, dict):
        return _delete_anchors_in_map(node, traverse)
    if isinstance(node, list):
        return _delete_anchors_in_list(node, traverse)
    if node is None:
        return False
    return delete_scalar


def _delete_anchors_in_map(node: dict[str, Any], traverse: bool) -> bool:
    kept_anchor = False
    for key in [k for k in node if _is_condition(k)]:
        if _delete_anchors(node[key], True, traverse):
            del node[key]
        else:
            kept_anchor = True
    if kept_anchor:
        for key in [k for k in node if _is_condition(k)]:
            node[anchor_of(key)[1]] = node.pop(key)  # type: ignore[index]
    need_delete = True
    for key in list(node):
        if _delete_anchors(node[key], False, traverse):
            del node[key]
        else:
            need_delete = False
    return need_delete


def _delete_anchors_in_list(node: list[Any], traverse: bool) -> bool:
    was_empty = not node
    kept: list[Any] = []
    for element in node:
        if _has_anchors(element, _any_anchor):
            delete = True
            if traverse and isinstance(element, dict):
                delete = _delete_anchors(element, True, traverse)
        else:
            delete = _delete_anchors(element, False, traverse)
        if not delete:
            kept.append(element)
    node[:] = kept
    return not node and not was_empty


# Keys by which lists of mappings are merged when no schema says otherwise (kustomize's defaults).
MERGE_KEYS = ("mountPath", "devicePath", "ip", "type", "topologyKey", "name", "containerPort")
_REPLACE_LISTS = frozenset({"tolerations", "args", "command", "finalizers"})


def merge(base: Any, patch: Any, field: str = "") -> Any:
    """A strategic merge of patch into base."""
    if isinstance(patch, dict) and isinstance(base, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value, str(key))
            else:
                out[key] = _without_nulls(value)
        return out
    if isinstance(patch, list) and isinstance(base, list) and field not in _REPLACE_LISTS:
        key = _merge_key(base, patch)
        if key is not None:
            # kustomize merges with new elements first: the patch's elements in its order (merged with the
            # resource's element of the same key), then the resource's elements the patch does not name
            merged: dict[str, Any] = {}
            existing = {str(item.get(key)): item for item in base}
            for item in patch:
                k = str(item.get(key))
                if k in merged:
                    merged[k] = merge(merged[k], item, "")
                elif k in existing:
                    merged[k] = merge(existing[k], item, "")
                else:
                    merged[k] = _without_nulls(item)
            return list(merged.values()) + [item for item in base if str(item.get(key)) not in merged]
    return _without_nulls(patch)


def _merge_key(base: list[Any], patch: list[Any]) -> str | None:
    if not patch or not all(isinstance(x, dict) for x in patch + base):
        return None
    for key in MERGE_KEYS:
        if all(key in x for x in patch) and all(key in x for x in base):
            return key
    return None


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
