"""Policies fail loudly: a field that does not mean what its author thinks is a load error naming
`file:line: field.path: problem`, with "did you mean" for near misses."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from admission.engines import PolicyError
from admission.engines.yaml import schema
from admission.engines.yaml.schema import NODES, SchemaError, check_document
from admission.manifests import find_files, load_file
from admission.policyset import is_kyverno, load
from tests.conftest import REPO, conformance_dir

POLICY = """\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: p
spec:
  validationFailureAction: Enforce
  background: true
  rules:
  - name: r
    match:
      any:
      - resources:
          kinds: [Pod]
    preconditions:
      all:
      - key: "{{ request.operation }}"
        operator: NotEquals
        value: DELETE
    validate:
      message: denied
      deny:
        conditions:
          any:
          - key: "{{ request.object.metadata.name }}"
            operator: Equals
            value: bad
"""


def write(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as err:
        load([path])
    return str(err.value).removeprefix(f"{path}:")


def test_the_valid_policy_loads(tmp_path: Path) -> None:
    engine = load([write(tmp_path, POLICY)])
    assert [p.name for p in engine.policies() if p.name == "p"] == ["p"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # a typo'd field, at each level
        ("  validationFailureAction: Enforce", "  validationFailureActon: Enforce",
         "6: spec.validationFailureActon: unknown field; did you mean 'validationFailureAction'?"),
        ("    preconditions:", "    preconditons:",
         "14: spec.rules[0].preconditons: unknown field; did you mean 'preconditions'?"),
        ("      - resources:", "      - resource:",
         "12: spec.rules[0].match.any[0].resource: unknown field; did you mean 'resources'?"),
        ("          kinds: [Pod]", "          kind: [Pod]",
         "13: spec.rules[0].match.any[0].resources.kind: unknown field; did you mean 'kinds'?"),
        ("        conditions:", "        condition:",
         "22: spec.rules[0].validate.deny.condition: unknown field; did you mean 'conditions'?"),
        ("      message: denied", "      mesage: denied",
         "20: spec.rules[0].validate.mesage: unknown field; did you mean 'message'?"),
        # a typo'd enum value
        ("  validationFailureAction: Enforce", "  validationFailureAction: Enforcee",
         "6: spec.validationFailureAction: 'Enforcee' is not one of Enforce, Audit; did you mean 'Enforce'?"),
        ("  validationFailureAction: Enforce", "  validationFailureAction: ENFORCE",
         "6: spec.validationFailureAction: 'ENFORCE' is not one of Enforce, Audit; did you mean 'Enforce'?"),
        ("  background: true", "  failurePolicy: fail",
         "7: spec.failurePolicy: 'fail' is not one of Ignore, Fail; did you mean 'Fail'?"),
        ("          kinds: [Pod]", "          kinds: [Pod]\n          operations: [CREATE, UPDAET]",
         "14: spec.rules[0].match.any[0].resources.operations[1]: 'UPDAET' is not one of CREATE, CONNECT, "
         "UPDATE, DELETE; did you mean 'UPDATE'?"),
        # an unknown operator
        ("            operator: Equals", "            operator: Equalz",
         "25: spec.rules[0].validate.deny.conditions.any[0].operator: 'Equalz' is not one of Equals, NotEquals, "
         "In, AnyIn, AllIn, NotIn, AnyNotIn, AllNotIn, GreaterThanOrEquals, GreaterThan, LessThanOrEquals, "
         "LessThan, DurationGreaterThanOrEquals, DurationGreaterThan, DurationLessThanOrEquals, DurationLessThan; "
         "did you mean 'Equals'?"),
        ("        operator: NotEquals", "        operator: NotEqualz",
         "17: spec.rules[0].preconditions.all[0].operator: 'NotEqualz' is not one of Equals, NotEquals, In, AnyIn, "
         "AllIn, NotIn, AnyNotIn, AllNotIn, GreaterThanOrEquals, GreaterThan, LessThanOrEquals, LessThan, "
         "DurationGreaterThanOrEquals, DurationGreaterThan, DurationLessThanOrEquals, DurationLessThan; "
         "did you mean 'NotEquals'?"),
        # a wrong type
        ("  background: true", "  background: \"false\"", "7: spec.background: must be a boolean, not a string"),
        ("          kinds: [Pod]", "          kinds: Pod",
         "13: spec.rules[0].match.any[0].resources.kinds: must be a list, not a string"),
        ("  rules:", "  webhookTimeoutSeconds: ten\n  rules:",
         "8: spec.webhookTimeoutSeconds: must be an integer, not a string"),
        ("      deny:", "      deny: []\n      denyx:",
         "21: spec.rules[0].validate.deny: must be a mapping, not a list"),
        # accepted by Kyverno, not implemented here, and it would change the meaning
        ("    preconditions:", "    imageExtractors: {}\n    preconditions:",
         "14: spec.rules[0].imageExtractors: imageExtractors are not supported"),
        ("    preconditions:", "    context:\n    - name: g\n      globalReference: {name: x}\n    preconditions:",
         "16: spec.rules[0].context[0].globalReference: globalReference context entries are not supported"),
        ("  background: true", "  background: true\n  admission: false",
         "8: spec.admission: admission: false (background scans only) is not supported: every policy loaded "
         "here applies at admission"),
        ("    preconditions:", "    context:\n    - name: c\n      apiCall:\n        urlPath: /api/v1/pods\n"
                             "        method: POST\n    preconditions:",
         "18: spec.rules[0].context[0].apiCall.method: apiCall method POST is not supported (only GET, answered "
         "from the cluster state)"),
        ("    preconditions:", "    context:\n    - name: c\n      apiCall:\n        urlPath: /api/v1/pods\n"
                             "        method: PUT\n    preconditions:",
         "18: spec.rules[0].context[0].apiCall.method: 'PUT' is not one of GET, POST"),
        ("kind: ClusterPolicy", "kind: ClusterPolicey",
         "2: kind: 'ClusterPolicey' of kyverno.io/v1 is not supported (only ClusterPolicy and Policy); "
         "did you mean 'ClusterPolicy'?"),
        ("kind: ClusterPolicy", "kind: PolicyException",
         "2: kind: 'PolicyException' of kyverno.io/v1 is not supported (only ClusterPolicy and Policy)"),
        ("apiVersion: kyverno.io/v1", "apiVersion: kyvero.io/v1",
         "1: apiVersion: 'kyvero.io/v1' is not Kyverno's; did you mean 'kyverno.io'?"),
    ],
)
def test_bad_kyverno_policies_are_load_errors_at_their_line(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in POLICY
    got = load_error(tmp_path, POLICY.replace(old, new, 1))
    if new.startswith(("kind: ", "apiVersion: ")):  # a document that is no ClusterPolicy: at its first line
        expected = "1" + expected[1:]
    assert got == expected


@pytest.mark.parametrize("accepted", [
    ("validationFailureAction: Enforce", "validationFailureAction: enforce"),  # the CRD's enum has both cases
    ("validationFailureAction: Enforce", "validationFailureAction: Audit"),
    ("operator: Equals", "operator: equals"),  # Kyverno's engine lowercases operator names
    ("operator: Equals", "operator: Equal"),  # its deprecated spelling
    ("background: true", "background: null"),  # null is the field left out
    ("background: true", "admission: true"),
])
def test_what_kyverno_accepts_loads(tmp_path: Path, accepted: tuple[str, str]) -> None:
    load([write(tmp_path, POLICY.replace(*accepted, 1))])


def library_policies() -> list[Any]:
    roots = [REPO / "policies", conformance_dir("kyverno-policies") / "pod-security",
             conformance_dir("kyverno-policies") / "best-practices"]
    return [d for root in roots if root.is_dir() for f in find_files(root) for d in load_file(f) if is_kyverno(d)]


def test_every_library_policy_fits_the_schema() -> None:
    docs = library_policies()
    assert len(docs) >= 9
    for doc in docs:
        check_document(doc.obj, "Policy")


NODE_FIELDS = sorted((name, field) for name, fields in NODES.items() for field in fields)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=12),
       st.sampled_from(sorted(NODES)))
def test_any_field_a_node_does_not_have_is_named_by_its_path(key: str, node: str) -> None:
    value = {key: None}
    if key in NODES[node]:
        check_document(value, node)
        return
    with pytest.raises(SchemaError) as err:
        check_document(value, node)
    assert err.value.path == (key,)
    assert str(err.value).startswith(f"{key}: unknown field")


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(NODE_FIELDS), st.integers(min_value=0, max_value=40))
def test_a_dropped_letter_suggests_a_field_of_the_node(node_field: tuple[str, str], at: int) -> None:
    node, field = node_field
    if len(field) < 4:
        return
    typo = field[: at % len(field)] + field[at % len(field) + 1:]
    if typo in NODES[node]:
        return
    with pytest.raises(SchemaError) as err:
        check_document({typo: None}, node)
    suggested = err.value.message.rpartition("did you mean ")[2].strip("'?")
    assert suggested in NODES[node]


# --- Gatekeeper constraints, PodSecurityException, PolicyTest ---------------------------------------------

TEMPLATE = """\
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: k8srequiredlabels
spec:
  crd:
    spec:
      names:
        kind: K8sRequiredLabels
  targets:
  - target: admission.k8s.gatekeeper.sh
    rego: |
      package k8srequiredlabels
      violation[{"msg": "no"}] { false }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sRequiredLabels
