"""The compiled pass check of policy patterns (pattern._passes) agrees with the matcher: it says
"passes" only when the matcher passes, and then the verdicts of static and per-request matching agree."""

from __future__ import annotations

import copy
import random
from typing import Any

from admission.engines.yaml.pattern import _passes, match_pattern

KEYS = ["a", "b", "name", "image", "securityContext", "privileged", "metadata", "labels", "app"]
ANCHORS = ["{}", "({})", "=({})", "X({})", "^({})", "<({})", "+({})"]
SCALARS: list[Any] = ["*", "?*", "false", "true", "nginx*", "!latest", ">1", "1-5", "a | b", 1, 2.5, True, False,
                      None, "", "null"]
VALUES: list[Any] = ["nginx", "nginx:1", "latest", "false", "true", 0, 1, 3, 2.5, True, False, None, "", "b", "a"]


def pattern(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth >= 3 or roll < 0.35:
        return rng.choice(SCALARS)
    if roll < 0.55:
        first = pattern(rng, depth + 1)
        return [first] if rng.random() < 0.8 else [first, pattern(rng, depth + 1)]
    out: dict[str, Any] = {}
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(KEYS)
        anchor = rng.choice(ANCHORS) if rng.random() < 0.5 else "{}"
        value = pattern(rng, depth + 1)
        if anchor.startswith("^") and not isinstance(value, list):
            value = [value if isinstance(value, dict) else {"a": value}]
        out[anchor.format(key)] = value
    return out


def resource_like(rng: random.Random, p: Any, depth: int = 0) -> Any:
    """A resource shaped like the pattern most of the time (so passes are frequent), randomly off."""
    roll = rng.random()
    if depth > 4 or roll < 0.1:
        return rng.choice(VALUES)
    if isinstance(p, dict):
        out: dict[str, Any] = {}
        for key, value in p.items():
            bare = key
            for a in ("X(", "^(", "<(", "=(", "+(", "("):
                if key.startswith(a) and key.endswith(")"):
                    bare = key[len(a):-1]
                    break
            if rng.random() < 0.8:
                out[bare] = resource_like(rng, value, depth + 1)
        return out
    if isinstance(p, list):
        return [resource_like(rng, p[i % len(p)] if p else None, depth + 1) for i in range(rng.randint(0, 3))]
    if isinstance(p, str) and p not in ("*",) and rng.random() < 0.4:
        return p.strip("!>?*") or "x"
    return rng.choice(VALUES)


def test_compiled_check_agrees_with_the_matcher() -> None:
    rng = random.Random(20261129)
    passes = 0
    for _ in range(6000):
        p = pattern(rng)
        r = resource_like(rng, p)
        dynamic = match_pattern(copy.deepcopy(r), copy.deepcopy(p))
        if _passes(r, p):
            passes += 1
            assert dynamic.status == "pass", (p, r, dynamic)
        assert match_pattern(r, p, static=True) == dynamic, (p, r)
    assert passes > 1000  # the generator gives many passing resources, so the check is exercised


def test_plain_patterns_pass_by_the_compiled_check() -> None:
    p = {"spec": {"=(initContainers)": [{"resources": {"requests": {"cpu": "?*"}}}],
                  "containers": [{"=(securityContext)": {"=(privileged)": "false"}}]}}
    ok = {"spec": {"containers": [{"securityContext": {"privileged": False}}, {"name": "b"}]}}
    assert _passes(ok, p)
    bad = {"spec": {"containers": [{"securityContext": {"privileged": True}}]}}
    assert not _passes(bad, p)
    assert match_pattern(bad, p, static=True).path == "/spec/containers/0/securityContext/privileged/"
    no_cpu = {"spec": {"initContainers": [{"resources": {"requests": {}}}], "containers": []}}
    assert not _passes(no_cpu, p)
    assert match_pattern(no_cpu, p, static=True).status == "fail"


def test_wildcard_label_patterns_are_left_to_the_matcher() -> None:
    p = {"metadata": {"labels": {"app*": "web"}}}
    assert not _passes({"metadata": {"labels": {"app.kubernetes.io": "web"}}}, p)
    assert match_pattern({"metadata": {"labels": {"app.kubernetes.io": "web"}}}, p, static=True).status == "pass"
    plain = {"metadata": {"labels": {"app": "web"}}}
    assert _passes({"metadata": {"labels": {"app": "web", "x": "y"}}}, plain)
