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
    root: str  # the shared module's package, e.g. gkshared.t0123456789ab ("" when nothing is shared)
    shared: str  # its source (still in the template's package: the caller renames and re-packages it)
    kept: str  # the template with every shared rule replaced by an alias
    names: tuple[str, ...]  # the shared rules


_Chunk = tr.Statement


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
    found = tr.imported(toks, chunk)
    if found is None or found[1][0] in ("rego", "future"):
        return "", False
    alias, path = found
    dotted = ".".join(path)
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


@dataclass
class _Analysis:
    toks: list[tr.Tok]
    parents: list[int]
    chunks: list[_Chunk]
    names: set[str]  # rules and functions the module defines
    dependent: set[str]  # those reading something a constraint changes
    uses: dict[str, set[str]]  # the rules and functions each one mentions
    functions: set[str]
    aliases: set[str]  # names bound by imports


def _analyze(src: str, libs_shared: bool) -> _Analysis | None:
    toks = tr.tokenize(src)
    parents = tr._parents(toks)
    chunks = tr.statements(toks, parents)
    if not chunks:
        return None
    changing_aliases: set[str] = set()
    aliases: set[str] = set()
    for c in chunks:
        if c.name:
            continue
        alias, reads = _import_aliases(toks, c, libs_shared)
        if alias:
            aliases.add(alias)
            if reads:
                changing_aliases.add(alias)
    rules = [c for c in chunks if c.name]
    names = {c.name for c in rules}
    dependent = {
        c.name
        for c in rules
        if c.name in OUTPUT_RULES or c.ref_head or _seeds(toks, c.start, c.end, libs_shared, changing_aliases)
    }
    uses: dict[str, set[str]] = {c.name: set() for c in rules}
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
    return _Analysis(toks, parents, chunks, names, dependent, uses, functions, aliases - changing_aliases)


def split(src: str, libs_root: str | None) -> Split | None:
    """The shared rules of a template's translated (v1) Rego (with its hoisted expressions), or None when the
    template is best left as it is.
    libs_root: the package root of the template's libs when they are shared by all its constraints."""
    libs_shared = libs_root is not None
    original = src
    src = hoist_invariants(src, libs_shared)
    a = _analyze(src, libs_shared)
    if a is None:
        return None
    toks, chunks, uses, functions = a.toks, a.chunks, a.uses, a.functions
    shared_rules = sorted(
        n for n in a.names - a.dependent - functions if not n.startswith("__") or n.startswith(HOISTED)
    )
    if not shared_rules:
        # nothing to share; the hoisted expressions still save work within each constraint
        return Split("", "", src, ()) if src != original else None
    # the functions the shared rules call, directly or through other functions
    needed: set[str] = set()
    todo = list(shared_rules)
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


HOISTED = "__hoisted_"
KEYWORDS = frozenset({"some", "in", "every", "not", "if", "contains", "true", "false", "null", "_", "as", "else", "with"})


def _comprehension_bar(toks: list[tr.Tok], parents: list[int], g: int) -> bool:
    """Whether the bracket group opened at g is a comprehension (`{x | ...}`, `[x | ...]`)."""
    bar = tr._is_body_open(toks, parents, g)
    return bar is not None and toks[bar].text == "|"


def _inside_other_comprehension(toks: list[tr.Tok], parents: list[int], j: int, g: int) -> bool:
    """Whether token j sits in a comprehension that does not also enclose the group at g: a variable there
    is that comprehension's own."""
    enclosing_g = set()
    k = parents[g]
    while k >= 0:
        enclosing_g.add(k)
        k = parents[k]
    k = parents[j]
    while k >= 0:
        if k not in enclosing_g and k != g and toks[k].text in "{[" and _comprehension_bar(toks, parents, k):
            return True
        k = parents[k]
    return False


def _declares(toks: list[tr.Tok], chunk: _Chunk, name: str) -> bool:
    """Whether the rule declares a local of this name (`name :=`, `some name`, a function argument), which
    would shadow a rule or import of the same name."""
    for i in range(chunk.start, chunk.end):
        t = toks[i]
        if t.kind != "ident" or t.text != name or (i > 0 and toks[i - 1].text == "."):
            continue
        nxt = tr._sig(toks, i + 1)
        if nxt >= 0 and toks[nxt].text in (":=", ","):
            return True
        prev = tr._sig(toks, i - 1, -1)
        if prev >= 0 and toks[prev].text in ("some", "(", ","):
            return True
    return False


