"""The baseline-level Pod Security checks, one function per upstream check version.

Each function takes (metadata, spec) and returns None when the pod is allowed, else a Result carrying
upstream's forbidden reason and detail, plus the offending fields.
"""

from __future__ import annotations

import json
from typing import Any

from admission.podsecurity.model import (
    FieldError,
    Result,
    as_dict,
    as_list,
    containers,
    containers_phrase,
    get,
    join_quote,
    pluralize,
    text,
    user_namespaced,
)

Obj = dict[str, Any]


def _go_quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def privileged_1_0(meta: Obj, spec: Obj) -> Result | None:
    bad, errors = [], []
    for c in containers(spec):
        if c.sc("privileged") is True:
            bad.append(c.name)
            errors.append(FieldError(f"{c.path}.securityContext.privileged", ("true",)))
    if not bad:
        return None
    return Result(
        "privileged", f"{containers_phrase(bad)} must not set securityContext.privileged=true", errors
    )


def host_namespaces_1_0(meta: Obj, spec: Obj) -> Result | None:
    found = [key for key in ("hostNetwork", "hostPID", "hostIPC") if spec.get(key) is True]
    if not found:
        return None
    return Result(
        "host namespaces",
        ", ".join(f"{key}=true" for key in found),
        [FieldError(f"spec.{key}", ("true",)) for key in found],
    )


def host_path_volumes_1_0(meta: Obj, spec: Obj) -> Result | None:
    names, errors = [], []
    for i, volume in enumerate(as_list(spec.get("volumes"))):
        volume = as_dict(volume)
        if volume.get("hostPath") is not None:
            names.append(text(volume.get("name")))
            errors.append(FieldError(f"spec.volumes[{i}].hostPath"))
    if not names:
        return None
    return Result(
        "hostPath volumes", f"{pluralize('volume', 'volumes', len(names))} {join_quote(names)}", errors
    )


def host_ports_1_0(meta: Obj, spec: Obj) -> Result | None:
    bad: list[str] = []
    ports: set[str] = set()
    errors = []
    for c in containers(spec):
        valid = True
        for j, port in enumerate(as_list(c.data.get("ports"))):
            value = get(port, "hostPort")
            if value not in (None, 0) and value is not False:
                valid = False
                ports.add(text(value))
                errors.append(FieldError(f"{c.path}.ports[{j}].hostPort", (text(value),)))
        if not valid:
            bad.append(c.name)
    if not bad:
        return None
    detail = (
        f"{containers_phrase(bad)} {pluralize('uses', 'use', len(bad))} "
        f"{pluralize('hostPort', 'hostPorts', len(ports))} {', '.join(sorted(ports))}"
    )
    return Result("hostPort", detail, errors)


_PROBES = ("livenessProbe", "readinessProbe", "startupProbe", "lifecycle.postStart", "lifecycle.preStop")
_PROBE_KEYS = tuple((path, tuple(path.split("."))) for path in _PROBES)


def host_probes_1_34(meta: Obj, spec: Obj) -> Result | None:
    bad: set[str] = set()
    hosts: set[str] = set()
    errors = []
    for c in containers(spec):
        for handler_path, keys in _PROBE_KEYS:
            if c.data.get(keys[0]) is None:
                continue  # no such probe: nothing to check
            handler = get(c.data, *keys)
            for kind in ("httpGet", "tcpSocket"):
                host = get(handler, kind, "host")
                if host not in (None, ""):
                    bad.add(c.name)
                    hosts.add(text(host))
                    errors.append(FieldError(f"{c.path}.{handler_path}.{kind}.host", (text(host),)))
    if not bad:
        return None
    detail = (
        f"{containers_phrase(sorted(bad))} {pluralize('uses', 'use', len(bad))} "
        f"{pluralize('probe or lifecycle host', 'probe or lifecycle hosts', len(hosts))} {join_quote(sorted(hosts))}"
    )
    return Result("probe or lifecycle host", detail, errors)


def proc_mount_1_0(meta: Obj, spec: Obj) -> Result | None:
    bad: list[str] = []
    kinds: set[str] = set()
    errors = []
    for c in containers(spec):
        value = c.sc("procMount")
        if value is not None and value != "Default":
            bad.append(c.name)
            kinds.add(text(value))
            errors.append(FieldError(f"{c.path}.securityContext.procMount", (text(value),)))
    if not bad:
        return None
    detail = f"{containers_phrase(bad)} must not set securityContext.procMount to {join_quote(sorted(kinds))}"
    return Result("procMount", detail, errors)


def proc_mount_1_35(meta: Obj, spec: Obj) -> Result | None:
    if user_namespaced(spec):
        return None
    return proc_mount_1_0(meta, spec)


DEFAULT_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
    }
)  # fmt: skip


