"""Gatekeeper templates + constraints through RegoEvaluator: match, parameters, enforcement actions,
inventory, libs, errors, and one query per request."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from admission.engine import Engine
from admission.engines import Context, PolicyError
from admission.engines.rego import RegoEvaluator, gatekeeper
from admission.engines.rego.backend import Program
from admission.engines.rego.match import constraint_matches, glob_match
from admission.manifests import Document
from admission.results import Action, Status
from admission.review import Kind, Request
from admission.state import ClusterState, unavailable
from tests.conftest import pod

TEMPLATE = """package k8srequiredlabels

violation[{"msg": msg, "details": {"missing": missing}}] {
  provided := {l | input.review.object.metadata.labels[l]}
  required := {l | l := input.parameters.labels[_]}
  missing := required - provided
  count(missing) > 0
  msg := sprintf("missing labels: %v", [sort(missing)])
}
"""


def template(kind: str = "K8sRequiredLabels", rego: str = TEMPLATE, libs: list[str] | None = None) -> Document:
    target: dict[str, Any] = {"target": "admission.k8s.gatekeeper.sh", "rego": rego}
    if libs:
        target["libs"] = libs
    obj = {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": kind.lower()},
        "spec": {"crd": {"spec": {"names": {"kind": kind}}}, "targets": [target]},
    }
    return Document(obj, "template.yaml", 1)


def constraint(name: str, kind: str = "K8sRequiredLabels", match: dict[str, Any] | None = None,
               parameters: Any = None, action: str | None = None, **spec: Any) -> Document:
    body: dict[str, Any] = {"match": match if match is not None else {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}}
    if parameters is not None:
        body["parameters"] = parameters
    if action:
        body["enforcementAction"] = action
    body.update(spec)
    obj = {"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind, "metadata": {"name": name}, "spec": body}
    return Document(obj, "constraint.yaml", 1)


def results(ev: RegoEvaluator, obj: dict[str, Any], ctx: Context | None = None, **kw: Any) -> list[tuple[str, Status, Action, str]]:
    """The results that are not passes (passes: passed())."""
    out = ev.validate(Request.for_object(obj, **kw), ctx or Context())
    return sorted((r.policy, r.status, r.action, r.message) for r in out if r.status != Status.PASS)


def passed(ev: RegoEvaluator, obj: dict[str, Any], **kw: Any) -> list[str]:
    return sorted(r.policy for r in ev.validate(Request.for_object(obj, **kw), Context()) if r.status == Status.PASS)


def test_parameters_actions_and_messages() -> None:
    ev = RegoEvaluator.from_sources(
        [
            template(),
            constraint("need-team", parameters={"labels": ["team"]}),
            constraint("need-owner", parameters={"labels": ["owner", "app"]}, action="warn"),
            constraint("need-cost", parameters={"labels": ["cost"]}, action="dryrun"),
        ],
        [],
    )
    assert [p.name for p in ev.policies()] == ["need-team", "need-owner", "need-cost"]
    got = results(ev, pod())
    assert got == sorted([
        ("need-team", Status.FAIL, Action.ENFORCE, 'missing labels: ["team"]'),
        ("need-owner", Status.FAIL, Action.WARN, 'missing labels: ["owner"]'),
        ("need-cost", Status.FAIL, Action.DRYRUN, 'missing labels: ["cost"]'),
    ])
    decision = Engine([ev]).validate(Request.for_object(pod()))
    assert not decision.allowed
    assert decision.message == '[need-team] missing labels: ["team"]'
    assert decision.warnings == ['[need-owner] missing labels: ["owner"]']


def test_scoped_enforcement_action() -> None:
    scoped = constraint(
        "scoped",
        parameters={"labels": ["team"]},
        action="scoped",
        scopedEnforcementActions=[
            {"action": "warn", "enforcementPoints": [{"name": "validation.gatekeeper.sh"}]},
            {"action": "deny", "enforcementPoints": [{"name": "audit.gatekeeper.sh"}]},
        ],
    )
    ev = RegoEvaluator.from_sources([template(), scoped], [])
    assert results(ev, pod())[0][2] == Action.WARN


def request_for(obj: dict[str, Any], **kw: Any) -> Request:
    return Request.for_object(obj, **kw)


def no_labels(_: str) -> dict[str, Any] | None:
    return None


def test_match_kinds_and_scope() -> None:
    p = request_for(pod())
    assert constraint_matches({"kinds": [{"apiGroups": ["*"], "kinds": ["*"]}]}, p, no_labels)[0]
    assert not constraint_matches({"kinds": [{"apiGroups": ["apps"], "kinds": ["Pod"]}]}, p, no_labels)[0]
    assert constraint_matches({"kinds": [{"apiGroups": [""], "kinds": ["Service", "Pod"]}]}, p, no_labels)[0]
    assert constraint_matches({}, p, no_labels)[0]
    assert not constraint_matches({"scope": "Cluster"}, p, no_labels)[0]
    assert constraint_matches({"scope": "Namespaced"}, p, no_labels)[0]
    ns = request_for({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    assert constraint_matches({"scope": "Cluster"}, ns, no_labels)[0]
    assert not constraint_matches({"scope": "Namespaced"}, ns, no_labels)[0]


def test_match_namespaces_with_globs() -> None:
    assert glob_match("kube-*", "kube-system") and glob_match("*-system", "gatekeeper-system")
    assert not glob_match("kube-*", "my-kube") and glob_match("default", "default")
    p = request_for(pod(namespace="kube-public"))
    assert not constraint_matches({"excludedNamespaces": ["kube-*"]}, p, no_labels)[0]
    assert constraint_matches({"namespaces": ["kube-*"]}, p, no_labels)[0]
    assert not constraint_matches({"namespaces": ["*-system"]}, p, no_labels)[0]
    # a Namespace is matched by its own name; cluster-scoped objects are not filtered by namespaces
    ns = request_for({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}})
    assert not constraint_matches({"excludedNamespaces": ["kube-*"]}, ns, no_labels)[0]
    node = request_for({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}})
    assert constraint_matches({"namespaces": ["prod"]}, node, no_labels)[0]


def test_match_label_and_namespace_selectors_and_name() -> None:
    p = request_for(pod(name="web-1", namespace="shop"))
    assert constraint_matches({"labelSelector": {"matchLabels": {"app": "web-1"}}}, p, no_labels)[0]
    assert not constraint_matches({"labelSelector": {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}}, p, no_labels)[0]
    assert constraint_matches({"name": "web-*"}, p, no_labels)[0]
    assert not constraint_matches({"name": "db"}, p, no_labels)[0]
    labels = {"shop": {"env": "prod"}}
    sel = {"namespaceSelector": {"matchLabels": {"env": "prod"}}}
    assert constraint_matches(sel, p, labels.get)[0]
    assert not constraint_matches(sel, request_for(pod(namespace="other")), labels.get)[0]
    ns = request_for({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "labels": {"env": "prod"}}})
    assert constraint_matches(sel, ns, no_labels)[0]
    # an UPDATE that removes the label is still matched through the old object
    old = pod(name="web-1", namespace="shop")
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {}
    upd = Request.for_object(new, operation="UPDATE", old_object=old)
    assert constraint_matches({"labelSelector": {"matchLabels": {"app": "web-1"}}}, upd, no_labels)[0]


def test_namespace_selector_reads_cluster_state() -> None:
    ev = RegoEvaluator.from_sources(
        [template(), constraint("prod-only", parameters={"labels": ["team"]},
                                match={"namespaceSelector": {"matchLabels": {"env": "prod"}}})],
        [],
    )
    state = ClusterState([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"env": "prod"}}}])
    assert len(results(ev, pod(namespace="shop"), Context(state=state))) == 1
    assert results(ev, pod(namespace="dev"), Context(state=state)) == []


UNIQUE = """package k8suniquename

