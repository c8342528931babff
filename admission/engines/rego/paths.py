"""Which parts of the input the policies can read, so the rest is left out of it.

The engine's input conversion costs a few µs per JSON value, and a request's object often carries much that
no policy reads (status, annotations, managedFields, a container's env and probes). `input_paths` gathers
the paths under a root (`input.review`) that the modules read, as flow.py follows them through variables
and rules: `*` for every key or element, and for each path whether the whole value below it is read or only
that it exists. `prune` keeps only those parts of a value. A module that reads the root itself, or `input`
whole, keeps everything: `input_paths` returns None. References to `input` outside the root
(`input.parameters`) are not the root's business.
"""

from __future__ import annotations

from typing import Any

from admission.engines.rego.flow import ANY, flow_paths

# a trie of keys; None marks where a path ends (the whole value below it is kept)
Paths = dict[str, "Paths | None"]


def input_paths(sources: list[str], root: tuple[str, ...]) -> Paths | None:
    """The paths under `input.<root>` that the sources read, or None when they may read all of it."""
    trie: Paths = {}
    for path, whole in flow_paths(sources):
        if path[: len(root)] != root:
            if root[: len(path)] == path and whole:  # a prefix of the root itself: everything below it
                return None
            continue
        rest = path[len(root) :]
        if not rest:
            if whole:
                return None
            continue
        _insert(trie, rest, whole)
    return trie


def _insert(trie: Paths, keys: tuple[str, ...], whole: bool = True) -> None:
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
        out[k] = prune(v, _merge(own, every) if own is not None else every)
    return out


def _merge(a: Paths, b: Paths) -> Paths:
    out: Paths = dict(a)
    for k, sub in b.items():
        if k not in out:
            out[k] = sub
        elif out[k] is None or sub is None:
            out[k] = None
        else:
            out[k] = _merge(out[k], sub)  # type: ignore[arg-type]
    return out
