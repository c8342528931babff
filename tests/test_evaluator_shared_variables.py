"""Rules without context entries read the request's variables without copying them; a rule's context
never reaches another rule, before or after it."""

from __future__ import annotations

from admission.engines import Context
from admission.engines.yaml.evaluator import KyvernoEvaluator
from admission.manifests import load_text
from admission.results import Status
from admission.review import Request

POLICY = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: scopes
spec:
  validationFailureAction: Enforce
  rules:
    - name: {name}
      match:
        any:
          - resources:
              kinds: [Pod]
{context}
      validate:
        message: "{{{{ {message} }}}}"
        deny:
          conditions:
            any:
              - key: "{{{{ {key} }}}}"
                operator: Equals
                value: "{value}"
"""

CONTEXT = """      context:
        - name: team
          variable:
            value: payments"""


def policy(name: str, key: str, value: str, message: str, context: str = "") -> str:
    return POLICY.format(name=name, key=key, value=value, message=message, context=context)


def test_context_stays_in_its_rule() -> None:
    texts = [
        policy("before", "images.containers.app.tag", "latest", "'before'"),
        policy("with-context", "team", "payments", "team", CONTEXT),
        policy("after", "team", "payments", "'after'"),
        policy("images-again", "images.containers.app.tag", "latest", "images.containers.app.name"),
    ]
    evaluators = [KyvernoEvaluator.from_documents(load_text(t.replace("name: scopes", f"name: p{i}"), f"p{i}.yaml"))
                  for i, t in enumerate(texts)]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "apps"},
           "spec": {"containers": [{"name": "app", "image": "nginx:latest"}]}}
    request = Request.for_object(pod)
    evaluator = KyvernoEvaluator([p for e in evaluators for p in e.compiled])
    results = {r.rule: r for r in evaluator.validate(request, Context())}
    assert results["before"].status == Status.FAIL and results["before"].message == "before"
    assert results["with-context"].status == Status.FAIL and results["with-context"].message == "payments"
    # `team` was the other rule's: here it is not defined
    assert results["after"].status == Status.ERROR
    assert "team" in results["after"].message
    assert results["images-again"].status == Status.FAIL and results["images-again"].message == "nginx"
