"""Which parts of the input the policies can read, so the rest is left out of it.

The engine's input conversion costs a few µs per JSON value, and a request's object often carries much that
no policy reads (status, annotations, managedFields, a container's env and probes). `input_paths` reads the
modules' ASTs and gathers the paths under a root (`input.review`) they can read: `*` for every key or
element, and for each path whether the whole value below it is read or only that it exists. `prune` keeps
only those parts of a value.

The analysis errs on the side of reading more, never less:
- a reference `input.a.b[k].c` reads `a.b.*.c` whole: any key that is not a constant (a variable, a
  computed `input.x[input.k]`, `data.x[...]`) stands for every key;
- a value bound to a variable (`c := input.a[_]`, `some c in P`, `some k, v in P`, `every c in P`) is
  followed by the variable's name within its rule: `c.image` reads `a.*.image`; any other use of the
  variable (compared, passed to a function, returned, used as a key) reads its whole value; the binding
  itself keeps the value existing (an iteration keeps every element), so counts and definedness stay;
- `object.get(P, "k", d)` and `object.get(P, ["a", "b"], d)` read `P.k`, `P.a.b`; any other call reads its
  arguments whole;
- `input` itself, an import of an input path and a reference to the root read everything: `None`.
"""

from __future__ import annotations

from collections.abc import Iterable

from admission.engines.rego.ast import (
    MEMBER_2,
    MEMBER_3,
    Array,
    ArrayCompr,
    Body,
    Call,
    Every,
    Expr,
    Module,
    Object,
    ObjectCompr,
    Ref,
    Rule,
    Scalar,
    Set,
    SetCompr,
    SomeDecl,
    TemplateString,
    Term,
    Var,
)
from admission.engines.rego.passes import call_name
from admission.prune import ANY, Path, Paths, insert, prune

__all__ = ["ANY", "Path", "Paths", "input_paths", "prune", "reaches", "read_paths"]



class _ReadsAll(Exception):
    """The policies read the input's root (or the whole input): nothing can be left out."""


class _Rule:
    """The analysis of one rule: variables bound to input paths, and the paths read."""

    def __init__(self, aliases: dict[str, Path]) -> None:
        self.aliases = aliases
        self.env: dict[str, set[Path]] = {}
        self.reads: set[tuple[Path, bool]] = set()
        self.changed = False

    def bind(self, name: str, paths: Iterable[Path]) -> None:
        if name == "_":
            return
        known = self.env.setdefault(name, set())
        for p in paths:
            if p not in known:
                known.add(p)
                self.changed = True

    def read(self, path: Path, whole: bool) -> None:
        self.reads.add((path, whole))

    # -- values: the input paths a term's value is at (without reading it yet)
    def value_paths(self, t: Term) -> set[Path] | None:
        """The input paths a term's value is taken from when it is a reference into the input (or a variable
        bound to one), else None. Index terms are read as they are met."""
        if isinstance(t, Var):
            if t.name == "input":
                raise _ReadsAll
            if t.name in self.aliases:
                return {self.aliases[t.name]}
            return set(self.env[t.name]) if t.name in self.env else None
        if isinstance(t, Ref):
            base: set[Path] | None = None
            if isinstance(t.head, Var):
                base = {("input",)} if t.head.name == "input" else self.value_paths(t.head)
            else:
                self.use(t.head)
            keys: list[str] = []
            for p in t.path:
                if isinstance(p, Scalar) and isinstance(p.value, str):
                    keys.append(p.value)
                elif isinstance(p, Scalar) and isinstance(p.value, int) and not isinstance(p.value, bool):
                    keys.append(ANY)  # an array index (the element count stays)
                else:
                    self.use(p)
                    keys.append(ANY)
            if base is None:
                return None
            return {b + tuple(keys) for b in base}
        return None

    # -- uses: reading a term's whole value
    def use(self, t: Term) -> None:
        paths = self.value_paths(t) if isinstance(t, Var | Ref) else None
        if paths is not None:
            for p in paths:
                self.read(p, True)
            return
        if isinstance(t, Ref):
            return  # a reference into data, a rule or a local value: its index terms were read above
        if isinstance(t, Array | Set):
            for x in t.items:
                self.use(x)
        elif isinstance(t, Object):
            for k, v in t.items:
                self.use(k)
                self.use(v)
        elif isinstance(t, ArrayCompr | SetCompr):
            self.use(t.term)
            self.body(t.body)
        elif isinstance(t, ObjectCompr):
            self.use(t.key)
            self.use(t.value)
            self.body(t.body)
        elif isinstance(t, Call):
            self.call(t)
        elif isinstance(t, TemplateString):
            for part in t.parts:
                if not isinstance(part, str):
                    self.expr(part)

    def call(self, c: Call) -> None:
        name = call_name(c)
        if name == "object.get" and len(c.args) == 3:
            base = self.value_paths(c.args[0]) if isinstance(c.args[0], Var | Ref) else None
            key = c.args[1]
            keys: list[str] | None = None
            if isinstance(key, Scalar) and isinstance(key.value, str):
                keys = [key.value]
            elif isinstance(key, Array) and all(isinstance(k, Scalar) and isinstance(k.value, str) for k in key.items):
                keys = [str(k.value) for k in key.items if isinstance(k, Scalar)]
            if base is not None and keys is not None:
                for b in base:
                    self.read(b + tuple(keys), True)
                self.use(c.args[2])
                return
        if name in ("assign", "eq") and len(c.args) == 2:
            target, value = c.args
            if isinstance(target, Var) and target.name != "_":
                paths = self.value_paths(value) if isinstance(value, Var | Ref) else None
                if paths is not None:
                    # `x := P` binds x; `x = P` binds it or, x being bound already, compares: read whole
                    self.bind(target.name, paths)
                    for p in paths:
                        self.read(p, name == "eq")
                    return
            if name == "eq" and isinstance(value, Var) and value.name != "_":
                paths = self.value_paths(target) if isinstance(target, Var | Ref) else None
                if paths is not None:
                    self.bind(value.name, paths)
                    for p in paths:
                        self.read(p, True)
                    return
        if name in (MEMBER_2, MEMBER_3):
            self.member(c, declared=False)
            return
        for a in c.args:
            self.use(a)

    def member(self, c: Call, declared: bool) -> None:
        """`some v in P` / `some k, v in P` (declared), or `x in P` / `k, v in P` as a test."""
        *bound, domain = c.args
        if not declared:
            for b in bound:
                self.use(b)
            self.use(domain)
            return
        paths = self.value_paths(domain) if isinstance(domain, Var | Ref) else None
        if paths is None:
            self.use(domain)
            return
        for p in paths:
            self.read(p + (ANY,), False)
        value = bound[-1]
        if isinstance(value, Var):
            self.bind(value.name, {p + (ANY,) for p in paths})
        else:  # a pattern: compares the whole element
            for p in paths:
                self.read(p + (ANY,), True)
        if len(bound) == 2:
            self.use(bound[0])

    def body(self, body: Body) -> None:
        for e in body:
            self.expr(e)

    def expr(self, e: Expr) -> None:
        t = e.terms
        if isinstance(t, SomeDecl):
            for s in t.symbols:
                if isinstance(s, Call) and call_name(s) in (MEMBER_2, MEMBER_3):
                    self.member(s, declared=True)
        elif isinstance(t, Every):
            paths = self.value_paths(t.domain) if isinstance(t.domain, Var | Ref) else None
            if paths is None:
                self.use(t.domain)
            else:
                for p in paths:
                    self.read(p + (ANY,), False)
                if isinstance(t.value, Var):
                    self.bind(t.value.name, {p + (ANY,) for p in paths})
                else:
                    for p in paths:
                        self.read(p + (ANY,), True)
            self.body(t.body)
        else:
            self.use(t)
        for w in e.with_:
            self.use(w.value)

    def rule(self, r: Rule) -> None:
        h = r.head
        for t in (*(h.args or ()), h.key, h.value):
            if t is not None and not (h.args is not None and t in h.args and isinstance(t, Var)):
                self.use(t)
        for p in h.ref.path:
            self.use(p)
        self.body(r.body)
        if r.else_ is not None:
            self.rule(r.else_)


