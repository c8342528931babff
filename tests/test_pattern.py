"""validate.pattern / anyPattern matching, pinned to Kyverno.

Sources checked: kyverno/kyverno pkg/engine/validate/validate.go (MatchPattern, validateMap's two
phases, validateArrayOfMaps), pkg/engine/anchor/handlers.go (one handler per anchor),
pkg/engine/validate/validate_test.go (TestConditionalAnchorWithMultiplePatterns, Test_global_anchor,
TestValidateMap_*), pkg/engine/handlers/validation/validate_resource.go (skip/fail/error and the
failure text), and the anchors section of https://kyverno.io/docs/writing-policies/validate/.
"""

import json
from pathlib import Path

import pytest
import yaml

from admission.engines.yaml.pattern import (
    PatternResult,
    failure_message,
    match_any_pattern,
    match_pattern,
    parse_anchor,
    pattern_errors,
)

# TestConditionalAnchorWithMultiplePatterns (cases 1-54), verbatim. Kyverno's helper asserts nothing for
# its "fail" rows; five of them use a failing global anchor <(...), which MatchPattern turns into a skip
# (anchor.IsGlobalAnchorError -> PatternError{Skip: true}) as the docs describe, so they are pinned as skip.
GLOBAL_ANCHOR_SKIPS = {23, 25, 27, 30, 35}

