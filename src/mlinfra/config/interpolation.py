"""``${...}`` interpolation: references to other keys and environment variables.

One syntax, used in every file mlinfra reads:

* ``${a.b.c}``: the value at key path ``a.b.c`` of the same tree (absolute from the root; in a
  composed experiment the root holds the domains, so ``${model.backbone}``).
* ``${VAR}``: the environment variable ``VAR``; a name in capitals, digits and underscores is
  always an environment variable. Unset and no default is an error.
* ``${VAR:-default}``: ``VAR`` if it is set and not empty, else ``default`` (as in the shell).
* ``$${`` writes a literal ``${``.

When a string is exactly one ``${...}``, the result keeps the referenced value's type (a number,
a list, a mapping). An environment value, or a default, is read as a YAML scalar, exactly as if it
had been written in the file at that place (``${EPOCHS:-3}`` is the integer 3). Inside a longer
string every expression is turned into text. References are resolved recursively; a cycle is
reported with the chain of keys.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Mapping
from typing import Any

import yaml

from mlinfra.config.tree import KeyPath, Source, Tree, format_key, get_path, parse_key
from mlinfra.errors import ConfigError

__all__ = ["resolve_interpolations"]

_MAX_CHAIN = 150
_EXPR = re.compile(r"\$(\$?)\{([^${}]*)\}")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_REF_NAME = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+|\[\d+\])*$")


def _read_scalar(text: str) -> Any:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, (dict, list)) or (
        value is None
        and text.strip()
        not in (
            "null",
            "~",
            "Null",
            "NULL",
        )
    ):
        return text
    if not isinstance(value, (str, int, float, bool)) and value is not None:
        return text
    return value


def _as_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Resolver:
    def __init__(self, tree: Tree, environ: Mapping[str, str]) -> None:
        self.tree = tree
        self.environ = environ
        self.done: set[KeyPath] = set()
        self.stack: list[KeyPath] = []

    def _err(self, path: KeyPath, reason: str) -> ConfigError:
        src = self.tree.source_of(path)
        if src is not None and src.origin == "override":
            reason = f"{reason} (set by override '{src.detail}')"
        return ConfigError(
            reason,
            file=src.file if src else None,
            line=src.line if src else None,
            key=format_key(path),
        )

    def lookup(self, path: KeyPath) -> Any:
        return get_path(self.tree.data, path)

    def set(self, path: KeyPath, value: Any) -> None:
        if not path:
            self.tree.data = value
            return
        node: Any = self.tree.data
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    def resolve_path(self, path: KeyPath) -> Any:
        """Resolve every expression at and below ``path``; return the resolved value."""
        if path in self.done:
            return self.lookup(path)
        if len(self.stack) > _MAX_CHAIN:
            raise self._err(
                path,
                f"references nest more than {_MAX_CHAIN} deep; shorten the chain of ${{...}}",
            )
        if path in self.stack:
            chain = " -> ".join(
                format_key(p) for p in [*self.stack[self.stack.index(path) :], path]
            )
            raise self._err(path, f"interpolation cycle: {chain}")
        self.stack.append(path)
        try:
            value = self.lookup(path)
            if isinstance(value, Mapping):
                for key in list(value):
                    self.resolve_path((*path, key))
            elif isinstance(value, list):
                for i in range(len(value)):
                    self.resolve_path((*path, i))
            elif isinstance(value, str) and "${" in value:
                self.set(path, self._resolve_string(path, value))
        finally:
            self.stack.pop()
        self.done.add(path)
        return self.lookup(path)

    def _resolve_string(self, path: KeyPath, text: str) -> Any:
        matches = list(_EXPR.finditer(text))
        whole = (
            len(matches) == 1 and matches[0].span() == (0, len(text)) and not matches[0].group(1)
        )
        if whole:
            value, target = self._evaluate(path, matches[0].group(2))
            if target is not None and isinstance(value, (Mapping, list)):
                # a copied mapping or list keeps the sources of what it copied
                own = self.tree.sources.get(path)
                self.tree.drop_sources(path)
                copied = self.tree.subtree_sources(target)
                self.tree.graft_sources(path, {p: s for p, s in copied.items() if p})
                if own is not None:
                    self.tree.sources[path] = own
            return value
        pieces: list[str] = []
        last = 0
        for m in matches:
            pieces.append(text[last : m.start()])
            if m.group(1):
                pieces.append("${" + m.group(2) + "}")
            else:
                value, _ = self._evaluate(path, m.group(2))
                if isinstance(value, (Mapping, list)):
                    raise self._err(
                        path,
                        f"'${{{m.group(2)}}}' is a {type(value).__name__} and cannot be placed "
                        "inside a longer string; make the value exactly that expression",
                    )
                pieces.append(_as_text(value))
            last = m.end()
        pieces.append(text[last:])
        return "".join(pieces)

    def _evaluate(self, path: KeyPath, expr: str) -> tuple[Any, KeyPath | None]:
        """The value of one expression, and the key path it read (``None`` for a variable)."""
        name, sep, default = expr.partition(":-")
        name = name.strip()
        if _ENV_NAME.match(name):
            value = self.environ.get(name)
            if value is None or (sep and value == ""):
                if not sep:
                    raise self._err(
                        path,
                        f"environment variable {name} is not set; set it, or give a default "
                        f"with '${{{name}:-default}}'",
                    )
                self._note(path, f"default of ${{{name}}}")
                return _read_scalar(default), None
            self._note(path, f"from environment variable {name}")
            return _read_scalar(value), None
        if sep:
            raise self._err(
                path,
                f"'${{{expr}}}': a ':-' default is only allowed for environment variables "
                "(names in capitals)",
            )
        if not _REF_NAME.match(name):
            raise self._err(
                path,
                f"'${{{expr}}}' is neither a key reference (like ${{model.backbone}}) nor an "
                "environment variable (like ${HOME} or ${VAR:-default})",
            )
        target = parse_key(name)
        for end in range(1, len(target) + 1):
            # a step of the path may itself be a reference (``${b.x}`` with ``b: ${a}``):
            # resolve it first, whatever the document order
            try:
                node = self.lookup(target[:end])
            except KeyError:
                raise self._err(path, self._missing(name)) from None
            if end < len(target) and isinstance(node, str) and "${" in node:
                self.resolve_path(target[:end])
        value = self.resolve_path(target)
        self._note(path, f"via ${{{name}}}")
        return copy.deepcopy(value), target

    def _missing(self, name: str) -> str:
        known = [format_key(p) for p, _ in self.tree.leaves()] + [
            format_key(p) for p in self.tree.sources if p
        ]
        close = difflib.get_close_matches(name, sorted(set(known)), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"'${{{name}}}' refers to a key that does not exist{hint}"

    def _note(self, path: KeyPath, note: str) -> None:
        src = self.tree.sources.get(path)
        if src is not None:
            self.tree.sources[path] = src.with_note(note)
        else:
            self.tree.sources[path] = Source(origin="default", note=note)


def resolve_interpolations(tree: Tree, environ: Mapping[str, str]) -> Tree:
    """Return a copy of ``tree`` with every ``${...}`` expression resolved.

    Args:
        tree: The composed tree.
        environ: Environment variables to read (pass ``os.environ`` at the edge).

    Raises:
        ConfigError: a missing key, an unset variable without default, a cycle, or a malformed
            expression; the error names the file, line and key where the expression is written.
    """
    work = tree.copy()
    _Resolver(work, environ).resolve_path(())
    return work
