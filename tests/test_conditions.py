"""preconditions / deny conditions, pinned to Kyverno.

Sources checked: kyverno/kyverno pkg/engine/variables/evaluate.go (any/all blocks, legacy lists, messages),
pkg/engine/variables/operator/*.go (each operator's handling of strings, numbers, durations, quantities,
semver, wildcards and ranges), and the operator list of https://kyverno.io/docs/writing-policies/preconditions/.
EVALUATE_CASES is the (operator, key, value, result) table of Kyverno's TestEvaluate
(pkg/engine/variables/evaluate_test.go), transcribed as data.
"""

import pytest

from admission.engines.yaml.conditions import OPERATOR_NAMES, evaluate_condition, evaluate_conditions


def same(x):
    return x


EVALUATE_CASES = [
    ("Equals", "string", "string", True),
    ("Equals", 1, 1, True),
    ("Equals", 1, 1, True),
    ("Equals", 1, 1, True),
    ("Equals", 1.0, 1.0, True),
    ("Equals", True, True, True),
    ("Equals", False, False, True),
    ("Equals", "1024", "1Ki", True),
    ("Equals", "1Ki", "1024", True),
    ("Equals", "1Gi", "1Gi", True),
    ("Equals", "1Gi", "1024Mi", True),
    ("Equals", "1h", "1h", True),
    ("Equals", "1h", "60m", True),
    ("Equals", {"foo": "bar"}, {"foo": "bar"}, True),
    ("Equals", ["foo", "bar"], ["foo", "bar"], True),
    ("Equals", [{"foo": "bar"}], [{"foo": "bar"}], True),
    ("Equals", "string", "not string", False),
    ("Equals", 1, 2, False),
    ("Equals", 1, 2, False),
    ("Equals", 1, 2, False),
    ("Equals", 1.0, 2.0, False),
    ("Equals", True, False, False),
    ("Equals", False, True, False),
    ("Equals", "1Gi", "10Gi", False),
    ("Equals", "10Gi", "1024Mi", False),
    ("Equals", "1h", "5h", False),
    ("Equals", "1h", "30m", False),
    ("Equals", "string", 1, False),
    ("Equals", 1, "2", False),
    ("Equals", 1.0, "2.0", False),
    ("Equals", True, "false", False),
    ("Equals", False, "true", False),
    ("Equals", {"foo": "bar"}, {"bar": "foo"}, False),
    ("Equals", ["foo", "bar"], ["bar", "foo"], False),
    ("Equals", [{"foo": "bar"}], [{"bar": "foo"}], False),
    ("Equals", "1h", 3600, True),
    ("Equals", "2h", 3600, False),
    ("Equals", "1.5.2", "1.5.2", True),
    ("Equals", "1.5.2", "1.5.*", True),
    ("Equals", "1.5.0", "1.5.5", False),
    ("NotEquals", "string", "string", False),
    ("NotEquals", 1, 1, False),
    ("NotEquals", 1, 1, False),
    ("NotEquals", 1, 1, False),
    ("NotEquals", 1.0, 1.0, False),
    ("NotEquals", True, False, True),
    ("NotEquals", False, False, False),
    ("NotEquals", "1024", "1Ki", False),
    ("NotEquals", "1Ki", "1024", False),
    ("NotEquals", "1023", "1Ki", True),
    ("NotEquals", "1Ki", "1023", True),
    ("NotEquals", "1Gi", "1Gi", False),
    ("NotEquals", "10Gi", "1024Mi", True),
    ("NotEquals", "1h", "1h", False),
    ("NotEquals", "1h", "60m", False),
    ("NotEquals", {"foo": "bar"}, {"foo": "bar"}, False),
    ("NotEquals", ["foo", "bar"], ["foo", "bar"], False),
    ("NotEquals", [{"foo": "bar"}], [{"foo": "bar"}], False),
    ("NotEquals", "string", "not string", True),
    ("NotEquals", 1, 2, True),
    ("NotEquals", 1, 2, True),
    ("NotEquals", 1, 2, True),
    ("NotEquals", 1.0, 2.0, True),
    ("NotEquals", True, True, False),
    ("NotEquals", False, True, True),
    ("NotEquals", "1Gi", "10Gi", True),
    ("NotEquals", "1Gi", "1024Mi", False),
    ("NotEquals", "1h", "5h", True),
    ("NotEquals", "1h", "30m", True),
    ("NotEquals", "string", 1, True),
    ("NotEquals", 1, "2", True),
    ("NotEquals", 1.0, "2.0", True),
    ("NotEquals", True, "false", True),
    ("NotEquals", False, "true", True),
    ("NotEquals", {"foo": "bar"}, {"bar": "foo"}, True),
    ("NotEquals", ["foo", "bar"], ["bar", "foo"], True),
    ("NotEquals", [{"foo": "bar"}], [{"bar": "foo"}], True),
    ("NotEquals", "1h", 3600, False),
    ("NotEquals", "2h", 3600, True),
    ("NotEquals", "1.5.2", "1.5.5", True),
    ("NotEquals", "1.5.2", "1.5.*", False),
    ("NotEquals", "1.5.0", "1.5.0", False),
    ("GreaterThan", 10, 1, True),
    ("GreaterThan", 1.5, 1.0, True),
    ("GreaterThan", 1.5, 1, True),
    ("GreaterThan", 1, 10, False),
    ("GreaterThan", 1.0, 1.5, False),
    ("GreaterThan", 1, 1.5, False),
    ("GreaterThan", 1, 1, False),
    ("GreaterThan", 1.0, 1.0, False),
    ("GreaterThan", "1025", "1Ki", True),
    ("GreaterThan", "1Ki", "1023", True),
    ("GreaterThan", "10Gi", "1Gi", True),
    ("GreaterThan", "1Gi", "1Mi", True),
    ("GreaterThan", "1Gi", "10Gi", False),
    ("GreaterThan", "10Mi", "10Mi", False),
    ("GreaterThan", "10h", "1h", True),
    ("GreaterThan", "1h", "30m", True),
    ("GreaterThan", "1h", "1h", False),
    ("GreaterThan", "1Gi", "1Gi", False),
    ("GreaterThan", "10", 1, True),
    ("GreaterThan", 100, "10", True),
    ("GreaterThan", "100", "10", True),
    ("GreaterThan", "10", "10", False),
    ("GreaterThan", "1", "10", False),
    ("GreaterThan", "1", 10, False),
    ("GreaterThan", 1, "10", False),
    ("GreaterThan", "1h", 3600, False),
    ("GreaterThan", "2h", 3600, True),
    ("GreaterThan", 3600, "1h", False),
    ("GreaterThan", 3600, "30m", True),
    ("GreaterThan", 1, 1, False),
    ("GreaterThan", 10, 1, True),
    ("GreaterThan", 1, 10, False),
    ("GreaterThan", 1, 1, False),
    ("GreaterThan", 10, 1, True),
    ("GreaterThan", 1, 10, False),
    ("GreaterThan", 1, 1, False),
    ("GreaterThan", 10, 1, True),
    ("GreaterThan", 1, 10, False),
    ("GreaterThan", -5, 1, False),
    ("GreaterThan", -5, -10, True),
    ("GreaterThan", 1, -10, True),
    ("GreaterThan", "1.5.5", "1.5.0", True),
    ("GreaterThan", "1.5.0", "1.5.5", False),
    ("LessThan", 10, 1, False),
    ("LessThan", 1.5, 1.0, False),
    ("LessThan", 1.5, 1, False),
    ("LessThan", 1, 10, True),
    ("LessThan", 1.0, 1.5, True),
    ("LessThan", 1, 1.5, True),
    ("LessThan", 1, 1, False),
    ("LessThan", 1.0, 1.0, False),
    ("LessThan", "1023", "1Ki", True),
    ("LessThan", "1Ki", "1025", True),
    ("LessThan", "10Gi", "1Gi", False),
    ("LessThan", "1Gi", "10Gi", True),
    ("LessThan", "1Gi", "1Mi", False),
    ("LessThan", "1Mi", "1Gi", True),
    ("LessThan", "10h", "1h", False),
    ("LessThan", "1h", "30m", False),
    ("LessThan", "1h", "1h", False),
    ("LessThan", "1Gi", "1Gi", False),
    ("LessThan", "10", 1, False),
    ("LessThan", 100, "10", False),
    ("LessThan", "100", "10", False),
    ("LessThan", "10", "10", False),
    ("LessThan", "1", "10", True),
    ("LessThan", "1", 10, True),
    ("LessThan", 1, "10", True),
    ("LessThan", "1h", 3600, False),
    ("LessThan", "30m", 3600, True),
    ("LessThan", 3600, "1h", False),
    ("LessThan", 3600, "30m", False),
    ("LessThan", 1, 1, False),
    ("LessThan", 10, 1, False),
    ("LessThan", 1, 10, True),
    ("LessThan", 1, 1, False),
    ("LessThan", 10, 1, False),
    ("LessThan", 1, 10, True),
    ("LessThan", 1, 1, False),
    ("LessThan", 10, 1, False),
    ("LessThan", 1, 10, True),
    ("LessThan", -5, 1, True),
    ("LessThan", -5, -10, False),
    ("LessThan", 1, -10, False),
    ("LessThan", "1.5.5", "1.5.0", False),
    ("LessThan", "1.5.0", "1.5.5", True),
    ("GreaterThanOrEquals", 10, 1, True),
    ("GreaterThanOrEquals", 1.5, 1.0, True),
    ("GreaterThanOrEquals", 1.5, 1, True),
    ("GreaterThanOrEquals", 1, 10, False),
    ("GreaterThanOrEquals", 1.0, 1.5, False),
    ("GreaterThanOrEquals", 1, 1.5, False),
    ("GreaterThanOrEquals", 1, 1, True),
    ("GreaterThanOrEquals", 1.0, 1.0, True),
    ("GreaterThanOrEquals", 1.0, 1, True),
    ("GreaterThanOrEquals", "1025", "1Ki", True),
    ("GreaterThanOrEquals", "1024", "1Ki", True),
    ("GreaterThanOrEquals", "1Ki", "1023", True),
    ("GreaterThanOrEquals", "1Ki", "1024", True),
    ("GreaterThanOrEquals", "10Gi", "1Gi", True),
    ("GreaterThanOrEquals", "1Gi", "1Mi", True),
    ("GreaterThanOrEquals", "1Gi", "10Gi", False),
    ("GreaterThanOrEquals", "10h", "1h", True),
    ("GreaterThanOrEquals", "1h", "30m", True),
    ("GreaterThanOrEquals", "1h", "1h", True),
    ("GreaterThanOrEquals", "1Gi", "1Gi", True),
    ("GreaterThanOrEquals", "10", 1, True),
    ("GreaterThanOrEquals", 100, "10", True),
    ("GreaterThanOrEquals", "100", "10", True),
    ("GreaterThanOrEquals", "10", "10", True),
    ("GreaterThanOrEquals", "1", "10", False),
    ("GreaterThanOrEquals", "1", 10, False),
    ("GreaterThanOrEquals", 1, "10", False),
    ("GreaterThanOrEquals", "1h", 3600, True),
    ("GreaterThanOrEquals", "2h", 3600, True),
    ("GreaterThanOrEquals", 1, 1, True),
    ("GreaterThanOrEquals", 10, 1, True),
    ("GreaterThanOrEquals", 1, 10, False),
    ("GreaterThanOrEquals", 1, 1, True),
    ("GreaterThanOrEquals", 10, 1, True),
    ("GreaterThanOrEquals", 1, 10, False),
    ("GreaterThanOrEquals", 1, 1, True),
    ("GreaterThanOrEquals", 10, 1, True),
    ("GreaterThanOrEquals", 1, 10, False),
    ("GreaterThanOrEquals", "1.5.5", "1.5.5", True),
    ("GreaterThanOrEquals", "1.5.5", "1.5.0", True),
    ("GreaterThanOrEquals", "1.5.0", "1.5.5", False),
    ("LessThanOrEquals", 10, 1, False),
    ("LessThanOrEquals", 1.5, 1.0, False),
    ("LessThanOrEquals", 1.5, 1, False),
    ("LessThanOrEquals", 1, 10, True),
    ("LessThanOrEquals", 1.0, 1.5, True),
    ("LessThanOrEquals", 1, 1.5, True),
    ("LessThanOrEquals", 1, 1, True),
    ("LessThanOrEquals", 1.0, 1.0, True),
    ("LessThanOrEquals", "1Ki", "1024", True),
    ("LessThanOrEquals", "1024", "1Ki", True),
    ("LessThanOrEquals", "1Ki", "1025", True),
    ("LessThanOrEquals", "1023", "1Ki", True),
    ("LessThanOrEquals", "10Gi", "1Gi", False),
    ("LessThanOrEquals", "1Gi", "10Gi", True),
    ("LessThanOrEquals", "1Gi", "1Mi", False),
    ("LessThanOrEquals", "1Mi", "1Gi", True),
    ("LessThanOrEquals", "10h", "1h", False),
    ("LessThanOrEquals", "1h", "30m", False),
    ("LessThanOrEquals", "1h", "1h", True),
    ("LessThanOrEquals", "1Gi", "1Gi", True),
    ("LessThanOrEquals", "10", 1, False),
    ("LessThanOrEquals", 100, "10", False),
    ("LessThanOrEquals", "100", "10", False),
    ("LessThanOrEquals", "10", "10", True),
    ("LessThanOrEquals", "1", "10", True),
    ("LessThanOrEquals", "1", 10, True),
    ("LessThanOrEquals", 1, "10", True),
    ("LessThanOrEquals", "1h", 3600, True),
    ("LessThanOrEquals", "2h", 3600, False),
    ("LessThanOrEquals", 1, 1, True),
    ("LessThanOrEquals", 10, 1, False),
    ("LessThanOrEquals", 1, 10, True),
    ("LessThanOrEquals", 1, 1, True),
    ("LessThanOrEquals", 10, 1, False),
    ("LessThanOrEquals", 1, 10, True),
    ("LessThanOrEquals", 1, 1, True),
    ("LessThanOrEquals", 10, 1, False),
    ("LessThanOrEquals", 1, 10, True),
    ("LessThanOrEquals", "1.5.5", "1.5.5", True),
    ("LessThanOrEquals", "1.5.0", "1.5.5", True),
    ("LessThanOrEquals", "1.5.5", "1.5.0", False),
    ("In", 1, [1, 2, 3], True),
    ("In", 1.5, [1, 1.5, 2, 3], True),
    ("In", "1", ["1", "2", "3"], True),
    ("In", ["1.1.1.1", "2.2.2.2"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], True),
    ("In", 5, [1, 2, 3], False),
    ("In", 5.5, [1, 1.5, 2, 3], False),
    ("In", "5", ["1", "2", "3"], False),
    ("In", "1.1.1.1", ["1*"], True),
    ("In", ["1.1.1.1", "4.4.4.4"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], False),
    ("NotIn", 1, [1, 2, 3], False),
    ("NotIn", 1.5, [1, 1.5, 2, 3], False),
    ("NotIn", "1", ["1", "2", "3"], False),
    ("NotIn", ["1.1.1.1", "2.2.2.2"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], False),
    ("NotIn", 5, [1, 2, 3], True),
    ("NotIn", 5.5, [1, 1.5, 2, 3], True),
    ("NotIn", "5", ["1", "2", "3"], True),
    ("NotIn", ["1.1.1.1", "4.4.4.4"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], True),
    ("AnyIn", ["1.1.1.1", "5.5.5.5"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], True),
    ("AnyIn", ["1.1.1.1", "5.5.5.5"], "1.1.1.1", True),
    ("AnyIn", ["4.4.4.4", "5.5.5.5"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], False),
    ("AnyIn", ["1.1.1.1", "5.5.5.5"], ["1.1.1.1"], True),
    ("AnyIn", [1, 2], [1, 2, 3, 4], True),
    ("AnyIn", [1, 5], [1, 2, 3, 4], True),
    ("AnyIn", [5], [1, 2, 3, 4], False),
    ("AnyIn", ["1*"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], True),
    ("AnyIn", ["5*"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], False),
    ("AnyIn", ["1.1.1.1", "2.2.2.2", "5.5.5.5"], ["2*"], True),
    ("AnyIn", ["1.1.1.1", "2.2.2.2", "5.5.5.5"], ["4*"], False),
    ("AnyIn", ["5"], "1-3", False),
    ("AnyIn", "1.1.1.1", ["1*"], True),
    ("AnyIn", "5", "1-10", True),
    ("AnyIn", 5, "1-10", True),
    ("AnyIn", [1, 5], "7-10", False),
    ("AnyIn", [1, 5], "0-10", True),
    ("AnyIn", [1.002, 1.222], "1.001-10", True),
    ("AllIn", ["1.1.1.1", "2.2.2.2"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], True),
    ("AllIn", ["1.1.1.1", "5.5.5.5"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], False),
    ("AllIn", ["4.4.4.4", "5.5.5.5"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], False),
    ("AllIn", ["1.1.1.1", "5.5.5.5"], ["1.1.1.1"], False),
    ("AllIn", [1, 2], [1, 2, 3, 4], True),
    ("AllIn", [1, 5], [1, 2, 3, 4], False),
    ("AllIn", [5], [1, 2, 3, 4], False),
    ("AllIn", ["1*"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], True),
    ("AllIn", ["5*"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], False),
    ("AllIn", ["2.1.1.1", "2.2.2.2", "2.5.5.5"], ["2*"], True),
    ("AllIn", ["1.1.1.1", "2.2.2.2", "5.5.5.5"], ["4*"], False),
    ("AllIn", ["1.1.1.1", "5.5.5.5"], "5.5.5.5", False),
    ("AllIn", 5, "1-10", True),
    ("AllIn", [3, 2], "1-10", True),
    ("AllIn", [3, 2], "5-10", False),
    ("AllNotIn", 1, [1, 2, 3], False),
    ("AllNotIn", 1.5, [1, 1.5, 2, 3], False),
    ("AllNotIn", "1", ["1", "2", "3"], False),
    ("AllNotIn", ["1.1.1.1", "2.2.2.2"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], False),
    ("AllNotIn", 5, [1, 2, 3], True),
    ("AllNotIn", 5.5, [1, 1.5, 2, 3], True),
    ("AllNotIn", "5", ["1", "2", "3"], True),
    ("AllNotIn", ["1.1.1.1", "4.4.4.4"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], False),
    ("AllNotIn", ["1.1.1.1", "4.4.4.4"], ["1.1.1.1", "2.2.2.2", "3.3.3.3", "1.1.1.1"], False),
    (
        "AllNotIn",
        ["1.1.1.1", "4.4.4.4", "1.1.1.1"],
        ["1.1.1.1", "2.2.2.2", "3.3.3.3", "1.1.1.1", "4.4.4.4"],
        False,
    ),
    ("AllNotIn", ["5.5.5.5", "4.4.4.4"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], True),
    ("AllNotIn", ["7*", "6*", "5*"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], True),
    ("AllNotIn", ["1*", "2*"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], False),
    ("AllNotIn", ["1.1.1.1", "3.3.3.3", "5.5.5.5"], ["2*"], True),
    ("AllNotIn", ["4.1.1.1", "4.2.2.2", "4.5.5.5"], ["4*"], False),
    ("AllNotIn", ["1.1.1.1", "4.4.4.4"], "2.2.2.2", True),
    ("AllNotIn", 5.5, "6-10", True),
    ("AllNotIn", "5", "1-6", False),
    ("AllNotIn", [3, 2], "5-10", True),
    ("AllNotIn", [2, 6], "5-10", False),
    ("AnyNotIn", 1, [1, 2, 3], False),
    ("AnyNotIn", 1.5, [1, 1.5, 2, 3], False),
    ("AnyNotIn", "1", ["1", "2", "3"], False),
    ("AnyNotIn", ["1.1.1.1", "2.2.2.2"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], False),
    ("AnyNotIn", 5, [1, 2, 3], True),
    ("AnyNotIn", 5.5, [1, 1.5, 2, 3], True),
    ("AnyNotIn", "5", ["1", "2", "3"], True),
    ("AnyNotIn", ["1.1.1.1", "4.4.4.4"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], True),
    ("AnyNotIn", ["5.5.5.5", "4.4.4.4"], "4.4.4.4", True),
    ("AnyNotIn", ["5.5.5.5", "4.4.4.4"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], True),
    ("AnyNotIn", ["1*", "3*", "5*"], ["1.1.1.1", "2.2.2.2", "3.3.3.3"], True),
    ("AnyNotIn", ["1.1.1.1", "2.2.2.2", "5.5.5.5"], ["2*"], True),
    ("AnyNotIn", ["2.2*"], ["2.2.2.2"], False),
    ("AnyNotIn", "5", "1-3", True),
    ("AnyNotIn", [1, 5, 11], "0-10", True),
    ("AnyNotIn", [1, 5, 7], "0-10", False),
]


