"""A configuration tree with provenance: plain data plus, for every key path, where it came from.

A *key path* is a tuple of mapping keys (``str``) and list indices (``int``); its display form is
dotted (``hpo.search_space.lr.values[0]``). ``Source`` says where a value was written: a file and
line, an override string, or a stage block of an experiment file.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["KeyPath", "Source", "Tree", "format_key", "freeze", "get_path", "parse_key", "thaw"]

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Source:
    """Where a configuration value came from.

    Attributes:
        file: The file it was written in (``None`` for a command-line override).
        line: 1-based line in ``file``.
        origin: ``"file"``, ``"override"``, ``"stage"``, ``"argument"`` or ``"default"``.
        detail: The override text, or the stage name (and its override).
        note: How the value was derived, for an interpolation (``via ${model.backbone}``).
    """

    file: str | None = None
    line: int | None = None
    origin: str = "file"
    detail: str | None = None
    note: str | None = None

    def location(self) -> str:
        """``file:line`` (or just ``file``), or an empty string when there is no file."""
        if self.file is None:
            return ""
        return self.file if self.line is None else f"{self.file}:{self.line}"

    def __str__(self) -> str:
        where = self.location()
        extras: list[str] = []
        if self.origin == "file":
            head = where or "<unknown>"
        else:
            if self.origin == "override":
                head = f"override '{self.detail}'"
            elif self.origin == "stage":
                head = f"stage '{self.detail}'"
            else:
                head = f"{self.origin} {self.detail}" if self.detail else self.origin
            if where:
                extras.append(where)
        if self.note:
            extras.append(self.note)
        return f"{head} ({'; '.join(extras)})" if extras else head

    def with_note(self, note: str) -> Source:
        """A copy of this source with ``note`` added to its notes."""
        joined = f"{self.note}; {note}" if self.note else note
        return Source(self.file, self.line, self.origin, self.detail, joined)


def format_key(path: KeyPath) -> str:
    """Dotted display form of a key path: ``("a", "b", 0, "c")`` → ``a.b[0].c``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out = f"{out}.{part}" if out else part
    return out or "<root>"


def parse_key(text: str) -> KeyPath:
    """Parse a dotted key (``a.b.0.c`` or ``a.b[0].c``) into a key path.

    Raises:
        ValueError: an empty segment or a malformed index.
    """
    parts: list[str | int] = []
    for raw in text.replace("[", ".").replace("]", "").split("."):
        if not raw:
            raise ValueError(f"malformed key {text!r}: empty segment")
        parts.append(int(raw) if raw.isdigit() else raw)
    return tuple(parts)


def get_path(data: Any, path: KeyPath) -> Any:
    """The value at ``path`` inside nested mappings and sequences.

    Raises:
        KeyError: some part of ``path`` does not exist.
    """
    node = data
    for part in path:
        if isinstance(node, Mapping):
            if part not in node:
                raise KeyError(path)
        elif not (isinstance(node, (list, tuple)) and isinstance(part, int) and part < len(node)):
            raise KeyError(path)
        node = node[part]
    return node


def freeze(value: Any) -> Any:
    """A read-only deep view: mappings become ``MappingProxyType``, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """A mutable deep copy of a frozen or plain value: mappings become dicts, sequences lists."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


def _has_prefix(path: KeyPath, prefix: KeyPath) -> bool:
    return path[: len(prefix)] == prefix


@dataclass
class Tree:
    """Mutable working tree used while composing: ``data`` plus ``sources`` for every key path.

    ``sources`` holds an entry for every mapping key and list item (containers and leaves), so an
    error about a whole section can still name the line where the section starts.
    """

    data: Any
    sources: dict[KeyPath, Source] = field(default_factory=dict)

    def copy(self) -> Tree:
        """A deep copy (the tree owns its data)."""
        return Tree(copy.deepcopy(self.data), dict(self.sources))

    def source_of(self, path: KeyPath) -> Source | None:
        """The source of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.sources.get(path[:end])
            if found is not None:
                return found
        return None

    def subtree_sources(self, prefix: KeyPath) -> dict[KeyPath, Source]:
        """Sources at and below ``prefix``, re-rooted so ``prefix`` becomes ``()``."""
        n = len(prefix)
        return {p[n:]: s for p, s in self.sources.items() if _has_prefix(p, prefix)}

    def drop_sources(self, prefix: KeyPath) -> None:
        """Forget the sources at and below ``prefix``."""
        for p in [p for p in self.sources if _has_prefix(p, prefix)]:
            del self.sources[p]

    def graft_sources(self, prefix: KeyPath, sources: Mapping[KeyPath, Source]) -> None:
        """Add ``sources`` (rooted at ``()``) below ``prefix``."""
        for p, s in sources.items():
            self.sources[prefix + p] = s

    def leaves(self) -> Iterator[tuple[KeyPath, Any]]:
        """Every leaf (scalar, or empty mapping/list) with its key path, in document order."""
        yield from _walk_leaves(self.data, ())


def _walk_leaves(value: Any, path: KeyPath) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            yield from _walk_leaves(v, (*path, k))
    elif isinstance(value, (list, tuple)) and value:
        for i, v in enumerate(value):
            yield from _walk_leaves(v, (*path, i))
    else:
        yield path, value
