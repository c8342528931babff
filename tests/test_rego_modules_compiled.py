"""Plain OPA modules on the compiled evaluator against the same modules on regopy (the oracle): every
ordinary-style module of tests/test_rego_user_styles.py, on its denied and its allowed object, and the
hypothesis-generated modules (tests/rego_strategies.py) placed under `input.request.object`, give the same
results on both paths."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from admission.engines import PolicyError
from admission.engines.rego import modules
from admission.engines.rego.modules import ModuleSet
from admission.engines.rego.printer import format_module
from admission.review import Request
from tests.test_rego_user_styles import STYLES


def _results(files: list[Path], obj: dict[str, Any], compiled: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[tuple[str, str, str]]]:
    monkeypatch.setattr(modules, "USE_COMPILED", compiled)
    ms = ModuleSet.from_files(files, isolate=False)
    out = ms.validate(Request.for_object(obj))
    return ms.engine, sorted((r.policy, r.status.value, r.message) for r in out)


MODULE_STYLES = [s for s in STYLES if all(name.endswith(".rego") for name in s[1])]


@pytest.mark.parametrize(("files", "obj", "good"), [pytest.param(s[1], s[2], s[4], id=s[0]) for s in MODULE_STYLES])
def test_module_styles_compiled_equal_regopy(tmp_path: Path, files: dict[str, str], obj: dict[str, Any],
                                             good: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    paths = []
    for name, text in files.items():
        p = tmp_path / name
        p.write_text(textwrap.dedent(text).lstrip("\n"))
        paths.append(p)
    for o in (obj, good):
        route, ours = _results(paths, o, True, monkeypatch)
        _, theirs = _results(paths, o, False, monkeypatch)
        assert route == "compiled"
        assert ours == theirs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.data())
def test_generated_modules_compiled_equal_regopy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: Any) -> None:
    """A generated module's rules, reported through `deny` (each defined rule's value as a message), with the
    generated input as the request's object."""
    from tests.rego_strategies import inputs
    from tests.rego_strategies import modules as gen_modules

    module = data.draw(gen_modules())
    inp = data.draw(inputs())
    names = sorted({r.head.ref.head.name for r in module.rules if r.head.args is None})  # type: ignore[union-attr]
    assume(names)  # else the module is a library, not a policy
    source = format_module(module).replace("input.", "input.request.object.")  # package gen, v1
    # a regopy defect (tests/test_rego_compiler_differential.py: max and min of the empty array in a body)
    assume("max(" not in source and "min(" not in source)
    report = "\n".join(f'deny contains sprintf("{n}=%v", [{n}])' for n in names)
    path = tmp_path / "gen.rego"
    path.write_text(source + "\n" + report + "\n")
    obj = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "d"}, **inp}
    try:
        route, ours = _results([path], obj, True, monkeypatch)
    except PolicyError:  # the regopy program (built for both paths) refuses the module: not a comparison
        assume(False)
        return
    _, theirs = _results([path], obj, False, monkeypatch)
    if any(status == "error" for _p, status, _m in theirs) and not any(status == "error" for _p, status, _m in ours):
        # an object comprehension that yields one key twice: a regopy defect (tests/test_rego_compiler_differential.py)
        assume("|" not in source)
    assert route == "compiled", source
    assert ours == theirs, source
