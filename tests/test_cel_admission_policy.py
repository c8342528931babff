"""ValidatingAdmissionPolicy and MutatingAdmissionPolicy through the one Engine pipeline."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from admission.engine import Phase
from admission.engines import Context, PolicyError
from admission.policyset import load
from admission.results import Action, FailurePolicy, Status
from admission.review import Request
from admission.state import ClusterState
from tests.conftest import pod

VAP = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: limits
spec:
  failurePolicy: {failure}
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["pods"]
  variables:
  - name: containers
    expression: object.spec.containers
  validations:
  - expression: variables.containers.all(c, has(c.resources) && has(c.resources.limits))
    messageExpression: "'containers without limits: ' + variables.containers.filter(c, !has(c.resources)).map(c, c.name).join(', ')"
  - expression: "!object.metadata.name.startsWith('bad')"
    message: no bad names
"""

BINDING = """\
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: limits-binding
spec:
  policyName: limits
  validationActions: [{actions}]
"""


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def limited(name: str = "web") -> dict:
    p = pod(name)
    p["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    return p


def results(engine, obj, state=None, **kw):  # type: ignore[no-untyped-def]
    ctx = Context(state=state or ClusterState())
    return engine.review(Request.for_object(obj, **kw), ctx, Phase.ALL).results


def test_validations_pass_fail_with_message_expression(tmp_path: Path) -> None:
    engine = load([write(tmp_path, VAP.format(failure="Fail") + BINDING.format(actions="Deny"))])
    assert [(r.status, r.rule) for r in results(engine, limited())] == [(Status.PASS, "limits-binding")]
    failed = results(engine, pod("bad-web"))
    assert [(r.status, r.message) for r in failed] == [
        (Status.FAIL, "containers without limits: app"), (Status.FAIL, "no bad names")]
    decision = engine.review(Request.for_object(pod()), Context(), Phase.ALL).decision
    assert not decision.allowed and "[limits/limits-binding] containers without limits: app" in decision.message


def test_warn_and_audit_actions_do_not_deny(tmp_path: Path) -> None:
    warn = load([write(tmp_path, VAP.format(failure="Fail") + BINDING.format(actions="Warn"))])
    outcome = warn.review(Request.for_object(pod()), Context(), Phase.ALL)
    assert outcome.decision.allowed and outcome.decision.warnings
    assert {r.action for r in outcome.results} == {Action.WARN}
    audit = load([write(tmp_path, VAP.format(failure="Fail") + BINDING.format(actions="Audit"), "a.yaml")])
    outcome = audit.review(Request.for_object(pod()), Context(), Phase.ALL)
    assert outcome.decision.allowed and not outcome.decision.warnings


def test_a_policy_without_binding_applies_offline_and_does_nothing_in_serve(tmp_path: Path) -> None:
    path = write(tmp_path, VAP.format(failure="Fail"))
    offline = load([path], offline=True)
    assert {r.status for r in results(offline, pod())} == {Status.FAIL}
    serve = load([path])
    assert results(serve, pod()) == []
    assert serve.policies()[0].targets == ()
    assert offline.policies()[0].targets[0].kind == "pod"


def test_other_kinds_and_operations_are_not_matched(tmp_path: Path) -> None:
    engine = load([write(tmp_path, VAP.format(failure="Fail"))], offline=True)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad", "namespace": "default"}}
    assert results(engine, cm) == []
    assert results(engine, pod("bad"), operation="DELETE") == []


def test_an_evaluation_error_follows_the_failure_policy(tmp_path: Path) -> None:
    text = VAP.format(failure="{failure}").replace("!object.metadata.name.startsWith('bad')",
                                                   "object.metadata.annotations['x'] == 'y'")
    strict = load([write(tmp_path, text.format(failure="Fail"))], offline=True)
    [error] = [r for r in results(strict, limited()) if r.status == Status.ERROR]
    assert "no such key: annotations" in error.message and error.failure_policy == FailurePolicy.FAIL
    assert not strict.review(Request.for_object(limited()), Context(), Phase.ALL).decision.allowed
    lenient = load([write(tmp_path, text.format(failure="Ignore"), "b.yaml")], offline=True)
    assert lenient.review(Request.for_object(limited()), Context(), Phase.ALL).decision.allowed


def test_match_conditions_skip_and_params_come_from_state(tmp_path: Path) -> None:
    text = """\
    apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingAdmissionPolicy
    metadata: {name: replicas}
    spec:
      paramKind: {apiVersion: v1, kind: ConfigMap}
      matchConstraints:
        resourceRules:
        - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}
      matchConditions:
      - name: not-system
        expression: "!object.metadata.name.startsWith('system-')"
      validations:
      - expression: object.spec.replicas <= int(params.data.max)
    ---
    apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingAdmissionPolicyBinding
    metadata: {name: replicas-binding}
    spec:
      policyName: replicas
      validationActions: [Deny]
      paramRef: {name: limits}
    """
    engine = load([write(tmp_path, text)])

    def deployment(name: str, replicas: int) -> dict:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "team"},
                "spec": {"replicas": replicas}}

    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "limits", "namespace": "team"},
          "data": {"max": "3"}}
    state = ClusterState([cm])
    assert [r.status for r in results(engine, deployment("web", 5), state)] == [Status.FAIL]
    assert [r.status for r in results(engine, deployment("web", 2), state)] == [Status.PASS]
    assert results(engine, deployment("system-web", 5), state) == []
    [missing] = results(engine, deployment("web", 2), ClusterState())
    # a configuration error, worded as the API server words it, that follows the failurePolicy
    assert missing.status == Status.ERROR and missing.message == (
        "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction")


