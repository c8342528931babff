"""Which input paths Rego modules read, following values through variables and rules.

`paths.py` leaves out of the input what no module reads. Reading `input.review.object.spec.containers`
into a variable and then only `c.image` and `c.name` of each element reads those two fields, not whole
containers (with their env, probes and volume mounts, which cost the engine's input conversion
~3 µs a value). So a value taken from the input is followed:

- into variables: `some c in P`, `every c in P`, `c := P`, `c = P`, `c := object.get(P, "k", d)`;
- into rules whose value is such a path (`pod_spec = input.review.object.spec if {...}`) or a set of them
  (`input_containers contains c if { some c in P }`), through imports and `data.` references;
- along `.key`, `["key"]` and variable indexes (`[_]`, `[i]`: every element, `*`);
- into functions: each function is summarized by what it reads of each parameter (through the functions
  it calls), and an argument that is a reference reads that (`is_exempt(c)` reads `c.image`). A
  parameter that is a constant or a pattern compares, so reads, the whole argument.

Each use then reads the path it reaches. A use that is not such a reference (a bare variable compared,
counted, passed to a function or returned) reads its whole value, and a binding keeps the path existing
(emptied below) so that iteration counts and definedness stay the same. Anything not understood reads
whole: a rule referenced through its package as a whole (`data.lib.x`, `alias[k]`) is not followed, nor is
a rule with a definition of another shape. Variables are matched by name within a top-level rule, so
two variables of one name count as one: more is kept, never less.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from admission.engines.rego import translate as tr

ANY = "*"
ARG = "\0arg"  # the root of a function parameter's paths, while its summary is computed
Path = tuple[str, ...]
Keys = tuple["str | frozenset[str]", ...]  # a key, or the constant keys a variable index can take


def _expand(prefixes: frozenset[Path], keys: Keys) -> frozenset[Path]:
    paths = set(prefixes)
    for key in keys:
        options = (key,) if isinstance(key, str) else tuple(key)
        paths = {p + (k,) for p in paths for k in options}
    return frozenset(paths)


def _plain(keys: Keys) -> Path:
    """Keys as one path, a variable's constant keys as `*`."""
    return tuple(k if isinstance(k, str) else ANY for k in keys)


@dataclass(frozen=True)
class Val:
    """A value taken from the input: at one of `paths`, or (set_of) a set of values at those paths."""

    paths: frozenset[Path]
    set_of: bool = False

    def element(self) -> Val:
        return Val(self.paths) if self.set_of else Val(frozenset(p + (ANY,) for p in self.paths))

    def extend(self, keys: Keys) -> Val | None:
        if not keys:
            return self
        if self.set_of:  # `s[x]`: an element; `s["k"]`: a membership test, which reads elements whole
            return Val(self.paths).extend(keys[1:]) if keys[0] == ANY else Val(self.paths)
        return Val(_expand(self.paths, keys))

    def union(self, other: Val) -> Val | None:
        if self.set_of != other.set_of:
            return None
        return Val(self.paths | other.paths, self.set_of)


@dataclass
class _Module:
    toks: list[tr.Tok]
    parents: list[int]
    package: str
    imports: dict[str, Path]  # alias -> ("data", ...) or ("input", ...)
    chunks: list[tuple[str, int, int]] = field(default_factory=list)  # rule name ("" for others), token range
    unreadable: bool = False  # its statements could not be told apart


def _module(src: str) -> _Module:
    toks = tr.tokenize(src)
    parents = tr._parents(toks)
    m = _Module(toks, parents, tr.package_of(src), {})
    found = tr.statements(toks, parents)
    if not found and any(t.kind not in ("ws", "nl", "comment") for t in toks):
        found = [tr.Statement("?", 0, len(toks))]  # unreadable: scanned as one rule, `input` read whole
        m.unreadable = True
    for st in found:
        imp = tr.imported(toks, st)
        if imp is not None and imp[1][0] in ("data", "input"):
            m.imports[imp[0]] = imp[1]
        m.chunks.append((st.name, st.start, st.end))
    return m


OUTPUTS = frozenset({"violation", "deny", "warn", "patch"})


