"""Pod Security Standards checks: per-version behaviour, upstream's messages, and Kyverno's exclude."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from admission.engines.yaml.podsecurity import (
    PodSecurityError,
    Violation,
    check,
    control_name,
    summary,
    validate,
)
from admission.podsecurity import NEWEST_MINOR
from admission.podsecurity.namespace import LevelVersion, NamespacePolicy, policy_from_labels


def container(name: str = "app", image: str = "nginx", **sc: Any) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image}
    if sc:
        c["securityContext"] = sc
    return c


RESTRICTED_SC = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod(
    *containers: dict[str, Any], annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "p"}
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": {"containers": list(containers) or [container()], **spec}}


def good(name: str = "app", image: str = "nginx") -> dict[str, Any]:
    return container(name, image, **copy.deepcopy(RESTRICTED_SC))


def ids(violations: list[Violation]) -> list[str]:
    return [v.check for v in violations]


# --- levels, messages -------------------------------------------------------------------------------


def test_baseline_clean_pod_passes_and_restricted_needs_more() -> None:
    plain = pod()
    assert check(plain, level="baseline") == []
    assert ids(check(plain, level="restricted")) == [
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "runAsNonRoot",
        "seccompProfile_restricted",
    ]
    assert check(pod(good()), level="restricted") == []


def test_host_namespaces_message_uses_upstream_wording() -> None:
    [v] = check(pod(hostNetwork=True, hostPID=True), level="baseline")
    assert v.check == "hostNamespaces"
    assert v.message == "host namespaces (hostNetwork=true, hostPID=true)"
    assert summary([v]) == "host namespaces (hostNetwork=true, hostPID=true)"


def test_summary_joins_like_pod_security_admission() -> None:
    bad = pod(container("a", privileged=True), hostIPC=True)
    violations = check(bad, level="baseline")
    assert summary(violations) == (
        'host namespaces (hostIPC=true), privileged (container "a" must not set securityContext.privileged=true)'
    )
    assert summary([]) == ""


def test_container_messages_pluralize_and_list_init_containers_first() -> None:
    bad = pod(container("b", privileged=True), initContainers=[container("a", privileged=True)])
    [v] = check(bad, level="baseline")
    assert v.detail == 'containers "a", "b" must not set securityContext.privileged=true'


def test_capabilities_baseline_and_restricted_messages() -> None:
    bad = pod(container("c", capabilities={"add": ["SYS_ADMIN", "NET_RAW", "CHOWN"]}))
    [v] = check(bad, level="baseline")
    assert v.message == (
        'non-default capabilities (container "c" must not include "NET_RAW", "SYS_ADMIN" '
        "in securityContext.capabilities.add)"
    )
    restricted = check(bad, level="restricted")
    assert "capabilities_baseline" not in ids(restricted)  # overridden by capabilities_restricted
    [caps] = [v for v in restricted if v.check == "capabilities_restricted"]
    assert caps.detail == (
        'container "c" must set securityContext.capabilities.drop=["ALL"]; '
        'container "c" must not include "CHOWN", "NET_RAW", "SYS_ADMIN" in securityContext.capabilities.add'
    )


def test_restricted_volumes_override_host_path_and_name_types() -> None:
    volumes = [
        {"name": "h", "hostPath": {"path": "/"}},
        {"name": "n", "nfs": {"server": "x", "path": "/"}},
        {"name": "e", "emptyDir": {}},
        {"name": "defaulted"},  # no source: the API server makes it an emptyDir
    ]
    [base] = check(pod(volumes=volumes), level="baseline")
    assert base.message == 'hostPath volumes (volume "h")'
    restricted = check(pod(good(), volumes=volumes), level="restricted")
    assert ids(restricted) == ["restrictedVolumes"]
    assert restricted[0].detail == 'volumes "h", "n" use restricted volume types "hostPath", "nfs"'


def test_apparmor_annotations_and_fields() -> None:
    bad = pod(
        container("c", appArmorProfile={"type": "Unconfined"}),
        annotations={
            "container.apparmor.security.beta.kubernetes.io/c": "unconfined",
            "container.apparmor.security.beta.kubernetes.io/d": "localhost/foo",
        },
    )
    [v] = check(bad, level="baseline", version="v1.0")
    assert v.reason == "forbidden AppArmor profiles"
    assert v.detail == (
        'container "c" and annotation must not set AppArmor profile type to '
        '"Unconfined", "container.apparmor.security.beta.kubernetes.io/c="unconfined""'
    )
    ok = pod(container("c", appArmorProfile={"type": "Localhost", "localhostProfile": "x"}))
    assert check(ok, level="baseline") == []


def test_hostports_and_probe_hosts() -> None:
    bad = pod(container("a"), container("b"))
    bad["spec"]["containers"][0]["livenessProbe"] = {"httpGet": {"host": "evil", "port": 80}}
    bad["spec"]["containers"][1]["ports"] = [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]
    violations = check(bad, level="baseline", version="latest")
    assert [v.message for v in violations] == [
        'hostPort (container "b" uses hostPort 8080)',
        'probe or lifecycle host (container "a" uses probe or lifecycle host "evil")',
    ]


def test_selinux_options_message() -> None:
    bad = pod(securityContext={"seLinuxOptions": {"type": "spc_t", "user": "root"}})
    [v] = check(bad, level="baseline")
    assert v.message == (
        'seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type "spc_t"; user may not be set)'
    )


def test_run_as_non_root_explicit_and_implicit_messages() -> None:
    explicit = pod(good("a"), securityContext={"runAsNonRoot": False})
    explicit["spec"]["containers"][0]["securityContext"].pop("runAsNonRoot")
    [v] = check(explicit, level="restricted")
    assert v.message == "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)"
    implicit = pod(good("a"))
    implicit["spec"]["containers"][0]["securityContext"].pop("runAsNonRoot")
    [v] = check(implicit, level="restricted")
    assert v.detail == 'pod or container "a" must set securityContext.runAsNonRoot=true'


# --- versions -----------------------------------------------------------------------------------------


def _restricted_without(key: str) -> dict[str, Any]:
    c = good()
    c["securityContext"].pop(key)
    return pod(c)


@pytest.mark.parametrize(
    ("key", "check_id", "first"),
    [
        ("allowPrivilegeEscalation", "allowPrivilegeEscalation", 8),
        ("capabilities", "capabilities_restricted", 22),
        ("seccompProfile", "seccompProfile_restricted", 19),
    ],
)
def test_restricted_checks_start_at_their_version(key: str, check_id: str, first: int) -> None:
    subject = _restricted_without(key)
    assert check(subject, level="restricted", version=f"v1.{first - 1}") == []
    assert ids(check(subject, level="restricted", version=f"v1.{first}")) == [check_id]


def test_run_as_user_zero_forbidden_from_1_23() -> None:
    c = good()
    c["securityContext"]["runAsUser"] = 0
    assert check(pod(c), level="restricted", version="v1.22") == []
    [v] = check(pod(c), level="restricted", version="v1.23")
    assert v.message == 'runAsUser=0 (container "app" must not set runAsUser=0)'


def test_windows_pods_exempt_from_linux_only_restricted_checks_from_1_25() -> None:
    windows = pod(container("w", runAsNonRoot=True), os={"name": "windows"})
    assert ids(check(windows, level="restricted", version="v1.24")) == [
        "allowPrivilegeEscalation",
        "capabilities_restricted",
        "seccompProfile_restricted",
    ]
    assert check(windows, level="restricted", version="v1.25") == []


def test_windows_host_process_forbidden() -> None:
    bad = pod(
        container("w", windowsOptions={"hostProcess": True}),
        securityContext={"windowsOptions": {"hostProcess": True}},
    )
    [v] = check(bad, level="baseline", version="v1.0")
    assert v.message == (
        'hostProcess (pod and container "w" must not set securityContext.windowsOptions.hostProcess=true)'
    )


@pytest.mark.parametrize(
    ("sysctl", "first"),
    [
        ("net.ipv4.ip_local_port_range", 0),
        ("net.ipv4.ip_local_reserved_ports", 27),
        ("net.ipv4.tcp_keepalive_time", 29),
        ("net.ipv4.tcp_rmem", 32),
        ("net.ipv4.tcp_notsent_lowat", 37),
    ],
)
def test_sysctls_allowed_list_grows(sysctl: str, first: int) -> None:
    subject = pod(securityContext={"sysctls": [{"name": sysctl, "value": "1"}]})
    if first:
        [v] = check(subject, level="baseline", version=f"v1.{first - 1}")
        assert v.message == f"forbidden sysctls ({sysctl})"
    assert check(subject, level="baseline", version=f"v1.{first}") == []
    assert check(subject, level="baseline") == []


def test_selinux_container_engine_type_allowed_from_1_31() -> None:
    subject = pod(container("c", seLinuxOptions={"type": "container_engine_t"}))
    assert ids(check(subject, level="baseline", version="v1.30")) == ["seLinuxOptions"]
    assert check(subject, level="baseline", version="v1.31") == []


def test_probe_hosts_checked_from_1_34() -> None:
    subject = pod(container("c", image="x"))
    subject["spec"]["containers"][0]["lifecycle"] = {"preStop": {"tcpSocket": {"host": "1.2.3.4", "port": 1}}}
    assert check(subject, level="baseline", version="v1.33") == []
    assert ids(check(subject, level="baseline", version="v1.34")) == ["hostProbesAndHostLifecycle"]


def test_user_namespaces_relax_proc_mount_and_run_as_checks_from_1_35() -> None:
    c = good()
    c["securityContext"].update(procMount="Unmasked", runAsUser=0)
    c["securityContext"].pop("runAsNonRoot")
    subject = pod(c, hostUsers=False)
    assert ids(check(subject, level="baseline", version="v1.34")) == ["procMount"]
    assert check(subject, level="baseline", version="v1.35") == []
    assert ids(check(subject, level="restricted", version="v1.34")) == [
        "procMount",
        "runAsNonRoot",
        "runAsUser",
    ]
    # restricted keeps forbidding procMount for user-namespaced pods (procMount_restricted overrides procMount)
    assert ids(check(subject, level="restricted", version="v1.35")) == ["procMount_restricted"]


def test_seccomp_annotations_before_1_19_fields_after() -> None:
    by_annotation = pod(annotations={"seccomp.security.alpha.kubernetes.io/pod": "unconfined"})
    [v] = check(by_annotation, level="baseline", version="v1.18")
    assert v.message == (
        'seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod="unconfined")'
    )
    assert check(by_annotation, level="baseline", version="v1.19") == []
    by_field = pod(securityContext={"seccompProfile": {"type": "Unconfined"}})
    assert check(by_field, level="baseline", version="v1.18") == []
    [v] = check(by_field, level="baseline", version="v1.19")
    assert (
        v.message == 'seccompProfile (pod must not set securityContext.seccompProfile.type to "Unconfined")'
    )


def test_latest_and_future_versions_mean_the_newest() -> None:
    subject = pod(securityContext={"sysctls": [{"name": "net.ipv4.tcp_notsent_lowat"}]})
    newest = check(subject, level="baseline", version=f"v1.{NEWEST_MINOR}")
    assert check(subject, level="baseline", version="latest") == newest
    assert check(subject, level="baseline", version="v1.99") == newest
    assert check(subject, level="baseline", version="") == newest


@pytest.mark.parametrize(("level", "version"), [("privileged", "latest"), ("Baseline", "latest"), ("baseline", "1.25"),
                                                 ("baseline", "v2.0"), ("baseline", "v1.x")])  # fmt: skip
def test_invalid_level_or_version_is_a_clear_error(level: str, version: str) -> None:
    with pytest.raises(PodSecurityError):
        check(pod(), level=level, version=version)
    assert validate(level, version) != []


def test_validate_accepts_good_settings() -> None:
    assert validate("restricted", "v1.25", [{"controlName": "Seccomp"}]) == []


@pytest.mark.parametrize(
    "subject",
    [
        {},
        {"spec": None},
        {"metadata": "x", "spec": {"containers": "oops", "volumes": [None, 3], "securityContext": []}},
        {"spec": {"containers": [None, {"securityContext": {"capabilities": {"add": "NET_RAW"}}}]}},
        {"spec": {"containers": [{"name": "a", "ports": [{"hostPort": "x"}, 7]}]}},
    ],
)
def test_malformed_pods_do_not_crash(subject: dict[str, Any]) -> None:
    for level in ("baseline", "restricted"):
        for version in ("v1.0", "latest"):
            result = check(subject, level=level, version=version)
            assert all(isinstance(v, Violation) for v in result)


# --- exclude (Kyverno's validate.podSecurity.exclude) ---------------------------------------------------


def test_control_names_map_to_checks() -> None:
    assert control_name("capabilities_restricted") == "Capabilities"
    assert control_name("runAsUser") == "Running as Non-root user"
    assert control_name("restrictedVolumes") == "Volume Types"


def test_exclude_pod_level_control() -> None:
    subject = pod(good(), hostNetwork=True)
    assert ids(check(subject, level="restricted")) == ["hostNamespaces"]
    assert check(subject, level="restricted", exclude=[{"controlName": "Host Namespaces"}]) == []
    # another control's exclusion leaves it alone
    assert ids(check(subject, level="restricted", exclude=[{"controlName": "Sysctls"}])) == ["hostNamespaces"]


def test_exclude_restricted_field_narrows_pod_level_exemption() -> None:
    subject = pod(good(), hostNetwork=True, hostPID=True)
    only_network = [
        {"controlName": "Host Namespaces", "restrictedField": "spec.hostNetwork", "values": ["true"]}
    ]
    [v] = check(subject, level="restricted", exclude=only_network)
    assert v.check == "hostNamespaces"
    assert [f.path for f in v.fields] == ["spec.hostPID"]


def test_exclude_by_image_exempts_only_matching_containers() -> None:
    def with_cap(name: str, image: str) -> dict[str, Any]:
        c = good(name, image)
        c["securityContext"]["capabilities"]["add"] = ["SYS_ADMIN"]
        return c

    exclude = [{"controlName": "Capabilities", "images": ["ghcr.io/kyverno/test-nginx*", "redis*"]}]
    allowed = pod(with_cap("a", "ghcr.io/kyverno/test-nginx:latest"), with_cap("b", "redis:7"))
    assert check(allowed, level="restricted", exclude=exclude) == []
    denied = pod(with_cap("a", "ghcr.io/kyverno/test-nginx:latest"), with_cap("c", "busybox:1.28"))
    [v] = check(denied, level="restricted", exclude=exclude)
    assert v.check == "capabilities_restricted"
    assert v.images == ("busybox:1.28",)
    assert [f.path for f in v.fields] == ["spec.containers[1].securityContext.capabilities.add"]


def test_exclude_image_wildcards_match_whole_names() -> None:
    c = container("c", image="docker.io/nginx:1", privileged=True)
    assert check(
        pod(c), level="baseline", exclude=[{"controlName": "Privileged Containers", "images": ["nginx*"]}]
    )
    assert not check(
        pod(c), level="baseline", exclude=[{"controlName": "Privileged Containers", "images": ["*/nginx:?"]}]
    )


def test_exclude_values_must_cover_every_bad_value() -> None:
    c = container("c", image="app", capabilities={"add": ["SYS_ADMIN", "NET_RAW"]})
    field = "spec.containers[*].securityContext.capabilities.add"
    partial = [
        {"controlName": "Capabilities", "images": ["*"], "restrictedField": field, "values": ["NET_RAW"]}
    ]
    assert ids(check(pod(c), level="baseline", exclude=partial)) == ["capabilities_baseline"]
    full = [
        {
            "controlName": "Capabilities",
            "images": ["*"],
            "restrictedField": field,
            "values": ["NET_*", "SYS_ADMIN"],
        }
    ]
    assert check(pod(c), level="baseline", exclude=full) == []


def test_exclude_restricted_field_must_match_the_offending_field() -> None:
    c = good("c", "app")
    c["securityContext"]["capabilities"] = {"add": ["SYS_ADMIN"]}  # no drop ALL, adds SYS_ADMIN
    only_add = [
        {
            "controlName": "Capabilities",
            "images": ["app"],
            "restrictedField": "spec.containers[*].securityContext.capabilities.add",
            "values": ["SYS_ADMIN"],
        }
    ]
    [v] = check(pod(c), level="restricted", exclude=only_add)
    assert [f.path for f in v.fields] == ["spec.containers[0].securityContext.capabilities.drop"]


def test_exclude_seccomp_pod_and_container_level_together() -> None:
    exclude = [{"controlName": "Seccomp"}, {"controlName": "Seccomp", "images": ["*"]}]
    c = good("container01", "busybox:1.28")
    c["securityContext"].pop("seccompProfile")
    unconfined = pod(c, securityContext={"seccompProfile": {"type": "Unconfined"}})
    assert check(unconfined, level="restricted", exclude=exclude) == []
    c2 = copy.deepcopy(c)
    c2["securityContext"].pop("runAsNonRoot")
    still_bad = pod(c2, securityContext={"seccompProfile": {"type": "Unconfined"}})
    assert ids(check(still_bad, level="restricted", exclude=exclude)) == ["runAsNonRoot"]


def test_pod_level_exclusion_covers_containers_only_through_the_unset_pod_field() -> None:
    implicit = good("a")
    implicit["securityContext"].pop("runAsNonRoot")
    explicit = good("b")
    explicit["securityContext"]["runAsNonRoot"] = False
    exclude = [{"controlName": "Running as Non-root"}]
    # the pod does not set runAsNonRoot: exempting the pod level exempts containers relying on it
    assert check(pod(implicit), level="restricted", exclude=exclude) == []
    # a container explicitly setting runAsNonRoot=false is a container-level matter
    [v] = check(pod(implicit, explicit), level="restricted", exclude=exclude)
    assert [f.path for f in v.fields] == ["spec.containers[1].securityContext.runAsNonRoot"]
    both = exclude + [{"controlName": "Running as Non-root", "images": ["nginx"]}]
    assert check(pod(implicit, explicit), level="restricted", exclude=both) == []


@pytest.mark.parametrize(
    "entry",
    [
        {"controlName": "Bogus"},
        {},
        "Capabilities",
        {"controlName": "Capabilities"},  # container-level control needs images
        {"controlName": "Host Namespaces", "images": ["*"]},  # pod-level control takes none
        {"controlName": "Seccomp", "images": "nginx"},
        {"controlName": "Seccomp", "restrictedField": 3, "values": ["x"]},
        {
            "controlName": "Seccomp",
            "restrictedField": "spec.securityContext.seccompProfile.type",
        },  # no values
        {"controlName": "Seccomp", "values": ["Unconfined"]},  # values without restrictedField
    ],
)
def test_invalid_exclude_entries_are_clear_errors(entry: Any) -> None:
    with pytest.raises(PodSecurityError):
        check(pod(good(), hostNetwork=True), level="restricted", exclude=[entry])
    assert validate("restricted", "latest", [entry]) != []


def test_baseline_rule_cannot_exclude_restricted_only_controls() -> None:
    entry = {"controlName": "Running as Non-root"}
    with pytest.raises(PodSecurityError):
        check(pod(), level="baseline", exclude=[entry])
    assert validate("baseline", "latest", [entry]) != []
    assert validate("restricted", "latest", [entry]) == []
    # controls both levels have are fine at baseline
    assert validate("baseline", "latest", [{"controlName": "Seccomp"}]) == []


# --- upstream's wording in the multi-offender cases -----------------------------------------------------


def test_selinux_many_offenders_sorted_types() -> None:
    def se(name: str, **opts: str) -> dict[str, Any]:
        return container(name, seLinuxOptions=opts)

    subject = pod(
        se("a", type="container_t"),
        se("b", type="container_init_t"),
        se("c", type="container_kvm_t"),
        se("d", type="container_engine_t"),
        se("e", type="bar"),
        se("f", user="bar"),
        se("g", role="baz"),
        securityContext={"seLinuxOptions": {"type": "foo", "user": "bar", "role": "baz"}},
    )
    [v] = check(subject, level="baseline", version="v1.31")
    assert v.detail == (
        'pod and containers "e", "f", "g" set forbidden securityContext.seLinuxOptions: '
        'types "bar", "foo"; user may not be set; role may not be set'
    )


def test_host_ports_many_containers_and_ports() -> None:
    subject = pod(
        {"name": "a", "ports": [{"hostPort": 0}]},
        {"name": "b", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 20}]},
        {"name": "c", "ports": [{"hostPort": 0}, {"hostPort": 10}, {"hostPort": 30}]},
    )
    [v] = check(subject, level="baseline")
    assert v.detail == 'containers "b", "c" use hostPorts 10, 20, 30'


def test_seccomp_annotations_many_sorted() -> None:
    subject = pod(
        container("a"),
        container("b"),
        annotations={
            "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
            "container.seccomp.security.alpha.kubernetes.io/a": "unconfined",
            "container.seccomp.security.alpha.kubernetes.io/b": "unknown",
            "container.seccomp.security.alpha.kubernetes.io/c": "unconfined",  # no such container: ignored
        },
    )
    [v] = check(subject, level="baseline", version="v1.18")
    assert v.detail == (
        'forbidden annotations container.seccomp.security.alpha.kubernetes.io/a="unconfined", '
        'container.seccomp.security.alpha.kubernetes.io/b="unknown", '
        'seccomp.security.alpha.kubernetes.io/pod="unconfined"'
    )


def test_probe_hosts_many_sorted() -> None:
    c = container("a")
    c["readinessProbe"] = {"tcpSocket": {"host": "localhost", "port": 1}}
    c["startupProbe"] = {"httpGet": {"host": "::1", "port": 1}}
    c["lifecycle"] = {"postStart": {"httpGet": {"host": "127.0.0.1", "port": 1}}}
    [v] = check(pod(c), level="baseline")
    assert v.detail == 'container "a" uses probe or lifecycle hosts "127.0.0.1", "::1", "localhost"'


# --- namespace labels ---------------------------------------------------------------------------------

P = "pod-security.kubernetes.io/"


def test_namespace_labels_default_to_privileged_latest() -> None:
    assert policy_from_labels({}) == NamespacePolicy()
    assert policy_from_labels(None) == NamespacePolicy()
    assert str(policy_from_labels({"team": "a"}).enforce) == "privileged:latest"


def test_namespace_labels_per_mode_and_version() -> None:
    policy = policy_from_labels(
        {
            P + "enforce": "baseline",
            P + "enforce-version": "v1.25",
            P + "audit": "restricted",
            P + "warn": "restricted",
        }
    )
    assert policy.enforce == LevelVersion("baseline", "v1.25")
    assert policy.audit == LevelVersion("restricted", "latest")
    assert policy.warn == LevelVersion("restricted", "latest")
    assert policy.errors == ()


def test_warn_follows_a_stricter_enforce_unless_set() -> None:
    policy = policy_from_labels({P + "enforce": "restricted", P + "enforce-version": "v1.30"})
    assert policy.warn == LevelVersion("restricted", "v1.30")
    own_version = policy_from_labels({P + "enforce": "baseline", P + "warn-version": "v1.20"})
    assert own_version.warn == LevelVersion("baseline", "v1.20")
    explicit = policy_from_labels({P + "enforce": "restricted", P + "warn": "baseline"})
    assert explicit.warn == LevelVersion("baseline", "latest")


def test_invalid_labels_fail_closed_for_enforce_open_for_audit_and_warn() -> None:
    policy = policy_from_labels(
        {P + "enforce": "strict", P + "audit": "nope", P + "warn": "", P + "audit-version": "1.25"}
    )
    assert policy.enforce.level == "restricted"
    assert policy.audit == LevelVersion("privileged", "latest")
    assert policy.warn.level == "privileged"  # an invalid enforce does not make warn follow it
    assert len(policy.errors) == 4


def test_pod_level_exclusion_also_covers_init_containers_relying_on_the_pod() -> None:
    init = good("init")
    init["securityContext"].pop("seccompProfile")
    main = good("main")
    main["securityContext"].pop("seccompProfile")
    subject = pod(main, initContainers=[init])
    assert ids(check(subject, level="restricted")) == ["seccompProfile_restricted"]
    assert check(subject, level="restricted", exclude=[{"controlName": "Seccomp"}]) == []
