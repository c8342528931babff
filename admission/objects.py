"""The identity of a Kubernetes object as reports and test runners name it."""

from __future__ import annotations

from admission.types import Object


class ObjectIdentity:
    """Mixin for anything holding a manifest in `obj`: its kind, namespace and name."""

    obj: Object

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind") or "")

    @property
    def namespace(self) -> str:
        return str((self.obj.get("metadata") or {}).get("namespace") or "")

    @property
    def name(self) -> str:
        """metadata.name, or generateName for an object the API server has yet to name."""
        meta = self.obj.get("metadata") or {}
        return str(meta.get("name") or meta.get("generateName") or "")
