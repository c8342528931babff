"""Where Rego embedded in a YAML file sits in that file, so that errors name the line the author edits.

A ConstraintTemplate keeps its Rego in a literal block scalar (`rego: |`, `- |` under `libs:`): line L, column
C of the Rego text are line `header + L`, column `indent + C` of the file, where `header` is the line of the
`|` and `indent` the block's indentation (that of its first non-empty line). Pass them to
`parse_module(..., line_offset=, col_offset=)`.
"""

from __future__ import annotations

import re

_HEADER = re.compile(r"(?:^|[:\-]\s)\s*\|[-+0-9]*\s*(?:#.*)?$")


def literal_block_origin(text: str, header_line: int) -> tuple[int, int] | None:
    """(line_offset, col_offset) of the literal block scalar whose `|` ends line `header_line` (1-based) of
    `text`; None when that line opens no literal block (a folded `>` or quoted scalar has no line mapping)."""
    lines = text.splitlines()
    if not 1 <= header_line <= len(lines) or not _HEADER.search(lines[header_line - 1].rstrip()):
        return None
    for line in lines[header_line:]:
        if line.strip():
            return header_line, len(line) - len(line.lstrip(" "))
    return header_line, 0
