"""Print an AST back to Rego: canonical v1 (what regopy and OPA 1.x read), or v0 for the round-trip tests.

    format_module(module, v1=True) -> str
    format_body(body) -> str
    format_term(term) -> str

Parsing what this prints gives an equal tree. Strings are written with JSON escapes, numbers as they were
written (`Scalar.text`). Comments are kept: each is written on its own line above the rule or statement that
follows it in the source (a comment at the end of a line moves above the next statement). Bodies are indented
with tabs, as `opa fmt` does.
"""

from __future__ import annotations

import json
import re

from admission.engines.rego import ast

__all__ = ["PrintError", "format_body", "format_module", "format_term"]

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_OPS = {name: op for op, name in ast.INFIX.items()}
# binding strength of the infix operators that can appear inside a term (`=`/`:=` only at statement level)
_PREC = {"equal": 1, "neq": 1, "lt": 1, "gt": 1, "lte": 1, "gte": 1, "or": 2, "and": 3, "plus": 4, "minus": 4, "mul": 5, "div": 5, "rem": 5}
_MEMBER = 0  # `x in xs` binds looser than all of them
KEYWORDS = frozenset({"package", "import", "as", "default", "else", "not", "with", "some", "true", "false", "null", "in", "every", "if", "contains"})


class PrintError(ValueError):
    """A tree that has no Rego spelling (a float that is not finite, a keyword as a variable name, ...)."""


def format_term(term: ast.Term) -> str:
    return _Printer().term(term)


def format_body(body: ast.Body) -> str:
    return "\n".join(_Printer().expr(e) for e in body)


def format_module(module: ast.Module, *, v1: bool = True) -> str:
    """The module as Rego v1 (`v1=False`: v0 spelling, importing the `future.keywords` it needs)."""
    return _Printer(module.comments, v1).module(module)


def _call_name(op: ast.Ref) -> str:
    if not isinstance(op.head, ast.Var):
        return ""
    if not op.path:
        return op.head.name
    parts = [op.head.name]
    for step in op.path:
        if not (isinstance(step, ast.Scalar) and isinstance(step.value, str)):
            return ""
        parts.append(step.value)
    return ".".join(parts)


