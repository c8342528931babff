"""Leaving out of a value the parts no policy reads: a trie of read paths, and the pruning by it.

Both the Rego analysis (engines/rego/paths.py) and the CEL one (engines/cel/syntax/reads.py) describe what
their policies can read of the request as `Paths`, a trie of keys where `*` stands for every key of an object
and every element of an array, and None marks a path read whole (everything below it is kept). An empty
trie below a key keeps only that the key exists (`{}` for an object, the value itself otherwise). Converting
a request into an engine's values costs per value, so the engines convert only what `prune` keeps.

The analyses err on the side of keeping more: a path they cannot follow is read whole.
"""

from __future__ import annotations

from typing import Any

ANY = "*"
Path = tuple[str, ...]
# a trie of keys; None marks where a path ends (the whole value below it is kept)
Paths = dict[str, "Paths | None"]


def insert(trie: Paths, keys: tuple[str, ...], whole: bool = True) -> None:
    """Add a path: `whole` keeps everything below its end; otherwise only that it exists (what other
    paths below it keep)."""
    node = trie
    for n, key in enumerate(keys):
        if key in node and node[key] is None:
            return  # a shorter path already keeps everything below
        if n == len(keys) - 1 and whole:
            node[key] = None
            return
        child = node.setdefault(key, {})
        assert child is not None
        node = child


def merge(a: Paths, b: Paths) -> Paths:
    """Both tries' paths in one."""
    out: Paths = dict(a)
    for k, sub in b.items():
        if k not in out:
            out[k] = sub
        elif out[k] is None or sub is None:
            out[k] = None
        else:
            out[k] = merge(out[k], sub)  # type: ignore[arg-type]
    return out


def prune(value: Any, paths: Paths | None) -> Any:
    """The parts of value on the paths (a value where a path ends is kept whole). `*` stands for every key
    of an object and every element of an array."""
    if paths is None:
        return value
    if isinstance(value, list):
        if ANY not in paths:
            return value
        return [prune(v, paths[ANY]) for v in value]
    if not isinstance(value, dict):
        return value
    if ANY not in paths:
        return {k: prune(value[k], sub) for k, sub in paths.items() if k in value}
    every = paths[ANY]
    out = {}
    for k, v in value.items():
        if every is None or (k in paths and paths[k] is None):
            out[k] = v
            continue
        own = paths.get(k)
        out[k] = prune(v, merge(own, every) if own is not None else every)
    return out
