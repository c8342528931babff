"""Rules whose match/exclude blocks read the same share one answer per subject; others never do."""

from __future__ import annotations

from typing import Any

import pytest

from admission import match as match_module
from admission.match import RuleMatcher, Subject

POD: dict[str, Any] = {"kind": "Pod", "metadata": {"name": "web", "namespace": "apps"}}
SYSTEM_POD: dict[str, Any] = {"kind": "Pod", "metadata": {"name": "web", "namespace": "kube-system"}}
MATCH = {"any": [{"resources": {"kinds": ["Pod"]}}]}
EXCLUDE = {"any": [{"resources": {"namespaces": ["kube-system", "kube-public"]}}]}


def test_equal_blocks_are_matched_once_per_subject(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = match_module._Filter.matches

    def counted(self: Any, s: Subject, *, in_match: bool) -> bool | None:
        calls.append(s.resource_namespace)
        return original(self, s, in_match=in_match)

    monkeypatch.setattr(match_module._Filter, "matches", counted)
    rules = [RuleMatcher(dict(MATCH), {"any": [{"resources": {"namespaces": ["kube-system", "kube-public"]}}]})
             for _ in range(5)]
    s = Subject(group="", version="v1", kind="Pod", resource=POD)
    assert all(r.applies(s) for r in rules)
    assert len(calls) == 2  # one match filter, one exclude filter, for all five rules
    system = Subject(group="", version="v1", kind="Pod", resource=SYSTEM_POD)
    assert not any(r.applies(system) for r in rules)
    assert len(calls) == 4


def test_blocks_that_differ_do_not_share() -> None:
    s = Subject(group="", version="v1", kind="Pod", resource=SYSTEM_POD)
    excluded = RuleMatcher(MATCH, EXCLUDE)
    other = RuleMatcher(MATCH, {"any": [{"resources": {"namespaces": ["kube-public"]}}]})
    deployments = RuleMatcher({"any": [{"resources": {"kinds": ["Deployment"]}}]}, None)
    assert excluded.applies(s) is False
    assert other.applies(s) is True
    assert deployments.applies(s) is False
    # the same block as match and as exclude is told apart (user filters read differently in each)
    assert RuleMatcher(MATCH, MATCH).applies(s) is False
