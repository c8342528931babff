"""Gatekeeper ConstraintTemplates and constraints, compiled into one Rego program per policy set.

Each template's Rego and libs are parsed once (a syntax error names the line inside the template's YAML
file). Each constraint becomes its own module: a copy of its template's AST moved to package `gk.c<N>`
(passes.relocate), with `input.parameters` read from `data.gkparams.c<N>` (the constraint's parameters,
bound as data), `data.lib.*` from the template's libs, and `data.inventory` from `input.inventory__`.
One generated module gathers the violations of the constraints the request matched:

    package gkall
    out[k] := v if { some k in split(input.matched__, " "); v := data.gk[k].violation }

so a request costs one input conversion and one query, however many constraints there are. Libs that read
nothing but `input.review` are placed once and shared by the template's constraints. The matched
keys travel as one string ("c0 c3"): the engine's input conversion costs ~10 µs per JSON value but little
per byte, so an object of 20 keys cost ~300 µs where one string costs ~5 µs. When that query
fails (one constraint's Rego errs), each matched constraint is queried alone so the error is attributed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from admission.engines import PolicyError, PolicyInfo, Skips, Target
from admission.engines.rego import ast
from admission.engines.rego import passes as ps
from admission.engines.rego.backend import BackendError
from admission.engines.rego.compiler import Shared
from admission.engines.rego.fastpath import CompiledTemplate, Declined, compile_template, route_of
from admission.engines.rego.fastpath import Violation as FastViolation
from admission.engines.rego.inventory import inventory_of, trim_review, without_managed_fields
from admission.engines.rego.isolate import Unit, check
from admission.engines.rego.lexer import RegoSyntaxError
from admission.engines.rego.match import constraint_matches, kinds_match
from admission.engines.rego.paths import Paths, input_paths, prune
from admission.engines.rego.pipeline import REGOPY, Evaluator, SourceMap, build, parse, regopy_sources
from admission.engines.rego.values import EvalError
from admission.engines.yaml import schema
from admission.manifests import Document
from admission.results import Action, FailurePolicy, RuleResult, Status, parse_action
from admission.review import Request
from admission.selectors import selector_matches
from admission.types import Object

TARGET = "admission.k8s.gatekeeper.sh"
# the compiled evaluator for the templates it supports (ADMISSION_REGO_COMPILED=0: every template on regopy,
# as the conformance tests run both paths)
USE_COMPILED = os.environ.get("ADMISSION_REGO_COMPILED", "1") != "0"
WHOLE = "(the whole set)"
ACTION_RANK = {Action.ENFORCE: 3, Action.WARN: 2, Action.AUDIT: 1, Action.DRYRUN: 0}


@dataclass
class Template:
    name: str
    kind: str
    rego: str
    libs: list[str]
    source: str  # file:line of the template document
    rego_line: int = 0  # the file line of the Rego's first line, when known
    module: ast.Module | None = None  # the Rego, parsed
    lib_modules: list[ast.Module] = field(default_factory=list)


@dataclass
class Constraint:
    kind: str
    name: str
    template: Template
    match: dict[str, Any]
    parameters: Any
    action: Action
    source: str
    key: str = ""  # c<N> in the compiled program
    uses_inventory: bool = False
    # constraints with equal spec.match (a match group) match the same requests, and constraints of one template
    # with equal parameters (a parameters group) find the same violations: each is evaluated once per request
    match_group: int = -1
    params_group: int = -1
    passed: RuleResult | None = None  # this constraint's pass (a frozen value, made once at load)


def is_template(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("kind") == "ConstraintTemplate" and str(
        obj.get("apiVersion", "")
    ).startswith("templates.gatekeeper.sh/")


def is_constraint(obj: Any) -> bool:
    return isinstance(obj, dict) and str(obj.get("apiVersion", "")).startswith("constraints.gatekeeper.sh/")


def _file_lines(doc: Document) -> list[str]:
    try:
        return Path(doc.file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []


def _block_position(lines: list[str], start: int, text: str) -> tuple[int, int]:
    """(line offset, column offset) of a YAML block scalar holding `text`, searched from line `start`
    (0-based): its first non-blank line's position in the file, so that a position in `text` plus the
    offsets is the position in the file. (0, 0) when it is not found."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    first_index = text.splitlines().index(first) if first else 0
    for i in range(max(start, 0), len(lines)):
        if first and lines[i].strip() == first.strip() and lines[i].endswith(first):
            indent = len(lines[i]) - len(first)
            return i - first_index, indent
    return 0, 0


