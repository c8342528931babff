"""Each regopy work-around of passes.py: the defect shown on the module as written (run in a separate
process, since some abort it), and OPA's answer after the pass. When a regopy release fixes a defect, its
first assertion fails: drop the pass then."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from admission.engines.rego import passes as ps
from admission.engines.rego.ast import Module
from admission.engines.rego.backend import Program
from admission.engines.rego.isolate import Unit, check
from admission.engines.rego.parser import parse_module
from admission.engines.rego.printer import format_module

Pass = Callable[[Module], Module]


def raw(src: str, query: str, value: Any) -> Any:
    """What regopy answers for the module as written, in a child process: ("ok", value), ("error", why)
    or ("crash", why)."""
    unit = Unit("raw", {"m.rego": format_module(parse_module(src))}, query, json.dumps(value))
    error = check([unit])["raw"]
    if error is None:
        return ("ok", Program({"m.rego": format_module(parse_module(src))}, {}, query).evaluate(value))
    return ("crash" if "crashed" in error else "error", error)


def fixed(src: str, one: Pass, query: str, value: Any) -> Any:
    text = format_module(replace(one(parse_module(src)), comments=()))
    return Program({"m.rego": text}, {}, query).evaluate(value)


CASES: list[tuple[str, Pass, str, Any, Any]] = [
    (
        "hoist_call_args (wildcard)",
        ps.hoist_call_args,
        'package p\nr := [1 | startswith(input.xs[_], "a")]\n',
        {"xs": ["ab", "b"]},
        [1],
    ),
    (
        "hoist_call_args (named index)",
        ps.hoist_call_args,
        'package p\nr := [i | some i; startswith(input.xs[i], "a")]\n',
        {"xs": ["ab", "b"]},
        [0],
    ),
    (
        "guard_negated_args",
        ps.guard_negated_args,
        'package p\ndefault r := false\nr if { not startswith(input.missing.x, "a") }\n',
        {},
        False,
    ),
    (
        "iterate_with_some",
        ps.iterate_with_some,
        'package p\nr contains v if { x := input.xs[_]; v := input.o[x] }\n',
        {"xs": ["a"], "o": {"a": 1}},
        [1],
    ),
    (
        "pairs_as_lookups",
        ps.pairs_as_lookups,
        'package p\nr := {k | some k, v in input.o; v > 1}\n',
        {"o": {"a": 1, "b": 2}},
        ["b"],
    ),
    (
        "every_as_count",
        ps.every_as_count,
        'package p\ndefault r := false\nr if { every c in input.cs { not c.u == 0 } }\n',
        {"cs": [{"u": 0}, {"u": 1}]},
        False,
    ),
    (
        "hoist_with_values (input)",
        ps.hoist_with_values,
        'package p\nk if input.kind == "Pod"\nr if { k with input as input.request }\n',
        {"request": {"kind": "Pod"}},
        True,
    ),
    (
        "hoist_with_values (a path of the input)",
        ps.hoist_with_values,
        'package p\nk if input.kind == "Pod"\nr if { k with input.kind as input.request.kind }\n',
        {"request": {"kind": "Pod"}},
        True,
    ),
    (
        "quote_verbs",
        ps.quote_verbs,
        'package p\nr := sprintf("%q|%v", [input.s, 1])\n',
        {"s": "ab"},
        '"ab"|1',
    ),
    (
        "clean_sprintf_args",
        ps.clean_sprintf_args,
        'package p\nf(n) := sprintf("%v x", [n])\nr := f(g) if { g := "abc" }\n',
        {},
        "abc x",
    ),
    (
        "sort_sets",
        ps.sort_sets,
        "package p\nr := is_array(sort({3, 1, 2}))\n",
        {},
        True,
    ),
    (
        "hoist_paren_statements",
        ps.hoist_paren_statements,
        "package p\nr if {\n  x := input.a\n  (x in {1}) == true\n}\n",
        {"a": 1},
        True,
    ),
]


@pytest.mark.parametrize(("one", "src", "value", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_pass_fixes_its_defect(one: Pass, src: str, value: Any, expected: Any) -> None:
    before = raw(src, "data.p.r", value)
    assert before != ("ok", expected), "regopy answers right without the pass: the defect is gone, drop the pass"
    got = fixed(src, one, "data.p.r", value)
    assert (sorted(got) if isinstance(got, list) and isinstance(expected, list) else got) == expected


def test_all_passes_together_keep_answers() -> None:
    """The passes compose: the whole chain on a module using every construct gives OPA's answers."""
    src = (
        "package p\n"
        'deny contains msg if {\n  some k, v in input.o\n  startswith(input.xs[_], "a")\n'
        '  not startswith(input.missing.x, "z")\n  msg := sprintf("%q=%v", [k, v])\n}\n'
        "ok if { every c in input.cs { not c.u == 0 } }\n"
        "out := {\"deny\": deny, \"ok\": ok}\n"
    )
    text = format_module(replace(ps.regopy_passes(parse_module(src)), comments=()))
    program = Program({"m.rego": text}, {}, "data.p.out")
    got = program.evaluate({"o": {"a": 1}, "xs": ["ab"], "missing": {"x": "y"}, "cs": [{"u": 1}]})
    assert got == {"deny": ['"a"=1'], "ok": True}


def test_relocate_renames_prefixes_and_own_package() -> None:
    m = parse_module(
        "package t\nimport data.lib.x\nf(a) := a\nv := [input.parameters.p, input.review.o, data.t.f(1), x.y, data.inventory.c]\n"
    )
    moved = ps.relocate(ps.resolve_imports(m), "gk.c0", {
        "input.parameters": "data.gkparams.c0", "input.review": "input.review", "data.lib": "data.gklib.c0.lib",
        "data.inventory": "input.inventory__",
    })
    text = format_module(moved)
    assert "package gk.c0" in text
    assert "[data.gkparams.c0.p, input.review.o, data.gk.c0.f(1), data.gklib.c0.lib.x.y, input.inventory__.c]" in text


def test_rename_functions_follows_qualified_and_imported_calls() -> None:
    a = parse_module("package a\nf(x) := x\nv := f(1)\nw := data.a.f(2)\n")
    b = parse_module("package b\nimport data.a\nf(x, y) := x + y\nv := [f(1, 2), a.f(3)]\n")
    out = ps.rename_functions({"a": ps.resolve_imports(a), "b": ps.resolve_imports(b)}, lambda pkg: pkg)
    texts = {k: format_module(replace(m, comments=())) for k, m in out.items()}
    program = Program(texts, {}, "[data.a.v, data.a.w, data.b.v]")
    assert program.evaluate({}) == [1, 2, [3, 3]]


def test_partial_sets_as_comprehensions_keeps_the_set() -> None:
    src = 'package p\nr contains x if { some x in input.xs; x > 1 }\nr contains "y" if { some _ in input.xs }\n'
    out = ps.partial_sets_as_comprehensions(parse_module(src))
    assert "__set_r_1" in format_module(out)
    text = format_module(replace(ps.regopy_passes(out), comments=()))
    assert sorted(Program({"m.rego": text}, {}, "data.p.r").evaluate({"xs": [1, 2, 3]}), key=str) == [2, 3, "y"]
