"""Decode an AdmissionReview into a typed Request, and encode the response.

Decoding errors are `ReviewError`s carrying the HTTP status the server answers with (400 or 413);
they never describe a policy outcome.
"""

from __future__ import annotations

import base64
import json
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


def decode(body: bytes, *, max_bytes: int | None = None) -> Request:
    """Parse and check an AdmissionReview body. Raises ReviewError with a message saying what is wrong."""
    if max_bytes is not None and len(body) > max_bytes:
        raise ReviewError(f"request body is {len(body)} bytes, over the limit of {max_bytes}", 413)
    try:
        doc = orjson.loads(body)  # several times faster than json.loads on a 5 KB review
    except ValueError:
        # Bad JSON, or JSON orjson refuses (nesting past 1,024 levels, NaN): the standard library decides, as
        # before, and words the error (a RecursionError for very deep nesting propagates to the caller).
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ReviewError(f"request body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ReviewError("request body must be a JSON object (an AdmissionReview)")
    if doc.get("kind") != "AdmissionReview":
        raise ReviewError(f"kind must be AdmissionReview, got {doc.get('kind')!r}")
    api_version = doc.get("apiVersion")
    if api_version not in API_VERSIONS:
        raise ReviewError(f"apiVersion must be one of {', '.join(API_VERSIONS)}, got {api_version!r}")
    req = doc.get("request")
    if not isinstance(req, dict):
        raise ReviewError("AdmissionReview has no request object")
    uid = req.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid is missing or not a string")
    kind = req.get("kind")
    if not isinstance(kind, dict) or not isinstance(kind.get("kind"), str):
        raise ReviewError("request.kind must be an object with group, version and kind")
    operation = req.get("operation")
    if operation not in OPERATIONS:
        raise ReviewError(f"request.operation must be one of {', '.join(OPERATIONS)}, got {operation!r}")
    obj, old = req.get("object"), req.get("oldObject")
    for label, value in (("object", obj), ("oldObject", old)):
        if value is not None and not isinstance(value, dict):
            raise ReviewError(f"request.{label} must be an object or null")
    user_info = req.get("userInfo") or {}
    if not isinstance(user_info, dict):
        raise ReviewError("request.userInfo must be an object")
    return Request(
        uid=uid,
        kind=Kind(str(kind.get("group") or ""), str(kind.get("version") or ""), kind["kind"]),
        operation=operation,
        object=obj,
        old_object=old,
        name=str(req.get("name") or ""),
        namespace=str(req.get("namespace") or ""),
        user_info=user_info,
        resource=req.get("resource") or {},
        sub_resource=str(req.get("subResource") or ""),
        dry_run=bool(req.get("dryRun")),
        options=req.get("options"),
        api_version=api_version,
    )


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
        response["status"] = {"code": code, "message": message, "reason": "Forbidden" if code == 403 else ""}
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