class _Printer:
    def __init__(self, comments: tuple[ast.Comment, ...] = (), v1: bool = True) -> None:
        self.comments = sorted(comments, key=lambda c: (c.pos.line, c.pos.col))
        self.next_comment = 0
        self.v1 = v1
        self.future: set[str] = set()  # future keywords a v0 print uses

    # ------------------------------------------------------------------------------------ module

    def flush(self, before: ast.Pos | None, indent: str, out: list[str]) -> None:
        """Write the comments that come before `before` in the source (all remaining for None)."""
        comments = self.comments
        while self.next_comment < len(comments):
            c = comments[self.next_comment]
            if before is not None and (c.pos.line, c.pos.col) >= (before.line, before.col):
                return
            out.append(f"{indent}#{c.text}")
            self.next_comment += 1

    def module(self, module: ast.Module) -> str:
        out: list[str] = []
        self.flush(module.package.pos, "", out)
        out.append("package " + self.path(module.package.path, drop_root=True))
        head_end = len(out)
        imports: list[str] = []
        for imp in module.imports:
            self.flush(imp.pos, "", imports)
            imports.append("import " + self.path(imp.path) + (f" as {imp.alias}" if imp.alias else ""))
        rules: list[str] = []
        for rule in module.rules:
            block: list[str] = []
            self.flush(rule.pos, "", block)
            block.append(self.rule(rule))
            rules.append("\n".join(block))
        tail: list[str] = []
        self.flush(None, "", tail)
        if not self.v1:
            have = {_call_name(i.path) for i in module.imports}
            if "future.keywords" not in have:
                for kw in sorted(self.future):
                    if f"future.keywords.{kw}" not in have:
                        imports.append(f"import future.keywords.{kw}")
        text = "\n".join(out[:head_end])
        if imports:
            text += "\n\n" + "\n".join(imports)
        for block_text in rules:
            text += "\n\n" + block_text
        if tail:
            text += "\n\n" + "\n".join(tail)
        return text + "\n"

    def path(self, ref: ast.Ref, *, drop_root: bool = False) -> str:
        steps = ref.path
        if drop_root:
            if not steps or not isinstance(steps[0], ast.Scalar) or not isinstance(steps[0].value, str):
                raise PrintError("a package path is data.<name>...")
            head, steps = steps[0].value, steps[1:]
        else:
            head = self.var(ref.head, bool(steps)) if isinstance(ref.head, ast.Var) else self.term(ref.head)
        return head + "".join(self.step(s) for s in steps)

    # ------------------------------------------------------------------------------------ rules

    def rule(self, rule: ast.Rule) -> str:
        head = rule.head
        if rule.default:
            return "default " + self.head_text(head) + self.value_text(head)
        text = self.head_text(head)
        if head.key is not None and head.value is None:
            if self.v1 or head.ref.path:
                if not self.v1:
                    self.future.add("contains")
                text += " contains " + self.term(head.key)
            else:
                text += f"[{self.term(head.key)}]"
        else:
            text += self.value_text(head)
        text += self.body_text(rule.body, "")
        else_ = rule.else_
        while else_ is not None:
            text += " else" + self.value_text(else_.head) + self.body_text(else_.body, "")
            else_ = else_.else_
        return text

    def head_text(self, head: ast.Head) -> str:
        text = self.path(head.ref)
        if head.args is not None:
            text += "(" + ", ".join(self.term(a) for a in head.args) + ")"
        if head.key is not None and head.value is not None:
            text += f"[{self.term(head.key)}]"
        return text

    def value_text(self, head: ast.Head) -> str:
        if head.value is None:
            return ""
        return (" := " if head.assign else " = ") + self.term(head.value)

    def body_text(self, body: ast.Body, indent: str) -> str:
        if not body:
            return ""
        keyword = " if" if self.v1 else ""
        return f"{keyword} " + self.block(body, indent)

    # ------------------------------------------------------------------------------------ statements

    def expr(self, expr: ast.Expr, indent: str | None = None) -> str:
        terms = expr.terms
        if isinstance(terms, ast.SomeDecl):
            text = "some " + ", ".join(self.some_symbol(s) for s in terms.symbols)
        elif isinstance(terms, ast.Every):
            self.future.add("every")
            self.future.add("in")
            names = (self.term(terms.key) + ", " if terms.key is not None else "") + self.term(terms.value)
            text = f"every {names} in {self.operand(terms.domain, _MEMBER + 1)} " + self.block(terms.body, indent)
        elif isinstance(terms, ast.Call) and len(terms.args) == 2 and _call_name(terms.op) in ("assign", "eq"):
            op = ":=" if _call_name(terms.op) == "assign" else "="
            lhs, rhs = terms.args
            text = f"{self.top(lhs)} {op} {self.top(rhs)}"
        else:
            text = self.top(terms)
        if expr.negated:
            text = "not " + text
        for w in expr.with_:
            text += f" with {self.path(w.target)} as {self.top(w.value)}"
        return text

    def block(self, body: ast.Body, indent: str | None) -> str:
        """The braced body of `every`: on lines when printing a rule body, else inline with `;`."""
        if indent is None:
            return "{ " + "; ".join(self.expr(e) for e in body) + " }"
        inner = indent + "\t"
        lines: list[str] = []
        last = -1  # the line of the previous statement
        for e in body:
            self.flush(e.pos, inner, lines)
            text = self.expr(e, inner)
            if text.startswith("-") and last >= 0:
                # `x\n-1 < y` reads as `x - 1 < y`: end the previous statement with `;`
                lines[last] += ";"
            last = len(lines)
            lines.append(inner + text)
        return "{\n" + "\n".join(lines) + f"\n{indent}}}"

    def some_symbol(self, term: ast.Term) -> str:
        if isinstance(term, ast.Call):
            name = _call_name(term.op)
            if name == ast.MEMBER_2 and len(term.args) == 2:
                self.future.add("in")
                return f"{self.operand(term.args[0], _MEMBER + 1)} in {self.operand(term.args[1], _MEMBER + 1)}"
            if name == ast.MEMBER_3 and len(term.args) == 3:
                self.future.add("in")
                k, v, xs = term.args
                return f"{self.operand(k, _MEMBER + 1)}, {self.operand(v, _MEMBER + 1)} in {self.operand(xs, _MEMBER + 1)}"
        return self.term(term)

    def top(self, term: ast.Term) -> str:
        """A term where `k, v in xs` needs no parentheses (a statement, a `with` value)."""
        if isinstance(term, ast.Call) and _call_name(term.op) == ast.MEMBER_3 and len(term.args) == 3:
            return self.some_symbol(term)
        return self.operand(term, _MEMBER)

    # ------------------------------------------------------------------------------------ terms

    def operand(self, term: ast.Term, min_prec: int) -> str:
        """`term` where an operator of binding strength below `min_prec` needs parentheses."""
        if isinstance(term, ast.Call):
            name = _call_name(term.op)
            if len(term.args) == 2 and name in _PREC:
                prec = _PREC[name]
                text = f"{self.operand(term.args[0], prec)} {_OPS[name]} {self.operand(term.args[1], prec + 1)}"
                return text if prec >= min_prec else f"({text})"
            if len(term.args) == 2 and name == ast.MEMBER_2:
                self.future.add("in")
                text = f"{self.operand(term.args[0], _MEMBER)} in {self.operand(term.args[1], _MEMBER + 1)}"
                return text if _MEMBER >= min_prec else f"({text})"
            if len(term.args) == 3 and name == ast.MEMBER_3:
                return f"({self.some_symbol(term)})"
        return self.term(term)

    def term(self, term: ast.Term) -> str:
        if isinstance(term, ast.Scalar):
            return self.scalar(term)
        if isinstance(term, ast.Var):
            return self.var(term)
        if isinstance(term, ast.Ref):
            return self.ref_head(term.head, bool(term.path)) + "".join(self.step(s) for s in term.path)
        if isinstance(term, ast.Call):
            name = _call_name(term.op)
            if (len(term.args) == 2 and (name in _PREC or name == ast.MEMBER_2)) or (len(term.args) == 3 and name == ast.MEMBER_3):
                return self.operand(term, 0)
            if name in ("assign", "eq"):
                raise PrintError(f"`{_OPS[name]}` can only be a statement, not inside a term")
            if not name:
                raise PrintError("a call's function must be a name (such as `count` or `data.lib.f`)")
            op = self.path(term.op) if term.op.path else name if name == "contains" else self.var(term.op.head)
            return op + "(" + ", ".join(self.operand(a, 0) for a in term.args) + ")"
        if isinstance(term, ast.Array):
            return "[" + ", ".join(self.operand(t, 0) for t in term.items) + "]"
        if isinstance(term, ast.Set):
            if not term.items:
                return "set()"
            return "{" + ", ".join(self.operand(t, 0) for t in term.items) + "}"
        if isinstance(term, ast.Object):
            return "{" + ", ".join(f"{self.operand(k, 0)}: {self.operand(v, 0)}" for k, v in term.items) + "}"
        # a comprehension's head is a single term (OPA reads `[a + b | ...]` as `[a + (b | ...)]`)
        if isinstance(term, ast.ArrayCompr):
            return f"[{self.operand(term.term, 99)} | {self.inline(term.body)}]"
        if isinstance(term, ast.SetCompr):
            return f"{{{self.operand(term.term, 99)} | {self.inline(term.body)}}}"
        if isinstance(term, ast.ObjectCompr):
            return f"{{{self.operand(term.key, 99)}: {self.operand(term.value, 99)} | {self.inline(term.body)}}}"
        if isinstance(term, ast.TemplateString):
            # always as `$"..."` (JSON escapes, a literal brace as `\{`): one spelling for both kinds
            out = ['$"']
            for part in term.parts:
                if isinstance(part, str):
                    out.append(json.dumps(part, ensure_ascii=False)[1:-1].replace("{", "\\{"))
                else:
                    if isinstance(part.terms, ast.SomeDecl | ast.Every) or part.negated:
                        raise PrintError("a template expression is one value, not `some`, `every` or `not`")
                    out.append("{" + self.expr(part) + "}")
            out.append('"')
            return "".join(out)
        raise PrintError(f"not a term: {term!r}")

    def inline(self, body: ast.Body) -> str:
        if not body:
            raise PrintError("a comprehension needs a body")
        return "; ".join(self.expr(e) for e in body)

    def ref_head(self, head: ast.Term, followed: bool) -> str:
        if isinstance(head, ast.Var):
            return self.var(head, followed)
        if isinstance(head, ast.Scalar | ast.Ref):
            raise PrintError("a ref starts with a name, a collection, a comprehension or a call")
        text = self.term(head)
        if isinstance(head, ast.Call) and _call_name(head.op) in _PREC:
            return f"({text})"
        return text

    def step(self, step: ast.Term) -> str:
        if isinstance(step, ast.Scalar) and isinstance(step.value, str) and _IDENT.match(step.value):
            return "." + step.value
        return f"[{self.operand(step, 0)}]"

    def var(self, var: ast.Term, followed: bool = False) -> str:
        """A name; a keyword only where a `.` or `[` follows it (`contains.foo`), which makes it a ref."""
        if not isinstance(var, ast.Var):
            return self.term(var)
        name = var.name
        if (name in KEYWORDS and not followed) or not _IDENT.match(name):
            raise PrintError(f"`{name}` cannot be a variable name in Rego v1")
        return name

    @staticmethod
    def scalar(s: ast.Scalar) -> str:
        v = s.value
        if v is None:
            return "null"
        if v is True:
            return "true"
        if v is False:
            return "false"
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if s.text is not None:
            return s.text
        if isinstance(v, float):
            if v != v or v in (float("inf"), float("-inf")):
                raise PrintError(f"{v} is not a Rego number")
            return repr(v)
        return str(v)
