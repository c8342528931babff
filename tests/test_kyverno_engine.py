"""The Kyverno-dialect evaluator: policy loading errors and the per-rule pipeline."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from admission.engine import Engine
from admission.engines import Context, PolicyError
from admission.engines.yaml import KyvernoContext, KyvernoEvaluator
from admission.manifests import load_text
from admission.results import Action, FailurePolicy, RuleResult, Status
from admission.review import Request


def evaluator(rules: list[dict[str, Any]], **spec: Any) -> KyvernoEvaluator:
    doc = {"apiVersion": "kyverno.io/v1", "kind": spec.pop("kind", "ClusterPolicy"),
           "metadata": {"name": "p", **spec.pop("metadata", {})},
           "spec": {"validationFailureAction": "Enforce", **spec, "rules": rules}}
    return KyvernoEvaluator.from_documents(load_text(yaml.safe_dump(doc), "p.yaml"))


def rule(name: str = "r", kinds: tuple[str, ...] = ("Pod",), **body: Any) -> dict[str, Any]:
    return {"name": name, "match": {"any": [{"resources": {"kinds": list(kinds)}}]}, **body}


def pod(containers: list[dict[str, Any]] | None = None, name: str = "web", namespace: str = "apps",
        labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
            "spec": {"containers": containers if containers is not None else [{"name": "c", "image": "nginx:1.25"}]}}


def run(ev: KyvernoEvaluator, obj: dict[str, Any], *, skips: bool = True, **req: Any) -> list[RuleResult]:
    return ev.validate(Request.for_object(obj, **req), Context(report_skips=skips))


# -- loading ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("bad_rule", "words"), [
    ({"name": "r", "validate": {"pattern": {}}}, "has no match"),
    ({"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]}}, "rule has no type"),
    ({"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]}, "validate": {"message": "x"}},
     "validate needs one of"),
    ({"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
      "validate": {"pattern": {"spec": {"(name": "x"}}}}, "malformed anchor"),
    ({"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
      "validate": {"pattern": {"+(name)": "x"}}}, "only allowed in mutations"),
    ({"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]}, "generate": {"kind": "X"}},
     "generate needs the kind and name"),
    ({"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]}, "verifyImages": [{"imageReferences": ["*"]}]},
     "verifyImages rules are not supported"),
    ({"match": {"any": [{"resources": {"kinds": ["Pod"]}}]}, "validate": {"pattern": {}}}, "has no name"),
    ({"name": "r", "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]},
      "mutate": {"targets": [{"kind": "Secret"}], "patchStrategicMerge": {"metadata": {"labels": {"a": "b"}}}}},
     "mutate.targets"),
    ({"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"]}}]}, "validate": {"cel": {"expressions": []}}},
     "validate.cel needs expressions"),
])
def test_malformed_policies_raise_policy_error_with_file_line(bad_rule: dict[str, Any], words: str) -> None:
    with pytest.raises(PolicyError) as err:
        evaluator([bad_rule])
    assert err.value.source == "p.yaml:1"
    assert words in err.value.message


def test_duplicate_policies_are_rejected() -> None:
    text = yaml.safe_dump({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy", "metadata": {"name": "p"},
                           "spec": {"rules": [rule(validate={"pattern": {"metadata": {"name": "?*"}}})]}})
    with pytest.raises(PolicyError, match="also defined"):
        KyvernoEvaluator.from_documents(load_text(text + "---\n" + text, "p.yaml"))


def test_policy_info() -> None:
    ev = evaluator([rule(validate={"pattern": {"metadata": {"name": "?*"}}})])
    [info] = ev.policies()
    assert info.name == "p" and info.dialect == "kyverno" and info.source == "p.yaml:1"
    assert info.rules == ("r", "autogen-r", "autogen-cronjob-r")
    assert info.validates and not info.mutates


# -- validate ----------------------------------------------------------------------------------------

def test_pattern_pass_and_fail_messages() -> None:
    ev = evaluator([rule(validate={"message": "images must be pinned",
                                   "pattern": {"spec": {"containers": [{"image": "!*:latest"}]}}})])
    [ok] = run(ev, pod())
    assert ok.status == Status.PASS and ok.action == Action.ENFORCE
    [bad] = run(ev, pod([{"name": "c", "image": "nginx:latest"}]))
    assert bad.status == Status.FAIL
    assert bad.message == ("validation error: images must be pinned. rule r failed at path "
                           "/spec/containers/0/image/")


def test_pattern_message_without_message() -> None:
    ev = evaluator([rule(validate={"pattern": {"metadata": {"labels": {"app": "?*"}}}})])
    [bad] = run(ev, pod())
    assert bad.message.startswith("validation error: rule r failed at path /metadata/labels/app")


def test_any_pattern() -> None:
    ev = evaluator([rule(validate={"message": "need a team or an owner", "anyPattern": [
        {"metadata": {"labels": {"team": "?*"}}}, {"metadata": {"labels": {"owner": "?*"}}}]})])
    assert [r.status for r in run(ev, pod(labels={"owner": "me"}))] == [Status.PASS]
    [bad] = run(ev, pod())
    assert bad.status == Status.FAIL
    assert bad.message.startswith("validation error: need a team or an owner. rule r[0] failed at path ")
    assert "rule r[1] failed at path /metadata/labels/owner/" in bad.message


def test_deny_with_substituted_message() -> None:
    ev = evaluator([rule(validate={
        "message": "{{ request.object.metadata.name }} uses a host port",
        "deny": {"conditions": {"any": [{"key": "{{ request.object.spec.containers[].ports[].hostPort }}",
                                         "operator": "AnyNotIn", "value": [0]}]}}})])
    assert [r.status for r in run(ev, pod())] == [Status.PASS]
    [bad] = run(ev, pod([{"name": "c", "image": "x", "ports": [{"hostPort": 80}]}]))
    assert (bad.status, bad.message) == (Status.FAIL, "web uses a host port")


def test_preconditions_skip_is_reported_only_when_asked() -> None:
    ev = evaluator([rule(preconditions={"all": [{"key": "{{ request.operation }}", "operator": "Equals",
                                                 "value": "UPDATE"}]},
                         validate={"pattern": {"metadata": {"labels": {"app": "?*"}}}})])
    [skip] = run(ev, pod())
    assert skip.status == Status.SKIP and skip.message.startswith("preconditions not met")
    assert run(ev, pod(), skips=False) == []


def test_variable_errors_are_error_results_not_exceptions() -> None:
    ev = evaluator([rule(validate={"pattern": {"metadata": {"name": "{{ request.object.nothing.here }}"}}})],
                   failurePolicy="Ignore")
    [err] = run(ev, pod())
    assert err.status == Status.ERROR
    assert "variable substitution failed" in err.message
    assert err.failure_policy == FailurePolicy.IGNORE


def test_rule_failure_action_overrides_the_policy() -> None:
    ev = evaluator([rule(validate={"failureAction": "audit", "pattern": {"metadata": {"labels": {"a": "?*"}}}})],
                   validationFailureAction="enforce")
    [r] = run(ev, pod())
    assert (r.status, r.action) == (Status.FAIL, Action.AUDIT)
    assert evaluator([rule(validate={"pattern": {"metadata": {"name": "?*"}}})],
                     validationFailureAction="Audit").compiled[0].rules[0].action == Action.AUDIT


def test_namespaced_policy_applies_only_in_its_namespace() -> None:
    ev = evaluator([rule(validate={"pattern": {"metadata": {"labels": {"a": "?*"}}}})],
                   kind="Policy", metadata={"namespace": "apps"})
    assert [r.status for r in run(ev, pod(namespace="apps"))] == [Status.FAIL]
    assert run(ev, pod(namespace="other")) == []


def test_exclude_and_non_matching_kinds_yield_nothing() -> None:
    ev = evaluator([rule(exclude={"any": [{"resources": {"namespaces": ["kube-system"]}}]},
                         validate={"pattern": {"metadata": {"labels": {"a": "?*"}}}})])
    assert run(ev, pod(namespace="kube-system")) == []
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "apps"}}
    assert run(ev, svc) == []


def test_foreach_with_element_index_and_preconditions() -> None:
    ev = evaluator([rule(validate={"message": "container {{ element.name }} ({{ elementIndex }}) needs limits",
                                   "foreach": [{"list": "request.object.spec.containers",
                                                "preconditions": {"all": [{"key": "{{ element.name }}",
                                                                           "operator": "NotEquals",
                                                                           "value": "sidecar"}]},
                                                "pattern": {"resources": {"limits": {"memory": "?*"}}}}]})])
    good = {"name": "a", "image": "x", "resources": {"limits": {"memory": "1Gi"}}}
    assert [r.status for r in run(ev, pod([good, {"name": "sidecar", "image": "y"}]))] == [Status.PASS]
    [bad] = run(ev, pod([good, {"name": "b", "image": "y"}]))
    assert bad.status == Status.FAIL
    assert bad.message.startswith("validation failure: validation error: container b (1) needs limits. rule r failed")
    # no element to check: the rule does not apply
    [none] = run(ev, pod([{"name": "sidecar", "image": "y"}]))
    assert none.status == Status.SKIP


def test_nested_foreach_and_deny() -> None:
    ev = evaluator([rule(validate={"message": "port {{ element1.containerPort }} of {{ element0.name }}",
                                   "foreach": [{"list": "request.object.spec.containers", "foreach": [{
                                       "list": "element.ports",
                                       "deny": {"conditions": {"any": [{"key": "{{ element1.containerPort }}",
                                                                        "operator": "LessThan",
                                                                        "value": 1024}]}}}]}]})])
    ok = pod([{"name": "a", "image": "x", "ports": [{"containerPort": 8080}]}])
    assert [r.status for r in run(ev, ok)] == [Status.PASS]
    bad = pod([{"name": "a", "image": "x", "ports": [{"containerPort": 8080}, {"containerPort": 80}]}])
    [r] = run(ev, bad)
    assert r.status == Status.FAIL
    assert r.message == "validation failure: validation failure: port 80 of a"


def test_foreach_element_scope_false_matches_the_resource() -> None:
    ev = evaluator([rule(validate={"foreach": [{"list": "request.object.spec.containers", "elementScope": False,
                                                "pattern": {"metadata": {"name": "web"}}}]})])
    assert [r.status for r in run(ev, pod())] == [Status.PASS]


def test_pod_security_subrule() -> None:
    ev = evaluator([rule(validate={"podSecurity": {"level": "baseline", "version": "latest"}})])
    assert [r.status for r in run(ev, pod())] == [Status.PASS]
    privileged = pod([{"name": "c", "image": "x", "securityContext": {"privileged": True}}])
    [bad] = run(ev, privileged)
    assert bad.status == Status.FAIL
    assert 'violates PodSecurity "baseline:latest"' in bad.message
    # excluding the control lets it through
    ev = evaluator([rule(validate={"podSecurity": {"level": "baseline", "version": "latest", "exclude": [
        {"controlName": "Privileged Containers", "images": ["*"]}]}})])
    assert [r.status for r in run(ev, privileged)] == [Status.PASS]


def test_expired_deadline_answers_remaining_rules_with_errors() -> None:
    ev = evaluator([rule("a", validate={"pattern": {"metadata": {"name": "?*"}}}),
                    rule("b", validate={"pattern": {"metadata": {"name": "?*"}}})])
    results = ev.validate(Request.for_object(pod()), Context(deadline=time.monotonic() - 1))
    assert [(r.rule, r.status, r.message) for r in results] == [
        ("a", Status.ERROR, "deadline exceeded"), ("b", Status.ERROR, "deadline exceeded")]


def test_skip_background_requests_does_not_affect_validate_rules() -> None:
    # Kyverno applies skipBackgroundRequests to generate and mutate-existing rules only
    sa = {"username": "system:serviceaccount:kyverno:kyverno-background-controller"}
    ev = evaluator([rule(validate={"pattern": {"metadata": {"labels": {"a": "?*"}}}})])
    assert ev.compiled[0].rules[0].skip_background_requests is True
    assert [r.status for r in run(ev, pod(), user_info=sa)] == [Status.FAIL]
    off = evaluator([rule(skipBackgroundRequests=False, validate={"pattern": {"metadata": {"labels": {"a": "?*"}}}})])
    assert off.compiled[0].rules[0].skip_background_requests is False


def test_apply_rules_one_stops_after_the_first_rule_that_applies() -> None:
    ev = evaluator([rule("a", validate={"pattern": {"metadata": {"name": "?*"}}}),
                    rule("b", validate={"pattern": {"metadata": {"name": "?*"}}})], applyRules="One")
    assert [r.rule for r in run(ev, pod())] == ["a"]


def test_namespace_selector_from_context_values() -> None:
    ev = evaluator([{"name": "r", "match": {"any": [{"resources": {
        "kinds": ["Pod"], "namespaceSelector": {"matchLabels": {"env": "prod"}}}}]},
        "validate": {"pattern": {"metadata": {"labels": {"a": "?*"}}}}}])
    ctx = KyvernoContext(report_skips=True, namespace_labels={"apps": {"env": "prod"}})
    assert [r.status for r in ev.validate(Request.for_object(pod()), ctx)] == [Status.FAIL]
    assert ev.validate(Request.for_object(pod()), KyvernoContext(namespace_labels={"apps": {"env": "dev"}})) == []


def test_values_set_variables_per_rule() -> None:
    ev = evaluator([rule(validate={"deny": {"conditions": {"all": [{"key": "{{ allowed }}", "operator": "Equals",
                                                                    "value": False}]}}})])
    ctx = KyvernoContext(report_skips=True, values=lambda p, r, n: {"allowed": n != "web"})
    assert [r.status for r in ev.validate(Request.for_object(pod()), ctx)] == [Status.FAIL]
    assert [r.status for r in ev.validate(Request.for_object(pod(name="other")), ctx)] == [Status.PASS]


def test_engine_denies_enforced_failures_and_warns_on_audit() -> None:
    enforce = evaluator([rule(validate={"message": "label it", "pattern": {"metadata": {"labels": {"a": "?*"}}}})])
    decision = Engine([enforce]).validate(Request.for_object(pod()))
    assert not decision.allowed
    assert "[p/r] validation error: label it." in decision.message
    audit = evaluator([rule(validate={"pattern": {"metadata": {"labels": {"a": "?*"}}}})],
                      validationFailureAction="Audit")
    decision = Engine([audit]).validate(Request.for_object(pod()))
    assert decision.allowed and decision.warnings


def test_delete_requests_match_the_old_object() -> None:
    ev = evaluator([rule(validate={"deny": {"conditions": {"all": [{"key": "{{ request.operation }}",
                                                                    "operator": "Equals", "value": "DELETE"}]}}})])
    [r] = run(ev, pod(), operation="DELETE")
    assert r.status == Status.FAIL


def test_values_stand_in_for_the_context_entries_they_name() -> None:
    ev = evaluator([rule(context=[{"name": "quota", "apiCall": {"urlPath": "/api/v1/namespaces/x/resourcequotas",
                                                                "jmesPath": "items | length(@)"}}],
                         validate={"message": "{{ quota }} quotas", "deny": {"conditions": {"all": [
                             {"key": "{{ quota }}", "operator": "GreaterThan", "value": 2}]}}})])
    ctx = KyvernoContext(report_skips=True, values=lambda p, r, n: {"quota": 3})
    [r] = ev.validate(Request.for_object(pod()), ctx)
    assert (r.status, r.message) == (Status.FAIL, "3 quotas")


def test_updates_of_resources_that_already_violated_are_skipped() -> None:
    ev = evaluator([rule(validate={"pattern": {"metadata": {"labels": {"team": "?*"}}}})])
    old = pod()
    new = pod(labels={"other": "x"})
    [r] = run(ev, new, operation="UPDATE", old_object=old)
    assert r.status == Status.SKIP and "pre-existing violations" in r.message
    # a resource that complied before and violates now is still denied
    [r] = run(ev, new, operation="UPDATE", old_object=pod(labels={"team": "a"}))
    assert r.status == Status.FAIL
    strict = evaluator([rule(validate={"allowExistingViolations": False,
                                       "pattern": {"metadata": {"labels": {"team": "?*"}}}})])
    [r] = run(strict, new, operation="UPDATE", old_object=old)
    assert r.status == Status.FAIL


def test_failure_action_overrides_by_namespace() -> None:
    ev = evaluator([rule(validate={"pattern": {"metadata": {"labels": {"team": "?*"}}}})],
                   validationFailureAction="Enforce",
                   validationFailureActionOverrides=[{"action": "Audit", "namespaces": ["dev-*"]}])
    assert [r.action for r in run(ev, pod(namespace="dev-1"))] == [Action.AUDIT]
    assert [r.action for r in run(ev, pod(namespace="prod"))] == [Action.ENFORCE]
    per_rule = evaluator([rule(validate={"failureActionOverrides": [{"action": "Enforce", "namespaces": ["prod"]}],
                                         "pattern": {"metadata": {"labels": {"team": "?*"}}}})],
                         validationFailureAction="Audit")
    assert [r.action for r in run(per_rule, pod(namespace="prod"))] == [Action.ENFORCE]
    assert [r.action for r in run(per_rule, pod(namespace="dev"))] == [Action.AUDIT]


def test_generate_rules_report_what_they_would_create_and_never_affect_admission() -> None:
    ev = evaluator([{"name": "netpol", "match": {"any": [{"resources": {"kinds": ["Namespace"]}}]},
                     "generate": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "name": "deny",
                                  "namespace": "{{ request.object.metadata.name }}",
                                  "data": {"spec": {"podSelector": {}}}}}])
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    assert ev.validate(Request.for_object(ns), Context(report_skips=True)) == []
    assert not ev.policies()[0].validates and not ev.policies()[0].mutates
    [made] = ev.generate(Request.for_object(ns), Context())
    assert (made.result.rule, made.result.status) == ("netpol", Status.PASS)
    assert made.objects == ({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                             "metadata": {"name": "deny", "namespace": "team-a"}, "spec": {"podSelector": {}}},)


def test_generate_clone_copies_the_source_from_cluster_state() -> None:
    from admission.state import ClusterState

    ev = evaluator([{"name": "copy", "match": {"any": [{"resources": {"kinds": ["Namespace"]}}]},
                     "generate": {"apiVersion": "v1", "kind": "Secret", "name": "regcred",
                                  "namespace": "{{ request.object.metadata.name }}",
                                  "clone": {"namespace": "default", "name": "regcred"}}}])
    source = {"apiVersion": "v1", "kind": "Secret", "data": {"k": "dg=="},
              "metadata": {"name": "regcred", "namespace": "default", "uid": "1", "resourceVersion": "9"}}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    [made] = ev.generate(Request.for_object(ns), Context(state=ClusterState([source])))
    assert made.objects == ({"apiVersion": "v1", "kind": "Secret", "data": {"k": "dg=="},
                             "metadata": {"name": "regcred", "namespace": "team-a"}},)
    [missing] = ev.generate(Request.for_object(ns), Context())
    assert missing.result.status == Status.ERROR and "not found" in missing.result.message


def test_policy_errors_point_at_the_rule_line(tmp_path: Any) -> None:
    from admission.policyset import load

    path = tmp_path / "policies.yaml"
    path.write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n---\n"
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: bad}\nspec:\n  rules:\n"
        "  - name: ok\n    match: {any: [{resources: {kinds: [Pod]}}]}\n"
        "    validate: {pattern: {metadata: {name: '?*'}}}\n"
        "  - name: broken\n    validate: {pattern: {metadata: {name: '?*'}}}\n")
    with pytest.raises(PolicyError) as err:
        load([path])
    assert err.value.source == f"{path}:13"
    assert "spec.rules[1] (broken): rule has no match" in err.value.message


def test_subresource_requests_match_the_parent_kind() -> None:
    import dataclasses as dc

    from admission.review import Kind

    ev = evaluator([rule(kinds=("Pod/exec",), validate={"message": "no exec", "deny": {}})])
    exec_options = {"apiVersion": "v1", "kind": "PodExecOptions", "command": ["sh"]}
    request = dc.replace(Request.for_object(exec_options, operation="CONNECT"), name="web", namespace="apps",
                         kind=Kind("", "v1", "PodExecOptions"), sub_resource="exec",
                         resource={"group": "", "version": "v1", "resource": "pods"})
    [r] = ev.validate(request, Context())
    assert (r.status, r.message) == (Status.FAIL, "no exec")
    # a Pod rule does not apply to the exec subresource
    assert evaluator([rule(validate={"message": "x", "deny": {}})]).validate(request, Context()) == []


def test_a_malformed_match_block_is_a_load_error() -> None:
    with pytest.raises(PolicyError, match=r"resources\.selector\.matchLabels: must be a mapping, not a list"):
        evaluator([{"name": "r", "match": {"any": [{"resources": {"kinds": ["Pod"], "selector": {
            "matchLabels": ["not", "a", "map"]}}}]}, "validate": {"pattern": {"metadata": {"name": "?*"}}}}])
