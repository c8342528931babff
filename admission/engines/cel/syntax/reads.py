"""Which parts of the request's objects a CEL expression can read, so that binding converts only those.

cel-cpp converts a bound Python value into CEL values as an expression first reads it, at about a
microsecond per value: a 5 KB Pod costs ~170 µs, twenty times a typical expression. `reads(tree)` walks an
expression (after the passes: variables inlined as `cel.bind`) and returns, for each of the roots `object`
and `oldObject` it reads, the paths it can read (admission.prune.Paths), so that the binding holds only those
(admission.prune.prune).

The analysis errs on the side of reading more, never less:
- a selection chain `object.spec.containers[0].image` reads `spec.containers.*.image` (an index that is not a
  string literal stands for every key or element); where a value on such a chain is used in any other way
  (compared, passed to a function or method, returned, its size taken, `in`) it is read whole;
- `has(x.f)` reads only that `f` exists in `x` (an object below it is kept as `{}` unless more is read), and
  `x == null` / `x != null` only whether `x` is null;
- a test macro (`all`, `exists`, `exists_one`, and their two-variable forms) over a chain keeps every element
  and follows the element variable into its body (`c.image` reads `spec.containers.*.image`); a macro whose
  value holds elements or values made from them (`filter`, `map`, `transform*`) reads the elements whole;
  `cel.bind(v, init, body)` follows `v` as a chain;
- a conditional's value is either branch's (`cond ? oldObject : object` follows both);
- the root itself used whole (`object == oldObject`, `string(object)`, `dyn(object)`) reads everything: None.
Names a comprehension or `cel.bind` declares shadow the roots, as in CEL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from admission.engines.cel.syntax import ast as a
from admission.prune import ANY, Path, Paths, insert, merge

ROOTS = ("object", "oldObject")
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter", "transformList", "transformMap",
                    "transformMapEntry"})
TESTS = frozenset({"all", "exists", "exists_one"})  # the macros whose value is a bool

Env = Mapping[str, "set[Path] | None"]  # a declared name: the paths its value is at (None: not an object's)


class _Reads:
    def __init__(self, roots: Iterable[str]) -> None:
        self.roots = frozenset(roots)
        self.found: set[tuple[Path, bool]] = set()

    def read(self, paths: Iterable[Path], whole: bool) -> None:
        for p in paths:
            self.found.add((p, whole))

    # -- values: the paths an expression's value is at, without reading it yet; None when it is not on such a
    # path, and then whatever it reads has been read
    def value(self, e: a.Expr, env: Env) -> set[Path] | None:
        if isinstance(e, a.Ident):
            if e.name in env:
                return env[e.name]
            if e.name in self.roots and not e.absolute:
                return {(e.name,)}
            return None
        if isinstance(e, a.Select):
            base = self.value(e.operand, env)
            return None if base is None else {b + (e.field,) for b in base}
        if isinstance(e, a.Index):
            key = e.index.value if isinstance(e.index, a.Literal) and e.index.kind == a.STRING else None
            if key is None:
                self.use(e.index, env)
            base = self.value(e.operand, env)
            return None if base is None else {b + (str(key) if key is not None else ANY,) for b in base}
        if isinstance(e, a.Conditional):
            self.use(e.cond, env)
            then, otherwise = self.value(e.then, env), self.value(e.otherwise, env)
            if then is None and otherwise is None:
                return None
            return (then or set()) | (otherwise or set())
        if isinstance(e, a.Call) and _is_bind(e):
            var, init, body = e.args
            assert isinstance(var, a.Ident)
            return self.value(body, {**env, var.name: self.value(init, env)})
        self.use(e, env)
        return None

    # -- uses: the expression's value is read whole
    def use(self, e: a.Expr, env: Env) -> None:
        if isinstance(e, a.Ident | a.Select | a.Index | a.Conditional) or (isinstance(e, a.Call) and _is_bind(e)):
            found = self.value(e, env)
            if found is not None:
                self.read(found, True)
            return
        if isinstance(e, a.Call):
            self.call(e, env)
            return
        if isinstance(e, a.Binary) and e.op in ("==", "!=") and (_is_null(e.left) or _is_null(e.right)):
            # `x != null` reads only whether x is there (null, or a value of its own)
            other = e.right if _is_null(e.left) else e.left
            found = self.value(other, env)
            if found is not None:
                self.read(found, False)
            return
        for child in a.children(e):
            self.use(child, env)

    def call(self, e: a.Call, env: Env) -> None:
        if e.function == "has" and e.target is None and len(e.args) == 1 and isinstance(e.args[0], a.Select):
            sel = e.args[0]
            base = self.value(sel.operand, env)
            if base is not None:
                self.read({b + (sel.field,) for b in base}, False)
            return
        if e.function in MACROS and e.target is not None and e.args and isinstance(e.args[0], a.Ident):
            names = [x.name for x in e.args[:2] if isinstance(x, a.Ident)]
            two = len(e.args) >= 3 and len(names) == 2 and e.function in ("all", "exists", "exists_one", "transformList",
                                                                            "transformMap", "transformMapEntry")
            declared = names if two else names[:1]
            rng = self.value(e.target, env)
            inner: dict[str, set[Path] | None] = {n: None for n in declared}
            if rng is not None:
                elements = {p + (ANY,) for p in rng}
                # every element (or key) stays; a macro whose value holds elements or values computed from
                # them (filter, map, transform*) reads them whole, as its value can go anywhere
                self.read(elements, e.function not in TESTS)
                # one variable: the element (a list's) or the key (a map's, a string: its use reads keys only,
                # which every element kept already holds); two: index or key, then the value
                inner[declared[-1]] = elements
            scope = {**env, **inner}
            for arg in e.args[len(declared):]:
                self.use(arg, scope)
            return
        if e.target is not None:
            self.use(e.target, env)
        for arg in e.args:
            self.use(arg, env)


def _is_null(e: a.Expr) -> bool:
    return isinstance(e, a.Literal) and e.kind == a.NULL


def _is_bind(e: a.Call) -> bool:
    return (e.function == "bind" and isinstance(e.target, a.Ident) and e.target.name == "cel" and len(e.args) == 3
            and isinstance(e.args[0], a.Ident))


def reads(tree: a.Expr, roots: Iterable[str] = ROOTS) -> dict[str, Paths | None]:
    """For each root the expression reads: the paths it can read below it (None: all of it). A root it does
    not read is absent."""
    walk = _Reads(roots)
    walk.use(tree, {})
    out: dict[str, Paths | None] = {}
    for path, whole in sorted(walk.found):
        root, rest = path[0], path[1:]
        if root in out and out[root] is None:
            continue
        if not rest:
            out[root] = None if whole else out.get(root, {})
            continue
        trie = out.setdefault(root, {})
        assert trie is not None
        insert(trie, rest, whole)
    return out


def union(found: Iterable[Mapping[str, Paths | None]]) -> dict[str, Paths | None]:
    """What any of several expressions reads, per root (the roots are a trie's first keys)."""
    out: Paths = {}
    for one in found:
        out = merge(out, dict(one))
    return out