KYVERNO_CASES = [
    (
        1,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx:1.2.3", "imagePullPolicy": "Always"}]}}',
        "skip",
    ),
    (
        2,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        3,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx", "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        4,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx", "imagePullPolicy": "Never"}]}}',
        "pass",
    ),
    (
        5,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Never"}]}}',
        "pass",
    ),
    (
        6,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx:1.2.3", "imagePullPolicy": "Never"}]}}',
        "skip",
    ),
    (
        7,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx", "imagePullPolicy": "Always"}, {"name": "busybox", "image": "busybox:1.28", "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        8,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Always"}, {"name": "busybox", "image": "busybox:1.28", "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        9,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx:1.2.3", "imagePullPolicy": "Always"}, {"name": "busybox", "image": "busybox:1.28", "imagePullPolicy": "Always"}]}}',
        "skip",
    ),
    (
        10,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx", "imagePullPolicy": "Never"}, {"name": "busybox", "image": "busybox:1.28", "imagePullPolicy": "Always"}]}}',
        "pass",
    ),
    (
        11,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Never"}, {"name": "busybox", "image": "busybox:1.28", "imagePullPolicy": "Always"}]}}',
        "pass",
    ),
    (
        12,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx:1.2.3", "imagePullPolicy": "Never"}, {"name": "busybox", "image": "busybox:1.28", "imagePullPolicy": "Always"}]}}',
        "skip",
    ),
    (
        13,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "busybox", "image": "busybox:1.28", "imagePullPolicy": "Always"}, {"name": "nginx", "image": "nginx", "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        14,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "busybox", "image": "busybox:1.28", "imagePullPolicy": "Always"}, {"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        15,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "busybox", "image": "busybox:1.28", "imagePullPolicy": "Always"}, {"name": "nginx", "image": "nginx:1.2.3", "imagePullPolicy": "Always"}]}}',
        "skip",
    ),
    (
        16,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "busybox", "image": "busybox:1.28", "imagePullPolicy": "Always"}, {"name": "nginx", "image": "nginx", "imagePullPolicy": "Never"}]}}',
        "pass",
    ),
    (
        17,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "busybox", "image": "busybox:1.28", "imagePullPolicy": "Always"}, {"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Never"}]}}',
        "pass",
    ),
    (
        18,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "busybox", "image": "busybox:1.28", "imagePullPolicy": "Always"}, {"name": "nginx", "image": "nginx:1.2.3", "imagePullPolicy": "Never"}]}}',
        "skip",
    ),
    (
        19,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "busybox", "image": "busybox", "imagePullPolicy": "Always"}, {"name": "nginx", "image": "nginx", "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        20,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "busybox", "image": "busybox:latest", "imagePullPolicy": "Always"}, {"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        21,
        '{"spec": {"containers": [{"name": "*", "(image)": "*:latest | !*:*", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "busybox", "image": "busybox:1.2.3", "imagePullPolicy": "Always"}, {"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "IfNotPresent"}]}}',
        "pass",
    ),
    (
        22,
        '{"spec": {"containers": [{"name": "*", "(image)": "!*:* | *:latest", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        23,
        '{"spec": {"containers": [{"name": "*", "<(image)": "*:latest", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx", "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        24,
        '{"spec": {"containers": [{"name": "*", "<(image)": "*:latest", "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        25,
        '{"spec": {"containers": [{"name": "*", "<(image)": "nginx", "env": [{"<(name)": "foo", "<(value)": "bar"}], "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx", "env": [{"name": "foo1", "value": "bar"}], "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        26,
        '{"spec": {"containers": [{"name": "*", "<(image)": "nginx", "env": [{"<(name)": "foo", "<(value)": "bar"}], "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx", "env": [{"name": "foo", "value": "bar"}], "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        27,
        '{"spec": {"containers": [{"name": "*", "env": [{"<(name)": "foo", "<(value)": "bar"}], "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx", "env": [{"name": "foo1", "value": "bar"}], "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        28,
        '{"spec": {"containers": [{"name": "*", "env": [{"<(name)": "foo", "<(value)": "bar"}], "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx", "env": [{"name": "foo", "value": "bar"}], "imagePullPolicy": "IfNotpresent"}]}}',
        "pass",
    ),
    (
        29,
        '{"spec": {"containers": [{"name": "*", "env": [{"<(name)": "foo", "<(value)": "bar"}], "imagePullPolicy": "!Always"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx", "env": [{"name": "foo", "value": "bar"}], "imagePullPolicy": "Always"}]}}',
        "fail",
    ),
    (
        30,
        '{"metadata": {"<(name)": "nginx"}, "spec": {"imagePullSecrets": [{"name": "regcred"}]}}',
        '{"metadata": {"name": "somename"}, "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}], "imagePullSecrets": [{"name": "cred"}]}}',
        "fail",
    ),
    (
        31,
        '{"metadata": {"<(name)": "nginx"}, "spec": {"imagePullSecrets": [{"name": "regcred"}]}}',
        '{"metadata": {"name": "nginx"}, "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}], "imagePullSecrets": [{"name": "cred"}]}}',
        "fail",
    ),
    (
        32,
        '{"metadata": {"labels": {"<(foo)": "bar"}}, "spec": {"containers": [{"name": "nginx", "image": "!*:latest"}]}}',
        '{"metadata": {"name": "nginx", "labels": {"foo": "bar"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}',
        "pass",
    ),
    (
        33,
        '{"metadata": {"labels": {"<(foo)": "bar"}}, "spec": {"containers": [{"name": "nginx", "image": "!*:latest"}]}}',
        '{"metadata": {"name": "nginx", "labels": {"foo": "bar"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx:latest"}]}}',
        "fail",
    ),
    (
        34,
        '{"spec": {"containers": [{"name": "*", "<(image)": "nginx"}], "imagePullSecrets": [{"name": "my-registry-secret"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx"}], "imagePullSecrets": [{"name": "cred"}]}}',
        "fail",
    ),
    (
        35,
        '{"spec": {"containers": [{"name": "*", "<(image)": "nginx"}], "imagePullSecrets": [{"name": "my-registry-secret"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "somepod"}], "imagePullSecrets": [{"name": "cred"}]}}',
        "fail",
    ),
    (
        36,
        '{"spec": {"containers": [{"name": "*", "<(image)": "nginx"}], "imagePullSecrets": [{"name": "my-registry-secret"}]}}',
        '{"spec": {"containers": [{"name": "nginx", "image": "nginx"}], "imagePullSecrets": [{"name": "my-registry-secret"}]}}',
        "pass",
    ),
    (
        37,
        '{"metadata": {"labels": {"allow-docker": "true"}}, "(spec)": {"(volumes)": [{"(hostPath)": {"path": "/var/run/docker.sock"}}]}}',
        '{"metadata": {"labels": {"run": "nginx"}, "name": "nginx"}, "spec": {"containers": [{"image": "nginx", "name": "nginx"}]}}',
        "skip",
    ),
    (
        38,
        '{"metadata": {"labels": {"allow-docker": "true"}}, "(spec)": {"(volumes)": [{"(hostPath)": {"path": "/var/run/docker.sock"}}]}}',
        '{"metadata": {"labels": {"run": "nginx"}, "name": "nginx"}, "spec": {"containers": [{"image": "nginx", "name": "nginx"}], "volumes": [{"hostPath": {"path": "/var/run/docker.sock"}}]}}',
        "fail",
    ),
    (
        39,
        '{"metadata": {"labels": {"allow-docker": "true"}}, "(spec)": {"(volumes)": [{"(hostPath)": {"path": "/var/run/docker.sock"}}]}}',
        '{"metadata": {"labels": {"run": "nginx"}, "name": "nginx"}, "spec": {"containers": [{"image": "nginx", "name": "nginx"}], "volumes": [{"hostPath": {"path": "/randome/value"}}]}}',
        "skip",
    ),
    (
        40,
        '{"metadata": {"labels": {"allow-docker": "true"}}, "(spec)": {"(volumes)": [{"(hostPath)": {"path": "/var/run/docker.sock"}}]}}',
        '{"metadata": {"labels": {"run": "nginx", "allow-docker": "true"}, "name": "nginx"}, "spec": {"containers": [{"image": "nginx", "name": "nginx"}], "volumes": [{"hostPath": {"path": "/var/run/docker.sock"}}]}}',
        "pass",
    ),
    (
        41,
        '{"metadata": {"labels": {"allow-docker": "true"}}, "(spec)": {"(volumes)": [{"(hostPath)": {"path": "/var/run/docker.sock"}}]}}',
        '{"metadata": {"labels": {"run": "nginx", "allow-docker": "false"}, "name": "nginx"}, "spec": {"containers": [{"image": "nginx", "name": "nginx"}], "volumes": [{"hostPath": {"path": "/var/run/docker.sock"}}]}}',
        "fail",
    ),
    (
        42,
        '{"metadata": {"labels": {"allow-docker": "true"}}, "(spec)": {"(volumes)": [{"(hostPath)": {"path": "/var/run/docker.sock"}}]}}',
        '{"metadata": {"labels": {"run": "nginx"}, "name": "nginx"}, "spec": {"containers": [{"image": "nginx", "name": "nginx"}], "volumes": [{"hostPath": {"path": "/var/run/docker.sock"}}]}}',
        "fail",
    ),
    (
        43,
        '{"spec": {"=(volumes)": [{"(name)": "!cache-volume", "=(emptyDir)": {"sizeLimit": "?*"}}]}}',
        '{"spec": {"volumes": [{"name": "cache-volume", "emptyDir": {}}]}}',
        "skip",
    ),
    (
        44,
        '{"spec": {"=(initContainers)": [{"(name)": "!istio-init", "=(securityContext)": {"=(runAsUser)": ">0"}}], "=(containers)": [{"=(securityContext)": {"=(runAsUser)": ">0"}}]}}',
        '{"spec": {"initContainers": [{"name": "nginx", "securityContext": {"runAsUser": 1000}}], "containers": [{"name": "nginx", "image": "nginx"}]}}',
        "pass",
    ),
    (
        45,
        '{"spec": {"=(initContainers)": [{"(name)": "!istio-init", "=(securityContext)": {"=(runAsUser)": ">0"}}], "=(containers)": [{"=(securityContext)": {"=(runAsUser)": ">0"}}]}}',
        '{"spec": {"initContainers": [{"name": "nginx", "securityContext": {"runAsUser": 0}}], "containers": [{"name": "nginx", "image": "nginx"}]}}',
        "fail",
    ),
    (
        46,
        '{"spec": {"=(initContainers)": [{"(name)": "!istio-init", "=(securityContext)": {"=(runAsUser)": ">0"}}], "=(containers)": [{"=(securityContext)": {"=(runAsUser)": ">0"}}]}}',
        '{"spec": {"initContainers": [{"name": "istio-init", "securityContext": {"runAsUser": 0}}], "containers": [{"securityContext": {"runAsUser": 1000}}]}}',
        "pass",
    ),
    (
        47,
        '{"spec": {"=(initContainers)": [{"(name)": "!istio-init", "=(securityContext)": {"=(runAsUser)": ">0"}}], "=(containers)": [{"=(securityContext)": {"=(runAsUser)": ">0"}}]}}',
        '{"spec": {"initContainers": [{"name": "istio-init", "securityContext": {"runAsUser": 1000}}], "containers": [{"securityContext": {"runAsUser": 0}}]}}',
        "fail",
    ),
    (
        48,
        '{"spec": {"=(initContainers)": [{"(name)": "!istio-init", "=(securityContext)": {"=(runAsUser)": ">0"}}], "=(containers)": [{"=(securityContext)": {"=(runAsUser)": ">0"}}]}}',
        '{"spec": {"containers": [{"securityContext": {"runAsUser": 1000}}]}}',
        "pass",
    ),
    (
        49,
        '{"spec": {"=(initContainers)": [{"(name)": "!istio-init", "=(securityContext)": {"=(runAsUser)": ">0"}}], "=(containers)": [{"=(securityContext)": {"=(runAsUser)": ">0"}}]}}',
        '{"spec": {"containers": [{"securityContext": {"runAsUser": 0}}]}}',
        "fail",
    ),
    (
        50,
        '{"spec": {"=(initContainers)": [{"(name)": "!istio-init", "=(securityContext)": {"=(runAsUser)": ">0"}}], "=(containers)": [{"=(securityContext)": {"=(runAsUser)": ">0"}}]}}',
        '{"spec": {"initContainers": [{"name": "istio-init", "securityContext": {"runAsUser": 0}}], "containers": [{"name": "nginx", "image": "nginx"}]}}',
        "pass",
    ),
    (
        51,
        '{"spec": {"=(volumes)": [{"(name)": "!credential-socket&!istio-data&!istio-envoy&!workload-certs&!workload-socket", "=(emptyDir)": {"sizeLimit": "?*"}}]}}',
        '{"spec": {"volumes": [{"name": "credential-socket", "emptyDir": {"sizeLimit": "1Gi"}}]}}',
        "skip",
    ),
    (
        52,
        '{"spec": {"=(volumes)": [{"(name)": "!credential-socket&!istio-data&!istio-envoy&!workload-certs&!workload-socket", "=(emptyDir)": {"sizeLimit": "?*"}}]}}',
        '{"spec": {"volumes": [{"name": "cache-volume", "emptyDir": {"sizeLimit": "1Gi"}}]}}',
        "pass",
    ),
    (
        53,
        '{"spec": {"=(volumes)": [{"(name)": "!credential-socket&!istio-data&!istio-envoy&!workload-certs&!workload-socket", "=(emptyDir)": {"sizeLimit": "?*"}}]}}',
        '{"spec": {"volumes": [{"name": "cache-volume"}]}}',
        "pass",
    ),
    (
        54,
        '{"spec": {"=(volumes)": [{"(name)": "!credential-socket&!istio-data&!istio-envoy&!workload-certs&!workload-socket", "=(emptyDir)": {"sizeLimit": "?*"}}]}}',
        '{"spec": {"volumes": [{"name": "cache-volume", "emptyDir": {}}]}}',
        "fail",
    ),
]


