"""The set operators answer an exact entry without trying the wildcard patterns: a string always
matches itself as a pattern, so the verdict is the same."""

from __future__ import annotations

import random

from admission.engines.yaml.conditions import evaluate_condition
from admission.engines.yaml.values import wildcard_match


def test_every_string_matches_itself_as_a_pattern() -> None:
    rng = random.Random(2)
    for _ in range(20000):
        text = "".join(rng.choice("ab*?.:") for _ in range(rng.randint(0, 9)))
        assert wildcard_match(text, text), text


def test_set_operators_with_exact_and_wildcard_entries() -> None:
    allowed = ["registry.example.com", "*.registry.example.com", "localhost:*"]

    def holds(operator: str, key: object) -> bool:
        return evaluate_condition({"key": key, "operator": operator, "value": allowed}, lambda v: v)[0]

    assert holds("AnyNotIn", ["registry.example.com", "localhost:5000"]) is False
    assert holds("AnyNotIn", ["registry.example.com", "docker.io"]) is True
    assert holds("AllIn", ["a.registry.example.com", "registry.example.com"]) is True
    assert holds("AnyIn", ["docker.io", "localhost:1"]) is True
    assert holds("AllNotIn", ["docker.io", "quay.io"]) is True
    assert holds("AllNotIn", ["docker.io", "registry.example.com"]) is False
