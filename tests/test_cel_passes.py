"""Each rewrite before cel-cpp compiles, as a pass over the tree (admission.engines.cel.syntax.passes): what it
does to the tree, what it leaves alone, and what the rewritten expression evaluates to."""

from __future__ import annotations

import pytest

from admission.engines.cel import Definition, LoadError, bind, compile_expression
from admission.engines.cel.cost import static_shape
from admission.engines.cel.syntax import parse, passes, print_expr


def rewritten(pass_: object, text: str, *args: object) -> str:
    return print_expr(pass_(parse(text), *args))  # type: ignore[operator]


def test_a_pass_that_changes_nothing_gives_the_same_tree_back() -> None:
    tree = parse("object.spec.containers.all(c, has(c.name)) && [1, 2].exists(x, x > 1)")
    for result in (passes.object_literals(tree, ("Object",)), passes.presence_chains(tree),
                   passes.lenient_or_value(tree), passes.inline_variables(tree, []),
                   passes.declared_variables_present(tree, ("a",))):
        assert result is tree


# -- object_literals / typed_literals_as_dyn -------------------------------------------------------------------


def test_typed_object_literals_become_maps_and_strings_are_untouched() -> None:
    text = "Object{metadata: Object.metadata{labels: {'Object{a: 1}': 'x'}}, ?spec: optional.none()}"
    assert rewritten(passes.object_literals, text, ("Object",)) == (
        '{"metadata": {"labels": {"Object{a: 1}": "x"}}, ?"spec": optional.none()}')
    assert compile_expression(text, where="p:1", object_types=("Object",)).evaluate(bind({})) == {
        "metadata": {"labels": {"Object{a: 1}": "x"}}}


def test_only_literals_of_the_named_types_become_maps() -> None:
    assert rewritten(passes.object_literals, "object.Object + Other{a: 1}", ("Object",)) == "object.Object + Other{a: 1}"


def test_commas_inside_calls_and_lists_stay_in_the_field_s_value() -> None:
    text = "Object{spec: Object.spec{args: ['a', 'b'].map(x, x + ','), n: [1, 2].max()}}"
    assert compile_expression(text, where="p:1", object_types=("Object",)).evaluate(bind({})) == {
        "spec": {"args": ["a,", "b,"], "n": 2}}


def test_typed_literals_are_wrapped_in_dyn_outermost_only() -> None:
    assert rewritten(passes.typed_literals_as_dyn, "c ? JSONPatch{op: 'add'} : null", ("JSONPatch",)) == (
        'c ? dyn(JSONPatch{op: "add"}) : null')
    assert rewritten(passes.typed_literals_as_dyn, "Object{a: Object.a{b: {}}}", ("Object",)) == (
        "dyn(Object{a: Object.a{b: {}}})")


# -- variables -----------------------------------------------------------------------------------------------


def test_variable_references_in_order_of_first_use_not_fields_or_shadowed_names() -> None:
    tree = parse("variables.b * variables.b + object.variables.c + variables.?a.orValue(0) + "
                 "[{'d': 1}].map(variables, variables.d).size()")
    assert passes.variable_references(tree) == ["b", "a"]


def test_variables_are_inlined_in_dependency_order_only_when_read() -> None:
    defs = [Definition("a", "object.x", "p:1"), Definition("b", "variables.a + 1", "p:2"),
            Definition("unused", "1 / 0", "p:3")]
    inlined = passes.inline_variables(parse("variables.b * 2"), [(d.name, d.parsed()) for d in defs])
    assert print_expr(inlined) == ("cel.bind(__variables_a__, object.x, cel.bind(__variables_b__, __variables_a__ + 1, "
                                   "__variables_b__ * 2))")
    program = compile_expression("variables.b * 2", where="p:4", definitions=defs)
    assert program.evaluate(bind({"object": {"x": 4}})) == 10


def test_presence_and_optional_reads_of_a_defined_variable() -> None:
    defs = [Definition("a", "object.x", "p:1")]
    program = compile_expression("has(variables.a) && variables.?a.orValue(0) == 4", where="p:2", definitions=defs)
    assert program.evaluate(bind({"object": {"x": 4}})) is True