@pytest.mark.parametrize(
    ("n", "pattern", "resource", "status"), KYVERNO_CASES, ids=[f"kyverno-{c[0]}" for c in KYVERNO_CASES]
)
def test_kyverno_conditional_anchor_cases(n, pattern, resource, status):
    expected = "skip" if n in GLOBAL_ANCHOR_SKIPS else status
    result = match_pattern(json.loads(resource), json.loads(pattern))
    assert result.status == expected
    if expected == "fail":
        assert result.path.startswith("/") and result.path.endswith("/")
    else:
        assert result.path == ""


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"app": "web", "team.example.com/owner": "a"}},
    "spec": {
        "containers": [
            {"name": "a", "image": "nginx:1.25", "imagePullPolicy": "Always"},
            {"name": "b", "image": "busybox:latest", "securityContext": {"privileged": False}},
        ]
    },
}


# Global anchors (Test_global_anchor): a failing <() skips, but only the element it sits in.
@pytest.mark.parametrize(
    ("images", "policy", "status"),
    [
        (["nginx:v1"], "Always", "skip"),
        (["nginx:latest"], "Always", "fail"),
        (["nginx:latest"], "IfNotPresent", "pass"),
        (["nginx:latest", "nginx:v2"], "IfNotPresent", "pass"),  # check_global_anchor_mixed
    ],
)
def test_global_anchor(images, policy, status):
    pattern = {"spec": {"containers": [{"name": "*", "<(image)": "*:latest", "imagePullPolicy": "!Always"}]}}
    resource = {
        "spec": {"containers": [{"name": "n", "image": i, "imagePullPolicy": policy} for i in images]}
    }
    assert match_pattern(resource, pattern).status == status