violation[{"msg": msg}] {
  name := input.review.object.metadata.name
  other := data.inventory.namespace[ns][_]["Service"][name]
  ns != input.review.object.metadata.namespace
  msg := sprintf("service name %v is also used in namespace %v", [name, ns])
}

violation[{"msg": msg}] {
  data.inventory.cluster["v1"]["Namespace"][input.review.object.metadata.namespace].metadata.labels.frozen == "true"
  msg := "namespace is frozen"
}
"""


def test_inventory_comes_from_cluster_state() -> None:
    ev = RegoEvaluator.from_sources(
        [template("K8sUniqueName", UNIQUE), constraint("unique", "K8sUniqueName", match={"kinds": [{"apiGroups": [""], "kinds": ["Service"]}]})],
        [],
    )
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "a"}}
    other = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "b"}}
    frozen = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"frozen": "true"}}}
    got = results(ev, svc, Context(state=ClusterState([other, frozen])))
    assert [m for *_, m in got] == ["namespace is frozen", "service name api is also used in namespace b"]
    assert results(ev, svc, Context(state=ClusterState([svc]))) == []
    [err] = results(ev, svc, Context(state=unavailable("no cluster")))
    assert err[1] == Status.ERROR and "inventory" in err[3]


LIB_TEMPLATE = """package k8simages

