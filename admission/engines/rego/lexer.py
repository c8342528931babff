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
from typing import Any

from admission.engines import PolicyError

IDENT = "ident"
NUMBER = "number"
STRING = "string"
TEMPLATE = "template"  # a literal part of a template string (`$"a{`, `}b{`, `}c"`): see Token.first/last
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
    raw: bool = False  # a backquoted string (or template string)
    # TEMPLATE only: this part opens the template string (`$"...`) and/or closes it (`..."`); a part that does
    # not close it is followed by a template expression's tokens, up to the `}` that the next part includes
    first: bool = False
    last: bool = False


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
    # for each template string being read: (its brace depth inside the current template expression, raw)
    templates: list[list[Any]] = []
    if text.startswith("\ufeff"):
        pos = line_start = 1
    while pos < n:
        if text[pos] == "$" and text[pos + 1 : pos + 2] in ('"', "`") or templates and text[pos] == "}" and templates[-1][0] == 0:
            first = text[pos] == "$"
            raw = text[pos + 1] == "`" if first else templates[-1][1]
            col = pos - line_start + 1
            part, end, last, breaks, last_break = _template_part(text, pos + (2 if first else 1), raw, file, line + line_offset, col + col_offset)
            append(Token(TEMPLATE, part, line + line_offset, col + col_offset, ws, nl, raw, first, last))
            if not first:
                templates.pop()
            if not last:
                templates.append([0, raw])
            if breaks:
                line += breaks
                line_start = last_break + 1
            ws = nl = False
            pos = end
            continue
        m = match(text, pos)
        if m is None:
            col = pos - line_start + 1
            ch = text[pos]
            if ch == '"':
                raise RegoSyntaxError(file, line + line_offset, col + col_offset, "unterminated string (a string ends on its line; use `...` for text across lines)")
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
                if templates and lit in "{}":
                    templates[-1][0] += 1 if lit == "{" else -1
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
    if templates:
        raise RegoSyntaxError(file, line + line_offset, pos - line_start + 1 + col_offset, "expected `}` to end the template expression")
    append(Token(EOF, "", line + line_offset, pos - line_start + 1 + col_offset, ws, nl))
    return Lexed(tokens, comments)


_TEMPLATE_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "{": "{"}


def _template_part(text: str, pos: int, raw: bool, file: str, line: int, col: int) -> tuple[str, int, bool, int, int]:
    """A literal part of a template string from `pos` up to its next `{` (a template expression follows) or its
    closing quote, as OPA's scanner reads it: `\\{` is a literal brace; in `$"..."` JSON's escapes apply and a
    part ends on its line; in `$`...`` nothing else is an escape. Returns (value, end position, closed,
    newlines crossed, offset of the last newline)."""
    quote = "`" if raw else '"'
    out: list[str] = []
    n = len(text)
    i = pos
    breaks = 0
    last_break = -1
    while True:
        if i >= n or (text[i] == "\n" and not raw):
            raise RegoSyntaxError(file, line, col, "unterminated template string" + ("" if raw else " (a $\"...\" string ends on its line; use $`...` for text across lines)"))
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1, True, breaks, last_break
        if ch == "{":
            return "".join(out), i + 1, False, breaks, last_break
        if ch == "\n":
            breaks += 1
            last_break = i
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt == "{":
                out.append("{")
                i += 2
                continue
            if not raw:
                if nxt == "u":
                    hexa = text[i + 2 : i + 6]
                    if len(hexa) != 4 or any(c not in "0123456789abcdefABCDEF" for c in hexa):
                        raise RegoSyntaxError(file, line, col, "invalid escape sequence in template string: \\u needs four hex digits")
                    code = int(hexa, 16)
                    i += 6
                    if 0xD800 <= code < 0xDC00 and text[i : i + 2] == "\\u":  # a surrogate pair, as JSON decodes it
                        low = text[i + 2 : i + 6]
                        if len(low) == 4 and all(c in "0123456789abcdefABCDEF" for c in low) and 0xDC00 <= int(low, 16) < 0xE000:
                            code = 0x10000 + ((code - 0xD800) << 10) + (int(low, 16) - 0xDC00)
                            i += 6
                    out.append(chr(code))
                    continue
                if nxt not in _TEMPLATE_ESCAPES:
                    raise RegoSyntaxError(file, line, col, f"invalid escape sequence in template string: \\{nxt}")
                out.append(_TEMPLATE_ESCAPES[nxt])
                i += 2
                continue
        out.append(ch)
        i += 1


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