def test_load_errors_name_file_line_and_expression(tmp_path: Path) -> None:
    broken = VAP.format(failure="Fail").replace("!object.metadata.name.startsWith('bad')", "object.metadata.name +")
    path = write(tmp_path, broken)
    with pytest.raises(PolicyError, match=rf"^{path}:19: object\.metadata\.name \+: .*Syntax error"):
        load([path])
    typo = VAP.format(failure="Fail").replace("messageExpression", "messageExpresion")
    with pytest.raises(PolicyError, match=rf"^{write(tmp_path, typo, 't.yaml')}:18: spec\.validations\[0\]"
                                          r"\.messageExpresion: unknown field; did you mean 'messageExpression'\?"):
        load([tmp_path / "t.yaml"])
    orphan = BINDING.format(actions="Deny")
    with pytest.raises(PolicyError, match="not among the loaded policies"):
        load([write(tmp_path, orphan, "o.yaml")])


MAP = """\
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicy
metadata: {name: defaults}
spec:
  reinvocationPolicy: Never
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}
  mutations:
  - patchType: ApplyConfiguration
    applyConfiguration:
      expression: >
        Object{metadata: Object.metadata{labels: {"team": "a"}},
               spec: Object.spec{containers: [Object.spec.containers{name: "app", imagePullPolicy: "Always"}]}}
  - patchType: JSONPatch
    jsonPatch:
      expression: >
        [JSONPatch{op: "add", path: "/metadata/annotations", value: {}},
         JSONPatch{op: "add", path: "/metadata/annotations/" + jsonpatch.escapeKey("example.com/owner"), value: "x"}]
"""


def test_mutations_merge_by_list_keys_and_come_out_as_one_patch(tmp_path: Path) -> None:
    engine = load([write(tmp_path, MAP)], offline=True)
    obj = pod()
    obj["spec"]["containers"].append({"name": "sidecar", "image": "s"})
    outcome = engine.mutate(Request.for_object(obj), Context())
    assert outcome.mutated["metadata"]["labels"] == {"app": "web", "team": "a"}
    assert outcome.mutated["spec"]["containers"] == [
        {"name": "app", "image": "registry.example.com/app:1.0", "imagePullPolicy": "Always"},
        {"name": "sidecar", "image": "s"}]
    assert outcome.mutated["metadata"]["annotations"] == {"example.com/owner": "x"}
    paths = {op["path"] for op in outcome.patch}
    assert "/metadata/annotations" in paths and "/spec/containers/0/imagePullPolicy" in paths
    assert [r.status for r in outcome.mutate_results] == [Status.PASS]


