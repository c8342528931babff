"""A recursive-descent parser for Rego v0 and v1, after OPA's grammar reference and `v1/ast/parser.go`.

    parse_module(text, file=..., v1=None)   -> ast.Module   (None: v1 if the text reads as v1, else v0)
    parse_query(text)                        -> ast.Body
    parse_term(text)                         -> ast.Term

Behaviour follows OPA's parser where the grammar leaves it open:
- binding strength, loosest first: `:=`/`=` (statement level only), `in`, comparisons, `|`, `&`, `+ -`, `* / %`;
  each level is left-associative; a minus directly before a number makes a negative number;
- a ref or call has no whitespace inside (`x [0]` is two terms); an infix operator continues an expression over
  line breaks (before or after the operator), and a newline inside brackets is whitespace;
- statements of a body are separated by `;` or a newline;
- in v0 `in`, `every`, `if` and `contains` are identifiers unless imported from `future.keywords` (or `rego.v1`);
- v0 `p[x] { ... }` is a multi-value (set) rule, v1 `p[x] if { ... }` a single-value rule `p[x] = true`;
- rules without a value are `true`; an empty body means `true`.
A syntax error raises RegoSyntaxError with file:line:col.
"""

from __future__ import annotations

from decimal import Decimal

from admission.engines.rego import ast
from admission.engines.rego.lexer import (
    EOF,
    IDENT,
    NUMBER,
    STRING,
    TEMPLATE,
    RegoSyntaxError,
    Token,
    tokenize,
)

__all__ = ["RegoSyntaxError", "parse_module", "parse_query", "parse_term"]

BASE_KEYWORDS = frozenset({"package", "import", "as", "default", "else", "not", "with", "some", "true", "false", "null"})
FUTURE_KEYWORDS = frozenset({"in", "every", "if", "contains"})

_BINARY: dict[str, int] = {"==": 1, "!=": 1, "<": 1, ">": 1, "<=": 1, ">=": 1, "|": 2, "&": 3, "+": 4, "-": 4, "*": 5, "/": 5, "%": 5}
_CLOSERS = {"{": "}", "[": "]", "(": ")"}
_ROOTS = ("data", "input")


def _member_ref(name: str, pos: ast.Pos) -> ast.Ref:
    head, _, tail = name.partition(".")
    return ast.Ref(ast.Var(head, pos), (ast.Scalar(tail, pos=pos),), pos)


