"""From Rego text to something that evaluates: parse -> placement passes (the caller's) -> evaluator.

    parse(text, file, line_offset, col_offset)  -> ast.Module, or PolicyError `file:line:col: message`
    regopy_sources(modules)                     -> {name: printed v1 text}, every regopy work-around applied
    build(modules, data, query)                 -> Evaluator (`.engine` says which path it takes)

`build` is the one place where a policy set's ASTs become an evaluator: a compiler for the common subset of
Rego can take them here (its `try_compile` returning `Unsupported` leaves them to regopy). Until then every
set runs on regopy, from canonical v1 printed after the passes of passes.py.

`SourceMap` maps a line of a printed module back to the rule it came from, so that regopy's compile errors
(about the printed text) name the line of the policy's own file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from admission.engines import PolicyError
from admission.engines.rego.ast import Module, Pos
from admission.engines.rego.backend import Program
from admission.engines.rego.parser import parse_module
from admission.engines.rego.passes import regopy_passes
from admission.engines.rego.printer import PrintError, format_module

REGOPY = "regopy"


def parse(text: str, file: str, line_offset: int = 0, col_offset: int = 0) -> Module:
    """The module, or a PolicyError naming file:line:col (RegoSyntaxError is one)."""
    return parse_module(text, file=file, line_offset=line_offset, col_offset=col_offset)


@dataclass
class SourceMap:
    """For each printed module, (first line, last line, source position) of each rule."""

    rules: dict[str, list[tuple[int, int, Pos]]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)  # printed module name -> the source file

    def where(self, name: str, line: int) -> str | None:
        """`file:line` in the source for line `line` of printed module `name`, or None."""
        for first, last, pos in self.rules.get(name, []):
            if first <= line <= last and pos.line:
                return f"{self.files.get(name, name)}:{pos.line}"
        return None


def print_for_regopy(m: Module) -> tuple[str, list[tuple[int, int, Pos]]]:
    """m after the work-arounds, printed as v1 without comments, and the printed lines of each rule."""
    fixed = replace(regopy_passes(m), comments=(), imports=tuple(i for i in m.imports if not _is_keyword_import(i)))
    header = format_module(replace(fixed, rules=())).rstrip("\n")
    lines = header.count("\n") + 1
    parts = [header]
    spans: list[tuple[int, int, Pos]] = []
    for r in fixed.rules:
        text = format_module(replace(fixed, imports=(), rules=(r,))).rstrip("\n")
        body = text.split("\n", 1)[1].lstrip("\n") if "\n" in text else ""
        start = lines + 2  # one blank line between rules
        parts.append(body)
        lines = start + body.count("\n")
        spans.append((start, lines, r.pos))
    return "\n\n".join(parts) + "\n", spans


def _is_keyword_import(i: Any) -> bool:
    head = i.path.head
    return getattr(head, "name", "") in ("future", "rego")


def regopy_sources(modules: dict[str, Module], source_map: SourceMap | None = None) -> dict[str, str]:
    """Printed v1 text for each module (work-arounds applied); fills source_map when given."""
    out: dict[str, str] = {}
    for name, m in modules.items():
        try:
            text, spans = print_for_regopy(m)
        except PrintError as exc:
            raise PolicyError(f"{m.file or name}:1", f"cannot print the module for the Rego engine: {exc}") from None
        out[name] = text
        if source_map is not None:
            source_map.rules[name] = spans
            source_map.files[name] = m.file or name
    return out


class Evaluator(Protocol):
    """What build returns: evaluate(input) -> the query's value (None when undefined); raises BackendError."""

    engine: str

    def evaluate(self, value: Any) -> Any: ...


class RegopyEvaluator:
    engine = REGOPY

    def __init__(self, program: Program) -> None:
        self.program = program

    def evaluate(self, value: Any) -> Any:
        return self.program.evaluate(value)


def build(modules: dict[str, Module], data: dict[str, Any], query: str, *, capture_errors: bool = True,
          sources: dict[str, str] | None = None) -> Evaluator:
    """The evaluator for a policy set's modules (already placed: packages and references as they will run).
    `sources` are their regopy texts when the caller printed them already. Raises BackendError."""
    texts = sources if sources is not None else regopy_sources(modules)
    return RegopyEvaluator(Program(texts, data, query, capture_errors=capture_errors))