def test_a_failing_mutation_leaves_the_object_and_follows_the_failure_policy(tmp_path: Path) -> None:
    bad = MAP.replace('path: "/metadata/annotations", value: {}', 'path: "/nope/x", value: {}')
    engine = load([write(tmp_path, bad)], offline=True)
    outcome = engine.review(Request.for_object(pod()), Context(), Phase.ALL)
    [result] = outcome.mutate_results
    assert result.status == Status.ERROR and result.message == (
        'JSON Patch: add operation does not apply: doc is missing path: "/nope/x": missing value')
    assert not outcome.decision.allowed  # failurePolicy Fail
    # as in the API server, the mutations before and after the failing one still apply
    assert outcome.mutated is not None and outcome.mutated["metadata"]["labels"]["team"] == "a"


def test_json_patch_as_the_api_server_applies_it(tmp_path: Path) -> None:
    from admission.engines.cel.mutation import MutationError, json_patch

    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}}
    # a failing test leaves the object as it was, without an error
    assert json_patch(cm, [{"op": "add", "path": "/data/a", "value": "5"},
                           {"op": "test", "path": "/data/a", "value": "4"}]) == cm
    assert json_patch(cm, [{"op": "test", "path": "/data/zz", "value": "1"}]) == cm
    # replace of a missing member adds it
    assert json_patch(cm, [{"op": "replace", "path": "/data/zz", "value": "1"}])["data"] == {"a": "1", "zz": "1"}
    for ops, message in [
        ([{"op": "test", "path": "/nope/x", "value": "1"}],
         "JSON Patch: test operation does not apply: is missing path: /nope/x: missing value"),
        ([{"op": "remove", "path": "/data/zz"}],
         "JSON Patch: error in remove for path: '/data/zz': Unable to remove nonexistent key: zz: missing value"),
        ([{"op": "add", "path": "/metadata/labels/a", "value": "1"}],
         'JSON Patch: add operation does not apply: doc is missing path: "/metadata/labels/a": missing value'),
    ]:
        with pytest.raises(MutationError) as raised:
            json_patch(cm, ops)
        assert str(raised.value) == message


def test_serve_watches_the_param_kinds_of_the_policies(tmp_path: Path) -> None:
    from admission.watch import admission_policy_param_kinds

    write(tmp_path, """\
    apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingAdmissionPolicy
    metadata: {name: a}
    spec:
      paramKind: {apiVersion: example.com/v1, kind: Limits}
    ---
    apiVersion: admissionregistration.k8s.io/v1
    kind: MutatingAdmissionPolicy
    metadata: {name: b}
    spec:
      reinvocationPolicy: Never
      paramKind: {apiVersion: v1, kind: ConfigMap}
    """)
    assert admission_policy_param_kinds([str(tmp_path)]) == [("example.com", "v1", "Limits"), ("", "v1", "ConfigMap")]


def test_lint_reports_a_failing_validation_at_the_pods_line(tmp_path: Path) -> None:
    import io

    from admission import lint

    policy = write(tmp_path, VAP.format(failure="Fail"))
    manifest = tmp_path / "pod.yaml"
    manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\n"
                        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n"
                        "  - {name: app, image: nginx}\n")
    out = io.StringIO()
    code = lint.run([str(manifest)], [str(policy)], "text", out)
    assert code == 1
    assert f"{manifest}:5" in out.getvalue() and "containers without limits: app" in out.getvalue()


def test_webhook_rules_include_the_kinds_cel_policies_match(tmp_path: Path) -> None:
    from admission.webhooks import derived

    engine = load([write(tmp_path, VAP.format(failure="Fail") + BINDING.format(actions="Deny") + "---\n" + MAP)])
    rules = derived([p for p in engine.policies() if p.dialect == "cel"])
    assert rules["validate"] == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                                  "resources": ["pods"], "scope": "*"}]
    assert rules["mutate"] == []  # the MutatingAdmissionPolicy has no binding: in serve it does nothing