class _Flow:
    def __init__(self, sources: list[str], outputs: frozenset[str] = OUTPUTS) -> None:
        self.outputs = outputs
        self.modules = [_module(src) for src in sources]
        self.packages = {m.package for m in self.modules if m.package}
        self.rule_names: dict[str, set[str]] = {}
        for m in self.modules:
            self.rule_names.setdefault(m.package, set()).update(name for name, _, _ in m.chunks if name)
        self.rules: dict[tuple[str, str], Val | None] = {}  # None: not followed (read whole where defined)
        self._known: dict[tuple[str, str], Val | None] = {}  # the previous round's, while a round runs
        self.opaque_packages: set[str] = set()
        self.found: list[tuple[Path, bool]] = []
        self._defining = False
        # for each function, what it reads of each parameter: (path below it, whole) pairs; None: all of it
        self.summaries: dict[tuple[str, str], list[list[tuple[Path, bool]] | None]] = {}
        self._arg_reads: list[tuple[Path, bool]] = []
        self._consts: dict[str, tuple[int, int, frozenset[str]]] = {}
        self.literals: dict[tuple[str, str], frozenset[str]] = {}

    # ---- references ----------------------------------------------------------------------------------

    def _keys(self, m: _Module, i: int) -> tuple[list[str | frozenset[str]], int]:
        """Constant keys and variable indexes from token i (`.a`, `["a"]`, `[x]`), and where they end. A
        variable index is `*`, or the constant keys it takes (`some f in ["containers", "initContainers"]`)."""
        toks = m.toks
        keys: list[str | frozenset[str]] = []
        while i < len(toks):
            t = toks[i]
            if t.text == "." and i + 1 < len(toks) and toks[i + 1].kind == "ident":
                keys.append(toks[i + 1].text)
                i += 2
                continue
            if t.text == "[":
                k = tr._sig(toks, i + 1)
                close = tr._sig(toks, k + 1) if k >= 0 else -1
                if close >= 0 and toks[close].text == "]":
                    if toks[k].kind == "string":
                        keys.append(_string(toks[k].text))
                        i = close + 1
                        continue
                    if toks[k].kind == "ident" and toks[k].text not in ("true", "false", "null"):
                        keys.append(self._const_keys(toks[k].text, k))
                        i = close + 1
                        continue
            break
        return keys, i

    def _const_keys(self, name: str, at: int) -> str | frozenset[str]:
        scope = self._consts.get(name)
        if scope is not None and scope[0] <= at < scope[1]:
            return scope[2]
        return ANY

    def _find_consts(self, m: _Module, s: int, e: int) -> None:
        """Variables of the rule in tokens [s, e) bound once, by iterating a literal list of strings (or a
        rule that is one): within the body or comprehension of that binding, an index by them takes those
        keys only."""
        toks, parents = m.toks, m.parents
        binders: dict[str, list[int]] = {}
        for i in range(s, e):
            t = toks[i]
            if t.kind != "ident" or (i > 0 and toks[i - 1].text == "."):
                continue
            prev = tr._sig(toks, i - 1, -1)
            nxt = tr._sig(toks, i + 1)
            if (prev >= 0 and toks[prev].text in ("some", "every", ",")) or (nxt >= 0 and toks[nxt].text in (":=", "(")):
                binders.setdefault(t.text, []).append(i)
        if parents[tr._sig(toks, s)] == -1 and toks[tr._sig(toks, tr._sig(toks, s) + 1)].text == "(":
            head_close = tr._match(toks, tr._sig(toks, tr._sig(toks, s) + 1))
            for i in range(s, head_close):  # a function's parameters
                if toks[i].kind == "ident":
                    binders.setdefault(toks[i].text, []).extend([i, i])
        self._consts = {}
        for name, at in binders.items():
            if len(at) != 1:
                continue
            i = at[0]
            prev = tr._sig(toks, i - 1, -1)
            in_ = tr._sig(toks, i + 1)
            if toks[prev].text != "some" or in_ < 0 or toks[in_].text != "in":
                continue
            values = self._literal_strings(m, tr._sig(toks, in_ + 1))
            scope = parents[i]
            if values is None or scope < 0:
                continue
            self._consts[name] = (scope, tr._match(toks, scope), values)

    def _literal_strings(self, m: _Module, i: int) -> frozenset[str] | None:
        """The strings of a literal list or set at token i (`["a", "b"]`), or of a rule that is one."""
        toks = m.toks
        if i < 0:
            return None
        if toks[i].kind == "ident":
            return self.literals.get((m.package, toks[i].text))
        if toks[i].text not in ("[", "{"):
            return None
        close = tr._match(toks, i)
        inner = [t for t in toks[i + 1 : close] if t.kind not in ("ws", "nl", "comment")]
        strings = [_string(t.text) for t in inner[0::2] if t.kind == "string"]
        if not inner or len(strings) != (len(inner) + 1) // 2 or any(t.text != "," for t in inner[1::2]):
            return None
        if ANY in strings:
            return None
        after = tr._sig(toks, close + 1)
        if after >= 0 and toks[after].kind not in ("nl",) and toks[after].text not in (";", "}", "]", ")"):
            return None if toks[after].kind != "ident" else frozenset(strings)
        return frozenset(strings)

    def _find_literals(self) -> None:
        """Rules defined once as a literal list of strings (`fields := ["containers", "initContainers"]`)."""
        defs: dict[tuple[str, str], list[tuple[_Module, int]]] = {}
        for m in self.modules:
            for name, s, _ in m.chunks:
                if name:
                    defs.setdefault((m.package, name), []).append((m, s))
        for key, found in defs.items():
            if len(found) != 1:
                continue
            m, s = found[0]
            i = tr._sig(m.toks, s)
            op = tr._sig(m.toks, i + 1)
            if op >= 0 and m.toks[op].text in (":=", "="):
                values = self._literal_strings(m, tr._sig(m.toks, op + 1))
                if values is not None and m.toks[tr._sig(m.toks, op + 1)].kind != "ident":
                    self.literals[key] = values

    def _data(self, path: Path) -> tuple[Val | None, int, bool]:
        """A `data.` path: the rule it reaches (its value), how many of its keys that took, and whether it
        reached a package without naming a rule."""
        best = ""
        for n in range(len(path), 0, -1):
            pkg = ".".join(path[:n])
            if pkg in self.packages:
                best = pkg
                break
        if not best:
            return None, 0, any(p.startswith(".".join(path) + ".") or p == ".".join(path) for p in self.packages) if path else False
        used = best.count(".") + 1
        if used >= len(path) or path[used] == ANY:
            return None, used, True
        name = path[used]
        return self._rule((best, name)), used + 1, False

    def _rule(self, key: tuple[str, str]) -> Val | None:
        return self._known.get(key) if self._defining else self.rules.get(key)

    def chain(self, m: _Module, i: int, env: dict[str, Val]) -> tuple[Val | None, int]:
        """The value a reference starting at token i reaches, and the index after it; (None, i + 1) when
        it is not one taken from the input."""
        toks = m.toks
        t = toks[i]
        if t.kind != "ident" or (i > 0 and toks[i - 1].text == "."):
            return None, i + 1
        keys, end = self._keys(m, i + 1)
        base: Path
        if t.text == "input":
            return Val(_expand(frozenset({()}), tuple(keys))), end
        if t.text in env:
            val: Val | None = env[t.text]
            return (val.extend(tuple(keys)) if val else None), end
        if t.text == "data" or t.text in m.imports:
            base = ("data",) if t.text == "data" else m.imports[t.text]
            if base[0] == "input":
                return Val(_expand(frozenset({base[1:]}), tuple(keys))), end
            full = base + _plain(tuple(keys))
            rule, used, package_only = self._data(full[1:])
            if package_only or rule is None:
                return None, end
            start = used - (len(base) - 1)
            if start < 0:  # an import naming a path inside the rule's value: its value is read whole there
                return Val(rule.paths), end
            return rule.extend(tuple(keys)[start:]), end
        if t.text in self.rule_names.get(m.package, set()):
            rule = self._rule((m.package, t.text))
            if rule is None:
                return None, end
            return rule.extend(tuple(keys)), end
        return None, end

    # ---- the analysis --------------------------------------------------------------------------------

    def run(self) -> list[tuple[Path, bool]]:
        self._find_literals()
        self._find_opaque_packages()
        self._defining = True
        for _ in range(8):  # rule values through other rules: a few rounds reach a fixpoint
            before = self.rules
            self.rules = {}
            self._known = before
            for m in self.modules:
                for name, s, e in m.chunks:
                    if name:
                        self._define(m, name, s, e)
            if before == self.rules:
                break
        self._defining = False
        self._summarize()
        if any(m.unreadable for m in self.modules):
            self.found.append(((), True))  # the whole input
        for m in self.modules:
            for name, s, e in m.chunks:
                self._uses(m, name, s, e)
        return self.found

    def _summarize(self) -> None:
        """What each function reads of its parameters, through the functions it calls (Rego has no
        recursion, so a few rounds settle; if they do not, every argument is read whole)."""
        functions: dict[tuple[str, str], list[tuple[_Module, int, int]]] = {}
        for m in self.modules:
            for name, s, e in m.chunks:
                if name and self._params(m, s) is not None:
                    functions.setdefault((m.package, name), []).append((m, s, e))
        found = self.found
        for _ in range(8):
            summaries: dict[tuple[str, str], list[list[tuple[Path, bool]] | None]] = {}
            for key, defs in functions.items():
                arity = max(len(self._params(m, s) or []) for m, s, _ in defs)
                per: list[list[tuple[Path, bool]] | None] = [[] for _ in range(arity)]
                for m, s, e in defs:
                    params = self._params(m, s) or []
                    self.found, self._arg_reads = [], []
                    self._uses(m, key[1], s, e)
                    for k in range(arity):
                        if k >= len(params) or params[k] is None:
                            per[k] = None  # a constant or pattern compares the whole argument
                    for path, whole in self._arg_reads:
                        k = int(path[1])
                        entry = per[k]
                        if entry is not None:
                            entry.append((path[2:], whole))
                summaries[key] = [sorted(set(x)) if x is not None else None for x in per]
            if summaries == self.summaries:
                break
            self.summaries = summaries
        else:
            self.summaries = {}
        self.found, self._arg_reads = found, []

    def _find_opaque_packages(self) -> None:
        """Packages referenced as a whole (or with a computed key): their rules are not followed."""
        for m in self.modules:
            toks = m.toks
            imports = {i for name, s, e in m.chunks if not name for i in range(s, e)}
            for i, t in enumerate(toks):
                if t.kind != "ident" or (i > 0 and toks[i - 1].text == ".") or i in imports:
                    continue
                if t.text == "data" or (t.text in m.imports and m.imports[t.text][0] == "data"):
                    keys, _ = self._keys(m, i + 1)
                    base = ("data",) if t.text == "data" else m.imports[t.text]
                    full = base + _plain(tuple(keys))
                    _, _, package_only = self._data(full[1:])
                    if package_only:
                        joined = ".".join(k for k in full[1:] if k != ANY)
                        self.opaque_packages.update(p for p in self.packages if p == joined or p.startswith(joined + ".") or joined.startswith(p))

    def _env(
        self, m: _Module, s: int, e: int, seeds: dict[str, Val] | None = None
    ) -> tuple[dict[str, Val], dict[int, bool]]:
        """Variables bound in tokens [s, e) to values from the input (beside `seeds`, a function's
        parameters), and the token indexes where those bindings' values start (read there only as existing;
        True where the binding iterates, so that the elements exist)."""
        toks, parents = m.toks, m.parents
        self._find_consts(m, s, e)
        env: dict[str, Val] = dict(seeds or {})
        sites: dict[str, dict[int, bool]] = {}
        poisoned: set[str] = set()  # bound to something else too
        for _ in range(4):
            for i in range(s, e):
                t = toks[i]
                if t.kind != "ident":
                    continue
                if t.text in ("some", "every"):
                    self._bind_iteration(m, i, e, env, sites, poisoned)
                    continue
                nxt = tr._sig(toks, i + 1)
                # only `:=` declares: `x = y` may compare a bound x
                if nxt < 0 or toks[nxt].text != ":=" or (i > 0 and toks[i - 1].text == "."):
                    continue
                if parents[i] == -1:
                    continue  # a rule head, not a body variable
                start = tr._statement_start(toks, parents, i)
                if start is None or start[0] != i:
                    continue
                rhs = tr._sig(toks, nxt + 1)
                val, end = self._value(m, rhs, env)
                if val is not None and self._statement_ends(m, end):
                    self._bind(env, poisoned, t.text, val)
                    sites.setdefault(t.text, {})[rhs] = False
                else:
                    poisoned.add(t.text)
                    env.pop(t.text, None)
        # a binding's value is read only as existing when its variable is followed everywhere
        kept = {i: iterated for name, at in sites.items() if name in env for i, iterated in at.items()}
        return env, kept

    def _bind_iteration(
        self, m: _Module, i: int, e: int, env: dict[str, Val], sites: dict[str, dict[int, bool]], poisoned: set[str]
    ) -> None:
        toks = m.toks
        names: list[str] = []
        k = tr._sig(toks, i + 1)
        while k >= 0 and toks[k].kind == "ident" and toks[k].text != "in":
            names.append(toks[k].text)
            k = tr._sig(toks, k + 1)
            if k >= 0 and toks[k].text == ",":
                k = tr._sig(toks, k + 1)
        if k < 0 or toks[k].text != "in" or not names:
            return
        rhs = tr._sig(toks, k + 1)
        val, end = self._value(m, rhs, env)
        ends = self._statement_ends(m, end) or (toks[i].text == "every" and toks[tr._sig(toks, end)].text == "{")
        if val is None or not ends:
            for n in names:
                poisoned.add(n)
                env.pop(n, None)
            return
        sites.setdefault(names[-1], {})[rhs] = True
        self._bind(env, poisoned, names[-1], val.element())
        for n in names[:-1]:  # a key or index: a string or number, not a value from the input
            poisoned.add(n)
            env.pop(n, None)

    @staticmethod
    def _bind(env: dict[str, Val], poisoned: set[str], name: str, val: Val) -> None:
        if name in poisoned or name == "_":
            return
        if name in env:
            merged = env[name].union(val)
            if merged is None:
                poisoned.add(name)
                env.pop(name)
                return
            val = merged
        env[name] = val

    def _value(self, m: _Module, i: int, env: dict[str, Val]) -> tuple[Val | None, int]:
        """A reference at token i, or `object.get(reference, constant key(s), default)`."""
        toks = m.toks
        if i < 0:
            return None, i
        if [t.text for t in toks[i : i + 4]] == ["object", ".", "get", "("]:
            ref = tr._sig(toks, i + 4)
            val, end = self.chain(m, ref, env)
            got = self._get_keys(m, tr._sig(toks, end))
            if val is None or got is None:
                return None, i + 1
            keys, _ = got
            close = tr._match(toks, i + 3)
            return val.extend(tuple(keys)), close + 1
        return self.chain(m, i, env)

    def _get_keys(self, m: _Module, comma: int) -> tuple[list[str], int] | None:
        """After `object.get(ref` at a comma: the constant key or list of keys, and where they end."""
        toks = m.toks
        if comma < 0 or comma >= len(toks) or toks[comma].text != ",":
            return None
        k = tr._sig(toks, comma + 1)
        if k < 0:
            return None
        if toks[k].kind == "string":
            after = tr._sig(toks, k + 1)
            return ([_string(toks[k].text)], after) if after >= 0 and toks[after].text == "," else None
        if toks[k].text == "[":
            keys: list[str] = []
            j = tr._sig(toks, k + 1)
            while j >= 0 and toks[j].kind == "string":
                keys.append(_string(toks[j].text))
                j = tr._sig(toks, j + 1)
                if toks[j].text == ",":
                    j = tr._sig(toks, j + 1)
                    continue
                break
            if j >= 0 and toks[j].text == "]" and keys:
                after = tr._sig(toks, j + 1)
                return (keys, after) if after >= 0 and toks[after].text == "," else None
        return None

    @staticmethod
    def _statement_ends(m: _Module, end: int) -> bool:
        toks = m.toks
        k = end
        while k < len(toks) and toks[k].kind in ("ws", "comment"):
            k += 1
        return k >= len(toks) or toks[k].kind == "nl" or toks[k].text in (";", "}", "]", ")")

    def _define(self, m: _Module, name: str, s: int, e: int) -> None:
        """The rule's value from this definition, joined with its others."""
        key = (m.package, name)
        if key in self.rules and self.rules[key] is None:
            return
        # the rules the engine queries are read whole, as are those of packages referenced as a whole
        opaque = m.package in self.opaque_packages or name in self.outputs
        val = None if opaque else self._definition(m, name, s, e)
        if val is None or key not in self.rules:
            self.rules[key] = val
            return
        old = self.rules[key]
        self.rules[key] = old.union(val) if old is not None else None

    def _definition(self, m: _Module, name: str, s: int, e: int) -> Val | None:
        toks = m.toks
        i = tr._sig(toks, s)
        if toks[i].text == "default":
            return Val(frozenset())  # a constant: no input
        op = tr._sig(toks, i + 1)
        if op < 0 or toks[op].text not in ("=", ":=", "contains"):
            return None
        rhs = tr._sig(toks, op + 1)
        env, _ = self._env(m, s, e)
        val, end = self._value(m, rhs, env)
        after = tr._sig(toks, end) if end < len(toks) else -1
        if val is None or val.set_of or not (after < 0 or after >= e or toks[after].text in ("if", "else")):
            return None  # the value is more than the reference (`x := input.a in xs`, `input.a + 1`)
        if toks[op].text == "contains":
            return Val(val.paths, set_of=True)
        return val

    def _record(self, val: Val, whole: bool) -> None:
        for p in val.paths:
            if p and p[0] == ARG:
                self._arg_reads.append((p, whole))
            else:
                self.found.append((p, whole))

    def _uses(self, m: _Module, name: str, s: int, e: int) -> None:
        toks = m.toks
        params = self._params(m, s) if name else None
        seeds = {p: Val(frozenset({(ARG, str(k))})) for k, p in enumerate(params or []) if p}
        env, sites = self._env(m, s, e, seeds) if name else ({}, {})
        head_value = -1
        defined = tr._sig(toks, s)  # the rule's name in its head is not a use of it
        if defined >= 0 and toks[defined].text == "default":
            defined = tr._sig(toks, defined + 1)
        if params is not None:  # a function's parameters are bound by its callers
            defined = tr._match(toks, tr._sig(toks, defined + 1))
        if name and self.rules.get((m.package, name)) is not None:
            i = tr._sig(toks, s)
            op = tr._sig(toks, i + 1)
            if op >= 0 and toks[op].text in ("=", ":=", "contains"):
                head_value = tr._sig(toks, op + 1)
        handled: dict[int, int] = {}  # call arguments read through the callee's summary: start -> end
        i = s
        while i < e:
            t = toks[i]
            if i in handled:
                i = handled[i]
                continue
            if name and params is not None and s <= i <= defined:
                i += 1
                continue
            if t.kind != "ident" or (i > 0 and toks[i - 1].text == ".") or (name and i == defined):
                i += 1
                continue
            self._call(m, i, env, handled)
            binding = i in sites or i == head_value
            if binding and [x.text for x in toks[i : i + 4]] == ["object", ".", "get", "("]:
                val, end = self._value(m, i, env)
                if val is not None:
                    self._record(val if not val.set_of else Val(val.paths), False)
                i += 4
                continue
            val, end = self.chain(m, i, env)
            if val is None:
                i = max(end, i + 1)
                continue
            got = self._get_keys(m, tr._sig(toks, end)) if self._in_object_get(m, i) else None
            if got is not None and not val.set_of:
                ext = val.extend(tuple(got[0]))
                if ext is not None:
                    val = ext
            if binding:
                self._record(val.element() if sites.get(i) else Val(val.paths), False)
            elif not self._is_binding_name(m, i):
                self._record(Val(val.paths), True)
            i = max(end, i + 1)

    def _params(self, m: _Module, s: int) -> list[str | None] | None:
        """A function definition's parameters (None for one that is not a plain variable), or None for a
        rule."""
        toks = m.toks
        i = tr._sig(toks, s)
        if i < 0 or i + 1 >= len(toks) or toks[i + 1].text != "(":
            return None
        close = tr._match(toks, i + 1)
        out: list[str | None] = []
        for arg in _split_args(toks, i + 1, close):
            words = [t for t in toks[arg[0] : arg[1]] if t.kind not in ("ws", "nl", "comment")]
            out.append(words[0].text if len(words) == 1 and words[0].kind == "ident" else None)
        return out

    def _callee(self, m: _Module, i: int) -> tuple[tuple[str, str], int] | None:
        """For a call at token i (`f(`, `alias.f(`, `data.pkg.f(`): the function and its `(`."""
        call = tr.call_at(m.toks, i)
        if call is None:
            return None
        words, j = call
        if len(words) == 1 and words[0] not in m.imports:
            return (m.package, words[0]), j
        base: Path = ("data",) if words[0] == "data" else m.imports.get(words[0], ())
        if not base or base[0] != "data":
            return None
        full = base + tuple(words[1:])
        pkg = ".".join(full[1:-1])
        return ((pkg, full[-1]), j) if pkg in self.packages else None

    def _call(self, m: _Module, i: int, env: dict[str, Val], handled: dict[int, int]) -> None:
        """Arguments of a call to a function whose parameters are followed: each reads what the function
        reads of it (and that it exists), instead of its whole value."""
        found = self._callee(m, i)
        if found is None:
            return
        key, open_ = found
        summary = self.summaries.get(key)
        if summary is None:
            return
        toks = m.toks
        close = tr._match(toks, open_)
        for k, (a, b) in enumerate(_split_args(toks, open_, close)):
            if k >= len(summary) or summary[k] is None:
                continue
            start = tr._sig(toks, a)
            if start < 0 or start >= b:
                continue
            val, end = self.chain(m, start, env)
            if val is None or any(t.kind not in ("ws", "nl", "comment") for t in toks[end:b]):
                continue  # not an argument that is a reference alone
            arg = Val(val.paths)
            self._record(arg, False)
            for rel, whole in summary[k] or []:
                self._record(Val(frozenset(p + rel for p in arg.paths)), whole)
            handled[start] = end

    @staticmethod
    def _in_object_get(m: _Module, i: int) -> bool:
        toks = m.toks
        return i >= 4 and [t.text for t in toks[i - 4 : i]] == ["object", ".", "get", "("] and not (i >= 5 and toks[i - 5].text == ".")

    @staticmethod
    def _is_binding_name(m: _Module, i: int) -> bool:
        """Whether the identifier at i is the variable a statement binds (`x :=`, `some x in`)."""
        toks = m.toks
        nxt = tr._sig(toks, i + 1)
        if nxt >= 0 and toks[nxt].text == ":=":
            return True
        prev = tr._sig(toks, i - 1, -1)
        return prev >= 0 and toks[prev].text in ("some", "every", ",") and _before_in(toks, i)