@pytest.mark.parametrize(("operator", "key", "value", "expected"), EVALUATE_CASES)
def test_kyverno_evaluate_table(operator, key, value, expected):
    assert evaluate_condition({"key": key, "operator": operator, "value": value}, same) == (expected, "")


# More cases read off the operator code, beyond Kyverno's table.
@pytest.mark.parametrize(
    ("operator", "key", "value", "expected"),
    [
        # Equals: the value is the wildcard pattern; numbers vs strings depend on the key's type
        ("Equals", "nginx:latest", "*:latest", True),
        ("Equals", "*:latest", "nginx:latest", False),
        ("Equals", 1, "1", True),
        ("Equals", "1", 1, False),  # a quantity key wants a string value
        ("Equals", 1.5, 1, False),
        ("Equals", True, "true", False),
        ("Equals", None, None, False),  # Kyverno has no handler for a null key
        ("NotEquals", None, None, False),
        ("Equals", {"a": [1, 2]}, {"a": [1.0, 2.0]}, True),
        ("Equals", [1], {"a": 1}, False),
        ("NotEquals", [1], "x", True),
        ("Equals", "1h", 3600.9, True),  # numbers are whole seconds
        ("Equals", "", "", True),
        ("NotEquals", "1Gi", "", True),
        ("NotEquals", "1Gi", "abc", True),
        ("Equal", "a", "a", True),  # deprecated alias
        ("NotEqual", "a", "a", False),
        ("equals", "a", "a", True),  # operator names are case-insensitive
        ("EQUALS", "a", "b", False),
        # In / NotIn (legacy): wildcards on either side for a single key, exact set semantics for lists
        ("In", "kube-system", ["kube-*", "default"], True),
        ("In", "kube-*", ["kube-system"], True),
        ("In", "prod", ["kube-*", "default"], False),
        ("In", 3, [1, 2, 3], True),
        ("In", True, ["true"], True),
        ("In", "a", "a", True),
        ("In", "a", '["a", "b"]', True),
        ("In", "a", '["b"]', False),
        ("In", "a", "b", False),  # not JSON: Kyverno gives up
        ("NotIn", "a", "b", False),
        ("In", "a", {"a": 1}, False),
        ("NotIn", "a", {"a": 1}, False),
        ("In", ["a", "b"], ["a", "b", "c"], True),
        ("In", ["a", "x"], ["a", "b", "c"], False),
        ("In", ["a*"], ["abc"], False),  # no wildcards in the list form
        ("In", ["a"], "a", True),
        ("NotIn", ["a"], "a", True),  # Kyverno's set check answers true here
        ("NotIn", ["a", "x"], ["a", "b"], True),
        ("NotIn", ["a"], ["a", "b"], False),
        ("In", ["a"], [1], False),  # non-string values: invalid
        ("NotIn", "prod", ["kube-*"], True),
        # AnyIn / AllIn / AnyNotIn / AllNotIn: wildcards both ways, ranges, numbers as strings
        ("AnyIn", ["a", "x"], ["a", "b"], True),
        ("AnyIn", ["x", "y"], ["a", "b"], False),
        ("AnyIn", ["nginx:latest"], ["*:latest"], True),
        ("AnyIn", [1, 2], [2], True),
        ("AnyIn", [80, 443], "1-1024", True),
        ("AnyIn", [8080], "1-1024", False),
        ("AnyIn", "500", "1-1024", True),
        ("AnyIn", ["a"], 5, False),
        ("AnyIn", [5], 5, True),
        ("AllIn", ["a", "b"], ["a", "b", "c"], True),
        ("AllIn", ["a", "x"], ["a", "b"], False),
        ("AllIn", [80, 443], "1-1024", True),
        ("AllIn", [80, 8080], "1-1024", False),
        ("AllIn", [5], 5, False),  # AllIn takes only a list or a string
        ("AnyNotIn", ["a", "x"], ["a", "b"], True),
        ("AnyNotIn", ["a", "b"], ["a", "b"], False),
        ("AnyNotIn", [80, 8080], "1-1024", True),
        ("AnyNotIn", [80, 443], "1-1024", False),
        ("AnyNotIn", ["a"], "a", False),
        ("AllNotIn", ["x", "y"], ["a", "b"], True),
        ("AllNotIn", ["a", "y"], ["a", "b"], False),
        ("AllNotIn", [8080, 9090], "1-1024", True),
        ("AllNotIn", [80, 9090], "1-1024", False),
        ("AllNotIn", ["x"], ["x*"], False),
        ("AnyIn", "a", "a", True),
        ("AnyNotIn", "a", "[1]", False),  # JSON that is not a string list: invalid
        ("AnyIn", ["CAP_SYS_ADMIN"], ["CAP_*"], True),
        ("AllIn", [], ["a"], True),
        ("AnyIn", [], ["a"], False),
        ("AnyIn", None, ["a"], False),
        # ordering: durations, quantities, numbers, semver
        ("GreaterThan", "1h", "30m", True),
        ("GreaterThan", 3600, "30m", True),  # numbers are seconds against a duration
        ("LessThan", "30m", 3600, True),
        ("GreaterThan", "2Gi", "1Gi", True),
        ("LessThanOrEquals", "1024Mi", "1Gi", True),
        ("GreaterThan", "1.10.0", "1.9.0", True),  # semver, not numbers
        ("LessThan", "1.2.3-alpha", "1.2.3", True),
        ("GreaterThan", "v1.10.0", "v1.9.0", False),  # not semver: nothing to compare
        ("GreaterThan", "1.10.0", 1, False),
        ("GreaterThan", 5, "3", True),
        ("GreaterThan", "5", 3, True),
        ("GreaterThan", 5, "abc", False),
        ("GreaterThan", True, 0, False),
        ("GreaterThan", 1, True, False),
        ("GreaterThanOrEquals", 3, 3.0, True),
        ("LessThan", "abc", "abd", False),  # strings are not ordered
        ("GreaterThan", None, 1, False),
        # Duration* (deprecated): numbers are seconds, strings must be durations
        ("DurationGreaterThan", "2h", "1h", True),
        ("DurationGreaterThan", "2h", 3600, True),
        ("DurationGreaterThanOrEquals", 3600, "1h", True),
        ("DurationLessThan", "30m", "1h", True),
        ("DurationLessThanOrEquals", "1h", "60m", True),
        ("DurationLessThan", "1h", "abc", False),
        ("DurationLessThan", "abc", "1h", False),
        ("DurationGreaterThan", "1h", "0", True),
        ("DurationGreaterThan", True, "1h", False),
    ],
)
def test_operator_semantics(operator, key, value, expected):
    assert evaluate_condition({"key": key, "operator": operator, "value": value}, same)[0] is expected