class _Parser:
    __slots__ = ("comments", "file", "i", "keywords", "tok", "tokens", "v1", "v1_required")

    def __init__(self, tokens: list[Token], file: str, v1: bool) -> None:
        self.tokens = tokens
        self.file = file
        self.i = 0
        self.tok = tokens[0]
        self.v1 = v1
        self.v1_required = v1  # v1 rules: `if` before a body, `contains` for multi-value rules
        self.keywords: set[str] = set(BASE_KEYWORDS | FUTURE_KEYWORDS) if v1 else set(BASE_KEYWORDS)

    # ------------------------------------------------------------------------------------ helpers

    def advance(self) -> Token:
        tok = self.tok
        self.i += 1
        self.tok = self.tokens[self.i]
        return tok

    def restore(self, i: int) -> None:
        self.i = i
        self.tok = self.tokens[i]

    def is_kw(self, word: str) -> bool:
        tok = self.tok
        return tok.kind == IDENT and tok.text == word and word in self.keywords and not self.starts_ref()

    def starts_ref(self) -> bool:
        """The current token is followed by `.` or `[` with nothing between: a keyword there starts a ref
        (`contains.foo`, `input.if` are names, as in OPA)."""
        nxt = self.tokens[self.i + 1]
        return not nxt.ws and (nxt.kind == "." or nxt.kind == "[")

    def error(self, tok: Token, message: str) -> RegoSyntaxError:
        return RegoSyntaxError(self.file, tok.line, tok.col, message)

    def describe(self, tok: Token) -> str:
        if tok.kind == EOF:
            return "end of text"
        if tok.kind == IDENT:
            return f"keyword `{tok.text}`" if tok.text in self.keywords else f"`{tok.text}`"
        if tok.kind == STRING:
            return "string"
        if tok.kind == NUMBER:
            return f"number `{tok.text}`"
        if tok.kind == TEMPLATE:
            return "template string" if tok.first else "`}`"
        return f"`{tok.kind}`"

    def unexpected(self, tok: Token, expected: str = "") -> RegoSyntaxError:
        return self.error(tok, f"unexpected {self.describe(tok)}" + (f": expected {expected}" if expected else ""))

    def expect_close(self, opener: Token, what: str) -> None:
        close = _CLOSERS[opener.kind]
        if self.tok.kind != close:
            raise self.error(
                self.tok,
                f"expected `{close}` to close the {what} opened at {opener.line}:{opener.col}, found {self.describe(self.tok)}",
            )
        self.advance()

    @staticmethod
    def pos(tok: Token) -> ast.Pos:
        return ast.Pos(tok.line, tok.col)

    # ------------------------------------------------------------------------------------ module

    def module(self) -> ast.Module:
        if not self.is_kw("package"):
            raise self.error(self.tok, f"expected `package` at the start of the module, found {self.describe(self.tok)}")
        start = self.advance()
        path = self.dotted_path("package path")
        package = ast.Package(ast.Ref(ast.Var("data", path.pos), (path.head_as_string(), *path.steps), path.pos), self.pos(start))
        imports: list[ast.Import] = []
        while self.is_kw("import"):
            imports.append(self.import_())
        rules: list[ast.Rule] = []
        while self.tok.kind != EOF:
            if self.is_kw("import"):
                raise self.error(self.tok, "`import` must come before the module's rules")
            if self.is_kw("package"):
                raise self.error(self.tok, "a second `package` in one module")
            rules.extend(self.rules())
        return ast.Module(package, tuple(imports), tuple(rules), v1=self.v1, file=self.file)

    def dotted_path(self, what: str) -> _Path:
        tok = self.tok
        if tok.kind != IDENT:
            raise self.unexpected(tok, what)
        self.advance()
        steps: list[ast.Term] = []
        while not self.tok.ws and self.tok.kind in (".", "["):
            if self.advance().kind == ".":
                name = self.tok
                if name.kind != IDENT or name.ws:
                    raise self.unexpected(name, f"a name after `.` in the {what}")
                steps.append(ast.Scalar(name.text, pos=self.pos(name)))
                self.advance()
            else:
                key = self.tok
                if key.kind != STRING:
                    raise self.unexpected(key, f"a string in `[...]` of the {what}")
                steps.append(ast.Scalar(key.text, raw=key.raw, pos=self.pos(key)))
                self.advance()
                if self.tok.kind != "]":
                    raise self.unexpected(self.tok, "`]`")
                self.advance()
        return _Path(tok, tuple(steps))

    def import_(self) -> ast.Import:
        start = self.advance()
        path = self.dotted_path("import path")
        root = path.head.text
        if root not in ("data", "input", "future", "rego"):
            raise self.error(path.head, f"unexpected import path: it must begin with data, input, future or rego, not `{root}`")
        ref = ast.Ref(ast.Var(root, self.pos(path.head)), path.steps, self.pos(path.head))
        names = [s.value for s in path.steps if isinstance(s, ast.Scalar)]
        if root == "future":
            if names[:1] != ["keywords"] or len(names) > 2 or (len(names) == 2 and names[1] not in FUTURE_KEYWORDS):
                raise self.error(path.head, "unknown future import: expected `future.keywords` or `future.keywords.<in|every|if|contains>`")
            self.keywords.update(FUTURE_KEYWORDS if len(names) == 1 else {str(names[1])})
        elif root == "rego":
            if names != ["v1"]:
                raise self.error(path.head, "unknown import: the only `rego` import is `rego.v1`")
            self.keywords.update(FUTURE_KEYWORDS)
            self.v1 = self.v1_required = True
        alias = None
        if self.is_kw("as"):
            self.advance()
            if self.tok.kind != IDENT or self.tok.text in self.keywords:
                raise self.unexpected(self.tok, "a name after `as`")
            alias = self.advance().text
        return ast.Import(ref, alias, self.pos(start))

    # ------------------------------------------------------------------------------------ rules

    def rules(self) -> list[ast.Rule]:
        start = self.tok
        default = False
        if self.is_kw("default"):
            default = True
            self.advance()
        name = self.tok
        if name.kind != IDENT or (name.text in self.keywords and not self.starts_ref()):
            raise self.unexpected(name, "a rule (a name such as `allow`, `deny contains msg if { ... }`)")
        head_term = self.rule_ref()
        args: tuple[ast.Term, ...] | None = None
        if isinstance(head_term, ast.Call):
            ref = head_term.op
            args = head_term.args
        elif isinstance(head_term, ast.Ref):
            ref = head_term
        elif isinstance(head_term, ast.Var):
            ref = ast.Ref(head_term, (), head_term.pos)
        else:  # pragma: no cover - rule_ref returns only these
            raise self.unexpected(name, "a rule name")
        key: ast.Term | None = None
        value: ast.Term | None = None
        assign = False
        contains = False
        if self.is_kw("contains"):
            if args is not None:
                raise self.error(self.tok, "`contains` makes a multi-value rule and cannot follow a function's arguments")
            self.advance()
            key = self.infix(True)
            contains = True
        elif self.tok.kind in (":=", "="):
            assign = self.advance().kind == ":="
            value = self.infix(True)
        has_if = self.is_kw("if")
        if default:
            if value is None:
                raise self.error(start, "a default rule needs a value (`default allow := false`)")
            _check_default_value(self, value, start)
            head = ast.Head(ref, args, None, value, assign, False, self.pos(name))
            return [ast.Rule(head, (), True, None, False, self.pos(start))]
        # v0 `p[x] { ... }` (no value) is a multi-value rule; `p[k] = v` and v1 `p[k] if` are single-value rules
        if not contains and args is None and ref.path:
            last = ref.path[-1]
            if value is None and not has_if and len(ref.path) == 1:
                key = last
                ref = ast.Ref(ref.head, (), ref.pos)
            elif not (isinstance(last, ast.Scalar) and isinstance(last.value, str)):
                key = last
                ref = ast.Ref(ref.head, ref.path[:-1], ref.pos)
                if value is None:
                    value = ast.Scalar(True, pos=self.pos(name))
        if args is not None and value is None and not has_if and self.tok.kind != "{":
            value = ast.Scalar(True, pos=self.pos(name))  # `f("a", _)` alone: a function that is true, as in OPA
        head = ast.Head(ref, args, key, value, assign, contains, self.pos(name))
        body: ast.Body = ()
        if has_if:
            self.advance()
            body = self.rule_body_after_if()
        elif self.tok.kind == "{":
            if self.v1_required:
                raise self.error(self.tok, "`if` is required before a rule body in Rego v1 (`p if { ... }`)")
            body = self.braced_body("rule body")
        elif value is None and key is None and args is None:
            raise self.unexpected(self.tok, f"a rule body or value after `{name.text}` (`{name.text} if {{ ... }}`, `{name.text} := value`)")
        elif key is not None and value is None and not contains and self.v1_required:
            raise self.error(name, "`contains` is required for a multi-value rule in Rego v1 (`p contains x if { ... }`)")
        else_: ast.Rule | None = None
        if self.is_kw("else"):
            if key is not None and value is None:
                raise self.error(self.tok, "`else` cannot follow a multi-value rule")
            if key is not None or any(not _ground(t) for t in ref.path):
                raise self.error(self.tok, "`else` cannot be used on a rule with variables in its head")
            else_ = self.else_chain(head)
        rules = [ast.Rule(head, body, False, else_, has_if, self.pos(start))]
        while self.tok.kind == "{":
            if else_ is not None:
                raise self.error(self.tok, "expected `else` before another body of a rule with an `else`")
            brace = self.tok
            if self.v1_required and not has_if:
                raise self.error(brace, "`if` is required before a rule body in Rego v1 (`p if { ... }`)")
            more = self.braced_body("rule body")
            rules.append(ast.Rule(head, more, False, None, has_if, self.pos(brace)))
        return rules

    def rule_ref(self) -> ast.Term:
        """A rule's name: `p`, `a.b.c`, `p[x]`, `f(x, y)` (whitespace allowed before the first `[`/`(`)."""
        tok = self.advance()
        head: ast.Term = ast.Var(tok.text, self.pos(tok))
        if self.tok.kind in ("[", "(", "."):
            return self.ref_tail(head, True)
        return head

    def rule_body_after_if(self) -> ast.Body:
        """After `if`: one statement, or a braced body. As in OPA, `{` starts a statement when it reads as one
        that is not a set (`if {k: v | ...}` is an object comprehension), otherwise a body."""
        if self.tok.kind == "{":
            save = self.i
            try:
                expr: ast.Expr | None = self.literal()
            except RegoSyntaxError:
                expr = None
            if expr is not None and not isinstance(expr.terms, ast.Set) and self.tok.kind != "{" and (self.tok.nl or self.tok.kind == EOF or self.is_kw("else")):
                return (expr,)
            self.restore(save)
            return self.braced_body("rule body")
        return (self.literal(),)

    def else_chain(self, head: ast.Head) -> ast.Rule:
        start = self.advance()
        value: ast.Term | None = None
        assign = False
        if self.tok.kind in (":=", "="):
            assign = self.advance().kind == ":="
            value = self.infix(True)
        elif not (self.tok.kind == "{" or self.is_kw("if")):
            raise self.unexpected(self.tok, "a value (`else := v`) or a body after `else`")
        has_if = self.is_kw("if")
        body: ast.Body = ()
        if has_if:
            self.advance()
            body = self.rule_body_after_if()
        elif self.tok.kind == "{":
            if self.v1_required:
                raise self.error(self.tok, "`if` is required before an `else` body in Rego v1 (`else := v if { ... }`)")
            body = self.braced_body("else body")
        else_head = ast.Head(head.ref, head.args, None, value, assign, False, self.pos(start))
        nxt = self.else_chain(head) if self.is_kw("else") else None
        return ast.Rule(else_head, body, False, nxt, has_if, self.pos(start))

    # ------------------------------------------------------------------------------------ bodies

    def braced_body(self, what: str) -> ast.Body:
        opener = self.advance()
        body = self.query("}", opener, what)
        self.advance()
        return body

    def query(self, end: str, opener: Token | None, what: str) -> ast.Body:
        if self.tok.kind == end:
            raise self.error(self.tok, f"empty {what}: write `true` for a body that always holds")
        body: list[ast.Expr] = []
        while True:
            if self.tok.kind == EOF and opener is not None:
                raise self.error(self.tok, f"expected `{end}` to close the {what} opened at {opener.line}:{opener.col}")
            body.append(self.literal())
            tok = self.tok
            if tok.kind == ";":
                self.advance()
                continue
            if tok.kind == end:
                return tuple(body)
            if tok.kind == EOF and opener is not None:
                raise self.error(tok, f"expected `{end}` to close the {what} opened at {opener.line}:{opener.col}")
            if not tok.nl:
                closing = f" or `{end}`" if end != EOF else ""
                raise self.error(tok, f"unexpected {self.describe(tok)}: expected a new line or `;`{closing} after the statement")

    def literal(self) -> ast.Expr:
        start = self.tok
        negated = False
        if self.is_kw("not"):
            self.advance()
            negated = True
        expr: ast.Expr
        if self.is_kw("some"):
            if negated:
                raise self.error(start, "`not some ...` is not Rego: negate an expression instead")
            expr = self.some()
        elif self.is_kw("every"):
            if negated:
                raise self.error(start, "`not every ...` is not Rego: negate a rule that uses `every` instead")
            expr = self.every()
        else:
            expr = ast.Expr(self.expr(), negated, (), self.pos(start))
        withs = self.withs()
        if withs:
            expr = ast.Expr(expr.terms, expr.negated, withs, expr.pos)
        return expr

    def withs(self) -> tuple[ast.With, ...]:
        withs: list[ast.With] = []
        if self.is_kw("with"):
            while self.is_kw("with"):
                wtok = self.advance()
                if self.tok.kind != IDENT:
                    raise self.unexpected(self.tok, "a target after `with` (`with input.x as v`)")
                target = self.term()
                if isinstance(target, ast.Var):
                    target = ast.Ref(target, (), target.pos)
                if not isinstance(target, ast.Ref):
                    raise self.error(wtok, "the target of `with` must be a name or a path (`with input.x as v`)")
                if not self.is_kw("as"):
                    raise self.unexpected(self.tok, "`as` after the target of `with`")
                self.advance()
                withs.append(ast.With(target, self.infix(True), self.pos(wtok)))
        return tuple(withs)

    def some(self) -> ast.Expr:
        start = self.advance()
        save = self.i
        try:
            term: ast.Term | None = self.infix(True)
        except RegoSyntaxError:
            term = None
        if isinstance(term, ast.Call) and _call_name(term) in (ast.MEMBER_2, ast.MEMBER_3):
            return ast.Expr(ast.SomeDecl((term,), self.pos(start)), pos=self.pos(start))
        self.restore(save)
        symbols: list[ast.Term] = []
        while True:
            tok = self.tok
            if tok.kind != IDENT or tok.text in self.keywords:
                raise self.unexpected(tok, "a variable after `some`")
            self.advance()
            symbols.append(ast.Var(tok.text, self.pos(tok)))
            if self.tok.kind != ",":
                break
            self.advance()
        return ast.Expr(ast.SomeDecl(tuple(symbols), self.pos(start)), pos=self.pos(start))

    def every(self) -> ast.Expr:
        start = self.advance()
        term = self.infix(True)
        name = _call_name(term) if isinstance(term, ast.Call) else ""
        if not isinstance(term, ast.Call) or name not in (ast.MEMBER_2, ast.MEMBER_3):
            raise self.error(start, "expected `every x in xs { ... }` or `every k, v in xs { ... }`")
        if name == ast.MEMBER_2:
            key, value, domain = None, term.args[0], term.args[1]
        else:
            key, value, domain = term.args
            if not isinstance(key, ast.Var):
                raise self.error(start, "the key of `every k, v in xs` must be a variable")
        if not isinstance(value, ast.Var):
            raise self.error(start, "the value of `every x in xs` must be a variable")
        if self.tok.kind != "{":
            raise self.unexpected(self.tok, "`{` to open the body of `every`")
        body = self.braced_body("body of `every`")
        return ast.Expr(ast.Every(key, value, domain, body, self.pos(start)), pos=self.pos(start))

    def expr(self) -> ast.Term:
        lhs = self.infix(True)
        if self.tok.kind in (":=", "="):
            op = self.advance()
            rhs = self.infix(True)
            return ast.Call(ast.Ref(ast.Var(ast.INFIX[op.kind], self.pos(op)), (), self.pos(op)), (lhs, rhs), _pos_of(lhs))
        return lhs

    # ------------------------------------------------------------------------------------ terms

    def infix(self, key_value: bool, lhs: ast.Term | None = None) -> ast.Term:
        """`x in xs` (and `k, v in xs` where `key_value`) over the binary operators."""
        lhs = self.binary(1, lhs)
        if key_value and self.tok.kind == ",":
            save = self.i
            self.advance()
            try:
                mid = self.binary(1)
                if self.is_kw("in"):
                    op = self.advance()
                    rhs = self.binary(1)
                    lhs = ast.Call(_member_ref(ast.MEMBER_3, self.pos(op)), (lhs, mid, rhs), _pos_of(lhs))
                else:
                    self.restore(save)
            except RegoSyntaxError:
                self.restore(save)
        while self.is_kw("in"):
            op = self.advance()
            rhs = self.binary(1)
            lhs = ast.Call(_member_ref(ast.MEMBER_2, self.pos(op)), (lhs, rhs), _pos_of(lhs))
        return lhs

    def binary(self, min_prec: int, lhs: ast.Term | None = None) -> ast.Term:
        if lhs is None:
            lhs = self.term()
        while True:
            prec = _BINARY.get(self.tok.kind)
            if prec is None or prec < min_prec:
                return lhs
            op = self.advance()
            rhs = self.term()
            nxt = _BINARY.get(self.tok.kind)
            while nxt is not None and nxt > prec:
                rhs = self.binary(prec + 1, rhs)
                nxt = _BINARY.get(self.tok.kind)
            lhs = ast.Call(ast.Ref(ast.Var(ast.INFIX[op.kind], self.pos(op)), (), self.pos(op)), (lhs, rhs), _pos_of(lhs))

    def term(self) -> ast.Term:
        tok = self.tok
        kind = tok.kind
        term: ast.Term
        if kind == IDENT:
            text = tok.text
            # `contains(s, x)` is a call anywhere but in a head; `contains.x`, `if[0]` are refs
            if text in self.keywords and text != "contains" and not self.starts_ref():
                if text == "true" or text == "false":
                    self.advance()
                    return self.no_ref(ast.Scalar(text == "true", pos=self.pos(tok)))
                if text == "null":
                    self.advance()
                    return self.no_ref(ast.Scalar(None, pos=self.pos(tok)))
                raise self.unexpected(tok, "a term")
            self.advance()
            term = ast.Var(text, self.pos(tok))
        elif kind == STRING:
            self.advance()
            return self.no_ref(ast.Scalar(tok.text, raw=tok.raw, pos=self.pos(tok)))
        elif kind == TEMPLATE and tok.first:
            return self.no_ref(self.template_string())
        elif kind == NUMBER or kind == "-" or kind == ".":
            return self.no_ref(self.number())
        elif kind == "[":
            term = self.array()
        elif kind == "{":
            term = self.set_or_object()
        elif kind == "(":
            self.advance()
            term = self.infix(True)
            self.expect_close(tok, "parenthesis")
            if isinstance(term, ast.Ref | ast.Scalar):
                return term
        else:
            raise self.unexpected(tok, "a term")
        nxt = self.tok
        if not nxt.ws and nxt.kind in ("[", ".", "("):
            return self.ref_tail(term, False)
        return term

    def template_string(self) -> ast.TemplateString:
        """`$"a{x}b"`: the lexer's parts, each but the last followed by a template expression: one expression
        (no `:=`/`=`, no `not`), possibly with `with` modifiers, as in OPA."""
        start = self.advance()
        parts: list[str | ast.Expr] = [start.text] if start.text else []
        tok = start
        while not tok.last:
            etok = self.tok
            if etok.kind == TEMPLATE and not etok.first:
                raise self.error(etok, "empty template expression: write `\\{` for a literal brace")
            if self.is_kw("not") or self.is_kw("some") or self.is_kw("every"):
                raise self.error(etok, f"unexpected keyword `{etok.text}` in a template expression: it takes one value")
            value = self.infix(False)
            withs = self.withs()
            if self.tok.kind in (":=", "="):
                raise self.error(self.tok, f"unexpected `{self.tok.kind}` in a template expression: it takes a value, not an assignment")
            if self.tok.kind != TEMPLATE or self.tok.first:
                raise self.error(self.tok, f"expected `}}` to end the template expression opened at {etok.line}:{etok.col}, found {self.describe(self.tok)}")
            parts.append(ast.Expr(value, False, withs, _pos_of(value)))
            tok = self.advance()
            if tok.text:
                parts.append(tok.text)
        return ast.TemplateString(tuple(parts), start.raw, self.pos(start))

    def no_ref(self, term: ast.Term) -> ast.Term:
        nxt = self.tok
        if not nxt.ws and nxt.kind in ("[", "(") or (nxt.kind == "." and not nxt.ws):
            raise self.error(nxt, f"unexpected {self.describe(nxt)}: a scalar cannot be indexed or called")
        return term

    def number(self) -> ast.Scalar:
        start = self.tok
        prefix = ""
        if self.tok.kind == "-":
            prefix = "-"
            self.advance()
        if self.tok.kind == "." and not self.tok.ws and self.tokens[self.i + 1].kind == NUMBER and not self.tokens[self.i + 1].ws:
            prefix += "0."
            self.advance()
        tok = self.tok
        if tok.kind != NUMBER:
            raise self.unexpected(tok, "a number after `-` (a minus sign applies to numbers only; write `0 - x`)")
        self.advance()
        lit = tok.text
        if len(lit) > 1 and lit[0] == "0" and lit[1] not in ".eE" and not prefix.endswith("."):
            raise self.error(tok, f"number `{lit}` has a leading zero")
        text = prefix + lit
        value: int | float
        if "." in text or "e" in text or "E" in text:
            value = float(text)
            if value in (float("inf"), float("-inf")):  # beyond a float: exact if integral, as OPA's big numbers
                exact = Decimal(text)
                if exact.adjusted() > 30000:
                    raise self.error(tok, "number too big")
                value = int(exact)
        else:
            value = int(text)
        return ast.Scalar(value, text=text, pos=self.pos(start))

    def ref_tail(self, head: ast.Term, in_head: bool) -> ast.Term:
        """`head.a[b](args)...` with no whitespace between the parts (a rule head allows it before the first)."""
        path: list[ast.Term] = []
        first = True
        while True:
            tok = self.tok
            if tok.ws and not (in_head and first):
                break
            first = False
            kind = tok.kind
            if kind == ".":
                self.advance()
                name = self.tok
                if name.kind != IDENT or name.ws:
                    raise self.unexpected(name, "a name after `.`")
                self.advance()
                path.append(ast.Scalar(name.text, pos=self.pos(name)))
            elif kind == "[":
                self.advance()
                if self.tok.kind == "]":
                    raise self.unexpected(self.tok, "a term inside `[ ]`")
                path.append(self.infix(True))
                self.expect_close(tok, "`[`")
            elif kind == "(":
                if not isinstance(head, ast.Var) or not all(isinstance(s, ast.Scalar) and isinstance(s.value, str) for s in path):
                    raise self.error(tok, "only a function name (such as `count` or `data.lib.f`) can be called")
                op = ast.Ref(head, tuple(path), head.pos)
                self.advance()
                args = self.term_list(tok, ")", "call")
                if not args and op.path == () and head.name == "set":
                    head = ast.Set((), head.pos)
                else:
                    head = ast.Call(op, tuple(args), head.pos)
                path = []
            else:
                break
        if not path:
            return head
        if isinstance(head, ast.Scalar | ast.Ref):  # pragma: no cover - term() returns scalars without a tail
            raise self.error(self.tok, "a scalar cannot be indexed")
        return ast.Ref(head, tuple(path), _pos_of(head))

    def term_list(self, opener: Token, end: str, what: str) -> list[ast.Term]:
        items: list[ast.Term] = []
        while True:
            if self.tok.kind == end:
                self.advance()
                return items
            if self.tok.kind == EOF:
                raise self.error(self.tok, f"expected `{end}` to close the {what} opened at {opener.line}:{opener.col}")
            items.append(self.infix(False))
            self.list_sep(opener, end, what)

    def list_sep(self, opener: Token, end: str, what: str) -> None:
        if self.tok.kind == ",":
            self.advance()
        elif self.tok.kind != end:
            if self.tok.kind == EOF:
                raise self.error(self.tok, f"expected `{end}` to close the {what} opened at {opener.line}:{opener.col}")
            raise self.unexpected(self.tok, f"`,` or `{end}` in the {what} opened at {opener.line}:{opener.col}")

    def comprehension_body(self, opener: Token, end: str) -> ast.Body | None:
        """After `x |`: the body of a comprehension, or None (OPA's fallback) for a list whose first item is
        `x | y` (the body stopped at a `,`)."""
        save = self.i
        self.advance()
        try:
            body = self.query(end, opener, "comprehension")
        except RegoSyntaxError:
            if self.tok.kind == ",":
                self.restore(save)
                return None
            raise
        self.advance()
        return body

    def array(self) -> ast.Term:
        opener = self.advance()
        pos = self.pos(opener)
        if self.tok.kind == "]":
            self.advance()
            return ast.Array((), pos)
        comprehension = True
        if self.tok.kind == ",":
            comprehension = False
            self.advance()
        head = self.term()
        if comprehension and self.tok.kind == "|":
            body = self.comprehension_body(opener, "]")
            if body is not None:
                return ast.ArrayCompr(head, body, pos)
        items = [self.infix(False, head)]
        self.list_sep(opener, "]", "array")
        items.extend(self.term_list(opener, "]", "array"))
        return ast.Array(tuple(items), pos)

    def set_or_object(self) -> ast.Term:
        opener = self.advance()
        pos = self.pos(opener)
        if self.tok.kind == "}":
            self.advance()
            return ast.Object((), pos)
        comprehension = True
        if self.tok.kind == ",":
            comprehension = False
            self.advance()
        head = self.term()
        if comprehension and self.tok.kind == "|":
            body = self.comprehension_body(opener, "}")
            if body is not None:
                return ast.SetCompr(head, body, pos)
        if self.tok.kind != ":":
            head = self.infix(False, head)
        if self.tok.kind == ":":
            self.advance()
            value = self.term()
            if comprehension and self.tok.kind == "|":
                body = self.comprehension_body(opener, "}")
                if body is not None:
                    return ast.ObjectCompr(head, value, body, pos)
            value = self.infix(False, value)
            pairs = [(head, value)]
            self.list_sep(opener, "}", "object")
            while self.tok.kind != "}":
                if self.tok.kind == EOF:
                    raise self.error(self.tok, f"expected `}}` to close the object opened at {opener.line}:{opener.col}")
                key = self.infix(False)
                if self.tok.kind != ":":
                    raise self.unexpected(self.tok, f"`:` after a key of the object opened at {opener.line}:{opener.col}")
                self.advance()
                pairs.append((key, self.infix(False)))
                self.list_sep(opener, "}", "object")
            self.advance()
            return ast.Object(tuple(pairs), pos)
        if self.tok.kind not in (",", "}"):
            raise self.unexpected(self.tok, f"`,`, `:` or `}}` in the set or object opened at {opener.line}:{opener.col}")
        items = [head]
        self.list_sep(opener, "}", "set")
        items.extend(self.term_list(opener, "}", "set"))
        return ast.Set(tuple(items), pos)