def test_served_through_validate_and_mutate(tmp_path: Path) -> None:
    import asyncio
    import base64
    import json

    import httpx

    from admission.server import Settings, create_app
    from tests.conftest import admission_review

    bound_map = MAP + """\
---
apiVersion: admissionregistration.k8s.io/v1
kind: MutatingAdmissionPolicyBinding
metadata: {name: defaults}
spec: {policyName: defaults}
"""
    write(tmp_path, VAP.format(failure="Fail") + BINDING.format(actions="Deny"), "vap.yaml")
    write(tmp_path, bound_map, "map.yaml")
    app = create_app(Settings(), engine=load([tmp_path]), state=ClusterState())  # as serve loads it

    async def scenario() -> tuple[dict, dict]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            validate = (await c.post("/validate", json=admission_review(pod()))).json()["response"]
            mutate = (await c.post("/mutate", json=admission_review(pod()))).json()["response"]
            return validate, mutate

    validate, mutate = asyncio.run(scenario())
    assert validate["allowed"] is False
    assert validate["status"]["message"] == "[limits/limits-binding] containers without limits: app"
    # the validation has no `reason`: Invalid, 422, as the API server answers (the API server passes a webhook's
    # code on to the client)
    assert (validate["status"]["code"], validate["status"]["reason"]) == (422, "Invalid")
    patch = json.loads(base64.b64decode(mutate["patch"]))
    assert {"op": "add", "path": "/metadata/labels/team", "value": "a"} in patch


# --- as the API server does it (each found by tests/test_e2e_cel_parity.py against a real kube-apiserver) -----

def policy_with(validations: str, *, failure: str = "Fail", actions: str = "Deny", conditions: str = "",
                extra: str = "") -> str:
    return textwrap.dedent("""\
    apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingAdmissionPolicy
    metadata: {name: p}
    spec:
      failurePolicy: FAILURE
      matchConstraints:
        resourceRules:
        - {apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}
    """).replace("FAILURE", failure) + extra + conditions + "  validations:\n" + validations + textwrap.dedent(f"""\
    ---
    apiVersion: admissionregistration.k8s.io/v1
    kind: ValidatingAdmissionPolicyBinding
    metadata: {{name: b}}
    spec:
      policyName: p
      validationActions: [{actions}]
    """)


