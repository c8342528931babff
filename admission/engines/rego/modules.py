"""Plain OPA modules (`*.rego`): the input is the AdmissionReview (`input.request...`).

A module is a policy when its package defines `deny` (messages: denials), `warn` (warnings), `violation`
(objects with `msg`: denials) or `patch` (JSONPatch operations, applied on the mutating endpoint). Other
modules are libraries the policies may import. All policies are compiled into one program; one query per
request gathers every rule of every policy the request matches:

    package modall
    deny["p0"] := x if { contains(input.matched__, " p0 "); x := data.<package>.deny }

(the matched keys travel as one string, " p0 p2 ": the engine converts an input at ~10 µs per JSON value).
The input holds only the parts of `input.request` the modules can read (see paths.py). Each file is parsed
(a syntax error names file:line:col), placed (functions renamed apart, see passes.rename_functions; partial
sets of a package only one file defines as comprehensions) and built by pipeline.build.

Optional metadata, in a `# METADATA` block before `package` (its `custom:` mapping) or in a sidecar
`<file>.meta.yaml`: `name`, `kinds` (kind names, `*` for any), `operations`, `failurePolicy` (Fail|Ignore).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from admission.engines import OPERATIONS, PolicyError, PolicyInfo, Target
from admission.engines.rego import ast
from admission.engines.rego import passes as ps
from admission.engines.rego.backend import BackendError
from admission.engines.rego.compiler import Compiled, Ctx, Unsupported, try_compile
from admission.engines.rego.fastpath import COMPILED
from admission.engines.rego.inventory import trim_review
from admission.engines.rego.isolate import Unit, check
from admission.engines.rego.paths import Paths, input_paths, prune
from admission.engines.rego.pipeline import REGOPY, Evaluator, SourceMap, build, parse, regopy_sources
from admission.engines.rego.values import UNDEFINED, UNSUPPORTED_VALUE, EvalError, to_json
from admission.patch import apply
from admission.results import Action, FailurePolicy, RuleResult, Status, parse_failure_policy
from admission.review import Request
from admission.types import Object

RULES = ("deny", "warn", "violation", "patch")
WHOLE = "(the whole set)"
# the modules run on the compiled evaluator when the compiler covers them all (else, or with 0, on regopy)
USE_COMPILED = os.environ.get("ADMISSION_REGO_COMPILED", "1") != "0"


@dataclass
class Module:
    key: str  # p<N>
    name: str
    package: str
    file: str
    rules: tuple[str, ...]
    kinds: tuple[str, ...] = ("*",)
    operations: tuple[str, ...] = ("*",)
    failure_policy: FailurePolicy = FailurePolicy.FAIL
    source: str = ""  # the module as the Rego engine reads it

    def applies(self, request: Request) -> bool:
        kind_ok = "*" in self.kinds or request.kind.kind in self.kinds
        op_ok = "*" in self.operations or request.operation in self.operations
        return kind_ok and op_ok


def _metadata(path: Path, text: str) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    sidecar = path.with_name(path.stem + ".meta.yaml")
    if sidecar.exists():
        try:
            loaded = yaml.safe_load(sidecar.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise PolicyError(str(sidecar), f"invalid metadata: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise PolicyError(f"{sidecar}:1", "metadata must be a mapping (name, kinds, operations, failurePolicy)")
        meta.update(loaded or {})
        _check_metadata(meta, f"{sidecar}:1")
    m = re.search(r"^# METADATA\n((?:#.*\n)+)", text, re.M)
    if m:
        block = "\n".join(line[2:] if line.startswith("# ") else line[1:] for line in m.group(1).splitlines())
        try:
            loaded = yaml.safe_load(block)
        except yaml.YAMLError as exc:
            line = text[: m.start()].count("\n") + 1
            raise PolicyError(f"{path}:{line}", f"invalid METADATA block: {exc}") from None
        if isinstance(loaded, dict):
            custom = loaded.get("custom")
            meta.update(custom if isinstance(custom, dict) else {})
            if "title" in loaded and "name" not in meta:
                meta["name"] = loaded["title"]
            _check_metadata(meta, f"{path}:{text[: m.start()].count(chr(10)) + 1}")
    return meta


def _check_metadata(meta: dict[str, Any], where: str) -> None:
    """Wrongly typed metadata is an error, not silently ignored: it decides what a policy applies to."""
    if "name" in meta and not (isinstance(meta["name"], str) and meta["name"]):
        raise PolicyError(where, f"metadata name must be a non-empty string, got {meta['name']!r}")
    for key in ("kinds", "operations"):
        value = meta.get(key)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise PolicyError(where, f"metadata {key} must be a string or a non-empty list of strings, got {value!r}")
    fp = meta.get("failurePolicy")
    if fp is not None and (not isinstance(fp, str) or fp.lower() not in ("fail", "ignore")):
        raise PolicyError(where, f"metadata failurePolicy must be Fail or Ignore, got {fp!r}")


def defined_rules(m: ast.Module) -> tuple[str, ...]:
    """Which of deny/warn/violation/patch a module defines at its top level."""
    found: list[str] = []
    for r in m.rules:
        name = r.head.name
        if not r.head.ref.path and r.head.args is None and name in RULES and name not in found:
            found.append(name)
    return tuple(found)


def _tuple(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value:
        return tuple(str(v) for v in value)
    return default


def _targets(m: Module) -> tuple[Target, ...]:
    """What a module's metadata says it applies to (kinds and operations; `*` any), in each phase it has."""
    ops = OPERATIONS if "*" in m.operations else tuple(o for o in OPERATIONS if o in m.operations)
    phases = [p for p, has in (("validate", any(r != "patch" for r in m.rules)), ("mutate", "patch" in m.rules)) if has]
    return tuple(Target(p, "*", "*", k, "", ops) for p in phases for k in m.kinds)


