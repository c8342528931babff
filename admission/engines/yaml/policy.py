"""The parsed Kyverno policy model: a ClusterPolicy or namespaced Policy and its rules.

Parsing first checks the document against Kyverno's schema (admission.engines.yaml.schema: unknown fields,
enum values, types, with "did you mean"), then what Kyverno's admission webhook would reject (a rule
without a name or a match, a rule of no known type, malformed anchors), and raises PolicyError naming the
file:line and what is wrong. What this engine cannot evaluate is refused the same way rather than silently ignored: verifyImages,
validate.manifests / assert, mutate.targets (mutate existing), generate.foreach. The CEL of `validate.cel` and
`celPreconditions` is compiled here, once (admission.engines.yaml.cel): an expression that does not compile
does not load.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

from yaml import nodes as yaml_nodes

from admission.engines import PolicyError
from admission.engines.yaml import schema
from admission.engines.yaml.variables import literal_regex_error
from admission.manifests import Document
from admission.match import RuleMatcher
from admission.results import Action, FailurePolicy, parse_action, parse_failure_policy

AUTOGEN_ANNOTATION = "pod-policies.kyverno.io/autogen-controllers"

# The rule types Kyverno knows; only validate and mutate are evaluated here.
RULE_TYPES = ("validate", "mutate", "generate", "verifyImages")
VALIDATE_KINDS = ("pattern", "anyPattern", "deny", "foreach", "podSecurity", "cel", "manifests", "assert")
SUPPORTED_VALIDATE_KINDS = ("pattern", "anyPattern", "deny", "foreach", "podSecurity", "cel")

# `(key)`, `=(key)`, `X(key)`, `^(key)`, `<(key)`, `+(key)`
_ANCHOR = re.compile(r"^(\(|=\(|X\(|\^\(|<\(|\+\()(.+)\)$")
_ANCHOR_PREFIXES = ("(", "=(", "X(", "^(", "<(", "+(")


@dataclass(frozen=True)
class Rule:
    name: str
    spec: dict[str, Any]  # the rule as written (for generated rules: as generated)
    action: Action
    failure_policy: FailurePolicy
    skip_background_requests: bool = True
    base_name: str = ""  # the rule it was generated from ("" for a rule as written)
    template: str = ""  # generated for pod controllers: the pod template its CEL reads ("template", "jobTemplate")
    cel: Any = None  # the compiled validate.cel and celPreconditions (admission.engines.yaml.cel.CelRule)

    @property
    def match(self) -> dict[str, Any]:
        return self.spec.get("match") or {}

    @property
    def exclude(self) -> dict[str, Any] | None:
        return self.spec.get("exclude") or None

    @cached_property
    def matcher(self) -> RuleMatcher:
        """The match and exclude blocks read once (a loaded rule's spec never changes)."""
        return RuleMatcher(self.match, self.exclude)

    @cached_property
    def may_override(self) -> bool:
        """Whether validate.failureActionOverrides is given (read once: a loaded rule never changes)."""
        return (self.validate or {}).get("failureActionOverrides") is not None

    @property
    def context(self) -> list[dict[str, Any]]:
        return list(self.spec.get("context") or [])

    @property
    def preconditions(self) -> Any:
        return self.spec.get("preconditions")

    @property
    def validate(self) -> dict[str, Any] | None:
        v = self.spec.get("validate")
        return v if isinstance(v, dict) else None

    @property
    def mutate(self) -> dict[str, Any] | None:
        m = self.spec.get("mutate")
        return m if isinstance(m, dict) else None

    @property
    def generate(self) -> dict[str, Any] | None:
        g = self.spec.get("generate")
        return g if isinstance(g, dict) else None


@dataclass(frozen=True)
class Policy:
    name: str
    namespace: str  # "" for a ClusterPolicy
    kind: str  # ClusterPolicy | Policy
    source: str  # file:line
    rules: tuple[Rule, ...]
    # Rules generated for pod controllers, and the controller kinds they are generated for.
    generated: tuple[Rule, ...] = ()
    controllers: frozenset[str] = frozenset()
    action: Action = Action.AUDIT
    failure_policy: FailurePolicy = FailurePolicy.FAIL
    background: bool = True
    emit_warning: bool = False
    apply_one: bool = False
    annotations: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def rules_for(self, kind: str) -> tuple[Rule, ...]:
        """The rules Kyverno evaluates for a resource of this kind: generated rules only for controllers."""
        if kind in self.controllers and self.generated:
            return self.rules + self.generated
        return self.rules

    @cached_property
    def may_override(self) -> bool:
        """Whether spec.validationFailureActionOverrides is given (read once)."""
        return (self.raw.get("spec") or {}).get("validationFailureActionOverrides") is not None

    @property
    def all_rules(self) -> tuple[Rule, ...]:
        return self.rules + self.generated

    @property
    def mutates(self) -> bool:
        return any(r.mutate is not None for r in self.rules)

    @property
    def validates(self) -> bool:
        return any(r.validate is not None for r in self.rules)

    @property
    def generates(self) -> bool:
        return any(r.generate is not None for r in self.rules)


def parse_policy(doc: Document) -> Policy:
    """A Policy from a loaded document. Raises PolicyError for a malformed one."""
    source = f"{doc.file}:{doc.line}"
    obj = doc.obj
    if not isinstance(obj, dict):
        raise PolicyError(source, "a policy must be a mapping")
    schema.validate(doc, "Policy")
    kind = str(obj.get("kind") or "")
    raw_meta = obj.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    name = str(meta.get("name") or "")
    if not name:
        raise PolicyError(source, f"{kind} has no metadata.name")
    namespace = str(meta.get("namespace") or "") if kind == "Policy" else ""
    # A namespaced Policy applies only in its namespace; one loaded from a file without a namespace applies
    # everywhere, as the kyverno CLI treats it.
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise PolicyError(source, f"{kind} {name} has no spec")
    raw_rules = spec.get("rules")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise PolicyError(source, f"{kind} {name}: spec.rules must be a non-empty list")
    action = parse_action(spec.get("validationFailureAction"), Action.AUDIT)
    failure_policy = parse_failure_policy(spec.get("failurePolicy"), FailurePolicy.FAIL)
    annotations = {str(k): str(v) for k, v in (meta.get("annotations") or {}).items()}
    rules: list[Rule] = []
    seen: set[str] = set()
    lines = _rule_lines(doc)
    for i, raw in enumerate(raw_rules):
        where = f"{kind} {name}: spec.rules[{i}]"
        rule_source = f"{doc.file}:{lines[i]}" if i < len(lines) else source
        rule = parse_rule(raw, where, rule_source, action, failure_policy)
        if rule.name in seen:
            raise PolicyError(rule_source, f"{where}: duplicate rule name {rule.name!r}")
        seen.add(rule.name)
        rules.append(rule)
    policy = Policy(
        name=name,
        namespace=namespace,
        kind=kind,
        source=source,
        rules=tuple(rules),
        action=action,
        failure_policy=failure_policy,
        background=spec.get("background", True) is not False,
        emit_warning=spec.get("emitWarning") is True,
        apply_one=str(spec.get("applyRules") or "").lower() == "one",
        annotations=annotations,
        raw=obj,
    )
    from admission.engines.yaml.autogen import generate

    generated, controllers = generate(policy)
    generated = [_with_cel(r, policy.source, f"{kind} {name}: rule {r.name} (generated from {r.base_name})")
                 for r in generated]
    return replace(policy, generated=tuple(generated), controllers=frozenset(controllers))


def _with_cel(rule: Rule, source: str, where: str) -> Rule:
    """The rule with its CEL compiled (a PolicyError names the expression that does not compile)."""
    if not rule.spec.get("celPreconditions") and not isinstance((rule.validate or {}).get("cel"), dict):
        return rule
    from admission.engines.yaml.cel import compile_rule

    return replace(rule, cel=compile_rule(rule.spec, source, where, rule.template))


def _rule_lines(doc: Document) -> list[int]:
    """The line of each of spec.rules, read back from the file once (empty when it cannot be)."""
    node = schema.node_at(doc, ("spec", "rules"))
    return [item.start_mark.line + 1 for item in node.value] if isinstance(node, yaml_nodes.SequenceNode) else []


def parse_rule(raw: Any, where: str, source: str, action: Action, failure_policy: FailurePolicy) -> Rule:
    if not isinstance(raw, dict):
        raise PolicyError(source, f"{where}: a rule must be a mapping")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise PolicyError(source, f"{where}: rule has no name")
    where = f"{where} ({name})"
    match = raw.get("match")
    if not isinstance(match, dict) or not _has_filters(match):
        raise PolicyError(source, f"{where}: rule has no match (it must say which resources it applies to)")
    exclude = raw.get("exclude")
    if exclude is not None and not isinstance(exclude, dict):
        raise PolicyError(source, f"{where}: exclude must be a mapping")
    types = [t for t in RULE_TYPES if raw.get(t) is not None]
    if not types:
        unknown = [k for k in raw if k not in ("name", "match", "exclude", "context", "preconditions",
                                                 "skipBackgroundRequests", "reportProperties", "celPreconditions")]
        extra = f" (unknown keys: {', '.join(map(str, unknown))})" if unknown else ""
        raise PolicyError(source, f"{where}: rule has no type: expected one of {', '.join(RULE_TYPES)}{extra}")
    if len(types) > 1:
        raise PolicyError(source, f"{where}: rule has several types ({', '.join(types)}); a rule has exactly one")
    kind = types[0]
    if kind == "verifyImages":
        raise PolicyError(source, f"{where}: verifyImages rules are not supported")
    if kind == "generate":
        _check_generate(raw["generate"], where, source)
    regex_problem = literal_regex_error(raw)
    if regex_problem is not None:
        raise PolicyError(source, f"{where}: {regex_problem}")
    rule_action = action
    if kind == "validate":
        validate = raw["validate"]
        if not isinstance(validate, dict):
            raise PolicyError(source, f"{where}: validate must be a mapping")
        present = [k for k in VALIDATE_KINDS if validate.get(k) is not None]
        if not present:
            raise PolicyError(source, f"{where}: validate needs one of {', '.join(SUPPORTED_VALIDATE_KINDS)}")
        if len(present) > 1:
            raise PolicyError(source, f"{where}: validate has several of {', '.join(present)}; use exactly one")
        if present[0] not in SUPPORTED_VALIDATE_KINDS:
            raise PolicyError(source, f"{where}: validate.{present[0]} is not supported")
        if present[0] == "anyPattern" and not isinstance(validate["anyPattern"], list):
            raise PolicyError(source, f"{where}: validate.anyPattern must be a list of patterns")
        if present[0] == "deny" and not isinstance(validate["deny"], dict):
            raise PolicyError(source, f"{where}: validate.deny must be a mapping with conditions")
        if present[0] == "foreach":
            _check_foreach(validate["foreach"], f"{where}: validate.foreach", source)
        if present[0] == "cel":
            cel = validate["cel"]
            if not isinstance(cel, dict) or not cel.get("expressions"):
                raise PolicyError(source, f"{where}: validate.cel needs expressions")
        if present[0] == "podSecurity":
            ps = validate["podSecurity"]
            if not isinstance(ps, dict) or str(ps.get("level") or "") not in ("baseline", "restricted", "privileged"):
                raise PolicyError(source, f"{where}: validate.podSecurity.level must be baseline, restricted or privileged")
        for key in ("pattern", "anyPattern"):
            if validate.get(key) is not None:
                check_anchors(validate[key], f"{where}: validate.{key}", source, allow_add=False)
        if validate.get("failureAction") is not None:
            rule_action = parse_action(validate.get("failureAction"), action)
        elif validate.get("validationFailureAction") is not None:
            rule_action = parse_action(validate.get("validationFailureAction"), action)
    elif kind == "mutate":
        mutate = raw["mutate"]
        if not isinstance(mutate, dict):
            raise PolicyError(source, f"{where}: mutate must be a mapping")
        kinds = [k for k in ("patchStrategicMerge", "patchesJson6902", "foreach") if mutate.get(k) is not None]
        if mutate.get("targets") is not None or mutate.get("mutateExistingOnPolicyUpdate") is not None:
            raise PolicyError(source, f"{where}: mutate.targets (mutating existing resources in the background) "
                                      "is not supported; only the admitted resource can be mutated")
        if not kinds:
            raise PolicyError(source, f"{where}: mutate needs patchStrategicMerge, patchesJson6902 or foreach")
        if mutate.get("patchStrategicMerge") is not None:
            check_anchors(mutate["patchStrategicMerge"], f"{where}: mutate.patchStrategicMerge", source, allow_add=True)
        if mutate.get("patchesJson6902") is not None and not isinstance(mutate["patchesJson6902"], (str, list)):
            raise PolicyError(source, f"{where}: mutate.patchesJson6902 must be a string of JSON Patch operations")
        if mutate.get("foreach") is not None:
            _check_foreach(mutate["foreach"], f"{where}: mutate.foreach", source)
    skip_bg = raw.get("skipBackgroundRequests")
    rule = Rule(
        name=name,
        spec=raw,
        action=rule_action,
        failure_policy=failure_policy,
        skip_background_requests=skip_bg is not False,
    )
    return _with_cel(rule, source, where)


def _check_generate(spec: Any, where: str, source: str) -> None:
    if not isinstance(spec, dict):
        raise PolicyError(source, f"{where}: generate must be a mapping")
    if spec.get("foreach") is not None:
        raise PolicyError(source, f"{where}: generate.foreach is not supported")
    present = [k for k in ("data", "clone", "cloneList") if spec.get(k) is not None]
    if len(present) > 1:
        raise PolicyError(source, f"{where}: generate takes one of data, clone or cloneList, not {' and '.join(present)}")
    if "cloneList" in present:
        if not isinstance(spec["cloneList"], dict) or not spec["cloneList"].get("kinds"):
            raise PolicyError(source, f"{where}: generate.cloneList needs kinds")
    elif not (spec.get("kind") and spec.get("name")):
        raise PolicyError(source, f"{where}: generate needs the kind and name of the resource to generate")


def _has_filters(block: dict[str, Any]) -> bool:
    if block.get("any") or block.get("all"):
        return True
    return any(block.get(k) for k in ("resources", "subjects", "roles", "clusterRoles"))


def _check_foreach(value: Any, where: str, source: str) -> None:
    if not isinstance(value, list) or not value:
        raise PolicyError(source, f"{where} must be a non-empty list")
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise PolicyError(source, f"{where}[{i}] must be a mapping")
        if not isinstance(entry.get("list"), str) or not entry["list"].strip():
            raise PolicyError(source, f"{where}[{i}] needs a `list` (a JMESPath expression)")
        for key in ("pattern", "anyPattern"):
            if entry.get(key) is not None:
                check_anchors(entry[key], f"{where}[{i}].{key}", source, allow_add=False)
        if entry.get("patchStrategicMerge") is not None:
            check_anchors(entry["patchStrategicMerge"], f"{where}[{i}].patchStrategicMerge", source, allow_add=True)
        if entry.get("foreach") is not None:
            _check_foreach(entry["foreach"], f"{where}[{i}].foreach", source)


def check_anchors(pattern: Any, where: str, source: str, *, allow_add: bool) -> None:
    """Reject malformed anchor keys such as `(name` or `Y(name)`, and `+()` outside mutations."""
    if isinstance(pattern, list):
        for i, item in enumerate(pattern):
            check_anchors(item, f"{where}[{i}]", source, allow_add=allow_add)
        return
    if not isinstance(pattern, dict):
        return
    for key, value in pattern.items():
        k = str(key)
        m = _ANCHOR.match(k)
        if m:
            if m.group(1) == "+(" and not allow_add:
                raise PolicyError(source, f"{where}: the add-if-absent anchor {k!r} is only allowed in mutations")
            if "(" in m.group(2) or ")" in m.group(2):
                raise PolicyError(source, f"{where}: malformed anchor {k!r}")
        elif k.startswith(_ANCHOR_PREFIXES):
            raise PolicyError(source, f"{where}: malformed anchor {k!r} (an anchor is `(key)`, `=(key)`, `X(key)`, "
                                      f"`^(key)`, `<(key)` or `+(key)`)")
        elif k.endswith(")") and "(" in k and not k.startswith("$("):
            raise PolicyError(source, f"{where}: unknown anchor {k!r}")
        check_anchors(value, f"{where}.{k}", source, allow_add=allow_add)


def anchor_of(key: str) -> tuple[str, str] | None:
    """(`(`, `=(`, ... , the inner key) for an anchored key, else None."""
    m = _ANCHOR.match(key)
    return (m.group(1), m.group(2)) if m else None