def _aliases(m: Module) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for i in m.imports:
        head = i.path.head
        if isinstance(head, Var) and head.name == "input":
            keys = tuple(p.value for p in i.path.path if isinstance(p, Scalar) and isinstance(p.value, str))
            if len(keys) != len(i.path.path):
                raise _ReadsAll
            name = i.alias or (keys[-1] if keys else "input")
            out[name] = ("input", *keys)
    return out


def read_paths(modules: Iterable[Module]) -> set[tuple[Path, bool]] | None:
    """Every (input path, whole) the modules can read; None when they can read the whole input."""
    reads: set[tuple[Path, bool]] = set()
    try:
        for m in modules:
            aliases = _aliases(m)
            for alias_path in aliases.values():
                reads.add((alias_path, True))
            for r in m.rules:
                a = _Rule(aliases)
                for _ in range(20):  # until no variable learns a new path
                    a.changed = False
                    a.rule(r)
                    if not a.changed:
                        break
                else:
                    raise _ReadsAll  # pragma: no cover - a binding chain this long is not followed
                reads |= a.reads
    except _ReadsAll:
        return None
    return reads


def input_paths(modules: Iterable[Module], root: tuple[str, ...]) -> Paths | None:
    """The paths under `input.<root>` that the modules read, or None when they may read all of it."""
    found = read_paths(modules)
    if found is None:
        return None
    trie: Paths = {}
    full_root = ("input", *root)
    for path, whole in sorted(found):
        if path[: len(full_root)] != full_root:
            if full_root[: len(path)] == path and whole:  # a prefix of the root itself: everything below it
                return None
            if any(k == ANY for k in path) and _may_match(path, full_root) and whole:
                return None
            continue
        rest = path[len(full_root) :]
        if not rest:
            if whole:
                return None
            continue
        insert(trie, rest, whole)
    return trie


def _may_match(path: Path, root: Path) -> bool:
    """Whether `path` (with `*` keys) can name the root or a value above it."""
    return len(path) <= len(root) and all(k in (ANY, r) for k, r in zip(path, root, strict=False))


def reaches(paths: Paths | None, path: Path) -> bool:
    """Whether pruning with `paths` keeps anything at `path` (a `*` or a whole value above it counts)."""
    if paths is None:
        return True
    node: Paths | None = paths
    for key in path:
        if node is None:
            return True
        nxt = node.get(key, node.get(ANY, "missing"))
        if nxt == "missing":
            return False
        node = nxt  # type: ignore[assignment]
    return True