def c(key, operator, value, message=""):
    condition = {"key": key, "operator": operator, "value": value}
    if message:
        condition["message"] = message
    return condition


TRUE_A = c("a", "Equals", "a", "a holds")
TRUE_B = c("b", "Equals", "b", "b holds")
FALSE_X = c("a", "Equals", "x", "a is not x")
FALSE_Y = c("b", "Equals", "y", "b is not y")


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        (None, (True, "")),
        ({}, (True, "")),
        ({"any": [], "all": []}, (False, "")),  # an empty any block holds nothing
        ({"all": []}, (True, "")),
        ({"any": [FALSE_X, TRUE_A, TRUE_B]}, (True, "a holds")),
        ({"any": [FALSE_X, FALSE_Y]}, (False, "a is not x; b is not y")),
        ({"all": [TRUE_A, TRUE_B]}, (True, "a holds; b holds")),
        ({"all": [TRUE_A, FALSE_X, FALSE_Y]}, (False, "a is not x")),
        ({"any": [TRUE_A], "all": [TRUE_B]}, (True, "a holds; b holds")),
        ({"any": [FALSE_X], "all": [TRUE_B]}, (False, "a is not x")),
        ({"any": [FALSE_X, TRUE_A], "all": [FALSE_Y]}, (False, "a is not x; b is not y")),
        ({"any": [TRUE_A], "all": [c("a", "Equals", "x")]}, (False, "")),  # no message on the failing one
        ([TRUE_A, TRUE_B], (True, "a holds;b holds")),  # legacy list: all must hold
        ([TRUE_A, FALSE_X, FALSE_Y], (False, "a is not x")),
        ([], (True, "")),
        # fields beside any/all are ignored, as Kyverno's JSON decoder ignores them
        ({"any": [TRUE_A], "note": "x"}, (True, "a holds")),
        ({"key": "a", "operator": "Equals", "value": "b"}, (True, "")),  # not a list: an empty block
    ],
)
def test_blocks_and_messages(conditions, expected):
    assert evaluate_conditions(conditions, same) == expected