def configmap(data: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict:
    meta: dict = {"name": "cm", "namespace": "team"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, **({"data": data} if data else {})}


def test_failure_messages_are_worded_as_the_api_server_words_them(tmp_path: Path) -> None:
    engine = load([write(tmp_path, policy_with("""\
  - expression: "!has(object.data) || !('a' in object.data)"
    messageExpression: "'the key a\\\\nis reserved'"
    message: "  a is reserved  "
  - expression: "!has(object.data) || !('b' in object.data)"
    messageExpression: "'   '"
  - expression: "!has(object.data) || !('c' in object.data)"
    messageExpression: "'  c is reserved '"
  - expression: "!has(object.data) || !('d' in object.data)"
    messageExpression: "'""" + "x" * 5200 + """'"
    message: d is reserved
  - expression: "!has(object.data) || !('e' in object.data)"
    messageExpression: "string(object.data.nope)"
    message: e is reserved
  - expression: >
      !has(object.data) ||
        !('f' in object.data)
"""))])
    messages = [r.message for r in results(engine, configmap({k: "1" for k in "abcdef"}))]
    assert messages == [
        "a is reserved",  # a messageExpression with a line break is not used; message is trimmed
        "failed expression: !has(object.data) || !('b' in object.data)",  # an empty one neither
        "c is reserved",  # trimmed
        "d is reserved",  # longer than 5 KiB: not used
        "e is reserved",  # failed: not used
        "failed expression: !has(object.data) ||\n  !('f' in object.data)",  # trimmed, line breaks kept
    ]


def test_evaluation_errors_go_through_the_bindings_validation_actions(tmp_path: Path) -> None:
    validations = "  - expression: \"object.data.size() < 3\"\n    message: few keys\n"
    conditions = "  matchConditions:\n  - {name: opted-in, expression: \"object.metadata.annotations['p'] == 'on'\"}\n"
    error = "expression 'object.metadata.annotations['p'] == 'on'' resulted in error: no such key: annotations"
    warn = load([write(tmp_path, policy_with(validations, actions="Warn", conditions=conditions))])
    outcome = warn.review(Request.for_object(configmap({"a": "1"})), Context(), Phase.ALL)
    assert outcome.decision.allowed and outcome.decision.warnings == [f"[p/b] {error}"]
    deny = load([write(tmp_path, policy_with(validations, conditions=conditions), "d.yaml")])
    decision = deny.review(Request.for_object(configmap({"a": "1"})), Context(), Phase.ALL).decision
    assert not decision.allowed and decision.denials[0].message == error
    ignore = load([write(tmp_path, policy_with(validations, failure="Ignore", conditions=conditions), "i.yaml")])
    assert ignore.review(Request.for_object(configmap({"a": "1"})), Context(), Phase.ALL).decision.allowed
    # a validation's error reads the same, quoting the expression as written
    broken = load([write(tmp_path, policy_with("  - expression: \"quantity(object.data.cpu).isLessThan(quantity('1'))\"\n"),
                         "q.yaml")])
    [r] = results(broken, configmap({"cpu": "two"}))
    assert r.status == Status.ERROR and r.message == (
        "expression 'quantity(object.data.cpu).isLessThan(quantity('1'))' resulted in error: quantities must match the "
        "regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")


def test_match_condition_errors_are_aggregated(tmp_path: Path) -> None:
    conditions = ("  matchConditions:\n  - {name: a, expression: \"object.metadata.labels['x'] == 'y'\"}\n"
                  "  - {name: b, expression: \"object.data.z == 'y'\"}\n  - {name: c, expression: 'true'}\n")
    engine = load([write(tmp_path, policy_with("  - expression: 'false'\n", conditions=conditions))])
    [r] = results(engine, configmap({"a": "1"}))
    assert r.status == Status.ERROR and r.message == (
        "[expression 'object.metadata.labels['x'] == 'y'' resulted in error: no such key: labels, "
        "expression 'object.data.z == 'y'' resulted in error: no such key: z]")
    # a false condition skips the binding, errors or not
    skipped = load([write(tmp_path, policy_with("  - expression: 'false'\n", conditions=conditions.replace(
        "'true'", "'false'")), "s.yaml")])
    assert results(skipped, configmap({"a": "1"})) == []


def test_params_not_found_is_a_configuration_error_that_follows_the_failure_policy(tmp_path: Path) -> None:
    extra = "  paramKind: {apiVersion: v1, kind: ConfigMap}\n"
    for failure, actions, allowed in (("Ignore", "Deny", True), ("Fail", "Warn", False), ("Fail", "Deny", False)):
        text = policy_with("  - expression: 'true'\n", failure=failure, actions=actions, extra=extra)
        text += "  paramRef: {name: absent, parameterNotFoundAction: Deny}\n"
        engine = load([write(tmp_path, text, f"{failure}{actions}.yaml")])
        decision = engine.review(Request.for_object(configmap()), Context(state=ClusterState()), Phase.ALL).decision
        assert decision.allowed is allowed
        if not allowed:
            assert decision.denials[0].message == ("failed to configure binding: no params found for policy "
                                                   "binding with `Deny` parameterNotFoundAction")


@pytest.mark.parametrize(("field", "expression", "problem"), [
    ("expression", "object.data.x", "must evaluate to bool but got dyn"),
    ("messageExpression", "object.data.x", "must evaluate to string but got dyn"),
    ("messageExpression", "[1, 2]", "must evaluate to string but got list(int)"),
])
def test_expressions_must_have_the_type_the_api_server_requires(tmp_path: Path, field: str, expression: str,
                                                               problem: str) -> None:
    item = f"  - expression: 'true'\n    {field}: \"{expression}\"\n" if field != "expression" \
        else f"  - expression: \"{expression}\"\n"
    path = write(tmp_path, policy_with(item))
    with pytest.raises(PolicyError, match=rf"^{path}:\d+: .*{re.escape(problem)}$"):
        load([path])


def test_a_mutating_policy_needs_a_reinvocation_policy(tmp_path: Path) -> None:
    path = write(tmp_path, MAP.replace("  reinvocationPolicy: Never\n", ""))
    with pytest.raises(PolicyError, match=rf"^{path}:\d+: spec\.reinvocationPolicy: is required"):
        load([path], offline=True)


def test_a_failing_variable_is_named_as_the_api_server_names_it(tmp_path: Path) -> None:
    extra = ("  variables:\n  - {name: owner, expression: object.data.owner}\n"
             "  - {name: label, expression: \"'owner=' + variables.owner\"}\n")
    engine = load([write(tmp_path, policy_with("  - expression: \"variables.label != 'owner=nobody'\"\n",
                                               extra=extra))])
    [r] = results(engine, configmap({"a": "1"}))
    assert r.status == Status.ERROR and r.message == (
        "expression 'variables.label != 'owner=nobody'' resulted in error: composited variable \"label\" fails to "
        "evaluate: composited variable \"owner\" fails to evaluate: no such key: owner")


def test_a_denial_answers_with_the_http_status_of_the_validations_reason(tmp_path: Path) -> None:
    forbidden = VAP.format(failure="Fail").replace("    message: no bad names\n",
                                                   "    message: no bad names\n    reason: Forbidden\n")
    engine = load([write(tmp_path, forbidden + BINDING.format(actions="Deny"))])
    assert engine.review(Request.for_object(limited("bad-web")), Context(), Phase.ALL).decision.code == 403
    assert engine.review(Request.for_object(pod("web")), Context(), Phase.ALL).decision.code == 422  # the first's
    mutating = load([write(tmp_path, MAP.replace('path: "/metadata/annotations", value: {}',
                                                 'path: "/nope/x", value: {}'), "m.yaml")], offline=True)
    assert mutating.review(Request.for_object(pod()), Context(), Phase.ALL).decision.code == 403  # MAP: Forbidden


def test_a_namespace_request_names_itself_and_has_no_namespace_object(tmp_path: Path) -> None:
    text = policy_with("  - expression: \"request.namespace == object.metadata.name && namespaceObject == null\"\n")
    engine = load([write(tmp_path, text.replace("resources: [configmaps]", "resources: [namespaces]")
                         .replace("operations: [CREATE]", "operations: [CREATE, UPDATE]"))])
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team", "labels": {"a": "b"}}}
    state = ClusterState([ns])  # known to the cluster: still null, as in the API server
    assert [r.status for r in results(engine, ns, state)] == [Status.PASS]
    assert [r.status for r in results(engine, ns, state, operation="UPDATE", old_object=ns)] == [Status.PASS]


def test_fields_the_api_server_requires_load_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A rule without operations, a binding without validationActions and a paramRef without
    parameterNotFoundAction load with the kyverno CLI's defaults, and each is named with its file:line: the
    API server would refuse the object, so what passes offline must say so."""
    text = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      resources: ["pods"]
  validations:
  - expression: "true"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec:
  policyName: p
  paramRef: {name: cfg}
"""
    with caplog.at_level("WARNING", logger="admission.engines.cel.policy"):
        load([write(tmp_path, text)])
    warnings = [r.getMessage() for r in caplog.records if r.name == "admission.engines.cel.policy"]
    assert any("operations" in w and "refuses a rule without operations" in w and "policy.yaml:8" in w for w in warnings), warnings
    assert any("validationActions" in w and "policy.yaml:" in w for w in warnings), warnings
    assert any("parameterNotFoundAction" in w for w in warnings), warnings
