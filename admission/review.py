"""Decode an AdmissionReview into a typed Request, and encode the response.

Decoding errors are `ReviewError`s carrying the HTTP status the server answers with (400 or 413);
they never describe a policy outcome.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import orjson

from admission.types import AdmissionResponseWire, AdmissionReviewWire, Object, PatchOperation

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")


class ReviewError(Exception):
    """The request body is not a usable AdmissionReview."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @classmethod
    def of(cls, obj: Object | None) -> Kind:
        """The kind of a manifest, from its apiVersion and kind fields."""
        obj = obj or {}
        api_version = str(obj.get("apiVersion") or "")
        group, _, version = api_version.rpartition("/")
        return cls(group, version, str(obj.get("kind") or ""))


@dataclass(frozen=True)
class Request:
    """One admission request: what the policies see, whatever wire version it came in."""

    uid: str
    kind: Kind
    operation: str
    object: Object | None
    old_object: Object | None = None
    name: str = ""
    namespace: str = ""
    user_info: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, str] = field(default_factory=dict)
    sub_resource: str = ""
    dry_run: bool = False
    options: Object | None = None
    api_version: str = "admission.k8s.io/v1"

    @property
    def resource_object(self) -> Object:
        """The object the request is about: the new one, or for DELETE the old one."""
        return self.object if self.object is not None else (self.old_object or {})

    def to_wire(self) -> dict[str, Any]:
        """The request as AdmissionReview.request (the shape policies' `request.*` variables see)."""
        wire: dict[str, Any] = {
            "uid": self.uid,
            "kind": {"group": self.kind.group, "version": self.kind.version, "kind": self.kind.kind},
            "resource": dict(self.resource),
            "name": self.name,
            "namespace": self.namespace,
            "operation": self.operation,
            "userInfo": dict(self.user_info),
            "object": self.object,
            "oldObject": self.old_object,
            "dryRun": self.dry_run,
            "options": self.options,
        }
        if self.sub_resource:
            wire["subResource"] = self.sub_resource
        return wire

    @classmethod
    def for_object(
        cls,
        obj: Object | None,
        *,
        operation: str = "CREATE",
        old_object: Object | None = None,
        user_info: dict[str, Any] | None = None,
        namespace: str | None = None,
        uid: str = "offline",
        kind: Kind | None = None,
        name: str | None = None,
        sub_resource: str = "",
        resource: dict[str, str] | None = None,
        dry_run: bool = False,
        options: Object | None = None,
    ) -> Request:
        """The request an offline surface (`lint`, `test`, `audit`) evaluates for a manifest: the one place
        such requests are built. For DELETE the object is the old one (`old_object`, else `obj`); kind,
        name, namespace and resource default to what the object says."""
        if operation == "DELETE":
            new, old = None, (old_object if old_object is not None else obj)
        else:
            new, old = obj, old_object
        subject = new if new is not None else (old or {})
        meta = subject.get("metadata") or {}
        kind = kind if kind is not None else Kind.of(subject)
        return cls(
            uid=uid,
            kind=kind,
            operation=operation,
            object=new,
            old_object=old,
            name=str(meta.get("name") or "") if name is None else name,
            namespace=str(meta.get("namespace") or "") if namespace is None else namespace,
            user_info=user_info or {},
            resource=dict(resource) if resource is not None
            else {"group": kind.group, "version": kind.version, "resource": plural(kind.kind)},
            sub_resource=sub_resource,
            dry_run=dry_run,
            options=options,
        )


def plural(kind: str) -> str:
    """The resource name the API server uses for a kind (good enough for built-in kinds)."""
    lower = kind.lower()
    if lower.endswith("y") and not lower.endswith(("ay", "ey", "oy", "uy")):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "ch", "sh")):
        return lower + "es"
    return lower + "s" if lower else ""


# Bounds on what a request body may hold (README, "Behaviour under failure"). The API server never nests a
# review this deeply (a Pod is about 10 levels) nor sends a uid that is not a short UUID.
MAX_DEPTH = 100  # levels of nested arrays/objects: past it, 400
MAX_VALUES = 100_000  # JSON values (objects, arrays, scalars; keys not counted): past it, answered at once
MAX_UID_CHARS = 128  # the API server's uids are 36-character UUIDs


