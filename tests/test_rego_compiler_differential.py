"""The Rego compiler against regopy, the oracle: same modules, same input and data, same answer.

- every template of the Gatekeeper library with every case of its suite: `violation` from the compiled
  template equals regopy's on the same module printed as v1 (the library's templates are v0);
- hypothesis-generated modules and inputs (tests/rego_strategies.py, when present).

A difference is either a regopy defect listed in REGOPY_DEFECTS (with the reason) or a bug.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from admission.engines.rego.backend import Program  # noqa: F401  (loads RE2 before regopy)
from admission.engines.rego.compiler import Unsupported, compile_modules
from admission.engines.rego.printer import format_module
from admission.engines.rego.values import UNDEFINED, EvalError, to_json
from tests.rego_gatekeeper_cases import LIBRARY, Case, library_cases

import regopy  # isort: skip

# every template of the library must compile (none falls back to regopy)
ALL_TEMPLATES_COMPILE = True

# cases where regopy's answer is wrong, with the reason (the compiled answer is OPA's)
REGOPY_DEFECTS = {
    ("k8srequiredprobes", "required-probes/example-disallowed2"): (
        "a container whose readinessProbe is null: probe_field_empty(ctr, probe) builds {field | ctr[probe][field]},"
        " the empty set (iterating null yields nothing), so 3 probe types minus none is all 3 and the probe is"
        " missing; regopy evaluates probe_field_empty as undefined here and reports only the tomcat container"
    ),
}


def _canon(v: Any) -> str:
    def norm(x: Any) -> Any:
        if isinstance(x, float) and x.is_integer():
            return int(x)
        if isinstance(x, list):
            items = [norm(i) for i in x]
            return items
        if isinstance(x, dict):
            return {k: norm(i) for k, i in x.items()}
        return x

    return json.dumps(norm(v), sort_keys=True)


class RegopyError(RuntimeError):
    """regopy failed to evaluate a valid module (its defect)."""


def regopy_query(sources: list[str], query: str, input: Any, data: dict[str, Any]) -> Any:
    """The query's value by regopy (JSON), None when undefined; raises on an error."""
    it = regopy.Interpreter()
    it.log_level = regopy.LogLevel.NONE
    for i, src in enumerate(sources):
        it.add_module(f"m{i}.rego", src)
    if data:
        it.add_data_json(json.dumps(data))
    if input is not UNDEFINED:
        it.set_input_term(json.dumps(input))
    try:
        out = it.query(f"x := {query}")
    except json.JSONDecodeError:  # regopy printed its error where its answer belongs
        raise RegopyError(f"regopy answers no JSON for {query}") from None
    text = str(out)
    if text == "undefined":
        return None
    if text == "<error>":  # regopy logs the reason and answers no JSON
        raise RegopyError(f"regopy answers <error> for {query}")
    parsed = json.loads(text)
    if "bindings" not in parsed:
        raise RuntimeError(f"regopy: {text[:300]}")
    return parsed["bindings"].get("x")


def oracle_sources(sources: list[str], modules: list[Any]) -> list[str]:
    """The modules as regopy is given them: v1, with its known defects worked around by the named passes
    (regopy refuses, for one, `[_]` inside a call's argument: "Invalid bracket argument")."""
    from admission.engines.rego.pipeline import print_for_regopy

    del sources
    return [print_for_regopy(m)[0] for m in modules]


def _set_canon(v: Any) -> str:
    """A violation set (a JSON array) compared as a set."""
    if isinstance(v, list):
        return json.dumps(sorted(_canon(x) for x in v))
    return _canon(v)


_COMPILED: dict[str, Any] = {}


def _compiled(case: Case) -> Any:
    key = case.template.file
    if key not in _COMPILED:
        try:
            _COMPILED[key] = compile_modules(case.template.modules)
        except Unsupported as exc:
            _COMPILED[key] = exc
    return _COMPILED[key]


