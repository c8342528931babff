"""go_json's one-call path for string maps (labels, annotations) writes what the per-entry path writes."""

from __future__ import annotations

import json
import random

from admission.engines.yaml.functions import go_json

CHARS = ["a", "Z", '"', "\\", "<", ">", "&", "\u2028", "\u00e9", "\n", "\t", "\x00", "\U0001F600", " ", "/", "\x7f"]


def per_entry(value: dict[str, str]) -> str:
    return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{json.dumps(v, ensure_ascii=False)}"
                          for k, v in sorted(value.items())) + "}"


def word(rng: random.Random, longest: int) -> str:
    return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, longest)))


def test_string_maps_encode_as_entry_by_entry() -> None:
    rng = random.Random(5)
    for _ in range(3000):
        labels = {word(rng, 5): word(rng, 6) for _ in range(rng.randint(0, 6))}
        assert go_json(labels) == per_entry(labels)
    assert go_json({"b": "2", "a": "1"}) == '{"a":"1","b":"2"}'


def test_other_maps_keep_the_general_encoding() -> None:
    assert go_json({"b": 2.0, "a": True, "c": None, "d": ["x", 1.5]}) == '{"a":true,"b":2,"c":null,"d":["x",1.5]}'
