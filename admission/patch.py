"""JSON Patch (RFC 6902) of our own: the diff of the original and the mutated object, and applying one.

diff(original, mutated) is deterministic (mapping keys are walked in the documents' order, never as sets,
so every process gives the same operations in the same order) and costs time linear in the size of the
two documents:

- a mapping: `remove` for each key only the original has (original's order), `add` for each key only the
  mutated one has (its order), then each common key's values diffed recursively (original's order);
- a list of the same length: each element diffed with the one at its index;
- a list whose length changed: the elements equal at the front and at the back are kept; between them,
  elements are diffed in place pairwise and the difference in length is `add`/`remove` operations, so
  appending gives `add`s at the end and removing leading, middle or trailing elements gives `remove`s,
  never a `replace` of every element that follows. Equality of list elements is decided through a
  per-diff table that numbers each distinct subtree once (hash-consing), so no subtree is compared more
  than a constant number of times;
- JSON types are distinct: `true` is not `1`, `1` is not `1.0` (a `replace` turns one into the other).

apply(obj, ops) implements RFC 6902 (add, remove, replace, move, copy, test; `-` appends) on a copy of obj;
it raises PatchError (a ValueError) naming the operation and the path when an operation does not apply.
"""

from __future__ import annotations

import copy
import math
from typing import Any, cast

import orjson

from admission.types import Object, PatchOperation


class PatchError(ValueError):
    """A JSON Patch operation that does not apply (or is malformed)."""


# -- JSON pointers (RFC 6901) --------------------------------------------------------------------------


def escape(token: str) -> str:
    if "~" not in token and "/" not in token:
        return token
    return token.replace("~", "~0").replace("/", "~1")


def unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of a JSON pointer ("" is the whole document)."""
    if not isinstance(pointer, str):
        raise PatchError(f"a JSON pointer must be a string, got {type(pointer).__name__}")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f"JSON pointer {pointer!r} must be empty or start with '/'")
    tokens = pointer[1:].split("/")
    if "~" not in pointer:
        return tokens
    for token in tokens:
        i = token.find("~")
        while i != -1:
            if i + 1 >= len(token) or token[i + 1] not in "01":
                raise PatchError(f"JSON pointer {pointer!r} has an invalid escape ('~' must be followed by 0 or 1)")
            i = token.find("~", i + 2)
    return [unescape(t) for t in tokens]


def format_pointer(tokens: list[str]) -> str:
    return "".join("/" + escape(str(t)) for t in tokens)


# -- diff ----------------------------------------------------------------------------------------------


def diff(original: Object, mutated: Object) -> list[PatchOperation]:
    """RFC 6902 operations that turn original into mutated; empty when they are equal. The same two
    documents always give the same operations in the same order. Operation values are the mutated
    document's own subtrees (not copies)."""
    if original is mutated or _same_json_text(original, mutated):
        return []
    ops: list[dict[str, Any]] = []
    _Differ().value(original, mutated, "", ops)
    return cast(list[PatchOperation], ops)


def _same_json_text(a: Any, b: Any) -> bool:
    """Equal as JSON, decided in C: equal for Python (which takes 1 and True and 1.0 for one another) and
    the same JSON text (which does not). False when unsure (what orjson cannot write)."""
    try:
        return bool(a == b) and orjson.dumps(a) == orjson.dumps(b)
    except (orjson.JSONEncodeError, TypeError, ValueError):
        return False