def _rego_line(doc: Document) -> int:
    """The file line where the template's Rego text starts (the line after `rego: |`), or 0."""
    lines = _file_lines(doc)
    for i in range(max(doc.line - 1, 0), len(lines)):
        if re.match(r"^\s*rego:\s*[|>]", lines[i]):
            return i + 2
    return 0


def _parse_template_rego(t: Template, doc: Document) -> None:
    """Parse the template's Rego and libs, positions counted in the YAML file when the text is found there
    (else a syntax error names the template document and the line inside its Rego)."""
    lines = _file_lines(doc)
    start = max(doc.line - 1, 0)
    t.module = _parse_block(t, doc, lines, start, t.rego, "rego")
    t.lib_modules = [_parse_block(t, doc, lines, start, lib, f"lib {i}") for i, lib in enumerate(t.libs)]


def _parse_block(t: Template, doc: Document, lines: list[str], start: int, text: str, what: str) -> ast.Module:
    line_offset, col_offset = _block_position(lines, start, text)
    found = bool(line_offset or col_offset)
    try:
        return parse(text, doc.file, line_offset, col_offset)
    except RegoSyntaxError as exc:
        if found:
            raise
        raise PolicyError(f"{doc.file}:{doc.line}", f"template {t.name}: {what} line {exc.line}:{exc.col}: {exc.message}") from None


_T = TypeVar("_T")


def _guarded(doc: Document, parse: Callable[..., _T], *args: Any) -> _T:
    """parse(*args), with a shape the checks did not foresee reported as the document's PolicyError."""
    try:
        return parse(*args)
    except PolicyError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        kind = doc.obj.get("kind") if isinstance(doc.obj, dict) else "document"
        raise PolicyError(f"{doc.file}:{doc.line}", f"malformed {kind} ({type(exc).__name__}: {exc})") from None


def parse_template(doc: Document) -> Template:
    obj = doc.obj
    where = f"{doc.file}:{doc.line}"
    name = str((obj.get("metadata") or {}).get("name") or "")
    kind = str((((obj.get("spec") or {}).get("crd") or {}).get("spec") or {}).get("names", {}).get("kind") or "")
    if not name or not kind:
        raise PolicyError(where, "ConstraintTemplate needs metadata.name and spec.crd.spec.names.kind")
    targets = (obj.get("spec") or {}).get("targets") or []
    for target in targets:
        if not isinstance(target, dict) or target.get("target", TARGET) != TARGET:
            continue
        rego, libs = target.get("rego"), target.get("libs") or []
        for code in target.get("code") or []:
            if isinstance(code, dict) and str(code.get("engine", "")).lower() == "rego" and not rego:
                src = code.get("source") or {}
                rego, libs = src.get("rego"), src.get("libs") or []
        if isinstance(rego, str) and rego.strip():
            t = Template(name, kind, rego, [str(x) for x in libs], where, _rego_line(doc))
            _parse_template_rego(t, doc)
            _check_with_input(t)
            return t
    raise PolicyError(where, f"ConstraintTemplate {name} has no Rego for target {TARGET} (CEL-only templates are not supported)")


def constraint_action(spec: dict[str, Any]) -> Action:
    """A constraint's enforcementAction; `scoped`: the strongest action scoped to the validation webhook."""
    value = spec.get("enforcementAction") or "deny"
    if str(value).lower() == "scoped":
        best: Action | None = None
        for entry in spec.get("scopedEnforcementActions") or []:
            points = [str((p or {}).get("name", "")) for p in entry.get("enforcementPoints") or []]
            if any(p in ("*", "validation.gatekeeper.sh") for p in points):
                a = parse_action(entry.get("action"), Action.DRYRUN)
                if best is None or ACTION_RANK[a] > ACTION_RANK[best]:
                    best = a
        return best if best is not None else Action.DRYRUN
    return parse_action(value, Action.ENFORCE)


