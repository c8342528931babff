"""Rego source translation: v0 -> v1 syntax, reference renaming, and rewrites around regopy defects.

regopy 1.5.2 parses Rego v1 only. Published policies (the Gatekeeper library among them) are mostly v0:
`deny[msg] { ... }` must become `deny contains msg if { ... }`, every rule body needs `if`, and a rule with
several bodies becomes several rules. The translation works on tokens, so strings, raw strings and comments
are never touched; v1 heads (`if`, `contains`) pass through unchanged.

Rewrites around engine defects, each semantics-preserving and pinned by a test in tests/test_rego_translate.py:
- `f(xs[_])` fails to compile ("Invalid bracket argument") and `some i; f(xs[i])` silently yields nothing:
  the indexed reference is hoisted into a variable at the start of the statement (`hoist_call_args`);
  negated statements are left alone, where hoisting an iteration would change the meaning.
- `not f(x, a.b)` with `a.b` undefined evaluates true on regopy; OPA evaluates the argument first and the
  statement fails: a guard `_ = a.b; ` goes before the statement (`guard_negated_args`).
- `x := xs[_]` followed by `obj[x]` crashes the process: it becomes `some x in xs` (`iterate_with_some`).
- a query line starting with `(` after a line ending in a term is parsed as a call and crashes: the line is
  prefixed with `true; ` (`guard_paren_lines`).
- `sprintf` prints a string that reached it through a variable or argument with its JSON quotes, unescaped;
  `%q` is printed literally and shifts the arguments; `sort` of a set returns a set: calls are routed through
  helpers appended to the module (`wrap_builtins`, `quote_verbs`).
- `with` can crash the process: callers refuse it when a policy is loaded (`uses_word(src, "with")`).

For speed only (callers choose where it is safe): `partial_sets_as_comprehensions` turns
`name contains head if { body }` into `name := {head | body}`, which regopy evaluates 20-40% faster.

What regopy costs, measured (see bench/rego_micro.py): input conversion ~5-15 µs per JSON value; ~10 µs a
query; ~20 µs per rule evaluated; in rule bodies, each binding costs more the larger the bound value (a
container object ~10-30 µs), and each insertion of an object into a set ~40 µs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\\n])*")
  | (?P<raw>`[^`]*`)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>:=|==|!=|<=|>=|[{}()\[\],.;:=<>+\-*/%|&!])
    """,
    re.VERBOSE,
)

OPEN = {"{": "}", "[": "]", "(": ")"}
CLOSE = {"}", "]", ")"}


