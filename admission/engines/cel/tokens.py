"""CEL's lexical structure, and the two source passes the Kubernetes environment needs before cel-cpp compiles.

cel-expr-python offers no AST to rewrite, so these passes work on tokens (never on raw text: strings and
comments are tokens of their own, so nothing inside them is touched), and keep every other character where
it was:

- `object_literals`: `Object{spec: Object.spec{replicas: 3}}` and `JSONPatch{op: "add", ...}` (the typed
  literals of MutatingAdmissionPolicy, whose types cel-go derives from the object's schema) become map
  literals, `{"spec": {"replicas": 3}}`. The API server checks the fields against the schema; here the
  result is checked when it is applied (admission.engines.cel.mutation).
- `inline_variables`: `variables.name` becomes a `cel.bind` of the variable's own (already rewritten)
  expression around the expression that uses it, so that a policy's variables need no second binding of
  the request. cel-go evaluates a variable lazily, once per evaluation of the policy; here it is evaluated
  once per expression that reads it (the same value: expressions have no side effects), and an error in a
  variable is an error of every expression that reads it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

_PUNCT2 = ("==", "!=", "<=", ">=", "&&", "||", ".?")
_PUNCT1 = "+-*/%<>!?:.,()[]{}="


@dataclass(frozen=True)
class Token:
    kind: str  # "ident" | "string" | "number" | "punct" | "space" | "comment"
    text: str
    start: int


class TokenError(ValueError):
    pass


def tokenize(source: str) -> list[Token]:
    """Every character of the source in exactly one token (so joining the texts gives the source back)."""
    out: list[Token] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch.isspace():
            j = i
            while j < n and source[j].isspace():
                j += 1
            out.append(Token("space", source[i:j], i))
            i = j
        elif source.startswith("//", i):
            j = source.find("\n", i)
            j = n if j < 0 else j
            out.append(Token("comment", source[i:j], i))
            i = j
        elif ch in "'\"" or (ch in "rRbB" and i + 1 < n and source[i + 1] in "'\"") or (
                ch in "rRbB" and i + 2 < n and source[i + 1] in "rRbB" and source[i + 2] in "'\""):
            j = _string_end(source, i)
            out.append(Token("string", source[i:j], i))
            i = j
        elif ch.isalpha() or ch == "_":
            j = i
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            out.append(Token("ident", source[i:j], i))
            i = j
        elif ch.isdigit():
            j = i
            while j < n and (source[j].isalnum() or source[j] in "._" or (
                    source[j] in "+-" and source[j - 1] in "eE" and not source[i:j].lower().startswith("0x"))):
                if source[j] == "." and not (j + 1 < n and source[j + 1].isdigit()):
                    break
                j += 1
            out.append(Token("number", source[i:j], i))
            i = j
        elif source[i:i + 2] in _PUNCT2:
            out.append(Token("punct", source[i:i + 2], i))
            i += 2
        else:
            out.append(Token("punct", ch, i))
            i += 1
    return out


def _string_end(source: str, i: int) -> int:
    j = i
    raw = False
    while source[j] in "rRbB":
        raw = raw or source[j] in "rR"
        j += 1
    quote = source[j]
    triple = source.startswith(quote * 3, j)
    delim = quote * 3 if triple else quote
    j += len(delim)
    while j < len(source):
        if source[j] == "\\" and not raw:
            j += 2
            continue
        if source.startswith(delim, j):
            return j + len(delim)
        if source[j] == "\n" and not triple:
            break
        j += 1
    raise TokenError(f"unterminated string starting at column {i + 1}")


def _significant(tokens: Sequence[Token], i: int, step: int) -> int:
    """The index of the next token from i (in direction step) that is not space or comment, or -1."""
    j = i + step
    while 0 <= j < len(tokens) and tokens[j].kind in ("space", "comment"):
        j += step
    return j if 0 <= j < len(tokens) else -1


def object_literals(source: str, type_names: Collection[str]) -> str:
    """Typed object literals of the given root type names as map literals (see the module docstring)."""
    if not type_names or not any(name in source for name in type_names):
        return source
    tokens = tokenize(source)
    out: list[str] = []
    stack: list[bool] = []  # per open brace: is it a typed literal (whose field names are identifiers)?
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "ident" and t.text in type_names:
            prev = _significant(tokens, i, -1)
            if prev < 0 or tokens[prev].text != ".":
                # the type name: IDENT ( . IDENT )* followed by {
                j = i
                while True:
                    k = _significant(tokens, j, 1)
                    if k >= 0 and tokens[k].text == "." and (m := _significant(tokens, k, 1)) >= 0 and \
                            tokens[m].kind == "ident":
                        j = m
                        continue
                    break
                brace = _significant(tokens, j, 1)
                if brace >= 0 and tokens[brace].text == "{":
                    out.append(" " * (tokens[brace].start - t.start))
                    out.append("{")
                    stack.append(True)
                    i = brace + 1
                    i = _field_name(tokens, i, out)
                    continue
        if t.text == "{":
            stack.append(False)
        elif t.text == "}" and stack:
            stack.pop()
        out.append(t.text)
        i += 1
        if t.text == "," and stack and stack[-1] and _inside_top_level(tokens, i):
            i = _field_name(tokens, i, out)
    return "".join(out)


def _inside_top_level(tokens: Sequence[Token], i: int) -> bool:
    """Whether the comma just before i separates fields of the innermost brace (not arguments of a call or
    items of a list inside a field's value)."""
    depth = 0
    j = i - 2
    while j >= 0:
        text = tokens[j].text
        if text in (")", "]", "}"):
            depth += 1
        elif text in ("(", "["):
            if depth == 0:
                return False
            depth -= 1
        elif text == "{":
            if depth == 0:
                return True
            depth -= 1
        j -= 1
    return False


def _field_name(tokens: Sequence[Token], i: int, out: list[str]) -> int:
    """At a field position of a typed literal: copy spaces, an optional `?`, and quote the field name."""
    while i < len(tokens) and tokens[i].kind in ("space", "comment"):
        out.append(tokens[i].text)
        i += 1
    if i < len(tokens) and tokens[i].text == "?":
        out.append("?")
        i += 1
    if i < len(tokens) and tokens[i].kind == "ident":
        colon = _significant(tokens, i, 1)
        if colon >= 0 and tokens[colon].text == ":":
            out.append(f'"{tokens[i].text}"')
            return i + 1
    return i


@dataclass(frozen=True)
class Definition:
    """A named expression other expressions read as `variables.<name>` (a policy's `variables`)."""

    name: str
    source: str
    where: str


def variable_references(source: str) -> list[str]:
    """The names read as `variables.<name>` in an expression, in order of first use."""
    tokens = tokenize(source)
    names: list[str] = []
    for i in range(len(tokens)):
        name = _variable_at(tokens, i)
        if name and name not in names:
            names.append(name)
    return names


def _variable_at(tokens: Sequence[Token], i: int) -> str:
    t = tokens[i]
    if t.kind != "ident" or t.text != "variables":
        return ""
    prev = _significant(tokens, i, -1)
    if prev >= 0 and tokens[prev].text in (".", "?."):
        return ""
    dot = _significant(tokens, i, 1)
    if dot < 0 or tokens[dot].text != ".":
        return ""
    name = _significant(tokens, dot, 1)
    return tokens[name].text if name >= 0 and tokens[name].kind == "ident" else ""


def bound_name(name: str) -> str:
    return f"__variables_{name}__"


def replace_variables(source: str) -> str:
    """`variables.<name>` replaced by the identifier cel.bind gives the value (columns kept where they fit)."""
    tokens = tokenize(source)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        name = _variable_at(tokens, i)
        if name:
            out.append(bound_name(name))
            i = _significant(tokens, _significant(tokens, i, 1), 1) + 1
            continue
        out.append(tokens[i].text)
        i += 1
    return "".join(out)


def inline_variables(source: str, definitions: Sequence[Definition]) -> str:
    """The expression with every variable it reads (directly or through other variables) bound around it."""
    by_name = {d.name: d for d in definitions}
    needed: set[str] = set()
    pending = [n for n in variable_references(source) if n in by_name]
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed.add(name)
        pending.extend(n for n in variable_references(by_name[name].source) if n in by_name and n not in needed)
    if not needed:
        return source
    body = replace_variables(source)
    for d in reversed([d for d in definitions if d.name in needed]):
        body = f"cel.bind({bound_name(d.name)}, ({replace_variables(d.source)}), {body})"
    return body