class ReviewTooLarge(ReviewError):
    """A well-formed AdmissionReview whose object holds more than MAX_VALUES values: the server answers it
    at once, without evaluating, following the endpoint's failure policy (deny on /validate, allow unpatched
    with a warning on /mutate). `request` carries the uid to echo."""

    def __init__(self, message: str, request: Request) -> None:
        super().__init__(message, 200)
        self.request = request


def _parse(body: bytes) -> Any:
    """The JSON document, or a ReviewError (400) saying why not: bad JSON, invalid UTF-8 or lone surrogates,
    nesting past MAX_DEPTH."""
    try:
        return orjson.loads(body)  # several times faster than json.loads on a 5 KB review
    except ValueError as exc:
        reason = str(exc)
    # orjson refuses everything that is not strict JSON in valid Unicode; nothing it refuses is accepted. The
    # reason is worded for the client (a lone surrogate, in an escape or as bytes, is invalid Unicode).
    if "surrogate" in reason or "UTF-8" in reason:
        raise ReviewError(f"request body is not valid Unicode: {reason}")
    # orjson's own wording for its recursion limit differs between releases: measure the body instead
    if "depth" in reason or "recursion" in reason or (len(body) > 2 * MAX_DEPTH and _depth_over(body, MAX_DEPTH)):
        raise ReviewError(f"request body is nested more than {MAX_DEPTH} levels deep")
    raise ReviewError(f"request body is not JSON: {reason}")


_BRACKETS = bytes.maketrans(b"[]{}", b"()()")
_NOT_STRUCTURE = bytes(c for c in range(256) if c not in b'[]{}"')


def _depth_over(body: bytes, limit: int) -> bool:
    """Whether a valid JSON body nests arrays/objects more than `limit` levels, from its bytes at C speed:
    the brackets outside strings lose one level of empty pairs per round, as many rounds as levels."""
    if b"\\" in body:  # escapes dropped as JSON reads them, left to right: then no quote is inside a string
        body = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    shape = body.translate(_BRACKETS, _NOT_STRUCTURE)  # brackets and quotes only
    # Dropping two adjacent quotes leaves every bracket inside or outside a string as it was: this takes out
    # every string without brackets (most of them), and what quotes remain delimit those with brackets.
    shape = shape.replace(b'""', b"")
    if b'"' in shape:
        shape = b"".join(shape.split(b'"')[::2])
    for _ in range(limit):
        if not shape:
            return False
        shape = shape.replace(b"()", b"")
    return bool(shape)


def _count(doc: Any) -> int:
    """The number of JSON values in the document (keys not counted)."""
    count = 1
    stack = [doc]
    while stack:
        value = stack.pop()
        children = value.values() if type(value) is dict else value
        count += len(children)
        stack += [c for c in children if type(c) is dict or type(c) is list]
    return count


def _measure(doc: Any, body: bytes) -> str:
    """Why the document is over a bound ("" when it is not): raises ReviewError past MAX_DEPTH levels, returns
    a message past MAX_VALUES values. Each check runs only when the body could exceed its bound (d levels
    take 2d bytes; n values take 2n-1 bytes at least). About 10 µs for a 6 KB Pod review, half of parsing it."""
    if len(body) > 2 * MAX_DEPTH and _depth_over(body, MAX_DEPTH):
        raise ReviewError(f"request body is nested more than {MAX_DEPTH} levels deep")
    if len(body) >= 2 * MAX_VALUES - 1:
        count = _count(doc)
        if count > MAX_VALUES:
            return f"request holds {count} JSON values, over the limit of {MAX_VALUES}"
    return ""


def _string(req: dict[str, Any], key: str, label: str | None = None) -> str:
    value = req.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReviewError(f"request.{label or key} must be a string, got {type(value).__name__}")
    return value


def _uid(req: dict[str, Any]) -> str:
    uid = req.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid is missing or not a string")
    if len(uid) > MAX_UID_CHARS:
        raise ReviewError(f"request.uid is {len(uid)} characters, over the limit of {MAX_UID_CHARS}")
    if not uid.isprintable() or not uid.isascii():
        raise ReviewError("request.uid must be printable ASCII")
    return uid


