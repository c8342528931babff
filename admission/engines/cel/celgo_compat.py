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