def test_global_anchor_elsewhere_skips_the_whole_rule():
    # <() on metadata is evaluated before spec (global keys go first) and skips the rule
    pattern = {"metadata": {"<(name)": "nginx"}, "spec": {"imagePullSecrets": [{"name": "regcred"}]}}
    other = {"metadata": {"name": "other"}, "spec": {"imagePullSecrets": [{"name": "x"}]}}
    same = {"metadata": {"name": "nginx"}, "spec": {"imagePullSecrets": [{"name": "x"}]}}
    assert match_pattern(other, pattern).status == "skip"
    assert match_pattern(same, pattern) == PatternResult(
        "fail", "/spec/imagePullSecrets/0/name/", match_pattern(same, pattern).message
    )


@pytest.mark.parametrize(
    ("pattern", "resource", "status", "path"),
    [
        # a failing leaf reports the path of the key, with a trailing slash
        ({"spec": {"containers": [{"image": "!*:latest"}]}}, POD, "fail", "/spec/containers/1/image/"),
        ({"spec": {"containers": [{"image": "*:*"}]}}, POD, "pass", ""),
        # "*" means present and not null; a missing one reports the parent's path (TestValidateMap_AsteriskFieldIsMissing)
        ({"spec": {"containers": [{"name": "*", "livenessProbe": "*"}]}}, POD, "fail", "/spec/containers/0/"),
        ({"spec": {"x": "*"}}, {"spec": {"x": None}}, "fail", "/spec/"),
        ({"spec": {"x": "*"}}, {"spec": {"x": ""}}, "pass", ""),
        ({"spec": {"x": "*"}}, {"spec": {"x": []}}, "pass", ""),
        # "?*" needs a non-empty value
        ({"metadata": {"labels": {"app": "?*"}}}, POD, "pass", ""),
        ({"metadata": {"labels": {"tier": "?*"}}}, POD, "fail", "/metadata/labels/tier/"),
        # a map pattern against a missing key fails at that key
        ({"spec": {"securityContext": {"runAsNonRoot": True}}}, POD, "fail", "/spec/securityContext/"),
        # equality anchor: applies only when present (even when null)
        ({"spec": {"=(securityContext)": {"runAsNonRoot": True}}}, POD, "pass", ""),
        ({"spec": {"=(hostNetwork)": False}}, {"spec": {"hostNetwork": True}}, "fail", "/spec/hostNetwork/"),
        ({"spec": {"=(hostNetwork)": False}}, {"spec": {"hostNetwork": None}}, "fail", "/spec/hostNetwork/"),
        (
            {"spec": {"containers": [{"=(securityContext)": {"=(privileged)": False}}]}},
            {"spec": {"containers": [{"securityContext": {"privileged": True}}]}},
            "fail",
            "/spec/containers/0/securityContext/privileged/",
        ),
        # negation anchor: the key must be absent (null counts as present)
        ({"spec": {"X(hostPID)": "null"}}, {"spec": {}}, "pass", ""),
        ({"spec": {"X(hostPID)": "null"}}, {"spec": {"hostPID": False}}, "fail", "/spec/hostPID/"),
        ({"spec": {"X(hostPID)": "null"}}, {"spec": {"hostPID": None}}, "fail", "/spec/hostPID/"),
        (
            {"spec": {"=(volumes)": [{"X(hostPath)": "null"}]}},
            {"spec": {"volumes": [{"name": "a"}, {"name": "b", "hostPath": {"path": "/"}}]}},
            "fail",
            "/spec/volumes/1/hostPath/",
        ),
        # existence anchor: one list element must match each pattern element
        (
            {"spec": {"^(containers)": [{"image": "nginx:*"}]}},
            POD,
            "pass",
            "",
        ),
        (
            {"spec": {"^(containers)": [{"image": "redis:*"}]}},
            POD,
            "fail",
            "/spec/containers/",
        ),
        ({"spec": {"^(initContainers)": [{"image": "redis:*"}]}}, POD, "pass", ""),
        (
            {"spec": {"^(containers)": [{"image": "redis:*"}]}},
            {"spec": {"containers": {"image": "redis:1"}}},
            "fail",
            "/spec/containers/",
        ),
        # conditional anchor: a missing key or mismatching value skips
        ({"spec": {"(hostNetwork)": True, "hostPort": ">1024"}}, {"spec": {}}, "skip", ""),
        (
            {"spec": {"(hostNetwork)": True, "hostPort": ">1024"}},
            {"spec": {"hostNetwork": False}},
            "skip",
            "",
        ),
        (
            {"spec": {"(hostNetwork)": True, "hostPort": ">1024"}},
            {"spec": {"hostNetwork": True, "hostPort": 80}},
            "fail",
            "/spec/hostPort/",
        ),
        (
            {"spec": {"(hostNetwork)": True, "hostPort": ">1024"}},
            {"spec": {"hostNetwork": True, "hostPort": 8080}},
            "pass",
            "",
        ),
        # a scalar pattern on a list: every element must match; an empty list passes
        ({"spec": {"args": "!*--privileged*"}}, {"spec": {"args": ["a", "b"]}}, "pass", ""),
        (
            {"spec": {"args": "!*--privileged*"}},
            {"spec": {"args": ["a", "--privileged=true"]}},
            "fail",
            "/spec/args/",
        ),
        ({"spec": {"args": "!*--privileged*"}}, {"spec": {"args": []}}, "pass", ""),
        ({"spec": {"args": ["!x"]}}, {"spec": {"args": ["a", "x"]}}, "fail", "/spec/args/"),
        # a list pattern's first map must be matched by every element; an empty resource list passes
        ({"spec": {"containers": [{"name": "a*"}]}}, POD, "fail", "/spec/containers/1/name/"),
        ({"spec": {"containers": [{"name": "a*"}]}}, {"spec": {"containers": []}}, "pass", ""),
        # structure mismatches fail at the current path
        (
            {"spec": {"containers": [{"name": "a"}]}},
            {"spec": {"containers": "a"}},
            "fail",
            "/spec/containers/",
        ),
        ({"spec": {"a": {"b": 1}}}, {"spec": {"a": 5}}, "fail", "/spec/a/"),
        # an empty list pattern is an error Kyverno reports at its path
        ({"spec": {"a": []}}, {"spec": {"a": [1]}}, "fail", "/spec/a/"),
        # null pattern: null, "", 0, false match; maps do not
        ({"spec": {"a": None}}, {"spec": {}}, "pass", ""),
        ({"spec": {"a": None}}, {"spec": {"a": ""}}, "pass", ""),
        ({"spec": {"a": None}}, {"spec": {"a": {}}}, "fail", "/spec/a/"),
        # scalars compared the Kyverno way
        ({"spec": {"hostNetwork": "false"}}, {"spec": {"hostNetwork": False}}, "pass", ""),
        ({"spec": {"replicas": ">1"}}, {"spec": {"replicas": 3}}, "pass", ""),
        ({"spec": {"replicas": "1-3"}}, {"spec": {"replicas": 5}}, "fail", "/spec/replicas/"),
        ({"spec": {"memory": "<=1Gi"}}, {"spec": {"memory": "1024Mi"}}, "pass", ""),
    ],
)
def test_match_pattern(pattern, resource, status, path):
    result = match_pattern(resource, pattern)
    assert (result.status, result.path) == (status, path)
    if status != "pass":
        assert result.message


