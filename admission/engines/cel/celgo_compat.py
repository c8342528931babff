"""Where cel-go (the CEL of Kubernetes, Kyverno and Gatekeeper) and cel-cpp (ours) differ, and policies rely
on cel-go's behaviour: presence tests on a path (presence_chains), `orValue` on a value that is not an
optional (lenient_or_value), typed object literals compared with null (typed_literals_as_dyn). Each pass
rewrites an expression's source before it is compiled; what the policy's author wrote is what errors quote.

Presence tests on a path: cel-go evaluates `has(a.b.c.d)` by qualifying the path "if present", so a missing
intermediate field (`a.b` absent) makes the test false; cel-cpp evaluates `a.b.c` first and fails with
"no such key". Policies rely on cel-go's reading (Gatekeeper's seccomp templates test
`has(variables.anyObject.spec.securityContext.seccompProfile.type)` on pods without a securityContext), so
`presence_chains` rewrites such a test into the conjunction of the tests along its path before compiling:
`has(a.b) && has(a.b.c) && has(a.b.c.d)`, which is what cel-go computes. Only plain dotted paths of two
or more selections are rewritten; string literals are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_STRING = re.compile(r"""(?s)[rR]?('''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*")""")
_HAS = re.compile(r"(?<![\w.])has\(\s*([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*){2,})\s*\)")


def _rewrite(code: str) -> str:
    def chain(m: re.Match[str]) -> str:
        parts = [p.strip() for p in m.group(1).split(".")]
        tests = [f"has({'.'.join(parts[:i])})" for i in range(2, len(parts) + 1)]
        return "(" + " && ".join(tests) + ")"

    return _HAS.sub(chain, code)


def presence_chains(source: str) -> str:
    """The expression with every `has()` of a dotted path tested along the path (see the module)."""
    if "has(" not in source:
        return source
    out: list[str] = []
    last = 0
    for m in _STRING.finditer(source):
        out.append(_rewrite(source[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(_rewrite(source[last:]))
    return "".join(out)


def typed_literals_as_dyn(source: str, type_names: tuple[str, ...]) -> str:
    """Each typed object literal (`JSONPatch{...}`, `Object{...}`) wrapped in `dyn(...)`.

    In cel-go these literals are messages of schema types, and a message type accepts `null`
    (`cond ? JSONPatch{...} : null`, as upstream mutations write it). The core reads them as maps
    (admission.engines.cel.tokens.object_literals), and a map and null have no common type; as dyn they do."""
    if not type_names or not any(name in source for name in type_names):
        return source
    from admission.engines.cel.tokens import tokenize

    tokens = tokenize(source)
    out: list[str] = []
    closing: list[int] = []  # brace depths at which a wrapped literal ends
    depth = 0
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "ident" and t.text in type_names and not closing and _literal_start(tokens, i):
            out.append("dyn(")
            closing.append(depth)
        if t.kind == "punct" and t.text == "{":
            depth += 1
        elif t.kind == "punct" and t.text == "}":
            depth -= 1
            if closing and closing[-1] == depth:
                out.append("}")
                out.append(")")
                closing.pop()
                i += 1
                continue
        out.append(t.text)
        i += 1
    return "".join(out)


def _literal_start(tokens: Sequence[object], i: int) -> bool:
    """Whether the identifier at i begins `Name(.Name)* {` and is not itself a field (`x.Object`)."""
    def significant(j: int, step: int) -> int:
        j += step
        while 0 <= j < len(tokens) and getattr(tokens[j], "kind", "") in ("space", "comment"):
            j += step
        return j if 0 <= j < len(tokens) else -1

    prev = significant(i, -1)
    if prev >= 0 and getattr(tokens[prev], "text", "") == ".":
        return False
    j = i
    while True:
        k = significant(j, 1)
        if k < 0:
            return False
        text = getattr(tokens[k], "text", "")
        if text == "{":
            return True
        if text != ".":
            return False
        m = significant(k, 1)
        if m < 0 or getattr(tokens[m], "kind", "") != "ident":
            return False
        j = m


# -- `x.orValue(d)` on a value that is not an optional -------------------------------------------------

_OPENERS = {")": "(", "]": "[", "}": "{"}
_BOUND = "__orv{}__"


def _next(tokens: Sequence[Any], i: int, step: int) -> int:
    j = i + step
    while 0 <= j < len(tokens) and tokens[j].kind in ("space", "comment"):
        j += step
    return j if 0 <= j < len(tokens) else -1


def _opener(tokens: Sequence[Any], close: int) -> int:
    """The index of the bracket that the one at `close` closes, or -1."""
    want, depth = _OPENERS[tokens[close].text], 0
    for j in range(close, -1, -1):
        text = tokens[j].text if tokens[j].kind == "punct" else ""
        if text == tokens[close].text:
            depth += 1
        elif text == want:
            depth -= 1
            if depth == 0:
                return j
    return -1


def _closer(tokens: Sequence[Any], open_: int) -> int:
    pairs = {v: k for k, v in _OPENERS.items()}
    want, depth = pairs[tokens[open_].text], 0
    for j in range(open_, len(tokens)):
        text = tokens[j].text if tokens[j].kind == "punct" else ""
        if text == tokens[open_].text:
            depth += 1
        elif text == want:
            depth -= 1
            if depth == 0:
                return j
    return -1


def _receiver_start(tokens: Sequence[Any], dot: int) -> int:
    """The first token of the postfix expression that ends just before the `.` at `dot`, or -1."""
    j = _next(tokens, dot, -1)
    while j >= 0:
        t = tokens[j]
        if t.kind == "punct" and t.text in _OPENERS:
            start = _opener(tokens, j)
            if start < 0:
                return -1
            if t.text == "]":  # an index: the indexed expression goes on before it
                j = _next(tokens, start, -1)
                continue
            before = _next(tokens, start, -1)
            if t.text == ")" and before >= 0 and tokens[before].kind == "ident":
                j = before  # a call: its name (and what it is called on) belong to the receiver
                continue
            return start  # a parenthesised expression or a literal
        if t.kind in ("ident", "string", "number"):
            before = _next(tokens, j, -1)
            if before >= 0 and tokens[before].kind == "punct" and tokens[before].text in (".", ".?"):
                j = _next(tokens, before, -1)
                continue
            return j
        return -1
    return -1


def lenient_or_value(source: str) -> str:
    """`x.orValue(d)` as cel-go evaluates it: x itself when x is not an optional.

    cel-go's `orValue` hands back a receiver that is not an optional unchanged; cel-cpp has no overload for
    it (and none can be added: its optional library owns the name). Kyverno's pod-security policies rely on
    cel-go's reading (`container.securityContext.capabilities.add.orValue([])`, a list). Each such call is
    rewritten to `cel.bind(v, x, type(v) == type(optional.none()) ? v.orValue(d) : v)`, which gives the
    same value for an optional receiver and the receiver itself for any other. Receivers that are optionals
    for sure (a path with `?.` or `[?`, an `optional.` call) are left as they are."""
    if ".orValue" not in source.replace(" ", ""):
        return source
    from admission.engines.cel.tokens import tokenize

    n = 0
    for _ in range(100):
        tokens = tokenize(source)
        for i, t in enumerate(tokens):
            if t.kind != "ident" or t.text != "orValue":
                continue
            dot, paren = _next(tokens, i, -1), _next(tokens, i, 1)
            if dot < 0 or tokens[dot].text != "." or paren < 0 or tokens[paren].text != "(":
                continue
            start = _receiver_start(tokens, dot)
            if start < 0 or tokens[start].text.startswith(("__orv", "optional")):
                continue
            if any(x.kind == "punct" and "?" in x.text for x in tokens[start:dot]):
                continue  # an optional for sure (`a.?b`, `a[?k]`): cel-cpp reads it as cel-go does
            end = _closer(tokens, paren)
            if end < 0:
                continue
            receiver = "".join(x.text for x in tokens[start:dot])
            default = "".join(x.text for x in tokens[paren + 1:end])
            v = _BOUND.format(n)
            n += 1
            rewritten = (f"cel.bind({v}, {receiver}, type({v}) == type(optional.none()) ? "
                         f"{v}.orValue({default}) : {v})")
            source = "".join(x.text for x in tokens[:start]) + rewritten + "".join(x.text for x in tokens[end + 1:])
            break
        else:
            return source
    return source


# -- has(variables.name) ------------------------------------------------------------------------------

_HAS_VARIABLE = re.compile(r"(?<![\w.])has\(\s*variables\s*\.\s*([A-Za-z_]\w*)\s*\)")


def declared_variables_present(source: str, declared: Sequence[str]) -> str:
    """`has(variables.name)` as `true` for a variable the policy declares.

    In cel-go a policy's `variables` holds every declared name, so the test is true (Gatekeeper's seccomp
    templates write `has(variables.hasPodSeccomp)`), also where computing the variable fails (it is lazy);
    here a variable that fails is left out of the map."""
    if "variables" not in source or not declared:
        return source
    names = set(declared)

    def present(code: str) -> str:
        return _HAS_VARIABLE.sub(lambda m: "true" if m.group(1) in names else m.group(0), code)

    out: list[str] = []
    last = 0
    for m in _STRING.finditer(source):
        out.append(present(source[last:m.start()]))
        out.append(m.group(0))
        last = m.end()
    out.append(present(source[last:]))
    return "".join(out)
