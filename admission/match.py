"""Kyverno's match / exclude semantics for a rule and a request.

A block is `any` (one filter must match), `all` (every filter must match), or the legacy form with
`resources`, `subjects`, `roles` and `clusterRoles` at its top. Within one filter the attributes AND
together and each list attribute ORs its entries: kinds (`Kind`, `Version/Kind`, `Group/Version/Kind`,
`Kind/subresource`, wildcards), name/names, namespaces, operations, annotations and label selector
(wildcards allowed), namespaceSelector, and the user: subjects, roles, clusterRoles.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, TypeVar, overload

from admission.engines.yaml.values import contains_wildcard, wildcard_match
from admission.selectors import selector_matches

_VERSION = re.compile(r"^(v\d+((alpha|beta)\d+)?|\*)$")


_T = TypeVar("_T")


class _computed_once(Generic[_T]):
    """functools.cached_property without its lock (3.11 takes one on every first read, and a Subject is
    made for every request): the value is stored in the instance, which then answers by itself."""

    def __init__(self, fn: Callable[[Any], _T]) -> None:
        self.fn = fn
        self.name = fn.__name__
        self.__doc__ = fn.__doc__

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> _computed_once[_T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> _T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> _T | _computed_once[_T]:
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


@dataclass(frozen=True)
class Subject:
    """What a rule is matched against: the request's kind and object, and who sent it."""

    group: str
    version: str
    kind: str
    resource: Mapping[str, Any]  # the object (the old one for DELETE)
    operation: str = "CREATE"
    sub_resource: str = ""
    namespace: str = ""  # the request's namespace, used when the object does not carry one
    namespace_labels: Mapping[str, Any] = field(default_factory=dict)
    username: str = ""
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    cluster_roles: tuple[str, ...] = ()

    # Computed once per subject: every rule of a request is matched against the same subject.
    @_computed_once
    def has_user(self) -> bool:
        return bool(self.username or self.groups or self.roles or self.cluster_roles)

    @_computed_once
    def meta(self) -> Mapping[str, Any]:
        m = self.resource.get("metadata") if isinstance(self.resource, Mapping) else None
        return m if isinstance(m, Mapping) else {}

    @_computed_once
    def name(self) -> str:
        return str(self.meta.get("name") or self.meta.get("generateName") or "")

    @_computed_once
    def block_results(self) -> dict[tuple[str, bool], bool]:
        """What each match or exclude block (by content) gave for this subject: the rules of a policy
        library often share their blocks (kinds: [Pod], the same excluded namespaces)."""
        return {}

    @_computed_once
    def resource_namespace(self) -> str:
        if self.kind == "Namespace":
            return self.name
        return str(self.meta.get("namespace") or self.namespace or "")


@lru_cache(maxsize=1024)
def parse_kind_selector(selector: str) -> tuple[str, str, str, str]:
    """(group, version, kind, subresource) of a kind selector, `*` where unspecified (Kyverno's ParseKindSelector)."""
    parts = str(selector).split("/")
    parts = parts[:-1] + parts[-1].split(".")
    if len(parts) == 1:
        return "*", "*", parts[0], ""
    if len(parts) == 2:
        if parts[0] == "*" and parts[1] == "*":
            return "*", "*", "*", "*"
        if parts[0] == "*" and parts[1].lower() == parts[1]:
            return "*", "*", parts[0], parts[1]
        if _VERSION.match(parts[0]):
            return "*", parts[0], parts[1], ""
        return "*", "*", parts[0], parts[1]
    if len(parts) == 3:
        if _VERSION.match(parts[0]):
            return "*", parts[0], parts[1], parts[2]
        return parts[0], parts[1], parts[2], ""
    if len(parts) == 4:
        return parts[0], parts[1], parts[2], parts[3]
    return "", "", "", ""


def kind_matches(kinds: list[Any], s: Subject) -> bool:
    for k in kinds:
        group, version, kind, sub = parse_kind_selector(str(k))
        if wildcard_match(group, s.group) and wildcard_match(version, s.version) and wildcard_match(kind, s.kind):
            if wildcard_match(sub, s.sub_resource):
                return True
            # Kyverno matches Pod rules on the ephemeralcontainers subresource for backward compatibility.
            if (s.group, s.version, s.kind) == ("", "v1", "Pod") and s.sub_resource == "ephemeralcontainers":
                return True
    return False