class _Differ:
    def __init__(self) -> None:
        # each distinct subtree's number: structurally equal subtrees (JSON types distinguished) get the same
        # one. _memo maps a dict's or list's id to its number, _keep keeps those objects alive meanwhile.
        self._table: dict[Any, int] = {}
        self._memo: dict[int, int] = {}
        self._keep: list[Any] = []

    def number(self, x: Any) -> int:
        t = type(x)
        if t is dict or t is list:
            found = self._memo.get(id(x))
            if found is not None:
                return found
            if t is dict:
                key: Any = ("{",) + tuple(item for k, v in x.items()
                                          for item in (k if type(k) is str else (type(k), k), self.number(v)))
            else:
                key = ("[",) + tuple(self.number(v) for v in x)
        elif t is float:
            key = (float, repr(x))  # 0.0 and -0.0 differ; nan is itself
        else:
            try:
                key = (t, x)
                hash(key)
            except TypeError:  # not JSON: only equal to itself
                self._keep.append(x)
                key = ("id", id(x))
        n = self._table.setdefault(key, len(self._table))
        if t is dict or t is list:
            self._memo[id(x)] = n
            self._keep.append(x)
        return n

    def value(self, a: Any, b: Any, path: str, ops: list[dict[str, Any]]) -> None:
        if a is b:
            return
        ta, tb = type(a), type(b)
        if ta is dict and tb is dict:
            self.mapping(a, b, path, ops)
        elif ta is list and tb is list:
            self.list(a, b, path, ops)
        elif not _same_scalar(a, b):
            ops.append({"op": "replace", "path": path, "value": b})

    def mapping(self, a: dict[Any, Any], b: dict[Any, Any], path: str, ops: list[dict[str, Any]]) -> None:
        for key in a:
            if key not in b:
                ops.append({"op": "remove", "path": f"{path}/{escape(str(key))}"})
        for key in b:
            if key not in a:
                ops.append({"op": "add", "path": f"{path}/{escape(str(key))}", "value": b[key]})
        for key, va in a.items():
            if key in b:
                vb = b[key]
                if va is vb:
                    continue
                self.value(va, vb, f"{path}/{escape(str(key))}", ops)

    def list(self, a: list[Any], b: list[Any], path: str, ops: list[dict[str, Any]]) -> None:
        la, lb = len(a), len(b)
        if la == lb:  # nothing added or removed: each element is diffed with the one at its index
            for i in range(la):
                if a[i] is not b[i]:
                    self.value(a[i], b[i], f"{path}/{i}", ops)
            return
        number = self.number
        p = 0  # equal elements at the front
        while p < la and p < lb and (a[p] is b[p] or number(a[p]) == number(b[p])):
            p += 1
        s = 0  # equal elements at the back, not overlapping those at the front
        while la - s > p and lb - s > p and (a[la - 1 - s] is b[lb - 1 - s] or number(a[la - 1 - s]) == number(b[lb - 1 - s])):
            s += 1
        m, n = la - s - p, lb - s - p  # the differing middles: a[p:p+m] becomes b[p:p+n]
        paired = min(m, n)
        for t in range(paired):  # changed in place
            self.value(a[p + t], b[p + t], f"{path}/{p + t}", ops)
        at = p + paired
        for i in range(at + m - paired - 1, at - 1, -1):  # removed: from the highest index down
            ops.append({"op": "remove", "path": f"{path}/{i}"})
        for t in range(paired, n):  # added
            ops.append({"op": "add", "path": f"{path}/{p + t}", "value": b[p + t]})


def _same_scalar(a: Any, b: Any) -> bool:
    """Equal as JSON values: the same type (true is not 1, 1 is not 1.0) and the same value."""
    t = type(a)
    if t is not type(b):
        return False
    if t is float:
        if a != a:
            return bool(b != b)  # nan
        return bool(a == b and math.copysign(1.0, a) == math.copysign(1.0, b))
    try:
        return bool(a == b)
    except Exception:
        return a is b


def json_equal(a: Any, b: Any) -> bool:
    """RFC 6902 `test` equality: numbers by value (1 == 1.0), booleans are not numbers, mappings by their
    members whatever the order, lists element by element."""
    stack = [(a, b)]
    while stack:
        x, y = stack.pop()
        if x is y:
            continue
        tx, ty = type(x), type(y)
        if tx is dict:
            if ty is not dict or len(x) != len(y):
                return False
            for k, v in x.items():
                if k not in y:
                    return False
                stack.append((v, y[k]))
        elif tx is list:
            if ty is not list or len(x) != len(y):
                return False
            stack.extend(zip(x, y, strict=True))
        elif tx is bool or ty is bool:
            if tx is not ty or x != y:
                return False
        elif tx in (int, float) and ty in (int, float):
            if x != y:
                return False
        elif tx is not ty or x != y:
            return False
    return True


# -- apply ---------------------------------------------------------------------------------------------


def apply(obj: Object, ops: list[dict[str, Any]]) -> Object:
    """Apply RFC 6902 operations to a copy of obj (obj is left as it is). Raises PatchError."""
    if not isinstance(ops, list):
        raise PatchError("a JSON Patch must be a list of operations")
    doc: Any = copy_document(obj)
    for op in ops:
        doc = apply_operation(doc, op)
    return cast(Object, doc)


_OPS = ("add", "remove", "replace", "move", "copy", "test")


