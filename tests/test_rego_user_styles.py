"""Rego as users write it: each policy here is valid Rego in an ordinary style, run through the engine as a
plain OPA module or as a ConstraintTemplate with a constraint, and each test asserts the decision (deny
with its message, or allow). Issue 9 lists the failures of the token heuristics these reproduce; every
one of them loaded and answered wrongly (fail open) or refused valid Rego."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from admission.engines import Context, PolicyError
from admission.engines.rego import RegoEvaluator
from admission.manifests import Document
from admission.results import Status
from admission.review import Request
from tests.conftest import pod


def module_messages(tmp_path: Path, files: dict[str, str], obj: dict[str, Any], **kw: Any) -> list[tuple[str, str]]:
    """(status, message) of every result of the plain modules for obj that is not a pass, sorted."""
    paths = []
    for name, text in files.items():
        p = tmp_path / name
        p.write_text(textwrap.dedent(text).lstrip("\n"))
        paths.append(p)
    ev = RegoEvaluator.from_sources([], paths, isolate=False)
    out = ev.validate(Request.for_object(obj, **kw), Context())
    return sorted((r.status.value, r.message) for r in out if r.status != Status.PASS)


def template_doc(kind: str, rego: str, libs: list[str] | None = None, file: str = "template.yaml", line: int = 1) -> Document:
    target: dict[str, Any] = {"target": "admission.k8s.gatekeeper.sh", "rego": textwrap.dedent(rego).lstrip("\n")}
    if libs:
        target["libs"] = [textwrap.dedent(lib).lstrip("\n") for lib in libs]
    obj = {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": kind.lower()},
        "spec": {"crd": {"spec": {"names": {"kind": kind}}}, "targets": [target]},
    }
    return Document(obj, file, line)


def constraint_doc(kind: str, name: str = "c", parameters: Any = None) -> Document:
    spec: dict[str, Any] = {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}}
    if parameters is not None:
        spec["parameters"] = parameters
    obj = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    return Document(obj, "constraint.yaml", 1)


def template_messages(rego: str, obj: dict[str, Any], parameters: Any = None, libs: list[str] | None = None) -> list[tuple[str, str]]:
    ev = RegoEvaluator.from_sources([template_doc("K8sUser", rego, libs), constraint_doc("K8sUser", "c", parameters)], [], isolate=False)
    out = ev.validate(Request.for_object(obj), Context())
    return sorted((r.status.value, r.message) for r in out if r.status != Status.PASS)


def bad_pod() -> dict[str, Any]:
    obj = pod(image="nginx:latest")
    obj["metadata"]["labels"] = {"app": "web", "bad": "yes"}
    return obj


def good_pod() -> dict[str, Any]:
    return pod(image="registry.example.com/app:1.0")


# ---------------------------------------------------------------------------- the failures of issue 9


def test_some_pair_with_a_trailing_comment_denies(tmp_path: Path) -> None:
    src = """
        package labels
        import rego.v1

        deny contains msg if {
          some k, v in input.request.object.metadata.labels  # every label
          k == "bad"
          msg := sprintf("label %v=%v is not allowed", [k, v])
        }
    """
    assert module_messages(tmp_path, {"p.rego": src}, bad_pod()) == [("fail", "label bad=yes is not allowed")]
    assert module_messages(tmp_path, {"p.rego": src}, good_pod()) == []


def test_some_pair_with_a_trailing_comment_in_a_template() -> None:
    rego = """
        package k8suser

        violation[{"msg": msg}] {
          some k, v in input.review.object.metadata.labels  # every label
          k == input.parameters.forbidden
          msg := sprintf("label %v=%v is not allowed", [k, v])
        }
    """
    assert template_messages(rego, bad_pod(), {"forbidden": "bad"}) == [("fail", "label bad=yes is not allowed")]
    assert template_messages(rego, good_pod(), {"forbidden": "bad"}) == []


def test_multi_line_every_header_allows_a_valid_pod(tmp_path: Path) -> None:
    src = """
        package images
        import rego.v1

        deny contains "an image is not from registry.example.com" if {
          not all_from_registry
        }

        all_from_registry if {
          every c in
              input.request.object.spec.containers {
            startswith(c.image, "registry.example.com/")
          }
        }
    """
    assert module_messages(tmp_path, {"p.rego": src}, good_pod()) == []
    assert module_messages(tmp_path, {"p.rego": src}, bad_pod()) == [("fail", "an image is not from registry.example.com")]


def test_every_with_key_and_a_header_split_over_lines(tmp_path: Path) -> None:
    src = """
        package images
        import rego.v1

        deny contains "a container is named after its index" if {
          not names_ok
        }

        names_ok if {
          every i, c in input.request.object.spec.containers
          {
            c.name != sprintf("c%d", [i])
          }
        }
    """
    assert module_messages(tmp_path, {"p.rego": src}, good_pod()) == []
    obj = good_pod()
    obj["spec"]["containers"][0]["name"] = "c0"
    assert module_messages(tmp_path, {"p.rego": src}, obj) == [("fail", "a container is named after its index")]


def test_comprehension_in_a_call_is_not_hoisted_out(tmp_path: Path) -> None:
    src = """
        package images
        import rego.v1

        deny contains msg if {
          latest := count([c |
            c := input.request.object.spec.containers[_]
            endswith(c.image, ":latest")
          ])
          latest > 0
          msg := sprintf("%d container(s) use :latest", [latest])
        }
    """
    assert module_messages(tmp_path, {"p.rego": src}, bad_pod()) == [("fail", "1 container(s) use :latest")]
    assert module_messages(tmp_path, {"p.rego": src}, good_pod()) == []


def test_set_comprehension_in_a_call_with_an_index(tmp_path: Path) -> None:
    src = """
        package images

        deny[msg] {
          names := {n | n := input.request.object.spec.containers[i].name; i > -1}
          bad := {n | some n in names; startswith(n, "x")}
          count(bad) > 0
          msg := sprintf("names %v", [sort(bad)])
        }
    """
    obj = good_pod()
    obj["spec"]["containers"].append({"name": "xy", "image": "registry.example.com/a:1"})
    assert module_messages(tmp_path, {"p.rego": src}, obj) == [("fail", 'names ["xy"]')]
    assert module_messages(tmp_path, {"p.rego": src}, good_pod()) == []


def test_one_package_over_two_files(tmp_path: Path) -> None:
    a = """
        package team.policy
        import rego.v1

        deny contains msg if {
          not has_owner
          msg := "the pod has no owner label"
        }
    """
    b = """
        package team.policy
        import rego.v1

        has_owner if input.request.object.metadata.labels.owner
    """
    files = {"a.rego": a, "b.rego": b}
    assert module_messages(tmp_path, files, good_pod()) == [("fail", "the pod has no owner label")]
    obj = good_pod()
    obj["metadata"]["labels"]["owner"] = "me"
    assert module_messages(tmp_path, files, obj) == []


def test_call_qualified_with_its_own_package(tmp_path: Path) -> None:
    src = """
        package team.images
        import rego.v1

        from_registry(image) if startswith(image, "registry.example.com/")

        deny contains msg if {
          some c in input.request.object.spec.containers
          not data.team.images.from_registry(c.image)
          msg := sprintf("image %v is not allowed", [c.image])
        }
    """
    assert module_messages(tmp_path, {"p.rego": src}, bad_pod()) == [("fail", "image nginx:latest is not allowed")]
    assert module_messages(tmp_path, {"p.rego": src}, good_pod()) == []


def test_template_expression_continued_on_the_next_line() -> None:
    rego = """
        package k8suser

        violation[{"msg": msg}] {
          c := input.review.object.spec.containers[_]
          not startswith(c.image,
                         input.parameters.prefix)
          msg := sprintf("image %v does not start with %v",
            [c.image, input.parameters.prefix])
        }
    """
    params = {"prefix": "registry.example.com/"}
    assert template_messages(rego, bad_pod(), params) == [("fail", "image nginx:latest does not start with registry.example.com/")]
    assert template_messages(rego, good_pod(), params) == []


def test_operator_continued_on_the_next_line_in_a_template() -> None:
    rego = """
        package k8suser

        violation[{"msg": msg}] {
          n := count(input.review.object.spec.containers) +
            count(object.get(input.review.object.spec, "initContainers", []))
          n > input.parameters.max
          msg := sprintf("%d containers, at most %d", [n, input.parameters.max])
        }
    """
    assert template_messages(rego, good_pod(), {"max": 0}) == [("fail", "1 containers, at most 0")]
    assert template_messages(rego, good_pod(), {"max": 1}) == []


def test_computed_key_into_data_reads_the_input(tmp_path: Path) -> None:
    """`data.x[input.k]`-style: the input key the policy looks up is computed, so the input below that
    point must stay whole (pruning must not drop what the key may select)."""
    src = """
        package annotations
        import rego.v1

        required := "team.example.com/owner"

        deny contains msg if {
          field := input.request.object.metadata.annotations[required]
          field == "nobody"
          msg := "owner is nobody"
        }
    """
    obj = good_pod()
    obj["metadata"]["annotations"] = {"team.example.com/owner": "nobody"}
    assert module_messages(tmp_path, {"p.rego": src}, obj) == [("fail", "owner is nobody")]


def test_computed_key_from_the_parameters_reads_the_object() -> None:
    rego = """
        package k8suser

        violation[{"msg": msg}] {
          value := input.review.object[input.parameters.section][input.parameters.field]
          value == input.parameters.forbidden
          msg := sprintf("%v.%v is %v", [input.parameters.section, input.parameters.field, value])
        }
    """
    params = {"section": "spec", "field": "hostNetwork", "forbidden": True}
    obj = good_pod()
    obj["spec"]["hostNetwork"] = True
    assert template_messages(rego, obj, params) == [("fail", "spec.hostNetwork is true")]
    assert template_messages(rego, good_pod(), params) == []


def test_computed_key_from_a_rule_indexes_the_input(tmp_path: Path) -> None:
    src = """
        package keys

        fields := {"hostNetwork", "hostPID"}

        deny[msg] {
          some f in fields
          input.request.object.spec[f] == true
          msg := sprintf("%v is set", [f])
        }
    """
    obj = good_pod()
    obj["spec"]["hostPID"] = True
    assert module_messages(tmp_path, {"p.rego": src}, obj) == [("fail", "hostPID is set")]


def test_data_indexed_by_the_input(tmp_path: Path) -> None:
    src = """
        package limits
        import rego.v1

        max_by_namespace := {"default": 1, "big": 10}

        deny contains msg if {
          limit := data.limits.max_by_namespace[input.request.namespace]
          count(input.request.object.spec.containers) > limit
          msg := sprintf("at most %d container(s) in %v", [limit, input.request.namespace])
        }
    """
    obj = good_pod()
    obj["spec"]["containers"].append({"name": "b", "image": "registry.example.com/b:1"})
    assert module_messages(tmp_path, {"p.rego": src}, obj) == [("fail", "at most 1 container(s) in default")]


def test_with_in_a_rule_is_ordinary_rego(tmp_path: Path) -> None:
    src = """
        package withdata
        import rego.v1

        allowed := {"registry.example.com"}

        registry_ok(image) if {
          some r in allowed
          startswith(image, concat("", [r, "/"]))
        }

        deny contains msg if {
          some c in input.request.object.spec.containers
          not registry_ok(c.image) with allowed as {"other.example.com"}
          msg := sprintf("image %v", [c.image])
        }
    """
    assert module_messages(tmp_path, {"p.rego": src}, good_pod()) == [("fail", "image registry.example.com/app:1.0")]


def test_with_input_in_a_rule(tmp_path: Path) -> None:
    """regopy 1.5.2 aborts the process on `with input as <a reference>` (shape `rego-with` has no field
    `rego-ref`) and ignores `with input.kind as <a reference>`; OPA hoists such values into variables."""
    src = """
        package withinput
        import rego.v1

        is_pod if input.kind == "Pod"

        deny contains "the object is a Pod" if {
          is_pod with input as input.request.object
        }
    """
    assert module_messages(tmp_path, {"p.rego": src}, good_pod()) == [("fail", "the object is a Pod")]


def test_with_input_reference_in_a_template() -> None:
    rego = """
        package k8suser

        has_app_label if input.metadata.labels.app

        violation[{"msg": "the object has an app label"}] {
          has_app_label with input as input.review.object
        }
    """
    assert template_messages(rego, good_pod()) == [("fail", "the object has an app label")]


def test_with_in_a_template() -> None:
    rego = """
        package k8suser

        named(name) { input.review.object.metadata.name == name }

        violation[{"msg": "the pod is named web"}] {
          named("web") with input.review.object.metadata.name as input.review.object.metadata.name
        }
    """
    assert template_messages(rego, good_pod()) == [("fail", "the pod is named web")]


@pytest.mark.parametrize("name", ['a"b', '"', 'C:\\dir "x"'])
def test_quote_from_the_input_through_sprintf_in_a_template(name: str) -> None:
    rego = """
        package k8suser

        violation[{"msg": msg}] {
          c := input.review.object.spec.containers[_]
          msg := sprintf("container %v (%s) has image %q", [c.name, c.name, c.image])
        }
    """
    obj = good_pod()
    obj["spec"]["containers"][0].update(name=name, image="x")
    assert template_messages(rego, obj) == [("fail", f'container {name} ({name}) has image "x"')]


@pytest.mark.parametrize("name", ['a"b', '"'])
def test_quote_from_the_input_through_a_function_and_sprintf(tmp_path: Path, name: str) -> None:
    src = """
        package quoted
        import rego.v1

        describe(c) := sprintf("%v/%v", [c.name, c.image])

        deny contains msg if {
          some c in input.request.object.spec.containers
          msg := sprintf("bad: %v", [describe(c)])
        }
    """
    obj = good_pod()
    obj["spec"]["containers"][0].update(name=name)
    assert module_messages(tmp_path, {"p.rego": src}, obj) == [("fail", f"bad: {name}/registry.example.com/app:1.0")]


def test_syntax_error_in_a_template_names_the_yaml_line(tmp_path: Path) -> None:
    rego = 'package k8suser\n\nviolation[{"msg": msg}] {\n  msg := "x" +\n}\n'
    doc = template_doc("K8sUser", rego, file=str(tmp_path / "t.yaml"), line=3)
    yaml_text = (
        "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata:\n  name: k8suser\nspec:\n"
        "  crd:\n    spec:\n      names:\n        kind: K8sUser\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n"
        "      rego: |\n" + "".join(f"        {line}\n" for line in rego.splitlines())
    )
    (tmp_path / "t.yaml").write_text(yaml_text)
    doc = Document(doc.obj, str(tmp_path / "t.yaml"), 1)
    with pytest.raises(PolicyError) as err:
        RegoEvaluator.from_sources([doc, constraint_doc("K8sUser")], [], isolate=False)
    # the Rego starts on line 13 of the file; `}` (where the expression is cut short) is its line 5
    assert err.value.source.startswith(f"{tmp_path / 't.yaml'}:17")


def test_syntax_error_in_a_module_names_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "bad.rego"
    p.write_text("package bad\n\ndeny contains msg if {\n  msg := [1, 2\n}\n")
    with pytest.raises(PolicyError) as err:
        RegoEvaluator.from_sources([], [p], isolate=False)
    assert err.value.source.startswith(f"{p}:5")


# ------------------------------------------------------------------------------------- ordinary styles

# (name, files, an object it denies or warns about, the expected (status, message) list, an object it allows);
# each module is valid Rego in a style users write


def _pod_with(**changes: Any) -> dict[str, Any]:
    obj = good_pod()
    for key, value in changes.items():
        if key == "labels":
            obj["metadata"]["labels"] = value
        elif key == "annotations":
            obj["metadata"]["annotations"] = value
        elif key == "containers":
            obj["spec"]["containers"] = value
        else:
            obj["spec"][key] = value
    return obj


STYLES: list[tuple[str, dict[str, str], dict[str, Any], list[tuple[str, str]], dict[str, Any]]] = [
    (
        "v0 partial set, one-line body with semicolons",
        {"p.rego": 'package s1\ndeny[msg] { c := input.request.object.spec.containers[_]; not c.resources; msg := sprintf("%v has no resources", [c.name]) }\n'},
        _pod_with(),
        [("fail", "app has no resources")],
        _pod_with(containers=[{"name": "a", "image": "i", "resources": {"limits": {"cpu": "1"}}}]),
    ),
    (
        "v1 with comments everywhere",
        {"p.rego": """
            # a policy
            package s2 # the package
            import rego.v1 # v1

            # deny privileged containers
            deny contains msg if { # the rule
              # each container
              some c in input.request.object.spec.containers # iterate
              c.securityContext.privileged # set
              msg := sprintf("%v is privileged", [c.name]) # say so
            } # end
        """},
        _pod_with(containers=[{"name": "p", "image": "i", "securityContext": {"privileged": True}}]),
        [("fail", "p is privileged")],
        _pod_with(),
    ),
    (
        "else chain for a default value",
        {"p.rego": """
            package s3
            import rego.v1

            tier := "gold" if {
              input.request.object.metadata.labels.tier == "gold"
            } else := "silver" if {
              input.request.object.metadata.labels.tier == "silver"
            } else := "bronze"

            deny contains msg if {
              tier == "bronze"
              msg := "bronze pods are not admitted"
            }
        """},
        _pod_with(labels={"tier": "none"}),
        [("fail", "bronze pods are not admitted")],
        _pod_with(labels={"tier": "gold"}),
    ),
    (
        "v0 else chain with braces on their own lines",
        {"p.rego": """
            package s4

            size = "big"
            {
              count(input.request.object.spec.containers) > 1
            }
            else = "small"
            {
              true
            }

            warn[msg] {
              size == "small"
              msg := "a small pod"
            }
        """},
        _pod_with(),
        [("warn", "a small pod")],
        _pod_with(containers=[{"name": "a", "image": "i"}, {"name": "b", "image": "i"}]),
    ),
    (
        "functions with several definitions",
        {"p.rego": """
            package s5
            import rego.v1

            kind_of(c) := "privileged" if c.securityContext.privileged
            kind_of(c) := "host" if { not c.securityContext.privileged; c.ports[_].hostPort }

            deny contains sprintf("%v: %v", [c.name, kind_of(c)]) if {
              some c in input.request.object.spec.containers
              kind_of(c)
            }
        """},
        _pod_with(containers=[{"name": "h", "image": "i", "ports": [{"hostPort": 80}]}]),
        [("fail", "h: host")],
        _pod_with(),
    ),
    (
        "partial object rule read by key",
        {"p.rego": """
            package s6

            limits[name] = mem {
              c := input.request.object.spec.containers[_]
              name := c.name
              mem := c.resources.limits.memory
            }

            deny[msg] {
              c := input.request.object.spec.containers[_]
              not limits[c.name]
              msg := sprintf("%v has no memory limit", [c.name])
            }
        """},
        _pod_with(containers=[{"name": "a", "image": "i", "resources": {"limits": {"memory": "1Gi"}}}, {"name": "b", "image": "i"}]),
        [("fail", "b has no memory limit")],
        _pod_with(containers=[{"name": "a", "image": "i", "resources": {"limits": {"memory": "1Gi"}}}]),
    ),
    (
        "`in` as membership and negated membership",
        {"p.rego": """
            package s7
            import rego.v1

            allowed := {"default", "team"}

            deny contains msg if {
              not input.request.namespace in allowed
              msg := sprintf("namespace %v is not allowed", [input.request.namespace])
            }

            warn contains "app label is web" if "web" in object.keys(input.request.object.metadata.labels)
            warn contains "web is a label value" if "web" in input.request.object.metadata.labels
        """},
        _pod_with(),
        [("warn", "web is a label value")],
        pod(name="x", namespace="team"),
    ),
    (
        "every with a negated body statement",
        {"p.rego": """
            package s8
            import rego.v1

            deny contains "no container may run as root" if {
              not no_root
            }

            no_root if {
              every c in input.request.object.spec.containers {
                not c.securityContext.runAsUser == 0
              }
            }
        """},
        _pod_with(containers=[{"name": "a", "image": "i", "securityContext": {"runAsUser": 0}}]),
        [("fail", "no container may run as root")],
        _pod_with(containers=[{"name": "a", "image": "i", "securityContext": {"runAsUser": 1000}}]),
    ),
    (
        "ref head rules",
        {"p.rego": """
            package s9
            import rego.v1

            checks.image contains c.name if {
              some c in input.request.object.spec.containers
              not contains(c.image, ":")
            }

            checks.pull contains c.name if {
              some c in input.request.object.spec.containers
              not c.imagePullPolicy
            }

            deny contains sprintf("%v: %v", [kind, sort(names)]) if {
              some kind, names in checks
              count(names) > 0
            }
        """},
        _pod_with(containers=[{"name": "a", "image": "nginx"}]),
        [("fail", 'image: ["a"]'), ("fail", 'pull: ["a"]')],
        _pod_with(containers=[{"name": "a", "image": "nginx:1", "imagePullPolicy": "Always"}]),
    ),
    (
        "future.keywords imports in a v0 module",
        {"p.rego": """
            package s10
            import future.keywords.in
            import future.keywords.contains
            import future.keywords.if

            deny contains msg if {
              some c in input.request.object.spec.containers
              c.image in {"nginx", "nginx:latest"}
              msg := sprintf("%v uses nginx", [c.name])
            }
        """},
        _pod_with(containers=[{"name": "a", "image": "nginx:latest"}]),
        [("fail", "a uses nginx")],
        _pod_with(),
    ),
    (
        "import alias and a library in another file",
        {
            "lib.rego": """
                package lib.k8s
                import rego.v1

                containers contains c if some c in input.request.object.spec.containers
                containers contains c if some c in input.request.object.spec.initContainers
            """,
            "p.rego": """
                package s11
                import rego.v1
                import data.lib.k8s as k

                deny contains msg if {
                  some c in k.containers
                  endswith(c.image, ":latest")
                  msg := sprintf("%v uses :latest", [c.name])
                }
            """,
        },
        _pod_with(initContainers=[{"name": "init", "image": "x:latest"}]),
        [("fail", "init uses :latest")],
        _pod_with(),
    ),
    (
        "multi-line call arguments and an object literal over lines",
        {"p.rego": """
            package s12
            import rego.v1

            deny contains msg if {
              labels := object.get(
                input.request.object.metadata,
                "labels",
                {},
              )
              required := {
                "app",
                "owner",
              }
              missing := required - {k | some k, _ in labels}
              count(missing) > 0
              msg := sprintf(
                "missing %v",
                [sort(missing)],
              )
            }
        """},
        _pod_with(),
        [("fail", 'missing ["owner"]')],
        _pod_with(labels={"app": "a", "owner": "o"}),
    ),
    (
        "default rule and a complete rule with `if` on one line",
        {"p.rego": """
            package s13
            import rego.v1

            default replicas_ok := false
            replicas_ok if input.request.object.spec.replicas <= 3

            deny contains "too many replicas" if not replicas_ok
        """},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "x"}, "spec": {"replicas": 5}},
        [("fail", "too many replicas")],
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "x"}, "spec": {"replicas": 2}},
    ),
    (
        "raw strings and regex",
        {"p.rego": """
            package s14
            import rego.v1

            deny contains msg if {
              some c in input.request.object.spec.containers
              not regex.match(`^[a-z0-9.-]+/[a-z0-9/-]+:[0-9.]+$`, c.image)
              msg := sprintf(`image "%v" has no version tag`, [c.image])
            }
        """},
        _pod_with(containers=[{"name": "a", "image": "registry.example.com/app:latest"}]),
        [("fail", 'image "registry.example.com/app:latest" has no version tag')],
        _pod_with(),
    ),
    (
        "violation objects with details and a helper over a comprehension",
        {"p.rego": """
            package s15

            violation[{"msg": msg, "details": {"names": names}}] {
              names := [c.name | c := input.request.object.spec.containers[_]; not c.livenessProbe]
              count(names) > 0
              msg := concat(", ", names)
            }
        """},
        _pod_with(containers=[{"name": "a", "image": "i"}, {"name": "b", "image": "i", "livenessProbe": {}}]),
        [("fail", "a")],
        _pod_with(containers=[{"name": "b", "image": "i", "livenessProbe": {}}]),
    ),
    (
        "v0 multiple bodies for one rule (logical or)",
        {"p.rego": """
            package s16

            host_access {
              input.request.object.spec.hostNetwork
            } {
              input.request.object.spec.hostPID
            }

            deny[msg] {
              host_access
              msg := "host access"
            }
        """},
        _pod_with(hostPID=True),
        [("fail", "host access")],
        _pod_with(),
    ),
    (
        "some with declared variables and an index",
        {"p.rego": """
            package s17
            import rego.v1

            deny contains msg if {
              some i, j
              input.request.object.spec.containers[i].ports[j].containerPort < 1024
              msg := sprintf("container %d port %d is privileged", [i, j])
            }
        """},
        _pod_with(containers=[{"name": "a", "image": "i", "ports": [{"containerPort": 8080}, {"containerPort": 80}]}]),
        [("fail", "container 0 port 1 is privileged")],
        _pod_with(containers=[{"name": "a", "image": "i", "ports": [{"containerPort": 8080}]}]),
    ),
    (
        "object comprehension and a nested function call",
        {"p.rego": """
            package s18
            import rego.v1

            images := {c.name: c.image | some c in input.request.object.spec.containers}

            short(image) := split(image, "/")[count(split(image, "/")) - 1]

            warn contains msg if {
              some name, image in images
              startswith(short(image), "app")
              msg := sprintf("%v runs %v", [name, short(image)])
            }
        """},
        _pod_with(),
        [("warn", "app runs app:1.0")],
        _pod_with(containers=[{"name": "a", "image": "registry.example.com/web:1"}]),
    ),
]


@pytest.mark.parametrize(
    ("files", "obj", "expected", "good"),
    [pytest.param(*s[1:], id=s[0]) for s in STYLES],
)
def test_ordinary_style(tmp_path: Path, files: dict[str, str], obj: dict[str, Any], expected: list[tuple[str, str]],
                        good: dict[str, Any]) -> None:
    assert module_messages(tmp_path, files, obj) == expected
    assert module_messages(tmp_path, files, good) == []