metadata:
  name: c
spec:
  enforcementAction: deny
  match:
    kinds:
    - apiGroups: [""]
      kinds: [Pod]
"""


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("enforcementAction: deny", "enforcementAction: Deny",
     "21: spec.enforcementAction: 'Deny' is not one of deny, dryrun, warn, scoped; did you mean 'deny'?"),
    ("enforcementAction: deny", "enforcementAction: enforce",
     "21: spec.enforcementAction: 'enforce' is not one of deny, dryrun, warn, scoped"),
    ("  match:", "  matches:", "22: spec.matches: unknown field; did you mean 'match'?"),
    ("    - apiGroups", "    - apiGroup", "24: spec.match.kinds[0].apiGroup: unknown field; did you mean 'apiGroups'?"),
    ("    kinds:", "    excludedNamespace: [kube-system]\n    kinds:",
     "23: spec.match.excludedNamespace: unknown field; did you mean 'excludedNamespaces'?"),
])
def test_bad_gatekeeper_constraints_are_load_errors_at_their_line(tmp_path: Path, old: str, new: str,
                                                                  expected: str) -> None:
    assert old in TEMPLATE
    assert load_error(tmp_path, TEMPLATE.replace(old, new, 1)) == expected


EXCEPTION = """\
apiVersion: admission.dev/v1
kind: PodSecurityException
metadata:
  name: agent
  namespace: monitoring
