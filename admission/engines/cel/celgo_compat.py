"""Where cel-go (the CEL of Kubernetes, Kyverno and Gatekeeper) and cel-cpp (ours) differ, and policies rely
on cel-go's behaviour.

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