def parse_constraint(doc: Document, templates: dict[str, Template]) -> Constraint:
    obj = doc.obj
    where = f"{doc.file}:{doc.line}"
    kind = str(obj.get("kind") or "")
    name = str((obj.get("metadata") or {}).get("name") or "")
    if not name:
        raise PolicyError(where, f"{kind} constraint has no metadata.name")
    template = templates.get(kind)
    if template is None:
        raise PolicyError(where, f"constraint {name}: no ConstraintTemplate defines kind {kind}")
    schema.validate(doc, "Constraint")  # enforcementAction, spec.match: file:line and "did you mean"
    spec = obj.get("spec") or {}
    if not isinstance(spec, dict):
        raise PolicyError(where, f"constraint {name}: spec must be a mapping")
    match = spec.get("match") or {}
    problem = _match_problem(match)
    if problem:
        raise PolicyError(where, f"constraint {name}: spec.match: {problem}")
    return Constraint(kind, name, template, match, spec.get("parameters"), constraint_action(spec), where)


def _match_problem(match: Any) -> str:
    """Why a spec.match cannot be used, or "" (checked at load so requests never meet a broken one)."""
    if not isinstance(match, dict):
        return "must be a mapping"
    kinds = match.get("kinds")
    if kinds is not None and (
        not isinstance(kinds, list) or not all(isinstance(k, dict) for k in kinds)
    ):
        return "kinds must be a list of {apiGroups, kinds}"
    for key in ("namespaces", "excludedNamespaces"):
        value = match.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return f"{key} must be a list of strings"
    if match.get("scope") not in (None, "*", "Cluster", "Namespaced"):
        return "scope must be *, Cluster or Namespaced"
    for key in ("labelSelector", "namespaceSelector"):
        sel = match.get(key)
        if sel is None:
            continue
        if not isinstance(sel, dict):
            return f"{key} must be a label selector"
        try:
            selector_matches(sel, {})
        except (ValueError, AttributeError, TypeError) as exc:
            return f"{key}: {exc}"
    return ""


# ---- code generation ---------------------------------------------------------------------------------


def _lib_root(c: Constraint) -> str:
    return f"gklib.{c.key}"


def _shared_lib_root(t: Template) -> str | None:
    """Libs that read only `input.review` (not the parameters, nor the whole input) are placed once and
    shared by every constraint of the template (and any template with the same libs). None when the libs
    need each constraint's own copy."""
    if not t.libs:
        return None
    for lib in t.lib_modules:
        if not _reads_only_review(ps.resolve_imports(lib)):
            return None
    digest = hashlib.sha256("\0".join(t.libs).encode()).hexdigest()[:12]
    return f"gklib.s{digest}"


def _reads_only_review(m: ast.Module) -> bool:
    """Whether every use of `input` in m is a reference starting `input.review`."""
    heads = 0
    reviews = 0
    for x in ps.walk_terms(m):
        if isinstance(x, ast.Var) and x.name == "input":
            heads += 1
        elif isinstance(x, ast.Ref) and isinstance(x.head, ast.Var) and x.head.name == "input":
            if (ps.ref_names(x) or ())[1:2] == ("review",):
                reviews += 1
    return heads == reviews


def _renames(c: Constraint, libs_root: str) -> dict[str, str]:
    """References every module of a constraint is rewritten with: parameters bound, libs and inventory moved.
    A bare `input` (e.g. `object.get(input, "parameters", {})` in a lib) becomes the constraint's own view."""
    return {
        "input.parameters": f"data.gkparams.{c.key}",
        "input.review": "input.review",
        "input": f"data.{_lib_root(c)}.gkinput__",
        "data.lib": f"data.{libs_root}.lib",
        "data.inventory": "input.inventory__",
    }


def _lib_modules(t: Template, root: str, renames: dict[str, str], tag: str) -> dict[str, ast.Module]:
    out: dict[str, ast.Module] = {}
    for i, lib in enumerate(t.lib_modules):
        pkg = ps.package_name(lib)
        if not (pkg == "lib" or pkg.startswith("lib.")):
            raise PolicyError(t.source, f"template {t.name}: lib {i} has package {pkg!r}; libs must be under `lib`")
        out[f"{t.name}.{tag}.lib{i}.rego"] = ps.relocate(ps.resolve_imports(lib), f"{root}.{pkg}", renames,
                                                         keep_with=frozenset({"input"}))
    return out


