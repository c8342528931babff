"""What a CEL expression can read of the request's objects (admission.engines.cel.syntax.reads), and the
binding that holds only that: an expression evaluated on the pruned objects gives the same answer as on the
whole ones (hypothesis, over generated expressions and objects, and over the conformance suites' policies)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admission.engines.cel import expr as core
from admission.engines.cel.syntax.parser import parse
from admission.engines.cel.syntax.reads import reads


@pytest.mark.parametrize(("source", "found"), [
    ('has(object.metadata) && object.metadata.name != ""', {"object": {"metadata": {"name": None}}}),
    ('object.spec.containers.all(c, c.image.startsWith("r/"))', {"object": {"spec": {"containers": {"*": {"image": None}}}}}),
    ("object.spec.containers.exists(c, has(c.securityContext))",
     {"object": {"spec": {"containers": {"*": {"securityContext": {}}}}}}),
    ('object.metadata.labels["app"] == "x"', {"object": {"metadata": {"labels": {"app": None}}}}),
    ("object.spec.containers[0].name", {"object": {"spec": {"containers": {"*": {"name": None}}}}}),
    ("size(object.spec.containers) > 1", {"object": {"spec": {"containers": None}}}),
    ("object == oldObject", {"object": None, "oldObject": None}),
    ("string(object).size() > 0", {"object": None}),
    ("has(object.spec) ? 1 : 2", {"object": {"spec": {}}}),
    # a filter's or map's value holds elements: they are read whole, wherever the value goes next
    ("object.spec.containers.filter(c, !has(c.resources)).map(c, c.name).join(', ')",
     {"object": {"spec": {"containers": {"*": None}}}}),
    # followed through cel.bind and conditionals (Gatekeeper's anyObject, inlined variables)
    ('cel.bind(a, request.operation == "DELETE" ? oldObject : object, a.metadata.labels.all(k, k != "x"))',
     {"object": {"metadata": {"labels": {"*": None}}}, "oldObject": {"metadata": {"labels": {"*": None}}}}),
    # a name a macro declares shadows the root
    ("object.spec.containers.all(object, object.x == 1)", {"object": {"spec": {"containers": {"*": {"x": None}}}}}),
    ("f(object.spec).x", {"object": {"spec": None}}),
    ("params.keys.all(k, k in object.metadata.labels)", {"object": {"metadata": {"labels": None}}}),
    ("request.name == 'x'", {}),
    # Gatekeeper's anyObject: whether oldObject is null, then one of the two
    ('cel.bind(a, request.operation == "DELETE" && oldObject != null ? oldObject : object, a.metadata.name)',
     {"object": {"metadata": {"name": None}}, "oldObject": {"metadata": {"name": None}}}),
    ("object.spec == null", {"object": {"spec": {}}}),
])
def test_reads(source: str, found: dict[str, Any]) -> None:
    assert reads(parse(source)) == found


# ---------------------------------------------------------------------------------------------------
# generated expressions over generated objects: the pruned binding answers as the whole one

FIELDS = ["metadata", "spec", "labels", "name", "containers", "image", "x"]
KEYS = st.sampled_from(FIELDS)

scalars = st.one_of(st.integers(-3, 3), st.sampled_from(["", "a", "x", "image"]), st.booleans(), st.none())


def _tree(depth: int) -> st.SearchStrategy[Any]:
    """Objects whose keys are the ones paths use, mostly present, so that most paths resolve."""
    if depth == 0:
        return scalars
    inner = _tree(depth - 1)
    return st.one_of(
        st.dictionaries(KEYS, inner, min_size=2, max_size=6),
        st.dictionaries(KEYS, inner, min_size=2, max_size=6),
        st.lists(st.dictionaries(KEYS, inner, min_size=1, max_size=4), max_size=3),
        scalars,
    )


objects = st.dictionaries(KEYS, _tree(3), min_size=3, max_size=7)


def _path(root: str, draw: st.DrawFn) -> str:
    text = root
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["field", "field", "index", "key", "optional"]))
        key = draw(KEYS)
        text += {"field": f".{key}", "index": f"[{draw(st.integers(0, 2))}]", "key": f'["{key}"]',
                 "optional": f".?{key}"}[kind]
    return text


@st.composite
def expressions(draw: st.DrawFn, var: str = "", depth: int = 0) -> str:
    roots = ["object", "oldObject"] + ([var] if var else [])
    root = draw(st.sampled_from(roots))
    p = _path(root, draw)
    kinds = ["path", "has", "eq", "size", "in", "string", "cond", "type"]
    if depth < 2:
        kinds += ["all", "exists", "filter", "map", "bind"]
    kind = draw(st.sampled_from(kinds))
    v = f"v{depth}"
    if kind == "path":
        return p
    if kind == "has":
        return f"has({p}.{draw(KEYS)})" if "?" not in p else f"{p}.hasValue()"
    if kind == "eq":
        return f"{p} == {draw(st.sampled_from(['1', repr('a'), 'null', '[]', '{}', _path(draw(st.sampled_from(roots)), draw)]))}"
    if kind == "size":
        return f"size({p})"
    if kind == "in":
        return f"'a' in {p}"
    if kind == "string":
        return f"string({p})"
    if kind == "type":
        return f"type({p})"
    if kind == "cond":
        return f"({draw(expressions(var, depth + 1))}) == true ? {p} : {_path(draw(st.sampled_from(roots)), draw)}"
    if kind == "bind":
        return f"cel.bind({v}, {p}, {draw(expressions(v, depth + 1))})"
    body = draw(expressions(v, depth + 1))
    if kind in ("all", "exists"):
        return f"{p}.{kind}({v}, ({body}) == true)"
    if kind == "filter":
        return f"{p}.filter({v}, ({body}) == true).map({v}, {_path(v, draw)})"
    return f"{p}.map({v}, {body})"


def _outcome(program: core.Program, values: dict[str, Any], reads: Any) -> Any:
    try:
        return ("value", program.evaluate(core.bind(values, reads)))
    except core.EvalError as exc:
        return ("error", str(exc))
    except TypeError:  # an optional value has no Python form (cel-expr-python): the same either way
        return ("optional",)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(expressions(), objects, st.one_of(st.none(), objects))
def test_a_pruned_binding_answers_as_the_whole_one(source: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    try:
        program = core.compile_expression(source, where="gen:1")
    except core.LoadError:
        return  # a generated expression the checker refuses (a type error): nothing to evaluate
    values = {"object": obj, "oldObject": old, "request": {"operation": "CREATE"}, "params": None,
              "namespaceObject": None, "variables": {}, "authorizer": None}
    whole = _outcome(program, values, None)
    pruned = _outcome(program, values, program.reads)
    assert _unordered(pruned) == _unordered(whole), (source, program.reads)


def _unordered(outcome: Any) -> Any:
    """The outcome with every list as a multiset and every map's keys sorted: a map's iteration order is
    unspecified in CEL (cel-cpp's differs between two maps with the same entries), and what is built from it
    (a list, a map literal) follows it; pruning never reorders a list or a map."""
    if outcome[0] != "value":
        return outcome
    return ("value", _canon(outcome[1]))


def _canon(v: Any) -> Any:
    if isinstance(v, dict):
        return ("map", sorted((repr(k), repr(_canon(x))) for k, x in v.items()))
    if isinstance(v, list):
        return ("list", sorted(repr(_canon(x)) for x in v))
    return v


def test_the_switch_binds_whole_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"object": {"spec": {"a": 1}, "status": {"b": 2}}, "oldObject": None}
    reads_spec = {"object": {"spec": None}}
    assert core.bind(values, reads_spec).values["object"] == {"spec": {"a": 1}}
    assert core.bind(values, {}).values["object"] == {}  # read by no expression: nothing to convert
    monkeypatch.setattr(core, "PRUNE", False)  # ADMISSION_CEL_PRUNE=0
    assert core.bind(values, reads_spec).values["object"] == values["object"]


# ---------------------------------------------------------------------------------------------------
# every expression the conformance suites evaluate, on the pruned binding and on the whole one

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"


def test_every_conformance_evaluation_answers_as_on_the_whole_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shadow mode: each binding is also made whole, and each expression evaluated on a pruned binding is
    evaluated on the whole one too; the outcomes (value, or error text) must be equal."""
    from admission.engines.cel import kubernetes
    from admission.engines.cel.gatekeeper_cel import engine as gatekeeper_engine
    from admission.testing import run_paths
    from tests.test_gatekeeper_cel_conformance import _cel_suites

    if not CONFORMANCE.is_dir():
        pytest.skip(f"the conformance suites are not checked out beside the repository ({CONFORMANCE} is missing)")
    original_bind, original_evaluate = core.bind, core.Program.evaluate
    whole_of: dict[int, tuple[core.Activation, core.Activation]] = {}
    compared: list[int] = [0, 0]  # evaluations compared, and those whose binding was smaller
    differences: list[str] = []

    def bind(values: Any, reads: Any = None) -> core.Activation:
        pruned = original_bind(values, reads)
        if reads is not None:
            whole_of[id(pruned)] = (pruned, original_bind(values, None))
        return pruned

    def outcome(program: core.Program, activation: core.Activation) -> Any:
        try:
            return ("value", original_evaluate(program, activation))
        except core.EvalError as exc:
            return ("error", str(exc))
        except TypeError:
            return ("optional",)

    def evaluate(program: core.Program, activation: core.Activation, **kw: Any) -> Any:
        pair = whole_of.get(id(activation))
        if pair is not None and pair[0] is activation:
            compared[0] += 1
            compared[1] += activation.values.get("object") != pair[1].values.get("object")
            ours, theirs = _unordered(outcome(program, activation)), _unordered(outcome(program, pair[1]))
            if ours != theirs:
                differences.append(f"{program.where}: {program.source}: pruned {ours!r:.200}, whole {theirs!r:.200}")
        return original_evaluate(program, activation, **kw)

    monkeypatch.setattr(core, "bind", bind)
    monkeypatch.setattr(kubernetes, "bind", bind)
    monkeypatch.setattr(core.Program, "evaluate", evaluate)
    results = run_paths([str(CONFORMANCE / "kyverno-policies-cel"), str(CONFORMANCE / "kyverno-cli")])
    with gatekeeper_engine("cel"):
        results += run_paths([str(s) for s in _cel_suites()])
    assert len(results) == 1930 + 28 + 115 and all(r.passed for r in results)
    print(f"{compared[0]} evaluations compared, {compared[1]} on a smaller object")
    assert compared[0] > 3000 and compared[1] > compared[0] // 2
    assert not differences, "\n".join(differences[:20])