def test_a_skipped_sibling_list_does_not_skip_when_another_applies():
    # test-46 shape: =(initContainers) all skipped by the condition, =(containers) applies and passes
    pattern = {
        "spec": {
            "=(initContainers)": [{"(name)": "!istio-init", "=(securityContext)": {"=(runAsUser)": ">0"}}],
            "=(containers)": [{"=(securityContext)": {"=(runAsUser)": ">0"}}],
        }
    }
    only_skipped = {"spec": {"initContainers": [{"name": "istio-init"}]}}
    assert (
        match_pattern(
            only_skipped, {"spec": {"=(initContainers)": pattern["spec"]["=(initContainers)"]}}
        ).status
        == "skip"
    )
    both = {"spec": {"initContainers": [{"name": "istio-init"}], "containers": [{"name": "c"}]}}
    assert match_pattern(both, pattern).status == "pass"


def test_negation_before_a_skip_fails():
    # anchors run in key order: "(" sorts before "X(", so a skip found first wins
    pattern = {"spec": {"(hostNetwork)": True, "X(hostPID)": "null"}}
    assert match_pattern({"spec": {"hostNetwork": False, "hostPID": True}}, pattern).status == "skip"
    assert match_pattern({"spec": {"hostNetwork": True, "hostPID": True}}, pattern).status == "fail"


