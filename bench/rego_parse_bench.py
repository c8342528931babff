"""Time the Rego parser and printer over the whole Gatekeeper library.

    python bench/rego_parse_bench.py [--rounds 7]

Reads every Rego text of ../shared/conformance/gatekeeper-library (templates' rego and libs, both forms),
then reports, as the best of --rounds (CPU time of this process, so other load on a shared machine counts
less): lexing alone, parse_module (v0 templates are tried as v1 first, as the engine loads them), parse with
the version given, and format_module of the parsed trees. Target: parsing the whole library in under 200 ms.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from admission.engines.rego.lexer import tokenize  # noqa: E402
from admission.engines.rego.parser import parse_module  # noqa: E402
from admission.engines.rego.printer import format_module  # noqa: E402
from tests.rego_corpus import gatekeeper_modules  # noqa: E402


def best(rounds: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sources = gatekeeper_modules()
    if not sources:
        sys.exit("the Gatekeeper library is not at ../shared/conformance/gatekeeper-library")
    texts = [s.text for s in sources]
    lines = sum(t.count("\n") + 1 for t in texts)
    modules = [parse_module(t) for t in texts]
    versions = [m.v1 for m in modules]
    rows = [
        ("lex", best(args.rounds, lambda: [tokenize(t) for t in texts])),
        ("parse (version detected)", best(args.rounds, lambda: [parse_module(t) for t in texts])),
        ("parse (version given)", best(args.rounds, lambda: [parse_module(t, v1=v) for t, v in zip(texts, versions, strict=True)])),
        ("print v1", best(args.rounds, lambda: [format_module(m) for m in modules])),
    ]
    print(f"Gatekeeper library: {len(texts)} Rego modules, {lines} lines")
    parse_ms = rows[1][1] * 1000
    for name, seconds in rows:
        print(f"  {name:<26} {seconds * 1000:8.1f} ms   {seconds / len(texts) * 1e6:8.0f} µs/module   {seconds * 1000 / parse_ms:5.2f}x parse")
    print(f"target: parse the whole library in under 200 ms -> {'met' if parse_ms < 200 else 'MISSED'} ({parse_ms:.1f} ms)")


if __name__ == "__main__":
    main()
