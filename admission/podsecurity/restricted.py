"""The restricted-level Pod Security checks, one function per upstream check version."""

from __future__ import annotations

from typing import Any

from admission.podsecurity.baseline import seccomp_explicit, seccomp_forbidden_result
from admission.podsecurity.model import (
    REQUIRED,
    FieldError,
    Result,
    as_dict,
    as_list,
    containers,
    containers_phrase,
    get,
    is_windows,
    join_quote,
    pluralize,
    text,
    user_namespaced,
)

Obj = dict[str, Any]


def allow_privilege_escalation_1_8(meta: Obj, spec: Obj) -> Result | None:
    bad, errors = [], []
    for c in containers(spec):
        value = c.sc("allowPrivilegeEscalation")
        if value is not False:
            bad.append(c.name)
            path = f"{c.path}.securityContext.allowPrivilegeEscalation"
            errors.append(FieldError(path, ("true",)) if value is True else FieldError(path, (), REQUIRED))
    if not bad:
        return None
    detail = f"{containers_phrase(bad)} must set securityContext.allowPrivilegeEscalation=false"
    return Result("allowPrivilegeEscalation != false", detail, errors)


def allow_privilege_escalation_1_25(meta: Obj, spec: Obj) -> Result | None:
    if is_windows(spec):
        return None
    return allow_privilege_escalation_1_8(meta, spec)


def capabilities_restricted_1_22(meta: Obj, spec: Obj) -> Result | None:
    missing_drop: list[str] = []
    adding: list[str] = []
    forbidden: set[str] = set()
    errors: list[FieldError] = []
    for c in containers(spec):
        caps = c.sc("capabilities")
        if not isinstance(caps, dict):
            missing_drop.append(c.name)
            errors.append(FieldError(f"{c.path}.securityContext.capabilities.drop", (), REQUIRED))
            continue
        dropped = [text(cap) for cap in as_list(caps.get("drop"))]
        if "ALL" not in dropped:
            missing_drop.append(c.name)
            errors.append(FieldError(f"{c.path}.securityContext.capabilities.drop", tuple(dropped), REQUIRED))
        wrong = [text(cap) for cap in as_list(caps.get("add")) if text(cap) != "NET_BIND_SERVICE"]
        if wrong:
            adding.append(c.name)
            forbidden.update(wrong)
            errors.append(FieldError(f"{c.path}.securityContext.capabilities.add", tuple(wrong)))
    details = []
    if missing_drop:
        details.append(
            f'{containers_phrase(missing_drop)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{containers_phrase(adding)} must not include {join_quote(sorted(forbidden))} "
            "in securityContext.capabilities.add"
        )
    if not details:
        return None
    return Result("unrestricted capabilities", "; ".join(details), errors)


def capabilities_restricted_1_25(meta: Obj, spec: Obj) -> Result | None:
    if is_windows(spec):
        return None
    return capabilities_restricted_1_22(meta, spec)


_ALLOWED_VOLUMES = (
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected", "secret",
)  # fmt: skip
_RESTRICTED_VOLUMES = (
    "hostPath", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "nfs", "iscsi", "glusterfs", "rbd",
    "flexVolume", "cinder", "cephfs", "flocker", "fc", "azureFile", "vsphereVolume", "quobyte", "azureDisk",
    "photonPersistentDisk", "portworxVolume", "scaleIO", "storageos",
)  # fmt: skip


def restricted_volumes_1_0(meta: Obj, spec: Obj) -> Result | None:
    names: list[str] = []
    kinds: set[str] = set()
    errors = []
    for i, raw in enumerate(as_list(spec.get("volumes"))):
        volume = as_dict(raw)
        if any(volume.get(key) is not None for key in _ALLOWED_VOLUMES):
            continue
        if all(volume.get(key) is None for key in _RESTRICTED_VOLUMES):
            continue  # no source at all: the API server defaults it to an emptyDir before admission
        names.append(text(volume.get("name")))
        kind = next((key for key in _RESTRICTED_VOLUMES if volume.get(key) is not None), "unknown")
        kinds.add(kind)
        errors.append(FieldError(f"spec.volumes[{i}].{kind}"))
    if not names:
        return None
    detail = (
        f"{pluralize('volume', 'volumes', len(names))} {join_quote(names)} {pluralize('uses', 'use', len(names))} "
        f"{pluralize('restricted volume type', 'restricted volume types', len(kinds))} {join_quote(sorted(kinds))}"
    )
    return Result("restricted volume types", detail, errors)


def run_as_non_root_1_0(meta: Obj, spec: Obj) -> Result | None:
    setters: list[str] = []
    errors: list[FieldError] = []
    pod_non_root = False
    pod_value = get(spec, "securityContext", "runAsNonRoot")
    if pod_value is not None:
        if pod_value is not True:
            setters.append("pod")
            errors.append(FieldError("spec.securityContext.runAsNonRoot", (text(pod_value),)))
        else:
            pod_non_root = True
    explicit, implicit, implicit_errors = [], [], []
    for c in containers(spec):
        value = c.sc("runAsNonRoot")
        path = f"{c.path}.securityContext.runAsNonRoot"
        if value is not None:
            if value is not True:
                explicit.append(c.name)
                errors.append(FieldError(path, (text(value),)))
        elif not pod_non_root:
            implicit.append(c.name)
            implicit_errors.append(FieldError(path, (), REQUIRED))
    if explicit:
        setters.append(containers_phrase(explicit))
    if setters:
        detail = f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false"
        return Result("runAsNonRoot != true", detail, errors + implicit_errors)
    if implicit:
        detail = f"pod or {containers_phrase(implicit)} must set securityContext.runAsNonRoot=true"
        return Result("runAsNonRoot != true", detail, implicit_errors)
    return None


def run_as_non_root_1_35(meta: Obj, spec: Obj) -> Result | None:
    if user_namespaced(spec):
        return None
    return run_as_non_root_1_0(meta, spec)


def _is_zero(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == 0


def run_as_user_1_23(meta: Obj, spec: Obj) -> Result | None:
    setters: list[str] = []
    errors: list[FieldError] = []
    if _is_zero(get(spec, "securityContext", "runAsUser")):
        setters.append("pod")
        errors.append(FieldError("spec.securityContext.runAsUser", ("0",)))
    bad = []
    for c in containers(spec):
        if _is_zero(c.sc("runAsUser")):
            bad.append(c.name)
            errors.append(FieldError(f"{c.path}.securityContext.runAsUser", ("0",)))
    if bad:
        setters.append(containers_phrase(bad))
    if not setters:
        return None
    return Result("runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0", errors)


def run_as_user_1_35(meta: Obj, spec: Obj) -> Result | None:
    if user_namespaced(spec):
        return None
    return run_as_user_1_23(meta, spec)


def seccomp_restricted_1_19(meta: Obj, spec: Obj) -> Result | None:
    setters, bad_values, errors, _, implicit, implicit_errors = seccomp_explicit(spec)
    if setters:
        result = seccomp_forbidden_result(setters, bad_values, errors)
        result.errors.extend(implicit_errors)
        return result
    if implicit:
        detail = (
            f"pod or {containers_phrase(implicit)} must set securityContext.seccompProfile.type "
            'to "RuntimeDefault" or "Localhost"'
        )
        return Result("seccompProfile", detail, implicit_errors)
    return None


def seccomp_restricted_1_25(meta: Obj, spec: Obj) -> Result | None:
    if is_windows(spec):
        return None
    return seccomp_restricted_1_19(meta, spec)
