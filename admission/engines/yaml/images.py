"""Container image references, parsed by the distribution reference grammar, and Kyverno's `images` variable.

Kyverno's semantics (pkg/utils/image): a name whose first component has no `.` or `:`, is not `localhost`
and is lowercase gets the default registry `docker.io` in front; the rest is parsed as is, so `nginx` is
registry `docker.io`, path `nginx` (Kyverno does not add Docker Hub's implicit `library/`; the
`repository` property here does, for policies that want Docker Hub's full name); with neither tag nor
digest the tag is `latest`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

DEFAULT_REGISTRY = "docker.io"

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(
    rf"^(?P<name>(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*))"
    rf"(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$"
)
_DIGEST_LENGTHS = {"sha256": 64, "sha384": 96, "sha512": 128}
NAME_TOTAL_LENGTH_MAX = 255


class ImageError(ValueError):
    """An image reference that the reference grammar rejects."""


@dataclass(frozen=True)
class ImageRef:
    registry: str
    path: str
    name: str
    tag: str
    digest: str

    @property
    def reference(self) -> str:
        """registry/path@digest, or registry/path:tag (Kyverno's ImageInfo.String())."""
        image = f"{self.registry}/{self.path}" if self.registry else self.path
        return f"{image}@{self.digest}" if self.digest else f"{image}:{self.tag}"

    @property
    def normalized(self) -> str:
        return self.reference

    @property
    def reference_with_tag(self) -> str:
        image = f"{self.registry}/{self.path}" if self.registry else self.path
        return f"{image}:{self.tag}"

    @property
    def repository(self) -> str:
        """The full repository name as Docker Hub resolves it: docker.io/library/nginx for `nginx`."""
        if self.registry == DEFAULT_REGISTRY and "/" not in self.path:
            return f"{self.registry}/library/{self.path}"
        return f"{self.registry}/{self.path}" if self.registry else self.path

    def to_dict(self, pointer: str | None = None) -> dict[str, Any]:
        """The shape of an entry of Kyverno's `images` variable (empty fields omitted, as Kyverno does)."""
        out: dict[str, Any] = {}
        if self.registry:
            out["registry"] = self.registry
        out["name"] = self.name
        out["path"] = self.path
        if self.tag:
            out["tag"] = self.tag
        if self.digest:
            out["digest"] = self.digest
        out["reference"] = self.reference
        out["referenceWithTag"] = self.reference_with_tag
        if pointer is not None:
            out["jsonPointer"] = pointer
        return out


def add_default_registry(ref: str) -> str:
    i = ref.find("/")
    first = ref[:i]
    if i == -1 or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        return f"{DEFAULT_REGISTRY}/{ref}"
    return ref


@lru_cache(maxsize=4096)
def parse_image(ref: str) -> ImageRef:
    """Parse an image reference as Kyverno does. Raises ImageError for a malformed one."""
    if not isinstance(ref, str) or not ref.strip():
        raise ImageError(f"bad image: {ref!r}: invalid reference format")
    full = add_default_registry(ref)
    m = _REFERENCE.match(full)
    if not m:
        if _REFERENCE.match(full.lower()):
            raise ImageError(f"bad image: {full}: repository name must be lowercase")
        raise ImageError(f"bad image: {full}: invalid reference format")
    if len(m.group("name")) > NAME_TOTAL_LENGTH_MAX:
        raise ImageError(f"bad image: {full}: repository name must not be more than 255 characters")
    digest = m.group("digest") or ""
    if digest:
        algorithm, _, hexpart = digest.partition(":")
        if algorithm not in _DIGEST_LENGTHS:
            raise ImageError(f"bad image: {full}: unsupported digest algorithm")
        if len(hexpart) != _DIGEST_LENGTHS[algorithm] or hexpart != hexpart.lower():
            raise ImageError(f"bad image: {full}: invalid checksum digest format")
    path = m.group("path")
    tag = m.group("tag") or ""
    if not tag and not digest:
        tag = "latest"
    return ImageRef(registry=m.group("domain") or "", path=path, name=path.rsplit("/", 1)[-1], tag=tag,
                    digest=digest)


# Where each kind keeps its pod spec (Kyverno's registered image extractors).
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "DaemonSet": ("spec", "template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_TYPES = ("initContainers", "containers", "ephemeralContainers")


def pod_spec_path(kind: str) -> tuple[str, ...] | None:
    return _POD_SPEC_PATHS.get(kind)


def images_of(obj: dict[str, Any] | None) -> dict[str, Any]:
    """Kyverno's `images` variable for a resource: {containerType: {containerName: image info}}, only
    the container types that have images; {} for kinds without a pod spec. Raises ImageError for an
    image Kyverno would reject."""
    if not isinstance(obj, dict):
        return {}
    path = _POD_SPEC_PATHS.get(str(obj.get("kind") or ""))
    if path is None:
        return {}
    spec: Any = obj
    for key in path:
        spec = spec.get(key) if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        return {}
    out: dict[str, Any] = {}
    for ctype in CONTAINER_TYPES:
        containers = spec.get(ctype)
        if not isinstance(containers, list):
            continue
        entries: dict[str, Any] = {}
        for i, container in enumerate(containers):
            if not isinstance(container, dict):
                continue
            image = container.get("image")
            if not isinstance(image, str) or not image.strip():
                continue
            name = container.get("name")
            if not isinstance(name, str):
                raise ImageError(f"container {i} in {ctype} has no name")
            pointer = "/" + "/".join((*path, ctype, str(i), "image"))
            try:
                entries[name] = parse_image(image).to_dict(pointer)
            except ImageError as exc:
                raise ImageError(f"invalid image '{image}' ({exc})") from None
        if entries:
            out[ctype] = entries
    return out
