"""Rego's tokens, as OPA's scanner reads them: identifiers (keywords are decided by the parser, which knows
which `future.keywords` are imported), numbers, strings with JSON escapes, raw strings in backquotes (across
lines), operators and comments. Whitespace is not a token: each token records whether whitespace preceded it
(a ref such as `x[0]` or a call `f(x)` cannot have any inside) and whether a newline did (a newline ends a
statement, as `;` does).

Positions are 1-based line and column; `line_offset`/`col_offset` shift them for text embedded in another file
(a ConstraintTemplate's `rego: |` block), so that every error and node names the line of the file the author
edits.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from admission.engines import PolicyError

IDENT = "ident"
NUMBER = "number"
STRING = "string"
EOF = "eof"

# operators, longest first within a common prefix
OPERATORS = (":=", "==", "!=", "<=", ">=", "{", "}", "[", "]", "(", ")", ".", ",", ";", ":", "=", "<", ">", "+", "-", "*", "/", "%", "&", "|")

_SCAN = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<op>:=|==|!=|<=|>=|[{}\[\]().,;:=<>+\-*/%&|])
    """,
    re.VERBOSE,
)


class RegoSyntaxError(PolicyError):
    """A module that is not Rego: `file:line:col: message`."""

    def __init__(self, file: str, line: int, col: int, message: str) -> None:
        super().__init__(f"{file or '<rego>'}:{line}:{col}", message)
        self.file = file
        self.line = line
        self.col = col


@dataclass(slots=True)
class Token:
    kind: str  # IDENT, NUMBER, STRING, EOF, or the operator's text
    text: str  # source text (for STRING the decoded value)
    line: int
    col: int
    ws: bool  # whitespace (or a comment) before this token
    nl: bool  # a newline before this token (since the previous token)
    raw: bool = False  # a backquoted string


@dataclass(slots=True)
class Lexed:
    tokens: list[Token]
    comments: list[tuple[str, int, int]]  # (text without '#', line, col)


def tokenize(text: str, *, file: str = "", line_offset: int = 0, col_offset: int = 0) -> Lexed:
    """All tokens of `text` (ending with an EOF token) and its comments."""
    tokens: list[Token] = []
    comments: list[tuple[str, int, int]] = []
    append = tokens.append
    match = _SCAN.match
    pos = 0
    n = len(text)
    line = 1
    line_start = 0
    ws = False
    nl = False
    if text.startswith("\ufeff"):
        pos = line_start = 1
    while pos < n:
        m = match(text, pos)
        if m is None:
            col = pos - line_start + 1
            ch = text[pos]
            if ch == '"':
                raise RegoSyntaxError(file, line + line_offset, col + col_offset, "unterminated string (a string ends on its line; use `...` for text across lines)")
            if ch == "$" and text[pos + 1 : pos + 2] in ('"', "`"):
                raise RegoSyntaxError(file, line + line_offset, col + col_offset, "template strings ($\"...\") are not supported; use sprintf")
            if ch == "`":
                raise RegoSyntaxError(file, line + line_offset, col + col_offset, "unterminated raw string: no closing `")
            raise RegoSyntaxError(file, line + line_offset, col + col_offset, f"unexpected character {ch!r}")
        kind = m.lastgroup
        end = m.end()
        if kind == "ws":
            ws = True
        elif kind == "nl":
            ws = nl = True
            line += 1
            line_start = end
        elif kind == "comment":
            comments.append((m.group()[1:], line + line_offset, pos - line_start + 1 + col_offset))
            ws = True
        else:
            lit = m.group()
            col = pos - line_start + 1 + col_offset
            if kind == "op":
                append(Token(lit, lit, line + line_offset, col, ws, nl))
            elif kind == "ident":
                append(Token(IDENT, lit, line + line_offset, col, ws, nl))
            elif kind == "number":
                append(Token(NUMBER, lit, line + line_offset, col, ws, nl))
            elif kind == "string":
                append(Token(STRING, _unquote(lit, file, line + line_offset, col), line + line_offset, col, ws, nl))
            else:  # raw string, possibly across lines
                append(Token(STRING, lit[1:-1], line + line_offset, col, ws, nl, True))
                breaks = lit.count("\n")
                if breaks:
                    line += breaks
                    line_start = pos + lit.rfind("\n") + 1
            ws = nl = False
        pos = end
    append(Token(EOF, "", line + line_offset, pos - line_start + 1 + col_offset, ws, nl))
    return Lexed(tokens, comments)


def _unquote(lit: str, file: str, line: int, col: int) -> str:
    """A double-quoted string's value, with JSON's escapes (as OPA decodes it)."""
    if "\\" not in lit:
        return lit[1:-1]
    try:
        value = json.loads(lit)
    except ValueError as exc:
        raise RegoSyntaxError(file, line, col, f"invalid string {lit}: {exc.args[0].split(':')[0]}") from None
    assert isinstance(value, str)
    return value