def _expand_selector(selector: Mapping[str, Any], labels: Mapping[str, Any]) -> dict[str, Any]:
    """Kyverno allows wildcards in matchLabels: a wildcard key/value takes the first label it matches."""
    out = dict(selector)
    match_labels = selector.get("matchLabels") or {}
    expanded: dict[str, Any] = {}
    for k, v in match_labels.items():
        k, v = str(k), str(v)
        if any(c in k + v for c in "*?"):
            for k1, v1 in labels.items():
                if wildcard_match(k, str(k1)) and wildcard_match(v, str(v1)):
                    k, v = str(k1), str(v1)
                    break
            else:
                k = k.replace("*", "0").replace("?", "0")
                v = v.replace("*", "0").replace("?", "0")
        expanded[k] = v
    out["matchLabels"] = expanded
    return out


def _selects(selector: Any, labels: Mapping[str, Any]) -> bool:
    if not isinstance(selector, Mapping):
        return False
    try:
        return selector_matches(_expand_selector(selector, labels), labels)
    except ValueError:
        return False


def _annotations_match(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    for k, v in expected.items():
        if not any(wildcard_match(str(k), str(k1)) and wildcard_match(str(v), str(v1)) for k1, v1 in actual.items()):
            return False
    return True


def _subjects_match(subjects: list[Any], s: Subject) -> bool:
    for subj in subjects:
        if not isinstance(subj, Mapping):
            continue
        kind, name = subj.get("kind"), str(subj.get("name") or "")
        if kind == "ServiceAccount":
            if wildcard_match(f"system:serviceaccount:{subj.get('namespace') or ''}:{name}", s.username):
                return True
        elif kind == "Group":
            if any(wildcard_match(name, g) for g in s.groups):
                return True
        elif kind == "User":
            if wildcard_match(name, s.username):
                return True
    return False


def _resources_match(desc: Mapping[str, Any], s: Subject) -> bool:
    operations = desc.get("operations") or []
    if operations and s.operation not in [str(o) for o in operations]:
        return False
    kinds = desc.get("kinds") or []
    if kinds and not kind_matches(list(kinds), s):
        return False
    name = s.name
    if desc.get("name") and not wildcard_match(str(desc["name"]), name):
        return False
    names = desc.get("names") or []
    if names and not any(wildcard_match(str(n), name) for n in names):
        return False
    namespaces = desc.get("namespaces") or []
    if namespaces and not any(wildcard_match(str(n), s.resource_namespace) for n in namespaces):
        return False
    annotations = desc.get("annotations") or {}
    if annotations and not _annotations_match(annotations, s.meta.get("annotations") or {}):
        return False
    if desc.get("selector") is not None and not _selects(desc["selector"], s.meta.get("labels") or {}):
        return False
    if desc.get("namespaceSelector") is not None:
        if s.kind == "Namespace":
            return False
        if not _selects(desc["namespaceSelector"], s.namespace_labels or {}):
            return False
    return True


def _user_matches(f: Mapping[str, Any], s: Subject) -> bool:
    roles = [str(r) for r in f.get("roles") or []]
    if roles and not any(r in roles for r in s.roles):
        return False
    cluster_roles = [str(r) for r in f.get("clusterRoles") or []]
    if cluster_roles and not any(r in cluster_roles for r in s.cluster_roles):
        return False
    subjects = list(f.get("subjects") or [])
    return not (subjects and not _subjects_match(subjects, s))


def _has_user(f: Mapping[str, Any]) -> bool:
    return bool(f.get("roles") or f.get("clusterRoles") or f.get("subjects"))


def _filter_matches(f: Mapping[str, Any], s: Subject, *, in_match: bool) -> bool | None:
    """Whether one filter matches; None for an empty filter."""
    raw = f.get("resources")
    desc: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    check_user = _has_user(f) and (s.has_user or not in_match)  # Kyverno ignores user filters without request info
    if not any(v for v in desc.values()) and not _has_user(f):
        return None
    if not _resources_match(desc, s):
        return False
    return not (check_user and not _user_matches(f, s))


def _legacy(block: Mapping[str, Any]) -> dict[str, Any]:
    return {k: block[k] for k in ("resources", "subjects", "roles", "clusterRoles") if k in block}


def block_matches(block: Mapping[str, Any], s: Subject) -> bool:
    """Whether a match block selects the subject (an empty filter selects nothing)."""
    if block.get("any"):
        return any(_filter_matches(f, s, in_match=True) is True for f in block["any"] if isinstance(f, Mapping))
    if block.get("all"):
        return all(_filter_matches(f, s, in_match=True) is True for f in block["all"] if isinstance(f, Mapping))
    return _filter_matches(_legacy(block), s, in_match=True) is True


def block_excludes(block: Mapping[str, Any] | None, s: Subject) -> bool:
    """Whether an exclude block excludes the subject (an empty filter excludes nothing)."""
    if not block:
        return False
    if block.get("any"):
        return any(_filter_matches(f, s, in_match=False) is True for f in block["any"] if isinstance(f, Mapping))
    if block.get("all"):
        filters = [f for f in block["all"] if isinstance(f, Mapping)]
        return bool(filters) and all(_filter_matches(f, s, in_match=False) is True for f in filters)
    return _filter_matches(_legacy(block), s, in_match=False) is True


def block_kinds(block: Mapping[str, Any]) -> frozenset[str] | None:
    """The kinds a match block can select at all (the kind part of its kind selectors), or None when it
    may select any kind: a filter without kinds, a wildcard kind, or a block that cannot be read (then
    matching it reports the problem). Used to skip, before matching, rules that cannot apply."""
    try:
        if block.get("any"):
            filters = list(block["any"])
        elif block.get("all"):
            filters = list(block["all"])
        else:
            filters = [_legacy(block)]
        mappings = [f for f in filters if isinstance(f, Mapping)]  # matching ignores the others too
        if not mappings and not block.get("any"):
            return None  # `all` of no filters selects everything
        kinds: set[str] = set()
        for f in mappings:
            raw = f.get("resources")
            desc: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            selectors = desc.get("kinds") or []
            if not selectors:
                return None
            for selector in list(selectors):
                kind = parse_kind_selector(str(selector))[2]
                if "*" in kind or "?" in kind:
                    return None
                kinds.add(kind)
        return frozenset(kinds)
    except Exception:
        return None


def rule_applies(
    match: Mapping[str, Any], exclude: Mapping[str, Any] | None, s: Subject, *, policy_namespace: str = ""
) -> bool:
    """Match, then exclude, as Kyverno does; a namespaced Policy only sees its own namespace."""
    if not s.resource:
        return False
    if policy_namespace and policy_namespace != s.resource_namespace:
        return False
    return block_matches(match, s) and not block_excludes(exclude, s)


# -- compiled matching: a rule's match and exclude blocks read once, matched per request -------------


class _Patterns:
    """A list of wildcard patterns: does any match a value? Literal patterns are looked up in a set."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        self.any_value = "*" in patterns
        self.exact = frozenset(p for p in patterns if not contains_wildcard(p))
        self.wild = tuple(p for p in patterns if contains_wildcard(p))

    def match(self, value: str) -> bool:
        if self.any_value or value in self.exact:
            return True
        for p in self.wild:
            if wildcard_match(p, value):
                return True
        return False


class _Filter:
    """One filter of a block with its lists read in advance (same semantics as _filter_matches)."""

    def __init__(self, f: Mapping[str, Any]) -> None:
        raw = f.get("resources")
        desc: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        self.raw = f
        self.has_user = _has_user(f)
        self.empty = not any(v for v in desc.values()) and not self.has_user
        operations = desc.get("operations") or []
        self.operations = tuple(str(o) for o in operations) if operations else None
        kinds = desc.get("kinds") or []
        self.kinds = tuple(parse_kind_selector(str(k)) for k in list(kinds)) if kinds else None
        self.name = _Patterns((str(desc["name"]),)) if desc.get("name") else None
        names = desc.get("names") or []
        self.names = _Patterns(tuple(str(n) for n in names)) if names else None
        namespaces = desc.get("namespaces") or []
        self.namespaces = _Patterns(tuple(str(n) for n in namespaces)) if namespaces else None
        annotations = desc.get("annotations") or {}
        self.annotations = tuple((str(k), str(v)) for k, v in annotations.items()) if annotations else None
        self.selector = desc.get("selector")
        self.namespace_selector = desc.get("namespaceSelector")

    def _kind_matches(self, s: Subject) -> bool:
        for group, version, kind, sub in self.kinds or ():
            if wildcard_match(kind, s.kind) and wildcard_match(group, s.group) and wildcard_match(version, s.version):
                if wildcard_match(sub, s.sub_resource):
                    return True
                if (s.group, s.version, s.kind) == ("", "v1", "Pod") and s.sub_resource == "ephemeralcontainers":
                    return True
        return False

    def matches(self, s: Subject, *, in_match: bool) -> bool | None:
        if self.empty:
            return None
        if self.operations is not None and s.operation not in self.operations:
            return False
        if self.kinds is not None and not self._kind_matches(s):
            return False
        if self.name is not None and not self.name.match(s.name):
            return False
        if self.names is not None and not self.names.match(s.name):
            return False
        if self.namespaces is not None and not self.namespaces.match(s.resource_namespace):
            return False
        if self.annotations is not None:
            actual = s.meta.get("annotations") or {}
            for k, v in self.annotations:
                if not any(wildcard_match(k, str(k1)) and wildcard_match(v, str(v1)) for k1, v1 in actual.items()):
                    return False
        if self.selector is not None and not _selects(self.selector, s.meta.get("labels") or {}):
            return False
        if self.namespace_selector is not None:
            if s.kind == "Namespace":
                return False
            if not _selects(self.namespace_selector, s.namespace_labels or {}):
                return False
        check_user = self.has_user and (s.has_user or not in_match)
        return not (check_user and not _user_matches(self.raw, s))


class _Block:
    def __init__(self, block: Mapping[str, Any]) -> None:
        if block.get("any"):
            self.mode, filters = "any", block["any"]
        elif block.get("all"):
            self.mode, filters = "all", block["all"]
        else:
            self.mode, filters = "legacy", [_legacy(block)]
        self.filters = tuple(_Filter(f) for f in filters if isinstance(f, Mapping))
        # the block's content as text: blocks that read the same match a subject alike
        try:
            self.key: str | None = json.dumps([self.mode, [f.raw for f in self.filters]], sort_keys=True)
        except (TypeError, ValueError):
            self.key = None

    def shared_matches(self, s: Subject, *, in_match: bool) -> bool:
        """matches(), answered once per subject for all the blocks that read the same."""
        if self.key is None:
            return self.matches(s, in_match=in_match)
        key = (self.key, in_match)
        found = s.block_results.get(key)
        if found is None:
            found = s.block_results[key] = self.matches(s, in_match=in_match)
        return found

    def matches(self, s: Subject, *, in_match: bool) -> bool:
        if self.mode == "any":
            for f in self.filters:
                if f.matches(s, in_match=in_match) is True:
                    return True
            return False
        if self.mode == "all":
            if not in_match and not self.filters:
                return False
            for f in self.filters:
                if f.matches(s, in_match=in_match) is not True:
                    return False
            return True
        return self.filters[0].matches(s, in_match=in_match) is True


class RuleMatcher:
    """rule_applies for one rule's match and exclude blocks, read once (the blocks must not change
    afterwards). A block that cannot be read in advance is matched as written, so a malformed one fails
    at match time exactly as rule_applies does."""

    def __init__(self, match: Mapping[str, Any], exclude: Mapping[str, Any] | None) -> None:
        self._match_raw, self._exclude_raw = match, exclude
        self._compiled: tuple[_Block, _Block | None] | None
        try:
            self._compiled = (_Block(match), _Block(exclude) if exclude else None)
        except Exception:
            self._compiled = None

    def applies(self, s: Subject, *, policy_namespace: str = "") -> bool:
        if self._compiled is None:
            return rule_applies(self._match_raw, self._exclude_raw, s, policy_namespace=policy_namespace)
        if not s.resource:
            return False
        if policy_namespace and policy_namespace != s.resource_namespace:
            return False
        match, exclude = self._compiled
        if not match.shared_matches(s, in_match=True):
            return False
        return exclude is None or not exclude.shared_matches(s, in_match=False)