def test_reading_a_variable_not_defined_before_is_a_load_error() -> None:
    with pytest.raises(LoadError, match=r"undeclared reference to 'variables\.later'"):
        compile_expression("variables.later == 1", where="p:2", definitions=[Definition("a", "1", "p:1")])


def test_a_literal_built_from_variables() -> None:
    defs = [Definition("labels", "{'team': object.metadata.name}", "p:1")]
    program = compile_expression("Object{metadata: Object.metadata{labels: variables.labels}}", where="p:2",
                                 definitions=defs, object_types=("Object",))
    assert program.evaluate(bind({"object": {"metadata": {"name": "web"}}})) == {"metadata": {"labels": {"team": "web"}}}


def test_declared_variables_are_present() -> None:
    assert rewritten(passes.declared_variables_present, "has(variables.a) && has(variables.b)", ("a",)) == (
        "true && has(variables.b)")


# -- cel-go's readings ---------------------------------------------------------------------------------------


def test_presence_chains_test_each_step_of_a_path() -> None:
    assert rewritten(passes.presence_chains, "has(a.b.c) && has(x.y) && 'has(a.b.c)' != ''") == (
        'has(a.b) && has(a.b.c) && has(x.y) && "has(a.b.c)" != ""')
    assert rewritten(passes.presence_chains, "!has(a.b.c.d)") == "!(has(a.b) && has(a.b.c) && has(a.b.c.d))"
    assert rewritten(passes.presence_chains, "has(a.?b.c) || has(f(a).b.c)") == "has(a.?b.c) || has(f(a).b.c)"


def test_or_value_on_a_receiver_that_may_not_be_optional_keeps_cel_go_s_reading() -> None:
    assert rewritten(passes.lenient_or_value, "x.y.orValue(1)") == (
        "cel.bind(__orv0__, x.y, type(__orv0__) == type(optional.none()) ? __orv0__.orValue(1) : __orv0__)")
    tree = parse("a.?b.orValue(1) + optional.of(2).orValue(3) + m[?'k'].c.orValue(4) + o.or(p).orValue(5)")
    assert passes.lenient_or_value(tree) is tree
    nested = rewritten(passes.lenient_or_value, "x.orValue(y.orValue(1))")
    assert nested.count("cel.bind") == 2 and "__orv0__" in nested and "__orv1__" in nested


# -- pod-controller auto-generation ------------------------------------------------------------------------------


def test_pod_paths_read_the_template_s_pod() -> None:
    text = ("object.spec.x == 'object.spec' && object.metadata.name != oldObject.metadata.namespace && y.object.spec "
            "&& object.?metadata.?labels.orValue({}).size() > 0")
    assert rewritten(passes.pod_template_paths, text, "template") == (
        'object.spec.template.spec.x == "object.spec" && object.spec.template.metadata.name != '
        "oldObject.metadata.namespace && y.object.spec && "
        "object.?spec.?template.?metadata.?labels.orValue({}).size() > 0")
    assert rewritten(passes.pod_template_paths, "has(oldObject.spec.a)", "jobTemplate") == (
        "has(oldObject.spec.jobTemplate.spec.template.spec.a)")


def test_pod_paths_leave_names_a_comprehension_binds() -> None:
    text = "[{'spec': 1}].all(object, object.spec == 1) && object.spec.a"
    assert rewritten(passes.pod_template_paths, text, "template") == (
        '[{"spec": 1}].all(object, object.spec == 1) && object.spec.template.spec.a')


# -- the static cost shape ---------------------------------------------------------------------------------


def test_cost_shape_counts_nesting_through_arguments_not_receivers() -> None:
    assert static_shape(parse("a.all(x, x.b.exists(y, y.c.all(z, z)))")) == (3, 4)
    assert static_shape(parse("a.map(x, x).filter(y, y).all(z, z)")) == (1, 4)
    assert static_shape(parse("'a.all(x, x.b.all(y, y))' + cel.bind(v, 1, v)")) == (0, 1)


def test_cost_shape_includes_the_variables_an_expression_inlines() -> None:
    defs = [Definition("pairs", "object.a.map(x, object.a.map(y, [x, y]))", "p:1")]
    program = compile_expression("variables.pairs.size() > 0", where="p:2", definitions=defs)
    assert (program.cost_degree, program.cost_terms) == (2, 3)