def _check_with_input(t: Template) -> None:
    """`with input as x` replaces the review a template reads; a constraint's parameters are bound as data,
    so a template that replaces the whole input and reads `input.parameters` would not see x's parameters:
    refused rather than evaluated differently from Gatekeeper."""
    for m in [t.module, *t.lib_modules]:
        if m is None:
            continue
        withs = [w for r in m.rules for w in _withs(r)]
        whole = [w for w in withs if isinstance(w.target.head, ast.Var) and w.target.head.name == "input" and not w.target.path]
        params = any(isinstance(x, ast.Ref) and (ps.ref_names(x) or ())[:2] == ("input", "parameters") for x in ps.walk_terms(m))
        if whole and params:
            raise PolicyError(f"{m.file}:{whole[0].pos.line}" if whole[0].pos.line else t.source,
                              f"template {t.name}: `with input as ...` in a template that reads input.parameters is not supported "
                              "(the constraint's parameters are bound as data); replace input.review instead")


def _withs(r: ast.Rule) -> list[ast.With]:
    out: list[ast.With] = []
    stack: list[object] = [r]
    while stack:
        n = stack.pop()
        if isinstance(n, ast.Rule):
            stack.extend(n.body)
            if n.else_ is not None:
                stack.append(n.else_)
            stack.extend(x for x in (n.head.key, n.head.value) if x is not None)
        elif isinstance(n, ast.Expr):
            out.extend(n.with_)
            if isinstance(n.terms, ast.Every):
                stack.extend(n.terms.body)
            elif not isinstance(n.terms, ast.SomeDecl):
                stack.append(n.terms)
        elif isinstance(n, ast.ArrayCompr | ast.SetCompr | ast.ObjectCompr):
            stack.extend(n.body)
        elif isinstance(n, ast.Call):
            stack.extend(n.args)
        elif isinstance(n, ast.Array | ast.Set):
            stack.extend(n.items)
        elif isinstance(n, ast.Object):
            stack.extend(v for _, v in n.items)
        elif isinstance(n, ast.TemplateString):
            stack.extend(p for p in n.parts if not isinstance(p, str))
    return out


def _modules_for(c: Constraint) -> dict[str, ast.Module]:
    """The constraint's template module, its libs (shared or its own copy), and its input view."""
    shared = _shared_lib_root(c.template)
    libs_root = shared or _lib_root(c)
    renames = _renames(c, libs_root)
    out = _lib_modules(c.template, libs_root, renames, shared.rsplit(".", 1)[-1] if shared else c.key)
    assert c.template.module is not None
    placed = ps.relocate(ps.resolve_imports(c.template.module), f"gk.{c.key}", renames, keep_with=frozenset({"input"}))
    # the package gk.<key> is this module's alone, so its partial set rules can be complete rules
    out[f"{c.template.name}.{c.key}.rego"] = ps.partial_sets_as_comprehensions(placed)
    params = f', "parameters": data.gkparams.{c.key}' if c.parameters is not None else ""
    view = f'package {_lib_root(c)}\n\ngkinput__ := {{"review": input.review{params}}}\n'
    out[f"{c.template.name}.{c.key}.input.rego"] = parse(view, f"{c.template.name}.{c.key}.input.rego")
    return out


def _renamed_functions(modules: dict[str, ast.Module]) -> dict[str, ast.Module]:
    """Function names unique per package (regopy aborts on two packages defining one name with other
    arities): the suffix is the package's path."""
    return ps.rename_functions(modules, lambda pkg: re.sub(r"[^A-Za-z0-9]", "_", pkg))


def _uses_inventory(modules: Iterable[ast.Module]) -> bool:
    for m in modules:
        for t in ps.walk_terms(m):
            if isinstance(t, ast.Ref) and (ps.ref_names(t) or ())[:2] == ("input", "inventory__"):
                return True
    return False


def _where(t: Template, line: int) -> str:
    if t.rego_line:
        file = t.source.rsplit(":", 1)[0]
        return f"{file}:{t.rego_line + line - 1}"
    return t.source


