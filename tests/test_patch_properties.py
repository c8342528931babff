"""Property tests of admission.patch: diff and apply on random JSON documents, and RFC 6902 semantics."""

import copy
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from admission.patch import PatchError, apply, diff, format_pointer, parse_pointer
from tests.conftest import REPO

KEYS = st.sampled_from(["a", "b", "c", "a/b", "~", "~1", "x~0y", "", "name", "/", "ü"]) | st.text(max_size=4)
SCALARS = (st.none() | st.booleans() | st.integers(-3, 3) | st.floats(-2, 2, allow_nan=False, width=16)
           | st.sampled_from([0, 1, 0.0, 1.0, -0.0, True, False]) | st.text(max_size=3))
DOCS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5),
                    max_leaves=30)


def strict(value):
    """The value as JSON text: tells true from 1 and 1 from 1.0, as the wire does."""
    return json.dumps(value, sort_keys=True)


@settings(max_examples=400, deadline=None)
@given(DOCS, DOCS)
def test_applying_the_diff_gives_the_target(a, b):
    before = copy.deepcopy(a)
    ops = diff(a, b)
    assert strict(apply(a, ops)) == strict(b)
    assert strict(a) == strict(before)  # neither diff nor apply changes its input


@settings(max_examples=200, deadline=None)
@given(DOCS)
def test_a_document_has_no_diff_with_itself_or_its_copy(a):
    assert diff(a, a) == []
    assert diff(a, copy.deepcopy(a)) == []


@settings(max_examples=200, deadline=None)
@given(DOCS, DOCS)
def test_the_diff_is_deterministic(a, b):
    assert diff(a, b) == diff(copy.deepcopy(a), copy.deepcopy(b))


@settings(max_examples=200, deadline=None)
@given(st.lists(DOCS, max_size=30), st.lists(DOCS, min_size=1, max_size=5))
def test_appending_gives_one_add_per_new_element_at_the_end(base, extra):
    ops = diff({"l": base}, {"l": base + extra})
    assert [op["op"] for op in ops] == ["add"] * len(extra)
    assert [op["path"] for op in ops] == [f"/l/{len(base) + i}" for i in range(len(extra))]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=40, unique=True), st.data())
def test_removing_elements_anywhere_gives_one_remove_each(items, data):
    docs = [{"name": f"c{i}", "env": [{"name": "A", "value": str(i)}]} for i in items]
    start = data.draw(st.integers(0, len(docs) - 1))
    count = data.draw(st.integers(1, len(docs) - start))
    kept = docs[:start] + docs[start + count:]
    ops = diff({"l": docs}, {"l": kept})
    assert [op["op"] for op in ops] == ["remove"] * count
    assert strict(apply({"l": docs}, ops)) == strict({"l": kept})


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=2, max_size=40), st.data())
def test_an_element_changed_in_place_is_diffed_inside_it(values, data):
    docs = [{"name": f"c{i}", "n": v} for i, v in enumerate(values)]
    at = data.draw(st.integers(0, len(docs) - 1))
    changed = copy.deepcopy(docs)
    changed[at]["n"] = 99
    assert diff({"l": docs}, {"l": changed}) == [{"op": "replace", "path": f"/l/{at}/n", "value": 99}]


@given(st.lists(KEYS, max_size=5))
def test_pointers_escape_and_unescape(tokens):
    assert parse_pointer(format_pointer(tokens)) == tokens


def test_json_types_are_told_apart():
    assert diff({"a": True}, {"a": 1}) == [{"op": "replace", "path": "/a", "value": 1}]
    assert diff({"a": 1}, {"a": 1.0}) == [{"op": "replace", "path": "/a", "value": 1.0}]
    assert diff({"a": 0}, {"a": False}) == [{"op": "replace", "path": "/a", "value": False}]
    assert diff([0.0], [-0.0]) == [{"op": "replace", "path": "/0", "value": -0.0}]
    assert diff({"a/b": {"~": 1}}, {"a/b": {"~": 2}}) == [{"op": "replace", "path": "/a~1b/~0", "value": 2}]