def _aggregate(mods: list[Module]) -> str:
    lines = ["package modall", ""]
    for m in mods:
        for r in m.rules:
            lines.append(f'{r}["{m.key}"] := x if {{ contains(input.matched__, " {m.key} "); x := data.{m.package}.{r} }}')
    return "\n".join(lines) + "\n"


SAMPLE: Object = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "sample", "namespace": "default"},
    "spec": {"containers": [{"name": "c", "image": "registry.example/app:1.0"}]},
}


def review_input(request: Request) -> dict[str, Any]:
    return {"apiVersion": request.api_version, "kind": "AdmissionReview", "request": request.to_wire()}


@dataclass
class ModuleSet:
    policies_: list[Module]
    program: Evaluator | None = None
    libs: dict[str, str] = field(default_factory=dict)
    reads_managed_fields: bool = False  # else metadata.managedFields is left out of the input
    request_paths: Paths | None = None  # the parts of input.request the modules can read (None: all)
    compiled: Compiled | None = None  # the modules compiled (None: they run on regopy, see `route`)
    route: str = REGOPY  # "compiled", or "regopy (why)"
    _documents: dict[tuple[str, str], Callable[[Ctx], Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_files(cls, files: list[Path], *, isolate: bool = True) -> ModuleSet:
        parsed: dict[str, ast.Module] = {}
        texts: dict[str, str] = {}
        for f in files:
            try:
                text = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise PolicyError(f"{f}:1", f"cannot read: {exc}") from None
            parsed[str(f)] = parse(text, str(f))
            texts[str(f)] = text
        placed = _place(parsed)
        source_map = SourceMap()
        sources = regopy_sources(placed, source_map)
        policies: list[Module] = []
        libs: dict[str, str] = {}
        for f in files:
            parsed_module = parsed[str(f)]
            package = ps.package_name(parsed_module)
            rules = defined_rules(parsed_module)
            if not rules:
                libs[str(f)] = sources[str(f)]
                continue
            meta = _metadata(f, texts[str(f)])
            policies.append(
                Module(
                    key=f"p{len(policies)}",
                    name=str(meta.get("name") or package),
                    package=package,
                    file=str(f),
                    rules=rules,
                    kinds=_tuple(meta.get("kinds"), ("*",)),
                    operations=tuple(o.upper() for o in _tuple(meta.get("operations"), ("*",))),
                    failure_policy=parse_failure_policy(meta.get("failurePolicy")),
                    source=sources[str(f)],
                )
            )
        if not policies:
            return cls([], None, libs)
        modules = {**sources, "modall.rego": _aggregate(policies)}
        if isolate:
            # each policy alone (every file compiled, only it queried), then the whole set queried
            sample = review_input(Request.for_object(SAMPLE))
            units = []
            for m in policies:
                mods = {**sources, "modall.rego": _aggregate([m])}  # other files may define what it calls
                units.append(Unit(m.file, mods, "data.modall", json.dumps({**sample, "matched__": _keys([m])})))
            if len(sources) > 1:
                everything = json.dumps({**sample, "matched__": _keys(policies)})
                units.append(Unit(WHOLE, modules, "data.modall", everything))
            for file, error in check(units).items():
                if error is not None and file != WHOLE:
                    raise PolicyError(_where(file, error, source_map), error)
            whole_error = check(units[-1:])[WHOLE] if len(sources) > 1 else None
            if whole_error:
                raise PolicyError(
                    policies[0].file + ":1", f"the {len(sources)} Rego files load one by one but not together: {whole_error}"
                )
        try:
            everything_ast = {**placed, "modall.rego": parse(modules["modall.rego"], "modall.rego")}
            program = build(everything_ast, {}, "data.modall", capture_errors=not isolate, sources=modules)
        except BackendError as exc:
            raise PolicyError(_where(policies[0].file, str(exc), source_map), f"Rego modules do not compile together: {exc}") from None
        paths = input_paths(parsed.values(), ("request",))
        # managedFields stay out of the input unless a module names them (the input's shape, not pruning)
        reads_managed = any("managedFields" in t for t in texts.values())
        out = cls(policies, program, libs, reads_managed_fields=reads_managed, request_paths=paths)
        if not USE_COMPILED:
            out.route = f"{REGOPY} (the compiled evaluator is switched off)"
            return out
        # every file together, as written (the compiler reads imports, packages over several files and
        # functions of the same name itself): compiled when it covers them all
        result = try_compile(list(parsed.values()))
        if isinstance(result, Unsupported):
            out.route = f"{REGOPY} ({result})"
            return out
        out.compiled, out.route = result, COMPILED
        for m in policies:
            for r in m.rules:
                out._documents[(m.package, r)] = result.document(f"data.{m.package}.{r}")
        return out

    @property
    def engine(self) -> str:
        return self.route

    def policies(self) -> list[PolicyInfo]:
        return [
            PolicyInfo(m.name, "rego", f"{m.file}:1", m.rules, mutates="patch" in m.rules,
                       validates=any(r != "patch" for r in m.rules), description=f"Rego module {m.package}",
                       rule_docs=(("", f"Rego module {m.package} ({m.file})"),)
                       + ((("patch", f"Rego module {m.package}: patch"),) if "patch" in m.rules else ()),
                       targets=_targets(m), failure_policy=m.failure_policy.value,
                       engine=self.engine)
            for m in self.policies_
        ]

    def _query(self, request: Request, mods: list[Module], deadline: float | None = None) -> tuple[dict[str, Any], list[RuleResult]]:
        """The aggregated rule values for mods (one query; one per module when it fails), and errors. Past
        `deadline` (time.monotonic()) compiled evaluations stop and regopy's are not started: error results."""
        if self.program is None or not mods:
            return {}, []
        if self.compiled is not None:
            found = self._query_compiled(request, mods, deadline)
            if found is not None:
                return found
        if deadline is not None and time.monotonic() > deadline:  # regopy cannot be stopped once started
            return {}, [RuleResult(m.name, "", Status.ERROR, "deadline exceeded: not evaluated", Action.ENFORCE, m.failure_policy)
                        for m in mods]
        doc = review_input(request)
        doc["request"] = prune(trim_review(doc["request"], self.reads_managed_fields), self.request_paths)
        try:
            doc["matched__"] = _keys(mods)
            out = self.program.evaluate(doc)
            return (out if isinstance(out, dict) else {}), []
        except BackendError:
            pass
        merged: dict[str, Any] = {}
        errors: list[RuleResult] = []
        for m in mods:
            doc["matched__"] = _keys([m])
            try:
                out = self.program.evaluate(doc) or {}
                for rule, values in out.items():
                    merged.setdefault(rule, {}).update(values)
            except BackendError as exc:
                errors.append(RuleResult(m.name, "", Status.ERROR, str(exc), Action.ENFORCE, m.failure_policy))
        return merged, errors

    def _query_compiled(self, request: Request, mods: list[Module], deadline: float | None = None,
                        ) -> tuple[dict[str, Any], list[RuleResult]] | None:
        """As `_query`, on the compiled modules over the plain review; None when an evaluation needs regopy (a
        value the compiled evaluator cannot hold)."""
        assert self.compiled is not None
        doc = review_input(request)
        doc["request"] = trim_review(doc["request"], self.reads_managed_fields)
        ctx = self.compiled.context(doc, deadline=deadline)
        merged: dict[str, Any] = {}
        errors: list[RuleResult] = []
        for m in mods:
            values: dict[str, Any] = {}
            try:
                for r in m.rules:
                    v = self._documents[(m.package, r)](ctx)
                    if v is not UNDEFINED:
                        values[r] = to_json(v)
            except EvalError as exc:
                if exc.code == UNSUPPORTED_VALUE:
                    return None
                errors.append(RuleResult(m.name, "", Status.ERROR, str(exc), Action.ENFORCE, m.failure_policy))
                continue
            except RecursionError:
                errors.append(RuleResult(m.name, "", Status.ERROR, "the evaluation nests too deeply", Action.ENFORCE,
                                         m.failure_policy))
                continue
            for r, v in values.items():
                merged.setdefault(r, {})[m.key] = v
        return merged, errors

    def validate(self, request: Request, deadline: float | None = None) -> list[RuleResult]:
        mods = [m for m in self.policies_ if m.applies(request) and any(r != "patch" for r in m.rules)]
        out, results = self._query(request, mods, deadline)
        for m in mods:
            for msg in _messages(out.get("deny", {}).get(m.key)):
                results.append(RuleResult(m.name, "", Status.FAIL, msg, Action.ENFORCE, m.failure_policy))
            for msg in _messages(out.get("violation", {}).get(m.key)):
                results.append(RuleResult(m.name, "", Status.FAIL, msg, Action.ENFORCE, m.failure_policy))
            for msg in _messages(out.get("warn", {}).get(m.key)):
                results.append(RuleResult(m.name, "", Status.WARN, msg, Action.WARN, m.failure_policy))
        answered = {r.policy for r in results}
        results.extend(RuleResult(m.name, "", Status.PASS, "", Action.ENFORCE, m.failure_policy)
                       for m in mods if m.name not in answered)
        return results

    def mutate(self, request: Request, obj: Object, deadline: float | None = None) -> tuple[Object, list[RuleResult]]:
        mods = [m for m in self.policies_ if m.applies(request) and "patch" in m.rules]
        out, results = self._query(request, mods, deadline)
        for m in mods:
            ops = out.get("patch", {}).get(m.key)
            if not ops:
                continue
            ops_list = list(ops) if isinstance(ops, list) else [ops]
            if not all(isinstance(op, dict) and "op" in op and "path" in op for op in ops_list):
                results.append(RuleResult(m.name, "patch", Status.ERROR, "patch must be JSONPatch operations {op, path[, value]}", Action.ENFORCE, m.failure_policy))
                continue
            try:
                obj = apply(obj, ops_list)
                results.append(RuleResult(m.name, "patch", Status.PASS, f"applied {len(ops_list)} patch operation(s)"))
            except Exception as exc:  # PatchError, or a value that is not JSON: a bad patch is an error result
                results.append(RuleResult(m.name, "patch", Status.ERROR, f"patch does not apply: {exc}", Action.ENFORCE, m.failure_policy))
        return obj, results


def _place(parsed: dict[str, ast.Module]) -> dict[str, ast.Module]:
    """Functions renamed apart (regopy aborts on two packages defining one name with other arities) and
    partial set rules as comprehensions (faster on regopy) in packages only one file defines: a complete rule
    cannot be extended by another file."""
    packages = [ps.package_name(m) for m in parsed.values()]
    suffixes = {pkg: f"f{n}" for n, pkg in enumerate(dict.fromkeys(packages))}
    resolved = {file: ps.resolve_imports(m) for file, m in parsed.items()}
    placed = ps.rename_functions(resolved, lambda pkg: suffixes[pkg])
    for file, package in zip(list(placed), packages, strict=True):
        if packages.count(package) == 1:
            placed[file] = ps.partial_sets_as_comprehensions(placed[file])
    return placed


def _keys(mods: list[Module]) -> str:
    return " " + " ".join(m.key for m in mods) + " "


def _messages(value: Any) -> list[str]:
    """deny/warn/violation values: a set (list) of strings or {msg} objects, or one string / true."""
    if value is None or value is False:
        return []
    if value is True:
        return ["denied"]
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        if isinstance(item, dict):
            msg = item.get("msg", item.get("message"))
            out.append(msg if isinstance(msg, str) else json.dumps(item))
        elif isinstance(item, str):
            out.append(item)
        else:
            out.append(json.dumps(item))
    return out


def _where(file: str, error: str, source_map: SourceMap) -> str:
    """file:line in the policy's own source for an engine error about a printed module."""
    m = re.search(re.escape(file) + r":(\d+)", error)
    if m:
        return source_map.where(file, int(m.group(1))) or f"{file}:1"
    return f"{file}:1"