def test_kyverno_condition_messages():
    # Test_Condition_Messages in pkg/engine/variables/evaluate_test.go, with the variables already resolved
    any_block = [c("temp", "Equal", "temp2", "invalid name"), c("bar", "Equal", "bar2", "invalid foo")]
    assert evaluate_conditions({"any": any_block}, same) == (False, "invalid name; invalid foo")
    any_block = [c("temp", "Equal", "temp", "invalid name"), c("bar", "Equal", "bar", "invalid foo")]
    assert evaluate_conditions({"any": any_block}, same) == (True, "invalid name")
    all_block = [any_block[0], c("bar", "Equal", "bar2", "invalid foo2")]
    any_block = [c("temp", "Equal", "temp1", "invalid name"), c("bar", "Equal", "bar2", "invalid foo")]
    assert evaluate_conditions({"any": any_block, "all": all_block}, same) == (
        False,
        "invalid name; invalid foo; invalid foo2",
    )


def test_substitute_resolves_key_and_value():
    variables = {"{{ request.object.metadata.name }}": "web", "{{ allowed }}": ["web", "api"]}
    seen = []

    def substitute(x):
        seen.append(x)
        return variables.get(x, x) if isinstance(x, str) else x

    condition = c("{{ request.object.metadata.name }}", "AnyIn", "{{ allowed }}")
    assert evaluate_conditions({"all": [condition]}, substitute) == (True, "")
    assert seen == ["{{ request.object.metadata.name }}", "{{ allowed }}"]


