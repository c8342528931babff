"""Straight-line Python for rule bodies: the compiler's alternative to a chain of continuation closures.

A body is a sequence of steps; the compiler (compiler.py, `Compiler._emit`) describes the steps it can write
out as *ops* (functions writing lines into a `Gen`), and `function(ops, k, env)` turns them into one Python
function `run(ctx, f) -> bool`, compiled once with `compile()`:

    def run(ctx, f):
        c0 = ctx.input.get("review", U) ...      # a reference read step by step, into a local
        if c0 is U: return False                 # undefined: this solution fails
        for k1, x1 in _items(c0):                # an enumeration: a plain loop
            f[3] = k1; f[4] = x1
            ...
            if not t2: continue                  # a failing test inside a loop: the next element
            if k(ctx, f): return True            # the rest of the body (the head, or closures)
        return False

Variables stay in the frame `f` (a list, slots fixed at compile time), so generated code and closures for
what is not written out (comprehensions, `with`, `every`, ...) read and write the same bindings. Constants
and closures are passed in through the function's globals (`env`), never spelled into the source.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any


class Gen:
    """The lines of one generated function, its constants and its nesting (loops)."""

    def __init__(self, env: dict[str, Any]) -> None:
        self.env = dict(env)
        self.lines: list[str] = []
        self.indent = 1
        self.loops = 0
        self._n = 0
        # values read so far on this path: (base, keys) -> (local name, known to be defined); a reference read
        # twice is read once (the frame's slots change only where the ops say so: `forget`)
        self.reads: dict[tuple[str, tuple[Any, ...]], tuple[str, bool]] = {}

    def forget(self, base: str) -> None:
        """The frame slot `base` (`f[3]`) is written: what was read from it is stale."""
        for key in [k for k in self.reads if k[0] == base]:
            del self.reads[key]

    def name(self, prefix: str = "t") -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def const(self, value: Any, prefix: str = "c") -> str:
        """A name in the function's globals bound to value (a constant or a closure)."""
        n = self.name(prefix)
        self.env[n] = value
        return n

    def line(self, text: str) -> None:
        self.lines.append("    " * self.indent + text)

    def fail(self) -> str:
        """The statement that abandons the current solution."""
        return "continue" if self.loops else "return False"

    def open_loop(self, header: str) -> None:
        self.line(header)
        self.indent += 1
        self.loops += 1

    def block(self) -> tuple[int, int, dict[tuple[str, tuple[Any, ...]], tuple[str, bool]]]:
        """The state to return to after a block that ends (`end`): what is read inside stays inside."""
        return self.indent, self.loops, dict(self.reads)

    def end(self, state: tuple[int, int, dict[tuple[str, tuple[Any, ...]], tuple[str, bool]]]) -> None:
        self.indent, self.loops, self.reads = state


Op = Callable[[Gen], None]


_count = itertools.count(1)


def function(ops: list[Op], k: Callable[..., bool] | None, env: dict[str, Any], where: str = "") -> Callable[..., bool]:
    """The ops, then `k(ctx, f)` (None: nothing), as one compiled function `run(ctx, f) -> bool` (True:
    stop). `where` names it (a rule and its position) for profiles and tracebacks."""
    name = f"body_{next(_count)}"
    gen = Gen(env)
    for op in ops:
        op(gen)
    if k is not None:
        gen.env["_k"] = k
        gen.line("if _k(ctx, f):")
        gen.line("    return True")
    source = f"def {name}(ctx, f):\n" + "\n".join(gen.lines) + "\n    return False\n"
    code = compile(source, f"<rego {where or 'body'}>", "exec")
    namespace: dict[str, Any] = gen.env
    exec(code, namespace)  # noqa: S102 - our own generated source, from the AST; values come in as globals
    fn: Callable[..., bool] = namespace[name]
    fn.__doc__ = source  # the generated source, for reading when debugging
    return fn
