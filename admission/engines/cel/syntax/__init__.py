"""CEL's front end: lexer -> parser -> typed AST -> named passes -> printer, the way cel-go and cel-cpp
structure theirs. cel-cpp (through cel-expr-python) offers no AST to rewrite, so every rewrite the Kubernetes
and Kyverno environments need is a pass over this tree (admission.engines.cel.syntax.passes), and cel-cpp
compiles the printed result. Nothing downstream edits or scans expression text.
"""

from admission.engines.cel.syntax.ast import Expr, line_col
from admission.engines.cel.syntax.lexer import CelSyntaxError
from admission.engines.cel.syntax.parser import parse
from admission.engines.cel.syntax.printer import Printed, print_expr, print_with_spans

__all__ = ["CelSyntaxError", "Expr", "Printed", "line_col", "parse", "print_expr", "print_with_spans", "syntax_problem"]


def syntax_problem(source: str, error: CelSyntaxError) -> str:
    """`line:col: message` of a syntax error, the line and column inside the expression."""
    line, col = line_col(source, error.offset)
    return f"{line}:{col}: {error.message}"
