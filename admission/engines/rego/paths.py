"""Which parts of the input the policies can read, so the rest is left out of it.

regopy's input conversion costs about a microsecond per byte of JSON, and a request's object often carries
much that no policy reads (status, annotations, managedFields). `input_paths` collects the constant paths
under a root (`input.review`) that the modules refer to; a path ends where a reference stops being constant
(`input.review.object[k]`, `object.get(input.review.object, ...)`), and everything below its end is kept.
`prune` keeps only those parts of a value. A module that reads the root itself, or `input` whole, keeps
everything: `input_paths` returns None. References to `input` outside the root (`input.parameters`) are
not the root's business.
"""

from __future__ import annotations

from typing import Any

from admission.engines.rego import translate as tr

# a trie of keys; None marks where a path ends (the whole value below it is kept)
Paths = dict[str, "Paths | None"]


def _paths_in(src: str) -> list[tuple[str, ...]]:
    """Every reference rooted at `input`, as its constant keys (`input.a["b"].c[x]` -> ("a", "b", "c"))."""
    toks = [t for t in tr.tokenize(src) if t.kind not in ("ws", "nl", "comment")]
    found: list[tuple[str, ...]] = []
    for i, t in enumerate(toks):
        if t.kind != "ident" or t.text != "input" or (i > 0 and toks[i - 1].text == "."):
            continue
        keys: list[str] = []
        j = i + 1
        while j < len(toks):
            if toks[j].text == "." and j + 1 < len(toks) and toks[j + 1].kind == "ident":
                keys.append(toks[j + 1].text)
                j += 2
            elif (
                toks[j].text == "["
                and j + 2 < len(toks)
                and toks[j + 1].kind == "string"
                and toks[j + 2].text == "]"
            ):
                keys.append(toks[j + 1].text[1:-1])
                j += 3
            else:
                break
        keys.extend(_object_get_keys(toks, i, j))
        found.append(tuple(keys))
    return found


def _object_get_keys(toks: list[tr.Tok], start: int, end: int) -> list[str]:
    """`object.get(<ref>, "k", default)` reads only `<ref>.k` (a Gatekeeper idiom): the key(s) it adds to the
    path of the reference toks[start:end], or [] when the reference is not such a first argument."""
    if not (
        start >= 4
        and [t.text for t in toks[start - 4 : start]] == ["object", ".", "get", "("]
        and (start < 5 or toks[start - 5].text != ".")
        and end + 2 < len(toks)
        and toks[end].text == ","
    ):
        return []
    key = toks[end + 1]
    if key.kind == "string" and toks[end + 2].text == ",":
        return [key.text[1:-1]]
    if key.text == "[":  # a constant path: ["a", "b"]
        keys: list[str] = []
        k = end + 2
        while k + 1 < len(toks) and toks[k].kind == "string" and toks[k + 1].text in (",", "]"):
            keys.append(toks[k].text[1:-1])
            if toks[k + 1].text == "]":
                return keys if k + 2 < len(toks) and toks[k + 2].text == "," else []
            k += 2
    return []


def input_paths(sources: list[str], root: tuple[str, ...]) -> Paths | None:
    """The paths under `input.<root>` that the sources read, or None when they may read all of it."""
    trie: Paths = {}
    for src in sources:
        for path in _paths_in(src):
            if path[: len(root)] != root:
                if root[: len(path)] == path:  # a prefix of the root itself: everything below it
                    return None
                continue
            rest = path[len(root) :]
            if not rest:
                return None
            _insert(trie, rest)
    return trie


def _insert(trie: Paths, keys: tuple[str, ...]) -> None:
    node = trie
    for n, key in enumerate(keys):
        if key in node and node[key] is None:
            return  # a shorter path already keeps everything below
        if n == len(keys) - 1:
            node[key] = None
            return
        child = node.setdefault(key, {})
        assert child is not None
        node = child


def prune(value: Any, paths: Paths | None) -> Any:
    """The parts of value on the paths (a value where a path ends is kept whole)."""
    if paths is None or not isinstance(value, dict):
        return value
    return {k: prune(value[k], sub) for k, sub in paths.items() if k in value}
