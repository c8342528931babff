import base64
import json

import pytest

from admission.review import (
    MAX_WARNING_CHARS,
    MAX_WARNINGS,
    Request,
    ReviewError,
    decode,
    encode,
    limit_warnings,
)
from tests.conftest import pod, review_bytes


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