spec:
  match: {kinds: [DaemonSet], names: ["node-agent*"]}
  controls: [hostNamespaces]
  owner: team-observability
  reason: reads node metrics
  expires: "2099-01-01"
"""


def test_pod_security_exceptions_load_and_typos_are_named(tmp_path: Path) -> None:
    load([write(tmp_path, EXCEPTION)])
    assert load_error(tmp_path, EXCEPTION.replace("  owner:", "  onwer:")) == \
        "9: spec.onwer: unknown field; did you mean 'owner'?"
    assert load_error(tmp_path, EXCEPTION.replace("names:", "name:")) == \
        "7: spec.match.name: unknown field; did you mean 'names'?"


def test_a_policy_test_with_a_typo_is_a_format_failure(tmp_path: Path) -> None:
    from admission.testing.own import run_policy_test

    doc = {"apiVersion": "admission.dev/v1", "kind": "PolicyTest", "policies": ["p.yaml"], "resources": ["r.yaml"],
           "results": [{"policy": "p", "rule": "r", "kind": "Pod", "resources": ["a"], "reslt": "pass"}]}
    [got] = run_policy_test(tmp_path / "t.test.yaml", doc)
    assert (got.name, got.passed, got.detail) == \
        ("format", False, "results[0].reslt: unknown field; did you mean 'result'?")


def test_a_document_from_stdin_is_reported_at_its_own_line() -> None:
    from admission.manifests import load_text

    [doc] = load_text(POLICY.replace("background: true", "background: 1"), "-")
    with pytest.raises(PolicyError) as err:
        schema.validate(doc, "Policy")
    assert str(err.value) == "-:1: spec.background: must be a boolean, not an integer"


def test_the_schema_only_names_fields_it_knows() -> None:
    """Every Node a table refers to is itself in the table."""
    def refs(kind: Any) -> list[str]:
        if isinstance(kind, schema.Node):
            return [kind.name]
        if isinstance(kind, schema.ListOf):
            return refs(kind.item)
        if isinstance(kind, schema.Only):
            return refs(kind.kind)
        if isinstance(kind, schema.MapOf):
            return refs(kind.value)
        return []

    missing = {r for fields in NODES.values() for kind in fields.values() for r in refs(kind) if r not in NODES}
    assert not missing