def capabilities_baseline_1_0(meta: Obj, spec: Obj) -> Result | None:
    bad: list[str] = []
    caps: set[str] = set()
    errors = []
    for c in containers(spec):
        added = [text(cap) for cap in as_list(c.sc("capabilities", "add"))]
        wrong = [cap for cap in added if cap not in DEFAULT_CAPABILITIES]
        if wrong:
            bad.append(c.name)
            caps.update(wrong)
            errors.append(FieldError(f"{c.path}.securityContext.capabilities.add", tuple(wrong)))
    if not bad:
        return None
    detail = f"{containers_phrase(bad)} must not include {join_quote(sorted(caps))} in securityContext.capabilities.add"
    return Result("non-default capabilities", detail, errors)


def windows_host_process_1_0(meta: Obj, spec: Obj) -> Result | None:
    setters: list[str] = []
    errors = []
    if get(spec, "securityContext", "windowsOptions", "hostProcess") is True:
        setters.append("pod")
        errors.append(FieldError("spec.securityContext.windowsOptions.hostProcess", ("true",)))
    bad = []
    for c in containers(spec):
        if c.sc("windowsOptions", "hostProcess") is True:
            bad.append(c.name)
            errors.append(FieldError(f"{c.path}.securityContext.windowsOptions.hostProcess", ("true",)))
    if bad:
        setters.append(containers_phrase(bad))
    if not setters:
        return None
    detail = f"{' and '.join(setters)} must not set securityContext.windowsOptions.hostProcess=true"
    return Result("hostProcess", detail, errors)


_SELINUX_TYPES_1_0 = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
_SELINUX_TYPES_1_31 = _SELINUX_TYPES_1_0 | {"container_engine_t"}


def _selinux(spec: Obj, allowed: frozenset[str]) -> Result | None:
    bad_types: set[str] = set()
    flags = {"user": False, "role": False}
    errors: list[FieldError] = []

    def valid(opts: Obj, path: str) -> bool:
        ok = True
        kind = text(opts.get("type"))
        if kind not in allowed:
            ok = False
            bad_types.add(kind)
            errors.append(FieldError(f"{path}.seLinuxOptions.type", (kind,)))
        for key in ("user", "role"):
            if text(opts.get(key)):
                ok = False
                flags[key] = True
                errors.append(FieldError(f"{path}.seLinuxOptions.{key}", (text(opts.get(key)),)))
        return ok

    setters: list[str] = []
    pod_opts = get(spec, "securityContext", "seLinuxOptions")
    if isinstance(pod_opts, dict) and not valid(pod_opts, "spec.securityContext"):
        setters.append("pod")
    bad = []
    for c in containers(spec):
        opts = c.sc("seLinuxOptions")
        if isinstance(opts, dict) and not valid(opts, f"{c.path}.securityContext"):
            bad.append(c.name)
    if bad:
        setters.append(containers_phrase(bad))
    if not setters:
        return None
    data = []
    if bad_types:
        data.append(f"{pluralize('type', 'types', len(bad_types))} {join_quote(sorted(bad_types))}")
    if flags["user"]:
        data.append("user may not be set")
    if flags["role"]:
        data.append("role may not be set")
    detail = f"{' and '.join(setters)} set forbidden securityContext.seLinuxOptions: {'; '.join(data)}"
    return Result("seLinuxOptions", detail, errors)


def selinux_1_0(meta: Obj, spec: Obj) -> Result | None:
    return _selinux(spec, _SELINUX_TYPES_1_0)


def selinux_1_31(meta: Obj, spec: Obj) -> Result | None:
    return _selinux(spec, _SELINUX_TYPES_1_31)


_SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
_SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
VALID_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def _valid_seccomp_annotation(value: str) -> bool:
    return value in ("runtime/default", "docker/default") or value.startswith("localhost/")


def seccomp_baseline_1_0(meta: Obj, spec: Obj) -> Result | None:
    annotations = as_dict(meta.get("annotations"))
    forbidden: set[str] = set()
    errors = []
    keys = [_SECCOMP_POD_ANNOTATION] + [_SECCOMP_CONTAINER_PREFIX + c.name for c in containers(spec)]
    for key in keys:
        if key in annotations:
            value = text(annotations[key])
            if not _valid_seccomp_annotation(value) and f"{key}={_go_quote(value)}" not in forbidden:
                forbidden.add(f"{key}={_go_quote(value)}")
                errors.append(FieldError(f"metadata.annotations[{key}]", (value,)))
    if not forbidden:
        return None
    detail = (
        f"forbidden {pluralize('annotation', 'annotations', len(forbidden))} {', '.join(sorted(forbidden))}"
    )
    return Result("seccompProfile", detail, errors)


