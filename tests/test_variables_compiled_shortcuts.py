"""The compiled shortcuts (string-literal equality, the standard length()) answer as the jmespath
library's own search does, for every kind of value on the other side."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest
from jmespath import Options

from admission.engines.yaml.functions import FUNCTIONS
from admission.engines.yaml.variables import _NotFound, compiled

DATA: dict[str, Any] = {
    "s": "x", "empty": "", "zero": 0, "one": 1, "f": False, "t": True, "n": None, "fl": 1.0,
    "list": ["x", 0], "map": {"x": 1, "y": 2}, "strs": ["0", "1", "true", "false", "", "x"],
    "items": [{"tag": "latest"}, {"tag": "1"}, {"tag": None}, {"digest": "d"}, {}, {"tag": 0}, {"tag": True}],
}

EXPRESSIONS = [
    *(f"{field} == '{text}'" for field in DATA if field != "items" for text in ("x", "", "0", "1", "true", "false")),
    *(f"'{text}' != {field}" for field in DATA if field != "items" for text in ("x", "", "0", "true")),
    "missing == 'x'", "missing != 'x'", "missing.deep == ''", "'x' == 'x'", "'x' != 'y'",
    "items[?tag == 'latest']", "items[?'1' == tag]", "items[?tag != 'latest'].tag", "items[?!(tag == '')]",
    "strs[?@ == 'true']", "length(items[?tag == 'latest'])",
    *(f"length({field})" for field in DATA), "length(missing)", "length(items[0])", "length(`\"abc\"`)",
    "length(items[*].tag)", "length(map.x)",
]


def _outcome(fn: Any) -> Any:
    try:
        value = fn()
        return ("value", type(value).__name__, value)
    except _NotFound as exc:
        return ("not found", exc.key)
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_shortcuts_agree_with_the_library(expr: str) -> None:
    ours = _outcome(lambda: compiled(expr)(DATA))
    library = _outcome(lambda: jmespath.search(expr, DATA, Options(custom_functions=FUNCTIONS)))
    if ours[0] == "not found":  # Kyverno's missing key; the library's null
        assert library == ("value", "NoneType", None)
    elif library[0] == "error":
        assert ours[0] == "error"
    else:
        assert ours == library