def decode(body: bytes, *, max_bytes: int | None = None) -> Request:
    """Parse and check an AdmissionReview body. Raises ReviewError with a message saying what is wrong, or
    ReviewTooLarge (carrying the request) when it holds more than MAX_VALUES values."""
    if max_bytes is not None and len(body) > max_bytes:
        raise ReviewError(f"request body is {len(body)} bytes, over the limit of {max_bytes}", 413)
    doc = _parse(body)
    if not isinstance(doc, dict):
        raise ReviewError("request body must be a JSON object (an AdmissionReview)")
    too_large = _measure(doc, body)
    if doc.get("kind") != "AdmissionReview":
        raise ReviewError(f"kind must be AdmissionReview, got {_short(doc.get('kind'))}")
    api_version = doc.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise ReviewError(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {_short(api_version)}")
    req = doc.get("request")
    if not isinstance(req, dict):
        raise ReviewError("AdmissionReview has no request object")
    uid = _uid(req)
    kind = req.get("kind")
    if not isinstance(kind, dict) or not isinstance(kind.get("kind"), str):
        raise ReviewError("request.kind must be an object with group, version and kind")
    group, version = _string(kind, "group", "kind.group"), _string(kind, "version", "kind.version")
    operation = req.get("operation")
    if operation not in OPERATIONS:
        raise ReviewError(f"request.operation must be one of {', '.join(OPERATIONS)}, got {_short(operation)}")
    obj, old = req.get("object"), req.get("oldObject")
    for label, value in (("object", obj), ("oldObject", old)):
        if value is not None and not isinstance(value, dict):
            raise ReviewError(f"request.{label} must be an object or null")
    user_info = req.get("userInfo") or {}
    if not isinstance(user_info, dict):
        raise ReviewError("request.userInfo must be an object")
    resource = req.get("resource") or {}
    if not isinstance(resource, dict) or not all(isinstance(v, str) for v in resource.values()):
        raise ReviewError("request.resource must be an object of strings")
    options = req.get("options")
    if options is not None and not isinstance(options, dict):
        raise ReviewError("request.options must be an object or null")
    dry_run = req.get("dryRun")
    if dry_run is not None and not isinstance(dry_run, bool):
        raise ReviewError("request.dryRun must be a boolean")
    request = Request(
        uid=uid,
        kind=Kind(group, version, kind["kind"]),
        operation=operation,
        object=obj,
        old_object=old,
        name=_string(req, "name"),
        namespace=_string(req, "namespace"),
        user_info=user_info,
        resource=resource,
        sub_resource=_string(req, "subResource"),
        dry_run=bool(dry_run),
        options=options,
        api_version=api_version,
    )
    if too_large:
        raise ReviewTooLarge(too_large, request)
    return request


def _short(value: Any, limit: int = 64) -> str:
    """A value quoted in an error message, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_REASONS = {401: "Unauthorized", 403: "Forbidden", 413: "RequestEntityTooLarge", 422: "Invalid"}


def encode(
    request: Request,
    *,
    allowed: bool,
    message: str = "",
    code: int = 403,
    warnings: list[str] | None = None,
    patch: list[PatchOperation] | None = None,
) -> AdmissionReviewWire:
    """The AdmissionReview to answer with, in the apiVersion the request came in."""
    response: AdmissionResponseWire = {"uid": request.uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": code, "message": message, "reason": _REASONS.get(code, "")}
    elif message:
        response["status"] = {"code": 200, "message": message}
    if warnings:
        response["warnings"] = limit_warnings(warnings)
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(dumps(patch)).decode()
    return {"apiVersion": request.api_version, "kind": "AdmissionReview", "response": response}


def dumps(doc: Any) -> bytes:
    """Compact JSON bytes (orjson; keys that are not strings, as YAML can produce, become strings)."""
    return orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)


# The API server keeps at most this many warnings and truncates each; staying under both keeps ours intact.
MAX_WARNINGS = 50
MAX_WARNING_CHARS = 256


def limit_warnings(warnings: list[str]) -> list[str]:
    """Deduplicate, truncate each warning, and cap their number the way the API server would."""
    out: list[str] = []
    seen: set[str] = set()
    for w in warnings:
        w = " ".join(w.split())  # warnings must be single-line printable text
        if len(w) > MAX_WARNING_CHARS:
            w = w[: MAX_WARNING_CHARS - 3] + "..."
        if w and w not in seen:
            seen.add(w)
            out.append(w)
    if len(out) > MAX_WARNINGS:
        dropped = len(out) - (MAX_WARNINGS - 1)
        out = out[: MAX_WARNINGS - 1] + [f"{dropped} more warnings not shown"]
    return out