def test_missing_existence_key_with_another_failure_is_an_error():
    # MatchPattern: a plain failure while an anchored key (^() here) was never found -> no path -> RuleError
    pattern = {"spec": {"^(containers)": [{"image": "nginx"}], "hostNetwork": False}}
    result = match_pattern({"spec": {"hostNetwork": True}}, pattern)
    assert result.status == "error"
    assert result.path == ""


def test_list_of_lists_length_mismatch_is_an_error():
    result = match_pattern({"a": [[1]]}, {"a": [[1], [2]]})
    assert result.status == "error"


def test_add_anchor_is_a_literal_key_in_validate_and_rejected_at_load():
    pattern = {"metadata": {"+(annotations)": {"a": "b"}}}
    assert match_pattern({"metadata": {"annotations": {"a": "b"}}}, pattern).status == "fail"
    assert pattern_errors(pattern) == [
        "/metadata/+(annotations): unsupported anchor +(annotations) in a validate pattern"
    ]


def test_pattern_errors():
    assert pattern_errors({"spec": {"=(a)": 1, "X(b)": None, "(c)": 1, "<(d)": 1, "^(e)": [{"f": 1}]}}) == []
    assert pattern_errors({"spec": {"^(e)": []}}) == [
        "/spec/^(e): existence anchor should have a non-empty list value"
    ]
    assert pattern_errors({"spec": {"^(e)": {"f": 1}}}) == [
        "/spec/^(e): existence anchor should have a non-empty list value"
    ]


