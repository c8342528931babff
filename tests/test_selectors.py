import pytest

from admission.selectors import selector_matches


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({}, {"app": "x"}, True),
        ({}, {}, True),
        (None, {"app": "x"}, False),
        ({"matchLabels": {"app": "x"}}, {"app": "x", "tier": "web"}, True),
        ({"matchLabels": {"app": "x"}}, {"app": "y"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]}, {"tier": "api"}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}, {}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]}, {"tier": "web"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": "a"}, False),
    ],
)
def test_selector_matches(selector, labels, expected):
    assert selector_matches(selector, labels) is expected


def test_unknown_operator_is_an_error():
    with pytest.raises(ValueError, match="unknown label selector operator"):
        selector_matches({"matchExpressions": [{"key": "a", "operator": "Near"}]}, {"a": "1"})
