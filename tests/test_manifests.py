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