class _Path:
    """A dotted name being read (package and import paths)."""

    __slots__ = ("head", "pos", "steps")

    def __init__(self, head: Token, steps: tuple[ast.Term, ...]) -> None:
        self.head = head
        self.steps = steps
        self.pos = ast.Pos(head.line, head.col)

    def head_as_string(self) -> ast.Scalar:
        return ast.Scalar(self.head.text, pos=self.pos)


def _pos_of(term: ast.Term) -> ast.Pos:
    return term.pos


def _call_name(call: ast.Call) -> str:
    op = call.op
    if not isinstance(op.head, ast.Var):
        return ""
    parts = [op.head.name]
    for step in op.path:
        if not (isinstance(step, ast.Scalar) and isinstance(step.value, str)):
            return ""
        parts.append(step.value)
    return ".".join(parts)


def _ground(term: ast.Term) -> bool:
    if isinstance(term, ast.Scalar):
        return True
    if isinstance(term, ast.Array | ast.Set):
        return all(_ground(t) for t in term.items)
    if isinstance(term, ast.Object):
        return all(_ground(k) and _ground(v) for k, v in term.items)
    return False


def _check_default_value(p: _Parser, value: ast.Term, start: Token) -> None:
    """A default value is a constant (comprehensions allowed), as OPA requires."""
    if isinstance(value, ast.Var | ast.Ref | ast.Call):
        kind = {ast.Var: "a variable", ast.Ref: "a reference", ast.Call: "a call"}[type(value)]
        raise p.error(start, f"a default rule's value cannot contain {kind}")
    items: tuple[ast.Term, ...] = ()
    if isinstance(value, ast.Array | ast.Set):
        items = value.items
    elif isinstance(value, ast.Object):
        items = tuple(t for kv in value.items for t in kv)
    for item in items:
        _check_default_value(p, item, start)


