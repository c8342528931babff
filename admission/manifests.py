"""Read YAML and JSON manifests from files, folders and stdin, keeping each document's file and line."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

try:  # libyaml's C loader is several times faster; fall back to the pure-Python one where it is absent
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]


class SafeLoader(_BaseLoader):
    """The safe loader without YAML's timestamp type: Kubernetes reads `2024-01-01` as a string, and
    so must we (policies compare it as text, and every object must stay JSON)."""


SafeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}

YAML_SUFFIXES = (".yaml", ".yml", ".json")


class ManifestError(Exception):
    """A file that cannot be read or parsed; the message names the file and line."""

    def __init__(self, file: str, line: int, message: str) -> None:
        super().__init__(f"{file}:{line}: {message}")
        self.file = file
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Document:
    """One object from a manifest file. `line` is 1-based; `index` counts documents within the file."""

    obj: Any
    file: str
    line: int
    index: int = 0


def find_files(path: Path, suffixes: tuple[str, ...] = YAML_SUFFIXES) -> list[Path]:
    """The files under a folder with one of the suffixes, sorted; a file is returned as itself."""
    if path.is_dir():
        return sorted(
            p for p in path.rglob("*")
            if p.is_file() and p.suffix in suffixes and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
    return [path]


def load_text(text: str, file: str) -> list[Document]:
    """Every document in a YAML stream, with `List` kinds flattened into their items."""
    loader = SafeLoader(text)
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            line = node.start_mark.line + 1
            data = _construct(loader, node)
            if data is None:
                continue
            if isinstance(data, dict) and data.get("kind") == "List" and isinstance(data.get("items"), list):
                lines = _item_lines(node)
                for i, item in enumerate(data["items"]):
                    docs.append(Document(item, file, lines[i] if i < len(lines) else line, len(docs)))
            else:
                docs.append(Document(data, file, line, len(docs)))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise ManifestError(file, line, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(file, 1, f"invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return docs


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"


def _construct(loader: Any, node: yaml.Node) -> Any:
    """The document's data, as SafeConstructor would build it, several times faster: plain maps, lists
    and strings are built directly (aliases shared, as PyYAML does); any other tag, a merge key (`<<`) or
    a non-scalar key hands the document to PyYAML's constructor."""
    built: dict[int, Any] = {}
    constructors = loader.yaml_constructors

    def build(n: yaml.Node) -> Any:
        key = id(n)
        if key in built:
            return built[key]
        if isinstance(n, yaml.ScalarNode):
            value = n.value if n.tag == _STR else constructors[n.tag](loader, n)
            built[key] = value
            return value
        if isinstance(n, yaml.MappingNode) and n.tag == _MAP:
            mapping: dict[Any, Any] = {}
            built[key] = mapping
            for k, v in n.value:
                if not isinstance(k, yaml.ScalarNode) or k.tag not in (_STR, "tag:yaml.org,2002:int",
                                                                        "tag:yaml.org,2002:bool",
                                                                        "tag:yaml.org,2002:null",
                                                                        "tag:yaml.org,2002:float"):
                    raise _Fallback
                mapping[build(k)] = build(v)
            return mapping
        if isinstance(n, yaml.SequenceNode) and n.tag == _SEQ:
            items: list[Any] = []
            built[key] = items
            items.extend(build(item) for item in n.value)
            return items
        raise _Fallback

    try:
        return build(node)
    except (_Fallback, KeyError):
        return loader.construct_document(node)


class _Fallback(Exception):
    """A node the fast path leaves to PyYAML's constructor."""


def _item_lines(node: yaml.Node) -> list[int]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, "value", None) == "items" and isinstance(value, yaml.SequenceNode):
                return [item.start_mark.line + 1 for item in value.value]
    return []


def load_file(path: Path) -> list[Document]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(str(path), 1, f"cannot read: {exc}") from None
    return load_text(text, str(path))


def load_paths(paths: Iterable[str | Path], suffixes: tuple[str, ...] = YAML_SUFFIXES) -> Iterator[Document]:
    """Documents from files, folders (recursively) and `-` for standard input."""
    for p in paths:
        if str(p) == "-":
            yield from load_text(sys.stdin.read(), "<stdin>")
            continue
        path = Path(p)
        if not path.exists():
            raise ManifestError(str(path), 0, "no such file or folder")
        for f in find_files(path, suffixes):
            yield from load_file(f)


class Locator:
    """Where a field of a loaded document is in its source: the line and column of its key (`image:`)
    or list item. Only the document asked about is composed again, when a location is asked for, so
    loading stays as lean as it is; `texts` holds sources that cannot be read again (stdin)."""

    def __init__(self, texts: dict[str, str] | None = None) -> None:
        self.texts = dict(texts or {})
        self._lines: dict[str, list[str]] = {}
        self._nodes: dict[tuple[str, int], _Shifted | None] = {}

    def _source(self, file: str) -> list[str]:
        if file not in self._lines:
            text = self.texts.get(file)
            if text is None:
                try:
                    text = Path(file).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    text = ""
            self._lines[file] = text.splitlines(keepends=True)
        return self._lines[file]

    def _document(self, file: str, line: int) -> _Shifted | None:
        """The node of the document (or List item) whose first line is `line`: the text from there to the
        next document marker, composed on its own (its marks are then shifted back to the file's lines)."""
        key = (file, line)
        if key not in self._nodes:
            lines = self._source(file)
            end = line - 1
            while end < len(lines) and not (end > line - 1 and lines[end].startswith(("---", "..."))):
                end += 1
            try:
                node = yaml.compose("".join(lines[line - 1:end]), Loader=SafeLoader) if line >= 1 else None
            except yaml.YAMLError:
                node = None  # a List item's slice need not parse alone: look in the whole List below
            if isinstance(node, yaml.MappingNode):
                self._nodes[key] = _Shifted(node, line - 1)
            else:
                self._nodes[key] = self._in_list(lines, line)
        return self._nodes[key]

    def _in_list(self, lines: list[str], line: int) -> _Shifted | None:
        """The item starting at `line` of the List document around it."""
        start = line - 1
        while start > 0 and not lines[start].startswith("---"):
            start -= 1
        end = line
        while end < len(lines) and not lines[end].startswith(("---", "...")):
            end += 1
        try:
            node = yaml.compose("".join(lines[start:end]), Loader=SafeLoader)
        except yaml.YAMLError:
            return None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if getattr(k, "value", None) == "items" and isinstance(v, yaml.SequenceNode):
                    for item in v.value:
                        if item.start_mark.line + start + 1 == line:
                            return _Shifted(item, start)
        return None

    def locate(self, file: str, line: int, pointer: str) -> tuple[int, int] | None:
        """(line, column), both 1-based, of the field at the JSON pointer in the document starting at
        `line`; of its nearest ancestor present in the source when the field itself is not (a field the
        rule wanted, or one a mutation added). None when the document cannot be found."""
        found = self._document(file, line)
        if found is None:
            return None
        node, offset = found.node, found.offset
        mark = node.start_mark
        for raw in pointer.split("/")[1:] if pointer else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, yaml.MappingNode):
                pair = next(((k, v) for k, v in node.value if str(getattr(k, "value", "")) == part), None)
                if pair is None:
                    break
                mark, node = pair[0].start_mark, pair[1]
            elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
                node = node.value[int(part)]
                mark = node.start_mark
            else:
                break
        return mark.line + offset + 1, mark.column + 1


@dataclass(frozen=True)
class _Shifted:
    """A node composed from a slice of its file, and the line the slice starts at."""

    node: yaml.Node
    offset: int
