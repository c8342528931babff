import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from admission.review import (
    MAX_DEPTH,
    MAX_UID_CHARS,
    MAX_VALUES,
    MAX_WARNING_CHARS,
    MAX_WARNINGS,
    Request,
    ReviewError,
    ReviewTooLarge,
    _depth_over,
    decode,
    encode,
    limit_warnings,
)
from tests.conftest import admission_review, pod, review_bytes


def test_decode_v1_request():
    req = decode(review_bytes(pod("web", "team-a"), uid="abc"))
    assert req.uid == "abc"
    assert req.kind.kind == "Pod" and req.kind.group == "" and req.kind.version == "v1"
    assert (req.namespace, req.name, req.operation) == ("team-a", "web", "CREATE")
    assert req.object is not None and req.object["metadata"]["name"] == "web"
    assert req.user_info["username"] == "alice"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (json.dumps({"kind": "Pod"}).encode(), "kind must be AdmissionReview"),
        (json.dumps({"kind": "AdmissionReview", "apiVersion": "v1"}).encode(), "apiVersion must be one of"),
        (json.dumps({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1"}).encode(), "no request"),
        (json.dumps({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {}}).encode(),
         "request.uid"),
        (json.dumps({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
                     "request": {"uid": "1", "kind": {"kind": "Pod"}, "operation": "PATCH"}}).encode(),
         "request.operation"),
        (json.dumps({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
                     "request": {"uid": "1", "kind": {"kind": "Pod"}, "operation": "CREATE", "object": [1]}}).encode(),
         "request.object"),
    ],
)
def test_decode_rejects_bad_input_with_a_message(body, fragment):
    with pytest.raises(ReviewError, match=fragment) as info:
        decode(body)
    assert info.value.status_code == 400


def test_decode_oversized_body_is_413():
    with pytest.raises(ReviewError) as info:
        decode(b"x" * 100, max_bytes=10)
    assert info.value.status_code == 413
    assert "over the limit of 10" in info.value.message


def test_encode_answers_in_the_version_asked_and_echoes_uid():
    req = decode(review_bytes(pod(), api_version="admission.k8s.io/v1beta1", uid="u-1"))
    out = encode(req, allowed=False, message="[p/r] no")
    assert out["apiVersion"] == "admission.k8s.io/v1beta1"
    assert out["response"]["uid"] == "u-1"
    assert out["response"]["allowed"] is False
    assert out["response"]["status"]["code"] == 403
    assert out["response"]["status"]["message"] == "[p/r] no"


def test_encode_patch_is_base64_jsonpatch():
    req = decode(review_bytes(pod()))
    ops = [{"op": "add", "path": "/metadata/labels/x", "value": "1"}]
    out = encode(req, allowed=True, patch=ops)  # type: ignore[arg-type]
    assert out["response"]["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(out["response"]["patch"])) == ops


def test_encode_without_patch_has_no_patch_fields():
    out = encode(decode(review_bytes(pod())), allowed=True)
    assert "patch" not in out["response"] and "patchType" not in out["response"]


def test_warnings_are_deduplicated_truncated_and_capped():
    many = [f"warning {i}" for i in range(80)] + ["warning 1", "x" * 1000, "two\nlines"]
    out = limit_warnings(many)
    assert len(out) == MAX_WARNINGS
    assert out[-1].endswith("more warnings not shown")
    assert all(len(w) <= MAX_WARNING_CHARS for w in out)
    assert out.count("warning 1") == 1
    assert limit_warnings(["two\nlines"]) == ["two lines"]


def test_request_for_object_and_delete():
    obj = pod("a", "ns")
    create = Request.for_object(obj)
    assert create.operation == "CREATE" and create.namespace == "ns" and create.resource["resource"] == "pods"
    delete = Request.for_object(obj, operation="DELETE")
    assert delete.object is None and delete.old_object == obj
    assert delete.resource_object == obj


# --- hostile bodies: bounded nesting, invalid Unicode, value count, uid --------------------------------------


def _review_with(**fields):
    doc = admission_review(pod())
    doc["request"].update(fields)
    return doc


def _nested(levels: int):
    value: object = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_nesting_up_to_the_limit_decodes_and_past_it_is_400():
    # the review itself takes 5 levels (review, request, object, spec, the field's list)
    ok = admission_review(pod())
    ok["request"]["object"]["spec"]["deep"] = _nested(MAX_DEPTH - 4)
    assert decode(json.dumps(ok).encode()).object["spec"]["deep"] == _nested(MAX_DEPTH - 4)
    for levels in (MAX_DEPTH - 3, 1000, 5000):
        bad = admission_review(pod())
        bad["request"]["object"]["spec"]["deep"] = _nested(levels)
        body = json.dumps(bad).encode() if levels < 900 else (
            json.dumps(admission_review(pod())).encode().replace(b'"spec": {', b'"spec": {"deep": ' +
                                                                  b"[" * levels + b"]" * levels + b", ", 1))
        with pytest.raises(ReviewError, match=f"nested more than {MAX_DEPTH} levels") as info:
            decode(body)
        assert info.value.status_code == 400


@pytest.mark.parametrize("body", [
    b'{"kind": "AdmissionReview", "x": "\\ud800"}',  # a lone surrogate as an escape
    b'{"kind": "AdmissionReview", "x": "\\udc00\\ud800"}',
    b'{"kind": "AdmissionReview", "x": "\xed\xa0\x80"}',  # as (invalid) UTF-8 bytes
    b'{"kind": "AdmissionReview", "x": "\xff"}',
])
def test_invalid_unicode_is_400(body):
    with pytest.raises(ReviewError, match="not valid Unicode") as info:
        decode(body)
    assert info.value.status_code == 400


def test_a_lone_surrogate_in_the_object_is_400_not_decoded():
    body = review_bytes(pod()).replace(b'"name": "web"', b'"name": "web\\ud800"', 1)
    with pytest.raises(ReviewError, match="not valid Unicode"):
        decode(body)


def test_nan_and_infinity_are_not_json():
    for token in (b"NaN", b"Infinity"):
        with pytest.raises(ReviewError, match="not JSON"):
            decode(review_bytes(pod()).replace(b'"dryRun": false', b'"dryRun": ' + token))


def test_more_values_than_the_limit_is_too_large_and_keeps_the_request():
    doc = admission_review(pod(), uid="big-1")
    doc["request"]["object"]["data"] = list(range(MAX_VALUES))
    with pytest.raises(ReviewTooLarge, match=f"over the limit of {MAX_VALUES}") as info:
        decode(json.dumps(doc).encode())
    assert info.value.request.uid == "big-1" and info.value.request.kind.kind == "Pod"
    doc["request"]["object"]["data"] = list(range(MAX_VALUES - 100))
    assert decode(json.dumps(doc).encode()).uid == "big-1"  # under the limit: an ordinary request


def test_a_large_string_is_one_value():
    doc = admission_review(pod())
    doc["request"]["object"]["data"] = {"blob": "x" * (3 * MAX_VALUES)}
    assert decode(json.dumps(doc).encode()).object["data"]["blob"] == "x" * (3 * MAX_VALUES)


def test_a_huge_or_unprintable_uid_is_400():
    for uid, words in (("u" * (MAX_UID_CHARS + 1), "over the limit"), ("u" * 1_000_000, "over the limit"),
                       ("a\nb", "printable ASCII"), ("é", "printable ASCII"), (7, "not a string"), ("", "missing")):
        with pytest.raises(ReviewError, match=words) as info:
            decode(json.dumps(_review_with(uid=uid)).encode())
        assert info.value.status_code == 400
    assert decode(json.dumps(_review_with(uid="u" * MAX_UID_CHARS)).encode()).uid == "u" * MAX_UID_CHARS


@pytest.mark.parametrize(("fields", "words"), [
    ({"name": ["web"]}, "request.name must be a string"),
    ({"namespace": 3}, "request.namespace must be a string"),
    ({"subResource": {}}, "request.subResource must be a string"),
    ({"kind": {"group": 1, "version": "v1", "kind": "Pod"}}, "request.kind.group must be a string"),
    ({"resource": ["pods"]}, "request.resource must be an object of strings"),
    ({"resource": {"resource": 5}}, "request.resource must be an object of strings"),
    ({"options": "x"}, "request.options must be an object"),
    ({"dryRun": "yes"}, "request.dryRun must be a boolean"),
])
def test_wrongly_typed_fields_are_400(fields, words):
    with pytest.raises(ReviewError, match=words) as info:
        decode(json.dumps(_review_with(**fields)).encode())
    assert info.value.status_code == 400


def test_error_messages_quote_values_shortly():
    doc = admission_review(pod())
    doc["kind"] = "K" * 10_000
    with pytest.raises(ReviewError) as info:
        decode(json.dumps(doc).encode())
    assert len(info.value.message) < 200


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


_tricky_text = st.text(st.sampled_from('[]{}"\\\\/ab\u00e9\n'), max_size=8)
_values = st.recursive(st.none() | st.integers() | _tricky_text,
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_tricky_text, inner, max_size=3),
                       max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(value=_values, ascii_only=st.booleans())
def test_the_byte_level_depth_check_agrees_with_the_document(value, ascii_only):
    """Brackets, quotes and backslashes inside strings do not count as nesting."""
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    depth = _depth(value)
    for limit in {0, 1, 2, max(depth - 1, 0), depth, depth + 1}:
        assert _depth_over(body, limit) == (depth > limit), (body, limit, depth)
