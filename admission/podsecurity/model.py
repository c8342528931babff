"""Data types and small helpers shared by the Pod Security Standards checks.

A pod is read as plain data (`{"metadata": ..., "spec": ...}`), with the meaning Kubernetes' typed
decoding gives it: an absent or null field is "unset", booleans count only when they are real booleans,
and anything of the wrong shape is treated as unset rather than crashing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

FORBIDDEN = "forbidden"
REQUIRED = "required"


@dataclass(frozen=True)
class FieldError:
    """One offending field: its concrete path (with indexes), the bad values as strings, and whether the
    field holds a forbidden value or is missing a required one."""

    path: str
    values: tuple[str, ...] = ()
    kind: str = FORBIDDEN

    @property
    def pattern(self) -> str:
        """The path with list indexes replaced by `*`, the form Kyverno's `restrictedField` uses."""
        return _INDEX.sub("[*]", self.path)


@dataclass(frozen=True)
class Violation:
    """A failed Pod Security check.

    `check` is upstream's check id ("hostNamespaces", "runAsNonRoot", ...); `reason` and `detail` are
    upstream's forbidden reason and detail; `message` is "reason (detail)" as Pod Security admission
    prints it; `fields` lists the offending fields (used by `exclude`); `images` the images of the
    containers involved.
    """

    check: str
    reason: str
    detail: str
    fields: tuple[FieldError, ...] = ()
    images: tuple[str, ...] = ()
    message: str = field(default="")

    def __post_init__(self) -> None:
        if not self.message:
            text = f"{self.reason} ({self.detail})" if self.detail else self.reason
            object.__setattr__(self, "message", text)


@dataclass
class Result:
    """What one check returns when it fails (a passing check returns None)."""

    reason: str
    detail: str
    errors: list[FieldError]


CheckFn = Callable[[dict[str, Any], dict[str, Any]], "Result | None"]

_INDEX = re.compile(r"\[\d+\]")

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def get(obj: Any, *keys: str) -> Any:
    """Nested lookup that yields None for anything missing or of the wrong shape."""
    for key in keys:
        if obj is None or not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def text(value: Any) -> str:
    """A scalar as Go would print it in a message: booleans lower-case, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Container:
    """One container of the pod (made for every pod checked, so a plain class with slots)."""

    __slots__ = ("name", "image", "path", "data", "security")

    def __init__(self, name: str, image: str, path: str, data: dict[str, Any], security: Any = None) -> None:
        self.name = name
        self.image = image
        self.path = path  # e.g. "spec.containers[0]"
        self.data = data
        self.security = security  # data["securityContext"] as given (read once: every check asks for it)

    def __repr__(self) -> str:
        return f"Container(name={self.name!r}, image={self.image!r}, path={self.path!r})"

    def sc(self, *keys: str) -> Any:
        obj = self.security
        for key in keys:
            if obj is None or not isinstance(obj, dict):
                return None
            obj = obj.get(key)
        return obj


def _containers(spec: dict[str, Any]) -> tuple[Container, ...]:
    listed: list[Container] = []
    for kind in CONTAINER_LISTS:
        items = spec.get(kind)
        if not isinstance(items, list):
            continue
        for i, item in enumerate(items):
            data = item if isinstance(item, dict) else {}
            name, image = data.get("name"), data.get("image")
            listed.append(Container(name if type(name) is str else text(name),
                                    image if type(image) is str else text(image),
                                    f"spec.{kind}[{i}]", data, data.get("securityContext")))
    return tuple(listed)


# The containers of the spec being checked (see reading()): every check of a pod visits them.
_READING: ContextVar[tuple[dict[str, Any], tuple[Container, ...]] | None] = ContextVar("reading", default=None)


@contextmanager
def reading(spec: dict[str, Any]) -> Iterator[tuple[Container, ...]]:
    """While the checks of one pod run: its containers, listed once for all of them. The spec must not
    change meanwhile (the checks only read it)."""
    listed = _containers(spec)
    token = _READING.set((spec, listed))
    try:
        yield listed
    finally:
        _READING.reset(token)


# Check results shared by the check() calls of one scope (see sharing()).
_SHARED: ContextVar[dict[tuple[int, int, CheckFn], tuple[Any, Any, Result | None]] | None] = ContextVar(
    "shared", default=None)


class sharing:  # noqa: N801 - used as a function: `with sharing(): ...`
    """Within this scope, a check that already ran on the same pod (the same metadata and spec objects)
    answers from its first run: a request's baseline and restricted rules share the baseline checks.
    The pods checked must not change within the scope. (A class rather than a @contextmanager: it is
    entered for every request.)"""

    __slots__ = ("_tokens",)

    def __enter__(self) -> None:
        self._tokens = (_SHARED.set({}), _PODS.set({}))

    def __exit__(self, *exc: object) -> None:
        shared, pods = self._tokens
        _PODS.reset(pods)
        _SHARED.reset(shared)


@dataclass
class PodChecks:
    """One pod's containers (listed once) and the results of the checks that ran on it in a sharing()
    scope. meta and spec are kept, so their ids stay theirs while the scope lasts."""

    meta: dict[str, Any]
    spec: dict[str, Any]
    listed: tuple[Container, ...]
    results: dict[CheckFn, Result | None]
    passing: frozenset[CheckFn] = frozenset()  # the checks the walk found passing (see clear.py)


_PODS: ContextVar[dict[tuple[int, int], PodChecks] | None] = ContextVar("pods", default=None)


def pod_checks(meta: dict[str, Any], spec: dict[str, Any]) -> PodChecks:
    """The pod's PodChecks: shared by the check() calls of the sharing() scope, or new outside one."""
    pods = _PODS.get()
    if pods is None:
        return _new_pod_checks(meta, spec)
    key = (id(meta), id(spec))
    found = pods.get(key)
    if found is None or found.meta is not meta or found.spec is not spec:
        found = pods[key] = _new_pod_checks(meta, spec)
    return found