import data.lib.images.registry

violation[{"msg": msg}] {
  c := input.review.object.spec.containers[_]
  not registry(c.image) == input.parameters.registry
  msg := sprintf("image %v is not from %v", [c.image, input.parameters.registry])
}
"""
LIB = """package lib.images

registry(image) = r {
  r := split(image, "/")[0]
}
"""
EXEMPT_LIB = """package lib.exempt

is_exempt(image) {
  image == object.get(object.get(input, "parameters", {}), "exempt", [])[_]
}
"""


def test_libs_and_parameters_per_constraint() -> None:
    rego = LIB_TEMPLATE.replace("import data.lib.images.registry", "import data.lib.images.registry\nimport data.lib.exempt.is_exempt")
    rego = rego.replace("  not registry(c.image)", "  not is_exempt(c.image)\n  not registry(c.image)")
    ev = RegoEvaluator.from_sources(
        [
            template("K8sImages", rego, [LIB, EXEMPT_LIB]),
            constraint("a", "K8sImages", parameters={"registry": "a.io", "exempt": ["c.io/q"]}),
            constraint("b", "K8sImages", parameters={"registry": "b.io"}),
        ],
        [],
    )
    # a's exemption is a's alone: the lib reads the parameters through the whole input
    assert results(ev, pod(image="c.io/q")) == [("b", Status.FAIL, Action.ENFORCE, "image c.io/q is not from b.io")]
    assert [r[0] for r in results(ev, pod(image="b.io/y"))] == ["a"]
    assert [r[0] for r in results(ev, pod(image="c.io/y"))] == ["a", "b"]


def test_one_query_per_request_for_many_constraints(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the regopy path, twenty constraints of one template are one regopy query per request."""
    monkeypatch.setattr(gatekeeper, "USE_COMPILED", False)
    docs = [template()] + [constraint(f"c{i}", parameters={"labels": [f"l{i}"]}) for i in range(20)]
    ev = RegoEvaluator.from_sources(docs, [])
    assert {p.engine for p in ev.policies()} == {"regopy (the compiled evaluator is switched off)"}
    calls: list[str] = []
    original = Program.evaluate

    def counting(self: Program, input_json: str) -> Any:
        calls.append(input_json)
        return original(self, input_json)

    monkeypatch.setattr(Program, "evaluate", counting)
    assert len(results(ev, pod())) == 20
    assert len(calls) == 1