def _closed(a: _Analysis, chunk: _Chunk, g: int, close: int, bound: dict[str, str] | None = None) -> bool:
    """Whether the expression in tokens [g, close] uses no variable of the rule around it (beside those in
    `bound`, which stand for expressions of their own), so that it can be a rule of its own with the same
    value."""
    toks, parents = a.toks, a.parents
    bound = bound or {}
    globals_ = a.names | a.aliases
    for i in range(g, close + 1):
        t = toks[i]
        if t.kind != "ident" or t.text in KEYWORDS or t.text in ("input", "data"):
            continue
        if i > 0 and toks[i - 1].text == ".":
            continue
        nxt = i + 1 < len(toks) and toks[i + 1].text
        if nxt == "(":
            continue  # a call: a builtin, or a function the analysis follows by name
        if nxt == "." and i + 3 < len(toks) and toks[i + 2].kind == "ident" and toks[i + 3].text == "(":
            continue  # a namespaced builtin (object.get, regex.match)
        if t.text in globals_:
            if _declares(toks, chunk, t.text):
                return False
            continue
        if t.text in bound:
            continue
        for j in range(chunk.start, chunk.end):
            if g <= j <= close or toks[j].kind != "ident" or toks[j].text != t.text:
                continue
            if j > 0 and toks[j - 1].text == ".":
                continue
            if not _inside_other_comprehension(toks, parents, j, g):
                return False  # the rule's own variable (or one a surrounding comprehension binds)
    return True


IMPURE = frozenset({"time.now_ns", "rand.intn", "uuid.rfc4122", "http.send", "opa.runtime", "trace", "print"})


def _bound_once(toks: list[tr.Tok], chunk: _Chunk, name: str) -> bool:
    """Whether the rule declares `name` exactly once, with `name := ...`."""
    assigned = 0
    for i in range(chunk.start, chunk.end):
        if toks[i].kind != "ident" or toks[i].text != name or (i > 0 and toks[i - 1].text == "."):
            continue
        nxt = tr._sig(toks, i + 1)
        if nxt >= 0 and toks[nxt].text == ":=":
            assigned += 1
        prev = tr._sig(toks, i - 1, -1)
        if prev >= 0 and (toks[prev].text in ("some", "every") or (toks[prev].text == "," and toks[nxt].text == "in")):
            return False  # `some x`, `some k, x in xs`
    return assigned == 1


def _callee(toks: list[tr.Tok], i: int, end: int) -> str | None:
    """For tokens [i, end] shaped `f(...)` or `ns.f(...)` (the whole of them): the called name."""
    call = tr.call_at(toks, i)
    if call is None or call[1] >= end or tr._match(toks, call[1]) != end:
        return None
    return ".".join(call[0])


def _reference(toks: list[tr.Tok], i: int, end: int) -> bool:
    """Whether tokens [i, end] are a plain reference: `input.a.b`, `x["k"]`."""
    if toks[i].kind != "ident":
        return False
    j = i + 1
    while j <= end:
        if toks[j].text == "." and j + 1 <= end and toks[j + 1].kind == "ident":
            j += 2
        elif toks[j].text == "[" and j + 2 <= end and toks[j + 1].kind == "string" and toks[j + 2].text == "]":
            j += 3
        else:
            return False
    return True