@pytest.mark.parametrize(
    ("key", "anchor"),
    [
        ("(name)", ("", "name")),
        ("=(name)", ("=", "name")),
        ("X(name)", ("X", "name")),
        ("^(name)", ("^", "name")),
        ("<(name)", ("<", "name")),
        ("+(name)", ("+", "name")),
        (" (name) ", ("", "name")),
        (
            "=(container.apparmor.security.beta.kubernetes.io/*)",
            ("=", "container.apparmor.security.beta.kubernetes.io/*"),
        ),
        ("name", None),
        ("()", None),
        ("Y(name)", None),
    ],
)
def test_parse_anchor(key, anchor):
    assert parse_anchor(key) == anchor


def test_wildcard_label_keys_expand_to_the_resource_key():
    # pkg/engine/wildcards ExpandInMetadata: the pattern key "team.*/owner" becomes the resource's key
    pattern = {"metadata": {"labels": {"team.*/owner": "?*"}}}
    assert match_pattern(POD, pattern).status == "pass"
    pattern = {"metadata": {"labels": {"team.*/owner": "b"}}}
    assert match_pattern(POD, pattern).path == "/metadata/labels/team.example.com/owner/"
    # no resource key matches: the wildcard key stays, and is looked up literally
    pattern = {"metadata": {"labels": {"other.*/x": "?*"}}}
    assert match_pattern(POD, pattern).path == "/metadata/labels/other.*/x/"
    # anchors are kept on expanded keys
    annotated = {
        "metadata": {"annotations": {"container.apparmor.security.beta.kubernetes.io/c": "unconfined"}}
    }
    pattern = {
        "=(metadata)": {
            "=(annotations)": {
                "=(container.apparmor.security.beta.kubernetes.io/*)": "runtime/default | localhost/*"
            }
        }
    }
    assert match_pattern(annotated, pattern).status == "fail"
    annotated["metadata"]["annotations"]["container.apparmor.security.beta.kubernetes.io/c"] = "localhost/p"
    assert match_pattern(annotated, pattern).status == "pass"
    assert (
        "=(container.apparmor.security.beta.kubernetes.io/*)" in pattern["=(metadata)"]["=(annotations)"]
    )  # input untouched


def test_any_pattern():
    patterns = [
        {"spec": {"containers": [{"image": "redis:*"}]}},
        {"spec": {"containers": [{"name": "?*"}]}},
    ]
    result = match_any_pattern(POD, patterns)
    assert result.status == "pass"
    assert [a.status for a in result.attempts] == ["fail", "pass"]

    failing = [{"spec": {"hostNetwork": True}}, {"spec": {"containers": [{"image": "redis:*"}]}}]
    result = match_any_pattern(POD, failing)
    assert result.status == "fail"
    assert result.path == "/spec/hostNetwork/"
    assert failure_message("r", "need redis", result, any_pattern=True) == (
        "validation error: need redis. rule r[0] failed at path /spec/hostNetwork/ "
        "rule r[1] failed at path /spec/containers/0/image/"
    )

    skipping = [{"spec": {"(hostNetwork)": True}}, {"spec": {"(hostPID)": True}}]
    assert match_any_pattern(POD, skipping).status == "skip"
    assert match_any_pattern(POD, [skipping[0], failing[0]]).status == "fail"
    assert match_any_pattern(POD, {"not": "a list"}).status == "error"


def test_failure_message():
    result = match_pattern(POD, {"spec": {"containers": [{"image": "!*:latest"}]}})
    assert failure_message("no-latest", "Using latest is not allowed", result) == (
        "validation error: Using latest is not allowed. rule no-latest failed at path /spec/containers/1/image/"
    )
    assert failure_message("no-latest", "Ends with a dot.", result).startswith(
        "validation error: Ends with a dot. rule"
    )
    assert failure_message("no-latest", "", result) == (
        "validation error: rule no-latest failed at path /spec/containers/1/image/"
    )


