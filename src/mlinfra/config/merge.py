"""Deep merge with documented rules, on plain data and on trees with provenance.

Rules (the same everywhere in mlinfra):

1. The right-hand side wins: ``merge(base, override)`` takes ``override``'s value for every key
   it sets.
2. Mappings merge recursively; keys only in ``base`` are kept.
3. Lists are replaced whole, unless a list policy names the key path with ``"extend"``, in which
   case the override's items are appended to the base list.
4. An explicit ``None`` (YAML ``null``) in the override *sets* the value to ``None``; a key that the
   override does not contain is "not given" and leaves ``base`` alone. To delete a key, use an
   override string ``~key`` (see :mod:`mlinfra.config.overrides`).
5. Inputs are never mutated; the result shares no mutable object with them.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Mapping
from typing import Any, Literal

from mlinfra.config.tree import KeyPath, Tree, format_key, thaw

__all__ = ["ListPolicy", "merge_configs_with_precedence", "merge_trees"]

ListPolicy = Mapping[str, Literal["replace", "extend"]]


def _list_mode(path: KeyPath, policy: ListPolicy | None) -> str:
    if not policy:
        return "replace"
    dotted = format_key(path)
    for pattern, mode in policy.items():
        if fnmatch.fnmatchcase(dotted, pattern):
            return mode
    return "replace"


def _merge(base: Any, over: Any, path: KeyPath, policy: ListPolicy | None) -> Any:
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        out = {k: copy.deepcopy(v) for k, v in base.items()}
        for key, value in over.items():
            if key in out:
                out[key] = _merge(out[key], value, (*path, key), policy)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(over, list) and _list_mode(path, policy) == "extend":
        return copy.deepcopy(base) + copy.deepcopy(over)
    return copy.deepcopy(over)


def merge_configs_with_precedence(
    base: Mapping[str, Any],
    *overrides: Mapping[str, Any],
    list_policy: ListPolicy | None = None,
) -> dict[str, Any]:
    """Merge ``overrides`` over ``base``, later arguments winning (rules in the module docstring).

    Args:
        base: The lowest-precedence mapping.
        *overrides: Mappings of increasing precedence.
        list_policy: Dotted key patterns (``fnmatch`` style, ``hpo.search_space.*.values``) mapped
            to ``"extend"`` or ``"replace"`` for lists at those keys. Default: replace.

    Returns:
        A new dict; the inputs are untouched.

    Example:
        >>> merge_configs_with_precedence({"a": {"x": 1, "y": [1]}}, {"a": {"y": [2], "z": None}})
        {'a': {'x': 1, 'y': [2], 'z': None}}
    """
    result: Any = thaw(base)
    for over in overrides:
        result = _merge(result, thaw(over), (), list_policy)
    return dict(result)


def _merge_tree(
    base: Tree, over: Tree, path: KeyPath, b: Any, o: Any, policy: ListPolicy | None
) -> Any:
    if isinstance(b, Mapping) and isinstance(o, Mapping):
        out = dict(b)
        for key, value in o.items():
            sub = (*path, key)
            if key in out:
                out[key] = _merge_tree(base, over, sub, out[key], value, policy)
            else:
                out[key] = copy.deepcopy(value)
                base.graft_sources(sub, over.subtree_sources(sub))
        if path in over.sources and path not in base.sources:
            base.sources[path] = over.sources[path]
        return out
    if isinstance(b, list) and isinstance(o, list) and _list_mode(path, policy) == "extend":
        offset = len(b)
        for p, s in over.subtree_sources(path).items():
            if p and isinstance(p[0], int):
                moved = (*path, p[0] + offset, *p[1:])
                base.sources[moved] = s
        return [*b, *copy.deepcopy(o)]
    base.drop_sources(path)
    base.graft_sources(path, over.subtree_sources(path))
    return copy.deepcopy(o)


def merge_trees(base: Tree, over: Tree, *, list_policy: ListPolicy | None = None) -> Tree:
    """Merge two trees with the rules above, carrying each value's source along.

    A replaced value takes the override's sources; a kept value keeps the base's.
    """
    result = base.copy()
    result.data = _merge_tree(result, over, (), result.data, over.data, list_policy)
    return result