# ---------------------------------------------------------------------------------------------- API


def parse_module(
    text: str,
    *,
    file: str = "",
    v1: bool | None = None,
    line_offset: int = 0,
    col_offset: int = 0,
) -> ast.Module:
    """Parse one module. `v1`: True for Rego v1, False for v0 (keywords only through `future.keywords` or
    `rego.v1` imports), None to decide: v1 unless the text reads only as v0 (a rule body without `if`, a v0
    partial set rule, `future.keywords` imports). `line_offset`/`col_offset` shift every position (and error)
    for Rego embedded in another file: line L, column C of `text` become L + line_offset, C + col_offset."""
    lexed = tokenize(text, file=file, line_offset=line_offset, col_offset=col_offset)
    if v1 is None:
        errors: list[RegoSyntaxError] = []
        # v1; else v0; else v0 with the future keywords that it uses without importing them, which older
        # OPA-based tools accept
        for version, lenient in ((True, False), (False, False), (False, True)):
            try:
                module = _parse(lexed.tokens, file, version, lenient)
            except RegoSyntaxError as exc:
                errors.append(exc)
                continue
            return _with_comments(module, lexed.comments)
        raise max(errors, key=lambda e: (e.line, e.col))
    return _with_comments(_parse(lexed.tokens, file, v1), lexed.comments)


