"""Kyverno's pod-controller auto-generation (its autogen v1).

A policy whose rules match Pods also applies to the pod template of the workloads that create Pods:
`autogen-<rule>` for DaemonSet, Deployment, Job, StatefulSet, ReplicaSet and ReplicationController
(`spec.template`), and `autogen-cronjob-<rule>` for CronJob (`spec.jobTemplate.spec.template`).
Patterns are moved under the template and `request.object.spec` / `.metadata` references are rewritten.

As in Kyverno, the whole policy is left alone when any rule names resources, selects by labels or
annotations, mixes Pod with other kinds, or uses patchesJson6902 (those may not carry over to a template);
the annotation `pod-policies.kyverno.io/autogen-controllers` (`none`, or a list of kinds) narrows it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from admission.engines.yaml.policy import Policy, Rule

CRONJOB = "CronJob"
POD_CONTROLLERS = ("DaemonSet", "Deployment", "Job", "StatefulSet", "ReplicaSet", "ReplicationController", CRONJOB)
_NON_CRONJOB = frozenset(POD_CONTROLLERS) - {CRONJOB}
GVK = {
    "DaemonSet": "apps/v1/DaemonSet",
    "Deployment": "apps/v1/Deployment",
    "Job": "batch/v1/Job",
    "StatefulSet": "apps/v1/StatefulSet",
    "ReplicaSet": "apps/v1/ReplicaSet",
    "ReplicationController": "v1/ReplicationController",
    "CronJob": "batch/v1/CronJob",
    "Pod": "v1/Pod",
}
_POD_OR_CONTROLLER = frozenset(POD_CONTROLLERS) | {"Pod"}

_REWRITES = {
    "controllers": (
        ("request.object.spec", "request.object.spec.template.spec"),
        ("request.oldObject.spec", "request.oldObject.spec.template.spec"),
        ("request.object.metadata", "request.object.spec.template.metadata"),
        ("request.oldObject.metadata", "request.oldObject.spec.template.metadata"),
    ),
    "cronjob": (
        ("request.object.spec", "request.object.spec.jobTemplate.spec.template.spec"),
        ("request.oldObject.spec", "request.oldObject.spec.jobTemplate.spec.template.spec"),
        ("request.object.metadata", "request.object.spec.jobTemplate.spec.template.metadata"),
        ("request.oldObject.metadata", "request.oldObject.spec.jobTemplate.spec.template.metadata"),
    ),
}


def kind_name(selector: str) -> str:
    """The bare kind of a kind selector: `Pod`, `v1/Pod`, `apps/v1/Deployment`, `Pod/exec` -> `Pod`, `Deployment`."""
    parts = str(selector).split("/")
    if len(parts) == 1:
        return parts[0].split(".")[0]
    if len(parts) == 2:
        # Version/Kind or Kind/subresource
        return parts[1] if _is_version(parts[0]) else parts[0]
    if len(parts) == 3:
        return parts[1] if _is_version(parts[0]) else parts[2]
    if len(parts) == 4:
        return parts[2]
    return ""


def _is_version(s: str) -> bool:

    return re.fullmatch(r"v\d+((alpha|beta)\d+)?|\*", s) is not None


def contains_kind(kinds: list[str], kind: str) -> bool:
    return any(kind_name(k) == kind for k in kinds)


def descriptions(block: dict[str, Any] | None) -> Iterator[dict[str, Any]]:
    """The `resources` descriptions of a match/exclude block: legacy, any[] and all[]."""
    if not block:
        return
    if isinstance(block.get("resources"), dict):
        yield block["resources"]
    for key in ("any", "all"):
        for f in block.get(key) or []:
            if isinstance(f, dict) and isinstance(f.get("resources"), dict):
                yield f["resources"]


def block_kinds(block: dict[str, Any] | None) -> list[str]:
    return [str(k) for d in descriptions(block) for k in (d.get("kinds") or [])]


def _supported(desc: dict[str, Any]) -> bool:
    kinds = [str(k) for k in desc.get("kinds") or []]
    if desc.get("name") or desc.get("names") or desc.get("selector") is not None:
        return False
    if desc.get("annotations") is not None:
        return False
    return not (len(kinds) > 1 and contains_kind(kinds, "Pod"))


def can_autogen(rules: list[dict[str, Any]]) -> bool:
    """Kyverno's CanAutoGen over the rules as written."""
    needed = False
    for rule in rules:
        if rule.get("generate") is not None:
            return False
        mutate = rule.get("mutate") or {}
        if mutate.get("patchesJson6902"):
            return False
        if any(isinstance(f, dict) and f.get("patchesJson6902") for f in mutate.get("foreach") or []):
            return False
        for block in (rule.get("match"), rule.get("exclude")):
            for desc in descriptions(block):
                if not _supported(desc):
                    return False
                if any(kind_name(k) in _POD_OR_CONTROLLER for k in desc.get("kinds") or []):
                    needed = True
    return needed


def controllers_for(policy: Policy) -> set[str]:
    """The controller kinds rules are generated for (empty: none)."""
    if not can_autogen([r.spec for r in policy.rules]):
        return set()
    value = policy.annotations.get("pod-policies.kyverno.io/autogen-controllers")
    if value is None:
        return set(POD_CONTROLLERS)
    wanted = {v.strip() for v in value.split(",") if v.strip()}
    if "none" in wanted:
        return set()
    if "all" in wanted:
        return set(POD_CONTROLLERS)
    return wanted & set(POD_CONTROLLERS)


