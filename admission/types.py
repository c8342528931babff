"""Wire formats: the AdmissionReview as the API server sends and expects it, and JSONPatch."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

Object = dict[str, Any]


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]
    extra: dict[str, list[str]]


class AdmissionRequestWire(TypedDict, total=False):
    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    subResource: str
    requestKind: GroupVersionKind
    requestResource: GroupVersionResource
    requestSubResource: str
    name: str
    namespace: str
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    userInfo: UserInfo
    object: Object | None
    oldObject: Object | None
    dryRun: bool
    options: Object | None


class StatusWire(TypedDict, total=False):
    code: int
    message: str
    reason: str


class AdmissionResponseWire(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[StatusWire]
    warnings: NotRequired[list[str]]
    patchType: NotRequired[Literal["JSONPatch"]]
    patch: NotRequired[str]
    auditAnnotations: NotRequired[dict[str, str]]


class AdmissionReviewWire(TypedDict, total=False):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    request: AdmissionRequestWire
    response: AdmissionResponseWire


class PatchOperation(TypedDict):
    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: str
    value: NotRequired[Any]
    from_: NotRequired[str]
