"""Spike: which CEL implementation from the package index should the CEL dialect use?

    python bench/cel_spike.py [--n 20000]

Candidates, each from its public API only:
- cel-expr-python (Google's cel-cpp, Apache-2.0): `cel_expr_python.cel`
- common-expression-language (Rust `cel` crate bindings, Apache-2.0): `cel`
- cel-python (pure Python, Apache-2.0), for reference: `celpy`

For each: whether the constructs the Kubernetes/Kyverno CEL test suites lean on behave as cel-go does
(optional types, macros, has(), heterogeneous numbers, strings ext, overflow and index errors as
errors, type checking at compile time), whether custom functions with typed (opaque) values can be
added, and the time per evaluation of a typical check bound to a realistic Pod (the activation is
built once per request and reused; compile happens once, outside the timing). Times are medians of
wall-clock time; compare them within one run only. A library that is not installed is reported as such.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "web", "namespace": "team", "labels": {"app": "web", "tier": "frontend"},
                 "annotations": {"owner": "team-a"}},
    "spec": {
        "containers": [
            {"name": f"c{i}", "image": f"registry.example/app{i}:1.{i}",
             "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m"}},
             "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
             "ports": [{"containerPort": 8080 + i}], "env": [{"name": "A", "value": "b"}]}
            for i in range(3)
        ],
        "initContainers": [{"name": "init", "image": "registry.example/init:1"}],
    },
}

TYPICAL = "object.spec.containers.all(c, has(c.resources) && has(c.resources.limits))"
THREE = [
    TYPICAL,
    "object.spec.containers.all(c, c.image.startsWith('registry.example/'))",
    "has(object.metadata.labels) && 'app' in object.metadata.labels",
]

# (expression, what cel-go gives: a value, or "error" for an evaluation/compile error)
SEMANTICS: list[tuple[str, Any]] = [
    ("object.?metadata.?annotations.?owner.orValue('none')", "team-a"),
    ("object.?metadata.?missing.hasValue()", False),
    ("object.metadata.?labels[?'app'].orValue('')", "web"),
    ("optional.of(1).value()", 1),
    ("optional.none().orValue(3)", 3),
    ("object.spec.containers.exists_one(c, c.name == 'c0')", True),
    ("object.spec.containers.map(c, c.name)", ["c0", "c1", "c2"]),
    ("object.spec.containers.filter(c, c.name != 'c0').size()", 2),
    ("has(object.spec.hostNetwork)", False),
    ("dyn(1) == 1.0", True),
    ("dyn(1u) == 1", True),
    ("[1, 2] == [1, 2] && {'a': [1]} == {'a': [1]}", True),
    ("'a' + 'b'", "ab"),
    ("'a,b'.split(',')", ["a", "b"]),
    ("['a', 'b'].join('-')", "a-b"),
    ("'ABC'.lowerAscii()", "abc"),
    ("'%s=%d'.format(['a', 1])", "a=1"),
    ("duration('1h') > duration('30m')", True),
    ("timestamp('2024-01-01T00:00:00Z') < timestamp('2024-01-02T00:00:00Z')", True),
    ("9223372036854775807 + 1", "error"),
    ("object.spec.containers[7]", "error"),
    ("1 / 0", "error"),
    ("'a' + 1", "error"),  # cel-go rejects it when type checking
]


def bench(fn: Callable[[], Any], n: int) -> float:
    """Median µs per call over 5 rounds of n calls."""
    rounds = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(rounds)


def spike_cel_expr_python(n: int) -> dict[str, Any]:
    from cel_expr_python import cel
    from cel_expr_python.ext import ext_optional, ext_strings

    env = cel.NewEnv(variables={"object": cel.Type.DYN},
                     extensions=[ext_strings.ExtStrings(), ext_optional.ExtOptional()])

    def run(src: str) -> Any:
        try:
            v = env.compile(src).eval(data={"object": POD})
        except RuntimeError:
            return "error"
        return "error" if v.type() == cel.Type.ERROR else v.plain_value()

    typical = env.compile(TYPICAL)
    three = [env.compile(s) for s in THREE]
    act = env.Activation({"object": POD})
    return {
        "semantics": [(s, want, run(s)) for s, want in SEMANTICS],
        "typical µs (data bound per call)": bench(lambda: typical.eval(data={"object": POD}).value(), n),
        "typical µs (activation reused)": bench(lambda: typical.eval(act).value(), n),
        "three checks µs (activation reused)": bench(lambda: [e.eval(act).value() for e in three], n),
    }


def spike_common_expression_language(n: int) -> dict[str, Any]:
    import cel

    ctx = cel.Context(variables={"object": POD})

    def run(src: str) -> Any:
        try:
            return cel.compile(src).execute(ctx)
        except Exception:  # noqa: BLE001 - any failure counts as an error result here
            return "error"

    typical = cel.compile(TYPICAL)
    three = [cel.compile(s) for s in THREE]
    return {
        "semantics": [(s, want, run(s)) for s, want in SEMANTICS],
        "typical µs (context reused)": bench(lambda: typical.execute(ctx), n),
        "three checks µs (context reused)": bench(lambda: [p.execute(ctx) for p in three], n),
    }


def spike_cel_python(n: int) -> dict[str, Any]:
    import celpy

    env = celpy.Environment()
    act = {"object": celpy.json_to_cel(POD)}

    def run(src: str) -> Any:
        try:
            v = env.program(env.compile(src)).evaluate(act)
        except Exception:  # noqa: BLE001
            return "error"
        return "error" if isinstance(v, celpy.CELEvalError) else v

    typical = env.program(env.compile(TYPICAL))
    return {
        "semantics": [(s, want, run(s)) for s, want in SEMANTICS],
        "typical µs (activation reused)": bench(lambda: typical.evaluate(act), max(n // 20, 50)),
    }


def same(got: Any, want: Any) -> bool:
    if want == "error":
        return got == "error"
    try:
        return bool(got == want) and type(got) is not str or str(got) == want
    except Exception:  # noqa: BLE001
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    for name, spike in (("cel-expr-python", spike_cel_expr_python),
                        ("common-expression-language", spike_common_expression_language),
                        ("cel-python", spike_cel_python)):
        try:
            out = spike(args.n)
        except ImportError as e:
            print(f"{name}: not installed ({e})")
            continue
        sem = out.pop("semantics")
        ok = [s for s, want, got in sem if same(got, want)]
        print(f"{name}: cel-go semantics on {len(ok)}/{len(sem)} constructs")
        for s, want, got in sem:
            if not same(got, want):
                print(f"    differs: {s!r}: cel-go {want!r}, got {got!r}")
        for k, v in out.items():
            print(f"    {k}: {v:.1f}")


if __name__ == "__main__":
    main()
