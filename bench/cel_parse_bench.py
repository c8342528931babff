"""Time the CEL front end at load over every CEL expression of the conformance suites, beside cel-cpp's compile.

    python bench/cel_parse_bench.py [--rounds 7]

Reads every CEL expression of ../shared/conformance (kyverno-policies-cel, kyverno-cli, gatekeeper-library:
the `expression`, `messageExpression` and `valueExpression` fields, tests/cel_corpus.py), then reports, as
the best of --rounds (CPU time of this process, so other load on a shared machine counts less): lexing
alone, parsing, printing the parsed trees, parse + print together, and cel-cpp compiling the printed
sources (what compiling cost before the front end existed, and still costs). The ratio of parse + print to
cel-cpp's compile is what the front end adds to loading a policy set.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from admission.engines.cel.expr import KUBERNETES_VARIABLES, environment  # noqa: E402
from admission.engines.cel.kyverno_eval import libraries  # noqa: E402
from admission.engines.cel.syntax import parse, print_expr  # noqa: E402
from admission.engines.cel.syntax.lexer import tokenize  # noqa: E402
from tests.cel_corpus import conformance_expressions  # noqa: E402


def best(rounds: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def compile_all(env: Any, texts: list[str]) -> None:
    for t in texts:
        try:
            env.compile(t)
        except RuntimeError:
            pass  # typed object literals compile after object_literals only; same cost either way


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    texts = [s.text for s in conformance_expressions()]
    if not texts:
        sys.exit("the conformance suites are not at ../shared/conformance")
    trees = [parse(t) for t in texts]
    printed = [print_expr(t) for t in trees]
    env = environment((*KUBERNETES_VARIABLES, "generator"), libraries())
    compile_all(env, printed)  # warm
    rows = [
        ("lex", best(args.rounds, lambda: [tokenize(t) for t in texts])),
        ("parse", best(args.rounds, lambda: [parse(t) for t in texts])),
        ("print", best(args.rounds, lambda: [print_expr(t) for t in trees])),
        ("parse + print", best(args.rounds, lambda: [print_expr(parse(t)) for t in texts])),
        ("cel-cpp compile", best(args.rounds, lambda: compile_all(env, printed))),
    ]
    chars = sum(len(t) for t in texts)
    print(f"conformance CEL: {len(texts)} expressions, {chars} characters")
    compile_s = rows[-1][1]
    for name, seconds in rows:
        print(f"  {name:<16} {seconds * 1000:8.2f} ms   {seconds / len(texts) * 1e6:7.1f} µs/expression   "
              f"{seconds / compile_s:5.2f}x cel-cpp compile")


if __name__ == "__main__":
    main()