def _new_pod_checks(meta: dict[str, Any], spec: dict[str, Any]) -> PodChecks:
    """A pod's record, with the checks it plainly passes (see clear.py) already answered."""
    from admission.podsecurity.clear import plainly_passing

    listed = _containers(spec)
    passing = frozenset(plainly_passing(meta, spec, listed))
    return PodChecks(meta, spec, listed, dict.fromkeys(passing), passing)


def set_reading(spec: dict[str, Any], listed: tuple[Container, ...]) -> Token[Any]:
    """reading() without a context manager: pass the returned token to reset_reading."""
    return _READING.set((spec, listed))


def reset_reading(token: Token[Any]) -> None:
    _READING.reset(token)


def run_check(fn: CheckFn, meta: dict[str, Any], spec: dict[str, Any]) -> Result | None:
    """fn(meta, spec), or its result from earlier in the sharing() scope."""
    shared = _SHARED.get()
    if shared is None:
        return fn(meta, spec)
    key = (id(meta), id(spec), fn)
    hit = shared.get(key)
    if hit is not None and hit[0] is meta and hit[1] is spec:
        return hit[2]
    result = fn(meta, spec)
    shared[key] = (meta, spec, result)  # keeps meta and spec alive, so their ids stay theirs
    return result


def containers(spec: dict[str, Any]) -> Iterator[Container]:
    """Init containers, then containers, then ephemeral containers, as upstream visits them."""
    current = _READING.get()
    if current is not None and current[0] is spec:
        return iter(current[1])
    return iter(_containers(spec))


def pluralize(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def join_quote(items: list[str]) -> str:
    if not items:
        return ""
    return '"' + '", "'.join(items) + '"'


def containers_phrase(names: list[str]) -> str:
    """`container "a"` or `containers "a", "b"`."""
    return f"{pluralize('container', 'containers', len(names))} {join_quote(names)}"


def is_windows(spec: dict[str, Any]) -> bool:
    return get(spec, "os", "name") == "windows"


def user_namespaced(spec: dict[str, Any]) -> bool:
    """hostUsers: false puts the pod in a user namespace, which relaxes some checks from v1.35."""
    return spec.get("hostUsers") is False