def apply_operation(doc: Any, op: Any) -> Any:
    """Apply one operation to doc in place; returns the document (a new one when the root is replaced).
    Values added are copies of the operation's."""
    if not isinstance(op, dict):
        raise PatchError(f"a JSON Patch operation must be a mapping, got {type(op).__name__}")
    kind = op.get("op")
    if kind not in _OPS:
        raise PatchError(f"unknown JSON Patch operation {kind!r} (expected one of {', '.join(_OPS)})")
    if "path" not in op:
        raise PatchError(f"{kind} operation without a 'path'")
    path = op["path"]
    tokens = parse_pointer(path)
    if kind in ("add", "replace", "test") and "value" not in op:
        raise PatchError(f"{kind} {path}: operation without a 'value'")
    if kind == "add":
        return _add(doc, tokens, copy_document(op["value"]), f"add {path}")
    if kind == "remove":
        if not tokens:
            raise PatchError(f"remove {path!r}: cannot remove the whole document")
        _remove(doc, tokens, f"remove {path}")
        return doc
    if kind == "replace":
        value = copy_document(op["value"])
        if not tokens:
            return value
        parent, last = _parent(doc, tokens, f"replace {path}")
        if isinstance(parent, dict):
            if last not in parent:
                raise PatchError(f"replace {path}: member {last!r} does not exist")
            parent[last] = value
        else:
            parent[_list_index(parent, last, f"replace {path}")] = value
        return doc
    if kind == "test":
        if not json_equal(_get(doc, tokens, f"test {path}"), op["value"]):
            raise PatchError(f"test {path}: the value there is not the expected one")
        return doc
    if "from" not in op:
        raise PatchError(f"{kind} {path}: operation without a 'from'")
    source = op["from"]
    from_tokens = parse_pointer(source)
    where = f"{kind} from {source} to {path}"
    if kind == "copy":
        return _add(doc, tokens, copy_document(_get(doc, from_tokens, where)), where)
    if tokens == from_tokens:
        _get(doc, from_tokens, where)  # must exist
        return doc
    if tokens[:len(from_tokens)] == from_tokens:
        raise PatchError(f"{where}: cannot move a value into one of its own children")
    if not from_tokens:
        raise PatchError(f"{where}: cannot move the whole document")
    value = _remove(doc, from_tokens, where)
    return _add(doc, tokens, value, where)


def _is_index(token: str) -> bool:
    return token.isdigit() and token.isascii() and (token == "0" or token[0] != "0")


def _list_index(lst: list[Any], token: str, where: str) -> int:
    if not _is_index(token):
        raise PatchError(f"{where}: {token!r} is not a list index")
    i = int(token)
    if i >= len(lst):
        raise PatchError(f"{where}: index {i} is out of range (the list has {len(lst)} elements)")
    return i


def _child(node: Any, token: str, where: str) -> Any:
    if isinstance(node, dict):
        if token not in node:
            raise PatchError(f"{where}: member {token!r} does not exist")
        return node[token]
    if isinstance(node, list):
        return node[_list_index(node, token, where)]
    raise PatchError(f"{where}: cannot look up {token!r} in a {_json_type(node)}")


def _get(doc: Any, tokens: list[str], where: str) -> Any:
    node = doc
    for token in tokens:
        node = _child(node, token, where)
    return node


def _parent(doc: Any, tokens: list[str], where: str) -> tuple[Any, str]:
    parent = _get(doc, tokens[:-1], where)
    if not isinstance(parent, dict | list):
        raise PatchError(f"{where}: the parent is a {_json_type(parent)}, not an object or array")
    return parent, tokens[-1]


def _add(doc: Any, tokens: list[str], value: Any, where: str) -> Any:
    if not tokens:
        return value
    parent, last = _parent(doc, tokens, where)
    if isinstance(parent, dict):
        parent[last] = value
    elif last == "-":
        parent.append(value)
    else:
        if not _is_index(last):
            raise PatchError(f"{where}: {last!r} is not a list index")
        i = int(last)
        if i > len(parent):
            raise PatchError(f"{where}: index {i} is out of range (the list has {len(parent)} elements)")
        parent.insert(i, value)
    return doc


def _remove(doc: Any, tokens: list[str], where: str) -> Any:
    parent, last = _parent(doc, tokens, where)
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"{where}: member {last!r} does not exist")
        return parent.pop(last)
    return parent.pop(_list_index(parent, last, where))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


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