def test_runtime_error_is_attributed_to_its_constraint() -> None:
    bad = 'package k8sbad\n\nviolation[{"msg": msg}] {\n  msg := input.review.object.spec.containers[_].name\n  x := input.parameters.value\n}\nviolation[{"msg": m}] {\n  m := conflict\n}\nconflict := c { c := input.review.object.spec.containers[_].name }\n'
    ev = RegoEvaluator.from_sources(
        [template(), template("K8sBad", bad), constraint("good", parameters={"labels": ["team"]}),
         constraint("bad", "K8sBad", parameters={"value": 1})],
        [],
    )
    obj = pod()
    obj["spec"]["containers"].append({"name": "second", "image": "x"})
    got = results(ev, obj)
    assert ("good", Status.FAIL, Action.ENFORCE, 'missing labels: ["team"]') in got
    assert [r[1] for r in got if r[0] == "bad"] == [Status.ERROR]


def test_template_that_does_not_compile_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata:\n  name: broken\nspec:\n"
        "  crd:\n    spec:\n      names:\n        kind: Broken\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n"
        "      rego: |\n        package broken\n        violation[{\"msg\": msg}] {\n          msg := \n        }\n"
    )
    from admission.manifests import load_file

    docs = load_file(path) + [constraint("b", "Broken")]
    with pytest.raises(PolicyError) as err:
        RegoEvaluator.from_sources(docs, [])
    # the line inside the YAML file where the expression is cut short, and its column
    assert err.value.source == f"{path}:16:9" and "expected a term" in err.value.message


def test_constraint_without_template_is_refused_and_with_works() -> None:
    with pytest.raises(PolicyError) as err:
        RegoEvaluator.from_sources([constraint("orphan", "NoSuchKind")], [])
    assert "NoSuchKind" in err.value.message
    with_rego = 'package w\nkind := input.review.kind.kind\nviolation[{"msg": k}] {\n  k := kind with input as {"review": {"kind": {"kind": "X"}}}\n}\n'
    ev = RegoEvaluator.from_sources([template("W", with_rego), constraint("w", "W")], [])
    assert [r[3] for r in results(ev, pod())] == ["X"]


def test_gatekeeper_does_not_mutate() -> None:
    ev = RegoEvaluator.from_sources([template(), constraint("need-team", parameters={"labels": ["team"]})], [])
    obj = pod()
    out, rs = ev.mutate(Request.for_object(obj), obj, Context())
    assert out == obj and rs == []


def test_update_review_fields_reach_the_template() -> None:
    rego = 'package k8sops\n\nviolation[{"msg": msg}] {\n  input.review.operation == "UPDATE"\n  input.review.oldObject.metadata.labels.app != input.review.object.metadata.labels.app\n  msg := sprintf("%v may not change app label", [input.review.userInfo.username])\n}\n'
    ev = RegoEvaluator.from_sources([template("K8sOps", rego), constraint("ops", "K8sOps")], [])
    old, new = pod(), pod()
    new["metadata"]["labels"]["app"] = "other"
    req = Request(uid="1", kind=Kind("", "v1", "Pod"), operation="UPDATE", object=new, old_object=old,
                  name="web", namespace="default", user_info={"username": "alice"})
    [r] = ev.validate(req, Context())
    assert r.message == "alice may not change app label"


@pytest.mark.parametrize(
    ("match", "why"),
    [
        ({"kinds": "Pod"}, "spec.match.kinds: must be a list, not a string"),
        ({"kinds": [{"kind": ["Pod"]}]}, "spec.match.kinds[0].kind: unknown field; did you mean 'kinds'?"),
        ({"namespaces": "default"}, "spec.match.namespaces: must be a list, not a string"),
        ({"namespaces": ["a", 1]}, "spec.match.namespaces[1]: must be a string, not an integer"),
        ({"scope": "Everywhere"}, "spec.match.scope: 'Everywhere' is not one of *, Cluster, Namespaced"),
        ({"namespace": ["a"]}, "spec.match.namespace: unknown field; did you mean 'namespaces'?"),
        ({"labelSelector": {"matchExpressions": [{"key": "a", "operator": "Near"}]}},
         "spec.match.labelSelector.matchExpressions[0].operator: 'Near' is not one of In, NotIn, Exists, DoesNotExist"),
    ],
)
def test_broken_match_is_refused_at_load(match: dict[str, Any], why: str) -> None:
    with pytest.raises(PolicyError) as err:
        RegoEvaluator.from_sources([template(), constraint("c", match=match)], [])
    assert err.value.message == why


