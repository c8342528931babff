"""The rules of a ConstraintTemplate that do not read a constraint's parameters, evaluated once per request.

Each constraint gets its own copy of its template's Rego (parameters bound), so a helper rule such as

    input_containers contains c if { some c in input.review.object.spec.containers }

was evaluated once per constraint: 20 constraints built the same set 20 times. The engine evaluates a rule
once per query, so such rules move to one shared module per template, and each constraint's copy keeps
an alias of the same name (`input_containers := data.gkshared.t<hash>.input_containers`): same name,
same value, evaluated once.

A rule stays with the constraint when it reads, directly or through other rules and functions of the
template, anything a constraint changes: `input.parameters`, `input` as a whole (beyond `input.review`),
libs that are copied per constraint, other `data` than the inventory and shared libs. `violation` stays
too, and so do rules with reference heads (`a.b := 1`). Functions are not moved (the engine does not
remember their results), but the shared module gets a copy of those its rules call. The analysis is by
name, so a local variable named like a rule counts as using that rule: it only ever keeps more.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from admission.engines.rego import translate as tr

OUTPUT_RULES = frozenset({"violation"})


@dataclass(frozen=True)
class Split:
    root: str  # the shared module's package, e.g. gkshared.t0123456789ab
    shared: str  # its source (still in the template's package: the caller renames and re-packages it)
    kept: str  # the template with every shared rule replaced by an alias
    names: tuple[str, ...]  # the shared rules


@dataclass
class _Chunk:
    name: str  # "" for package and import lines
    start: int
    end: int  # token range [start, end)
    function: bool = False
    ref_head: bool = False


def _chunks(toks: list[tr.Tok], parents: list[int]) -> list[_Chunk]:
    """Top-level statements: a new one starts at each line whose first token is an identifier outside any
    bracket, except `else` (which continues the rule before it)."""
    starts: list[int] = []
    line_start = True
    for i, t in enumerate(toks):
        if t.kind == "nl":
            line_start = True
            continue
        if t.kind in ("ws", "comment"):
            continue
        if line_start and parents[i] == -1 and t.kind == "ident" and t.text != "else":
            starts.append(i)
        line_start = False
    chunks: list[_Chunk] = []
    for n, s in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(toks)
        word = toks[s].text
        if word in ("package", "import"):
            chunks.append(_Chunk("", s, end))
            continue
        k = s
        if word == "default":
            k = tr._sig(toks, s + 1)
            if k < 0 or toks[k].kind != "ident":
                return []
        after = tr._sig(toks, k + 1)
        nxt = toks[after].text if after >= 0 else ""
        chunks.append(_Chunk(toks[k].text, s, end, function=(after == k + 1 and nxt == "("), ref_head=(nxt == ".")))
    return chunks


def _seeds(toks: list[tr.Tok], start: int, end: int, libs_shared: bool, aliases: set[str]) -> bool:
    """Whether tokens [start, end) read something a constraint changes."""
    for i in range(start, end):
        t = toks[i]
        if t.kind != "ident" or (i > start and toks[i - 1].text == "."):
            continue
        if t.text == "input":
            if not (i + 2 < end and toks[i + 1].text == "." and toks[i + 2].text == "review"):
                return True
        elif t.text == "data":
            word = toks[i + 2].text if i + 2 < end and toks[i + 1].text == "." else ""
            if word != "inventory" and not (word == "lib" and libs_shared):
                return True
        elif t.text in aliases or t.text == "with":
            return True
    return False


def _import_aliases(toks: list[tr.Tok], chunk: _Chunk, libs_shared: bool) -> tuple[str, bool]:
    """(the name an import line binds, whether that name reads something a constraint changes)."""
    words = [t.text for t in toks[chunk.start : chunk.end] if t.kind not in ("ws", "nl", "comment")]
    if len(words) < 2 or words[0] != "import":
        return "", False
    path = words[1:]
    if "as" in path:
        alias = path[path.index("as") + 1] if path.index("as") + 1 < len(path) else ""
        path = path[: path.index("as")]
    else:
        alias = path[-1]
    dotted = "".join(path)
    if dotted.startswith(("rego.", "future.")):
        return "", False
    reads = not (
        dotted.startswith("input.review")
        or dotted.startswith("data.inventory")
        or (libs_shared and dotted.startswith("data.lib"))
    )
    return alias, reads


def _mentions(toks: list[tr.Tok], chunk: _Chunk, names: set[str]) -> set[str]:
    return {
        t.text
        for i, t in enumerate(toks[chunk.start : chunk.end], chunk.start)
        if t.kind == "ident" and t.text in names and not (i > 0 and toks[i - 1].text == ".")
    }


def split(src: str, libs_root: str | None) -> Split | None:
    """The shared rules of a template's translated (v1) Rego, or None when none can be shared.
    libs_root: the package root of the template's libs when they are shared by all its constraints."""
    toks = tr.tokenize(src)
    parents = tr._parents(toks)
    chunks = _chunks(toks, parents)
    if not chunks:
        return None
    libs_shared = libs_root is not None
    header = [c for c in chunks if not c.name]
    changing_aliases = set()
    for c in header:
        alias, reads = _import_aliases(toks, c, libs_shared)
        if alias and reads:
            changing_aliases.add(alias)
    rules = [c for c in chunks if c.name]
    names = {c.name for c in rules}
    dependent = {
        c.name
        for c in rules
        if c.name in OUTPUT_RULES or c.ref_head or _seeds(toks, c.start, c.end, libs_shared, changing_aliases)
    }
    uses = {c.name: set() for c in rules}  # type: dict[str, set[str]]
    for c in rules:
        uses[c.name] |= _mentions(toks, c, names) - {c.name}
    changed = True
    while changed:  # a rule using a dependent rule or function depends too
        changed = False
        for name, used in uses.items():
            if name not in dependent and used & dependent:
                dependent.add(name)
                changed = True
    functions = {c.name for c in rules if c.function}
    shared_rules = sorted(n for n in names - dependent - functions if not n.startswith("__"))
    if not shared_rules:
        return None
    # the functions the shared rules call, directly or through other functions
    needed: set[str] = set()
    todo = [n for n in shared_rules]
    while todo:
        n = todo.pop()
        for f in uses.get(n, set()) & functions:
            if f not in needed:
                needed.add(f)
                todo.append(f)
    keep_in_shared = set(shared_rules) | needed | {n for n in functions if n.startswith("__gk_")}
    shared_src = "".join(tr.render(toks[c.start : c.end]) for c in chunks if not c.name or c.name in keep_in_shared)
    digest = hashlib.sha256(f"{libs_root}\0{shared_src}".encode()).hexdigest()[:12]
    root = f"gkshared.t{digest}"
    kept: list[str] = []
    aliased: set[str] = set()
    for c in chunks:
        if c.name in shared_rules:
            if c.name not in aliased:
                aliased.add(c.name)
                kept.append(f"{c.name} := data.{root}.{c.name}\n\n")
            continue
        kept.append(tr.render(toks[c.start : c.end]))
    return Split(root, shared_src, "".join(kept), tuple(shared_rules))
