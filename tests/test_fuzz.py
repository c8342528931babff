"""Fuzzing the request decoder and the whole pipeline with hostile AdmissionReviews.

Random JSON, wrongly typed fields, huge strings, deep nesting, lone surrogates and invalid UTF-8 go to
`review.decode` and, through httpx's ASGI transport, to the app with the built-in policy library. Whatever
comes in: never a 5xx, never an exception out of the decoder other than ReviewError, always a JSON answer,
and a review the built-in policies deny stays denied when a field no policy reads (an annotation value, the
uid) is changed. Bounded for CI by `max_examples` and `deadline`.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from admission.policyset import builtin_policies, load
from admission.review import Request, ReviewError, decode
from admission.server import Settings, create_app
from admission.state import ClusterState
from tests.conftest import admission_review, pod

FUZZ = settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow,
                                                                       HealthCheck.function_scoped_fixture])

# Text with everything JSON can carry: lone surrogates (json.dumps writes them as \\udXXX escapes), controls.
text = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, categories=None), max_size=40) | \
    st.text(st.characters(categories=["Cs", "Cc"]), min_size=1, max_size=4)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
                           max_leaves=20)


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # ensure_ascii: a lone surrogate becomes an escape, as an attacker would send


def _set(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    target = out
    for key in path[:-1]:
        nxt = target.get(key)
        if not isinstance(nxt, dict):
            nxt = target[key] = {}
        target = nxt
    target[path[-1]] = value
    return out


# Every field of an AdmissionReview the decoder or the policies read.
FIELDS = [
    ("apiVersion",), ("kind",), ("request",), ("request", "uid"), ("request", "kind"), ("request", "kind", "kind"),
    ("request", "kind", "group"), ("request", "kind", "version"), ("request", "resource"),
    ("request", "resource", "resource"), ("request", "subResource"), ("request", "name"), ("request", "namespace"),
    ("request", "operation"), ("request", "userInfo"), ("request", "userInfo", "username"),
    ("request", "userInfo", "groups"), ("request", "object"), ("request", "oldObject"), ("request", "dryRun"),
    ("request", "options"), ("request", "object", "metadata"), ("request", "object", "metadata", "name"),
    ("request", "object", "metadata", "labels"), ("request", "object", "metadata", "annotations"),
    ("request", "object", "spec"), ("request", "object", "spec", "containers"),
    ("request", "object", "spec", "securityContext"), ("request", "object", "kind"),
    ("request", "object", "apiVersion"),
]

huge = st.integers(10_000, 300_000).map(lambda n: "x" * n)
deep = st.none() | st.integers(90, 3000)  # levels of nesting spliced into the review
field_values = json_values | huge | st.sampled_from([[], {}, 0, -1, 1e308, True, "", None])


def _with_deep(body: bytes, levels: int) -> bytes:
    """The review with a field nested `levels` deep (too deep for json.dumps: spliced into the bytes)."""
    return body.replace(b'"spec": {', b'"spec": {"deep": ' + b"[" * levels + b"]" * levels + b", ", 1)


@st.composite
def mutated_reviews(draw: st.DrawFn) -> bytes:
    doc = admission_review(pod(image=draw(st.sampled_from(["nginx:latest", "registry.example.com/app:1"]))))
    for _ in range(draw(st.integers(1, 3))):
        doc = _set(doc, draw(st.sampled_from(FIELDS)), draw(field_values))
    body = _dumps(doc)
    levels = draw(deep)
    if levels is not None:
        body = _with_deep(body, levels)
    if draw(st.booleans()):  # flip a byte: broken JSON, invalid UTF-8
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1:]
    return body


# --- the decoder --------------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=300) | json_values.map(_dumps))
def test_decode_random_input_is_a_request_or_a_review_error(body: bytes) -> None:
    try:
        assert isinstance(decode(body), Request)
    except ReviewError as exc:
        assert exc.status_code in (200, 400, 413) and exc.message


@FUZZ
@given(mutated_reviews())
def test_decode_mutated_reviews_is_a_request_or_a_review_error(body: bytes) -> None:
    try:
        req = decode(body)
    except ReviewError as exc:
        assert exc.message and len(exc.message) < 2000
        return
    assert isinstance(req.uid, str) and 0 < len(req.uid) <= 128
    assert all(isinstance(v, str) for v in (req.name, req.namespace, req.sub_resource, req.kind.kind))


# --- the pipeline: the app with the built-in library --------------------------------------------------------


class Client:
    """The app in-process, on one event loop (its evaluation thread answers through that loop)."""

    def __init__(self) -> None:
        app = create_app(Settings(timeout_seconds=5), engine=load([builtin_policies()]), state=ClusterState())
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://test")

    def post(self, path: str, body: bytes) -> httpx.Response:
        return self.loop.run_until_complete(
            self.http.post(path, content=body, headers={"content-type": "application/json"}))

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    c = Client()
    yield c
    c.close()


def _post(client: Client, endpoint: str, body: bytes) -> tuple[int, dict[str, Any]]:
    r = client.post(f"/{endpoint}", body)
    assert r.status_code < 500, r.text
    out = r.json()
    assert isinstance(out, dict)
    if r.status_code != 200:
        assert out["code"] == r.status_code and isinstance(out["error"], str)
    return r.status_code, out


@FUZZ
@given(body=mutated_reviews(), endpoint=st.sampled_from(["validate", "mutate"]))
def test_the_app_never_answers_5xx(client: Client, body: bytes, endpoint: str) -> None:
    status, out = _post(client, endpoint, body)
    if status == 200:
        assert out["kind"] == "AdmissionReview" and isinstance(out["response"]["allowed"], bool)


@FUZZ
@given(body=st.binary(max_size=500) | json_values.map(_dumps))
def test_the_app_answers_random_bodies_with_4xx(client: Client, body: bytes) -> None:
    status, _ = _post(client, "validate", body)
    assert status in (400, 413)  # nothing random is an AdmissionReview


DENIED = admission_review(pod(image="nginx:latest"), uid="denied-1")


def test_the_baseline_review_is_denied(client: Client) -> None:
    status, out = _post(client, "validate", _dumps(DENIED))
    assert status == 200 and out["response"]["allowed"] is False


@FUZZ
@given(annotation=text | huge, uid=text | huge | st.just("u" * 128), where=st.sampled_from(["annotation", "uid", "both"]))
def test_a_denied_review_stays_denied_whatever_fields_no_policy_reads_hold(
        client: Client, annotation: str, uid: str, where: str) -> None:
    doc = copy.deepcopy(DENIED)
    if where in ("annotation", "both"):
        doc["request"]["object"]["metadata"]["annotations"] = {"note": annotation}
    if where in ("uid", "both"):
        doc["request"]["uid"] = uid
    status, out = _post(client, "validate", _dumps(doc))
    if status == 200:
        assert out["response"]["allowed"] is False
        assert out["response"]["uid"] == doc["request"]["uid"]
    else:
        assert status == 400  # an invalid uid or a lone surrogate: refused, never allowed
