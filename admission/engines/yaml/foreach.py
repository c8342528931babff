"""`foreach` in validate and mutate rules, as Kyverno runs them.

Each entry's `list` is a JMESPath expression; every non-null element is bound to `element` and
`elementIndex` (and `element<N>` / `elementIndex<N>` at nesting depth N), then the entry's context,
preconditions and body run for it. An element that is a mapping is the resource a pattern is matched
against (`elementScope` overrides). Validation stops at the first element that fails; a foreach in which
no element was checked does not apply (None).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from admission.patch import copy_document
from admission.results import Status
from admission.types import Object

if TYPE_CHECKING:
    from admission.engines import Context
    from admission.engines.yaml.evaluator import Outcome
    from admission.engines.yaml.policy import Rule


def elements_of(expr: str, variables: Any) -> list[Any]:
    """The list a foreach iterates: a non-list value is a one-element list (Kyverno's EvaluateList)."""
    value = variables.query(expr.strip().removeprefix("{{").removesuffix("}}").strip())
    if isinstance(value, list):
        return value
    return [value]


def bind(variables: Any, element: Any, index: int, nesting: int) -> Any:
    return variables.child(**{
        "element": element,
        "elementIndex": index,
        f"element{nesting}": element,
        f"elementIndex{nesting}": index,
    })


def validate_foreach(
    rule: Rule,
    entries: list[Any],
    variables: Any,
    obj: Object | None,
    element: Any,
    nesting: int,
    ctx: Context,
) -> Outcome | None:
    from admission.engines.yaml.evaluator import Outcome

    applied = 0
    list_error: Exception | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        try:
            elements = elements_of(str(entry.get("list") or ""), variables)
        except Exception as exc:
            if "not found" in str(exc).lower() or "unknown key" in str(exc).lower():
                continue
            list_error = exc
            continue
        outcome, count = _validate_elements(rule, entry, elements, variables, obj, element, nesting, ctx)
        if outcome.status != Status.PASS:
            return outcome
        applied += count
    if applied == 0:
        if list_error is not None:
            return Outcome(Status.ERROR, f"failed to evaluate list: {list_error}")
        return None
    return Outcome(Status.PASS, "rule passed")


def _validate_elements(
    rule: Rule,
    entry: dict[str, Any],
    elements: list[Any],
    variables: Any,
    obj: Object | None,
    outer: Any,
    nesting: int,
    ctx: Context,
) -> tuple[Outcome, int]:
    from admission.engines.yaml.evaluator import Outcome, validate_body

    applied = 0
    scope = entry.get("elementScope")
    body = dict(entry)
    if body.get("foreach") is None and body.get("deny") is None and body.get("pattern") is None \
            and body.get("anyPattern") is None:
        body["foreach"] = []  # an entry with nothing to check: counts no element
    for index, element in enumerate(elements):
        ctx.check()  # past the deadline: DeadlineExceeded, the rule's error result
        if element is None:
            continue
        scoped = isinstance(element, dict)
        if scope is not None:
            if scope is True and not scoped:
                return Outcome(Status.ERROR, "failed to process foreach: cannot use elementScope=true foreach rules "
                                             f"for elements that are not maps, got {type(element).__name__}"), applied
            scoped = bool(scope)
        child = bind(variables, element, index, nesting)
        target = element if scoped else outer
        result = validate_body(rule, body, child, obj, target, nesting + 1, ctx)
        if result is None or result.status == Status.SKIP:
            continue
        if result.status == Status.ERROR and "failed to evaluate preconditions" in result.message:
            continue
        if result.status != Status.PASS:
            return Outcome(result.status, f"validation failure: {result.message}"), applied
        applied += 1
    return Outcome(Status.PASS, ""), applied


def mutate_foreach(entries: list[Any], variables: Any, obj: Object, nesting: int, ctx: Context,
                   *, owned: bool = False) -> Outcome:
    """Apply each foreach entry's patch per element; pass when something changed, skip when nothing did.

    Linear in the document: each entry's elements patch one working copy of obj, changed in place
    (owned: obj already is the caller's working copy, as in a nested foreach, and is changed in place;
    otherwise obj is never changed)."""
    from admission.engines.yaml.evaluator import Outcome

    current = obj
    applied = 0
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        try:
            elements = elements_of(str(entry.get("list") or ""), variables)
        except Exception as exc:
            return Outcome(Status.ERROR, f"failed to evaluate list {entry.get('list')}: {exc}")
        outcome = _mutate_elements(entry, elements, variables, current, nesting, ctx, owned=owned)
        if outcome.status == Status.ERROR:
            return Outcome(Status.ERROR, f"failed to mutate elements: {outcome.message}")
        if outcome.status != Status.SKIP:
            applied += 1
            if outcome.status == Status.PASS and outcome.obj is not None:
                current = outcome.obj
    if applied == 0:
        return Outcome(Status.SKIP, "0 elements processed", current)
    return Outcome(Status.PASS, f"{applied} elements processed", current)


def _mutate_elements(
    entry: dict[str, Any], elements: list[Any], variables: Any, obj: Object, nesting: int, ctx: Context,
    *, owned: bool
) -> Outcome:
    """One entry over its elements. A strategic merge gives a new object per element (it never changes its
    input); JSON patches and nested foreach entries change one working copy in place: obj itself when
    owned, else a copy made on first need. Whether the entry changed anything is decided once, at the
    top level, by comparing the result with obj (a nested entry's caller does not ask: it has the working
    copy either way), so the cost stays linear in the document."""
    from admission.engines.yaml.evaluator import Outcome, _conditions, _load_context
    from admission.engines.yaml.mutate import mutate_resource

    reverse = entry.get("patchStrategicMerge") is not None
    order = entry.get("order")
    if order is not None:
        reverse = str(order) == "Descending"
    indexed = list(enumerate(elements))
    if reverse:
        indexed.reverse()
    in_place = entry.get("foreach") or entry.get("patchStrategicMerge") is None
    patched = obj
    mine = owned  # patched is a working copy this entry (or its caller) may change in place
    touched = False
    for index, element in indexed:
        ctx.check()  # past the deadline: DeadlineExceeded, the rule's error result
        if element is None:
            continue
        child = bind(variables, element, index, nesting)
        try:
            _load_context(list(entry.get("context") or []), child, ctx)
        except Exception as exc:
            return Outcome(Status.ERROR, f"failed to load mutate.foreach[{index}].context: {exc}")
        try:
            passed, _ = _conditions(entry.get("preconditions"), child)
        except Exception as exc:
            return Outcome(Status.ERROR, f"failed to evaluate mutate.foreach[{index}].preconditions: {exc}")
        if not passed:
            continue
        if in_place and not mine:
            patched = copy_document(patched)
            mine = True
        if entry.get("foreach"):
            result = mutate_foreach(list(entry["foreach"]), child, patched, nesting + 1, ctx, owned=True)
        else:
            result = mutate_resource(entry, child, patched, in_place=mine)
        if result.status in (Status.FAIL, Status.ERROR):
            return result
        if result.status == Status.PASS and result.obj is not None:
            touched = True
            # a strategic merge's result is new where it differs and shares the rest with its input, so
            # it is a working copy exactly when its input was one
            patched = result.obj
    if not touched:
        return Outcome(Status.SKIP, "no patches applied", obj)
    if owned or patched != obj:  # owned: obj was changed in place; the top level compares
        return Outcome(Status.PASS, "", patched)
    return Outcome(Status.SKIP, "no patches applied", patched)
