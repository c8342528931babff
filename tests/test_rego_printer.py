"""The Rego printer: parse -> print -> parse is the identity on every module we have, on layouts of the same
modules (comments added, statements joined with `;`, lines split inside brackets, v0 spelling) and on
generated modules; regopy (the oracle for valid Rego) loads what it prints."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections import defaultdict

import pytest
import regopy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from admission.engines.rego import ast
from admission.engines.rego.lexer import tokenize
from admission.engines.rego.parser import parse_module, parse_query, parse_term
from admission.engines.rego.printer import PrintError, format_body, format_module, format_term
from tests.rego_corpus import Source, gatekeeper_modules, opa_cases, policy_modules
from tests.rego_strategies import modules, modules_and_inputs

# regopy 1.5 refuses `f(x[_])` (a wildcard inside a ref inside call arguments: "Invalid bracket argument"),
# which OPA accepts; shown on a minimal module below, independently of the printer
REGOPY_BRACKET_DEFECT = "Invalid bracket argument"


def _library() -> tuple[Source, ...]:
    sources = gatekeeper_modules()
    if not sources:
        pytest.skip("external conformance suites not found at ../shared/conformance (not part of a fresh clone)")
    return sources


def _round_trip(text: str, name: str) -> ast.Module:
    module = parse_module(text, file=name)
    printed = format_module(module)
    again = parse_module(printed, file=name, v1=True)
    assert again == module, f"{name}\n{printed}"
    assert format_module(again) == printed  # printing is a fixed point
    return module


def test_round_trip_on_the_gatekeeper_library_and_our_policies() -> None:
    for s in [*_library(), *policy_modules()]:
        _round_trip(s.text, s.name)


def test_round_trip_on_opa_cases() -> None:
    cases = opa_cases()
    if not cases:
        pytest.skip("external conformance suites not found at ../shared/conformance (not part of a fresh clone)")
    done = templates = 0
    for case in cases:
        for text in case.modules:
            _round_trip(text, f"{case.file.name}: {case.note}")
            done += 1
            templates += '$"' in text or "$`" in text
        if case.query:
            body = parse_query(case.query)
            assert parse_query(format_body(body)) == body
        if case.input_term:
            term = parse_term(case.input_term)
            assert parse_term(format_term(term)) == term
    assert done > 1400 and templates > 40


def _regopy_errors(texts: list[str], capfd: pytest.CaptureFixture[str], query: str = "x = data.t") -> list[str]:
    """regopy's error messages for the modules (it writes them to standard output)."""
    r = regopy.Interpreter()
    for i, text in enumerate(texts):
        r.add_module(f"m{i}", text)
    capfd.readouterr()
    try:
        ok = r.query(query).ok()
    except regopy.RegoError as exc:
        return [str(exc)]
    return [] if ok else [capfd.readouterr().out or "error without a message"]


def test_regopy_has_the_bracket_defect_on_its_own(capfd: pytest.CaptureFixture[str]) -> None:
    (error,) = _regopy_errors(["package t\np if { count(input.x[_]) > 0 }\n"], capfd)
    assert REGOPY_BRACKET_DEFECT in error


_CHECK = """
import json, sys, regopy
texts, query = json.load(sys.stdin)
r = regopy.Interpreter()
for i, text in enumerate(texts):
    r.add_module(f"m{i}", text)
sys.stdout.flush()
print("OK" if r.query(query).ok() else "FAILED", flush=True)
"""


def _wildcard_in_call_args(node: object, in_call: bool = False) -> bool:
    """The trigger of regopy's bracket defect: `f(x[_])`."""
    if isinstance(node, ast.Ref) and in_call and any(s == ast.Var("_") for s in node.path):
        return True
    if isinstance(node, ast.Call):
        return any(_wildcard_in_call_args(a, True) for a in node.args)
    if dataclasses.is_dataclass(node):
        return any(_wildcard_in_call_args(getattr(node, f.name), in_call) for f in dataclasses.fields(node) if f.name != "pos")
    if isinstance(node, tuple):
        return any(_wildcard_in_call_args(x, in_call) for x in node)
    return False


def test_regopy_loads_the_printed_library() -> None:
    """Each template's printed Rego and libs compile on regopy, but for its bracket defect (which makes it
    report an error, or crash: each template runs in its own process)."""
    groups: dict[str, list[Source]] = defaultdict(list)
    for s in [*_library(), *policy_modules()]:
        groups[s.name.split(".rego")[0].split(".libs")[0]].append(s)
    clean = 0
    for name, sources in groups.items():
        parsed = [parse_module(s.text) for s in sources]
        package = ".".join(str(getattr(step, "value", "")) for step in parsed[0].package.path.path)
        payload = json.dumps([[format_module(m) for m in parsed], f"x = data.{package}"])
        run = subprocess.run([sys.executable, "-c", _CHECK], input=payload, capture_output=True, text=True, timeout=120)
        if run.returncode == 0 and run.stdout.strip().endswith("OK"):
            clean += 1
            continue
        messages = [line for line in run.stdout.splitlines() if line and line[0].isalpha() and not line.startswith(("Errors", "Pass", "wellformed", "FAILED"))]
        assert all(m == REGOPY_BRACKET_DEFECT for m in messages), f"{name}: {run.stdout[:2000]}{run.stderr[-2000:]}"
        assert any(_wildcard_in_call_args(m.rules) for m in parsed), f"{name}: {run.stdout[:2000]}{run.stderr[-2000:]}"
    assert clean > len(groups) * 2 // 3