def test_the_diff_of_a_big_list_is_the_same_in_every_process():
    script = ("import json; from admission.patch import diff; "
              "a = [{'name': str(i), 'k': {str(j): j for j in range(5)}} for i in range(50)]; "
              "b = [dict(x, extra=True) for x in a[3:]] + [{'name': 'new', 'set': 1}]; "
              "print(json.dumps(diff({'l': a, 'm': {str(i): i for i in range(30)}}, {'l': b, 'm': {}})))")
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        outputs.add(subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                                   check=True).stdout)
    assert len(outputs) == 1


# -- apply: RFC 6902 ------------------------------------------------------------------------------------

DOC = {"foo": ["bar", "baz"], "obj": {"a": 1}, "n": 1}


@pytest.mark.parametrize(("op", "expected"), [
    ({"op": "add", "path": "/foo/1", "value": "q"}, {"foo": ["bar", "q", "baz"], "obj": {"a": 1}, "n": 1}),
    ({"op": "add", "path": "/foo/-", "value": "q"}, {"foo": ["bar", "baz", "q"], "obj": {"a": 1}, "n": 1}),
    ({"op": "add", "path": "/foo/2", "value": "q"}, {"foo": ["bar", "baz", "q"], "obj": {"a": 1}, "n": 1}),
    ({"op": "add", "path": "/obj/a", "value": 2}, {"foo": ["bar", "baz"], "obj": {"a": 2}, "n": 1}),
    ({"op": "add", "path": "", "value": [1]}, [1]),
    ({"op": "remove", "path": "/foo/0"}, {"foo": ["baz"], "obj": {"a": 1}, "n": 1}),
    ({"op": "replace", "path": "/obj", "value": None}, {"foo": ["bar", "baz"], "obj": None, "n": 1}),
    ({"op": "move", "from": "/obj/a", "path": "/b"}, {"foo": ["bar", "baz"], "obj": {}, "n": 1, "b": 1}),
    ({"op": "move", "from": "/foo/0", "path": "/foo/1"}, {"foo": ["baz", "bar"], "obj": {"a": 1}, "n": 1}),
    ({"op": "copy", "from": "/foo", "path": "/obj/f"}, {"foo": ["bar", "baz"], "obj": {"a": 1, "f": ["bar", "baz"]},
                                                         "n": 1}),
    ({"op": "test", "path": "/n", "value": 1.0}, DOC),
])
def test_operations(op, expected):
    assert apply(DOC, [op]) == expected
    assert DOC == {"foo": ["bar", "baz"], "obj": {"a": 1}, "n": 1}


@pytest.mark.parametrize(("op", "message"), [
    ({"op": "add", "path": "/foo/3", "value": 1}, "index 3 is out of range"),
    ({"op": "add", "path": "/foo/01", "value": 1}, "not a list index"),
    ({"op": "add", "path": "/missing/x", "value": 1}, "member 'missing' does not exist"),
    ({"op": "add", "path": "/n/x", "value": 1}, "the parent is a number"),
    ({"op": "add", "path": "/n/x/y", "value": 1}, "cannot look up 'x' in a number"),
    ({"op": "add", "path": "foo", "value": 1}, "must be empty or start with '/'"),
    ({"op": "add", "path": "/foo"}, "without a 'value'"),
    ({"op": "remove", "path": "/nope"}, "member 'nope' does not exist"),
    ({"op": "remove", "path": "/foo/-"}, "not a list index"),
    ({"op": "replace", "path": "/nope", "value": 1}, "does not exist"),
    ({"op": "move", "from": "/obj", "path": "/obj/a/b"}, "into one of its own children"),
    ({"op": "copy", "from": "/nope", "path": "/x"}, "does not exist"),
    ({"op": "test", "path": "/n", "value": True}, "not the expected one"),
    ({"op": "test", "path": "/foo", "value": ["baz", "bar"]}, "not the expected one"),
    ({"op": "frob", "path": "/n"}, "unknown JSON Patch operation"),
    ({"op": "add", "path": "/a~2", "value": 1}, "invalid escape"),
])
def test_operations_that_do_not_apply_say_why(op, message):
    with pytest.raises(PatchError, match=message):
        apply(DOC, [op])


def test_added_values_are_copies():
    value = {"k": [1]}
    out = apply({}, [{"op": "add", "path": "/v", "value": value}])
    out["v"]["k"].append(2)
    assert value == {"k": [1]}
