"""The one-walk pass finder (podsecurity.clear): every check it reports as passing does pass, on the
official fixtures and on randomly altered pods; and a plain hardened pod is answered without running any
check of the newest version."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from admission.podsecurity import check
from admission.podsecurity.clear import plainly_passing
from admission.podsecurity.model import _containers, as_dict, reading
from admission.podsecurity.registry import NEWEST_MINOR, checks_for

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "pod-security" / "testdata"


def _passing_claims_hold(pod: dict[str, Any]) -> int:
    meta, spec = as_dict(pod.get("metadata")), as_dict(pod.get("spec"))
    listed = _containers(spec)
    claimed = plainly_passing(meta, spec, listed)
    with reading(spec):
        for fn in claimed:
            assert fn(meta, spec) is None, (fn.__name__, pod)
    return len(claimed)


def hardened_pod() -> dict[str, Any]:
    container = {
        "name": "app", "image": "registry.example.com/app:1",
        "ports": [{"containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    return {"metadata": {"name": "p", "annotations": {"a": "b"}},
            "spec": {"containers": [container, {**container, "name": "b"}],
                     "initContainers": [{**container, "name": "init"}],
                     "volumes": [{"name": "c", "configMap": {"name": "x"}}, {"name": "t", "emptyDir": {}}],
                     "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}}


def test_a_hardened_pod_is_answered_by_the_walk() -> None:
    pod = hardened_pod()
    newest = {fn for level in ("baseline", "restricted") for _, fn in checks_for(level, NEWEST_MINOR)}
    meta, spec = pod["metadata"], pod["spec"]
    assert newest <= set(plainly_passing(meta, spec, _containers(spec)))
    assert check(pod, level="restricted") == []


# Values that make checks fail, or are odd enough to be left to the checks.
ODD: list[Any] = [True, False, 0, 1, "0", None, "", "Default", "Unmasked", "ALL", "NET_BIND_SERVICE", "SYS_ADMIN",
                  "RuntimeDefault", "Localhost", "Unconfined", "runtime/default", "unconfined", "windows", [], {},
                  ["ALL"], ["NET_BIND_SERVICE"], ["SYS_ADMIN"], {"type": "Unconfined"}, {"type": "RuntimeDefault"},
                  {"user": "u"}, {"type": "container_t"}, {"hostProcess": True}, {"host": "evil"},
                  [{"hostPort": 80}], [{"hostPort": 0}], [{"name": "kernel.msgmax"}], {"path": "/"}]
CONTAINER_KEYS = ["privileged", "capabilities", "procMount", "seLinuxOptions", "seccompProfile", "windowsOptions",
                  "allowPrivilegeEscalation", "runAsNonRoot", "runAsUser", "appArmorProfile"]
POD_KEYS = ["hostNetwork", "hostPID", "hostIPC", "hostUsers", "os"]
POD_SC_KEYS = ["runAsNonRoot", "runAsUser", "seccompProfile", "seLinuxOptions", "appArmorProfile", "sysctls",
               "windowsOptions"]


def altered(rng: random.Random, pod: dict[str, Any]) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    spec = pod["spec"]
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        containers = spec["containers"] + spec.get("initContainers", [])
        c = rng.choice(containers)
        if roll < 0.45:
            sc = c.setdefault("securityContext", {})
            if isinstance(sc, dict):
                sc[rng.choice(CONTAINER_KEYS)] = rng.choice(ODD)
        elif roll < 0.55:
            c["securityContext"] = rng.choice([None, {}, "x", {"capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}}])
        elif roll < 0.65:
            c[rng.choice(["ports", "livenessProbe", "startupProbe", "lifecycle"])] = rng.choice(
                [[{"hostPort": 80}], {"tcpSocket": {"host": "h"}}, {"postStart": {"httpGet": {"host": "h"}}},
                 [{"hostPort": False}], {"httpGet": {"host": ""}}, None])
        elif roll < 0.75:
            spec[rng.choice(POD_KEYS)] = rng.choice(ODD)
        elif roll < 0.9:
            sc = spec.setdefault("securityContext", {})
            sc[rng.choice(POD_SC_KEYS)] = rng.choice(ODD)
        elif roll < 0.95:
            spec["volumes"].append(rng.choice([{"name": "h", "hostPath": {"path": "/"}}, {"name": "n", "nfs": {}},
                                               {"name": "e"}, {"name": "s", "secret": {}}]))
        else:
            pod["metadata"]["annotations"][rng.choice([
                "container.apparmor.security.beta.kubernetes.io/app", "seccomp.security.alpha.kubernetes.io/pod",
                "x"])] = rng.choice(["unconfined", "runtime/default", "localhost/p", ""])
    return pod


def test_claims_hold_on_altered_pods() -> None:
    rng = random.Random(11)
    claims = 0
    for _ in range(3000):
        claims += _passing_claims_hold(altered(rng, hardened_pod()))
    assert claims > 3000 * 10  # most checks are still claimed on pods with one or two changes


def test_claims_hold_on_the_official_fixtures() -> None:
    if not TESTDATA.is_dir():
        pytest.skip("Pod Security fixtures absent (shared/conformance/pod-security/testdata)")
    files = sorted(TESTDATA.glob("*/v1.*/*/*.yaml"))
    assert files
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in files:
        doc = yaml.load(path.read_text(), Loader=loader)  # noqa: S506 - a safe loader
        if isinstance(doc, dict):
            _passing_claims_hold(doc)


def test_odd_annotation_keys_are_left_to_the_check() -> None:
    pod = hardened_pod()
    pod["metadata"]["annotations"] = {1: "x"}  # YAML can give such keys: the check itself decides
    meta, spec = pod["metadata"], pod["spec"]
    from admission.podsecurity.baseline import app_armor_1_0

    assert app_armor_1_0 not in plainly_passing(meta, spec, _containers(spec))
