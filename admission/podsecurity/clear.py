"""The checks a pod plainly passes, found in one walk over it.

Most pods pass every check. `plainly_passing(meta, spec, listed)` reads each container once and returns
the implementations (of the newest version's checks) that would return None for this pod; check() then
skips them. Each condition below is the check's own pass condition, or a stricter one (anything unusual
is left to the check itself), so the verdicts and messages stay those of the checks.
"""

from __future__ import annotations

from typing import Any

from admission.podsecurity import baseline as b
from admission.podsecurity import restricted as r
from admission.podsecurity.model import CheckFn, Container, as_dict, as_list

_ALLOWED_VOLUMES = frozenset(r._ALLOWED_VOLUMES)
_SECCOMP_TYPES = b.VALID_SECCOMP_TYPES
_APPARMOR_TYPES = b._APPARMOR_TYPES
# (key, nested key or "") of each probe and lifecycle handler the host check reads
_PROBES = tuple((keys[0], keys[1] if len(keys) > 1 else "") for _, keys in b._PROBE_KEYS)
assert all(len(keys) <= 2 for _, keys in b._PROBE_KEYS)


def _at(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


def _seccomp_ok(profile: Any) -> bool:
    return not isinstance(profile, dict) or profile.get("type") in _SECCOMP_TYPES


def _apparmor_ok(profile: Any) -> bool:
    return not isinstance(profile, dict) or profile.get("type") in _APPARMOR_TYPES


def _is_zero(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value == 0


def _no_host_probe(data: dict[str, Any]) -> bool:
    for first, rest in _PROBES:
        handler = data.get(first)
        if handler is None:
            continue
        if rest:
            handler = handler.get(rest) if isinstance(handler, dict) else None
        if not isinstance(handler, dict):
            continue
        for kind in ("httpGet", "tcpSocket"):
            action = handler.get(kind)
            if isinstance(action, dict) and action.get("host") not in (None, ""):
                return False
    return True


def _no_host_port(data: dict[str, Any]) -> bool:
    for port in as_list(data.get("ports")):
        value = _at(port, "hostPort")
        if value not in (None, 0) and value is not False:
            return False
    return True


def plainly_passing(meta: dict[str, Any], spec: dict[str, Any], listed: tuple[Container, ...]) -> list[CheckFn]:
    """The check implementations that pass for this pod (a subset: a check left out may pass too)."""
    pod_sc = spec.get("securityContext")
    pod_sc = pod_sc if isinstance(pod_sc, dict) else {}
    pod_seccomp = pod_sc.get("seccompProfile")
    pod_seccomp_set = isinstance(pod_seccomp, dict) and pod_seccomp.get("type") in _SECCOMP_TYPES
    pod_non_root = pod_sc.get("runAsNonRoot")

    privileged = caps_baseline = caps_restricted = ports = probes = proc_mount = selinux = True
    seccomp_explicit = seccomp_required = windows = escalation = non_root = run_as_user = apparmor = True
    for c in listed:
        sc = c.security
        if isinstance(sc, dict) and sc:
            get = sc.get
            if get("privileged") is True:
                privileged = False
            caps = get("capabilities")
            if isinstance(caps, dict):
                added = caps.get("add")
                if isinstance(added, list) and added:
                    caps_baseline = False
                    if any(cap != "NET_BIND_SERVICE" for cap in added):
                        caps_restricted = False
                drop = caps.get("drop")
                if not (isinstance(drop, list) and "ALL" in drop):
                    caps_restricted = False
            else:
                caps_restricted = False
            if get("procMount") not in (None, "Default"):
                proc_mount = False
            if isinstance(get("seLinuxOptions"), dict):
                selinux = False
            profile = get("seccompProfile")
            if isinstance(profile, dict):
                if profile.get("type") not in _SECCOMP_TYPES:
                    seccomp_explicit = False
            elif not pod_seccomp_set:
                seccomp_required = False
            options = get("windowsOptions")
            if isinstance(options, dict) and options.get("hostProcess") is True:
                windows = False
            if get("allowPrivilegeEscalation") is not False:
                escalation = False
            value = get("runAsNonRoot")
            if not (value is True or (value is None and pod_non_root is True)):
                non_root = False
            user = get("runAsUser")
            if isinstance(user, int) and not isinstance(user, bool) and user == 0:
                run_as_user = False
            profile = get("appArmorProfile")
            if isinstance(profile, dict) and profile.get("type") not in _APPARMOR_TYPES:
                apparmor = False
        else:  # no security context: only what needs one set fails
            caps_restricted = escalation = False
            if not pod_seccomp_set:
                seccomp_required = False
            if pod_non_root is not True:
                non_root = False
        data = c.data
        if ports and "ports" in data and not _no_host_port(data):
            ports = False
        if probes and not _no_host_probe(data):
            probes = False

    volumes = [as_dict(v) for v in as_list(spec.get("volumes"))]
    host_path = all(v.get("hostPath") is None for v in volumes)
    restricted_volumes = all(any(v.get(key) is not None for key in _ALLOWED_VOLUMES) for v in volumes)
    seccomp_explicit = seccomp_explicit and _seccomp_ok(pod_seccomp)
    annotations = meta.get("annotations")
    apparmor = apparmor and _apparmor_ok(pod_sc.get("appArmorProfile")) and not (
        isinstance(annotations, dict) and any(not isinstance(k, str) or k.startswith(b._APPARMOR_PREFIX)
                                              for k in annotations))

    passing: list[CheckFn] = []
    for ok, fns in (
        (privileged, (b.privileged_1_0,)),
        (caps_baseline, (b.capabilities_baseline_1_0,)),
        (caps_restricted, (r.capabilities_restricted_1_25,)),
        (ports, (b.host_ports_1_0,)),
        (probes, (b.host_probes_1_34,)),
        (proc_mount, (b.proc_mount_1_35, b.proc_mount_1_0)),
        (selinux and not isinstance(pod_sc.get("seLinuxOptions"), dict), (b.selinux_1_31,)),
        (seccomp_explicit, (b.seccomp_baseline_1_19,)),
        (seccomp_explicit and seccomp_required, (r.seccomp_restricted_1_25,)),
        (windows and _at(pod_sc.get("windowsOptions"), "hostProcess") is not True, (b.windows_host_process_1_0,)),
        (escalation, (r.allow_privilege_escalation_1_25,)),
        (non_root and (pod_non_root is None or pod_non_root is True), (r.run_as_non_root_1_35,)),
        (run_as_user and not _is_zero(pod_sc.get("runAsUser")), (r.run_as_user_1_35,)),
        (apparmor, (b.app_armor_1_0,)),
        (host_path, (b.host_path_volumes_1_0,)),
        (restricted_volumes, (r.restricted_volumes_1_0,)),
        (not as_list(pod_sc.get("sysctls")), (b.sysctls_1_37,)),
        (all(spec.get(k) is not True for k in ("hostNetwork", "hostPID", "hostIPC")), (b.host_namespaces_1_0,)),
    ):
        if ok:
            passing.extend(fns)
    return passing
