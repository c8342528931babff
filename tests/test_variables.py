"""Kyverno `{{ }}` variables: request data, JMESPath semantics, substitution, images (variables.py, images.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from admission.engines.yaml.images import ImageError, images_of, parse_image
from admission.engines.yaml.variables import (
    UNSET,
    VariableError,
    VariableNotFound,
    Variables,
    check_expression,
    find_variables,
    service_account,
)
from admission.review import Request

CONFORMANCE = Path(__file__).resolve().parents[2] / "shared" / "conformance"


def pod(**labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "team-a", "labels": dict(labels)},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
                 "securityContext": {"capabilities": {"drop": ["all"]}}},
                {"name": "side", "image": "ghcr.io/org/side@sha256:" + "a" * 64},
            ],
            "initContainers": [{"name": "init", "image": "busybox"}],
        },
    }


def variables_for(obj: dict[str, Any] | None = None, **kwargs: Any) -> Variables:
    return Variables.for_request(Request.for_object(obj or pod(app="web"), **kwargs))


# ---------------------------------------------------------------------------------------------- request data

def test_request_variables() -> None:
    v = variables_for(user_info={"username": "system:serviceaccount:ci:deployer", "groups": ["g"]})
    assert v.query("request.operation") == "CREATE"
    assert v.query("request.object.metadata.name") == "web"
    assert v.query("request.namespace") == "team-a"
    assert v.query("request.userInfo.groups") == ["g"]
    assert v.query("request.oldObject") is None
    assert v.query("serviceAccountName") == "deployer"
    assert v.query("serviceAccountNamespace") == "ci"
    assert v.data["request"]["kind"]["kind"] == "Pod"


@pytest.mark.parametrize(
    ("username", "expected"),
    [("system:serviceaccount:ns:sa", ("sa", "ns")), ("kubernetes-admin", ("", "")),
     ("system:serviceaccount:", ("", "")), ("", ("", ""))],
)
def test_service_account_derivation(username: str, expected: tuple[str, str]) -> None:
    assert service_account(username) == expected


def test_extra_variables_are_added() -> None:
    v = Variables.for_request(Request.for_object(pod()), extra={"target.name": "x", "flag": True})
    assert v.query("target.name") == "x"
    assert v.query("flag") is True


# ---------------------------------------------------------------------------------------------- JMESPath semantics

def test_missing_key_is_none_or_not_found() -> None:
    v = variables_for()
    assert v.query("request.object.metadata.labels.missing") is None
    with pytest.raises(VariableNotFound, match='Unknown key "missing"') as info:
        v.query("request.object.metadata.labels.missing", strict=True)
    assert info.value.key == "missing"
    with pytest.raises(VariableNotFound):
        v.query("request.object.spec.volumes[0]", strict=True)


def test_null_value_is_not_an_error() -> None:
    # oldObject is present with value null on CREATE: reading through it is null, not "Unknown key".
    v = variables_for()
    assert v.query("request.oldObject.metadata.name", strict=True) is None


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("request.object.metadata.labels.missing || 'none'", "none"),
        ("request.object.metadata.labels.app || 'none'", "web"),
        ("request.object.spec.volumes[].name", None),
        ("request.object.spec.containers[].name", ["app", "side"]),
        ("request.object.spec.containers[?name == 'app'].image | [0]", "nginx:1.25"),
        ("request.object.spec.containers[?missing == 'x'].name", []),
        ("request.object.spec.[initContainers, containers][].name", ["init", "app", "side"]),
        ("request.object.spec.containers[].ports[].containerPort", [80]),
        ("request.object.spec.missing | length(@ || `[]`)", 0),
        ("length(request.object.spec.containers)", 2),
        ("to_string(request.object.spec.missing)", "null"),
        ("request.object.spec.missing == null", True),
        ("!(request.object.spec.missing)", True),
        ("request.object.metadata.labels.missing && 'x'", None),
        ("request.object.spec.containers[0].securityContext.capabilities.drop[].to_upper(@) || `[]`", ["ALL"]),
        ("`{\"a\": [1, 2]}`.a[1]", 2),
        ("'raw string'", "raw string"),
        ("`bare`", "bare"),
        ("'a' < 'b'", None),
        ("`1` < `2`", True),
        ("request.object.spec.containers[?ports[0].containerPort > `79`].name", ["app"]),
        ("{n: request.object.metadata.name, m: request.object.missing}", {"n": "web", "m": None}),
        ("sort_by(request.object.spec.containers, &name)[].name", ["app", "side"]),
        ("request.object.metadata.labels.*", ["web"]),
    ],
)
def test_kyverno_jmespath_semantics(expr: str, expected: object) -> None:
    assert variables_for().query(expr, strict=True) == expected


def test_function_type_error_is_a_variable_error() -> None:
    with pytest.raises(VariableError, match="length"):
        variables_for().query("length(request.object.spec.missing)", strict=True)
    # a missing key inside an expression reference is null, which max_by cannot order
    with pytest.raises(VariableError, match="max_by"):
        variables_for().query("max_by(request.object.spec.containers, &missing)", strict=True)


def test_syntax_error_is_a_variable_error() -> None:
    with pytest.raises(VariableError, match="incorrect query"):
        variables_for().query("request.object.[")
    with pytest.raises(VariableError, match="empty"):
        variables_for().query("   ")


# ---------------------------------------------------------------------------------------------- substitution

def test_whole_string_variable_keeps_its_type() -> None:
    v = variables_for()
    assert v.substitute("{{ request.object.spec.containers[].name }}") == ["app", "side"]
    assert v.substitute("{{request.object.spec.containers[0].ports[0].containerPort}}") == 80
    assert v.substitute("{{ request.object.metadata.labels }}") == {"app": "web"}
    assert v.substitute("{{ request.oldObject }}") is None


def test_embedded_variables_are_formatted() -> None:
    v = variables_for()
    assert v.substitute("name={{request.object.metadata.name}}") == "name=web"
    assert v.substitute("ports {{ request.object.spec.containers[0].ports[].containerPort }}") == "ports [80]"
    assert v.substitute("{{ request.object.metadata.name }}-{{ request.namespace }}") == "web-team-a"
    assert v.substitute("{{request.object.metadata.name}}{{request.namespace}}") == "webteam-a"
    assert v.substitute("old: {{ request.oldObject }}") == "old: null"
    assert v.substitute("{{ request.object.metadata.labels }}!") == '{"app":"web"}!'
    assert v.substitute("n={{ divide(`3`, `2`) }}") == "n=1.5"
    assert v.substitute("plain text") == "plain text"


def test_missing_variable_fails_substitution_like_kyverno() -> None:
    v = variables_for()
    with pytest.raises(VariableNotFound, match=r"failed to resolve request\.object\.metadata\.labels\.team "
                                               r"at path /message: JMESPath query failed: Unknown key \"team\""):
        v.substitute({"message": "team {{ request.object.metadata.labels.team }}"})
    assert v.substitute("team {{ request.object.metadata.labels.team || 'none' }}") == "team none"


def test_escaped_variables_stay_literal() -> None:
    v = variables_for()
    assert v.substitute("\\{{ request.object.metadata.name }}") == "{{ request.object.metadata.name }}"
    assert v.substitute("a \\{{x}} b {{ request.namespace }}") == "a {{x}} b team-a"


def test_nested_variables_resolve_innermost_first() -> None:
    v = variables_for()
    v.set("key", "app")
    assert v.substitute("{{ request.object.metadata.labels.{{ key }} }}") == "web"


def test_shallow_substitution_does_not_rescan() -> None:
    v = variables_for()
    v.set("template", "{{ request.namespace }}")
    assert v.substitute("{{- template }}") == "{{ request.namespace }}"
    assert v.substitute("x {{- template }}") == "x {{ request.namespace }}"
    # without the dash too: a substituted value is data, never scanned again (unlike Kyverno, which
    # scans it again and so evaluates `{{ }}` found in a label value)
    assert v.substitute("x {{ template }}") == "x {{ request.namespace }}"
    assert v.substitute("{{ template }}") == "{{ request.namespace }}"


def test_substitution_walks_documents_and_keys() -> None:
    v = variables_for()
    doc = {"metadata": {"labels": {"{{ request.object.metadata.name }}": "{{ request.namespace }}"}},
           "list": ["{{ request.operation }}", 3, True, None]}
    assert v.substitute(doc) == {"metadata": {"labels": {"web": "team-a"}},
                                 "list": ["CREATE", 3, True, None]}


def test_references_resolve_within_the_document() -> None:
    v = variables_for()
    pattern = {"spec": {"containers": [{"resources": {
        "requests": {"memory": "$(<=./../../limits/memory)", "cpu": "$(./../../limits/cpu)"},
        "limits": {"memory": "2Gi", "cpu": "1"}}}]}}
    out = v.substitute(pattern)
    assert out["spec"]["containers"][0]["resources"]["requests"] == {"memory": "<=2Gi", "cpu": "1"}
    # anchors in keys are matched without their anchor; absolute paths start at the document root
    assert v.substitute({"(name)": "web", "x": "$(/name)-{{ request.namespace }}"}) == {
        "(name)": "web", "x": "web-team-a"}
    # an escaped reference stays, without its backslash
    assert v.substitute({"a": "\\$(./b)"}) == {"a": "$(./b)"}
    with pytest.raises(VariableError, match="nil resolved"):
        v.substitute({"a": "$(./../missing)"})


def test_delete_requests_read_the_old_object() -> None:
    old = pod(app="old")
    request = Request.for_object(old, operation="DELETE")
    v = Variables.for_request(request)
    assert v.substitute("{{ request.object.metadata.labels.app }}") == "old"
    # a plain query is not rewritten (Kyverno rewrites only `{{ }}` substitution)
    assert v.query("request.object") is None


def test_at_sign_is_the_current_path() -> None:
    v = variables_for()
    patch = {"spec": {"containers": [{"name": "{{@}}"}]}}
    out = v.substitute(patch, ("mutate", "patchStrategicMerge"))
    assert out == {"spec": {"containers": [{"name": "app"}]}}


def test_find_variables() -> None:
    assert find_variables("a {{ x.y }} b {{z}}") == ["x.y", "z"]
    assert find_variables("\\{{ escaped }}") == []
    assert find_variables("{{ a.{{ b }} }}") == ["b", "a.x"]


# ---------------------------------------------------------------------------------------------- set, child, foreach

def test_operation_override_applies_to_delete_rewrite() -> None:
    v = Variables.for_request(Request.for_object(pod()), extra={"request.operation": "DELETE"})
    assert v.operation == "DELETE"
    # request.object is read from request.oldObject, which is null here
    assert v.substitute("{{ request.object.metadata.labels.app }}x") == "nullx"


def test_multi_select_hash_inside_braces() -> None:
    assert variables_for().substitute("{{ {n: request.object.metadata.name} }}") == {"n": "web"}


def test_set_dotted_names_and_child_isolation() -> None:
    v = variables_for()
    v.set("a.b", 1)
    v.set("a.c", 2)
    v.set('"x.y".z', 3)
    assert v.query("a") == {"b": 1, "c": 2}
    assert v.data["x.y"] == {"z": 3}
    child = v.child(element={"name": "c1"}, elementIndex=0)
    child.set("a.b", 9)
    assert child.query("element.name") == "c1"
    assert child.query("a.b") == 9
    assert v.query("a.b") == 1
    assert v.query("element") is None


def test_for_element_names_like_kyverno() -> None:
    v = variables_for()
    outer = v.for_element({"name": "app"}, 1, 0)
    inner = outer.for_element("x", 2, 1)
    assert outer.query("[element.name, elementIndex, element0.name, elementIndex0]") == ["app", 1, "app", 1]
    assert inner.query("[element, elementIndex, element0.name, element1, elementIndex1]") == ["x", 2, "app", "x", 2]


def test_deferred_variables_load_once_on_first_use() -> None:
    v = variables_for()
    calls: list[str] = []

    def load(_: Variables) -> Any:
        calls.append("x")
        return {"value": 1}

    v.defer("lazy", load)
    assert v.query("request.operation") == "CREATE"
    assert calls == []
    assert v.query("lazy.value") == 1
    assert v.query("lazy.value") == 1
    assert calls == ["x"]
    # a name that merely contains the variable's name does not load it
    v.defer("cm", lambda _: calls.append("cm") or 1)
    v.query("request.object.metadata.cmx || 'x'")
    assert "cm" not in calls


def test_deferred_errors_surface_only_when_used() -> None:
    v = variables_for()

    def broken(_: Variables) -> Any:
        raise VariableError("no such thing")

    v.defer("broken", broken)
    v.defer("unset", lambda _: UNSET)
    assert v.substitute("{{ request.operation }}") == "CREATE"
    with pytest.raises(VariableError, match="no such thing"):
        v.substitute("{{ broken.value }}")
    with pytest.raises(VariableError, match="no such thing"):
        v.query("broken")
    with pytest.raises(VariableNotFound):
        v.query("unset", strict=True)


def test_deferred_entries_can_use_earlier_ones() -> None:
    v = variables_for()
    v.defer("first", lambda _: 2)
    v.defer("second", lambda vs: vs.query("first") * 10)
    assert v.query("second") == 20


# ---------------------------------------------------------------------------------------------- images

def test_images_variable_for_pods_and_templates() -> None:
    v = variables_for()
    images = v.query("images")
    assert images["containers"]["app"] == {
        "registry": "docker.io", "name": "nginx", "path": "nginx", "tag": "1.25",
        "reference": "docker.io/nginx:1.25", "referenceWithTag": "docker.io/nginx:1.25",
        "jsonPointer": "/spec/containers/0/image",
    }
    assert images["containers"]["side"]["digest"] == "sha256:" + "a" * 64
    assert "tag" not in images["containers"]["side"]
    assert images["initContainers"]["init"]["tag"] == "latest"
    assert "ephemeralContainers" not in images

    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                  "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "quay.io/a/b:1"}]}}}}
    assert images_of(deployment)["containers"]["c"]["registry"] == "quay.io"
    assert images_of(deployment)["containers"]["c"]["jsonPointer"] == "/spec/template/spec/containers/0/image"
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
               "spec": {"jobTemplate": {"spec": {"template": {"spec": {
                   "containers": [{"name": "c", "image": "localhost:5000/x"}]}}}}}}
    assert images_of(cronjob)["containers"]["c"]["registry"] == "localhost:5000"
    assert images_of({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}) == {}


def test_images_is_unset_for_kinds_without_containers() -> None:
    v = variables_for({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    with pytest.raises(VariableNotFound):
        v.query("images.containers", strict=True)


def test_bad_image_fails_the_images_variable() -> None:
    bad = pod()
    bad["spec"]["containers"][0]["image"] = "Bad Image!"
    with pytest.raises(VariableError, match="invalid image"):
        variables_for(bad).query("images")


@pytest.mark.parametrize(
    ("ref", "registry", "path", "name", "tag", "digest", "repository"),
    [
        ("nginx", "docker.io", "nginx", "nginx", "latest", "", "docker.io/library/nginx"),
        ("library/nginx:1", "docker.io", "library/nginx", "nginx", "1", "", "docker.io/library/nginx"),
        ("bitnami/redis:7", "docker.io", "bitnami/redis", "redis", "7", "", "docker.io/bitnami/redis"),
        ("docker.io/nginx", "docker.io", "nginx", "nginx", "latest", "", "docker.io/library/nginx"),
        ("localhost/app", "localhost", "app", "app", "latest", "", "localhost/app"),
        ("localhost:5000/a/b:v2", "localhost:5000", "a/b", "b", "v2", "", "localhost:5000/a/b"),
        ("registry.example.com:8443/team/app@sha256:" + "b" * 64, "registry.example.com:8443", "team/app", "app",
         "", "sha256:" + "b" * 64, "registry.example.com:8443/team/app"),
        ("ghcr.io/o/a:1@sha256:" + "c" * 64, "ghcr.io", "o/a", "a", "1", "sha256:" + "c" * 64, "ghcr.io/o/a"),
        ("[::1]:5000/app", "[::1]:5000", "app", "app", "latest", "", "[::1]:5000/app"),
        ("public.ecr.aws/x/y", "public.ecr.aws", "x/y", "y", "latest", "", "public.ecr.aws/x/y"),
    ],
)
def test_parse_image(ref: str, registry: str, path: str, name: str, tag: str, digest: str,
                     repository: str) -> None:
    image = parse_image(ref)
    assert (image.registry, image.path, image.name, image.tag, image.digest) == (registry, path, name, tag, digest)
    assert image.repository == repository
    expected = f"{registry}/{path}" + (f"@{digest}" if digest else f":{tag}")
    assert image.reference == expected


def test_uppercase_first_component_is_a_registry() -> None:
    # Kyverno adds docker.io only before a lowercase first component; `UPPER` is then a registry host.
    assert parse_image("UPPER/app").registry == "UPPER"


@pytest.mark.parametrize("ref", ["", "docker.io/UPPER/app", "app:bad tag", "a@sha256:short", "a@md5:" + "a" * 32,
                                 "-leading/app", "a//b"])
def test_parse_image_rejects_malformed_references(ref: str) -> None:
    with pytest.raises(ImageError):
        parse_image(ref)


# ---------------------------------------------------------------------------------------------- conformance

def _strings(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(k, str):
                yield k, ""
            yield from _strings(v, str(k))
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, key)
    elif isinstance(node, str):
        yield node, key


def test_every_conformance_expression_compiles() -> None:
    root = CONFORMANCE / "kyverno-policies"
    if not root.is_dir():
        pytest.skip(f"conformance suite not present at {root}")
    expressions: set[str] = set()
    for path in sorted(root.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            for text, key in _strings(doc):
                expressions.update(find_variables(text))
                if key in ("list", "jmesPath") and "{{" not in text:
                    expressions.add(text)
    assert len(expressions) >= 15
    failures = {}
    for expr in sorted(expressions):
        try:
            check_expression(expr)
        except VariableError as exc:
            failures[expr] = str(exc)
    assert failures == {}


def test_check_expression_reports_unknown_functions() -> None:
    with pytest.raises(VariableError, match="unknown JMESPath function frobnicate"):
        check_expression("frobnicate(request.object)")
    check_expression("request.object.spec.containers[].image | length(@)")