# --- the real community policies ------------------------------------------------------------------

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "kyverno-policies"


def _suite() -> Path:
    if not CONFORMANCE.is_dir():
        pytest.skip(f"conformance suite not present at {CONFORMANCE}")
    return CONFORMANCE


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def _patterns(rule: dict) -> list[object]:
    validate = rule.get("validate") or {}
    found = []
    if "pattern" in validate:
        found.append(validate["pattern"])
    found.extend(validate.get("anyPattern") or [])
    for each in validate.get("foreach") or []:
        if "pattern" in each:
            found.append(each["pattern"])
        found.extend(each.get("anyPattern") or [])
    return found


@pytest.mark.conformance
def test_every_community_pattern_is_understood():
    root = _suite()
    pods = [
        d
        for f in root.rglob(".kyverno-test/*.yaml")
        if f.name != "kyverno-test.yaml"
        for d in _docs(f)
        if d.get("kind") == "Pod"
    ]
    assert pods, "no Pod resources found in the suite"
    seen = 0
    for policy_file in root.rglob("*.yaml"):
        if ".kyverno-test" in policy_file.parts:
            continue
        for doc in _docs(policy_file):
            if doc.get("kind") not in ("ClusterPolicy", "Policy"):
                continue
            for rule in doc["spec"].get("rules", []):
                for pattern in _patterns(rule):
                    seen += 1
                    assert pattern_errors(pattern) == [], f"{policy_file.name}/{rule['name']}"
                    for pod in pods:
                        assert match_pattern(pod, pattern).status in ("pass", "fail", "skip")
    assert seen >= 30, f"only {seen} patterns found"


def _target(obj: dict, rule: dict) -> dict:
    """What a rule's pattern sees: the object itself when the rule names its kind, else its pod template
    (a stand-in for Kyverno's autogen rules, which wrap the same pattern under spec.template)."""
    if obj["kind"] == "Pod" or f'"{obj["kind"]}"' in json.dumps(rule.get("match", {})):
        return obj
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


@pytest.mark.conformance
def test_community_pattern_verdicts_match_kyverno():
    """Every expected result of a pattern/anyPattern rule (without variables or preconditions) in the
    kyverno-test.yaml files, checked against match_pattern's verdict on its resource."""
    root = _suite()
    checked = agreed = 0
    mismatches = []
    for test_file in sorted(root.rglob("kyverno-test.yaml")):
        test = yaml.safe_load(test_file.read_text())
        policies = {
            d["metadata"]["name"]: d for p in test.get("policies", []) for d in _docs(test_file.parent / p)
        }
        resources = {
            (d["kind"], d["metadata"]["name"]): d
            for r in test.get("resources", [])
            for d in _docs(test_file.parent / r)
        }
        for expected in test.get("results", []):
            policy = policies.get(expected["policy"])
            if policy is None:
                continue
            rule = next((r for r in policy["spec"]["rules"] if r["name"] == expected["rule"]), None)
            validate = (rule or {}).get("validate") or {}
            if rule is None or not ({"pattern", "anyPattern"} & validate.keys()):
                continue
            if rule.get("preconditions") or "{{" in json.dumps(validate):
                continue
            for name in expected.get("resources") or [expected.get("resource")]:
                obj = resources.get((expected["kind"], name.split("/")[-1]))
                if obj is None:
                    continue
                target = _target(obj, rule)
                if "pattern" in validate:
                    result = match_pattern(target, validate["pattern"])
                else:
                    result = match_any_pattern(target, validate["anyPattern"])
                checked += 1
                if result.status == expected["result"]:
                    agreed += 1
                else:
                    mismatches.append(
                        (test_file.parent.parent.name, expected["rule"], name, expected["result"], result)
                    )
    assert checked >= 600, f"only {checked} expected results checked"
    assert mismatches == [], f"{agreed}/{checked} agree"


def test_non_string_pattern_keys_read_as_json_keys():
    # YAML 1.1 reads `true:` / `1:` as non-string keys; Kyverno sees the policy as JSON, with "true" / "1"
    pattern = {"data": {True: "yes", 2: "two"}}
    assert match_pattern({"data": {"true": "yes", "2": "two"}}, pattern).status == "pass"
    assert match_pattern({"data": {"true": "no", "2": "two"}}, pattern).path == "/data/true/"
    assert match_pattern({"data": {"true": "yes"}}, {"data": {"x": {False: None}}}).status == "fail"