def _aggregate(keys: list[str]) -> str:
    """The module gathering violations: one rule with a dynamic reference, so a request evaluates the
    constraints it matched (input.matched__, their keys in one string) and no others. `keys` are the constraints compiled with it."""
    del keys  # the reference data.gk[k] reaches every compiled constraint
    return 'package gkall\n\nout[k] := v if {\n  some k in split(input.matched__, " ")\n  v := data.gk[k].violation\n}\n'


SAMPLE_OBJECT: Object = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "sample", "namespace": "default", "labels": {"app": "sample"}},
    "spec": {"containers": [{"name": "c", "image": "registry.example/app:1.0"}]},
}


@dataclass
class Violation:
    constraint: Constraint
    message: str
    details: Any = None


@dataclass
class ConstraintSet:
    """Compiled constraints of one policy set."""

    constraints: list[Constraint]
    program: Evaluator | None = None
    templates: list[Template] = field(default_factory=list)
    reads_managed_fields: bool = False  # else metadata.managedFields is left out of the input
    review_paths: Paths | None = None  # the parts of input.review the templates can read (None: all)
    _inventory_cache: tuple[list[Object], list[int], dict[str, Any]] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _by_kind: dict[tuple[str, str], list[Constraint]] = field(default_factory=dict, repr=False)
    routes: dict[str, str] = field(default_factory=dict)  # template name -> "compiled" or "regopy (why)"
    fast: dict[str, CompiledTemplate] = field(default_factory=dict, repr=False)  # template name -> compiled

    def candidates(self, group: str, kind: str) -> list[Constraint]:
        """The constraints whose spec.match.kinds can match objects of this kind (the rest of spec.match is
        checked per request); remembered per kind, so a large set costs a dict lookup for the others."""
        found = self._by_kind.get((group, kind))
        if found is None:
            found = [c for c in self.constraints if kinds_match((c.match or {}).get("kinds"), group, kind)]
            self._by_kind[(group, kind)] = found
        return found

    @classmethod
    def from_documents(cls, docs: Iterable[Document], *, isolate: bool = True) -> ConstraintSet:
        docs = list(docs)
        templates: dict[str, Template] = {}
        for d in docs:
            if is_template(d.obj):
                t = _guarded(d, parse_template, d)
                if t.kind in templates and templates[t.kind].name != t.name:
                    raise PolicyError(t.source, f"kind {t.kind} is also defined by template {templates[t.kind].name} ({templates[t.kind].source})")
                templates[t.kind] = t
        constraints = [_guarded(d, parse_constraint, d, templates) for d in docs if is_constraint(d.obj)]
        return cls.compile(list(templates.values()), constraints, isolate=isolate)

    @classmethod
    def compile(cls, templates: list[Template], constraints: list[Constraint], *, isolate: bool = True) -> ConstraintSet:
        placed: dict[str, ast.Module] = {}
        data: dict[str, Any] = {"gkparams": {}}
        seen_names: set[tuple[str, str]] = set()
        own_names: dict[str, list[str]] = {}
        for n, c in enumerate(constraints):
            c.key = f"c{n}"
            if (c.kind, c.name) in seen_names:
                raise PolicyError(c.source, f"constraint {c.kind}/{c.name} is defined twice")
            seen_names.add((c.kind, c.name))
            own = _modules_for(c)
            c.uses_inventory = _uses_inventory(own.values())
            placed.update(own)
            own_names[c.key] = list(own)
            if c.parameters is not None:
                data["gkparams"][c.key] = c.parameters
        if not constraints:
            return cls(constraints, None, templates)
        _group(constraints)
        placed["gkall.rego"] = parse(_aggregate([]), "gkall.rego")
        placed = _renamed_functions(placed)
        source_map = SourceMap()
        modules = regopy_sources(placed, source_map)
        if isolate:
            units: list[Unit] = []
            for c in constraints:
                sample = {"review": _review(Request.for_object(SAMPLE_OBJECT)), "matched__": c.key}
                if c.uses_inventory:
                    sample["inventory__"] = {"cluster": {}, "namespace": {}}
                unit_data = {"gkparams": {c.key: c.parameters}} if c.parameters is not None else {}
                own_src = {name: modules[name] for name in own_names[c.key]}
                units.append(Unit(f"{c.kind}/{c.name}", {**own_src, "gkall.rego": modules["gkall.rego"]}, "data.gkall.out",
                                  json.dumps(sample), unit_data))
            # each constraint alone, then all of them together: some defects only show in combination
            sample = {"review": _review(Request.for_object(SAMPLE_OBJECT)), "matched__": _keys(constraints)}
            if any(c.uses_inventory for c in constraints):
                sample["inventory__"] = {"cluster": {}, "namespace": {}}
            whole = Unit(WHOLE, modules, "data.gkall.out", json.dumps(sample), data) if len(units) > 1 else None
            checked = check(units + ([whole] if whole else []))
            for c, unit in zip(constraints, units, strict=True):
                error = checked[unit.name]
                if error is not None:
                    raise PolicyError(_error_where(c, error, source_map), f"template {c.template.name} (constraint {unit.name}): {error}")
            if checked.get(WHOLE):
                raise PolicyError(
                    constraints[0].source,
                    f"the {len(constraints)} constraints load one by one but not together: {checked[WHOLE]}",
                )
        try:
            program = build(placed, data, "data.gkall.out", capture_errors=not isolate, sources=modules)
        except BackendError as exc:
            raise PolicyError(_error_where(constraints[0], str(exc), source_map), f"Gatekeeper constraints do not compile: {exc}") from None
        used = {c.template.name: c.template for c in constraints}.values()
        paths = input_paths([m for t in used for m in [t.module, *t.lib_modules] if m is not None], ("review",))
        # managedFields stay out of the input unless a template names them (the input's shape, not pruning)
        reads_managed = any("managedFields" in src for t in used for src in [t.rego, *t.libs])
        routes: dict[str, str] = {}
        fast: dict[str, CompiledTemplate] = {}
        for t in used:
            if not USE_COMPILED:
                routes[t.name] = "regopy (the compiled evaluator is switched off)"
                continue
            result = compile_template([m for m in [t.module, *t.lib_modules] if m is not None])
            routes[t.name] = str(route_of(result))
            if isinstance(result, CompiledTemplate):
                fast[t.name] = result
        return cls(constraints, program, templates, reads_managed_fields=reads_managed, review_paths=paths,
                   routes=routes, fast=fast)

    @property
    def engine(self) -> str:
        return self.program.engine if self.program is not None else REGOPY

    def policies(self) -> list[PolicyInfo]:
        return [
            PolicyInfo(c.name, "gatekeeper", c.source, (c.kind,), description=f"Gatekeeper constraint {c.kind}/{c.name}",
                       rule_docs=(("", f"Gatekeeper constraint {c.kind}/{c.name} (template {c.template.name})"),),
                       targets=constraint_targets(c.match), skips=constraint_skips(c.match),
                       engine=self.routes.get(c.template.name, self.engine))
            for c in self.constraints
        ]

    def evaluate(
        self,
        request: Request,
        state_objects: list[Object] | Callable[[], list[Object] | None] | None,
        namespace_labels: Callable[[str], dict[str, Any] | None],
        deadline: float | None = None,
    ) -> tuple[list[Constraint], list[Violation], list[RuleResult]]:
        """The constraints matching the request, their violations, and error results for those that failed.

        state_objects (or a function giving them, called only when a matched template reads
        `data.inventory`) is the cluster state; None when there is none. Past `deadline` (time.monotonic())
        the compiled evaluations stop and regopy's are not started: error results, which follow the
        failure policy."""
        kind = request.kind
        matched = []
        matches: dict[int, bool] = {}  # per match group: one test for the constraints with the same spec.match
        for c in self.candidates(kind.group, kind.kind):
            m = matches.get(c.match_group)
            if m is None:
                m = matches[c.match_group] = constraint_matches(c.match, request, namespace_labels)[0]
            if m:
                matched.append(c)
        if not matched or self.program is None:
            return matched, [], []
        everyone = matched
        errors: list[RuleResult] = []
        violations: list[Violation] = []
        if self.fast:
            matched, violations, errors = self._evaluate_compiled(request, matched, state_objects, deadline)
            if not matched:
                return everyone, violations, errors
        if deadline is not None and time.monotonic() > deadline:  # regopy cannot be stopped once started
            return everyone, violations, errors + [_error(c, "deadline exceeded: not evaluated") for c in matched]
        review = prune(trim_review(_review(request), self.reads_managed_fields), self.review_paths)
        doc: dict[str, Any] = {"review": review, "matched__": _keys(matched)}
        if any(c.uses_inventory for c in matched):
            if callable(state_objects):
                state_objects = state_objects()
            if state_objects is None:
                return everyone, violations, errors + [
                    _error(c, "cluster state is not available for data.inventory") for c in matched if c.uses_inventory
                ]
            doc["inventory__"] = self._inventory(state_objects)
        try:
            out = self.program.evaluate(doc)  # the input, built once for all matched constraints
            return everyone, violations + self._violations(matched, out), errors
        except BackendError:
            pass
        for c in matched:  # attribute the failure: one query per constraint
            doc["matched__"] = c.key
            try:
                violations.extend(self._violations([c], self.program.evaluate(doc)))
            except BackendError as exc:
                errors.append(_error(c, str(exc)))
        return everyone, violations, errors

    def _evaluate_compiled(
        self, request: Request, matched: list[Constraint],
        state_objects: list[Object] | Callable[[], list[Object] | None] | None, deadline: float | None = None,
    ) -> tuple[list[Constraint], list[Violation], list[RuleResult]]:
        """The matched constraints whose template is compiled, evaluated on the plain review; returns the
        constraints left for regopy (other templates, and evaluations the compiled path declines)."""
        rest: list[Constraint] = []
        violations: list[Violation] = []
        errors: list[RuleResult] = []
        review: dict[str, Any] | None = None
        inventory: dict[str, Any] | None = None
        shared: dict[tuple[str, bool], Shared] = {}  # per template (and inventory or not) on this review
        # per template, its distinct parameters among the matched constraints: with two or more, they share
        # what does not read the parameters; constraints with equal parameters share their whole evaluation
        groups: dict[str, set[int]] = {}
        for c in matched:
            groups.setdefault(c.template.name, set()).add(c.params_group)
        done: dict[tuple[str, int, bool], list[FastViolation] | str | None] = {}  # violations, error, or declined
        for c in matched:
            ct = self.fast.get(c.template.name)
            if ct is None:
                rest.append(c)
                continue
            dk = (c.template.name, c.params_group, c.uses_inventory)
            if dk in done:
                outcome = done[dk]
                if outcome is None:
                    rest.append(c)
                elif isinstance(outcome, str):
                    errors.append(_error(c, outcome))
                elif outcome:
                    violations.extend(Violation(c, _text(v.msg), v.details) for v in outcome)
                continue
            if review is None:
                review = trim_review(_review(request), self.reads_managed_fields)
            if c.uses_inventory and inventory is None:
                if callable(state_objects):
                    state_objects = state_objects()
                if state_objects is None:
                    errors.append(_error(c, "cluster state is not available for data.inventory"))
                    continue
                inventory = self._inventory(state_objects)
            sh: Shared | None = None  # a template's only parameters on this review share nothing
            if len(groups[c.template.name]) > 1:
                sk = (c.template.name, c.uses_inventory)
                sh = shared.get(sk)
                if sh is None:
                    sh = shared[sk] = ct.shared()
            try:
                found = ct.violations(review, c.parameters, inventory if c.uses_inventory else None, sh, deadline)
            except Declined:
                done[dk] = None
                rest.append(c)
                continue
            except EvalError as exc:
                done[dk] = str(exc)
                errors.append(_error(c, str(exc)))
                continue
            done[dk] = found
            if found:
                violations.extend(Violation(c, _text(v.msg), v.details) for v in found)
        return rest, violations, errors

    def _inventory(self, objects: list[Object]) -> dict[str, Any]:
        """data.inventory, reused while the state holds the same objects. The cache keeps the objects
        alive, so their ids cannot be reused by others while it compares them."""
        ids = [id(o) for o in objects]
        with self._lock:
            cached = self._inventory_cache
            if cached is not None and cached[1] == ids:
                return cached[2]
        kept = objects if self.reads_managed_fields else [without_managed_fields(o) for o in objects]
        inventory = inventory_of(kept)
        with self._lock:
            self._inventory_cache = (list(objects), ids, inventory)
        return inventory

    @staticmethod
    def _violations(matched: list[Constraint], out: Any) -> list[Violation]:
        out = out if isinstance(out, dict) else {}
        found: list[Violation] = []
        for c in matched:
            for v in out.get(c.key) or []:
                if isinstance(v, dict):
                    found.append(Violation(c, _text(v.get("msg")), v.get("details")))
                else:
                    found.append(Violation(c, _text(v)))
        return found