def hoist_invariants(src: str, libs_shared: bool) -> str:
    """Expressions of a rule body that need none of the rule's variables become rules of their own, with the
    same value, which the engine evaluates once per query:

    - `v := {x | ...}` (or `[...]`) when the comprehension reads nothing a constraint changes: the split
      then shares it, so it is built once per request instead of once per constraint
      (`provided := {l | input.review.object.metadata.labels[l]}` in required-labels templates);
    - `v := f(...)` in a rule that iterates: once per constraint instead of once per iteration
      (`max_mem := canonify_mem(max_mem_orig)` per container in the library's container-limits), and once
      per request when it reads nothing a constraint changes.

    A variable bound once by such an expression, or by a plain reference (`max_mem_orig :=
    input.parameters.memory`), may appear in a later one: it is replaced there by what it stands for."""
    a = _analyze(src, libs_shared)
    if a is None:
        return src
    toks, parents = a.toks, a.parents
    edits: list[tuple[int, int, str]] = []
    for chunk in a.chunks:
        if not chunk.name or chunk.name.startswith("__") or chunk.function:
            continue
        iterates = any(t.kind == "ident" and t.text in ("some", "every", "_") for t in toks[chunk.start : chunk.end])
        bound: dict[str, str] = {}  # a variable -> the text it stands for in a hoisted rule
        for op in range(chunk.start, chunk.end):
            if toks[op].text != ":=" or parents[op] == -1:
                continue
            var = tr._sig(toks, op - 1, -1)
            g = tr._sig(toks, op + 1)
            if var < 0 or g < 0 or toks[var].kind != "ident":
                continue
            start = tr._statement_start(toks, parents, var)
            if start is None or start[0] != var or any(s <= g <= e for s, e, _ in edits):
                continue
            close = _expression_end(toks, parents, g)
            if close is None:
                continue
            independent = not (_seeds(toks, g, close + 1, libs_shared, set()) or _mentions(toks, _Chunk("", g, close + 1), a.dependent))
            comprehension = toks[g].text in ("{", "[") and _comprehension_bar(toks, parents, g) and tr._match(toks, g) == close
            callee = None if comprehension else _callee(toks, g, close)
            # only a binding in the rule's own body is seen by every expression of the rule
            once = _bound_once(toks, chunk, toks[var].text) and parents[parents[var]] == -1
            if not _closed(a, chunk, g, close, bound):
                continue
            if not comprehension and not _ground(a, chunk, g, close, bound):
                continue  # `f(xs[i])` iterates: as a rule of its own it would have several values
            text = _substituted(toks, g, close, bound)
            if comprehension and independent or callee is not None and callee not in IMPURE and (independent or iterates):
                name = f"{HOISTED}{len(edits) + 1}"
                edits.append((g, close, text))
                if once:
                    bound[toks[var].text] = name
            elif once and _reference(toks, g, close):
                bound[toks[var].text] = text  # a reference: `x.a` stays a reference once x is replaced
    if not edits:
        return src
    out = list(toks)
    for n, (g, close, _) in sorted(enumerate(edits), key=lambda e: -e[1][0]):
        out[g : close + 1] = [tr.Tok("ident", f"{HOISTED}{n + 1}", toks[g].line)]
    rules = [f"{HOISTED}{n + 1} := {text}\n" for n, (_, _, text) in enumerate(edits)]
    return tr.render(out).rstrip("\n") + "\n\n" + "\n".join(rules)


def _expression_end(toks: list[tr.Tok], parents: list[int], g: int) -> int | None:
    """The last token of the expression starting at g, which must end its statement."""
    k = g
    end = g
    while k < len(toks):
        t = toks[k]
        if t.kind == "nl" and parents[k] == parents[g]:
            break
        if t.text == ";" and parents[k] == parents[g]:
            break
        if t.kind == "op" and t.text in tr.CLOSE and parents[k] != parents[g] and k > g and tr._match(toks, parents[g]) == k:
            break
        if t.kind == "op" and t.text in tr.OPEN:
            k = tr._match(toks, k)
            end = k
            k += 1
            continue
        if t.kind not in ("ws", "comment"):
            end = k
        k += 1
    return end


def _ground(a: _Analysis, chunk: _Chunk, g: int, close: int, bound: dict[str, str]) -> bool:
    """Whether tokens [g, close], outside the comprehensions they hold, name no variable but those in
    `bound` (so the expression has one value, not one per binding of a free variable)."""
    toks, parents = a.toks, a.parents
    globals_ = a.names | a.aliases
    i = g
    while i <= close:
        t = toks[i]
        if t.kind == "op" and t.text in ("{", "[") and _comprehension_bar(toks, parents, i):
            i = tr._match(toks, i) + 1
            continue
        if t.kind == "ident" and not (i > 0 and toks[i - 1].text == "."):
            nxt = toks[i + 1].text if i + 1 < len(toks) else ""
            call = nxt == "(" or (nxt == "." and i + 3 < len(toks) and toks[i + 2].kind == "ident" and toks[i + 3].text == "(")
            known = t.text in ("input", "data", "true", "false", "null") or t.text in bound or t.text in globals_
            if t.text == "_" or not (call or known):
                return False
        i += 1
    return True


def _substituted(toks: list[tr.Tok], g: int, close: int, bound: dict[str, str]) -> str:
    out = []
    for i in range(g, close + 1):
        t = toks[i]
        if t.kind == "ident" and t.text in bound and not (i > 0 and toks[i - 1].text == "."):
            out.append(bound[t.text])
        else:
            out.append(t.text)
    return "".join(out)