def _parse(tokens: list[Token], file: str, v1: bool, lenient: bool = False) -> ast.Module:
    parser = _Parser(tokens, file, v1)
    if lenient:
        parser.keywords.update(FUTURE_KEYWORDS)
    return parser.module()


def _with_comments(module: ast.Module, comments: list[tuple[str, int, int]]) -> ast.Module:
    if not comments:
        return module
    found = tuple(ast.Comment(text, ast.Pos(line, col)) for text, line, col in comments)
    return ast.Module(module.package, module.imports, module.rules, found, module.v1, module.file)


def parse_query(text: str, *, file: str = "", v1: bool = True) -> ast.Body:
    """A query (`data.p.q = x; y := 1`), statements separated by `;` or newlines."""
    p = _Parser(tokenize(text, file=file).tokens, file, v1)
    body = p.query(EOF, None, "query")
    if p.tok.kind != EOF:  # pragma: no cover - query() stops only at EOF
        raise p.unexpected(p.tok)
    return body


def parse_term(text: str, *, file: str = "", v1: bool = True) -> ast.Term:
    """One term (such as an OPA case's `input_term`)."""
    p = _Parser(tokenize(text, file=file).tokens, file, v1)
    term = p.infix(True)
    if p.tok.kind != EOF:
        raise p.unexpected(p.tok, "the end of the term")
    return term