def _group(constraints: list[Constraint]) -> None:
    """Number the match groups (equal spec.match) and, per template, the parameters groups (equal
    parameters, compared by `value_key`: same types, same order; a value it cannot key is its own group)."""
    matches: dict[Any, int] = {}
    params: dict[tuple[str, Any], int] = {}
    for n, c in enumerate(constraints):
        try:
            mk: Any = value_key(c.match)
        except TypeError:
            mk = ("constraint", n)
        c.match_group = matches.setdefault(mk, len(matches))
        try:
            pk: Any = value_key(c.parameters)
        except TypeError:
            pk = ("constraint", n)
        c.params_group = params.setdefault((c.template.name, pk), len(params))
        c.passed = RuleResult(c.name, "", Status.PASS, "", c.action)


def value_key(v: Any) -> Any:
    """A hashable key equal for two values exactly when they are the same JSON-like value, with the same types
    (1, 1.0 and True differ), the same key types and the same key order. TypeError for anything else."""
    t = type(v)
    if t is str or t is int or t is bool:
        return (t.__name__, v)
    if t is float:
        return ("float", repr(v))
    if v is None:
        return ("null",)
    if t is list:
        return ("list", tuple(value_key(x) for x in v))
    if t is dict:
        return ("dict", tuple((value_key(k), value_key(x)) for k, x in v.items()))
    raise TypeError(f"no key for {t.__name__}")