def test_gatekeeper_library_compiled_equals_regopy() -> None:
    if not LIBRARY.is_dir():
        pytest.skip(f"the conformance suites are not checked out beside the repository ({LIBRARY} is missing)")
    cases = library_cases()
    printed: dict[str, list[str]] = {}
    templates = {c.template.file for c in cases}
    unsupported = {}
    agree = 0
    defects = 0
    suite_failures: list[str] = []
    diffs = []
    for case in cases:
        compiled = _compiled(case)
        if isinstance(compiled, Unsupported):
            unsupported[case.template.name] = str(compiled)
            continue
        t = case.template
        if t.file not in printed:
            printed[t.file] = oracle_sources(t.sources, t.modules)
        query = f"data.{t.package}.violation"
        try:
            ours = to_json(compiled.query(query, case.input, case.data))
        except EvalError as exc:
            ours = f"error: {exc}"
        try:
            theirs = regopy_query(printed[t.file], query, case.input, case.data)
        except Exception as exc:  # noqa: BLE001 - reported as the difference
            theirs = f"error: {exc}"
        if ours is UNDEFINED or ours is None:
            ours = None
        messages = [v.get("msg", "") for v in ours] if isinstance(ours, list) else []
        failed = case.check([str(m) for m in messages]) if not isinstance(ours, str) else str(ours)
        if failed:
            suite_failures.append(f"{t.name} {case.name}: {failed}"[:400])
        if _set_canon(ours) == _set_canon(theirs):
            agree += 1
        elif (t.name, case.name) in REGOPY_DEFECTS:
            defects += 1
        else:
            diffs.append(f"{t.name} {case.name}: compiled {_canon(ours)[:300]} regopy {_canon(theirs)[:300]}")
    print(
        f"Gatekeeper library: {len(templates) - len(unsupported)} of {len(templates)} templates compile;"
        f" {agree} of {len(cases)} cases agree with regopy, {defects} differ by a listed regopy defect;"
        f" {len(cases) - len(suite_failures)} of {len(cases)} meet the suite's assertions"
    )
    assert not suite_failures, "\n".join(suite_failures[:20])
    assert not diffs, "\n".join(diffs[:20])
    if ALL_TEMPLATES_COMPILE:
        assert not unsupported, unsupported


# ---------------------------------------------------------------------------------------------------
# generated modules: rules built from body snippets (each needs some variables bound and binds others),
# evaluated on generated inputs by both evaluators

from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# (needs, binds, text)
SNIPPETS: list[tuple[tuple[str, ...], tuple[str, ...], str]] = [
    ((), ("x",), "some x in input.xs"),
    ((), ("k", "v"), "some k, v in input.obj"),
    ((), ("i",), "input.xs[i]"),
    ((), ("n",), "n := count(input.xs)"),
    ((), ("s",), "s := input.s"),
    ((), ("c",), "c := [y | some y in input.xs; is_number(y)]"),
    ((), ("ks",), "ks := {kk | input.obj[kk]}"),
    ((), ("o",), 'o := object.get(input.obj, "a", 0)'),
    ((), (), "not input.missing"),
    ((), (), 'input.s != "zz"'),
    ((), (), "every e in input.xs { e != 99 }"),
    (("x",), (), "x != 3"),
    (("x",), ("t",), "t := sprintf(\"%v-%v\", [x, input.s])"),
    (("x",), (), 'not x == "b"'),
    (("k", "v"), (), "v > 1"),
    (("k",), (), 'startswith(k, "a")'),
    (("k",), ("u",), "u := upper(k)"),
    (("i",), ("w",), "w := input.xs[i]"),
    (("n",), (), "n > 1"),
    (("n",), ("m",), "m := n * 2 + 1"),
    (("s",), (), 'contains(s, "a")'),
    (("s",), ("parts",), 'parts := split(s, "a")'),
    (("c",), (), "count(c) >= 1"),
    (("c",), ("tot",), "tot := sum(c)"),
    (("ks",), (), 'ks["a"]'),
    (("ks",), ("kl",), "kl := sort([q | some q in ks])"),  # sort(set()) is a regopy defect (below)
    (("o",), (), "o < 5"),
]


@st.composite
def bodies(draw: Any) -> tuple[list[str], set[str]]:
    bound: set[str] = set()
    out: list[str] = []
    for _ in range(draw(st.integers(1, 5))):
        ready = [s for s in SNIPPETS if set(s[0]) <= bound and not set(s[1]) & bound]
        needs, binds, text = draw(st.sampled_from(ready))
        out.append(text)
        bound |= set(binds)
    return out, bound


@st.composite
def modules(draw: Any) -> str:
    rules = []
    for i in range(draw(st.integers(1, 4))):
        body, bound = draw(bodies())
        kind = draw(st.sampled_from(["bool", "set", "value", "object"]))
        head_var = draw(st.sampled_from(sorted(bound))) if bound else None
        text = "\n    ".join(body)
        if kind == "set" and head_var:
            rules.append(f"r{i} contains {head_var} if {{\n    {text}\n}}")
        elif kind == "object" and head_var:
            rules.append(f"r{i}[sprintf(\"%v\", [{head_var}])] := true if {{\n    {text}\n}}")
        elif kind == "value" and head_var and "some k, v" not in text:  # regopy refuses it in a comprehension
            rules.append(f"r{i} := [out | {'; '.join(body)}; out := {head_var}]")
        else:
            rules.append(f"r{i} if {{\n    {text}\n}}")
    return "package gen\nimport rego.v1\n\n" + "\n\n".join(rules) + "\n"


inputs = st.fixed_dictionaries(
    {
        "xs": st.lists(st.one_of(st.integers(-2, 5), st.sampled_from(["a", "b", "ab"])), max_size=4),
        "obj": st.dictionaries(st.sampled_from(["a", "b", "ab", "c"]), st.integers(0, 6), max_size=3),
        "s": st.sampled_from(["", "a", "banana", "zz", "x\"y"]),
    }
)


