import pytest

from admission.manifests import ManifestError, load_text

STREAM = """\
apiVersion: v1
kind: Pod
metadata: {name: a}
---
# comment
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: b}
- apiVersion: v1
  kind: Pod
  metadata: {name: c}
---
---
apiVersion: v1
kind: Service
metadata: {name: d}
"""


def test_documents_carry_their_line_and_lists_are_flattened():
    docs = load_text(STREAM, "f.yaml")
    assert [(d.obj["metadata"]["name"], d.line) for d in docs] == [("a", 1), ("b", 9), ("c", 12), ("d", 17)]
    assert all(d.file == "f.yaml" for d in docs)


def test_invalid_yaml_names_file_and_line():
    with pytest.raises(ManifestError) as info:
        load_text("a: 1\nb: [unclosed\nc: 2\n", "bad.yaml")
    assert info.value.file == "bad.yaml"
    assert info.value.line >= 2
    assert str(info.value).startswith("bad.yaml:")


def test_timestamps_stay_strings_as_in_kubernetes():
    docs = load_text("metadata: {creationTimestamp: 2024-01-02T03:04:05Z, day: 2024-01-02}\n", "t.yaml")
    meta = docs[0].obj["metadata"]
    assert meta == {"creationTimestamp": "2024-01-02T03:04:05Z", "day": "2024-01-02"}


# -- Locator: where a field is in the source ----------------------------------------------------------

import yaml  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from admission.manifests import Locator  # noqa: E402

_keys = st.text(alphabet="abcdefghij", min_size=1, max_size=6)
_values = st.recursive(
    st.one_of(st.integers(), st.text(alphabet="xyz ", max_size=5), st.booleans()),
    lambda inner: st.one_of(st.lists(inner, min_size=1, max_size=3),
                            st.dictionaries(_keys, inner, min_size=1, max_size=3)),
    max_leaves=12,
)


def _pointers(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{prefix}/{k}", k
            yield from _pointers(v, f"{prefix}/{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield f"{prefix}/{i}", None
            yield from _pointers(v, f"{prefix}/{i}")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.dictionaries(_keys, _values, min_size=1, max_size=4), min_size=1, max_size=3),
       st.sampled_from([True, False]))
def test_every_field_is_located_at_its_key(docs, flow):
    text = yaml.safe_dump_all(docs, default_flow_style=flow, explicit_start=True)
    loaded = load_text(text, "f.yaml")
    locator = Locator({"f.yaml": text})
    lines = text.splitlines()
    for doc in loaded:
        for pointer, key in _pointers(doc.obj):
            where = locator.locate("f.yaml", doc.line, pointer)
            assert where is not None
            line, column = where
            if key is not None:  # a mapping key: the text there is the key (quoted or not)
                assert lines[line - 1][column - 1:].lstrip("'\"").startswith(key)
        missing = locator.locate("f.yaml", doc.line, "/no-such-field")  # the document itself
        assert missing is not None and missing[0] == doc.line