def test_comments_are_kept() -> None:
    text = "# head\npackage p\n\n# about q\nq if {\n\tx := 1 # trailing\n\t# inside\n\tx > 0\n}\n# tail\n"
    module = parse_module(text)
    printed = format_module(module)
    assert [c.text for c in parse_module(printed).comments] == [c.text for c in module.comments]
    assert printed.index("# about q") < printed.index("q if")
    assert printed.index("# inside") < printed.index("x > 0")


def test_strings_and_numbers() -> None:
    term = parse_term('["a\\"b\\\\c\\n\\u00e9", `raw\\d`, 1e3, -0.5, 10000000000000000000000]')
    assert format_term(term) == '["a\\"b\\\\c\\né", "raw\\\\d", 1e3, -0.5, 10000000000000000000000]'


def test_template_strings_print_as_double_quoted() -> None:
    """`$`...`` prints as `$"..."` (one spelling; regopy misreads a backslash in the raw form), a literal brace
    as `\\{`, and a template expression with its `with` modifiers."""
    term = parse_term('$`a\\{b\\n\n{x with input as 1}"{ {1} }`')
    text = format_term(term)
    assert text == '$"a\\{b\\\\n\\n{x with input as 1}\\"{{1}}"'
    assert parse_term(text) == term


def test_unprintable_trees_are_refused() -> None:
    with pytest.raises(PrintError):
        format_term(ast.Var("if"))
    with pytest.raises(PrintError):
        format_term(ast.Scalar(float("inf")))


# ------------------------------------------------------------------------------ layouts


def _offsets(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    return starts


def _split_in_brackets(text: str, picks: list[bool]) -> str:
    """A newline after some `[`, `(` and `,` (inside brackets a newline is whitespace)."""
    starts = _offsets(text)
    cuts = [starts[t.line - 1] + t.col for t in tokenize(text).tokens if t.kind in ("[", "(", ",")]
    chosen = [c for c, pick in zip(cuts, picks * (len(cuts) // max(len(picks), 1) + 1), strict=False) if pick]
    for cut in reversed(chosen):
        text = text[:cut] + "\n\t\t" + text[cut:]
    return text


def _join_statements(text: str, picks: list[bool]) -> str:
    """Some consecutive statements of a body on one line, separated by `;`."""
    lines = text.split("\n")
    out: list[str] = []
    k = 0
    for line in lines:
        prev = out[-1] if out else ""
        indent = len(line) - len(line.lstrip("\t"))
        joinable = (
            indent > 0 and prev.startswith("\t" * indent) and not prev.startswith("\t" * (indent + 1))
            and not prev.rstrip().endswith(("{", ";")) and not line.strip().startswith(("}", "-", "#"))
            and not prev.lstrip().startswith("#")
        )
        if joinable and picks and picks[k % len(picks)]:
            out[-1] = prev + "; " + line.strip()
        else:
            out.append(line)
        k += 1
    return "\n".join(out)


def _comment_lines(text: str, picks: list[bool]) -> str:
    lines = text.split("\n")
    return "\n".join(line + ("  # note" if line.strip() and picks and picks[i % len(picks)] else "") for i, line in enumerate(lines))


def _no_future_imports(module: ast.Module) -> ast.Module:
    return dataclasses.replace(module, imports=tuple(i for i in module.imports if i.path.head != ast.Var("future")))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_layouts_of_library_modules_give_the_same_tree(data: st.DataObject) -> None:
    sources = _library()
    source = data.draw(st.sampled_from(sources))
    module = parse_module(source.text)
    picks = data.draw(st.lists(st.booleans(), min_size=1, max_size=8))
    text = format_module(module)
    if data.draw(st.booleans()):
        text = _join_statements(text, picks)
    if data.draw(st.booleans()):
        text = _split_in_brackets(text, picks)
    if data.draw(st.booleans()):
        text = _comment_lines(text, picks)
    assert parse_module(text) == module, text
    v0 = format_module(module, v1=False)
    assert _no_future_imports(parse_module(v0, v1=False)) == _no_future_imports(module), v0


# ------------------------------------------------------------------------------ generated modules


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(modules())
def test_round_trip_on_generated_modules(module: ast.Module) -> None:
    printed = format_module(module)
    assert parse_module(printed) == module, printed
    v0 = format_module(module, v1=False)
    assert _no_future_imports(parse_module(v0, v1=False)) == module, v0


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(modules_and_inputs())
def test_regopy_evaluates_generated_modules(case: tuple[ast.Module, dict]) -> None:
    module, data = case
    r = regopy.Interpreter()
    r.add_module("gen", format_module(module))
    r.set_input_term(json.dumps(data))
    if not r.query("x = data.gen").ok():
        # regopy's defect with an object comprehension whose value is bound outside it, yielding one key
        # twice (pinned in test_rego_compiler_differential.py); any other failure is the printer's
        assume(_outer_valued_object_comprehension(module))
        pytest.fail(format_module(module))


def _outer_valued_object_comprehension(module: ast.Module) -> bool:
    from admission.engines.rego.compiler import body_vars
    from admission.engines.rego.passes import walk_terms

    return any(isinstance(t, ast.ObjectCompr) and isinstance(t.value, ast.Var) and t.value.name not in body_vars(t.body)
               for t in walk_terms(module))
