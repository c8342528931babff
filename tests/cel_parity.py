"""Differential testing of our ValidatingAdmissionPolicy / MutatingAdmissionPolicy engine against a real
kube-apiserver (tests/test_e2e_cel_parity.py): the API server evaluates both natively, also for server-side
dry-run requests, so a dry-run CREATE or UPDATE is an oracle. This module holds what is not the corpus:
talking to the API server (answers with their warning headers), isolating bindings, reading the server's
answer (allowed, the user's part of a denial, warnings, the mutated object) and putting ours the same way.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# fields the API server sets on every object it admits: not a policy's doing
SERVER_FIELDS = ("uid", "creationTimestamp", "resourceVersion", "managedFields", "generation")
# how the API server words a VAP denial and a Warn (validating admission policy dispatcher)
DENIAL = re.compile(r"(?:ValidatingAdmissionPolicy|policy) '(?P<policy>[^']*)' with binding '(?P<binding>[^']*)' "
                    r"denied request: (?P<message>.*)", re.S)
WARNING = re.compile(r"Validation failed for ValidatingAdmissionPolicy '(?P<policy>[^']*)' with binding "
                     r"'(?P<binding>[^']*)': (?P<message>.*)", re.S)
WARNING_VALUE = re.compile(r'^\d{3} \S+ "(?P<text>(?:[^"\\]|\\.)*)"')


@dataclass
class Answer:
    """What the API server (or our engine) said to one request."""

    allowed: bool
    status: int = 200
    message: str = ""  # the denial's text as the policy's author wrote it (after "denied request: ")
    raw: str = ""  # the whole denial message, as returned
    warnings: list[str] = field(default_factory=list)  # the Warn texts as the author wrote them
    obj: dict[str, Any] | None = None  # the admitted (mutated) object


class Server:
    """Plain HTTP calls through the kubernetes client's ApiClient, keeping the response headers (the dynamic
    client drops the Warning headers that Warn actions come back in)."""

    def __init__(self, api: Any) -> None:
        self.api = api

    def call(self, method: str, path: str, body: Any = None, query: list[tuple[str, str]] | None = None
             ) -> tuple[int, Any, list[str]]:
        m, url, headers, data, _ = self.api.param_serialize(
            method=method, resource_path=path, query_params=query or [], body=body,
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            auth_settings=["BearerToken"])
        response = self.api.call_api(m, url, header_params=headers, body=data)
        response.read()
        raw = response.getheaders()
        values = raw.get_all("Warning") if hasattr(raw, "get_all") else None
        if values is None:
            found = raw.get("Warning") if raw is not None else None
            values = [found] if found else []
        warnings = [w for v in values for w in split_warnings(v)]
        try:
            body = json.loads(response.data or b"null")
        except ValueError:  # e.g. "404 page not found" for a path not served yet
            body = {"message": response.data.decode(errors="replace")}
        return response.status, body, warnings

    def dry_run(self, method: str, obj: Mapping[str, Any]) -> Answer:
        path = resource_path(obj, named=method in ("PUT", "DELETE"))
        status, body, warnings = self.call(method, path, dict(obj) if method != "DELETE" else None,
                                           [("dryRun", "All")])
        if status < 300:
            return Answer(True, status, warnings=warning_texts(warnings), obj=body)
        raw = str((body or {}).get("message", ""))
        found = DENIAL.search(raw)
        return Answer(False, status, found.group("message") if found else raw, raw, warning_texts(warnings))

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        status, body, _ = self.call("POST", resource_path(obj, named=False), dict(obj))
        if status >= 300:
            raise AssertionError(f"cannot create {obj['kind']} {obj['metadata']['name']}: {status} {body}")
        return dict(body)

    def delete(self, obj: Mapping[str, Any]) -> None:
        status, body, _ = self.call("DELETE", resource_path(obj, named=True))
        if status >= 300 and status != 404:
            raise AssertionError(f"cannot delete {obj['kind']} {obj['metadata']['name']}: {status} {body}")


PLURALS = {"Pod": "pods", "ConfigMap": "configmaps", "Deployment": "deployments", "Namespace": "namespaces",
           "Service": "services", "Secret": "secrets",
           "ValidatingAdmissionPolicy": "validatingadmissionpolicies",
           "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings",
           "MutatingAdmissionPolicy": "mutatingadmissionpolicies",
           "MutatingAdmissionPolicyBinding": "mutatingadmissionpolicybindings",
           "CustomResourceDefinition": "customresourcedefinitions", "Params": "params"}


def resource_path(obj: Mapping[str, Any], *, named: bool) -> str:
    group_version = str(obj["apiVersion"])
    base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    meta = obj.get("metadata") or {}
    if meta.get("namespace"):
        base += f"/namespaces/{meta['namespace']}"
    base += f"/{PLURALS[str(obj['kind'])]}"
    return f"{base}/{meta['name']}" if named else base


def split_warnings(value: str) -> list[str]:
    """One Warning header may carry several comma-separated warn-values (RFC 7234)."""
    out: list[str] = []
    rest = value.strip()
    while rest:
        found = WARNING_VALUE.match(rest)
        if not found:
            out.append(rest)
            break
        out.append(found.group("text").replace('\\"', '"').replace("\\\\", "\\"))
        rest = rest[found.end():].lstrip(" ,")
    return out


def warning_texts(warnings: list[str]) -> list[str]:
    """The Warn texts of validating admission policies, as their authors wrote them; other warnings dropped."""
    out = []
    for w in warnings:
        found = WARNING.search(w)
        if found:
            out.append(found.group("message"))
    return out


def stripped(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An object without the fields the API server sets on everything it admits."""
    if obj is None:
        return None
    out = copy.deepcopy(dict(obj))
    meta = out.get("metadata") or {}
    for key in SERVER_FIELDS:
        meta.pop(key, None)
    return out


def isolate(binding: dict[str, Any], namespace_label: tuple[str, str], case_label: tuple[str, str]) -> None:
    """Narrow a binding to the namespaces of this run and the objects of one case: whatever it selects
    besides, it selects only those (both selectors must select, so both are added to)."""
    spec = binding.setdefault("spec", {})
    match = spec.setdefault("matchResources", {})
    for key, (label, value) in (("namespaceSelector", namespace_label), ("objectSelector", case_label)):
        selector = match.setdefault(key, {})
        selector.setdefault("matchLabels", {})[label] = value
