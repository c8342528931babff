"""The compiled Rego path against regopy and against the same checks written as YAML policies.

    python bench/rego_compiled_bench.py [--pods 2000]

Side by side in one run, over the same generated Pods (most compliant; some from other registries, some
without limits, some without the required label):

1. lint-like evaluation of every Pod with the Gatekeeper library's k8sallowedrepos, k8scontainerlimits and
   k8srequiredlabels (templates from the library, constraints after its samples, matching every Pod):
   - compiled: the templates compiled once (`compiler.compile_modules`, `varying=("parameters",)`), one
     `violation` query per constraint on the plain input `{review, parameters}`, the constraints of a
     template sharing per review what does not read `input.parameters` (as the engine does);
   - engine: the engine's path (`RegoEvaluator.validate`: match, the review, the compiled templates);
   - regopy: the same with the templates on regopy (`ADMISSION_REGO_COMPILED=0`; a quarter of the Pods);
   - YAML: the same three checks as Kyverno ClusterPolicies (`KyvernoEvaluator.validate`);
   - and each path with one trivial policy, subtracted as the fixed cost of a request.
   Target (issue 9): compiled at most 2x YAML; per evaluation at most OPA's ~137 µs.
2. 1, 3 and 20 constraints on the compiled path and through the engine (target: 20 cost at most 2x 3); the
   20 with the allowedrepos constraints' parameters distinct and the others' equal within their template
   (the engine evaluates equal parameters once per Pod), and `20d` with every constraint's parameters
   distinct.

Also checks that the compiled and engine paths find the same number of violations.
Times are CPU time of the process, the best of five interleaved passes (regopy: one), on a shared machine:
compare within one run only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml  # noqa: E402

from admission.engines import Context  # noqa: E402
from admission.engines.rego import RegoEvaluator, gatekeeper  # noqa: E402
from admission.engines.rego.compiler import compile_modules  # noqa: E402
from admission.engines.rego.parser import parse_module  # noqa: E402
from admission.engines.yaml.evaluator import KyvernoEvaluator  # noqa: E402
from admission.manifests import Document  # noqa: E402
from admission.review import Request  # noqa: E402

LIBRARY = Path(__file__).resolve().parents[2] / "shared" / "conformance" / "gatekeeper-library" / "library" / "general"
TEMPLATES = {"allowedrepos": "K8sAllowedRepos", "containerlimits": "K8sContainerLimits", "requiredlabels": "K8sRequiredLabels"}
TARGET = "admission.k8s.gatekeeper.sh"


def pod(i: int) -> dict[str, Any]:
    image = f"registry.example.com/team/app{i}:1.{i % 13}"
    if i % 5 == 0:
        image = f"docker.io/library/nginx:1.{i % 25}"
    container: dict[str, Any] = {
        "name": "app",
        "image": image,
        "ports": [{"containerPort": 8080}],
        "env": [{"name": f"VAR_{k}", "value": f"value-{k}"} for k in range(4)],
        "resources": {"limits": {"cpu": "100m", "memory": "256Mi"}, "requests": {"cpu": "50m", "memory": "128Mi"}},
    }
    if i % 7 == 0:
        del container["resources"]["limits"]
    containers = [container]
    if i % 3 == 0:
        containers.append({"name": "proxy", "image": "registry.example.com/platform/proxy:2.4.1",
                           "resources": {"limits": {"cpu": "50m", "memory": "64Mi"}}})
    labels = {"app": f"app{i}", "owner": "alice.agilebank.demo"}
    if i % 11 == 0:
        del labels["owner"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"app{i}", "namespace": ("shop", "search", "identity")[i % 3], "labels": labels},
        "spec": {"containers": containers, "restartPolicy": "Always", "serviceAccountName": "default"},
    }


def _template(folder: str) -> dict[str, Any]:
    return yaml.safe_load((LIBRARY / folder / "template.yaml").read_text())


def _rego_of(template: dict[str, Any]) -> list[str]:
    for target in template["spec"]["targets"]:
        if target.get("target") == TARGET:
            if target.get("rego"):
                return [target["rego"], *(target.get("libs") or [])]
            for code in target.get("code") or []:
                if code.get("engine") == "Rego":
                    return [code["source"]["rego"], *(code["source"].get("libs") or [])]
    raise SystemExit(f"no Rego in template {template['metadata']['name']}")


def constraints(n: int, distinct: bool = False) -> list[dict[str, Any]]:
    """n constraints over the three templates (parameters after the library's samples), all matching Pods;
    the allowedrepos constraints differ in their parameters, the others have the same ones (evaluated once
    per Pod by the engine) unless `distinct`."""
    out = []
    folders = list(TEMPLATES)
    for i in range(n):
        folder = folders[i % 3]
        if folder == "allowedrepos":
            params: dict[str, Any] = {"repos": ["registry.example.com/", f"registry{i}.example.com/"]}
        elif folder == "containerlimits":
            params = {"cpu": "200m", "memory": f"{1024 + i}Mi" if distinct else "1Gi"}
        else:
            params = {"labels": [{"key": "owner", "allowedRegex": "^[a-zA-Z]+.agilebank.demo$"}]}
            if distinct:
                params["labels"].append({"key": "app", "allowedRegex": f"^app[0-9]*$|^x{i}$"})
        out.append({
            "apiVersion": "constraints.gatekeeper.sh/v1beta1",
            "kind": TEMPLATES[folder],
            "metadata": {"name": f"{folder}-{i}"},
            "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}, "parameters": params},
        })
    return out


YAML_POLICIES = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: allowed-repos}
spec:
  validationFailureAction: Enforce
  rules:
  - name: repos
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "images must come from registry.example.com/"
      pattern:
        spec:
          containers:
          - image: "registry.example.com/*"
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: container-limits}
spec:
  validationFailureAction: Enforce
  rules:
  - name: limits
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "containers must set cpu and memory limits"
      pattern:
        spec:
          containers:
          - resources:
              limits:
                cpu: "?*"
                memory: "?*"
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: required-labels}
spec:
  validationFailureAction: Enforce
  rules:
  - name: owner
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "the owner label is required"
      pattern:
        metadata:
          labels:
            owner: "?*"
"""

YAML_TRIVIAL = """
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: trivial}
spec:
  validationFailureAction: Enforce
  rules:
  - name: never
    match: {any: [{resources: {kinds: [Pod]}}]}
    validate:
      message: "never"
      pattern:
        kind: "Pod"
"""

TRIVIAL_TEMPLATE = {
    "apiVersion": "templates.gatekeeper.sh/v1",
    "kind": "ConstraintTemplate",
    "metadata": {"name": "benchtrivial"},
    "spec": {
        "crd": {"spec": {"names": {"kind": "BenchTrivial"}}},
        "targets": [{"target": TARGET, "rego": 'package benchtrivial\n\nviolation[{"msg": "never"}] {\n  input.review.object.kind == input.parameters.kind\n}\n'}],
    },
}
TRIVIAL_CONSTRAINT = {
    "apiVersion": "constraints.gatekeeper.sh/v1beta1",
    "kind": "BenchTrivial",
    "metadata": {"name": "trivial"},
    "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]}, "parameters": {"kind": "Nothing"}},
}


def _docs(objs: list[dict[str, Any]]) -> list[Document]:
    return [Document(o, "bench", 1, i) for i, o in enumerate(objs)]


def review_of(request: Request) -> dict[str, Any]:
    """input.review as the Gatekeeper path builds it."""
    return {
        "kind": {"group": request.kind.group, "version": request.kind.version, "kind": request.kind.kind},
        "object": request.object,
        "oldObject": request.old_object,
        "name": request.name,
        "namespace": request.namespace,
        "operation": request.operation,
        "userInfo": request.user_info,
    }


class CompiledSet:
    """The compiled path as the engine would run it: per request one review, one query per constraint."""

    def __init__(self, templates: list[dict[str, Any]], cons: list[dict[str, Any]]) -> None:
        by_kind = {}
        for t in templates:
            kind = t["spec"]["crd"]["spec"]["names"]["kind"]
            modules = [parse_module(src, file=t["metadata"]["name"]) for src in _rego_of(t)]
            pkg = ".".join(str(s.value) for s in modules[0].package.path.path)  # type: ignore[union-attr]
            compiled = compile_modules(modules, varying=("parameters",))
            by_kind[kind] = (compiled, compiled.document(f"data.{pkg}.violation"))
        self.constraints = [(by_kind[c["kind"]], c["spec"].get("parameters") or {}) for c in cons]
        # as the engine: constraints of a template with equal parameters are one evaluation, and a template's
        # distinct parameters share what does not read them
        self.groups = [(kind, gatekeeper.value_key(p)) for c, p in zip(cons, (p for _, p in self.constraints), strict=True)
                       for kind in [c["kind"]]]
        distinct: dict[int, set[Any]] = {}
        for ((compiled, _d), _p), g in zip(self.constraints, self.groups, strict=True):
            distinct.setdefault(id(compiled), set()).add(g)
        self.many = {k for k, v in distinct.items() if len(v) > 1}

    def validate(self, request: Request) -> int:
        review = review_of(request)
        found = 0
        shared: dict[int, Any] = {}  # per template: what does not read input.parameters, once per review
        done: dict[Any, int] = {}
        for ((compiled, doc), params), g in zip(self.constraints, self.groups, strict=True):
            n = done.get(g)
            if n is None:
                sh = shared.get(id(compiled))
                if sh is None and id(compiled) in self.many:  # a template's only parameters share nothing
                    sh = shared[id(compiled)] = compiled.shared()
                ctx = compiled.context({"review": review, "parameters": params}, {}, shared=sh)
                n = done[g] = len(doc(ctx))
            found += n
        return found


def timed_all(fns: dict[str, Any], requests: list[Request], rounds: int = 5) -> dict[str, tuple[float, int]]:
    """Per function: the best of `rounds` passes over the requests (CPU time of this process, the rounds of
    all functions interleaved, so that other work on a shared machine weighs on each alike), and the
    violations found."""
    for fn in fns.values():
        for r in requests[:50]:
            fn(r)
    best = dict.fromkeys(fns, float("inf"))
    found = dict.fromkeys(fns, 0)
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.process_time()
            n = 0
            for r in requests:
                n += fn(r)
            best[name] = min(best[name], time.process_time() - start)
            found[name] = n
    return {name: (best[name], found[name]) for name in fns}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not LIBRARY.is_dir():
        raise SystemExit(f"the Gatekeeper library is not beside the repository ({LIBRARY})")
    requests = [Request.for_object(pod(i)) for i in range(args.pods)]
    templates = [_template(f) for f in TEMPLATES]
    three = constraints(3)
    ctx = Context()

    compiled = CompiledSet(templates, three)
    compiled_trivial = CompiledSet([TRIVIAL_TEMPLATE], [TRIVIAL_CONSTRAINT])
    engine = RegoEvaluator.from_sources(_docs([*templates, *three]), [])
    engine_trivial = RegoEvaluator.from_sources(_docs([TRIVIAL_TEMPLATE, TRIVIAL_CONSTRAINT]), [])
    gatekeeper.USE_COMPILED = False  # the same engine path, templates on regopy
    rego = RegoEvaluator.from_sources(_docs([*templates, *three]), [])
    rego_trivial = RegoEvaluator.from_sources(_docs([TRIVIAL_TEMPLATE, TRIVIAL_CONSTRAINT]), [])
    gatekeeper.USE_COMPILED = True
    kyverno = KyvernoEvaluator.from_documents(_docs(list(yaml.safe_load_all(YAML_POLICIES))))
    kyverno_trivial = KyvernoEvaluator.from_documents(_docs(list(yaml.safe_load_all(YAML_TRIVIAL))))

    def fails(results: list[Any]) -> int:
        return sum(1 for r in results if str(getattr(r, "status", "")).lower().endswith("fail"))

    rows = timed_all({
        "compiled": compiled.validate,
        "compiled, trivial": compiled_trivial.validate,
        "engine": lambda r: fails(engine.validate(r, ctx)),
        "engine, trivial": lambda r: fails(engine_trivial.validate(r, ctx)),
        "YAML": lambda r: fails(kyverno.validate(r, ctx)),
        "YAML, trivial": lambda r: fails(kyverno_trivial.validate(r, ctx)),
    }, requests, args.rounds)
    rows.update(timed_all({
        "regopy": lambda r: fails(rego.validate(r, ctx)),
        "regopy, trivial": lambda r: fails(rego_trivial.validate(r, ctx)),
    }, requests[: max(len(requests) // 4, 1)], 1))
    n = len(requests)
    per = {k: v[0] / (n if not k.startswith("regopy") else max(n // 4, 1)) for k, v in rows.items()}
    print(f"{n} Pods, k8sallowedrepos + k8scontainerlimits + k8srequiredlabels (3 constraints); CPU µs per Pod")
    for name, (_secs, found) in rows.items():
        print(f"  {name:<18} {per[name] * 1e6:8.1f} µs/Pod  {found} violations")
    net = {k: per[k] - per[k + ', trivial'] for k in ("compiled", "engine", "regopy", "YAML")}
    print("  net of the trivial policy (µs/Pod): " + ", ".join(f"{k} {v * 1e6:.1f}" for k, v in net.items()))
    print(f"  compiled / YAML: {per['compiled'] / per['YAML']:.2f}x gross, {net['compiled'] / max(net['YAML'], 1e-12):.2f}x net (target ≤ 2)")
    print(f"  engine / YAML:   {per['engine'] / per['YAML']:.2f}x gross, {net['engine'] / max(net['YAML'], 1e-12):.2f}x net")
    print(f"  regopy / YAML:   {per['regopy'] / per['YAML']:.2f}x gross, {net['regopy'] / max(net['YAML'], 1e-12):.2f}x net")
    print(f"  compiled per evaluation (3 constraints): {per['compiled'] * 1e6:.1f} µs (target ≤ 137 µs, OPA's)")
    if rows["compiled"][1] != rows["engine"][1]:
        print(f"  WARNING: compiled found {rows['compiled'][1]} violations, the engine {rows['engine'][1]}")

    print("constraints per Pod (CPU µs per Pod): the compiled path, and the engine (match, review, results)")
    print("(20: 7 allowedrepos with distinct parameters, 7 containerlimits and 6 requiredlabels with equal ones;")
    print(" 20d: every constraint's parameters distinct)")
    sizes: dict[str, list[dict[str, Any]]] = {"1": constraints(1), "3": constraints(3), "20": constraints(20),
                                              "20d": constraints(20, distinct=True)}
    fns: dict[str, Any] = {}
    for label, cons in sizes.items():
        fns[f"compiled {label}"] = CompiledSet(templates, cons).validate
        ev = RegoEvaluator.from_sources(_docs([*templates, *cons]), [])
        fns[f"engine {label}"] = lambda r, ev=ev: fails(ev.validate(r, ctx))
    counts = timed_all(fns, requests, args.rounds)
    us = {k: v[0] / n * 1e6 for k, v in counts.items()}
    for path in ("compiled", "engine"):
        print(f"  {path}: " + ", ".join(f"{label} {us[f'{path} {label}']:.1f}" for label in sizes) + " µs/Pod")
        print(f"    20 / 3: {us[f'{path} 20'] / us[f'{path} 3']:.2f}x, 20d / 3: {us[f'{path} 20d'] / us[f'{path} 3']:.2f}x "
              f"(target ≤ 2);  20 / 1: {us[f'{path} 20'] / us[f'{path} 1']:.2f}x, 20d / 1: {us[f'{path} 20d'] / us[f'{path} 1']:.2f}x")
        if counts[f"{path} 20"][1] != counts["compiled 20"][1]:
            print(f"  WARNING: {path} 20 found {counts[f'{path} 20'][1]} violations, compiled {counts['compiled 20'][1]}")


if __name__ == "__main__":
    main()