def seccomp_explicit(
    spec: Obj,
) -> tuple[list[str], set[str], list[FieldError], bool, list[str], list[FieldError]]:
    """Shared by baseline (v1.19+) and restricted seccomp checks: who sets a bad profile type, the bad
    types, whether the pod sets a valid one, and which containers set none (and their fields)."""
    setters: list[str] = []
    bad_values: set[str] = set()
    errors: list[FieldError] = []
    pod_set = False
    pod_profile = get(spec, "securityContext", "seccompProfile")
    if isinstance(pod_profile, dict):
        kind = text(pod_profile.get("type"))
        if kind not in VALID_SECCOMP_TYPES:
            setters.append("pod")
            bad_values.add(kind)
            errors.append(FieldError("spec.securityContext.seccompProfile.type", (kind,)))
        else:
            pod_set = True
    bad, implicit, implicit_errors = [], [], []
    for c in containers(spec):
        profile = c.sc("seccompProfile")
        if isinstance(profile, dict):
            kind = text(profile.get("type"))
            if kind not in VALID_SECCOMP_TYPES:
                bad.append(c.name)
                bad_values.add(kind)
                errors.append(FieldError(f"{c.path}.securityContext.seccompProfile.type", (kind,)))
        elif not pod_set:
            implicit.append(c.name)
            implicit_errors.append(
                FieldError(f"{c.path}.securityContext.seccompProfile.type", (), "required")
            )
    if bad:
        setters.append(containers_phrase(bad))
    return setters, bad_values, errors, pod_set, implicit, implicit_errors


def seccomp_forbidden_result(setters: list[str], bad_values: set[str], errors: list[FieldError]) -> Result:
    detail = f"{' and '.join(setters)} must not set securityContext.seccompProfile.type to {join_quote(sorted(bad_values))}"
    return Result("seccompProfile", detail, errors)


def seccomp_baseline_1_19(meta: Obj, spec: Obj) -> Result | None:
    setters, bad_values, errors, _, _, _ = seccomp_explicit(spec)
    if not setters:
        return None
    return seccomp_forbidden_result(setters, bad_values, errors)


_SYSCTLS_1_0 = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
    }
)
_SYSCTLS_1_27 = _SYSCTLS_1_0 | {"net.ipv4.ip_local_reserved_ports"}
_SYSCTLS_1_29 = _SYSCTLS_1_27 | {
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
_SYSCTLS_1_32 = _SYSCTLS_1_29 | {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}
_SYSCTLS_1_37 = _SYSCTLS_1_32 | {"net.ipv4.tcp_slow_start_after_idle", "net.ipv4.tcp_notsent_lowat"}


def _sysctls(spec: Obj, allowed: frozenset[str]) -> Result | None:
    names, errors = [], []
    for i, item in enumerate(as_list(get(spec, "securityContext", "sysctls"))):
        name = text(get(item, "name"))
        if name not in allowed:
            names.append(name)
            errors.append(FieldError(f"spec.securityContext.sysctls[{i}].name", (name,)))
    if not names:
        return None
    return Result("forbidden sysctls", ", ".join(names), errors)


def sysctls_1_0(meta: Obj, spec: Obj) -> Result | None:
    return _sysctls(spec, _SYSCTLS_1_0)


def sysctls_1_27(meta: Obj, spec: Obj) -> Result | None:
    return _sysctls(spec, _SYSCTLS_1_27)


def sysctls_1_29(meta: Obj, spec: Obj) -> Result | None:
    return _sysctls(spec, _SYSCTLS_1_29)


def sysctls_1_32(meta: Obj, spec: Obj) -> Result | None:
    return _sysctls(spec, _SYSCTLS_1_32)


def sysctls_1_37(meta: Obj, spec: Obj) -> Result | None:
    return _sysctls(spec, _SYSCTLS_1_37)


_APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
_APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})


def app_armor_1_0(meta: Obj, spec: Obj) -> Result | None:
    setters: list[str] = []
    bad_values: set[str] = set()
    errors: list[FieldError] = []
    pod_profile = get(spec, "securityContext", "appArmorProfile")
    if isinstance(pod_profile, dict):
        kind = text(pod_profile.get("type"))
        if kind not in _APPARMOR_TYPES:
            setters.append("pod")
            bad_values.add(kind)
            errors.append(FieldError("spec.securityContext.appArmorProfile.type", (kind,)))
    bad = []
    for c in containers(spec):
        profile = c.sc("appArmorProfile")
        if isinstance(profile, dict):
            kind = text(profile.get("type"))
            if kind not in _APPARMOR_TYPES:
                bad.append(c.name)
                bad_values.add(kind)
                errors.append(FieldError(f"{c.path}.securityContext.appArmorProfile.type", (kind,)))
    if bad:
        setters.append(containers_phrase(bad))
    annotations = []
    for key, raw in as_dict(meta.get("annotations")).items():
        value = text(raw)
        if key.startswith(_APPARMOR_PREFIX) and not (
            value in ("", "runtime/default") or value.startswith("localhost/")
        ):
            annotations.append(f"{key}={_go_quote(value)}")
            errors.append(FieldError(f"metadata.annotations[{key}]", (value,)))
    values = sorted(bad_values)
    if annotations:
        values += sorted(annotations)
        setters.append(pluralize("annotation", "annotations", len(annotations)))
    if not setters:
        return None
    reason = pluralize("forbidden AppArmor profile", "forbidden AppArmor profiles", len(values))
    detail = f"{' and '.join(setters)} must not set AppArmor profile type to {join_quote(values)}"
    return Result(reason, detail, errors)
