"""CEL's lexis (cel-spec langdef, "The lexis"): identifiers, reserved words, int/uint/double literals (decimal
and hex, exponents), strings and bytes (single, double and triple quoted, raw `r"..."`, bytes `b"..."`, every
escape: \\a \\b \\f \\n \\r \\t \\v \\\\ \\? \\" \\' \\` \\xHH \\uHHHH \\UHHHHHHHH and octal \\ooo), `//`
comments, backquoted field names (`` a.`b-c` ``) and punctuation. Whitespace and comments are skipped; each
token keeps its offset in the expression.
"""

from __future__ import annotations

import re
from typing import NamedTuple

IDENT, ESC_IDENT, INT, UINT, DOUBLE, STRING, BYTES, EOF = (
    "IDENT", "ESC_IDENT", "INT", "UINT", "DOUBLE", "STRING", "BYTES", "EOF")

# reserved words: literals and `in`, and words reserved for embedding CEL in other languages
KEYWORDS = frozenset({"true", "false", "null", "in"})
RESERVED = KEYWORDS | frozenset({"as", "break", "const", "continue", "else", "for", "function", "if", "import",
                                 "let", "loop", "package", "namespace", "return", "var", "void", "while"})

# One alternative per token class, the most frequent first; longest forms first where one is a prefix of another
# (a double before an int, `==` before `=`). An identifier is not the prefix of a string (`b"..."`, `r'...'`,
# `br"..."`); `.` is punctuation unless a double starts with it (`.5`), `/` unless a comment does.
_SCAN = re.compile(
    r"""
    (?P<ws>[\t\n\f\r ]+)
  | (?P<ident>(?![bB]?[rR]?['"]|[bB]['"])[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>==|!=|<=|>=|&&|\|\||[-+*%<>!?:,()\[\]{}]|\.(?![0-9])|/(?!/))
  | (?P<string>[bB]?(?:
        [rR](?:\"\"\"(?s:.*?)\"\"\"|'''(?s:.*?)'''|"[^"\n\r]*"|'[^'\n\r]*')
      | \"\"\"(?s:(?:\\.|[^\\])*?)\"\"\"
      | '''(?s:(?:\\.|[^\\])*?)'''
      | "(?:\\[^\n\r]|[^"\\\n\r])*"
      | '(?:\\[^\n\r]|[^'\\\n\r])*'
    ))
  | (?P<double>[0-9]+\.[0-9]+(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+|\.[0-9]+(?:[eE][+-]?[0-9]+)?)
  | (?P<uint>(?:0x[0-9a-fA-F]+|[0-9]+)[uU])
  | (?P<int>0x[0-9a-fA-F]+|[0-9]+)
  | (?P<comment>//[^\n]*)
  | (?P<esc_ident>`[A-Za-z0-9_.\- /]+`)
    """,
    re.VERBOSE,
)
_KIND = {"double": DOUBLE, "uint": UINT, "int": INT, "ident": IDENT, "esc_ident": ESC_IDENT}


class CelSyntaxError(ValueError):
    """An expression that is not CEL: the message and the offset in the expression it is about."""

    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


class Token(NamedTuple):
    kind: str  # one of the kinds above, or the text of a punctuation mark or keyword (true, false, null, in)
    text: str  # as written
    pos: int  # offset in the expression


def tokenize(source: str) -> list[Token]:
    """The tokens of an expression, then an EOF token. Raises CelSyntaxError at a character no token starts
    with (an unterminated string, `=`, `&`, `#`, ...)."""
    out: list[Token] = []
    pos, n = 0, len(source)
    match = _SCAN.match
    while pos < n:
        m = match(source, pos)
        if m is None:
            raise CelSyntaxError(pos, _unexpected(source, pos))
        group = m.lastgroup
        if group == "string":
            text = m.group()
            prefix = text[:2].lower()
            kind = BYTES if prefix[0] == "b" else STRING
            out.append(Token(kind, text, pos))
        elif group == "punct":
            out.append(Token(m.group(), m.group(), pos))
        elif group == "ident":
            text = m.group()
            out.append(Token(text if text in KEYWORDS else IDENT, text, pos))
        elif group not in ("ws", "comment"):
            out.append(Token(_KIND[str(group)], m.group(), pos))
        pos = m.end()
    out.append(Token(EOF, "", n))
    return out


def _unexpected(source: str, pos: int) -> str:
    rest = source[pos:pos + 4].lower()
    if rest[:1] in "'\"" or (rest[:1] in "rb" and rest[1:2] in "'\"") or (rest[:2] == "br" and rest[2:3] in "'\""):
        return "unterminated string literal"
    if rest[:1] == "`":
        return "unterminated or invalid quoted field name"
    return f"token recognition error at: '{source[pos]}'"


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
                   "?": "?", '"': '"', "'": "'", "`": "`"}
_HEX = frozenset("0123456789abcdefABCDEF")


def string_value(token: Token) -> str | bytes:
    """The value of a STRING (str) or BYTES (bytes) token, escapes decoded. Raises CelSyntaxError at a bad
    escape."""
    text = token.text
    is_bytes = text[0] in "bB"
    if is_bytes:
        text = text[1:]
    raw = text[0] in "rR"
    if raw:
        text = text[1:]
    q = 3 if text[:3] in ('"""', "'''") else 1
    start = token.pos + (len(token.text) - len(text)) + q
    body = text[q:-q]
    if raw:
        return body.encode() if is_bytes else body
    parts: list[bytes] = []
    chars: list[str] = []

    def flush() -> None:
        if chars:
            parts.append("".join(chars).encode("utf-8", "surrogatepass"))
            chars.clear()

    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch != "\\":
            chars.append(ch)
            i += 1
            continue
        at = start + i
        esc = body[i + 1] if i + 1 < n else ""
        if esc in _SIMPLE_ESCAPES:
            chars.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc in ("x", "X") or esc in ("u", "U"):
            width = {"x": 2, "X": 2, "u": 4, "U": 8}[esc]
            digits = body[i + 2:i + 2 + width]
            if len(digits) != width or not set(digits) <= _HEX:
                raise CelSyntaxError(at, f"invalid escape sequence \\{esc}{digits}")
            code = int(digits, 16)
            if esc in ("u", "U"):
                if is_bytes:
                    raise CelSyntaxError(at, f"\\{esc} escapes are valid only in strings, not bytes")
                if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                    raise CelSyntaxError(at, f"invalid unicode code point \\{esc}{digits}")
            if is_bytes and esc in ("x", "X"):
                flush()
                parts.append(bytes([code]))
            else:
                chars.append(chr(code))
            i += 2 + width
        elif esc in "0123":
            digits = body[i + 1:i + 4]
            if len(digits) != 3 or not set(digits[1:]) <= set("01234567"):
                raise CelSyntaxError(at, f"invalid octal escape \\{digits}")
            code = int(digits, 8)
            if is_bytes:
                flush()
                parts.append(bytes([code]))
            else:
                chars.append(chr(code))
            i += 4
        else:
            raise CelSyntaxError(at, f"invalid escape sequence \\{esc}")
    if not is_bytes:
        return "".join(chars)
    flush()
    return b"".join(parts)
