"""The CEL dialect against the YAML dialect on the same three checks, side by side in one run.

    python bench/cel_bench.py [--seconds 1.0]

Three typical checks on a Pod, written once as a ValidatingAdmissionPolicy (three validations, bound with a
binding) and once as a Kyverno ClusterPolicy (three validate rules: pattern, pattern, deny), each loaded alone
through admission.policyset and timed through Engine.review (validate phase: match, bind, evaluate, decide) on
the same compliant and non-compliant Pods with three containers, and
the HTTP benchmark's realistic Pod. Target (issue 11): the CEL policy at 50% or
more of the YAML dialect's throughput. Then the cost of binding the request (converting the Pod into CEL values,
done once per request) beside one evaluation. Times are CPU time of this process, best of 5 rounds; compare
them within one run only.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from admission import policyset  # noqa: E402
from admission.engine import Phase  # noqa: E402
from admission.engines import Context  # noqa: E402
from admission.engines.cel import compile_expression, kubernetes_activation  # noqa: E402
from admission.review import Request  # noqa: E402

VAP = """\
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: checks}
spec:
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}
  validations:
  - expression: object.spec.containers.all(c, has(c.resources) && has(c.resources.limits) && has(c.resources.limits.memory))
    message: every container needs a memory limit
  - expression: object.spec.containers.all(c, c.image.startsWith('registry.example.com/'))
    message: images must come from registry.example.com
  - expression: has(object.metadata.labels) && 'app' in object.metadata.labels
    message: the app label is required
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: checks}
spec: {policyName: checks, validationActions: [Deny]}
"""

KYVERNO = """\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: checks}
spec:
  validationFailureAction: Enforce
  rules:
  - name: limits
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: every container needs a memory limit
      pattern: {spec: {containers: [{resources: {limits: {memory: "?*"}}}]}}
  - name: registry
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: images must come from registry.example.com
      pattern: {spec: {containers: [{image: "registry.example.com/*"}]}}
  - name: label
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: the app label is required
      deny: {conditions: {any: [{key: "{{ request.object.metadata.labels.app || '' }}", operator: Equals, value: ""}]}}
"""


def pod(good: bool) -> dict[str, Any]:
    containers = []
    for i in range(3):
        c: dict[str, Any] = {"name": f"c{i}", "image": f"registry.example.com/team/app{i}:1.{i}",
                             "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}},
                             "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False},
                             "ports": [{"containerPort": 8080 + i}], "env": [{"name": "MODE", "value": "prod"}]}
        if not good:
            c["image"] = f"docker.io/app{i}"
            del c["resources"]["limits"]
        containers.append(c)
    labels = {"app": "bench", "tier": "web"} if good else {"tier": "web"}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "apps", "labels": labels, "annotations": {"owner": "team"}},
            "spec": {"containers": containers, "serviceAccountName": "web"}}


def best(fn: Callable[[], Any], seconds: float) -> float:
    """CPU µs per call, best of 5 rounds of about seconds/5 each."""
    n = 1
    while True:
        t = time.process_time()
        for _ in range(n):
            fn()
        if time.process_time() - t > 0.05:
            break
        n *= 2
    per_round = max(1, int(n * (seconds / 5) / max(time.process_time() - t, 1e-9)))
    rounds = []
    for _ in range(5):
        t = time.process_time()
        for _ in range(per_round):
            fn()
        rounds.append((time.process_time() - t) / per_round * 1e6)
    return min(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vap.yaml").write_text(VAP)
        (Path(tmp) / "kyverno.yaml").write_text(KYVERNO)
        cel = policyset.load([Path(tmp) / "vap.yaml"])
        yaml_ = policyset.load([Path(tmp) / "kyverno.yaml"])
    ctx = Context()
    print(f"{'case':<14} {'YAML µs':>9} {'CEL µs':>9} {'CEL throughput / YAML':>22}")
    import random

    from http_bench import pod_review

    # the HTTP benchmark's realistic Pod (~5.5 KB: env, probes, an init container)
    realistic = pod_review(random.Random(1))["request"]["object"]
    for name, obj in (("pod-ok", pod(True)), ("pod-bad", pod(False)), ("pod-realistic", realistic)):
        request = Request.for_object(copy.deepcopy(obj))
        verdicts = [e.review(request, ctx, Phase.VALIDATE).decision for e in (cel, yaml_)]
        assert verdicts[0].allowed == verdicts[1].allowed, f"the dialects disagree on {name}"
        y = best(lambda r=request: yaml_.review(r, ctx, Phase.VALIDATE), args.seconds)
        c = best(lambda r=request: cel.review(r, ctx, Phase.VALIDATE), args.seconds)
        print(f"{name:<14} {y:9.1f} {c:9.1f} {y / c:21.0%}")
    request = Request.for_object(pod(True))
    program = compile_expression("object.spec.containers.all(c, has(c.resources))", where="bench:1")
    activation = kubernetes_activation(request)
    bind_us = best(lambda: kubernetes_activation(request), args.seconds)
    eval_us = best(lambda: program.evaluate(activation), args.seconds)
    print(f"binding the request once: {bind_us:.1f} µs; one evaluation on that binding: {eval_us:.1f} µs")
    # cel-cpp converts a bound value as an expression first reads it: the binding's real cost shows in its first
    # evaluation; the policy set's binding holds only what its expressions can read (ADMISSION_CEL_PRUNE=0: all)
    reads = next((e.reads for e in cel.evaluators if hasattr(e, "reads")), None)
    for name, obj in (("pod-ok", pod(True)), ("pod-realistic", realistic)):
        request = Request.for_object(obj)
        first = best(lambda r=request: program.evaluate(kubernetes_activation(r, reads)), args.seconds)
        print(f"{name}: binding + first evaluation {first:.1f} µs")


if __name__ == "__main__":
    main()
