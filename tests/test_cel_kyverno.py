"""Kyverno's CEL: ClusterPolicy validate.cel/celPreconditions, the policies.kyverno.io kinds, and what the
kyverno CLI's Test format adds for them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from admission.engine import Engine
from admission.engines import Context, PolicyError
from admission.policyset import load
from admission.results import Status
from admission.review import Request
from admission.state import ClusterState
from admission.testing import run_paths
from admission.webhooks import derived


def write(path: Path, *docs: Any) -> Path:
    path.write_text(yaml.safe_dump_all(list(docs), sort_keys=False))
    return path


def pod(name: str = "web", namespace: str = "team", *, privileged: bool = False, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "nginx:1",
                                     "securityContext": {"privileged": privileged}}]}}


def deployment(name: str, *, privileged: bool) -> dict[str, Any]:
    p = pod(privileged=privileged)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "team"},
            "spec": {"template": {"metadata": {"labels": {"app": name}}, "spec": p["spec"]}}}


def cronjob(name: str, *, privileged: bool) -> dict[str, Any]:
    p = pod(privileged=privileged)
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "team"},
            "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": p["spec"]}}}}}


CLUSTER_POLICY = {
    "apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "no-privileged"},
    "spec": {"validationFailureAction": "Enforce", "rules": [{
        "name": "privileged", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
        "celPreconditions": [{"name": "not-system", "expression": "object.metadata.namespace != 'kube-system'"}],
        "validate": {"cel": {
            "variables": [{"name": "all", "expression": "object.spec.containers"}],
            "expressions": [{"expression": "variables.all.all(c, !c.?securityContext.?privileged.orValue(false))",
                             "messageExpression": "'privileged: ' + variables.all.map(c, c.name).join(', ')"}]}},
    }]},
}

VALIDATING_POLICY = {
    "apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy", "metadata": {"name": "no-privileged"},
    "spec": {
        "validationActions": ["Deny"],
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                "operations": ["CREATE", "UPDATE"], "resources": ["pods"]}]},
        "matchConditions": [{"name": "not-system", "expression": "object.metadata.namespace != 'kube-system'"}],
        "variables": [{"name": "all", "expression": "object.spec.containers"}],
        "validations": [{"expression": "variables.all.all(c, !c.?securityContext.?privileged.orValue(false))",
                         "message": "privileged containers are not allowed"}],
    },
}


def results(engine: Engine, obj: dict[str, Any], **kw: Any) -> list[Any]:
    return engine.review(Request.for_object(obj, **kw), Context(report_skips=True)).validate_results


# -- ClusterPolicy validate.cel ---------------------------------------------------------------------


def test_cluster_policy_cel_rule_passes_fails_and_names_autogen_rules(tmp_path: Path) -> None:
    engine = load([write(tmp_path / "p.yaml", CLUSTER_POLICY)])
    [ok] = results(engine, pod())
    assert ok.status == Status.PASS and ok.rule == "privileged"
    [bad] = results(engine, pod(privileged=True))
    assert bad.status == Status.FAIL and "privileged: app" in bad.message
    assert not engine.review(Request.for_object(pod(privileged=True))).decision.allowed
    [dep] = results(engine, deployment("d", privileged=True))
    assert (dep.rule, dep.status) == ("autogen-privileged", Status.FAIL)
    [cron] = results(engine, cronjob("c", privileged=True))
    assert (cron.rule, cron.status) == ("autogen-cronjob-privileged", Status.FAIL)
    [cron_ok] = results(engine, cronjob("c", privileged=False))
    assert cron_ok.status == Status.PASS


def test_a_generated_rule_reads_the_template_s_pod_and_quotes_the_expression_as_written(tmp_path: Path) -> None:
    policy = yaml.safe_load(yaml.safe_dump(CLUSTER_POLICY))
    text = "object.spec.containers.all(c, !c.?securityContext.?privileged.orValue(false))"
    policy["spec"]["rules"][0]["validate"]["cel"] = {"expressions": [{"expression": text}]}
    engine = load([write(tmp_path / "p.yaml", policy)])
    [dep] = results(engine, deployment("d", privileged=True))
    assert (dep.rule, dep.status) == ("autogen-privileged", Status.FAIL)
    assert dep.message.endswith(f"failed expression: {text}")
    [cron] = results(engine, cronjob("c", privileged=False))
    assert (cron.rule, cron.status) == ("autogen-cronjob-privileged", Status.PASS)


def test_cel_preconditions_skip_the_rule(tmp_path: Path) -> None:
    engine = load([write(tmp_path / "p.yaml", CLUSTER_POLICY)])
    [skipped] = results(engine, pod(namespace="kube-system", privileged=True))
    assert skipped.status == Status.SKIP and "not-system" in skipped.message


def test_cel_compile_error_is_a_load_error_with_file_line_and_expression(tmp_path: Path) -> None:
    bad = yaml.safe_load(yaml.safe_dump(CLUSTER_POLICY))
    bad["spec"]["rules"][0]["validate"]["cel"]["expressions"][0]["expression"] = "object.spec.containers.all(c, "
    with pytest.raises(PolicyError) as err:
        load([write(tmp_path / "p.yaml", bad)])
    assert err.value.source.startswith(str(tmp_path / "p.yaml") + ":")
    assert "validate.cel.expressions[0].expression" in err.value.message
    assert "object.spec.containers.all(c," in err.value.message


def test_cel_unknown_field_says_did_you_mean(tmp_path: Path) -> None:
    bad = yaml.safe_load(yaml.safe_dump(CLUSTER_POLICY))
    bad["spec"]["rules"][0]["validate"]["cel"]["expresions"] = []
    with pytest.raises(PolicyError) as err:
        load([write(tmp_path / "p.yaml", bad)])
    assert "did you mean 'expressions'?" in err.value.message


# -- ValidatingPolicy ---------------------------------------------------------------------------------


def test_validating_policy_matches_denies_and_applies_to_controllers(tmp_path: Path) -> None:
    engine = load([write(tmp_path / "v.yaml", VALIDATING_POLICY)])
    [ok] = results(engine, pod())
    assert (ok.policy, ok.rule, ok.status) == ("no-privileged", "", Status.PASS)
    review = engine.review(Request.for_object(pod(privileged=True)))
    assert not review.decision.allowed
    assert "privileged containers are not allowed" in review.validate_results[0].message
    assert [r.status for r in results(engine, deployment("d", privileged=True))] == [Status.FAIL]
    assert [r.status for r in results(engine, cronjob("c", privileged=False))] == [Status.PASS]
    # a ConfigMap is not matched; a kube-system Pod fails the matchConditions (skip)
    assert results(engine, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a"}}) == []
    assert [r.status for r in results(engine, pod(namespace="kube-system", privileged=True))] == [Status.SKIP]


def test_validating_policy_without_controllers_and_audit_action(tmp_path: Path) -> None:
    policy = yaml.safe_load(yaml.safe_dump(VALIDATING_POLICY))
    policy["spec"]["validationActions"] = ["Audit"]
    policy["spec"]["autogen"] = {"podControllers": {"controllers": []}}
    engine = load([write(tmp_path / "v.yaml", policy)])
    assert results(engine, deployment("d", privileged=True)) == []
    review = engine.review(Request.for_object(pod(privileged=True)))
    assert review.decision.allowed and review.validate_results[0].status == Status.FAIL


def test_policy_exception_turns_the_result_into_skip(tmp_path: Path) -> None:
    exception = {"apiVersion": "policies.kyverno.io/v1", "kind": "PolicyException",
                 "metadata": {"name": "debug", "namespace": "team"},
                 "spec": {"policyRefs": [{"name": "no-privileged", "kind": "ValidatingPolicy"}],
                          "matchConditions": [{"name": "debug", "expression": "object.metadata.name == 'debug'"}]}}
    engine = load([write(tmp_path / "v.yaml", VALIDATING_POLICY, exception)])
    [r] = results(engine, pod("debug", privileged=True))
    assert r.status == Status.SKIP and "team/debug" in r.message
    assert [r.status for r in results(engine, pod("other", privileged=True))] == [Status.FAIL]


@pytest.mark.parametrize(("change", "words"), [
    ({"kind": "ImageValidatingPolicy"}, "image verification"),
    ({"kind": "ValidatingPolicyy"}, "did you mean 'ValidatingPolicy'?"),
    ({"apiVersion": "policies.kyverno.io/v2"}, "has versions v1alpha1, v1beta1, v1"),
    ({"spec": {**VALIDATING_POLICY["spec"], "validationActionz": ["Deny"]}}, "did you mean 'validationActions'?"),
    ({"spec": {**VALIDATING_POLICY["spec"], "evaluation": {"mode": "JSON"}}}, "JSON"),
    ({"spec": {**VALIDATING_POLICY["spec"], "matchConstraints": {}}}, "matchConstraints.resourceRules"),
])
def test_malformed_cel_policies_do_not_load(tmp_path: Path, change: dict[str, Any], words: str) -> None:
    with pytest.raises(PolicyError) as err:
        load([write(tmp_path / "v.yaml", {**VALIDATING_POLICY, **change})])
    assert words in err.value.message


def test_webhooks_include_what_cel_policies_match(tmp_path: Path) -> None:
    engine = load([write(tmp_path / "v.yaml", VALIDATING_POLICY)])
    rules = derived(engine.policies())["validate"]
    resources = {(r["apiGroups"][0], res) for r in rules for res in r["resources"]}
    assert ("", "pods") in resources and ("apps", "deployments") in resources and ("batch", "cronjobs") in resources


# -- MutatingPolicy and GeneratingPolicy --------------------------------------------------------------

MUTATING_POLICY = {
    "apiVersion": "policies.kyverno.io/v1alpha1", "kind": "MutatingPolicy", "metadata": {"name": "defaults"},
    "spec": {
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                "operations": ["CREATE"], "resources": ["pods"]}]},
        "mutations": [
            {"patchType": "ApplyConfiguration", "applyConfiguration": {
                "expression": "Object{metadata: Object.metadata{labels: {'owner': 'platform'}}}"}},
            {"patchType": "JSONPatch", "jsonPatch": {"expression": (
                "has(object.metadata.annotations) ? [] : [JSONPatch{op: 'add', path: '/metadata/annotations', "
                "value: {}}] + [JSONPatch{op: 'add', path: '/metadata/annotations/' + "
                "jsonpatch.escapeKey('example.com/seen'), value: 'yes'}]")}},
            {"patchType": "JSONPatch", "jsonPatch": {"expression": (
                "object.spec.containers.map(c, object.spec.containers.indexOf(c)).map(i, "
                "has(object.spec.containers[i].resources) ? null : JSONPatch{op: 'add', "
                "path: '/spec/containers/' + string(i) + '/resources', value: {}}).filter(p, p != null)")}},
        ],
    },
}


def test_mutating_policy_merges_and_patches_in_order(tmp_path: Path) -> None:
    engine = load([write(tmp_path / "m.yaml", MUTATING_POLICY)])
    outcome = engine.mutate(Request.for_object(pod(app="web")))
    assert outcome.mutated is not None
    meta = outcome.mutated["metadata"]
    assert meta["labels"] == {"app": "web", "owner": "platform"}
    assert meta["annotations"] == {"example.com/seen": "yes"}
    assert outcome.mutated["spec"]["containers"][0]["resources"] == {}
    assert {"op": "add", "path": "/metadata/labels/owner", "value": "platform"} in outcome.patch


def test_generating_policy_names_what_it_would_create(tmp_path: Path) -> None:
    policy = {
        "apiVersion": "policies.kyverno.io/v1alpha1", "kind": "GeneratingPolicy", "metadata": {"name": "quota"},
        "spec": {
            "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                    "operations": ["CREATE"], "resources": ["namespaces"]}]},
            "generate": [{"expression": "generator.Apply(object.metadata.name, [{'apiVersion': 'v1', "
                                        "'kind': 'ResourceQuota', 'metadata': {'name': 'default'}}])"}],
        },
    }
    engine = load([write(tmp_path / "g.yaml", policy)])
    [evaluator] = [e for e in engine.evaluators if hasattr(e, "generate") and type(e).__name__ == "CelPolicyEvaluator"]
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}
    [made] = evaluator.generate(Request.for_object(ns), Context())
    assert made.result.status == Status.PASS
    assert made.objects == ({"apiVersion": "v1", "kind": "ResourceQuota",
                             "metadata": {"name": "default", "namespace": "team"}},)
    assert engine.review(Request.for_object(ns)).decision.allowed  # admission itself creates nothing


# -- the kyverno CLI's Test format --------------------------------------------------------------------


def test_runner_reads_flags_regardless_of_case_and_counts_an_unnamed_result_once(tmp_path: Path) -> None:
    write(tmp_path / "policy.yaml", VALIDATING_POLICY)
    write(tmp_path / "resources.yaml", pod("good"), pod("bad", privileged=True), deployment("dep", privileged=True))
    write(tmp_path / "kyverno-test.yaml", {
        "apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Test", "metadata": {"name": "t"},
        "policies": ["policy.yaml"], "resources": ["resources.yaml"],
        "results": [
            {"policy": "no-privileged", "kind": "Pod", "resources": ["good"], "result": "pass",
             "isVALIDATINGPolicy": True},
            {"policy": "no-privileged", "kind": "Pod", "resources": ["bad"], "result": "fail",
             "isValidatingPolicy": True},
            {"policy": "no-privileged", "kind": "Deployment", "result": "fail", "isValidatingPolicy": True},
        ]})
    found = run_paths([str(tmp_path)])
    assert [(r.name, r.passed) for r in found] == [
        ("no-privileged Pod/good", True), ("no-privileged Pod/bad", True), ("no-privileged Deployment/*", True)]


def test_runner_gives_namespace_object_from_the_values_file(tmp_path: Path) -> None:
    policy = yaml.safe_load(yaml.safe_dump(VALIDATING_POLICY))
    policy["spec"]["matchConditions"] = []
    policy["spec"]["validations"] = [{"expression": "namespaceObject.metadata.labels.env == 'prod'"}]
    write(tmp_path / "policy.yaml", policy)
    write(tmp_path / "resources.yaml", pod("a", namespace="prod-ns"), pod("b", namespace="dev-ns"))
    write(tmp_path / "values.yaml", {"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Values", "namespaceSelector": [
        {"name": "prod-ns", "labels": {"env": "prod"}}, {"name": "dev-ns", "labels": {"env": "dev"}}]})
    write(tmp_path / "kyverno-test.yaml", {
        "apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Test", "metadata": {"name": "t"},
        "policies": ["policy.yaml"], "resources": ["resources.yaml"], "variables": "values.yaml",
        "results": [
            {"policy": "no-privileged", "kind": "Pod", "resources": ["prod-ns/a"], "result": "pass",
             "isValidatingPolicy": True},
            {"policy": "no-privileged", "kind": "Pod", "resources": ["dev-ns/b"], "result": "fail",
             "isValidatingPolicy": True},
        ]})
    assert [r.passed for r in run_paths([str(tmp_path)])] == [True, True]


def test_namespace_selector_without_cluster_state_is_an_error_not_a_silent_skip(tmp_path: Path) -> None:
    policy = yaml.safe_load(yaml.safe_dump(VALIDATING_POLICY))
    policy["spec"]["matchConstraints"]["namespaceSelector"] = {"matchLabels": {"env": "prod"}}
    engine = load([write(tmp_path / "v.yaml", policy)])
    [r] = engine.review(Request.for_object(pod(privileged=True)),
                        Context(state=ClusterState(available=False, reason="no cluster"))).validate_results
    assert r.status == Status.ERROR
    labelled = ClusterState([{"apiVersion": "v1", "kind": "Namespace",
                              "metadata": {"name": "team", "labels": {"env": "prod"}}}])
    [r] = engine.review(Request.for_object(pod(privileged=True)), Context(state=labelled)).validate_results
    assert r.status == Status.FAIL


# -- where cel-go and cel-cpp differ ------------------------------------------------------------------


def test_runner_compares_each_mutating_policy_s_own_result(tmp_path: Path) -> None:
    second = {**MUTATING_POLICY, "metadata": {"name": "team"}, "spec": {
        **MUTATING_POLICY["spec"], "mutations": [{"patchType": "ApplyConfiguration", "applyConfiguration": {
            "expression": "Object{metadata: Object.metadata{labels: {'team': 'a'}}}"}}]}}
    write(tmp_path / "policy.yaml", MUTATING_POLICY, second)
    write(tmp_path / "resources.yaml", pod("web", app="web"))
    first_only = pod("web", app="web")
    first_only["metadata"]["labels"]["owner"] = "platform"
    first_only["metadata"]["annotations"] = {"example.com/seen": "yes"}
    first_only["spec"]["containers"][0]["resources"] = {}
    both = yaml.safe_load(yaml.safe_dump(first_only))
    both["metadata"]["labels"]["team"] = "a"
    write(tmp_path / "first.yaml", first_only)
    write(tmp_path / "both.yaml", both)
    write(tmp_path / "kyverno-test.yaml", {
        "apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Test", "metadata": {"name": "t"},
        "policies": ["policy.yaml"], "resources": ["resources.yaml"],
        "results": [
            {"policy": "defaults", "kind": "Pod", "resources": ["web"], "result": "pass",
             "patchedResources": "first.yaml", "isMutatingPolicy": True},
            {"policy": "team", "kind": "Pod", "resources": ["web"], "result": "pass",
             "patchedResources": "both.yaml", "isMutatingPolicy": True},
        ]})
    assert [(r.passed, r.detail) for r in run_paths([str(tmp_path)])] == [(True, ""), (True, "")]


def test_or_value_on_a_value_that_is_not_optional_gives_the_value(tmp_path: Path) -> None:
    from admission.engines.cel.kyverno_eval import Scope, compile_expression
    from admission.engines.cel.syntax import parse, passes

    tree = parse("a.?b.orValue(1) + optional.of(2).orValue(3)")
    assert passes.lenient_or_value(tree) is tree
    scope = Scope({"spec": {"add": ["NET_BIND_SERVICE"], "opt": None}}, None, {})
    for text, value in [("object.spec.add.orValue([])", ["NET_BIND_SERVICE"]),
                        ("object.spec.?missing.orValue([1])", [1]),
                        ("object.spec.?add.orValue([])", ["NET_BIND_SERVICE"]),
                        ("optional.none().orValue(5) + 1", 6)]:
        assert scope.evaluate(compile_expression(text, "t:1", "e")) == value, text


def test_namespace_object_comes_from_cluster_state_and_is_null_without_it(tmp_path: Path) -> None:
    policy = yaml.safe_load(yaml.safe_dump(VALIDATING_POLICY))
    policy["spec"]["matchConditions"] = []
    policy["spec"]["validations"] = [{"expression": "namespaceObject.metadata.labels.env == 'prod'"}]
    engine = load([write(tmp_path / "v.yaml", policy)])
    state = ClusterState([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"env": "prod"}}}])
    [r] = engine.review(Request.for_object(pod()), Context(state=state)).validate_results
    assert r.status == Status.PASS
    [r] = engine.review(Request.for_object(pod()), Context(state=ClusterState(available=False))).validate_results
    assert r.status == Status.ERROR
    [r] = engine.review(Request.for_object(pod()), Context(state=ClusterState([]))).validate_results
    assert r.status == Status.ERROR  # a namespace without labels: no such key


def test_per_policy_cost_budget_is_shared_by_the_policy_s_expressions() -> None:
    from admission.engines.cel import expr as core
    from admission.engines.cel.kyverno_eval import EvalError, Scope, compile_expression

    scope = Scope({"items": list(range(50))}, None, {})
    scope._budget = core.Budget(limit=200)
    walk = compile_expression("object.items.all(i, i >= 0)", "t:1", "e")
    assert scope.evaluate(walk) is True
    with pytest.raises(EvalError, match="cost budget"):
        for _ in range(10):
            scope.evaluate(walk)


def test_a_long_chain_of_variables_is_computed_in_rounds(tmp_path: Path) -> None:
    from admission.engines.cel.kyverno_eval import Scope, compile_expression

    definitions: list[Any] = []
    for i in range(40):
        text = "1" if i == 0 else f"variables.v{i - 1} + 1"
        definitions.append((f"v{i}", compile_expression(text, "t:1", f"v{i}", definitions=tuple(definitions))))
    last = compile_expression("variables.v39 == 40 && has(variables.v0)", "t:1", "e", definitions=tuple(definitions))
    assert not last.inlined  # too deep to compile the chain into it
    assert Scope({}, None, {}, variables=tuple(definitions)).evaluate(last) is True
    short = compile_expression("variables.v1 + variables.v0", "t:1", "e", definitions=tuple(definitions[:2]))
    assert short.inlined and Scope({}, None, {}, variables=tuple(definitions[:2])).evaluate(short) == 3


def test_an_expression_reading_a_failing_variable_fails_with_its_error(tmp_path: Path) -> None:
    policy = yaml.safe_load(yaml.safe_dump(VALIDATING_POLICY))
    policy["spec"]["variables"] = [{"name": "missing", "expression": "object.spec.nothere"}]
    policy["spec"]["validations"] = [{"expression": "variables.missing == 1"}]
    engine = load([write(tmp_path / "v.yaml", policy)])
    [r] = results(engine, pod())
    assert r.status == Status.ERROR and "nothere" in r.message


def test_runner_user_info_file_sets_request_user_info(tmp_path: Path) -> None:
    policy = yaml.safe_load(yaml.safe_dump(VALIDATING_POLICY))
    policy["spec"]["matchConditions"] = []
    policy["spec"]["validations"] = [{"expression": "request.userInfo.username == 'alice' && "
                                                    "'admins' in request.userInfo.groups"}]
    write(tmp_path / "policy.yaml", policy)
    write(tmp_path / "resources.yaml", pod("a"))
    write(tmp_path / "user.yaml", {"apiVersion": "cli.kyverno.io/v1alpha1", "kind": "UserInfo",
                                   "userInfo": {"username": "alice", "groups": ["admins"]}})
    write(tmp_path / "kyverno-test.yaml", {
        "apiVersion": "cli.kyverno.io/v1alpha1", "kind": "Test", "metadata": {"name": "t"},
        "policies": ["policy.yaml"], "resources": ["resources.yaml"], "userinfo": "user.yaml",
        "results": [{"policy": "no-privileged", "kind": "Pod", "resources": ["a"], "result": "pass",
                     "isValidatingPolicy": True}]})
    assert [(r.passed, r.detail) for r in run_paths([str(tmp_path)])] == [(True, "")]


def test_namespaced_validating_policy_applies_in_its_namespace_only(tmp_path: Path) -> None:
    policy = {**VALIDATING_POLICY, "apiVersion": "policies.kyverno.io/v1beta1", "kind": "NamespacedValidatingPolicy",
              "metadata": {"name": "no-privileged", "namespace": "team"}}
    engine = load([write(tmp_path / "v.yaml", policy)])
    assert [r.status for r in results(engine, pod(namespace="team", privileged=True))] == [Status.FAIL]
    assert results(engine, pod(namespace="other", privileged=True)) == []


@pytest.mark.parametrize(("failure_policy", "allowed"), [("Fail", False), ("Ignore", True)])
def test_an_evaluation_error_follows_the_failure_policy(tmp_path: Path, failure_policy: str, allowed: bool) -> None:
    policy = yaml.safe_load(yaml.safe_dump(VALIDATING_POLICY))
    policy["spec"]["failurePolicy"] = failure_policy
    policy["spec"]["validations"] = [{"expression": "object.spec.nothere.size() == 0"}]
    engine = load([write(tmp_path / "v.yaml", policy)])
    review = engine.review(Request.for_object(pod()))
    assert review.validate_results[0].status == Status.ERROR
    assert review.decision.allowed is allowed


def test_kyverno_libraries_not_implemented_are_named_at_load() -> None:
    from admission.engines.cel.kyverno_eval import compile_expression

    with pytest.raises(PolicyError, match="Kyverno's http library .* is not supported"):
        compile_expression("http.Get('https://example.com').ok", "p.yaml:3", "spec.validations[0].expression")


def test_a_cel_kind_under_kyverno_io_says_which_group_it_belongs_to(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="did you mean 'policies.kyverno.io/v1'"):
        load([write(tmp_path / "v.yaml", {**VALIDATING_POLICY, "apiVersion": "kyverno.io/v1"})])


def test_past_the_deadline_a_policy_is_an_error_result(tmp_path: Path) -> None:
    engine = load([write(tmp_path / "v.yaml", VALIDATING_POLICY)])
    [r] = engine.review(Request.for_object(pod()), Context(deadline=0.0)).validate_results
    assert r.status == Status.ERROR and "deadline" in r.message and r.policy == "no-privileged"
