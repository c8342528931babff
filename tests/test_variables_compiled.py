"""JMESPath expressions compiled to closures (variables.compiled) answer as the jmespath library's own
search does, apart from the few places where Kyverno's go-jmespath differs, which are pinned here: a
missing key is an error (null where ||, pipes, function arguments, projections and filters stop it),
ordering non-numbers is null, and an error under a projection, flatten or filter is null."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest
from jmespath import Options

from admission.engines.yaml.functions import FUNCTIONS
from admission.engines.yaml.variables import _NotFound, compile_expr, compiled, search

DATA: dict[str, Any] = {
    "a": {"b": {"c": 1, "n": None}, "list": [1, 2, 3, 0], "empty": [], "s": "", "z": 0, "t": True, "f": False},
    "items": [
        {"name": "x", "tag": "latest", "n": 2, "labels": {"app": "web"}, "ports": [{"p": 80}, {"p": 443}]},
        {"name": "y", "tag": None, "n": 5, "labels": {}, "ports": []},
        {"name": "z", "n": "5", "digest": "sha256:1"},
        None,
        [1, [2, 3]],
    ],
    "map": {"one": {"v": 1}, "two": {"v": 2}, "three": {"w": 3}},
    "nested": [[1, 2], [3, [4, 5]], 6],
    "str": "hello",
}

EXPRESSIONS = [
    "a.b.c", "a.b.n", "a.b.missing", "a.missing.c", "missing", "a.b.c.d", "str.x",
    "a.list[0]", "a.list[-1]", "a.list[10]", "str[0]", "a.list[1:3]", "a.list[::-1]", "items[0:2].name",
    "items[*].name", "items[].name", "items[*].missing", "items[].labels.app", "items[*].ports[*].p",
    "map.*.v", "map.*", "map.*.missing", "a.*", "str.*",
    "nested[]", "nested[][]", "a.list[]", "str[]", "missing[]",
    "items[?tag == 'latest'].name", "items[?!tag].name", "items[?(tag == 'latest' || !tag) && !digest].name",
    "items[?n > `3`].name", "items[?n >= `2`].n", "items[?missing == `null`].name", "missing[?x].y",
    "a.b.c == `1`", "a.b.c != `1`", "a.b.c < `2`", "a.b.c > 'x'", "missing == `null`",
    "a.missing || 'default'", "a.s || a.z || 'x'", "a.b.c && a.missing", "a.missing && a.b.c", "a.f && a.b.c",
    "!a.z", "!a.missing", "!a.list", "!a.empty", "!`0`", "!`0.0`",
    "a.b | c", "a.missing | c", "items | [0] | name", "items[*] | [0]",
    "{x: a.b.c, y: a.missing, z: missing.deep}", "[a.b.c, a.missing, `3`]", "missing.{x: a}", "missing.[a]",
    "length(items)", "length(a.missing)", "length(missing)", "keys(map)", "sort(a.list)", "max(a.list)",
    "sort_by(items[0:2], &n)[].name", "max_by(items[0:2], &n).name", "map(&n, items[0:3])",
    "length([items[*].name, a.list][])", "join(', ', items[*].name)", "to_string(a.b)", "contains(a.list, `2`)",
    "starts_with(str, 'he')", "`{\"k\": [1, 2]}`.k[1]", "'literal'", "@", "@.a.b.c", "a.b | @",
    "items[0].labels.app", "items[0].labels.tier", "items[?labels.app == 'web'] | [0].name",
    "length(nested[?@ == `6`])", "not_null(a.missing, a.b.n, `5`)", "abs(a.b.c)", "abs(str)", "length(a.b.c)",
]


_LIBRARY = Options(custom_functions=FUNCTIONS)

# (expression, data key) -> what Kyverno answers where the library raises instead.
KYVERNO_DIFFERS: dict[tuple[str, str], Any] = {
    ("items[?n > `3`].name", "DATA"): ["y"],  # "5" > 3 is null in go-jmespath, a TypeError in Python's
    ("items[?n >= `2`].n", "DATA"): [2, 5],
    ("a.b.c > 'x'", "DATA"): None,
    **{("sort_by(items[0:2], &n)[].name", key): None  # the error stops at the flatten
       for key in ("None", "[]", "{}", "'x'", "{'a': []}", "items")},
}

DATAS: dict[str, Any] = {"DATA": DATA, "None": None, "[]": [], "{}": {}, "'x'": "x", "{'a': []}": {"a": []},
                         "items": DATA["items"]}


def _outcome(fn: Any) -> Any:
    try:
        return ("value", fn())
    except _NotFound as exc:
        return ("not found", exc.key)
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_compiled_expressions_agree_with_the_library(expr: str) -> None:
    for key, data in DATAS.items():
        ours = _outcome(lambda: compiled(expr)(data))  # noqa: B023
        library = _outcome(lambda: jmespath.search(expr, data, _LIBRARY))  # noqa: B023
        if (expr, key) in KYVERNO_DIFFERS:
            assert library[0] == "error"
            assert ours == ("value", KYVERNO_DIFFERS[(expr, key)])
        elif ours[0] == "not found":
            assert library == ("value", None), (expr, key)
        elif library[0] == "error":
            assert ours[0] == "error", (expr, key)
        else:
            assert ours == library, (expr, key)


def test_a_missing_key_is_an_error_only_where_nothing_stops_it() -> None:
    assert _outcome(lambda: compiled("a.b.missing")(DATA)) == ("not found", "missing")
    assert _outcome(lambda: compiled("a.missing.c")(DATA)) == ("not found", "missing")
    assert compiled("a.missing || 'default'")(DATA) == "default"
    assert compiled("items[*].missing")(DATA) == []
    assert _outcome(lambda: compiled("length(a.missing)")(DATA))[0] == "error"
    assert compiled("a.b.n")(DATA) is None  # present with value null: null, no error
    assert search("a.b.missing", DATA) is None


def test_expression_references_read_a_missing_key_as_null() -> None:
    assert compiled("map(&missing, items[0:2])")(DATA) == [None, None]
    assert compiled("sort_by(items[0:2], &n)[].name")(DATA) == ["x", "y"]
    assert compiled("max_by(items[0:2], &n).name")(DATA) == "y"
    assert compiled("min_by(items[0:2], &n).name")(DATA) == "x"
    assert _outcome(lambda: compiled("max_by(items[0:2], &missing)")(DATA))[:2] == ("error", "JMESPathTypeError")
    assert _outcome(lambda: compiled("length(&n)")(DATA))[0] == "error"


def test_the_expressions_cover_every_node_type() -> None:
    seen: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict) and "type" in node:
            seen.add(node["type"])
            for child in node.get("children", []):
                walk(child)

    for expr in EXPRESSIONS:
        walk(compile_expr(expr).parsed)
    assert seen >= {
        "field", "subexpression", "index_expression", "index", "slice", "projection", "value_projection",
        "filter_projection", "flatten", "comparator", "or_expression", "and_expression", "not_expression",
        "pipe", "multi_select_dict", "multi_select_list", "key_val_pair", "literal", "current", "identity",
        "function_expression", "expref",
    }