def _compare_rule(compiled: Any, module: Any, source: str, query: str, input: dict[str, Any]) -> None:
    """One rule of a generated module, compiled vs regopy on the module as written (v1)."""
    try:
        ours: Any = to_json(compiled.query(query, input))
    except EvalError as exc:
        ours = f"error: {exc.code}"
    if ours is UNDEFINED:
        ours = None
    try:
        theirs = regopy_query([source], query, input, {})
    except RegopyError:
        try:
            # a documented regopy defect (one statement starting with `(` read as a call of the reference
            # ending the line before it, for one): the module with the named work-arounds of passes.py
            theirs = regopy_query(oracle_sources([source], [module]), query, input, {})
        except RegopyError:
            # an object comprehension that yields one key twice (with the same value): a regopy defect
            # (test below); that case is left out, any other is a failure
            assume("|" not in source or isinstance(ours, str))
            raise
    if isinstance(theirs, list) and isinstance(ours, list):
        assert sorted(map(_canon, ours)) == sorted(map(_canon, theirs)), (source, input, query)
    else:
        assert _canon(ours) == _canon(theirs), (source, input, query)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(modules(), inputs)
def test_generated_modules_compiled_equal_regopy(source: str, input: dict[str, Any]) -> None:
    from admission.engines.rego.parser import parse_module

    module = parse_module(source, file="gen.rego")
    compiled = compile_modules([module])
    for rule in sorted({r.head.name for r in module.rules}):
        query = f"data.gen.{rule}"
        _compare_rule(compiled, module, source, query, input)


def test_regopy_defect_sort_of_the_empty_set() -> None:
    """regopy's sort(set()) is the empty set, OPA's (and ours) the empty array: the generated modules sort
    arrays only. If regopy is fixed, this test says so."""
    src = 'package d\nimport rego.v1\nx := sprintf("%v", [sort(set())])\n'
    assert regopy_query([src], "data.d.x", UNDEFINED, {}) == "set()"
    from admission.engines.rego.parser import parse_module

    assert compile_modules([parse_module(src)]).query("data.d.x") == "[]"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_strategy_modules_compiled_equal_regopy(data: Any) -> None:
    """The parser's generated modules (tests/rego_strategies.py): each rule, compiled vs regopy on the
    module printed as v1."""
    from tests.rego_strategies import modules_and_inputs

    module, input = data.draw(modules_and_inputs())
    source = format_module(module)
    assume("max(" not in source and "min(" not in source)  # a regopy defect (test below)
    try:
        compiled = compile_modules([module])
    except Unsupported as exc:  # counted by hypothesis' statistics; the strategy stays inside the subset
        pytest.fail(f"the compiler refuses a generated module: {exc}\n{source}")
    for rule in sorted({r.head.name for r in module.rules if r.head.args is None}):
        query = f"data.gen.{rule}"
        _compare_rule(compiled, module, source, query, input)


def test_regopy_defect_an_object_comprehension_yielding_a_key_twice() -> None:
    """`{k: v1 | some k, _ in input.labels; some _ in input.names}`, v1 bound outside the comprehension, yields
    ("a", "a") twice when names has two elements: in OPA the same key with the same value is one entry;
    regopy holds the first value as an error term ("Not a term"), finds it unequal to the second and fails the
    whole query ("key already exists but values do not match"). With the value bound inside the comprehension
    it answers right. On the regopy path that is a rule error (it follows the failure policy, never an allow).
    If regopy is fixed, this test says so."""
    src = ("package d\nimport rego.v1\nr := o if {\n  some v1, _ in input.labels\n"
           "  o := {k: v1 | some k, _ in input.labels; some _ in input.names}\n}\n")
    given = {"names": ["a", "a"], "labels": {"a": "a"}}
    from admission.engines.rego.parser import parse_module

    assert compile_modules([parse_module(src)]).query("data.d.r", given) == {"a": "a"}
    with pytest.raises(RegopyError):
        regopy_query([src], "data.d.r", given, {})
    inner = src.replace("  some v1, _ in input.labels\n", "").replace("k: v1 |", "k: v |").replace("some k, _", "some k, v")
    assert regopy_query([inner], "data.d.r", given, {}) == {"a": "a"}


def test_regopy_defect_max_of_the_empty_array_in_a_body() -> None:
    """`v := max(input.xs)` with xs empty: OPA's max of an empty array is undefined, so the body fails (as
    regopy says for `s := max(input.xs)`); in a rule body regopy lets it succeed. The generated modules
    leave max and min out. If regopy is fixed, this test says so."""
    src = "package d\nimport rego.v1\nr if {\n  v := max(input.xs)\n}\ns := max(input.xs)\n"
    assert regopy_query([src], "data.d.r", {"xs": []}, {}) is True
    assert regopy_query([src], "data.d.s", {"xs": []}, {}) is None
    from admission.engines.rego.parser import parse_module

    compiled = compile_modules([parse_module(src)])
    assert compiled.query("data.d.r", {"xs": []}) is UNDEFINED
    assert compiled.query("data.d.s", {"xs": []}) is UNDEFINED
