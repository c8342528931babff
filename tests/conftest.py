"""Shared fixtures: AdmissionReviews built the way the API server sends them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = REPO.parent / "shared" / "conformance"


def conformance_dir(name: str) -> Path:
    """A folder of the external suites, or skip: they live beside the repo, not in it."""
    path = CONFORMANCE / name
    if not path.is_dir():
        pytest.skip(f"external conformance suite {name!r} not found at ../shared/conformance (not part of a fresh clone)")
    return path


def pod(name: str = "web", namespace: str = "default", image: str = "registry.example.com/app:1.0",
        **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"containers": [container], **spec},
    }


def admission_review(obj: dict[str, Any] | None, *, operation: str = "CREATE", old: dict[str, Any] | None = None,
                     api_version: str = "admission.k8s.io/v1", uid: str | None = None) -> dict[str, Any]:
    subject = obj or old or {}
    group, _, version = str(subject.get("apiVersion", "v1")).rpartition("/")
    kind = subject.get("kind", "Pod")
    meta = subject.get("metadata", {})
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": kind.lower() + "s"},
            "name": meta.get("name", ""),
            "namespace": meta.get("namespace", ""),
            "operation": operation,
            "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
            "object": obj,
            "oldObject": old,
            "dryRun": False,
        },
    }


def review_bytes(obj: dict[str, Any] | None, **kw: Any) -> bytes:
    return json.dumps(admission_review(obj, **kw)).encode()


@pytest.fixture
def make_pod():
    return pod


@pytest.fixture
def make_review():
    return admission_review
