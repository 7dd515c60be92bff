"""Safe YAML reading with provenance and hard limits.

mlinfra reads YAML as plain data only. Documents are *composed* into a node graph with PyYAML's
safe composer (which never constructs objects) and then built by this module, which:

* records the file and line of every key and list item (provenance);
* refuses tags that would construct objects (``!!python/object``, ``!!binary``, custom tags);
* refuses a key repeated inside one mapping, naming both lines;
* keeps dates and timestamps as the text written (they are not JSON types);
* bounds work: a size limit checked before reading, a node budget that stops alias bombs
  (``&a [*b, *b, ...]``) in linear time, and a nesting-depth limit.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlinfra.config.tree import KeyPath, Source, Tree
from mlinfra.core.names import text_problem
from mlinfra.errors import ConfigError

__all__ = ["YamlLimits", "load_yaml_file", "load_yaml_text"]

_SAFE_SCALAR_TAGS = {
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class YamlLimits:
    """Bounds on what one YAML document may cost to read.

    Attributes:
        max_bytes: Largest file accepted (checked with ``stat`` before reading).
        max_nodes: Most nodes built, counting every expansion of an alias.
        max_depth: Deepest nesting of mappings and lists.
    """

    max_bytes: int = 5 * 1024 * 1024
    max_nodes: int = 200_000
    max_depth: int = 64


DEFAULT_LIMITS = YamlLimits()

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Builder:
    def __init__(self, file: str | None, limits: YamlLimits) -> None:
        self.file = file
        self.limits = limits
        self.nodes = 0
        self.sources: dict[KeyPath, Source] = {}
        self._scalar_loader = yaml.SafeLoader("")

    def _error(self, node: yaml.Node, reason: str, path: KeyPath) -> ConfigError:
        from mlinfra.config.tree import format_key

        return ConfigError(
            reason,
            file=self.file,
            line=node.start_mark.line + 1,
            key=format_key(path) if path else None,
        )

    def _count(self, node: yaml.Node, path: KeyPath, depth: int) -> None:
        self.nodes += 1
        if self.nodes > self.limits.max_nodes:
            raise self._error(
                node,
                f"document expands to more than {self.limits.max_nodes} nodes (an alias bomb, or "
                "a file far larger than a configuration); it was not read",
                path,
            )
        if depth > self.limits.max_depth:
            raise self._error(
                node, f"nesting deeper than {self.limits.max_depth} levels; it was not read", path
            )

    def build(self, node: yaml.Node, path: KeyPath, depth: int) -> Any:
        self._count(node, path, depth)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                raise self._tag_error(node, path)
            out_list = []
            for i, item in enumerate(node.value):
                item_path = (*path, i)
                self.sources[item_path] = Source(self.file, item.start_mark.line + 1)
                out_list.append(self.build(item, item_path, depth + 1))
            return out_list
        if isinstance(node, yaml.MappingNode):
            if node.tag != _MAP_TAG:
                raise self._tag_error(node, path)
            return self._mapping(node, path, depth)
        raise self._error(node, f"unsupported YAML node {type(node).__name__}", path)

    def _tag_error(self, node: yaml.Node, path: KeyPath) -> ConfigError:
        tag = node.tag.replace("tag:yaml.org,2002:", "!!")
        return self._error(
            node,
            f"YAML tag '{tag}' is not allowed: configuration files hold plain data only "
            "(strings, numbers, booleans, null, lists and mappings); remove the tag",
            path,
        )

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        if node.tag not in _SAFE_SCALAR_TAGS:
            raise self._tag_error(node, path)
        if node.tag == "tag:yaml.org,2002:timestamp":
            return node.value
        try:
            value = self._scalar_loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            raise self._error(node, f"invalid scalar {node.value!r}: {exc}", path) from exc
        if isinstance(value, (_dt.date, _dt.datetime)):
            return node.value
        if isinstance(value, str):
            why = text_problem(value)
            if why is not None:
                raise self._error(
                    node,
                    f"string {value!r} is refused: {why}; configuration values hold printable "
                    "text only (an escape such as \\0, \\e or \\u202E in a double-quoted "
                    "string writes such a character), so remove it",
                    path,
                )
        return value

    def _mapping_entries(
        self, node: yaml.MappingNode, path: KeyPath, depth: int
    ) -> list[tuple[yaml.Node, yaml.Node]]:
        """Key/value node pairs with ``<<`` merge keys expanded (explicit keys win)."""
        explicit: list[tuple[yaml.Node, yaml.Node]] = []
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        # every entry visited counts against the node budget, so merge keys that pull the same
        # anchors in again and again (a merge-key bomb) are stopped like alias bombs
        self.nodes += len(node.value)
        self._count(node, path, depth)
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._count(value_node, path, depth + 1)
                sources = (
                    value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                )
                for src in sources:
                    if not isinstance(src, yaml.MappingNode):
                        raise self._error(
                            src, "a '<<' merge key needs a mapping or a list of mappings", path
                        )
                    merged.extend(self._mapping_entries(src, path, depth + 1))
            else:
                explicit.append((key_node, value_node))
        if not merged:
            return explicit
        explicit_keys = {k.value for k, _ in explicit if isinstance(k, yaml.ScalarNode)}
        seen: set[Any] = set()
        out: list[tuple[yaml.Node, yaml.Node]] = []
        for k, v in merged:
            if k.value in explicit_keys or k.value in seen:
                continue
            seen.add(k.value)
            out.append((k, v))
        return out + explicit

    def _mapping(self, node: yaml.MappingNode, path: KeyPath, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        for key_node, value_node in self._mapping_entries(node, path, depth):
            if not isinstance(key_node, yaml.ScalarNode):
                raise self._error(key_node, "mapping keys must be plain scalars", path)
            raw_key = self._scalar(key_node, path)
            if raw_key is None or isinstance(raw_key, bool):
                raise self._error(
                    key_node,
                    f"mapping key {key_node.value!r} is read as {raw_key!r}; quote it",
                    path,
                )
            key = str(raw_key)
            line = key_node.start_mark.line + 1
            if key in first_line:
                raise self._error(
                    key_node,
                    f"duplicate key '{key}' (first set on line {first_line[key]}); "
                    "a key may appear once per mapping: remove one of them",
                    (*path, key),
                )
            first_line[key] = line
            key_path = (*path, key)
            self.sources[key_path] = Source(self.file, line)
            out[key] = self.build(value_node, key_path, depth + 1)
        return out


def load_yaml_text(
    text: str, *, file: str | None = None, limits: YamlLimits = DEFAULT_LIMITS
) -> Tree:
    """Parse one YAML document into a :class:`Tree` (data plus provenance).

    An empty document gives an empty mapping.

    Raises:
        ConfigError: malformed YAML, a forbidden tag, a duplicate key, or a limit exceeded;
            the error names the file and line.
    """
    if len(text.encode("utf-8", errors="replace")) > limits.max_bytes:
        raise ConfigError(
            f"document is larger than the {limits.max_bytes} byte limit; it was not read",
            file=file,
        )
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(f"malformed YAML: {problem or exc}", file=file, line=line) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"malformed YAML: {exc}", file=file) from exc
    except RecursionError as exc:
        raise ConfigError("YAML nested too deeply to read", file=file) from exc
    if node is None:
        return Tree({}, {})
    builder = _Builder(file, limits)
    try:
        data = builder.build(node, (), 0)
    except RecursionError as exc:
        raise ConfigError("YAML nested too deeply to read", file=file) from exc
    builder.sources[()] = Source(file, node.start_mark.line + 1)
    if data is None and isinstance(node, yaml.ScalarNode) and node.value == "":
        return Tree({}, {})  # a document holding only '---' and comments is empty
    return Tree(data, builder.sources)


def load_yaml_file(
    path: str | Path, *, display: str | None = None, limits: YamlLimits = DEFAULT_LIMITS
) -> Tree:
    """Read a YAML file into a :class:`Tree`, refusing files over ``limits.max_bytes`` unread.

    Args:
        path: The file.
        display: How errors and provenance name the file (default: ``str(path)``).
        limits: Size, node and depth bounds.

    Raises:
        ConfigError: the file is missing, unreadable, too large, not UTF-8, or not valid YAML.
    """
    file = Path(path)
    name = display if display is not None else str(file)
    try:
        size = file.stat().st_size
    except FileNotFoundError as exc:
        raise ConfigError("file not found", file=name) from exc
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", file=name) from exc
    if not file.is_file():
        raise ConfigError("not a file", file=name)
    if size > limits.max_bytes:
        raise ConfigError(
            f"file is {size} bytes, over the {limits.max_bytes} byte limit for a configuration "
            "file; it was not read (keep data out of config files)",
            file=name,
        )
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror}", file=name) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start}); save it as UTF-8", file=name
        ) from exc
    return load_yaml_text(text, file=name, limits=limits)