def test_substitute_errors_propagate():
    def substitute(x):
        raise KeyError("variable not found")

    with pytest.raises(KeyError):
        evaluate_conditions({"all": [TRUE_A]}, substitute)


def test_any_stops_at_the_first_condition_that_holds():
    calls = []

    def substitute(x):
        calls.append(x)
        return x

    evaluate_conditions({"any": [TRUE_A, c("never", "Equals", "evaluated")]}, substitute)
    assert "never" not in calls


@pytest.mark.parametrize(
    "conditions",
    [
        {"all": [c("a", "Matches", "a")]},
        {"all": [{"key": "a", "value": "a"}]},
        {"any": [c("a", 5, "a")]},
        [c("a", "Near", "a")],
        [{"any": [TRUE_A]}],  # a list is the legacy form: its items are conditions, not blocks
    ],
)
def test_unknown_operator_is_a_value_error(conditions):
    with pytest.raises(ValueError, match="unknown condition operator"):
        evaluate_conditions(conditions, same)


@pytest.mark.parametrize(
    "conditions",
    ["a string", 5, {"all": "x"}, {"any": {"key": "a"}}, ["not a map"], {"all": [["x"]]}],
)
def test_malformed_conditions_are_value_errors(conditions):
    with pytest.raises(ValueError):
        evaluate_conditions(conditions, same)


def test_in_with_a_non_string_list_key_is_an_error():
    # Kyverno's In handler asserts every list element is a string (it would panic)
    with pytest.raises(ValueError):
        evaluate_conditions({"all": [c([1], "In", ["1"])]}, same)


def test_every_documented_operator_is_known():
    # api/kyverno/v1/common_types.go ConditionOperators
    kyverno_operators = {
        "Equal", "Equals", "NotEqual", "NotEquals", "In", "AnyIn", "AllIn", "NotIn", "AnyNotIn", "AllNotIn",
        "GreaterThanOrEquals", "GreaterThan", "LessThanOrEquals", "LessThan", "DurationGreaterThanOrEquals",
        "DurationGreaterThan", "DurationLessThanOrEquals", "DurationLessThan",
    }  # fmt: skip
    assert set(OPERATOR_NAMES) == kyverno_operators
    holds = {name: evaluate_condition(c("1h", name, "1h"), same)[0] for name in OPERATOR_NAMES}
    assert {name for name, held in holds.items() if not held} == {
        "NotEqual", "NotEquals", "NotIn", "AnyNotIn", "AllNotIn", "GreaterThan", "LessThan",
        "DurationGreaterThan", "DurationLessThan",
    }  # fmt: skip
