"""Loading ValidatingAdmissionPolicy, MutatingAdmissionPolicy and their bindings (admissionregistration.k8s.io).

Accepted: ValidatingAdmissionPolicy/Binding v1 (and v1beta1, v1alpha1), MutatingAdmissionPolicy/Binding v1,
v1beta1 and v1alpha1. Every field is checked against the API's (an unknown field, a wrong type or a value outside
its enum is an error naming the field's line and the nearest valid name), and every expression is compiled once,
here: a syntax or type error is `file:line: expression: problem`.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from admission.engines import PolicyError
from admission.engines.cel.expr import KUBERNETES_VARIABLES, Definition, Program, compile_expression
from admission.engines.cel.matching import OPERATIONS, SCOPES, MatchResources, ResourceRule
from admission.manifests import Document, Locator
from admission.results import FailurePolicy

log = logging.getLogger(__name__)

GROUP = "admissionregistration.k8s.io"
VALIDATING = "ValidatingAdmissionPolicy"
MUTATING = "MutatingAdmissionPolicy"
VERSIONS = {
    VALIDATING: ("v1", "v1beta1", "v1alpha1"),
    f"{VALIDATING}Binding": ("v1", "v1beta1", "v1alpha1"),
    MUTATING: ("v1", "v1beta1", "v1alpha1"),
    f"{MUTATING}Binding": ("v1", "v1beta1", "v1alpha1"),
}
OBJECT_TYPES = ("Object", "JSONPatch")
# matchConditions cannot read the policy's variables
CONDITION_VARIABLES = tuple(v for v in KUBERNETES_VARIABLES if v != "variables")


def is_admission_policy(doc: Document) -> bool:
    obj = doc.obj
    return (isinstance(obj, dict) and str(obj.get("kind")) in VERSIONS
            and str(obj.get("apiVersion", "")).startswith(f"{GROUP}/"))


@dataclass(frozen=True)
class Check:
    """One compiled expression with where it was written (file:line) and its source."""

    program: Program
    name: str = ""


@dataclass(frozen=True)
class Validation:
    program: Program
    message: str = ""
    message_program: Program | None = None
    reason: str = ""


@dataclass(frozen=True)
class Mutation:
    patch_type: str  # "ApplyConfiguration" | "JSONPatch"
    program: Program


@dataclass(frozen=True)
class AdmissionPolicy:
    kind: str  # VALIDATING | MUTATING
    name: str
    source: str  # file:line
    match: MatchResources | None
    match_conditions: tuple[Check, ...] = ()
    validations: tuple[Validation, ...] = ()
    audit_annotations: tuple[tuple[str, Program], ...] = ()
    mutations: tuple[Mutation, ...] = ()
    failure_policy: FailurePolicy = FailurePolicy.FAIL
    param_kind: tuple[str, str] | None = None  # (apiVersion, kind)
    reinvocation: str = "Never"
    description: str = ""
    variables: tuple[tuple[str, Program], ...] = ()  # each variable compiled on its own, in order

    @property
    def mutates(self) -> bool:
        return self.kind == MUTATING


@dataclass(frozen=True)
class ParamRef:
    name: str = ""
    namespace: str = ""
    selector: Mapping[str, Any] | None = None
    not_found: str = "Deny"  # parameterNotFoundAction: Allow | Deny


@dataclass(frozen=True)
class Binding:
    kind: str  # VALIDATING | MUTATING (of the policy it binds)
    name: str
    policy_name: str
    source: str
    match: MatchResources | None = None
    param_ref: ParamRef | None = None
    actions: frozenset[str] = field(default_factory=lambda: frozenset({"Deny"}))


# --- field tables ---------------------------------------------------------------------------------------------

_STR, _LIST, _MAP, _BOOL = "string", "list", "object", "boolean"
_RULE = {"apiGroups": _LIST, "apiVersions": _LIST, "operations": _LIST, "resources": _LIST,
         "resourceNames": _LIST, "scope": _STR}
_MATCH = {"resourceRules": _LIST, "excludeResourceRules": _LIST, "namespaceSelector": _MAP,
          "objectSelector": _MAP, "matchPolicy": _STR}
_SPEC = {
    VALIDATING: {"paramKind": _MAP, "matchConstraints": _MAP, "validations": _LIST, "failurePolicy": _STR,
                 "auditAnnotations": _LIST, "matchConditions": _LIST, "variables": _LIST},
    MUTATING: {"paramKind": _MAP, "matchConstraints": _MAP, "variables": _LIST, "mutations": _LIST,
               "failurePolicy": _STR, "matchConditions": _LIST, "reinvocationPolicy": _STR},
}
_BINDING = {
    VALIDATING: {"policyName": _STR, "paramRef": _MAP, "matchResources": _MAP, "validationActions": _LIST},
    MUTATING: {"policyName": _STR, "paramRef": _MAP, "matchResources": _MAP},
}
_TYPES: dict[str, type | tuple[type, ...]] = {_STR: str, _LIST: list, _MAP: dict, _BOOL: bool}


class _Loader:
    """Checks and compiles one document; errors name the line of the field at fault."""

    def __init__(self, doc: Document, locator: Locator) -> None:
        self.doc = doc
        self.locator = locator

    def where(self, path: Sequence[str | int]) -> str:
        pointer = "".join(f"/{p}" for p in path)
        found = self.locator.locate(self.doc.file, self.doc.line, pointer)
        return f"{self.doc.file}:{found[0] if found else self.doc.line}"

    def error(self, path: Sequence[str | int], message: str) -> PolicyError:
        return PolicyError(self.where(path), f"{_format(path)}: {message}")

    def differs(self, path: Sequence[str | int], message: str) -> None:
        """A field the API server requires but the kyverno CLI (and we) default: loaded, with a warning
        naming file:line, so that what passes offline is not refused by the cluster unnoticed."""
        log.warning("%s: %s: %s", self.where(path), _format(path), message)

    def fields(self, value: Any, table: Mapping[str, str], path: Sequence[str | int]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"must be an object, not {_type_name(value)}")
        for key, item in value.items():
            if key not in table:
                hint = _did_you_mean(str(key), table)
                raise self.error([*path, key], f"unknown field{hint}")
            if item is not None and not isinstance(item, _TYPES[table[key]]):
                raise self.error([*path, key], f"must be {table[key]}, not {_type_name(item)}")
        return value

    def enum(self, value: Any, choices: Sequence[str], path: Sequence[str | int], default: str) -> str:
        if value is None:
            return default
        if value not in choices:
            raise self.error(path, f"{value!r} is not one of {', '.join(choices)}{_did_you_mean(str(value), choices)}")
        return str(value)

    def strings(self, value: Any, path: Sequence[str | int]) -> tuple[str, ...]:
        items = value or []
        for i, v in enumerate(items):
            if not isinstance(v, str):
                raise self.error([*path, i], f"must be a string, not {_type_name(v)}")
        return tuple(items)

    def compile(self, source: Any, path: Sequence[str | int], *, definitions: Sequence[Definition] = (),
                variables: Iterable[str] = KUBERNETES_VARIABLES, object_types: Sequence[str] = (),
                returns: Sequence[str] = ()) -> Program:
        """`returns`: the static types (cel-cpp's names: BOOL, STRING, NULL) the expression must have, as the
        API server requires of each kind of expression (a `dyn` one is refused too: `object.data.x` as a
        messageExpression must be `string(object.data.x)`)."""
        if not isinstance(source, str) or not source.strip():
            raise self.error(path, "an expression is required")
        program = compile_expression(source, where=self.where(path), variables=variables, definitions=definitions,
                                     object_types=object_types)
        if returns:
            got = str(program.compiled.return_type())
            if got not in returns:
                want = [_CEL_TYPE_NAMES.get(r, r.lower()) for r in returns]
                expected = want[0] if len(want) == 1 else f"one of [{' '.join(want)}]"
                raise PolicyError(self.where(path), f"{_shorten(source)}: must evaluate to {expected} but got "
                                                    f"{_cel_type_name(got)}")
        return program

    # -- pieces -----------------------------------------------------------------------------------------------

    def match_resources(self, value: Any, path: list[str | int], *, required: bool) -> MatchResources | None:
        if value is None:
            if required:
                raise self.error(path, "is required")
            return None
        spec = self.fields(value, _MATCH, path)
        rules = tuple(self.rule(r, [*path, "resourceRules", i]) for i, r in enumerate(spec.get("resourceRules") or []))
        exclude = tuple(self.rule(r, [*path, "excludeResourceRules", i])
                        for i, r in enumerate(spec.get("excludeResourceRules") or []))
        if required and not rules:
            raise self.error([*path, "resourceRules"], "at least one resource rule is required")
        policy = self.enum(spec.get("matchPolicy"), ("Equivalent", "Exact"), [*path, "matchPolicy"], "Equivalent")
        for key in ("namespaceSelector", "objectSelector"):
            self.selector(spec.get(key), [*path, key])
        if not rules and not required:
            # a binding's matchResources without rules narrows by selectors only
            rules = (ResourceRule(("*",), ("*",), ("*",), ("*/*",)),)
        return MatchResources(rules, exclude, spec.get("namespaceSelector") or None,
                              spec.get("objectSelector") or None, policy == "Exact")

    def selector(self, value: Any, path: list[str | int]) -> None:
        spec = self.fields(value, {"matchLabels": _MAP, "matchExpressions": _LIST}, path)
        for i, e in enumerate(spec.get("matchExpressions") or []):
            item = self.fields(e, {"key": _STR, "operator": _STR, "values": _LIST}, [*path, "matchExpressions", i])
            self.enum(item.get("operator"), ("In", "NotIn", "Exists", "DoesNotExist"),
                      [*path, "matchExpressions", i, "operator"], "")

    def rule(self, value: Any, path: list[str | int]) -> ResourceRule:
        spec = self.fields(value, _RULE, path)
        ops = self.strings(spec.get("operations"), [*path, "operations"])
        for i, op in enumerate(ops):
            self.enum(op, OPERATIONS, [*path, "operations", i], op)
        if not spec.get("operations"):
            # The API server refuses a rule without operations; the kyverno CLI applies it to every operation,
            # and so do we (its tests rely on it). A rule that names operations matches only those.
            self.differs([*path, "operations"], "the API server refuses a rule without operations; applied here to "
                                                "every operation, as the kyverno CLI does")
            ops = ("*",)
        return ResourceRule(
            api_groups=self.strings(spec.get("apiGroups"), [*path, "apiGroups"]),
            api_versions=self.strings(spec.get("apiVersions"), [*path, "apiVersions"]),
            operations=ops,
            resources=self.strings(spec.get("resources"), [*path, "resources"]),
            resource_names=self.strings(spec.get("resourceNames"), [*path, "resourceNames"]),
            scope=self.enum(spec.get("scope"), SCOPES, [*path, "scope"], "*"),
        )

    def definitions(self, value: Any, path: list[str | int]) -> tuple[list[Definition], list[tuple[str, Program]]]:
        """The variables as definitions the other expressions inline, and each compiled on its own (to say
        which one fails when an expression that reads it does, as the API server does)."""
        out: list[Definition] = []
        programs: list[tuple[str, Program]] = []
        for i, v in enumerate(value or []):
            item = self.fields(v, {"name": _STR, "expression": _STR}, [*path, i])
            name = item.get("name")
            if not name:
                raise self.error([*path, i, "name"], "a variable needs a name")
            if any(d.name == name for d in out):
                raise self.error([*path, i, "name"], f"variable {name!r} is defined twice")
            programs.append((str(name), self.compile(item.get("expression"), [*path, i, "expression"],
                                                     definitions=out)))
            out.append(Definition(str(name), str(item["expression"]), self.where([*path, i, "expression"])))
        return out, programs

    def conditions(self, value: Any, path: list[str | int]) -> tuple[Check, ...]:
        out: list[Check] = []
        for i, v in enumerate(value or []):
            item = self.fields(v, {"name": _STR, "expression": _STR}, [*path, i])
            if not item.get("name"):
                raise self.error([*path, i, "name"], "a match condition needs a name")
            out.append(Check(self.compile(item.get("expression"), [*path, i, "expression"],
                                          variables=CONDITION_VARIABLES, returns=("BOOL",)), str(item["name"])))
        return tuple(out)


def load_policy(doc: Document, locator: Locator) -> AdmissionPolicy:
    obj = doc.obj
    kind = str(obj["kind"])
    ld = _Loader(doc, locator)
    _check_version(ld, obj, kind)
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or "")
    if not name:
        raise ld.error(["metadata", "name"], "a policy needs a name")
    spec = ld.fields(obj.get("spec"), _SPEC[kind], ["spec"])
    match = ld.match_resources(spec.get("matchConstraints"), ["spec", "matchConstraints"], required=True)
    definitions, variables = ld.definitions(spec.get("variables"), ["spec", "variables"])
    conditions = ld.conditions(spec.get("matchConditions"), ["spec", "matchConditions"])
    failure = FailurePolicy(ld.enum(spec.get("failurePolicy"), ("Fail", "Ignore"), ["spec", "failurePolicy"], "Fail"))
    param_kind = None
    if spec.get("paramKind") is not None:
        pk = ld.fields(spec["paramKind"], {"apiVersion": _STR, "kind": _STR}, ["spec", "paramKind"])
        if not pk.get("kind"):
            raise ld.error(["spec", "paramKind", "kind"], "is required")
        param_kind = (str(pk.get("apiVersion") or ""), str(pk["kind"]))
    annotations = meta.get("annotations") or {}
    description = str(annotations.get("policies.kyverno.io/description") or annotations.get("description") or "")
    common = dict(kind=kind, name=name, source=f"{doc.file}:{doc.line}", match=match, match_conditions=conditions,
                  variables=tuple(variables),
                  failure_policy=failure, param_kind=param_kind, description=description)
    if kind == VALIDATING:
        validations = _validations(ld, spec.get("validations"), definitions)
        audits = _audit_annotations(ld, spec.get("auditAnnotations"), definitions)
        if not validations and not audits:
            raise ld.error(["spec", "validations"], "a policy needs validations or auditAnnotations")
        return AdmissionPolicy(validations=validations, audit_annotations=audits, **common)  # type: ignore[arg-type]
    mutations = _mutations(ld, spec.get("mutations"), definitions)
    if spec.get("reinvocationPolicy") is None:  # the API server has no default for it and refuses the policy
        raise ld.error(["spec", "reinvocationPolicy"], "is required (Never or IfNeeded)")
    reinvocation = ld.enum(spec.get("reinvocationPolicy"), ("Never", "IfNeeded"), ["spec", "reinvocationPolicy"],
                           "Never")
    return AdmissionPolicy(mutations=mutations, reinvocation=reinvocation, **common)  # type: ignore[arg-type]


def _validations(ld: _Loader, value: Any, definitions: Sequence[Definition]) -> tuple[Validation, ...]:
    out: list[Validation] = []
    for i, v in enumerate(value or []):
        path: list[str | int] = ["spec", "validations", i]
        item = ld.fields(v, {"expression": _STR, "message": _STR, "messageExpression": _STR, "reason": _STR}, path)
        program = ld.compile(item.get("expression"), [*path, "expression"], definitions=definitions,
                             returns=("BOOL",))
        message_program = None
        if item.get("messageExpression") is not None:
            message_program = ld.compile(item["messageExpression"], [*path, "messageExpression"],
                                         definitions=definitions, returns=("STRING",))
        reason = ld.enum(item.get("reason"), ("Unauthorized", "Forbidden", "Invalid", "RequestEntityTooLarge"),
                         [*path, "reason"], "Invalid")
        out.append(Validation(program, str(item.get("message") or ""), message_program, reason))
    return tuple(out)


def _audit_annotations(ld: _Loader, value: Any, definitions: Sequence[Definition]) -> tuple[tuple[str, Program], ...]:
    out: list[tuple[str, Program]] = []
    for i, v in enumerate(value or []):
        path: list[str | int] = ["spec", "auditAnnotations", i]
        item = ld.fields(v, {"key": _STR, "valueExpression": _STR}, path)
        if not item.get("key"):
            raise ld.error([*path, "key"], "is required")
        out.append((str(item["key"]), ld.compile(item.get("valueExpression"), [*path, "valueExpression"],
                                                 definitions=definitions, returns=("STRING", "NULL"))))
    return tuple(out)


def _mutations(ld: _Loader, value: Any, definitions: Sequence[Definition]) -> tuple[Mutation, ...]:
    out: list[Mutation] = []
    if not value:
        raise ld.error(["spec", "mutations"], "a mutating policy needs mutations")
    for i, v in enumerate(value):
        path: list[str | int] = ["spec", "mutations", i]
        item = ld.fields(v, {"patchType": _STR, "applyConfiguration": _MAP, "jsonPatch": _MAP}, path)
        patch_type = ld.enum(item.get("patchType"), ("ApplyConfiguration", "JSONPatch"), [*path, "patchType"], "")
        if not patch_type:
            raise ld.error([*path, "patchType"], "is required (ApplyConfiguration or JSONPatch)")
        key = "applyConfiguration" if patch_type == "ApplyConfiguration" else "jsonPatch"
        other = "jsonPatch" if key == "applyConfiguration" else "applyConfiguration"
        if item.get(other) is not None:
            raise ld.error([*path, other], f"must not be set with patchType {patch_type}")
        body = ld.fields(item.get(key), {"expression": _STR}, [*path, key])
        program = ld.compile(body.get("expression"), [*path, key, "expression"], definitions=definitions,
                             object_types=OBJECT_TYPES)
        out.append(Mutation(patch_type, program))
    return tuple(out)


def load_binding(doc: Document, locator: Locator) -> Binding:
    obj = doc.obj
    kind = str(obj["kind"])
    policy_kind = kind.removesuffix("Binding")
    ld = _Loader(doc, locator)
    _check_version(ld, obj, kind)
    name = str((obj.get("metadata") or {}).get("name") or "")
    if not name:
        raise ld.error(["metadata", "name"], "a binding needs a name")
    spec = ld.fields(obj.get("spec"), _BINDING[policy_kind], ["spec"])
    if not spec.get("policyName"):
        raise ld.error(["spec", "policyName"], "is required")
    match = ld.match_resources(spec.get("matchResources"), ["spec", "matchResources"], required=False)
    param_ref = None
    if spec.get("paramRef") is not None:
        pr = ld.fields(spec["paramRef"], {"name": _STR, "namespace": _STR, "selector": _MAP,
                                          "parameterNotFoundAction": _STR}, ["spec", "paramRef"])
        if pr.get("name") and pr.get("selector") is not None:
            raise ld.error(["spec", "paramRef", "selector"], "name and selector are mutually exclusive")
        if pr.get("selector") is not None:
            ld.selector(pr["selector"], ["spec", "paramRef", "selector"])
        if not pr.get("parameterNotFoundAction"):
            ld.differs(["spec", "paramRef", "parameterNotFoundAction"],
                       "the API server requires it; Deny is assumed here, as the kyverno CLI does")
        param_ref = ParamRef(str(pr.get("name") or ""), str(pr.get("namespace") or ""), pr.get("selector"),
                             ld.enum(pr.get("parameterNotFoundAction"), ("Allow", "Deny"),
                                     ["spec", "paramRef", "parameterNotFoundAction"], "Deny"))
    actions: frozenset[str] = frozenset({"Deny"})
    if policy_kind == VALIDATING:
        raw = ld.strings(spec.get("validationActions"), ["spec", "validationActions"])
        for i, a in enumerate(raw):
            ld.enum(a, ("Deny", "Warn", "Audit"), ["spec", "validationActions", i], a)
        if "Deny" in raw and "Warn" in raw:
            raise ld.error(["spec", "validationActions"], "Deny and Warn may not be used together")
        if raw:
            actions = frozenset(raw)
        else:
            ld.differs(["spec", "validationActions"], "the API server requires it; Deny is assumed here, as the "
                                                     "kyverno CLI does")
    return Binding(policy_kind, name, str(spec["policyName"]), f"{doc.file}:{doc.line}", match, param_ref, actions)


def _check_version(ld: _Loader, obj: Mapping[str, Any], kind: str) -> None:
    version = str(obj.get("apiVersion", "")).partition("/")[2]
    if version not in VERSIONS[kind]:
        raise ld.error(["apiVersion"], f"{kind} is not served in {GROUP}/{version} "
                                       f"(use {', '.join(f'{GROUP}/{v}' for v in VERSIONS[kind])})")


_CEL_TYPE_NAMES = {"NULL": "null_type"}


def _cel_type_name(name: str) -> str:
    """A cel-cpp type name as cel-go prints it: LIST<INT> -> list(int), NULL -> null_type."""
    if name in _CEL_TYPE_NAMES:
        return _CEL_TYPE_NAMES[name]
    return name.replace("<", "(").replace(">", ")").lower() if name.isupper() or "<" in name else name


def _shorten(expression: str, limit: int = 120) -> str:
    one = " ".join(expression.split())
    return one if len(one) <= limit else one[: limit - 3] + "..."


def _format(path: Sequence[str | int]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    by_lower = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean {by_lower[close[0]]!r}?" if close else ""