def test_two_templates_for_one_kind_are_refused() -> None:
    other = template()
    other.obj["metadata"]["name"] = "another"
    with pytest.raises(PolicyError) as err:
        RegoEvaluator.from_sources([template(), other], [])
    assert "also defined by template" in err.value.message


def test_templates_with_same_function_names_load_together() -> None:
    one = 'package one\n\nget_message(parameters, _default) := _default {\n  not parameters.message\n}\nget_message(parameters, _) := parameters.message\n\nviolation[{"msg": msg}] {\n  msg := get_message(input.parameters, "one")\n}\n'
    two = 'package two\n\nviolation[{"msg": msg}] {\n  msg := get_message(input.review.kind.kind, 1, 2, 3)\n}\n\nget_message(kind, a, b, c) = msg {\n  msg := sprintf("two %v", [kind])\n}\n'
    ev = RegoEvaluator.from_sources(
        [template("One", one), template("Two", two), constraint("c1", "One", parameters={"message": "custom"}), constraint("c2", "Two")],
        [],
    )
    assert [m for *_, m in results(ev, pod())] == ["custom", "two Pod"]


def test_inventory_follows_changes_of_the_same_state() -> None:
    ev = RegoEvaluator.from_sources(
        [template("K8sUniqueName", UNIQUE), constraint("unique", "K8sUniqueName", match={"kinds": [{"apiGroups": [""], "kinds": ["Service"]}]})],
        [],
    )
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "a"}}
    state = ClusterState([svc])
    ctx = Context(state=state)
    assert results(ev, svc, ctx) == [] and results(ev, svc, ctx) == []
    state.put({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "b"}})
    assert [m for *_, m in results(ev, svc, ctx)] == ["service name api is also used in namespace b"]
    state.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"frozen": "true"}}})
    assert len(results(ev, svc, ctx)) == 2


def test_managed_fields_reach_only_templates_that_read_them() -> None:
    reads = 'package k8smanaged\n\nviolation[{"msg": msg}] {\n  m := input.review.object.metadata.managedFields[_]\n  msg := sprintf("managed by %v", [m.manager])\n}\n'
    counts = 'package k8scount\n\nviolation[{"msg": msg}] {\n  msg := sprintf("%v metadata fields", [count(input.review.object.metadata)])\n}\n'
    obj = pod()
    obj["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply"}]
    with_reader = RegoEvaluator.from_sources([template("K8sManaged", reads), constraint("m", "K8sManaged")], [])
    assert [m for *_, m in results(with_reader, obj)] == ["managed by kubectl"]
    without = RegoEvaluator.from_sources([template("K8sCount", counts), constraint("n", "K8sCount")], [])
    assert [m for *_, m in results(without, obj)] == ["3 metadata fields"]  # name, namespace, labels
    assert "managedFields" in obj["metadata"]  # the request itself is untouched


def test_constraints_are_matched_through_a_per_kind_index() -> None:
    """Only constraints whose kinds can match are checked further; wildcards and a missing kinds list match
    every kind; the answers are those of checking every constraint."""
    ingress = {"kinds": [{"apiGroups": ["networking.k8s.io"], "kinds": ["Ingress"]}]}
    docs = [
        template(),
        constraint("pods", parameters={"labels": ["team"]}),
        constraint("ingresses", match=ingress, parameters={"labels": ["team"]}),
        constraint("everything", match={}, parameters={"labels": ["owner"]}),
        constraint("any-kind", match={"kinds": [{"apiGroups": ["*"], "kinds": ["*"]}]}, parameters={"labels": ["app"]}),
    ]
    ev = RegoEvaluator.from_sources(docs, [], isolate=False)
    assert [c.name for c in ev.constraints.candidates("", "Pod")] == ["pods", "everything", "any-kind"]
    assert [c.name for c in ev.constraints.candidates("networking.k8s.io", "Ingress")] == ["ingresses", "everything", "any-kind"]
    obj = pod()
    obj["metadata"]["labels"] = {"app": "web"}
    assert [r[0] for r in results(ev, obj)] == ["everything", "pods"]