def constraint_targets(match: dict[str, Any] | None) -> tuple[Target, ...]:
    """The kinds spec.match.kinds selects (any, without kinds), on CREATE and UPDATE as Gatekeeper's own
    webhook registration sends them."""
    kinds = (match or {}).get("kinds")
    if not kinds:
        return (Target("validate"),)
    out: list[Target] = []
    for entry in kinds:
        if not isinstance(entry, dict):
            continue
        groups = [str(g) for g in entry.get("apiGroups") or ["*"]]
        names = [str(k) for k in entry.get("kinds") or ["*"]]
        out.extend(Target("validate", g, "*", k) for g in groups for k in names)
    return tuple(out)


def constraint_skips(match: dict[str, Any] | None) -> Skips:
    """spec.match.excludedNamespaces named exactly (a `prefix*` pattern is left to the constraint itself)."""
    names = (match or {}).get("excludedNamespaces") or []
    return Skips(namespaces=frozenset(n for n in names if isinstance(n, str) and n and not n.endswith("*")
                                      and not n.startswith("*")))


def _keys(constraints: list[Constraint]) -> str:
    return " ".join(c.key for c in constraints)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _error(c: Constraint, message: str) -> RuleResult:
    return RuleResult(c.name, "", Status.ERROR, message, c.action, FailurePolicy.FAIL)


def _error_where(c: Constraint, error: str, source_map: SourceMap) -> str:
    """file:line in the template's own file for an engine error about a printed module."""
    for m in re.finditer(r"(\S+?\.rego):(\d+):", error):
        found = source_map.where(m.group(1), int(m.group(2)))
        if found:
            return found
    return c.template.source


def _review(request: Request) -> dict[str, Any]:
    """Gatekeeper's input.review: the AdmissionRequest fields."""
    review = request.to_wire()
    if review.get("oldObject") is None:
        review.pop("oldObject", None)
    if review.get("options") is None:
        review.pop("options", None)
    return review


def results_for(matched: list[Constraint], violations: list[Violation], errors: list[RuleResult]) -> list[RuleResult]:
    """A failure per violation, the errors, and a pass for each matched constraint with neither."""
    out = [RuleResult(v.constraint.name, "", Status.FAIL, v.message, v.constraint.action) for v in violations]
    out.extend(errors)
    answered = {v.constraint.name for v in violations} | {e.policy for e in errors}
    out.extend(c.passed or RuleResult(c.name, "", Status.PASS, "", c.action) for c in matched if c.name not in answered)
    return out
