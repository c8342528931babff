"""Kyverno's CEL kinds against the YAML dialect on the same three checks, side by side in one run.

    python bench/cel_kyverno_bench.py [--seconds 1.0]

The three checks of bench/cel_bench.py (memory limits, registry, app label) on the same Pods, written as a
ValidatingPolicy (one variable, three validations), as a ClusterPolicy with one `validate.cel` rule, and as
the ClusterPolicy pattern/deny rules of the YAML dialect; each loaded alone through admission.policyset and
timed through Engine.review (validate phase). Times are CPU time of this process, best of 5 rounds; compare
them within one run only.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cel_bench import KYVERNO, best, pod  # noqa: E402

from admission import policyset  # noqa: E402
from admission.engine import Phase  # noqa: E402
from admission.engines import Context  # noqa: E402
from admission.review import Request  # noqa: E402

CHECKS = """\
  - expression: variables.containers.all(c, has(c.resources) && has(c.resources.limits) && has(c.resources.limits.memory))
    message: every container needs a memory limit
  - expression: variables.containers.all(c, c.image.startsWith('registry.example.com/'))
    message: images must come from registry.example.com
  - expression: has(object.metadata.labels) && 'app' in object.metadata.labels
    message: the app label is required
"""

VPOL = """\
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: checks}
spec:
  validationActions: [Deny]
  autogen: {podControllers: {controllers: []}}
  matchConstraints:
    resourceRules:
    - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}
  variables:
  - {name: containers, expression: object.spec.containers}
  validations:
""" + CHECKS

CLUSTER_POLICY_CEL = """\
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: checks}
spec:
  validationFailureAction: Enforce
  rules:
  - name: checks
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      cel:
        variables:
        - {name: containers, expression: object.spec.containers}
        expressions:
""" + "".join("      " + line + "\n" for line in CHECKS.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    engines = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in (("YAML", KYVERNO), ("ValidatingPolicy", VPOL), ("validate.cel", CLUSTER_POLICY_CEL)):
            (Path(tmp) / f"{name}.yaml").write_text(text)
            engines[name] = policyset.load([Path(tmp) / f"{name}.yaml"])
    ctx = Context()
    print(f"{'case':<10} " + " ".join(f"{n + ' µs':>20}" for n in engines) + "   throughput / YAML")
    for case, good in (("pod-ok", True), ("pod-bad", False)):
        request = Request.for_object(copy.deepcopy(pod(good)))
        for name, engine in engines.items():
            assert engine.review(request, ctx, Phase.VALIDATE).decision.allowed == good, f"{name} disagrees on {case}"
        times = {n: best(lambda e=e, r=request: e.review(r, ctx, Phase.VALIDATE), args.seconds)
                 for n, e in engines.items()}
        ratios = ", ".join(f"{n} {times['YAML'] / t:.0%}" for n, t in times.items() if n != "YAML")
        print(f"{case:<10} " + " ".join(f"{t:20.1f}" for t in times.values()) + f"   {ratios}")


if __name__ == "__main__":
    main()