class TranslateError(Exception):
    """A source the translator cannot read; `line` is 1-based within the source."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass
class Tok:
    kind: str
    text: str
    line: int


def tokenize(src: str) -> list[Tok]:
    toks: list[Tok] = []
    pos, line = 0, 1
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:
            raise TranslateError(line, f"unexpected character {src[pos]!r}")
        kind = m.lastgroup or ""
        text = m.group()
        toks.append(Tok(kind, text, line))
        line += text.count("\n")
        pos = m.end()
    return toks


def render(toks: list[Tok]) -> str:
    return "".join(t.text for t in toks)


def _sig(toks: list[Tok], i: int, step: int = 1) -> int:
    """Index of the next significant token (not whitespace, newline or comment) from i, or -1."""
    while 0 <= i < len(toks):
        if toks[i].kind not in ("ws", "nl", "comment"):
            return i
        i += step
    return -1


def _match(toks: list[Tok], i: int) -> int:
    """Index of the bracket closing the one at i."""
    depth = 0
    for j in range(i, len(toks)):
        t = toks[j]
        if t.kind == "op" and t.text in OPEN:
            depth += 1
        elif t.kind == "op" and t.text in CLOSE:
            depth -= 1
            if depth == 0:
                return j
    raise TranslateError(toks[i].line, f"unclosed {toks[i].text!r}")


def is_v1(toks: list[Tok]) -> bool:
    """Whether the module declares v1 syntax itself (`import rego.v1`)."""
    text = render([t for t in toks if t.kind not in ("ws", "comment")])
    return "import rego.v1" in text.replace("\n", "\n")


def to_v1(src: str) -> str:
    """Translate v0 rule heads to v1: `if` before every rule body, `contains` for partial set rules.

    Heads that already use `if` or `contains` are left as they are, so v1 and mixed modules pass through.
    """
    toks = tokenize(src)
    out: list[Tok] = []
    i = 0
    n = len(toks)
    at_line_start = True
    while i < n:
        t = toks[i]
        if t.kind in ("ws", "comment"):
            out.append(t)
            i += 1
            continue
        if t.kind == "nl":
            out.append(t)
            at_line_start = True
            i += 1
            continue
        if t.kind == "ident" and at_line_start and t.text not in ("package", "import", "default"):
            i = _rule(toks, i, out)
            at_line_start = False
            continue
        if t.kind == "ident" and t.text in ("package", "import", "default"):
            # copy to the end of the statement: the end of the line at bracket depth 0
            j = i
            depth = 0
            while j < n and not (toks[j].kind == "nl" and depth == 0):
                if toks[j].kind == "op" and toks[j].text in OPEN:
                    depth += 1
                elif toks[j].kind == "op" and toks[j].text in CLOSE:
                    depth -= 1
                out.append(toks[j])
                j += 1
            i = j
            continue
        raise TranslateError(t.line, f"unexpected {t.text!r} at the top level of the module")
    return render(out)


def _rule(toks: list[Tok], i: int, out: list[Tok]) -> int:
    """Copy one rule (head, bodies, else chain) from toks[i], translated; return the index after it."""
    n = len(toks)
    head_start = i
    # find where the head ends: the body `{`, or a newline at depth 0 when the rule has no body
    j = i
    prev_sig: Tok | None = None
    while j < n:
        t = toks[j]
        if t.kind == "nl":
            # a head continues over a newline only after an operator that needs an operand
            if prev_sig is not None and prev_sig.kind == "op" and prev_sig.text in ("=", ":=", ",", "+", "-", "*", "/"):
                j += 1
                continue
            break
        if t.kind == "op" and t.text == "{":
            value_start = prev_sig is None or (prev_sig.kind == "op" and prev_sig.text not in CLOSE)
            if prev_sig is not None and prev_sig.kind == "ident" and prev_sig.text in ("if", "else"):
                value_start = False
            if prev_sig is not None and prev_sig.kind == "ident" and prev_sig.text == "contains":
                value_start = True  # `deny contains {"msg": msg} if {`
            if not value_start:
                break  # the body
            j = _match(toks, j) + 1
            prev_sig = toks[j - 1]
            continue
        if t.kind == "op" and t.text in ("[", "("):
            j = _match(toks, j) + 1
            prev_sig = toks[j - 1]
            continue
        if t.kind not in ("ws", "comment"):
            prev_sig = t
        j += 1
    head = toks[head_start:j]
    has_body = j < n and toks[j].kind == "op" and toks[j].text == "{"
    out.extend(_head(head, has_body))
    if not has_body:
        return j
    end = _match(toks, j)
    out.extend(toks[j : end + 1])
    i = end + 1
    # v0 rules may have several bodies, `p { a } { b }`: v1 spells each as its own rule with the same head
    while True:
        k = _sig(toks, i)
        if k < 0 or toks[k].kind != "op" or toks[k].text != "{":
            break
        out.extend(toks[i:k])
        out.append(Tok("nl", "\n", toks[k].line))
        out.extend(_head([t for t in head if t.kind != "nl"], True))
        end = _match(toks, k)
        out.extend(toks[k : end + 1])
        i = end + 1
    # `else` chains: `} else = value {`, `} else {`, possibly on the next line
    while True:
        k = _sig(toks, i)
        if k < 0 or toks[k].kind != "ident" or toks[k].text != "else":
            return i
        out.extend(toks[i:k])
        # else head: up to its body brace or the end of the line
        m = k
        prev: Tok | None = None
        while m < n and toks[m].kind != "nl":
            if toks[m].kind == "op" and toks[m].text == "{":
                if prev is not None and prev.kind == "op" and prev.text in ("=", ":="):
                    m = _match(toks, m) + 1
                    prev = toks[m - 1]
                    continue
                break
            if toks[m].kind == "op" and toks[m].text in ("[", "("):
                m = _match(toks, m) + 1
                prev = toks[m - 1]
                continue
            if toks[m].kind not in ("ws", "comment"):
                prev = toks[m]
            m += 1
        else_head = toks[k:m]
        else_body = m < n and toks[m].kind == "op" and toks[m].text == "{"
        out.extend(_head(else_head, else_body))
        if not else_body:
            return m
        end = _match(toks, m)
        out.extend(toks[m : end + 1])
        i = end + 1


def _head(head: list[Tok], has_body: bool) -> list[Tok]:
    sig = [t for t in head if t.kind not in ("ws", "nl", "comment")]
    words = {t.text for t in sig if t.kind == "ident"}
    if "if" in words or "contains" in words:
        return head
    result = list(head)
    # partial set rule: `name[term]` with nothing after the closing bracket
    if len(sig) >= 3 and sig[0].kind == "ident" and sig[1].text == "[" and sig[-1].text == "]":
        open_idx = next(ix for ix, t in enumerate(result) if t is sig[1])
        close_idx = _match(result, open_idx)
        if close_idx == len(result) - 1 or all(t.kind in ("ws", "comment") for t in result[close_idx + 1 :]):
            result = (
                result[:open_idx]
                + [Tok("ident", " contains ", sig[1].line)]
                + result[open_idx + 1 : close_idx]
                + result[close_idx + 1 :]
            )
    if has_body:
        # strip trailing whitespace then add ` if `
        while result and result[-1].kind == "ws":
            result.pop()
        result.append(Tok("ident", " if ", sig[-1].line if sig else 0))
    return result


# ---- reference renaming -------------------------------------------------------------------------------


def rename_refs(src: str, renames: dict[str, str]) -> str:
    """Replace references by dotted prefix, e.g. {"input.parameters": "data.gk.params.c0"}.

    A reference matches when its leading `a.b.c` tokens (also `a["b"]`) equal a key; what follows stays.
    """
    toks = tokenize(src)
    # the longest prefixes first, so `input.parameters` wins over `input`
    keys = {tuple(k.split(".")): v for k, v in sorted(renames.items(), key=lambda kv: -kv[0].count("."))}
    out: list[Tok] = []
    i = 0
    n = len(toks)
    while i < n:
        t = toks[i]
        prev = _sig(toks, i - 1, -1) if i > 0 else -1
        after_dot = prev >= 0 and toks[prev].kind == "op" and toks[prev].text == "." and prev == i - 1
        if t.kind == "ident" and not after_dot:
            done = False
            for key, repl in keys.items():
                end = _ref_prefix(toks, i, key)
                if end is not None:
                    out.append(Tok("ident", repl, t.line))
                    i = end
                    done = True
                    break
            if done:
                continue
        out.append(t)
        i += 1
    return render(out)


def _ref_prefix(toks: list[Tok], i: int, key: tuple[str, ...]) -> int | None:
    """If toks[i:] starts with the reference `key` (dots or ["..."] brackets), the index after it."""
    if toks[i].text != key[0]:
        return None
    j = i + 1
    for part in key[1:]:
        if j < len(toks) and toks[j].text == "." and j + 1 < len(toks) and toks[j + 1].text == part:
            j += 2
        elif (
            j + 2 < len(toks)
            and toks[j].text == "["
            and toks[j + 1].kind == "string"
            and toks[j + 1].text[1:-1] == part
            and toks[j + 2].text == "]"
        ):
            j += 3
        else:
            return None
    # a longer identifier such as `input.parametersX` is not a match
    if j < len(toks) and toks[j].kind == "ident":
        return None
    return j


def package_of(src: str) -> str:
    toks = [t for t in tokenize(src) if t.kind not in ("ws", "comment")]
    for i, t in enumerate(toks):
        if t.kind == "ident" and t.text == "package":
            parts = []
            j = i + 1
            while j < len(toks) and (toks[j].kind in ("ident", "string") or toks[j].text in (".", "[", "]")):
                if toks[j].kind == "ident":
                    parts.append(toks[j].text)
                elif toks[j].kind == "string":
                    parts.append(toks[j].text[1:-1])
                j += 1
            return ".".join(parts)
    return ""


def set_package(src: str, package: str) -> str:
    toks = tokenize(src)
    for i, t in enumerate(toks):
        if t.kind == "ident" and t.text == "package":
            j = i + 1
            while j < len(toks) and toks[j].kind != "nl":
                j += 1
            return render(toks[:i]) + f"package {package}" + render(toks[j:])
    raise TranslateError(1, "no package declaration")


def uses_word(src: str, word: str) -> int | None:
    """The line of the first use of a keyword or identifier, or None."""
    for t in tokenize(src):
        if t.kind == "ident" and t.text == word:
            return t.line
    return None


def references(src: str, dotted: str) -> bool:
    toks = tokenize(src)
    key = tuple(dotted.split("."))
    return any(t.kind == "ident" and _ref_prefix(toks, i, key) is not None for i, t in enumerate(toks))


# ---- rewrites around regopy defects ------------------------------------------------------------------

_VALUE_END = ("ident", "string", "raw", "number")


def _parents(toks: list[Tok]) -> list[int]:
    """For each token, the index of the innermost open bracket enclosing it (-1 at the top level)."""
    stack: list[int] = []
    parents: list[int] = []
    for i, t in enumerate(toks):
        if t.kind == "op" and t.text in CLOSE:
            if stack:
                stack.pop()
            parents.append(stack[-1] if stack else -1)
            continue
        parents.append(stack[-1] if stack else -1)
        if t.kind == "op" and t.text in OPEN:
            stack.append(i)
    return parents


def _is_body_open(toks: list[Tok], parents: list[int], g: int) -> int | None:
    """If the group opened at g holds a query (a rule body, `every` body or comprehension body), the index of
    the token its statements start after (the `{`, or the comprehension's `|`); otherwise None."""
    t = toks[g]
    for j in range(g + 1, len(toks)):
        if parents[j] != g:
            continue
        if toks[j].kind == "op" and toks[j].text in CLOSE:
            break
        if toks[j].kind == "op" and toks[j].text == "|":
            return j
    if t.text != "{":
        return None
    p = _sig(toks, g - 1, -1)
    if p >= 0 and toks[p].kind == "ident" and toks[p].text in ("if", "else"):
        return g
    # `every x in xs {`: the line holds `every` at the same depth
    k = p
    while k >= 0 and toks[k].kind != "nl":
        if toks[k].kind == "ident" and toks[k].text == "every" and parents[k] == parents[g]:
            return g
        k -= 1
    return None


def _statement_start(toks: list[Tok], parents: list[int], i: int) -> tuple[int, bool] | None:
    """The first token of the query statement containing token i, and whether it is negated."""
    g = parents[i]
    node = i
    while g >= 0:
        start_after = _is_body_open(toks, parents, g)
        if start_after is not None and node > start_after:
            k = node
            while True:
                k -= 1
                if k <= start_after:
                    break
                if parents[k] == g and toks[k].kind in ("nl",) or (parents[k] == g and toks[k].text == ";"):
                    break
            s = _sig(toks, k + 1)
            return s, toks[s].kind == "ident" and toks[s].text == "not"
        node = g
        g = parents[g]
    return None


def _index_ref(toks: list[Tok], close: int, parents: list[int]) -> int | None:
    """For an index `[v]` closing at `close` whose key is a variable, the start of the reference it ends."""
    open_ = parents[close + 1] if False else None
    # find the matching open bracket
    depth = 0
    k = close
    while k >= 0:
        if toks[k].text in CLOSE and toks[k].kind == "op":
            depth += 1
        elif toks[k].text in OPEN and toks[k].kind == "op":
            depth -= 1
            if depth == 0:
                open_ = k
                break
        k -= 1
    if open_ is None or toks[open_].text != "[" or close - open_ != 2 or toks[open_ + 1].kind != "ident":
        return None
    if toks[open_ + 1].text in ("true", "false", "null"):
        return None
    # the term before `[` must end a reference: an identifier, or `]`
    k = open_ - 1
    if k < 0 or not (toks[k].kind == "ident" or toks[k].text == "]"):
        return None
    # walk back over `a.b[c].d` chains
    while k >= 0:
        if toks[k].kind == "ident":
            if k >= 1 and toks[k - 1].text == ".":
                k -= 2
                continue
            return k
        if toks[k].text == "]":
            depth = 0
            while k >= 0:
                if toks[k].text == "]":
                    depth += 1
                elif toks[k].text == "[":
                    depth -= 1
                    if depth == 0:
                        break
                k -= 1
            k -= 1
            continue
        return None
    return None


def hoist_call_args(src: str) -> str:
    """Hoist references indexed by a variable (`xs[_]`, `xs[i]`) out of call arguments.

    `f(xs[_])` fails to compile on regopy and `some i; f(xs[i])` can silently yield nothing; both are
    rewritten as `__hoistN := xs[_]; f(__hoistN)` at the start of the statement. Outside negation this is the
    same query (the reference is enumerated either way); negated statements are left alone.
    """
    for _ in range(200):  # one hoist per pass: indices move after each insertion
        toks = tokenize(src)
        parents = _parents(toks)
        found = _find_hoist(toks, parents)
        if found is None:
            return src
        ref_start, close, stmt = found
        name = f"__hoist{_ + 1}"
        expr = render(toks[ref_start : close + 1])
        src = render(toks[:stmt]) + f"{name} := {expr}; " + render(toks[stmt:ref_start]) + name + render(toks[close + 1 :])
    return src


def _find_hoist(toks: list[Tok], parents: list[int]) -> tuple[int, int, int] | None:
    for i, t in enumerate(toks):
        if not (t.kind == "op" and t.text == "("):
            continue
        p = i - 1
        if p < 0 or toks[p].kind != "ident" or toks[p].text in ("if", "not", "some", "in", "else"):
            continue
        if parents[i] == -1:
            continue  # a rule head (function definition), not a call
        close_call = _match(toks, i)
        for c in range(i + 1, close_call):
            if toks[c].text != "]" or toks[c].kind != "op":
                continue
            # skip anything inside a comprehension nested in the arguments
            g = parents[c]
            inside_comp = False
            while g > i:
                if _is_body_open(toks, parents, g) is not None:
                    inside_comp = True
                    break
                g = parents[g]
            if inside_comp:
                continue
            start = _index_ref(toks, c, parents)
            if start is None or start <= i:
                continue
            st = _statement_start(toks, parents, i)
            if st is None:
                continue
            stmt, negated = st
            if negated:
                continue
            return start, c, stmt
    return None


def guard_negated_args(src: str) -> str:
    """In a negated statement, a call argument that is a plain path (`params.ranges`) is evaluated before the
    negation, as OPA does: an undefined argument makes the statement fail, not succeed. Each such path gets a
    guard `_ = params.ranges; ` before the statement, and the call keeps its argument. (Hoisting the path
    into a variable instead made regopy evaluate the Gatekeeper guardrails about 40% slower.)"""
    toks = tokenize(src)
    parents = _parents(toks)
    guards: dict[int, list[str]] = {}
    for i, t in enumerate(toks):
        if not (t.kind == "op" and t.text == "("):
            continue
        p = i - 1
        if p < 0 or toks[p].kind != "ident" or toks[p].text in ("if", "not", "some", "in", "else") or parents[i] == -1:
            continue
        st = _statement_start(toks, parents, i)
        if st is None or not st[1]:
            continue
        for a in range(i + 1, _match(toks, i)):
            if parents[a] != i or toks[a].kind != "ident" or toks[a - 1].text == ".":
                continue
            end = _plain_path_end(toks, a)
            if end is not None:
                expr = render(toks[a : end + 1])
                if expr not in guards.setdefault(st[0], []):
                    guards[st[0]].append(expr)
    if not guards:
        return src
    out: list[str] = []
    for i, t in enumerate(toks):
        out.extend(f"_ = {expr}; " for expr in guards.get(i, []))
        out.append(t.text)
    return "".join(out)


def _plain_path_end(toks: list[Tok], a: int) -> int | None:
    """If toks[a:] is a path `x.y.z` (at least one dot, constant indexes only) standing alone as an argument,
    the index of its last token."""
    j = a
    dots = 0
    while True:
        if j + 2 < len(toks) and toks[j + 1].text == "." and toks[j + 2].kind == "ident":
            j += 2
            dots += 1
        elif (
            j + 3 < len(toks)
            and toks[j + 1].text == "["
            and toks[j + 2].kind in ("string", "number")
            and toks[j + 3].text == "]"
        ):
            j += 3
            dots += 1
        else:
            break
    after = _sig(toks, j + 1)
    if dots == 0 or after < 0 or toks[after].text not in (",", ")"):
        return None
    before = _sig(toks, a - 1, -1)
    if before < 0 or toks[before].text not in (",", "("):
        return None
    return j


def guard_paren_lines(src: str) -> str:
    """A query line starting with `(` after a line ending in a term is parsed (and crashes) as a call of that
    term on regopy; prefixing the line with `true; ` makes it a statement of its own."""
    toks = tokenize(src)
    parents = _parents(toks)
    out: list[Tok] = []
    for i, t in enumerate(toks):
        if t.kind == "op" and t.text == "(" and parents[i] >= 0:
            prev = _sig(toks, i - 1, -1)
            newline_between = any(toks[k].kind == "nl" for k in range(prev + 1, i)) if prev >= 0 else False
            if (
                newline_between
                and (toks[prev].kind in _VALUE_END or toks[prev].text in CLOSE)
                and _is_body_open(toks, parents, parents[i]) is not None
            ):
                out.append(Tok("ident", "true; ", t.line))
        out.append(t)
    return render(out)


HELPERS = {
    # regopy's sprintf prints a string that reached it through a variable or function argument with its
    # JSON quotes (unescaped); passing each string argument through a builtin first avoids it.
    "sprintf": (
        "__gk_sprintf",
        '__gk_clean(a) := substring(a, 0, -1) if { is_string(a) } else := a\n\n'
        "__gk_sprintf(f, args) := sprintf(f, [__gk_clean(a) | some a in args])\n",
    ),
    # regopy's sort of a set returns a set; OPA returns a sorted array.
    "sort": ("__gk_sort", "__gk_sort(x) := sort([v | some v in x])\n"),
}


def quote_verbs(src: str) -> str:
    """regopy's sprintf does not know `%q` (it prints it and consumes no argument). In a literal format,
    `%q` becomes `\\"%v\\"`: the same text as Go's quoting for strings without characters to escape.
    (Quoting through json.marshal is no way out: a computed string starting with a quote is printed
    unescaped by sprintf, another regopy defect.)"""
    toks = tokenize(src)
    hit = False
    for i, t in enumerate(toks):
        if t.kind == "ident" and t.text == "sprintf" and i + 1 < len(toks) and toks[i + 1].text == "(":
            f = _sig(toks, i + 2)
            if f >= 0 and toks[f].kind == "string" and re.search(r"(?<!%)%q", toks[f].text):
                toks[f].text = re.sub(r"(?<!%)%q", lambda _m: '\\"%v\\"', toks[f].text)
                hit = True
    return render(toks) if hit else src


def wrap_builtins(src: str) -> str:
    """Route calls of builtins regopy gets wrong through helpers appended to the module (see HELPERS)."""
    toks = tokenize(src)
    used: list[str] = []
    for i, t in enumerate(toks):
        if t.kind == "ident" and t.text in HELPERS and i + 1 < len(toks) and toks[i + 1].text == "(":
            if i > 0 and toks[i - 1].text == ".":
                continue
            name = t.text
            t.text = HELPERS[name][0]
            if name not in used:
                used.append(name)
    if not used:
        return src
    helpers = "\n".join(HELPERS[name][1] for name in used)
    return render(toks).rstrip("\n") + "\n\n# added by admission: helpers around regopy defects\n" + helpers


def iterate_with_some(src: str) -> str:
    """`x := xs[_]` becomes `some x in xs`.

    On regopy, a variable bound by `x := xs[_]` and then used as an index (`obj[x]`) crashes the process;
    `some x in xs` binds the same values (array/set elements, object values) and does not.
    """
    toks = tokenize(src)
    parents = _parents(toks)
    edits: list[tuple[int, int, str]] = []
    for i, t in enumerate(toks):
        if not (t.kind == "op" and t.text == ":=") or parents[i] < 0:
            continue
        var = _sig(toks, i - 1, -1)
        if var < 0 or toks[var].kind != "ident" or toks[var].text == "_":
            continue
        before = _sig(toks, var - 1, -1)
        if before < 0:
            continue
        boundary = toks[before].text in (";", "{", "|") or any(toks[k].kind == "nl" for k in range(before + 1, var))
        if not boundary or _is_body_open(toks, parents, parents[i]) is None:
            continue
        # the right side: a term ending in `[_]`, up to the end of the statement
        j = i + 1
        depth = 0
        last: list[int] = []  # significant tokens at depth 0 (brackets included)
        while j < len(toks):
            tj = toks[j]
            if tj.kind == "op" and tj.text in OPEN:
                depth += 1
                if depth == 1:
                    last.append(j)
                j += 1
                continue
            if tj.kind == "op" and tj.text in CLOSE:
                if depth == 0:
                    break  # the enclosing body or comprehension ends
                depth -= 1
                if depth == 0:
                    last.append(j)
                j += 1
                continue
            if depth == 0:
                if tj.kind == "nl" or tj.text in (";", "|"):
                    break
                if tj.kind == "op" and tj.text != ".":
                    last = []
                    break
                if tj.kind not in ("ws", "comment"):
                    last.append(j)
            j += 1
        if len(last) < 3 or toks[last[-1]].text != "]" or toks[last[-2]].text != "[":
            continue
        if render(toks[last[-2] + 1 : last[-1]]).strip() != "_":
            continue
        last = last[:-1] + [last[-2] + 1, last[-1]]  # [ _ ] as three tokens
        term = render(toks[last[0] : last[-3]])
        edits.append((var, last[-1], f"some {toks[var].text} in {term}"))
    for start, end, text in reversed(edits):
        toks[start : end + 1] = [Tok("ident", text, toks[start].line)]
    return render(toks)


_SIMPLE_REF = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def some_pairs_as_lookups(src: str) -> str:
    """`some k, v in xs` becomes `some k; v := xs[k]` (`xs` held in a variable first when it is not a plain
    reference; `_` for the key becomes a fresh variable, `_` for the value `_ = xs[k]`).

    regopy refuses `some k, v in xs` in a comprehension body ("Invalid collection"), and partial set rules
    become comprehensions here. Same bindings: object keys and values, array indexes and elements, a set's
    element twice.
    """
    toks = tokenize(src)
    parents = _parents(toks)
    edits: list[tuple[int, int, str]] = []
    fresh = 0
    for i, t in enumerate(toks):
        if not (t.kind == "ident" and t.text == "some"):
            continue
        a = _sig(toks, i + 1)
        comma = _sig(toks, a + 1) if a >= 0 else -1
        b = _sig(toks, comma + 1) if comma >= 0 else -1
        in_ = _sig(toks, b + 1) if b >= 0 else -1
        if in_ < 0 or toks[a].kind != "ident" or toks[comma].text != "," or toks[b].kind != "ident":
            continue
        if toks[in_].text != "in" or len({parents[i], parents[a], parents[b], parents[in_]}) != 1:
            continue
        g = parents[i]
        if g < 0:
            continue
        close = _match(toks, g)
        end = close
        for j in range(in_ + 1, close):
            if parents[j] == g and (toks[j].kind == "nl" or toks[j].text == ";"):
                end = j
                break
        collection = render(toks[in_ + 1 : end]).strip()
        if not collection:
            continue
        out = []
        if not _SIMPLE_REF.fullmatch(collection):
            fresh += 1
            out.append(f"__pairs{fresh} := {collection}")
            collection = f"__pairs{fresh}"
        key, value = toks[a].text, toks[b].text
        if key == "_":
            fresh += 1
            key = f"__key{fresh}"
        out.append(f"some {key}")
        out.append(f"_ = {collection}[{key}]" if value == "_" else f"{value} := {collection}[{key}]")
        edits.append((i, end, "; ".join(out)))
    for start, end, text in reversed(edits):
        toks[start:end] = [Tok("ident", text, toks[start].line)]
    return render(toks)


@dataclass
class Statement:
    """A top-level statement of a module: a rule or function definition, or a package or import line."""

    name: str  # the rule or function it defines; "" for package and import lines
    start: int
    end: int  # token range [start, end)
    function: bool = False  # `name(args) ...`
    ref_head: bool = False  # `name.key ... := ...`


def statement_starts(toks: list[Tok], parents: list[int]) -> list[int]:
    """Where top-level statements start: each line whose first token is an identifier outside any bracket,
    except `else` (which continues the rule before it)."""
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
    return starts


def statements(toks: list[Tok], parents: list[int]) -> list[Statement]:
    """The module's top-level statements, or [] for one this cannot read (`default` without a name)."""
    starts = statement_starts(toks, parents)
    out: list[Statement] = []
    for n, s in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(toks)
        word = toks[s].text
        if word in ("package", "import"):
            out.append(Statement("", s, end))
            continue
        k = s
        if word == "default":
            k = _sig(toks, s + 1)
            if k < 0 or toks[k].kind != "ident":
                return []
        after = _sig(toks, k + 1)
        nxt = toks[after].text if after >= 0 else ""
        out.append(Statement(toks[k].text, s, end, function=(after == k + 1 and nxt == "("), ref_head=(nxt == ".")))
    return out


def call_at(toks: list[Tok], i: int) -> tuple[list[str], int] | None:
    """For a call starting at token i (`f(`, `ns.f(`, `data.pkg.f(`): the dotted name's words and the index of
    its `(`; None when no call starts there."""
    if toks[i].kind != "ident":
        return None
    words = [toks[i].text]
    j = i + 1
    while j + 1 < len(toks) and toks[j].text == "." and toks[j + 1].kind == "ident":
        words.append(toks[j + 1].text)
        j += 2
    if j >= len(toks) or toks[j].text != "(":
        return None
    return words, j


def imported(toks: list[Tok], st: Statement) -> tuple[str, tuple[str, ...]] | None:
    """For an import line: the name it binds and the path it names (`import data.lib.x as y` -> ("y",
    ("data", "lib", "x"))); None for other statements."""
    words = [t.text for t in toks[st.start : st.end] if t.kind not in ("ws", "nl", "comment")]
    if len(words) < 2 or words[0] != "import":
        return None
    path = words[1:]
    alias = ""
    if "as" in path:
        k = path.index("as")
        alias = path[k + 1] if k + 1 < len(path) else ""
        path = path[:k]
    dotted = tuple(w for w in path if w != ".")
    if not dotted:
        return None
    return alias or dotted[-1], dotted


def defined_functions(src: str) -> set[str]:
    """Names of the functions a module defines at its top level (helpers added here excluded)."""
    toks = tokenize(src)
    names = {st.name for st in statements(toks, _parents(toks)) if st.function}
    return {n for n in names if not n.startswith("__gk_")}


def rename_functions(src: str, suffix: str, only: set[str] | None = None) -> str:
    """Give the functions a module defines (and its unqualified calls of them) module-unique names.

    regopy crashes compiling two packages that define functions of the same name with different arities
    (e.g. two templates' `get_message`); renaming keeps each module's functions apart. `only` limits the
    renaming to those names (the ones no other module refers to)."""
    names = defined_functions(src)
    if only is not None:
        names &= only
    if not names:
        return src
    toks = tokenize(src)
    for i, t in enumerate(toks):
        if t.kind == "ident" and t.text in names and i + 1 < len(toks) and toks[i + 1].text == "(":
            if i > 0 and toks[i - 1].text == ".":
                continue
            t.text = f"{t.text}__{suffix}"
    return render(toks)


def qualified_words(src: str) -> set[str]:
    """Identifiers used after a dot (`data.a.f`, `alias.f`, `import data.a.f`): how one module refers to
    another's rules and functions. An unqualified `f(` is the module's own (or an import, itself dotted)."""
    toks = tokenize(src)
    return {t.text for i, t in enumerate(toks) if t.kind == "ident" and i > 0 and toks[i - 1].text == "."}


def translate(src: str) -> str:
    """v0 -> v1, then the defect rewrites."""
    return wrap_builtins(
        quote_verbs(guard_paren_lines(some_pairs_as_lookups(iterate_with_some(guard_negated_args(hoist_call_args(to_v1(src)))))))
    )


_PartialSet = tuple[int, tuple[int, int], int, int]  # rule start, head token range, body braces


def _iterates(toks: list[Tok], open_: int, close: int) -> bool:
    """Whether the body between the braces iterates (`some`, `every` or a `_` index)."""
    return any(t.kind == "ident" and t.text in ("some", "every", "_") for t in toks[open_:close])


def partial_sets_as_comprehensions(src: str) -> str:
    """`name contains head if { body }` becomes `name := {head | body}` (one complete rule holding a set
    comprehension; several bodies become helper rules joined with `|`) when a body iterates.

    Same value: the set of heads over every solution of the bodies, empty when there is none. regopy
    evaluates the comprehension form much faster when the body iterates (a Gatekeeper template's violation
    rule over containers: ~20-40% less time) and a little slower when it does not (~5 µs a rule). Only
    for names that the module defines with such rules alone, since a complete rule
    cannot be extended elsewhere: callers apply it to modules whose package no other module shares."""
    toks = tokenize(src)
    parents = _parents(toks)
    rules: dict[str, list[_PartialSet | None]] = {}  # None: a definition of another shape
    for i in statement_starts(toks, parents):
        t = toks[i]
        if t.text in ("package", "import"):
            continue
        if t.text == "default":
            k = _sig(toks, i + 1)
            if k >= 0 and toks[k].kind == "ident":
                rules.setdefault(toks[k].text, []).append(None)
            continue
        rules.setdefault(t.text, []).append(_partial_set_rule(toks, parents, i))
    edits: list[tuple[int, int, str]] = []
    tail: list[str] = []
    for name, defs in rules.items():
        if not defs or any(d is None for d in defs):
            continue
        found = [d for d in defs if d is not None]
        if not any(_iterates(toks, d[2], d[3]) for d in found):
            continue  # a body without iteration is evaluated a little faster as a partial rule
        helpers = [name] if len(found) == 1 else [f"__set_{name}_{n + 1}" for n in range(len(found))]
        for (start, head_range, open_, close), helper in zip(found, helpers, strict=True):
            head = render(toks[head_range[0] : head_range[1]]).strip()
            edits.append((start, open_ + 1, f"{helper} := {{{head} |"))
            edits.append((close, close, ""))
        if len(found) > 1:
            tail.append(f"{name} := {' | '.join(helpers)}")
    if not edits:
        return src
    out = list(toks)
    for start, end, text in sorted(edits, key=lambda e: -e[0]):
        if start == end:
            continue
        out[start:end] = [Tok("ident", text, toks[start].line)]
    rendered = render(out)
    return rendered.rstrip("\n") + "\n\n" + "\n".join(tail) + "\n" if tail else rendered


def _partial_set_rule(toks: list[Tok], parents: list[int], i: int) -> _PartialSet | None:
    """For a top-level rule starting at i shaped `name contains head if { body }`: its start, the head's token
    range, and the body's braces; None for any other rule."""
    k = _sig(toks, i + 1)
    if k < 0 or toks[k].text != "contains":
        return None
    head_start = k + 1
    j = head_start
    while j < len(toks) and not (toks[j].kind == "ident" and toks[j].text == "if" and parents[j] == -1):
        if toks[j].kind == "nl" and parents[j] == -1:
            return None  # a rule without a body
        if toks[j].text == "|" and parents[j] == -1:
            return None  # `a | b` as head would read as a comprehension
        j += 1
    open_ = _sig(toks, j + 1)
    if j >= len(toks) or open_ < 0 or toks[open_].text != "{":
        return None
    close = _match(toks, open_)
    after = _sig(toks, close + 1)
    if after >= 0 and toks[after].kind == "ident" and toks[after].text == "else":
        return None
    return i, (head_start, j), open_, close