def test_a_matched_constraint_without_violations_passes() -> None:
    """Reports and tests need the passes: a constraint that matched and found nothing is a pass, one that did
    not match gives no result, one with a violation only its failure."""
    ing = {"kinds": [{"apiGroups": ["networking.k8s.io"], "kinds": ["Ingress"]}]}
    ev = RegoEvaluator.from_sources(
        [template(), constraint("team", parameters={"labels": ["team"]}),
         constraint("app", parameters={"labels": ["app"]}),
         constraint("ingress", match=ing, parameters={"labels": ["team"]})],
        [],
    )
    obj = pod()
    obj["metadata"]["labels"] = {"app": "web"}
    assert passed(ev, obj) == ["app"]
    assert [r[0] for r in results(ev, obj)] == ["team"]


def test_constraints_with_equal_parameters_are_evaluated_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Constraints of one template with equal parameters (and constraints with equal spec.match) are evaluated
    once per request, and each still gets its own results: its name, its action, its errors. Parameters that
    differ only in type (1 and 1.0, a key 1 and "1") or in key order are not equal."""
    from admission.engines.rego import fastpath

    rego = ('package k8sparams\n\nviolation[{"msg": msg}] {\n  x := input.parameters.x\n  msg := sprintf("%v %v", [x, x == 1])\n}\n'
            'violation[{"msg": "boom"}] {\n  input.parameters.boom\n  x := {"a": 1, "a": 2}\n}\n')
    params = [{"x": 1}, {"x": 1}, {"x": 1.0}, {"x": {1: "a"}}, {"x": {"1": "a"}}, {"x": {"p": 1, "q": 2}},
              {"x": {"q": 2, "p": 1}}, {"x": 1}]
    docs = [template("K8sParams", rego)] + [
        constraint(f"p{i}", "K8sParams", parameters=p, action="warn" if i == 7 else None) for i, p in enumerate(params)
    ]
    calls: list[Any] = []
    original = fastpath.CompiledTemplate.violations

    def counting(self: Any, review: Any, parameters: Any, *args: Any) -> Any:
        calls.append(parameters)
        return original(self, review, parameters, *args)

    monkeypatch.setattr(fastpath.CompiledTemplate, "violations", counting)
    ev = RegoEvaluator.from_sources(docs, [])
    got = results(ev, pod())
    alone = [results(RegoEvaluator.from_sources([docs[0], d], []), pod()) for d in docs[1:]]
    assert got == sorted(r for rs in alone for r in rs)
    assert [r[0] for r in got] == [f"p{i}" for i in range(8)]
    assert next(r for r in got if r[0] == "p7")[2] == Action.WARN
    calls.clear()
    ev.validate(Request.for_object(pod()), Context())
    assert len(calls) == 6  # p0, p1 and p7 are one evaluation; the others differ

    boom = [template("K8sParams", rego)] + [constraint(f"b{i}", "K8sParams", parameters={"x": 2, "boom": True}) for i in range(3)]
    got = results(RegoEvaluator.from_sources(boom, []), pod())
    assert [(r[0], r[1]) for r in got] == [(f"b{i}", Status.ERROR) for i in range(3)]


def test_constraints_with_equal_match_still_match_each() -> None:
    ev = RegoEvaluator.from_sources(
        [template()] + [constraint(f"c{i}", match={"namespaces": ["prod"]}, parameters={"labels": [f"l{i}"]}) for i in range(3)]
        + [constraint("other", match={"namespaces": ["dev"]}, parameters={"labels": ["l0"]})],
        [],
    )
    assert [r[0] for r in results(ev, pod(namespace="prod"))] == ["c0", "c1", "c2"]
    assert [r[0] for r in results(ev, pod(namespace="dev"))] == ["other"]