def generate(policy: Policy) -> tuple[list[Rule], set[str]]:
    """The generated rules of a policy and the controller kinds they apply to."""
    from admission.engines.yaml.policy import Rule

    controllers = controllers_for(policy)
    if not controllers:
        return [], set()
    out: list[Rule] = []
    for rule in policy.rules:
        if rule.name.startswith("autogen-"):
            continue
        workload = sorted(controllers & _NON_CRONJOB)
        base = _for_controllers(rule.spec, workload or [CRONJOB])
        if base is None:
            continue
        if workload:
            spec = _rewrite(base, "controllers")
            out.append(Rule(spec["name"], spec, rule.action, rule.failure_policy,
                            rule.skip_background_requests, base_name=rule.name, template="template"))
        if CRONJOB in controllers:
            cron = _for_cronjob(base, rule.name)
            if cron is not None:
                spec = _rewrite(cron, "cronjob")
                out.append(Rule(spec["name"], spec, rule.action, rule.failure_policy,
                                rule.skip_background_requests, base_name=rule.name, template="jobTemplate"))
    return out, controllers if out else set()


def _name(prefix: str, name: str) -> str:
    return f"{prefix}-{name}"[:63]


Replace = Callable[[list[Any], list[str]], list[Any]]


def _for_controllers(rule: dict[str, Any], kinds: list[str]) -> dict[str, Any] | None:
    match = rule.get("match") or {}
    exclude = rule.get("exclude")
    exclude_kinds = block_kinds(exclude)
    if not contains_kind(block_kinds(match), "Pod"):
        return None
    if exclude_kinds and not contains_kind(exclude_kinds, "Pod"):
        return None

    def only_pod_filters(filters: list[Any], ks: list[str]) -> list[Any]:
        out = copy.deepcopy(filters)
        for f in out:
            res = f.get("resources") if isinstance(f, dict) else None
            if isinstance(res, dict) and contains_kind([str(k) for k in res.get("kinds") or []], "Pod"):
                res["kinds"] = [GVK.get(k, k) for k in ks]
        return out

    return _generate(_name("autogen", rule["name"]), rule, "template", kinds, only_pod_filters)


def _for_cronjob(controllers_rule: dict[str, Any], base_name: str) -> dict[str, Any] | None:
    def every_filter(filters: list[Any], ks: list[str]) -> list[Any]:
        out = copy.deepcopy(filters)
        for f in out:
            if isinstance(f, dict):
                f.setdefault("resources", {})
                if isinstance(f["resources"], dict):
                    f["resources"]["kinds"] = [GVK.get(k, k) for k in ks]
        return out

    return _generate(_name("autogen-cronjob", base_name), controllers_rule, "jobTemplate", [CRONJOB], every_filter)


def _generate(name: str, rule: dict[str, Any], key: str, kinds: list[str], replace: Replace) -> dict[str, Any] | None:
    rule = copy.deepcopy(rule)
    rule["name"] = name
    gvks = [GVK.get(k, k) for k in kinds]
    match = rule.setdefault("match", {})
    if match.get("any"):
        match["any"] = replace(match["any"], kinds)
    elif match.get("all"):
        match["all"] = replace(match["all"], kinds)
    else:
        match.setdefault("resources", {})["kinds"] = gvks
    exclude = rule.get("exclude")
    if isinstance(exclude, dict):
        if exclude.get("any"):
            exclude["any"] = replace(exclude["any"], kinds)
        elif exclude.get("all"):
            exclude["all"] = replace(exclude["all"], kinds)
        elif isinstance(exclude.get("resources"), dict) and exclude["resources"].get("kinds"):
            exclude["resources"]["kinds"] = gvks

    def wrap(body: Any) -> dict[str, Any]:
        return {"spec": {key: body}}

    mutate = rule.get("mutate")
    if isinstance(mutate, dict):
        if mutate.get("patchStrategicMerge") is not None:
            rule["mutate"] = {"patchStrategicMerge": wrap(mutate["patchStrategicMerge"])}
            return rule
        if mutate.get("foreach"):
            rule["mutate"] = {"foreach": [
                {k: v for k, v in f.items() if k in ("list", "context", "preconditions")}
                | {"patchStrategicMerge": wrap(f.get("patchStrategicMerge"))}
                for f in mutate["foreach"] if isinstance(f, dict)
            ]}
            return rule
    validate = rule.get("validate")
    if isinstance(validate, dict):
        kept = {k: validate[k] for k in ("message", "failureAction", "validationFailureAction",
                                         "failureActionOverrides", "allowExistingViolations") if k in validate}
        if validate.get("cel") is not None:  # its expressions are rewritten with the references (_rewrite)
            rule["validate"] = kept | {"cel": validate["cel"]}
            return rule
        if validate.get("pattern") is not None:
            rule["validate"] = kept | {"pattern": wrap(validate["pattern"])}
            return rule
        if validate.get("deny") is not None:
            rule["validate"] = kept | {"deny": validate["deny"]}
            return rule
        if validate.get("podSecurity") is not None:
            rule["validate"] = kept | {"podSecurity": copy.deepcopy(validate["podSecurity"])}
            return rule
        if validate.get("anyPattern") is not None:
            rule["validate"] = kept | {"anyPattern": [wrap(p) for p in validate["anyPattern"]]}
            return rule
        if validate.get("foreach"):
            rule["validate"] = kept | {"foreach": validate["foreach"]}
            return rule
    return None


def _rewrite(rule: dict[str, Any], which: str) -> dict[str, Any]:
    """Kyverno rewrites variable references by plain text replacement over the serialized rule. CEL
    expressions (validate.cel, celPreconditions) are left as written: the generated Rule's `template` makes
    their trees read the template's pod when they are compiled (admission.engines.yaml.cel.compile_rule)."""
    text = json.dumps(rule)
    for old, new in _REWRITES[which]:
        text = text.replace(old, new)
    result: dict[str, Any] = json.loads(text)
    return result
