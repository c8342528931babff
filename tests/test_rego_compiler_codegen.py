"""Rule bodies written out as Python (codegen.py) against the same bodies as closures: same answers, same
errors, on the Gatekeeper library (with sharing between constraints too) and on generated modules. Both are
checked against regopy by the differential tests; this pins the two compiler back ends to each other."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admission.engines.rego import codegen
from admission.engines.rego.compiler import Compiled, Compiler
from admission.engines.rego.parser import parse_module
from admission.engines.rego.values import UNDEFINED, EvalError, to_json
from tests.rego_gatekeeper_cases import LIBRARY, library_cases


def _compile(modules: list[Any], gen: bool, varying: tuple[str, ...] | None = None) -> Compiled:
    c = Compiler(modules, varying)
    c.codegen = gen
    return c.compile()


def _answer(compiled: Compiled, ref: str, input: Any, data: Any, shared: Any = None, strict: bool = False) -> Any:
    ctx = compiled.context(input, data, shared=shared, strict=strict)
    try:
        v = compiled.document(ref)(ctx)
    except EvalError as exc:
        return f"error: {exc.code}"
    return None if v is UNDEFINED else repr(to_json(v))


def test_bodies_are_written_out(monkeypatch: pytest.MonkeyPatch) -> None:
    sources: list[str] = []
    original = codegen.function

    def spy(*args: Any, **kw: Any) -> Any:
        fn = original(*args, **kw)
        sources.append(fn.__doc__ or "")
        return fn

    monkeypatch.setattr(codegen, "function", spy)
    src = """package t
import rego.v1
deny contains msg if {
    some c in input.cs
    not startswith(c.image, "ok/")
    msg := sprintf("%v", [c.name])
}
"""
    compiled = _compile([parse_module(src)], True)
    assert any("for " in s and "_ONCE" in s for s in sources)
    inp = {"cs": [{"name": "a", "image": "ok/x"}, {"name": "b", "image": "bad/y"}]}
    assert _answer(compiled, "data.t.deny", inp, {}) == repr(["b"])


def test_strict_builtin_errors_and_undefined_are_the_same() -> None:
    src = """package t
import rego.v1
r contains x if {
    some v in input.vs
    x := to_number(v)
}
"""
    m = parse_module(src)
    for strict in (False, True):
        inp = {"vs": ["1", "x", 2]}
        assert _answer(_compile([m], True), "data.t.r", inp, {}, strict=strict) == _answer(_compile([m], False), "data.t.r", inp, {}, strict=strict)


def test_gatekeeper_library_written_out_equals_closures() -> None:
    if not LIBRARY.is_dir():
        pytest.skip(f"the conformance suites are not checked out beside the repository ({LIBRARY} is missing)")
    compiled: dict[str, tuple[Compiled, Compiled, Compiled]] = {}
    n = 0
    for case in library_cases():
        t = case.template
        if t.file not in compiled:
            compiled[t.file] = (_compile(t.modules, True), _compile(t.modules, False), _compile(t.modules, True, ("parameters",)))
        gen, closures, shared = compiled[t.file]
        query = f"data.{t.package}.violation"
        want = _answer(closures, query, case.input, case.data)
        assert _answer(gen, query, case.input, case.data) == want, (t.name, case.name)
        sh = shared.shared()
        for _ in range(2):  # the second evaluation reads what the first left in the shared memo
            assert _answer(shared, query, case.input, case.data, sh) == want, (t.name, case.name)
        n += 1
    assert n >= 200


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_generated_modules_written_out_equal_closures(data: Any) -> None:
    from tests.rego_strategies import inputs, modules

    module = data.draw(modules())
    inp = data.draw(inputs())
    gen, closures = _compile([module], True), _compile([module], False)
    for rule in sorted({r.head.ref.head.name for r in module.rules if r.head.args is None}):  # type: ignore[union-attr]
        ref = f"data.gen.{rule}"
        assert _answer(gen, ref, inp, {}) == _answer(closures, ref, inp, {}), rule
