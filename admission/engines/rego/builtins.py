"""Rego's built-in functions and operators for the compiled evaluator, over values.py's plain values.

`BUILTINS` maps a name (`count`, `regex.match`, `plus`, ...) to a `Builtin`: the Python function and its
arity. A function takes evaluated arguments and returns a value, or raises `BuiltinError`: OPA makes such an
expression undefined, or fails the query in strict mode (the caller decides). Type errors are
BuiltinErrors with code `eval_type_error`, as in OPA. A name missing here is not compiled (the module
falls back to regopy), so only what is implemented with OPA's semantics is listed.

Functions that depend on the evaluation (`time.now_ns`, pinned per evaluation) take the context as their
first argument and say so with `ctx=True`.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from admission.engines.rego.values import (
    UNDEFINED,
    EvalError,
    Set,
    compare,
    equal,
    json_text,
    key,
    number_text,
    sorted_values,
    to_json,
    type_name,
)
from admission.regex import RegexError, compile_regex, find_all


class BuiltinError(EvalError):
    """A built-in function failed (`eval_type_error` for a wrong operand type, `eval_builtin_error` else)."""


@dataclass(frozen=True)
class Builtin:
    fn: Callable[..., Any]
    arity: int
    ctx: bool = False  # fn takes the evaluation context first


BUILTINS: dict[str, Builtin] = {}


def _builtin(name: str, arity: int, ctx: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        BUILTINS[name] = Builtin(fn, arity, ctx)
        return fn

    return register


# ---------------------------------------------------------------------------------- operand checks

_KIND_NAMES = {"string": "string", "number": "number", "array": "array", "object": "object", "set": "set"}


def _type_err(name: str, pos: int, want: str, got: Any) -> BuiltinError:
    return BuiltinError("eval_type_error", f"{name}: operand {pos} must be {want} but got {type_name(got)}")


def _str(name: str, pos: int, v: Any) -> str:
    if type(v) is not str:
        raise _type_err(name, pos, "string", v)
    return v


def _num(name: str, pos: int, v: Any) -> int | float:
    t = type(v)
    if t is not int and t is not float:
        raise _type_err(name, pos, "number", v)
    return v


def _int(name: str, pos: int, v: Any) -> int:
    n = _num(name, pos, v)
    if type(n) is float:
        if not n.is_integer():
            raise BuiltinError("eval_type_error", f"{name}: operand {pos} must be integer number but got floating-point number")
        return int(n)
    return int(n)


def _arr(name: str, pos: int, v: Any) -> list[Any]:
    if type(v) is not list:
        raise _type_err(name, pos, "array", v)
    return v


def _obj(name: str, pos: int, v: Any) -> dict[Any, Any]:
    if type(v) is not dict:
        raise _type_err(name, pos, "object", v)
    return v


def _set(name: str, pos: int, v: Any) -> Set:
    if type(v) is not Set:
        raise _type_err(name, pos, "set", v)
    return v


def _collection(name: str, pos: int, v: Any, kinds: str) -> Any:
    t = type(v)
    if (t is list and "array" in kinds) or (t is Set and "set" in kinds) or (t is dict and "object" in kinds) or (
        t is str and "string" in kinds
    ):
        return v
    raise _type_err(name, pos, "one of {" + kinds + "}", v)


def normalize(n: int | float) -> int | float:
    """An integral float as an int (OPA's numbers have no separate float type)."""
    if type(n) is float and n.is_integer() and abs(n) < 2**63:
        return int(n)
    return n


# ---------------------------------------------------------------------------------------- operators


def _arith(name: str, a: Any, b: Any) -> tuple[int | float, int | float]:
    return _num(name, 1, a), _num(name, 2, b)


@_builtin("plus", 2)
def plus(a: Any, b: Any) -> Any:
    x, y = _arith("plus", a, b)
    return normalize(x + y)


@_builtin("minus", 2)
def minus(a: Any, b: Any) -> Any:
    if type(a) is Set and type(b) is Set:
        return Set.of_keys({k: v for k, v in a.m.items() if k not in b.m})
    if type(a) is Set or type(b) is Set:
        raise BuiltinError("eval_type_error", f"minus: operand 2 must be set but got {type_name(b)}")
    x, y = _arith("minus", a, b)
    return normalize(x - y)


@_builtin("mul", 2)
def mul(a: Any, b: Any) -> Any:
    x, y = _arith("mul", a, b)
    return normalize(x * y)


@_builtin("div", 2)
def div(a: Any, b: Any) -> Any:
    x, y = _arith("div", a, b)
    if y == 0:
        raise BuiltinError("eval_builtin_error", "div: divide by zero")
    if type(x) is int and type(y) is int and x % y == 0:
        return x // y
    return normalize(x / y)


@_builtin("rem", 2)
def rem(a: Any, b: Any) -> Any:
    x, y = _arith("rem", a, b)
    if type(x) is float and not x.is_integer() or type(y) is float and not y.is_integer():
        raise BuiltinError("eval_builtin_error", "rem: modulo on floating-point number")
    x, y = int(x), int(y)
    if y == 0:
        raise BuiltinError("eval_builtin_error", "rem: modulo by zero")
    r = abs(x) % abs(y)
    return -r if x < 0 else r


@_builtin("or", 2)
def set_or(a: Any, b: Any) -> Any:
    sa, sb = _set("or", 1, a), _set("or", 2, b)
    return Set.of_keys({**sa.m, **sb.m})


@_builtin("and", 2)
def set_and(a: Any, b: Any) -> Any:
    sa, sb = _set("and", 1, a), _set("and", 2, b)
    return Set.of_keys({k: v for k, v in sa.m.items() if k in sb.m})


@_builtin("equal", 2)
def op_equal(a: Any, b: Any) -> bool:
    return equal(a, b)


@_builtin("neq", 2)
def op_neq(a: Any, b: Any) -> bool:
    return not equal(a, b)


@_builtin("lt", 2)
def op_lt(a: Any, b: Any) -> bool:
    return compare(a, b) < 0


@_builtin("lte", 2)
def op_lte(a: Any, b: Any) -> bool:
    return compare(a, b) <= 0


@_builtin("gt", 2)
def op_gt(a: Any, b: Any) -> bool:
    return compare(a, b) > 0


@_builtin("gte", 2)
def op_gte(a: Any, b: Any) -> bool:
    return compare(a, b) >= 0


@_builtin("abs", 1)
def b_abs(a: Any) -> Any:
    return abs(_num("abs", 1, a))


@_builtin("round", 1)
def b_round(a: Any) -> Any:
    x = _num("round", 1, a)
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


@_builtin("ceil", 1)
def b_ceil(a: Any) -> Any:
    return math.ceil(_num("ceil", 1, a))


@_builtin("floor", 1)
def b_floor(a: Any) -> Any:
    return math.floor(_num("floor", 1, a))


# the longest list numbers.range builds: its bounds often come from the request, and a range of 10^12 numbers
# would take the worker's memory; past this it is an error of the rule (never undefined: `not` or a failed
# test would then allow), which follows the failure policy
RANGE_LIMIT = 10_000_000


@_builtin("numbers.range", 2)
def numbers_range(a: Any, b: Any) -> Any:
    x, y = _int("numbers.range", 1, a), _int("numbers.range", 2, b)
    if abs(y - x) >= RANGE_LIMIT:
        raise EvalError("eval_limit_error", f"numbers.range: {abs(y - x) + 1} numbers, more than the {RANGE_LIMIT:,} allowed")
    return list(range(x, y + 1)) if x <= y else list(range(x, y - 1, -1))


# ------------------------------------------------------------------------------------- aggregates


@_builtin("count", 1)
def count(a: Any) -> int:
    t = type(a)
    if t is str or t is list or t is dict or t is Set:
        return len(a)
    raise _type_err("count", 1, "one of {array, object, set, string}", a)


@_builtin("sum", 1)
def b_sum(a: Any) -> Any:
    c = _collection("sum", 1, a, "array, set")
    total: int | float = 0
    for x in c:
        total += _num("sum", 1, x)
    return normalize(total)


@_builtin("product", 1)
def b_product(a: Any) -> Any:
    c = _collection("product", 1, a, "array, set")
    total: int | float = 1
    for x in c:
        total *= _num("product", 1, x)
    return normalize(total)


@_builtin("max", 1)
def b_max(a: Any) -> Any:
    c = list(_collection("max", 1, a, "array, set"))
    if not c:
        return UNDEFINED
    return sorted_values(c)[-1]


@_builtin("min", 1)
def b_min(a: Any) -> Any:
    c = list(_collection("min", 1, a, "array, set"))
    if not c:
        return UNDEFINED
    return sorted_values(c)[0]


@_builtin("sort", 1)
def b_sort(a: Any) -> Any:
    return sorted_values(_collection("sort", 1, a, "array, set"))


@_builtin("all", 1)
def b_all(a: Any) -> bool:
    return all(x is True for x in _collection("all", 1, a, "array, set"))


@_builtin("any", 1)
def b_any(a: Any) -> bool:
    return any(x is True for x in _collection("any", 1, a, "array, set"))


# --------------------------------------------------------------------------------------- strings


@_builtin("concat", 2)
def concat(sep: Any, a: Any) -> str:
    s = _str("concat", 1, sep)
    c = _collection("concat", 2, a, "array, set")
    items = sorted_values(c) if type(c) is Set else c
    for x in items:
        if type(x) is not str:
            raise BuiltinError("eval_type_error", f"concat: operand 2 must be array of strings but got {type_name(c)} containing {type_name(x)}")
    return s.join(items)


@_builtin("contains", 2)
def b_contains(a: Any, b: Any) -> bool:
    return _str("contains", 2, b) in _str("contains", 1, a)


@_builtin("startswith", 2)
def startswith(a: Any, b: Any) -> bool:
    return _str("startswith", 1, a).startswith(_str("startswith", 2, b))


@_builtin("endswith", 2)
def endswith(a: Any, b: Any) -> bool:
    return _str("endswith", 1, a).endswith(_str("endswith", 2, b))


@_builtin("lower", 1)
def lower(a: Any) -> str:
    return _str("lower", 1, a).lower()


@_builtin("upper", 1)
def upper(a: Any) -> str:
    return _str("upper", 1, a).upper()


@_builtin("split", 2)
def split(a: Any, b: Any) -> list[str]:
    s, sep = _str("split", 1, a), _str("split", 2, b)
    if sep == "":  # Go's strings.Split splits into UTF-8 sequences
        return list(s)
    return s.split(sep)


@_builtin("replace", 3)
def replace(a: Any, old: Any, new: Any) -> str:
    s, o, n = _str("replace", 1, a), _str("replace", 2, old), _str("replace", 3, new)
    if o == "":
        return n + n.join(s) + n if s else n
    return s.replace(o, n)


@_builtin("strings.replace_n", 2)
def replace_n(patterns: Any, a: Any) -> str:
    p = _obj("strings.replace_n", 1, patterns)
    s = _str("strings.replace_n", 2, a)
    pairs: list[tuple[str, str]] = []
    for k in sorted_values(p.keys()):
        if type(k) is not str:
            raise BuiltinError("eval_type_error", "strings.replace_n: operand 1 non-string key found in pattern object")
        v = p[k]
        if type(v) is not str:
            raise BuiltinError("eval_type_error", "strings.replace_n: operand 1 non-string value found in pattern object")
        pairs.append((k, v))
    # Go's strings.NewReplacer: at each position the first pattern (in argument order) that matches wins
    out: list[str] = []
    i = 0
    while i < len(s):
        for old, new in pairs:
            if old and s.startswith(old, i):
                out.append(new)
                i += len(old)
                break
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _cutset(name: str, a: Any, b: Any) -> tuple[str, str]:
    return _str(name, 1, a), _str(name, 2, b)


@_builtin("trim", 2)
def trim(a: Any, b: Any) -> str:
    s, c = _cutset("trim", a, b)
    return s.strip(c)


@_builtin("trim_left", 2)
def trim_left(a: Any, b: Any) -> str:
    s, c = _cutset("trim_left", a, b)
    return s.lstrip(c)


@_builtin("trim_right", 2)
def trim_right(a: Any, b: Any) -> str:
    s, c = _cutset("trim_right", a, b)
    return s.rstrip(c)


@_builtin("trim_prefix", 2)
def trim_prefix(a: Any, b: Any) -> str:
    s, p = _cutset("trim_prefix", a, b)
    return s[len(p) :] if p and s.startswith(p) else s


@_builtin("trim_suffix", 2)
def trim_suffix(a: Any, b: Any) -> str:
    s, p = _cutset("trim_suffix", a, b)
    return s[: -len(p)] if p and s.endswith(p) else s


_GO_SPACE = " \t\n\v\f\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


@_builtin("trim_space", 1)
def trim_space(a: Any) -> str:
    return _str("trim_space", 1, a).strip(_GO_SPACE)


@_builtin("substring", 3)
def substring(a: Any, start: Any, length: Any) -> str:
    s = _str("substring", 1, a)
    i = _int("substring", 2, start)
    n = _int("substring", 3, length)
    if i < 0:
        raise BuiltinError("eval_builtin_error", "substring: negative offset")
    if i >= len(s):
        return ""
    if n < 0:
        return s[i:]
    return s[i : i + n]


@_builtin("indexof", 2)
def indexof(a: Any, b: Any) -> int:
    return _str("indexof", 1, a).find(_str("indexof", 2, b))


@_builtin("indexof_n", 2)
def indexof_n(a: Any, b: Any) -> list[int]:
    s, sub = _str("indexof_n", 1, a), _str("indexof_n", 2, b)
    out = []
    i = s.find(sub)
    while i >= 0:
        out.append(i)
        i = s.find(sub, i + 1)
    return out


@_builtin("strings.reverse", 1)
def reverse(a: Any) -> str:
    return _str("reverse", 1, a)[::-1]


@_builtin("strings.count", 2)
def strings_count(a: Any, b: Any) -> int:
    s, sub = _str("strings.count", 1, a), _str("strings.count", 2, b)
    if sub == "":
        return len(s) + 1
    return s.count(sub)


def _string_list(name: str, pos: int, v: Any) -> list[str]:
    t = type(v)
    if t is str:
        return [v]
    if t is list or t is Set:
        out = []
        for x in v:
            if type(x) is not str:
                raise BuiltinError(
                    "eval_type_error", f"{name}: operand {pos} must be array of strings but got {type_name(v)} containing {type_name(x)}"
                )
            out.append(x)
        return out
    raise _type_err(name, pos, "one of {string, set, array}", v)


@_builtin("strings.any_prefix_match", 2)
def any_prefix_match(a: Any, b: Any) -> bool:
    ss, ps = _string_list("strings.any_prefix_match", 1, a), _string_list("strings.any_prefix_match", 2, b)
    return any(s.startswith(p) for s in ss for p in ps)


@_builtin("strings.any_suffix_match", 2)
def any_suffix_match(a: Any, b: Any) -> bool:
    ss, ps = _string_list("strings.any_suffix_match", 1, a), _string_list("strings.any_suffix_match", 2, b)
    return any(s.endswith(p) for s in ss for p in ps)


@_builtin("format_int", 2)
def format_int(a: Any, b: Any) -> str:
    n = _num("format_int", 1, a)
    base = _num("format_int", 2, b)
    if base not in (2, 8, 10, 16):
        raise BuiltinError("eval_type_error", "format_int: operand 2 must be one of {2, 8, 10, 16}")
    i = int(n)  # truncates toward zero, as OPA's big.Float.Int
    digits = {2: "b", 8: "o", 10: "d", 16: "x"}[int(base)]
    return ("-" if i < 0 else "") + format(abs(i), digits)


@_builtin("to_number", 1)
def to_number(a: Any) -> Any:
    t = type(a)
    if a is None:
        return 0
    if t is bool:
        return 1 if a else 0
    if t is int or t is float:
        return a
    if t is str:
        text = a.strip()
        if text.lower().lstrip("+-") in ("inf", "infinity", "nan"):
            raise BuiltinError("eval_type_error", f"to_number: operand 1 must be a number string, got {json.dumps(a)}")
        if text != a or not text:
            raise BuiltinError("eval_builtin_error", f"strconv.ParseFloat: parsing {json.dumps(a)}: invalid syntax")
        try:
            return int(text, 10) if text.lstrip("+-").isdigit() and "_" not in text else normalize(float(text))
        except ValueError:
            raise BuiltinError("eval_builtin_error", f"strconv.ParseFloat: parsing {json.dumps(a)}: invalid syntax") from None
    raise _type_err("to_number", 1, "one of {null, boolean, number, string}", a)


# ------------------------------------------------------------------------------------------ sprintf


def _go_float_v(f: float) -> str:
    """Go's %v for a float64: shortest digits, exponent form below 1e-4 or from 1e21."""
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if math.isnan(f):
        return "NaN"
    return number_text(f)


def _fmt_arg(v: Any) -> Any:
    """An argument as OPA hands it to Go's fmt: a string as is, a number as int or float, else Rego text."""
    t = type(v)
    if t is str:
        return v
    if t is int:
        return v
    if t is float:
        return normalize(v)
    return json_text(v)


def _pad(text: str, width: int | None, left: bool, zero: bool) -> str:
    if width is None or len(text) >= width:
        return text
    if left:
        return text.ljust(width)
    if zero:
        sign = text[0] if text[:1] in "+-" else ""
        return sign + text[len(sign) :].rjust(width - len(sign), "0")
    return text.rjust(width)


def _go_quote(s: str) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _format_one(verb: str, flags: str, width: int | None, prec: int | None, v: Any) -> str:
    plus = "+" in flags
    if verb in "vs":
        if type(v) is str:
            text = v if prec is None else v[:prec]
        elif type(v) is int:
            text = ("+" if plus and v >= 0 else "") + str(v)
        elif type(v) is float:
            text = ("+" if plus and v >= 0 else "") + (_go_float_v(v) if prec is None else f"{v:.{prec}g}")
        else:
            text = str(v)
        return text
    if verb == "d":
        if type(v) is not int:
            return f"%!d({_go_type(v)}={_format_one('v', '', None, None, v)})"
        return ("+" if plus and v >= 0 else "") + str(v)
    if verb in "xX":
        if type(v) is int:
            text = format(abs(v), verb)
            return ("-" if v < 0 else "") + text
        if type(v) is str:
            return v.encode().hex() if verb == "x" else v.encode().hex().upper()
        return f"%!{verb}({_go_type(v)}={_format_one('v', '', None, None, v)})"
    if verb in "ob":
        if type(v) is int:
            return ("-" if v < 0 else "") + format(abs(v), verb)
        return f"%!{verb}({_go_type(v)}={_format_one('v', '', None, None, v)})"
    if verb in "feEgG":
        if type(v) in (int, float):
            p = 6 if prec is None else prec
            if verb in "gG" and prec is None:
                return _go_float_v(float(v))
            text = f"{float(v):.{p}{verb}}"
            if verb in "eE":  # Go writes at least two exponent digits, as Python does
                pass
            return ("+" if plus and v >= 0 else "") + text
        return f"%!{verb}({_go_type(v)}={_format_one('v', '', None, None, v)})"
    if verb == "q":
        if type(v) is str:
            return _go_quote(v)
        return f"%!q({_go_type(v)}={_format_one('v', '', None, None, v)})"
    if verb == "t":
        return f"%!t({_go_type(v)}={_format_one('v', '', None, None, v)})"
    if verb == "T":
        return _go_type(v)
    raise BuiltinError("eval_builtin_error", f"sprintf: unsupported verb %{verb}")


def _go_type(v: Any) -> str:
    if type(v) is int:
        return "int"
    if type(v) is float:
        return "float64"
    return "string"


@_builtin("sprintf", 2)
def sprintf(fmt: Any, args: Any) -> str:
    f = _str("sprintf", 1, fmt)
    values = [_fmt_arg(x) for x in _arr("sprintf", 2, args)]
    out: list[str] = []
    i = 0
    n = len(f)
    argi = 0
    while i < n:
        j = f.find("%", i)
        if j < 0:
            out.append(f[i:])
            break
        out.append(f[i:j])
        i = j + 1
        if i >= n:
            out.append("%!(NOVERB)")
            break
        flags = ""
        while i < n and f[i] in "+-# 0":
            flags += f[i]
            i += 1
        width = None
        start = i
        while i < n and f[i].isdigit():
            i += 1
        if i > start:
            width = int(f[start:i])
        prec = None
        if i < n and f[i] == ".":
            i += 1
            start = i
            while i < n and f[i].isdigit():
                i += 1
            prec = int(f[start:i] or "0")
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = f[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(values):
            out.append(f"%!{verb}(MISSING)")
            continue
        text = _format_one(verb, flags, width, prec, values[argi])
        argi += 1
        out.append(_pad(text, width, "-" in flags, "0" in flags and verb not in "sqvT"))
    if argi < len(values):
        extra = ", ".join(f"{_go_type(v)}={_format_one('v', '', None, None, v)}" for v in values[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


@_builtin("internal.template_string", 1)
def template_string(parts: Any) -> str:
    """A template string's value (passes.rewrite_template_strings): each part is a literal string or the set
    of a template expression's values: none renders `<undefined>`, one renders as `sprintf("%v")` would (a
    string as itself), more than one is a conflict, as in OPA."""
    out: list[str] = []
    for part in _arr("internal.template_string", 1, parts):
        if type(part) is str:
            out.append(part)
            continue
        if type(part) is not Set:
            raise _type_err("internal.template_string", 1, "an array of strings and sets", part)
        if len(part) > 1:
            raise EvalError("eval_conflict_error", "template-strings must not produce multiple outputs")
        if not part:
            out.append("<undefined>")
            continue
        (v,) = part
        out.append(v if type(v) is str else _format_one("v", "", None, None, _fmt_arg(v)))
    return "".join(out)


# ------------------------------------------------------------------------------------------ regex, glob


def _regex(name: str, pattern: str) -> Any:
    try:
        return compile_regex(pattern)
    except RegexError as exc:
        raise BuiltinError("eval_builtin_error", f"{name}: {exc}") from None


_MATCHES: dict[tuple[str, str], bool] = {}  # (pattern, text) -> result: RE2's Python binding costs ~5 µs a call


@_builtin("regex.match", 2)
def regex_match(p: Any, s: Any) -> bool:
    pattern, text = _str("regex.match", 1, p), _str("regex.match", 2, s)
    if len(text) > 256:
        return _regex("regex.match", pattern).search(text) is not None
    k = (pattern, text)
    hit = _MATCHES.get(k)
    if hit is None:
        hit = _regex("regex.match", pattern).search(text) is not None
        if len(_MATCHES) >= 4096:  # bounded: texts come from requests
            _MATCHES.clear()
        _MATCHES[k] = hit
    return hit


@_builtin("re_match", 2)
def re_match(p: Any, s: Any) -> bool:
    return regex_match(p, s)


@_builtin("regex.is_valid", 1)
def regex_is_valid(p: Any) -> bool:
    if type(p) is not str:
        return False
    try:
        compile_regex(p)
    except RegexError:
        return False
    return True


@_builtin("regex.split", 2)
def regex_split(p: Any, s: Any) -> list[str]:
    rx = _regex("regex.split", _str("regex.split", 1, p))
    text = _str("regex.split", 2, s)
    out: list[str] = []
    last = 0
    pos = 0
    while pos <= len(text):
        m = rx.search(text, pos)
        if m is None:
            break
        a, b = m.span()
        if b == a:
            if a >= len(text):
                break
            if a == 0:
                pos = a + 1
                continue
        out.append(text[last:a])
        last = b
        pos = b if b > a else b + 1
    out.append(text[last:])
    return out


@_builtin("regex.find_n", 3)
def regex_find_n(p: Any, s: Any, n: Any) -> list[str]:
    rx = _regex("regex.find_n", _str("regex.find_n", 1, p))
    return find_all(rx, _str("regex.find_n", 2, s), _int("regex.find_n", 3, n))


@_builtin("regex.replace", 3)
def regex_replace(s: Any, p: Any, r: Any) -> str:
    text = _str("regex.replace", 1, s)
    rx = _regex("regex.replace", _str("regex.replace", 2, p))
    repl = _str("regex.replace", 3, r)
    out: list[str] = []
    pos = 0
    last = 0
    prev_end = -1
    while pos <= len(text):
        m = rx.search(text, pos)
        if m is None:
            break
        a, b = m.span()
        if a == b and a == prev_end:
            pos = a + 1
            continue
        out.append(text[last:a])
        out.append(_expand(repl, m))
        last = b
        prev_end = b
        pos = b if b > a else b + 1
    out.append(text[last:])
    return "".join(out)


def _expand(template: str, m: Any) -> str:
    """Go's Regexp.Expand: `$1`, `${1}`, `${name}`, `$$`."""
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch != "$" or i + 1 >= len(template):
            out.append(ch)
            i += 1
            continue
        nxt = template[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
            continue
        if nxt == "{":
            end = template.find("}", i + 2)
            if end < 0:
                out.append(ch)
                i += 1
                continue
            name = template[i + 2 : end]
            i = end + 1
        else:
            j = i + 1
            while j < len(template) and (template[j].isalnum() or template[j] == "_"):
                j += 1
            name = template[i + 1 : j]
            if not name:
                out.append(ch)
                i += 1
                continue
            i = j
        try:
            g = m.group(int(name)) if name.isdigit() else m.group(name)
        except (IndexError, KeyError, ValueError):
            g = ""
        out.append(g or "")
    return "".join(out)


def _glob_regex(pattern: str, delimiters: list[str]) -> str:
    """gobwas/glob's syntax (`*`, `**`, `?`, `[...]`, `{a,b}`, `\\` escapes) as an RE2 pattern."""
    sep = "".join("\\" + d if d in "\\]^-" else d for d in delimiters)
    not_sep = f"[^{sep}]" if sep else "."
    out: list[str] = []
    i = 0
    depth = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= n:
                raise BuiltinError("eval_builtin_error", "glob.match: unexpected end of input")
            out.append(_re_escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                out.append("(?s:.*)")
                i += 2
            else:
                out.append(f"{not_sep}*" if sep else "(?s:.*)")
                i += 1
            continue
        if ch == "?":
            out.append(not_sep if sep else "(?s:.)")
            i += 1
            continue
        if ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise BuiltinError("eval_builtin_error", "glob.match: unexpected end of input")
            body = pattern[i + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end + 1
            continue
        if ch == "{":
            depth += 1
            out.append("(?:")
            i += 1
            continue
        if ch == "}" and depth:
            depth -= 1
            out.append(")")
            i += 1
            continue
        if ch == "," and depth:
            out.append("|")
            i += 1
            continue
        out.append(_re_escape(ch))
        i += 1
    if depth:
        raise BuiltinError("eval_builtin_error", "glob.match: unexpected end of input")
    return "^(?:" + "".join(out) + ")$"


def _re_escape(ch: str) -> str:
    return "\\" + ch if ch in ".^$*+?()[]{}|\\/" else ch


@_builtin("glob.match", 3)
def glob_match(p: Any, d: Any, s: Any) -> bool:
    pattern = _str("glob.match", 1, p)
    if d is None:
        delims = ["."]
    else:
        arr = _arr("glob.match", 2, d)
        delims = []
        for x in arr:
            if type(x) is not str:
                raise BuiltinError("eval_type_error", "glob.match: operand 2 must be array of strings")
            delims.append(x)
    return _regex("glob.match", _glob_regex(pattern, delims)).search(_str("glob.match", 3, s)) is not None


@_builtin("glob.quote_meta", 1)
def glob_quote_meta(p: Any) -> str:
    s = _str("glob.quote_meta", 1, p)
    return "".join("\\" + c if c in "*?\\[]{}" else c for c in s)


# ------------------------------------------------------------------------------------------ units


_UNITS = {
    "": 1,
    "k": 1000,
    "K": 1000,
    "m": 0.001,
    "M": 1000**2,
    "g": 1000**3,
    "G": 1000**3,
    "t": 1000**4,
    "T": 1000**4,
    "p": 1000**5,
    "P": 1000**5,
    "e": 1000**6,
    "E": 1000**6,
    "ki": 1024,
    "Ki": 1024,
    "mi": 1024**2,
    "Mi": 1024**2,
    "gi": 1024**3,
    "Gi": 1024**3,
    "ti": 1024**4,
    "Ti": 1024**4,
    "pi": 1024**5,
    "Pi": 1024**5,
    "ei": 1024**6,
    "Ei": 1024**6,
}


def _split_number(name: str, text: str) -> tuple[str, str]:
    i = 0
    while i < len(text) and (text[i].isdigit() or text[i] in ".+-eE"):
        if text[i] in "eE" and (i + 1 >= len(text) or not (text[i + 1].isdigit() or text[i + 1] in "+-")):
            break
        i += 1
    num, unit = text[:i], text[i:]
    if not num:
        raise BuiltinError("eval_builtin_error", f"{name}: no amount provided")
    return num, unit


def _parse_amount(name: str, num: str) -> int | float:
    try:
        return int(num) if num.lstrip("+-").isdigit() else float(num)
    except ValueError:
        raise BuiltinError("eval_builtin_error", f"{name}: could not parse amount to a number") from None


@_builtin("units.parse", 1)
def units_parse(a: Any) -> Any:
    s = _str("units.parse", 1, a).replace('"', "")
    if " " in s:
        raise BuiltinError("eval_builtin_error", "units.parse: spaces not allowed in resource strings")
    num, unit = _split_number("units.parse", s)
    if unit not in _UNITS or (unit and unit[0] in "kgtpe" and unit not in ("ki", "mi", "gi", "ti", "pi", "ei") and unit != "k"):
        if unit not in ("k",) and unit not in _UNITS:
            raise BuiltinError("eval_builtin_error", f"units.parse: unknown unit {unit}")
    x = _parse_amount("units.parse", num)
    mult = _UNITS[unit]
    if type(mult) is float:
        if type(x) is int:
            return normalize(x / 1000) if x % 1000 else x // 1000
        return normalize(x * mult)
    return normalize(x * mult)


@_builtin("units.parse_bytes", 1)
def units_parse_bytes(a: Any) -> Any:
    s = _str("units.parse_bytes", 1, a).replace('"', "")
    if " " in s:
        raise BuiltinError("eval_builtin_error", "units.parse_bytes: spaces not allowed in resource strings")
    num, unit = _split_number("units.parse_bytes", s)
    u = unit.lower()
    if u.endswith("b") and u not in ("b",):
        u = u[:-1]
    elif u == "b":
        u = ""
    table = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "t": 1000**4, "p": 1000**5, "e": 1000**6}
    table.update({"ki": 1024, "mi": 1024**2, "gi": 1024**3, "ti": 1024**4, "pi": 1024**5, "ei": 1024**6})
    if u not in table:
        raise BuiltinError("eval_builtin_error", f"units.parse_bytes: unknown unit {unit}")
    x = _parse_amount("units.parse_bytes", num)
    v = x * table[u]
    return int(v) if type(v) is int else int(math.floor(v))


# ------------------------------------------------------------------------------------------ objects, arrays, sets


@_builtin("object.get", 3)
def object_get(o: Any, k: Any, default: Any) -> Any:
    obj = _collection("object.get", 1, o, "object")
    if type(k) is list:
        cur: Any = obj
        for step in k:
            if type(cur) is dict:
                if type(step) not in (str, int, float) and step is not None:
                    return default
                if step not in cur or (type(step) is not str and _bool_key_clash(cur, step)):
                    return default
                cur = cur[step]
            elif type(cur) is list:
                if type(step) is int and 0 <= step < len(cur):
                    cur = cur[step]
                elif type(step) is float and step.is_integer() and 0 <= step < len(cur):
                    cur = cur[int(step)]
                else:
                    return default
            elif type(cur) is Set:
                if step in cur:
                    cur = step
                else:
                    return default
            else:
                return default
        return cur
    if type(k) is bool or type(k) in (dict, Set):
        return default
    if k in obj:
        return obj[k]
    return default


def _bool_key_clash(obj: dict[Any, Any], step: Any) -> bool:
    return type(step) is bool


@_builtin("object.keys", 1)
def object_keys(o: Any) -> Set:
    return Set(_obj("object.keys", 1, o).keys())


def _union(a: dict[Any, Any], b: dict[Any, Any]) -> dict[Any, Any]:
    out = dict(a)
    for k, v in b.items():
        if k in out and type(out[k]) is dict and type(v) is dict:
            out[k] = _union(out[k], v)
        else:
            out[k] = v
    return out


@_builtin("object.union", 2)
def object_union(a: Any, b: Any) -> dict[Any, Any]:
    return _union(_obj("object.union", 1, a), _obj("object.union", 2, b))


@_builtin("object.union_n", 1)
def object_union_n(a: Any) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for x in _arr("object.union_n", 1, a):
        out = _union(out, _obj("object.union_n", 1, x))
    return out


def _key_set(name: str, pos: int, v: Any) -> set[Any]:
    t = type(v)
    if t is list or t is Set:
        return {key(x) for x in v}
    if t is dict:
        return {key(x) for x in v.keys()}
    raise _type_err(name, pos, "one of {object, set, array}", v)


@_builtin("object.remove", 2)
def object_remove(o: Any, ks: Any) -> dict[Any, Any]:
    obj = _obj("object.remove", 1, o)
    drop = _key_set("object.remove", 2, ks)
    return {k: v for k, v in obj.items() if key(k) not in drop}


@_builtin("object.filter", 2)
def object_filter(o: Any, ks: Any) -> dict[Any, Any]:
    obj = _obj("object.filter", 1, o)
    keep = _key_set("object.filter", 2, ks)
    return {k: v for k, v in obj.items() if key(k) in keep}


def _subset(sup: Any, sub: Any) -> bool:
    if type(sup) is dict and type(sub) is dict:
        for k, v in sub.items():
            if k not in sup:
                return False
            if not _subset(sup[k], v):
                return False
        return True
    if type(sup) is Set and type(sub) is Set:
        return all(k in sup.m for k in sub.m)
    if type(sup) is list and type(sub) is list:
        if not sub:
            return True
        for i in range(len(sup) - len(sub) + 1):
            if all(equal(sup[i + j], sub[j]) for j in range(len(sub))):
                return True
        return False
    if type(sup) is list and type(sub) is Set:
        return all(any(equal(x, y) for y in sup) for x in sub)
    return equal(sup, sub)


@_builtin("object.subset", 2)
def object_subset(sup: Any, sub: Any) -> bool:
    ts, tb = type(sup), type(sub)
    if ts not in (dict, Set, list):
        raise _type_err("object.subset", 1, "one of {object, set, array}", sup)
    if tb not in (dict, Set, list):
        raise _type_err("object.subset", 2, "one of {object, set, array}", sub)
    if ts is dict and tb is not dict or ts is Set and tb is not Set:
        raise BuiltinError("eval_type_error", f"object.subset: both arguments must be objects, sets or arrays of the same kind, got {type_name(sup)} and {type_name(sub)}")
    return _subset(sup, sub)


@_builtin("array.concat", 2)
def array_concat(a: Any, b: Any) -> list[Any]:
    return _arr("array.concat", 1, a) + _arr("array.concat", 2, b)


@_builtin("array.slice", 3)
def array_slice(a: Any, i: Any, j: Any) -> list[Any]:
    arr = _arr("array.slice", 1, a)
    start, stop = _int("array.slice", 2, i), _int("array.slice", 3, j)
    start = max(start, 0)
    stop = min(stop, len(arr))
    if start >= stop:
        return []
    return arr[start:stop]


@_builtin("array.reverse", 1)
def array_reverse(a: Any) -> list[Any]:
    return _arr("array.reverse", 1, a)[::-1]


@_builtin("array.flatten", 1)
def array_flatten(a: Any) -> list[Any]:
    out: list[Any] = []

    for x in _arr("array.flatten", 1, a):  # one level, as OPA
        if type(x) is list:
            out.extend(x)
        else:
            out.append(x)
    return out


@_builtin("union", 1)
def union(a: Any) -> Set:
    out: dict[Any, Any] = {}
    for s in _set("union", 1, a):
        out.update(_set("union", 1, s).m)
    return Set.of_keys(out)


@_builtin("intersection", 1)
def intersection(a: Any) -> Set:
    sets = [_set("intersection", 1, s) for s in _set("intersection", 1, a)]
    if not sets:
        return Set()
    out = dict(sets[0].m)
    for s in sets[1:]:
        out = {k: v for k, v in out.items() if k in s.m}
    return Set.of_keys(out)


@_builtin("cast_set", 1)
def cast_set(a: Any) -> Set:
    return Set(_collection("cast_set", 1, a, "array, set"))


# ------------------------------------------------------------------------------------------ types


def _is(t: type | tuple[type, ...]) -> Callable[[Any], bool]:
    def check(v: Any) -> bool:
        return type(v) is t if isinstance(t, type) else type(v) in t

    return check


for _name, _t in (
    ("is_string", str),
    ("is_boolean", bool),
    ("is_array", list),
    ("is_object", dict),
    ("is_set", Set),
    ("is_number", (int, float)),
):
    BUILTINS[_name] = Builtin(_is(_t), 1)
BUILTINS["is_null"] = Builtin(lambda v: v is None, 1)
BUILTINS["type_name"] = Builtin(type_name, 1)


# ------------------------------------------------------------------------------------------ encodings


def _marshal(v: Any) -> str:
    return json.dumps(to_json(v), separators=(",", ":"), ensure_ascii=False, sort_keys=True)


@_builtin("json.marshal", 1)
def json_marshal(v: Any) -> str:
    return _marshal(v)


@_builtin("json.unmarshal", 1)
def json_unmarshal(s: Any) -> Any:
    try:
        return json.loads(_str("json.unmarshal", 1, s))
    except ValueError as exc:
        raise BuiltinError("eval_builtin_error", f"json.unmarshal: {exc}") from None


@_builtin("json.is_valid", 1)
def json_is_valid(s: Any) -> bool:
    if type(s) is not str:
        return False
    try:
        json.loads(s)
    except ValueError:
        return False
    return True


@_builtin("base64.encode", 1)
def base64_encode(s: Any) -> str:
    return base64.b64encode(_str("base64.encode", 1, s).encode()).decode()


def _b64decode(name: str, s: str, urlsafe: bool) -> str:
    try:
        raw = base64.urlsafe_b64decode(s) if urlsafe else base64.b64decode(s, validate=True)
        return raw.decode("utf-8", "replace")  # Go keeps the bytes; each invalid one counts as U+FFFD
    except (binascii.Error, ValueError) as exc:
        raise BuiltinError("eval_builtin_error", f"{name}: {exc}") from None


@_builtin("base64.decode", 1)
def base64_decode(s: Any) -> str:
    return _b64decode("base64.decode", _str("base64.decode", 1, s), False)


@_builtin("base64.is_valid", 1)
def base64_is_valid(s: Any) -> bool:
    try:
        base64.b64decode(_str("base64.is_valid", 1, s), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


@_builtin("base64url.encode", 1)
def base64url_encode(s: Any) -> str:
    return base64.urlsafe_b64encode(_str("base64url.encode", 1, s).encode()).decode()


@_builtin("base64url.encode_no_pad", 1)
def base64url_encode_no_pad(s: Any) -> str:
    return base64url_encode(s).rstrip("=")


@_builtin("base64url.decode", 1)
def base64url_decode(s: Any) -> str:
    text = _str("base64url.decode", 1, s)
    return _b64decode("base64url.decode", text + "=" * (-len(text) % 4), True)


@_builtin("hex.encode", 1)
def hex_encode(s: Any) -> str:
    return _str("hex.encode", 1, s).encode().hex()


@_builtin("hex.decode", 1)
def hex_decode(s: Any) -> str:
    text = _str("hex.decode", 1, s)
    try:
        return bytes.fromhex(text).decode("utf-8")
    except ValueError:
        bad = next((c for c in text if c not in "0123456789abcdefABCDEF"), "")
        raise BuiltinError("eval_builtin_error", f"hex.decode: encoding/hex: invalid byte: U+{ord(bad or ' '):04X} {bad!r}") from None


# ------------------------------------------------------------------------------------------ time


@_builtin("time.now_ns", 0, ctx=True)
def time_now_ns(ctx: Any) -> int:
    return int(ctx.now_ns())


# ------------------------------------------------------------------------------------------ bits


@_builtin("bits.and", 2)
def bits_and(a: Any, b: Any) -> int:
    return _int("bits.and", 1, a) & _int("bits.and", 2, b)


@_builtin("bits.or", 2)
def bits_or(a: Any, b: Any) -> int:
    return _int("bits.or", 1, a) | _int("bits.or", 2, b)


@_builtin("bits.xor", 2)
def bits_xor(a: Any, b: Any) -> int:
    return _int("bits.xor", 1, a) ^ _int("bits.xor", 2, b)


@_builtin("bits.negate", 1)
def bits_negate(a: Any) -> int:
    return ~_int("bits.negate", 1, a)


@_builtin("bits.lsh", 2)
def bits_lsh(a: Any, b: Any) -> int:
    n = _int("bits.lsh", 2, b)
    if n < 0:
        raise BuiltinError("eval_type_error", "bits.lsh: operand 2 must be unsigned integer number but got negative integer")
    return _int("bits.lsh", 1, a) << n


@_builtin("bits.rsh", 2)
def bits_rsh(a: Any, b: Any) -> int:
    n = _int("bits.rsh", 2, b)
    if n < 0:
        raise BuiltinError("eval_type_error", "bits.rsh: operand 2 must be unsigned integer number but got negative integer")
    return _int("bits.rsh", 1, a) >> n


# ------------------------------------------------------------------------------------------ misc


@_builtin("internal.member_2", 2)
def member_2(x: Any, coll: Any) -> bool:
    t = type(coll)
    if t is Set:
        return x in coll
    if t is list:
        return any(equal(x, y) for y in coll)
    if t is dict:
        return any(equal(x, y) for y in coll.values())
    return False


@_builtin("internal.member_3", 3)
def member_3(k: Any, x: Any, coll: Any) -> bool:
    t = type(coll)
    if t is list:
        if type(k) is bool or type(k) not in (int, float) or k != int(k) or not 0 <= k < len(coll):
            return False
        return equal(coll[int(k)], x)
    if t is dict:
        if type(k) in (dict, list, Set, bool) or k not in coll:
            return False
        return equal(coll[k], x)
    return False


def marshal_text(v: Any) -> str:
    """json.marshal's text of v (exported for the printer of results)."""
    return _marshal(v)


# ------------------------------------------------------------------------------------------ time


_NS = 1_000_000_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _ns_range(name: str, ns: int) -> int:
    if not _INT64_MIN <= ns <= _INT64_MAX:
        raise BuiltinError("eval_builtin_error", f"{name}: time outside of valid range")
    return ns


def _datetime(name: str, a: Any) -> Any:
    """A time (ns since the epoch, or [ns, timezone]) as an aware datetime."""
    import datetime as dt
    import zoneinfo

    tz: Any = dt.UTC
    if type(a) is list:
        if len(a) != 2:
            raise BuiltinError("eval_type_error", f"{name}: operand 1 must be a number or [number, string]")
        a, zone = a
        zone = _str(name, 1, zone)
        if zone and zone != "UTC":
            try:
                tz = dt.UTC if zone == "" else zoneinfo.ZoneInfo("Local" if zone == "Local" else zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise BuiltinError("eval_builtin_error", f"{name}: unknown time zone {zone}") from None
    ns = _int(name, 1, a)
    _ns_range(name, ns)
    secs, rem = divmod(ns, _NS)
    try:
        return dt.datetime.fromtimestamp(secs, tz).replace(microsecond=rem // 1000), rem
    except (OverflowError, OSError, ValueError):
        raise BuiltinError("eval_builtin_error", f"{name}: timestamp too big") from None


@_builtin("time.parse_rfc3339_ns", 1)
def time_parse_rfc3339_ns(a: Any) -> int:
    import datetime as dt
    import re

    s = _str("time.parse_rfc3339_ns", 1, a)
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", s)
    if not m:
        raise BuiltinError("eval_builtin_error", f"time.parse_rfc3339_ns: parsing time {json.dumps(s)} as RFC3339")
    y, mo, d, h, mi, se = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7) or ""
    nanos = int((frac[1:] + "000000000")[:9]) if frac else 0
    zone = m.group(8)
    offset = 0 if zone in ("Z", "z") else (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    try:
        base = dt.datetime(y, mo, d, h, mi, se, tzinfo=dt.UTC)
    except ValueError as exc:
        raise BuiltinError("eval_builtin_error", f"time.parse_rfc3339_ns: {exc}") from None
    secs = (base - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(seconds=1) - offset
    return _ns_range("time.parse_rfc3339_ns", secs * _NS + nanos)


_DURATION_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "μs": 1000, "ms": 10**6, "s": _NS, "m": 60 * _NS, "h": 3600 * _NS}


@_builtin("time.parse_duration_ns", 1)
def time_parse_duration_ns(a: Any) -> int:
    import re

    s = _str("time.parse_duration_ns", 1, a)
    text = s.lstrip("+-")
    sign = -1 if s.startswith("-") else 1
    if text == "0":
        return 0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise BuiltinError("eval_builtin_error", f"time.parse_duration_ns: time: invalid duration {json.dumps(s)}")
    total = 0
    for number, unit in parts:
        whole, _, frac = number.partition(".")
        mult = _DURATION_UNITS[unit]
        total += int(whole or "0") * mult
        if frac:
            total += int(frac) * mult // 10 ** len(frac)
    return sign * total


@_builtin("time.date", 1)
def time_date(a: Any) -> list[int]:
    d, _ = _datetime("time.date", a)
    return [d.year, d.month, d.day]


@_builtin("time.clock", 1)
def time_clock(a: Any) -> list[int]:
    d, _ = _datetime("time.clock", a)
    return [d.hour, d.minute, d.second]


@_builtin("time.weekday", 1)
def time_weekday(a: Any) -> str:
    d, _ = _datetime("time.weekday", a)
    return ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")[d.weekday()]


@_builtin("time.add_date", 4)
def time_add_date(a: Any, years: Any, months: Any, days: Any) -> int:
    import datetime as dt

    ns = _int("time.add_date", 1, a)
    secs, rem = divmod(ns, _NS)
    y, mo, dd = _int("time.add_date", 2, years), _int("time.add_date", 3, months), _int("time.add_date", 4, days)
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    try:
        base = epoch + dt.timedelta(seconds=secs)
        # Go's AddDate normalises month and day overflow (Oct 31 + 1 month is Dec 1)
        total_months = base.year * 12 + (base.month - 1) + y * 12 + mo
        year, month = divmod(total_months, 12)
        first = base.replace(year=year, month=month + 1, day=1)
        result = first + dt.timedelta(days=base.day - 1 + dd)
    except (OverflowError, ValueError):
        raise BuiltinError("eval_builtin_error", "time.add_date: time outside of valid range") from None
    out = ((result - epoch) // dt.timedelta(seconds=1)) * _NS + rem
    return _ns_range("time.add_date", out)


# ------------------------------------------------------------------------------------------ url, yaml


@_builtin("urlquery.encode", 1)
def urlquery_encode(a: Any) -> str:
    from urllib.parse import quote_plus

    return quote_plus(_str("urlquery.encode", 1, a))


@_builtin("urlquery.decode", 1)
def urlquery_decode(a: Any) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(_str("urlquery.decode", 1, a))


@_builtin("urlquery.encode_object", 1)
def urlquery_encode_object(a: Any) -> str:
    from urllib.parse import quote_plus

    obj = _obj("urlquery.encode_object", 1, a)
    pairs = []
    for k in sorted_values(obj.keys()):
        v = obj[k]
        values = sorted_values(v) if type(v) is Set else v if type(v) is list else [v]
        for x in values:
            if type(x) is not str:
                raise BuiltinError("eval_type_error", "urlquery.encode_object: values must be strings, arrays or sets of strings")
            pairs.append(f"{quote_plus(str(k))}={quote_plus(x)}")
    return "&".join(pairs)


@_builtin("urlquery.decode_object", 1)
def urlquery_decode_object(a: Any) -> dict[str, list[str]]:
    from urllib.parse import parse_qs

    return parse_qs(_str("urlquery.decode_object", 1, a), keep_blank_values=True)


def _yaml_value(v: Any) -> Any:
    t = type(v)
    if t is dict:
        return {(k if type(k) is str else json_text(k)): _yaml_value(x) for k, x in v.items()}
    if t is list:
        return [_yaml_value(x) for x in v]
    if v is None or t in (bool, int, float, str):
        return v
    if t is float:
        return v
    return str(v)


@_builtin("yaml.marshal", 1)
def yaml_marshal(v: Any) -> str:
    import yaml

    return yaml.safe_dump(to_json(v), default_flow_style=False, sort_keys=True)


@_builtin("yaml.unmarshal", 1)
def yaml_unmarshal(s: Any) -> Any:
    import yaml

    try:
        return _yaml_value(yaml.safe_load(_str("yaml.unmarshal", 1, s)))
    except yaml.YAMLError as exc:
        raise BuiltinError("eval_builtin_error", f"yaml.unmarshal: yaml: {exc}") from None


@_builtin("yaml.is_valid", 1)
def yaml_is_valid(s: Any) -> bool:
    import yaml

    if type(s) is not str:
        return False
    try:
        yaml.safe_load(s)
    except yaml.YAMLError:
        return False
    return True


# ------------------------------------------------------------------------------------------ relations


RELATIONS: dict[str, Callable[..., Any]] = {}  # built-ins that give several results (enumerated)


def _walk(v: Any, path: list[Any]) -> Any:
    yield [list(path), v]
    t = type(v)
    if t is dict:
        for k, x in v.items():
            yield from _walk(x, [*path, k])
    elif t is list:
        for i, x in enumerate(v):
            yield from _walk(x, [*path, i])
    elif t is Set:
        for x in sorted_values(v):
            yield from _walk(x, [*path, x])


def walk(v: Any) -> Any:
    return _walk(v, [])


RELATIONS["walk"] = walk