def _string(literal: str) -> str:
    """A string literal's value; `*` (every key) for one it cannot read, or whose value is `*` itself."""
    if "\\" not in literal:
        return literal[1:-1]
    try:
        value = json.loads(literal)
    except ValueError:
        return ANY
    return value if isinstance(value, str) else ANY


def _split_args(toks: list[tr.Tok], open_: int, close: int) -> list[tuple[int, int]]:
    """The token ranges of the arguments between a call's parentheses."""
    out: list[tuple[int, int]] = []
    depth = 0
    start = open_ + 1
    for j in range(open_ + 1, close):
        t = toks[j]
        if t.kind == "op" and t.text in tr.OPEN:
            depth += 1
        elif t.kind == "op" and t.text in tr.CLOSE:
            depth -= 1
        elif t.text == "," and depth == 0:
            out.append((start, j))
            start = j + 1
    if any(t.kind not in ("ws", "nl", "comment") for t in toks[start:close]):
        out.append((start, close))
    return out


def _before_in(toks: list[tr.Tok], i: int) -> bool:
    """Whether an `in` follows the identifier at i among the names of a `some`/`every`."""
    k = tr._sig(toks, i + 1)
    while k >= 0 and toks[k].text == ",":
        k = tr._sig(toks, k + 1)
        if k >= 0 and toks[k].kind == "ident":
            k = tr._sig(toks, k + 1)
    return k >= 0 and toks[k].text == "in"


def flow_paths(sources: list[str], outputs: frozenset[str] = OUTPUTS) -> list[tuple[Path, bool]]:
    """Every input path the sources read: (keys under `input`, whether the whole value below is read;
    otherwise only that it exists). `outputs`: the names of the rules the engine queries, whose values are
    read whole."""
    return _Flow(sources, outputs).run()
